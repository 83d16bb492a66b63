"""von Mises-Fisher on the sphere S^(d-1): Wood's sampler with the exact implicit gradient w.r.t. the
concentration, and the moments of the cosine w = mu^T z.

Kernels: csrc/core/vmf.h (the CDF of u = 1 - w and du/dkappa by Gauss-Legendre quadrature in the angle,
the moments log Z_u, E[u] = 1 - A_d(kappa), Var[w] = A_d'(kappa), Wood's rejection sampler on Philox
streams), csrc/cpu/vmf.cpp and csrc/cuda/vmf.cu (loops).
"""
import math

import torch

from ._promote import promote
from ._utils import broadcast_fake

__all__ = ["vmf_rsample"]

_ops = torch.ops.gradkern


# --- fake kernels -------------------------------------------------------------------------------------
torch.library.register_fake("gradkern::vmf_grad_u")(lambda concentration, u, d: broadcast_fake(concentration, u))
torch.library.register_fake("gradkern::vmf_cdf_u")(lambda u, concentration, d: broadcast_fake(u, concentration))


@torch.library.register_fake("gradkern::vmf_sample_u")
def _(concentration, d, generator=None):
    return torch.empty_like(concentration, memory_format=torch.contiguous_format)


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


def householder_rotate(loc, x):
    r"""An orthogonal map sending the first basis vector e_1 to ``loc``, applied to ``x`` (..., d).

    :math:`-\sigma (x - 2 (h^T x / h^T h) h)` with :math:`h = e_1 + \sigma\,loc` and :math:`\sigma` the sign
    of ``loc[..., 0]`` (+1 at 0): the reflection in h maps e_1 to :math:`-\sigma\,loc`, and
    :math:`h^T h = 2 (1 + |loc_1|) \ge 2`, so the map is well conditioned for every ``loc`` (the textbook
    choice h = e_1 - loc divides by ~0 when loc is near e_1). Differentiable in ``loc`` and ``x``."""
    sigma = torch.where(loc[..., :1] >= 0, 1.0, -1.0).to(loc.dtype)
    h = torch.cat([loc[..., :1] * sigma + 1, loc[..., 1:] * sigma], -1)
    hh = (h * h).sum(-1, keepdim=True)
    return -sigma * (x - (2 * (h * x).sum(-1, keepdim=True) / hh) * h)


def vmf_rsample(loc, concentration, sample_shape=(), generator=None):
    r"""Reparameterized samples of the von Mises-Fisher distribution vMF(loc, concentration) on the unit
    sphere :math:`S^{d-1} \subset \mathbb{R}^d`, density :math:`C_d(\kappa) e^{\kappa\,loc^T z}`.

    Wood's (1994) construction: the cosine :math:`w = loc^T z` is drawn by rejection (fused kernel, at most
    64 proposals, Philox streams so seeded runs reproduce whatever the thread count), as
    :math:`u = 1 - w` so that w near 1 (large kappa) keeps its accuracy; then
    :math:`z = H(loc)\,(w, \sqrt{u (2 - u)}\,v)` with v uniform on :math:`S^{d-2}` and H the Householder map
    of :func:`householder_rotate`. Gradients: w.r.t. ``loc`` through H (pathwise); w.r.t. the
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
    loc, concentration = promote("vmf_rsample", ("loc", loc), ("concentration", concentration))
    d = _check_loc("vmf_rsample", loc)
    shape = torch.Size(sample_shape) + torch.broadcast_shapes(loc.shape[:-1], concentration.shape)
    u = _ops.vmf_sample_u.default(concentration.expand(shape), d, generator)
    noise = torch.randn(shape + (d - 1,), dtype=loc.dtype, device=loc.device, generator=generator)
    if loc.dtype in (torch.float32, torch.float64):
        # one fused pass: v = noise / |noise|, the Householder map, and their gradients (csrc/core/vmf.h
        # vmf_direction). At the poles (u = 0 or 2, which the d = 2 sampler can return) sqrt(u (2 - u)) is
        # floored at sqrt(tiny), so the sample's gradient is du/dkappa (= 0 there) times a finite number,
        # not 0 * inf = NaN.
        return _ops.vmf_direction.default(loc, u.unsqueeze(-1), noise)
    # half / bfloat16: the same construction in torch ops
    v = noise / torch.linalg.vector_norm(noise, dim=-1, keepdim=True)
    tiny = torch.finfo(u.dtype).tiny
    x = torch.cat([(1 - u).unsqueeze(-1), torch.sqrt((u * (2 - u)).clamp_min(tiny)).unsqueeze(-1) * v], -1)
    return householder_rotate(loc, x)
