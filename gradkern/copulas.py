r"""Antithetic copulas for multi-sample Bernoulli gradients (ARMS, Dimitriev & Zhou 2021).

A copula draw is ``n`` uniforms ``(u_1, ..., u_n)``, each exactly ``Unif(0, 1)``, that are mutually
negatively dependent. Thresholding ``b_i = 1[u_i < p]`` gives ``n`` Bernoulli(p) samples with a common
pairwise correlation ``rho(p, n) < 0``, which is what :func:`gradkern.estimators.arms` divides by.

Kernels: csrc/core/copula.h (math and samplers), csrc/cpu/copula.cpp and csrc/cuda/copula.cu (loops).
This module registers the fake kernels and autograd formulas and exposes the Python API. Everything
runs on the device of its inputs; there is no jitter and no SciPy round trip.
"""

import torch

from ._utils import check_fake_elementwise

__all__ = ["dirichlet", "gaussian", "dirichlet_rho", "gaussian_rho", "bivariate_normal_cdf"]

_ops = torch.ops.gradkern

_DIRICHLET_MODES = ("oriented", "direct", "reflected")


def _check_n(fn, n):
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"gradkern.copulas.{fn}: n must be an int, got {type(n).__name__}")
    if n < 2:
        raise ValueError(f"gradkern.copulas.{fn}: n (the number of antithetic samples) must be >= 2, got {n}")


# --- fake kernels ------------------------------------------------------------------------------------
@torch.library.register_fake("gradkern::dirichlet_copula")
def _copula_fake(like, n, generator=None):
    torch._check(n >= 2, lambda: f"gradkern.dirichlet_copula: n must be >= 2, got {n}")
    return like.new_empty((n, *like.shape)).contiguous()


torch.library.register_fake("gradkern::gaussian_copula")(_copula_fake)


@torch.library.register_fake("gradkern::dirichlet_copula_rho")
def _dirichlet_rho_fake(p, n, mode="oriented"):
    return torch.empty_like(p, memory_format=torch.contiguous_format)


@torch.library.register_fake("gradkern::gaussian_copula_rho")
def _gaussian_rho_fake(p, n):
    return torch.empty_like(p, memory_format=torch.contiguous_format)


@torch.library.register_fake("gradkern::bivariate_normal_cdf")
def _bvn_fake(h, k, r):
    # The real kernel's checks (one floating dtype; one device, 0-dim CPU tensors excepted), then the
    # broadcast shape on the common device.
    device = check_fake_elementwise((h, k, r), ("h", "k", "r"))
    shape = torch.broadcast_shapes(h.shape, k.shape, r.shape)
    return h.new_empty(shape, device=device)


# Autograd (reverse and forward mode, the torch.func transforms, second order where the derivative ops
# have derivatives): csrc/autograd.cpp, one kernel for every op.


# --- Python API --------------------------------------------------------------------------------------
def _like(shape, dtype, device):
    if isinstance(shape, int):
        shape = (shape,)
    dtype = torch.get_default_dtype() if dtype is None else dtype
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"gradkern.copulas: dtype must be torch.float32 or torch.float64, got {dtype}")
    # A zero-stride stand-in: the kernels read only its shape, dtype and device.
    return torch.empty((), dtype=dtype, device=device).expand(tuple(shape))


def dirichlet(n, shape, generator=None, *, dtype=None, device=None):
    r"""Antithetic Dirichlet copula (Algorithm 1 of Dimitriev & Zhou 2021).

    For every index ``j`` of ``shape``, draws ``v_i ~ Unif(0, 1)``, forms ``d = log(v) / sum log(v)``
    (a ``Dirichlet(1, ..., 1)`` sample) and returns ``u_i = 1 - (1 - d_i)^(n-1)``, whose marginals are
    exactly ``Unif(0, 1)``. The reflection ``1 - u`` is the copula's second output; ARMS thresholds
    ``u`` where ``p >= 1/2`` and ``1 - u`` where ``p < 1/2`` (see :func:`dirichlet_rho`).

    Args:
        n (int): copula dimension (number of antithetic samples), ``n >= 2``.
        shape (tuple of int): shape of one batch of independent copula draws.
        generator (torch.Generator, optional): source of randomness (on the target device).
        dtype (torch.dtype, optional): float32 or float64; default ``torch.get_default_dtype()``.
        device (torch.device, optional): default CPU.

    Returns:
        Tensor of shape ``(n, *shape)``; ``u[:, j]`` is one copula draw. Reproducible for a seeded
        generator, independent of the number of threads.
    """
    _check_n("dirichlet", n)
    return _ops.dirichlet_copula(_like(shape, dtype, device), n, generator)


