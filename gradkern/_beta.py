"""Regularized incomplete beta functions and the implicit Beta / Dirichlet gradients, as differentiable ops.

Kernels: csrc/core/ibeta.h (math), csrc/cpu/ibeta.cpp and csrc/cuda/ibeta.cu (loops). This module
registers the fake (meta) kernels and the autograd formulas, and exposes the Python API. Out-of-domain
arguments (a <= 0, b <= 0, x outside [0, 1], NaN) give NaN, as torch.special does.
"""
import torch

from ._promote import promote3
from ._utils import broadcast_fake, check_fake_elementwise

__all__ = ["betainc", "betaincc", "betaincinv", "standard_beta_grad"]

_ops = torch.ops.gradkern


# --- fake kernels ------------------------------------------------------------------------------
def _ternary_fake(a, b, c):
    device = check_fake_elementwise((a, b, c))
    return a.new_empty(torch.broadcast_shapes(a.shape, b.shape, c.shape), device=device)


def _ternary_multi_fake(n):
    def fake(a, b, c):
        device = check_fake_elementwise((a, b, c))
        shape = torch.broadcast_shapes(a.shape, b.shape, c.shape)
        return tuple(a.new_empty(shape, device=device) for _ in range(n))
    return fake


for _name in ("betainc", "betaincc", "betaincinv", "dirichlet_grad"):
    torch.library.register_fake(f"gradkern::{_name}")(_ternary_fake)
for _name, _n in (("betainc_grads", 2), ("standard_beta_grad", 2), ("betainc_grads2", 3),
                  ("standard_beta_grad_d2", 4)):
    torch.library.register_fake(f"gradkern::{_name}")(_ternary_multi_fake(_n))


# Autograd (reverse and forward mode, the torch.func transforms, second order where the derivative ops
# have derivatives): csrc/autograd.cpp, one kernel for every op.


def _sampler_fake(*args, generator=None):
    tensors = [t for t in args if isinstance(t, torch.Tensor)]
    device = check_fake_elementwise(tensors)
    return tensors[0].new_empty(torch.broadcast_shapes(*(t.shape for t in tensors)), device=device)


torch.library.register_fake("gradkern::standard_beta")(_sampler_fake)
torch.library.register_fake("gradkern::standard_dirichlet")(_sampler_fake)


torch.library.register_fake("gradkern::sigmoid_difference")(broadcast_fake)


# --- Python API ------------------------------------------------------------------------------------
def betainc(a, b, x):
    r"""Regularized incomplete beta function :math:`I_x(a, b) = B(x; a, b) / B(a, b)`, the CDF of
    Beta(a, b).

    Differentiable in all three arguments: ``dI/da`` and ``dI/db`` by forward-mode differentiation of
    the continued fraction (evaluated on the side of the symmetry :math:`I_x(a, b) = 1 - I_{1-x}(b, a)`
    where it converges, so nothing cancels), ``dI/dx`` is the Beta(a, b) density.

    Args:
        a (Tensor or float): first shape parameter, ``a > 0``.
        b (Tensor or float): second shape parameter, ``b > 0``.
        x (Tensor or float): argument in ``[0, 1]``. The three broadcast together and follow torch's type
            promotion.

    Returns:
        Tensor of the broadcast shape. NaN where ``a <= 0``, ``b <= 0``, ``x`` is outside ``[0, 1]`` or an
        input is NaN.
    """
    a, b, x = promote3("betainc", "a", a, "b", b, "x", x)
    return _ops.betainc.default(a, b, x)


def betaincc(a, b, x):
    r"""Complement :math:`1 - I_x(a, b)` of :func:`betainc`, computed directly (full relative precision
    in the upper tail, where ``1 - betainc`` would cancel). Differentiable in all three arguments."""
    a, b, x = promote3("betaincc", "a", a, "b", b, "x", x)
    return _ops.betaincc.default(a, b, x)


def betaincinv(a, b, p):
    r"""Inverse of :func:`betainc` in ``x``: the ``x`` in ``[0, 1]`` with :math:`I_x(a, b) = p`, the
    quantile function (icdf) of Beta(a, b).

    Differentiable: ``dx/dp = 1 / q(x)`` and ``(dx/da, dx/db)`` at fixed ``p`` are the implicit Beta
    gradients :func:`standard_beta_grad`.

    Args:
        a, b (Tensor or float): shape parameters, ``> 0``.
        p (Tensor or float): probability in ``[0, 1]``.

    Returns:
        Tensor of the broadcast shape; NaN where a parameter is invalid or ``p`` is outside ``[0, 1]``.
    """
    a, b, p = promote3("betaincinv", "a", a, "b", b, "p", p)
    return _ops.betaincinv.default(a, b, p)


def standard_beta_grad(a, b, x):
    r"""Implicit reparameterization gradients ``(dx/da, dx/db)`` of a sample ``x ~ Beta(a, b)``.

    :math:`dx/da = -(\partial I_x(a, b) / \partial a) / q(x)` and likewise for ``b`` (Figurnov et al.
    2018, eq. 8 with the Beta CDF as the standardization function), the analogue of
    :func:`standard_gamma_grad`. The density cancels analytically against the continued fraction's
    prefactor, so nothing overflows or underflows. This is the gradient torch's Beta approximates
    (``torch._dirichlet_grad``), exact to working precision.

    Args:
        a, b (Tensor or float): shape parameters, ``> 0``.
        x (Tensor or float): samples in ``[0, 1]``. Broadcasts with ``a`` and ``b``.

    Returns:
        Tuple ``(dx/da, dx/db)`` of tensors of the broadcast shape (0 at ``x = 0`` or ``1``; NaN outside
        the domain).
    """
    a, b, x = promote3("standard_beta_grad", "a", a, "b", b, "x", x)
    return _ops.standard_beta_grad.default(a, b, x)
