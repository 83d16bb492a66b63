"""Regularized incomplete gamma functions and the implicit Gamma gradient, as differentiable ops.

Kernels: csrc/core/igamma.h (math), csrc/cpu/elementwise.cpp and csrc/cuda/elementwise.cu (loops).
This module registers the fake (meta) kernels and the autograd formulas, and exposes the Python API.
Out-of-domain arguments (a <= 0, x < 0, NaN) give NaN, as torch.special does.
"""
import torch

from ._fast import Tensor, fast, is_compiling, tf_mode
from ._promote import promote2
from ._utils import broadcast_fake

__all__ = ["gammainc", "gammaincc", "gammaincinv", "standard_gamma_grad", "log_standard_gamma_grad"]

_ops = torch.ops.gradkern
# The public functions' ops and their eager fast entry points (gradkern/_fast.py). Where the fast path
# declines (promotion, a subclass or mode, torch.compile), the wrappers call the OpOverload itself.
_P, _Q, _PINV = _ops.gammainc.default, _ops.gammaincc.default, _ops.gammaincinv.default
_G, _LG = _ops.standard_gamma_grad.default, _ops.log_standard_gamma_grad.default
_P_FAST, _Q_FAST, _PINV_FAST = fast("gammainc"), fast("gammaincc"), fast("gammaincinv")
_G_FAST, _LG_FAST = fast("standard_gamma_grad"), fast("log_standard_gamma_grad")


# --- fake kernels ------------------------------------------------------------------------------
for _name in ("gammainc", "gammaincc", "gammainc_grad_a", "standard_gamma_grad", "log_standard_gamma_grad",
              "gammaincinv", "gammainc_grad_aa", "standard_gamma_grad_dalpha", "log_standard_gamma_grad_dalpha"):
    torch.library.register_fake(f"gradkern::{_name}")(broadcast_fake)


# Autograd (reverse and forward mode, the torch.func transforms, second order where the derivative ops
# have derivatives): csrc/autograd.cpp, one kernel for every op.


# --- Python API ------------------------------------------------------------------------------------
def gammainc(a, x):
    r"""Regularized lower incomplete gamma function :math:`P(a, x) = \gamma(a, x) / \Gamma(a)`.

    Like :func:`torch.special.gammainc`, but differentiable in both arguments (torch's has no
    gradient w.r.t. ``a``). ``dP/da`` comes from forward-mode differentiation of the power series,
    continued fraction or Temme expansion (Figurnov et al. 2018, appendix B); ``dP/dx`` is the
    Gamma(a, 1) density.

    Args:
        a (Tensor or float): shape parameter, ``a > 0``.
        x (Tensor or float): argument, ``x >= 0``. Broadcasts with ``a``; same dtype and device.

    Returns:
        Tensor of the broadcast shape. NaN where ``a <= 0``, ``x < 0`` or an input is NaN.
    """
    if not is_compiling() and type(a) is Tensor and type(x) is Tensor and not tf_mode():
        r = _P_FAST(a, x)
        if r is not NotImplemented:
            return r
    a, x = promote2("gammainc", "a", a, "x", x)
    return _P(a, x)


def gammaincc(a, x):
    r"""Regularized upper incomplete gamma function :math:`Q(a, x) = 1 - P(a, x)`, computed directly
    (no cancellation in the upper tail). Differentiable in both arguments. See :func:`gammainc`."""
    if not is_compiling() and type(a) is Tensor and type(x) is Tensor and not tf_mode():
        r = _Q_FAST(a, x)
        if r is not NotImplemented:
            return r
    a, x = promote2("gammaincc", "a", a, "x", x)
    return _Q(a, x)


def gammaincinv(a, p):
    r"""Inverse of :func:`gammainc` in ``x``: the ``x >= 0`` with :math:`P(a, x) = p`.

    This is the quantile function (icdf) of Gamma(a, 1). Differentiable: ``dx/dp = 1 / q(x)`` and
    ``dx/da`` is the implicit Gamma gradient :func:`standard_gamma_grad`.

    Args:
        a (Tensor or float): shape parameter, ``a > 0``.
        p (Tensor or float): probability in ``[0, 1]``; ``p = 1`` gives ``inf``.

    Returns:
        Tensor of the broadcast shape; NaN where ``a <= 0`` or ``p`` is outside ``[0, 1]``.
    """
    if not is_compiling() and type(a) is Tensor and type(p) is Tensor and not tf_mode():
        r = _PINV_FAST(a, p)
        if r is not NotImplemented:
            return r
    a, p = promote2("gammaincinv", "a", a, "p", p)
    return _PINV(a, p)


def standard_gamma_grad(alpha, x):
    r"""Implicit reparameterization gradient ``dx/dalpha`` of a sample ``x ~ Gamma(alpha, 1)``.

    Same contract as ``torch._standard_gamma_grad(alpha, x)``, but exact to working precision:
    :math:`dx/d\alpha = -(\partial P(\alpha, x)/\partial \alpha) / q(x)` (Figurnov et al. 2018, eqs. 8
    and 11) with the density factor fused into the series so nothing overflows or cancels.

    Args:
        alpha (Tensor): concentration, ``alpha > 0``.
        x (Tensor): samples, ``x >= 0``; broadcasts with ``alpha``; same dtype and device.
    """
    if not is_compiling() and type(alpha) is Tensor and type(x) is Tensor and not tf_mode():
        r = _G_FAST(alpha, x)
        if r is not NotImplemented:
            return r
    alpha, x = promote2("standard_gamma_grad", "alpha", alpha, "x", x)
    return _G(alpha, x)


def log_standard_gamma_grad(alpha, log_x):
    r"""``d(log x)/dalpha`` for ``x ~ Gamma(alpha, 1)`` given ``log x``.

    For tiny ``alpha`` the sample itself underflows (``alpha = 1e-6`` gives ``log x`` around ``-1e6``),
    but its logarithm and this gradient stay finite. Used by :func:`gradkern.log_gamma_rsample`.
    """
    if not is_compiling() and type(alpha) is Tensor and type(log_x) is Tensor and not tf_mode():
        r = _LG_FAST(alpha, log_x)
        if r is not NotImplemented:
            return r
    alpha, log_x = promote2("log_standard_gamma_grad", "alpha", alpha, "log_x", log_x)
    return _LG(alpha, log_x)
