"""von Mises distribution: CDF, implicit reparameterization gradient and a fused sampler.

Kernels: csrc/core/vonmises_cdf.h, vonmises_sampler.h (CDF series of eq. 14 with backward Bessel-ratio recursion, a large-kappa
expansion, forward-mode dF/dkappa, Best-Fisher sampler), csrc/cpu/ and csrc/cuda/ (loops).
"""
import math

import torch

from ._promote import promote2, promote3
from ._fast import is_compiling, raw
from ._utils import broadcast_fake, expand_to

__all__ = ["vonmises_cdf", "vonmises_grad", "vonmises_rsample"]

_ops = torch.ops.gradkern
_VS = _ops.vonmises_sample.default
_VS_RAW = raw(_VS)


def _log_density(x, kappa):
    # log q(x) = kappa (cos x - 1) - log(2 pi I0e(kappa)): the scaled Bessel function keeps kappa = 1e6
    # finite.
    return kappa * (torch.cos(x) - 1) - torch.log(2 * math.pi * torch.special.i0e(kappa))


# --- fake kernels -------------------------------------------------------------------------------------
for _name in ("vonmises_cdf", "vonmises_cdf_grad_concentration", "vonmises_grad", "vonmises_shift_wrap",
              "vonmises_cdf_grad_kk", "vonmises_grad_dconcentration"):
    torch.library.register_fake(f"gradkern::{_name}")(broadcast_fake)


@torch.library.register_fake("gradkern::vonmises_sample")
def _(concentration, generator=None):
    return torch.empty_like(concentration, memory_format=torch.contiguous_format)


# Autograd (reverse and forward mode, the torch.func transforms, second order where the derivative ops
# have derivatives): csrc/autograd.cpp, one kernel for every op.


# --- Python API ---------------------------------------------------------------------------------------
def vonmises_cdf(x, loc, concentration):
    r"""CDF of vonMises(loc, concentration), measured from ``loc - pi``.

    :math:`F(x) = F_0(x - loc; \kappa)` where :math:`F_0` is the CDF of vonMises(0, kappa) on
    :math:`[-\pi, \pi]` (eq. 14), extended to the real line by :math:`F_0(y + 2\pi k) = F_0(y) + k`.
    Differentiable in all three arguments: ``dF/dx`` is the density, ``dF/dloc = -dF/dx``, and
    ``dF/dkappa`` comes from forward-mode differentiation of the series.

    Args:
        x, loc, concentration (Tensor or float): broadcastable; ``concentration > 0``.

    Returns:
        Tensor of the broadcast shape; NaN where ``concentration <= 0`` or an input is NaN or inf.
    """
    x, loc, concentration = promote3("vonmises_cdf", "x", x, "loc", loc, "concentration", concentration)
    y = x - loc
    return _ops.vonmises_cdf.default(y, concentration)


def vonmises_grad(concentration, x):
    r"""Implicit reparameterization gradient ``dx/dkappa`` of a sample ``x ~ vonMises(0, kappa)``.

    :math:`dx/d\kappa = -(\partial F(x|\kappa) / \partial \kappa) / q(x|\kappa)` (eq. 8), with the
    density factor fused so it stays finite for kappa from 1e-6 to 1e6 and x near 0 and near +-pi.

    Args:
        concentration (Tensor): kappa > 0.
        x (Tensor): samples; broadcasts with ``concentration``; same dtype and device.
    """
    concentration, x = promote2("vonmises_grad", "concentration", concentration, "x", x)
    return _ops.vonmises_grad.default(concentration, x)


def vonmises_rsample(loc, concentration, sample_shape=(), generator=None):
    r"""Reparameterized samples of vonMises(loc, concentration) in ``[-pi, pi)``.

    Samples come from a sampler fused into one kernel (Best-Fisher rejection with a bounded number of
    draws per element, Philox counters so seeded runs reproduce regardless of thread count). The
    gradient w.r.t. ``loc`` is 1 and w.r.t. ``concentration`` the exact implicit gradient
    (:func:`vonmises_grad`).

    Args:
        loc (Tensor or float): mean direction.
        concentration (Tensor or float): kappa > 0.
        sample_shape (torch.Size): leading sample dimensions.
        generator (torch.Generator, optional): source of randomness (on the tensors' device).

    Returns:
        Tensor of shape ``sample_shape + broadcast(loc, concentration).shape``.
    """
    loc, concentration = promote2("vonmises_rsample", "loc", loc, "concentration", concentration)
    shape = torch.Size(sample_shape) + torch.broadcast_shapes(loc.shape, concentration.shape)
    # The OpOverload's C++ callable in eager mode (gradkern/_fast.py), and no view where the shape is right.
    x = (_VS if is_compiling() else _VS_RAW)(expand_to(concentration, shape), generator)
    # loc + x wrapped into [-pi, pi) in one fused pass (d/dloc = 1, see vonmises_shift_wrap).
    return _ops.vonmises_shift_wrap.default(x, loc)
