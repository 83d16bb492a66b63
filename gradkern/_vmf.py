"""von Mises-Fisher on the sphere S^(d-1): Wood's sampler with the exact implicit gradient w.r.t. the
concentration, and the moments of the cosine w = mu^T z.

Kernels: csrc/core/vmf.h (the CDF of u = 1 - w and du/dkappa by Gauss-Legendre quadrature in the angle,
the moments log Z_u, E[u] = 1 - A_d(kappa), Var[w] = A_d'(kappa), Wood's rejection sampler on Philox
streams), csrc/cpu/vmf.cpp and csrc/cuda/vmf.cu (loops).
"""
import math

import torch

from ._promote import promote2
from ._utils import broadcast_fake

__all__ = ["vmf_rsample"]

_ops = torch.ops.gradkern


# --- fake kernels -------------------------------------------------------------------------------------
torch.library.register_fake("gradkern::vmf_grad_u")(lambda concentration, u, d: broadcast_fake(concentration, u))
torch.library.register_fake("gradkern::vmf_grad_u_dkappa")(lambda concentration, u, d: broadcast_fake(concentration, u))
torch.library.register_fake("gradkern::vmf_cdf_u")(lambda u, concentration, d: broadcast_fake(u, concentration))


@torch.library.register_fake("gradkern::vmf_sample_u")
def _(concentration, d, generator=None):
    return torch.empty_like(concentration, memory_format=torch.contiguous_format)


@torch.library.register_fake("gradkern::vmf_noise")
def _(like, d, generator=None):
    torch._check(d >= 2, lambda: f"gradkern.vmf_noise: d must be an integer >= 2, got {d}")
    torch._check(like.dtype in (torch.float32, torch.float64),
                 lambda: f"gradkern.vmf_noise: like must be float32 or float64, got {like.dtype}")
    return like.new_empty(tuple(like.shape) + (d - 1,))


@torch.library.register_fake("gradkern::vmf_moments")
def _(concentration, d):
    return tuple(torch.empty_like(concentration, memory_format=torch.contiguous_format) for _ in range(3))


@torch.library.register_fake("gradkern::vmf_direction")
def _(loc, u, noise):
    torch._check(loc.dim() >= 1 and loc.shape[-1] >= 2, lambda: "gradkern.vmf_direction: loc needs a last dimension >= 2")
    torch._check(u.dim() >= 1 and u.shape[-1] == 1, lambda: "gradkern.vmf_direction: u needs a last dimension of size 1")
    torch._check(noise.dim() >= 1 and noise.shape[-1] == loc.shape[-1] - 1,
                 lambda: "gradkern.vmf_direction: noise needs a last dimension d - 1")
    batch = torch.broadcast_shapes(loc.shape[:-1], u.shape[:-1], noise.shape[:-1])
    return loc.new_empty(batch + loc.shape[-1:])


@torch.library.register_fake("gradkern::vmf_direction_backward")
def _(grad, loc, u, noise):
    shape = grad.shape
    return (grad.new_empty(shape), grad.new_empty(shape[:-1] + (1,)), grad.new_empty(shape[:-1] + (shape[-1] - 1,)))


@torch.library.register_fake("gradkern::vmf_central_moment")
def _(concentration, d, k):
    return torch.empty_like(concentration, memory_format=torch.contiguous_format)


# Autograd (every mode): csrc/autograd.cpp.


def log_sphere_area(k):
    """log of the surface area of the unit sphere S^(k-1) in R^k: log(2 pi^(k/2) / Gamma(k/2))."""
    return math.log(2.0) + 0.5 * k * math.log(math.pi) - math.lgamma(0.5 * k)


def _check_loc(fn, loc):
    if loc.dim() < 1 or loc.shape[-1] < 2:
        raise ValueError(f"gradkern.{fn}: loc must have a last dimension d >= 2 (unit vectors in R^d, the mean "
                         f"direction), got shape {tuple(loc.shape)}")
    return loc.shape[-1]


def vmf_rsample(loc, concentration, sample_shape=(), generator=None):
    r"""Reparameterized samples of the von Mises-Fisher distribution vMF(loc, concentration) on the unit
    sphere :math:`S^{d-1} \subset \mathbb{R}^d`, density :math:`C_d(\kappa) e^{\kappa\,loc^T z}`.

    Wood's (1994) construction: the cosine :math:`w = loc^T z` is drawn by rejection (fused kernel, at most
    64 proposals, Philox streams so seeded runs reproduce whatever the thread count), as
    :math:`u = 1 - w` so that w near 1 (large kappa) keeps its accuracy; then
    :math:`z = H(loc)\,(w, \sqrt{u (2 - u)}\,v)` with v uniform on :math:`S^{d-2}` and H the Householder map
    sending e_1 to ``loc``, built from :math:`h = e_1 + \mathrm{sign}(loc_1)\,loc` (well conditioned for every
    ``loc``), in one fused kernel with its backward. Gradients: w.r.t. ``loc`` through H (pathwise); w.r.t. the
    concentration the exact implicit gradient :math:`dw/d\kappa = -(\partial F/\partial \kappa) / f(w)`
    (Figurnov et al. 2018, eq. 8) with F the CDF of w, computed by quadrature (no rejection-sampler
    correction term, no score function). Every autodiff mode works (torch.func, forward mode, vmap).

    Args:
        loc (Tensor): mean directions, shape ``(*batch, d)``, d >= 2, unit norm (not checked here; the
            distribution class validates it).
        concentration (Tensor or float): :math:`\kappa \ge 0` (0: the uniform distribution), shape
            broadcastable with ``loc.shape[:-1]``.
        sample_shape (torch.Size): leading sample dimensions.
        generator (torch.Generator, optional): source of randomness, on the tensors' device.

    Returns:
        Tensor of shape ``sample_shape + batch + (d,)``; NaN rows where the concentration is negative, NaN
        or infinite.
    """
    loc, concentration = promote2("vmf_rsample", "loc", loc, "concentration", concentration)
    d = _check_loc("vmf_rsample", loc)
    shape = torch.Size(sample_shape) + torch.broadcast_shapes(loc.shape[:-1], concentration.shape)
    u = _ops.vmf_sample_u.default(concentration.expand(shape), d, generator)
    # one fused pass: v = noise / |noise|, the Householder map, and their gradients (csrc/core/vmf.h
    # vmf_direction; float32 / float64, so half and bfloat16 go through float32 as the samplers' kernels
    # compute them). At the poles (u = 0 or 2, which the d = 2 sampler can return) sqrt(u (2 - u)) is floored
    # at sqrt(tiny), so the sample's gradient is du/dkappa (= 0 there) times a finite number, not 0 * inf = NaN.
    dtype = loc.dtype
    work = dtype if dtype in (torch.float32, torch.float64) else torch.float32
    u = u.to(work)
    # d - 1 standard normals per sample from the fused Philox / Box-Muller kernel (torch.randn costs ~2 ns per
    # float32 normal and ~14 ns per float64 one on the CPU; this kernel ~1 and ~2 with AVX-512)
    noise = _ops.vmf_noise.default(u, d, generator)
    z = _ops.vmf_direction.default(loc.to(work), u.unsqueeze(-1), noise)
    return z if work == dtype else z.to(dtype)