def gaussian(n, shape, generator=None, *, dtype=None, device=None):
    r"""Antithetic Gaussian copula (Algorithm 2): ``u_i = Phi(x_i)``, ``x ~ N(0, R)`` with
    ``R_ii = 1`` and ``R_ij = -1/(n-1)``.

    ``x`` is drawn in O(n) per column as centred i.i.d. normals, ``x = (z - mean(z)) sqrt(n / (n-1))``,
    which has exactly the covariance ``R`` (no Cholesky factor, no diagonal jitter). Arguments and
    result as in :func:`dirichlet`.
    """
    _check_n("gaussian", n)
    return _ops.gaussian_copula(_like(shape, dtype, device), n, generator)


def dirichlet_rho(p, n, mode="oriented"):
    r"""Common pairwise correlation ``Corr(b_i, b_j)`` of ``b_i = 1[u_i < p]`` under the Dirichlet
    copula (Theorem 4 / eq. 8 of Dimitriev & Zhou 2021).

    Args:
        p (Tensor): Bernoulli probabilities in ``[0, 1]``.
        n (int): number of samples, ``n >= 2``.
        mode (str): ``"oriented"`` (default; ``u`` for ``p >= 1/2`` and ``1 - u`` below, as ARMS uses
            it), ``"direct"`` (``u``: the paper's ``rho``) or ``"reflected"`` (``1 - u``: ``rho'``).

    Returns:
        Tensor shaped like ``p``. Evaluated as ``s/(1-s) * expm1((n-1) log(1 - w^2))`` with
        ``s = P(b = 0)`` and ``w = s^(-1/(n-1)) - 1``, which keeps full relative accuracy for ``p``
        near 0 or 1 and for large ``n``. 0 at ``p`` in ``{0, 1}`` (the limit); NaN outside ``[0, 1]``.
    """
    _check_n("dirichlet_rho", n)
    if mode not in _DIRICHLET_MODES:
        raise ValueError(f"gradkern.copulas.dirichlet_rho: mode must be one of "
                         f"{', '.join(repr(m) for m in _DIRICHLET_MODES)}, got {mode!r}")
    p = torch.as_tensor(p, dtype=p.dtype if isinstance(p, torch.Tensor) else torch.get_default_dtype())
    return _ops.dirichlet_copula_rho(p, n, mode)


def gaussian_rho(p, n):
    r"""Common pairwise correlation of ``b_i = 1[u_i < p]`` under the antithetic Gaussian copula:
    ``(Phi2(h, h; -1/(n-1)) - p^2) / (p (1 - p))`` with ``h = Phi^-1(p)``.

    Computed from the cancellation-free integral
    ``-exp(-h^2) / (2 pi p (1-p)) * int_0^{1/(n-2)} exp(-h^2 s) / ((1 + s) sqrt(1 + 2 s)) ds``
    (Gauss-Legendre), so it keeps relative accuracy for large ``n`` and for ``p`` near 0 or 1; float
    inputs are evaluated in double. ``n = 2`` gives ``-min(p, 1-p) / max(p, 1-p)`` (the pair
    ``(u, 1 - u)``). Symmetric: ``rho(p) = rho(1 - p)``. 0 at ``p`` in ``{0, 1}``.
    """
    _check_n("gaussian_rho", n)
    p = torch.as_tensor(p, dtype=p.dtype if isinstance(p, torch.Tensor) else torch.get_default_dtype())
    return _ops.gaussian_copula_rho(p, n)


def bivariate_normal_cdf(h, k, r):
    r"""``P(X < h, Y < k)`` for standard normals with correlation ``r`` (broadcasting, same dtype).

    Drezner-Wesolowsky / Genz integral with 20-point Gauss-Legendre for ``|r| < 0.925`` and
    Plackett's identity integrated down from ``|r| = 1`` above; absolute error ~1e-16 in float64.
    Differentiable in ``h``, ``k`` and ``r``. NaN for ``|r| > 1``.
    """
    tensors = [x for x in (h, k, r) if isinstance(x, torch.Tensor)]
    ref = tensors[0] if tensors else torch.empty((), dtype=torch.get_default_dtype())
    h, k, r = (x if isinstance(x, torch.Tensor) else torch.tensor(x, dtype=ref.dtype, device=ref.device)
               for x in (h, k, r))
    return _ops.bivariate_normal_cdf(h, k, r)
