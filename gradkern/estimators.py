r"""Unbiased multi-sample gradient estimators for factorised Bernoulli expectations.

Objective: ``E(phi) = E_{b ~ Bern(sigmoid(phi))}[f(b)]`` for logits ``phi`` of any shape ``(*B, m)``.
Every estimator calls ``f`` once, on a tensor of samples of shape ``(n, *phi.shape)`` holding 0. and 1.
in ``phi``'s dtype, and expects values of shape ``(n,) + S`` where ``S`` is a prefix of ``phi.shape``:

* ``(n,)``: one objective for the whole sample (e.g. a loss summed over a minibatch);
* ``(n, *B)``: one objective per batch element, each reading only its own ``b[i, *idx, :]``;
* ``(n, *phi.shape)``: one objective per Bernoulli variable.

Each estimator has two forms:

* ``<name>(logits, f, n, ...)`` returns the gradient estimate of ``d/dphi sum_S E[f]``, shaped like
  ``logits`` (no autograd involved);
* ``<name>_surrogate(logits, f, n, ...)`` returns a scalar whose value is the Monte Carlo estimate of
  ``sum_S E[f]`` and whose ``.backward()`` puts the estimate into ``logits.grad``, while gradients
  of ``f``'s own parameters (and any direct dependence of ``f`` on ``logits``) flow as usual.

Estimators (Dimitriev & Zhou 2021 unless noted; ``p = sigmoid(phi)``, ``Fbar`` the mean of the ``F_i``):

* :func:`arms`: eq. 7 / section 3.2, ``1/(n-1) sum_i (F_i - Fbar) (b_i - p) / (1 - rho)`` with ``b``
  from an antithetic copula (``"dirichlet"``: ARMS-D, ``"gaussian"``: ARMS-N, ``"independent"``: LOORF);
* :func:`loorf`: eq. 2 (Salimans & Knowles 2014; Kool et al. 2019), i.e. ARMS with independent samples;
* :func:`disarm`: DisARM / U2G (Dong et al. 2020; Yin et al. 2020), ``n/2`` antithetic pairs,
  ``1/2 (F - F') (b - b') max(p, 1-p)`` averaged over pairs; sample for sample equal to ARMS-D at n = 2;
* :func:`arm`: ARM (Yin & Zhou 2019), ``(F(1[u < p]) - F(1[u > 1-p])) (1/2 - u)`` averaged over pairs;
* :func:`arms_msb` / :func:`loorf_msb`: section 3.3, the gradient of the multi-sample bound
  ``E[log mean_k r(b_k)]`` from ``n`` i.i.d. plus ``n`` correlated samples (``2n`` evaluations of
  ``log r``), with an ARMS (or LOORF) baseline per sample ``k``.
"""
import math

import torch

from . import copulas

__all__ = ["arms", "arms_surrogate", "loorf", "loorf_surrogate", "disarm", "disarm_surrogate",
           "arm", "arm_surrogate", "arms_msb", "arms_msb_surrogate", "loorf_msb", "loorf_msb_surrogate",
           "sample_bernoulli", "arms_from_samples", "disarm_from_samples"]

COPULAS = ("dirichlet", "gaussian", "independent")


def _check(fn, logits, n, copula=None, even=False):
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        raise TypeError(f"gradkern.estimators.{fn}: logits must be a floating point Tensor, got "
                        f"{type(logits).__name__ if not isinstance(logits, torch.Tensor) else logits.dtype}")
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"gradkern.estimators.{fn}: n must be an int, got {type(n).__name__}")
    if n < 2:
        raise ValueError(f"gradkern.estimators.{fn}: n (the number of samples) must be >= 2, got {n}")
    if even and n % 2:
        raise ValueError(f"gradkern.estimators.{fn}: n must be even (the estimator uses n/2 antithetic pairs), "
                         f"got {n}")
    if copula is not None and copula not in COPULAS:
        raise ValueError(f"gradkern.estimators.{fn}: copula must be one of {COPULAS}, got {copula!r}")


def sample_bernoulli(logits, n, copula="dirichlet", generator=None):
    r"""``n`` Bernoulli(sigmoid(logits)) samples, mutually antithetic along dim 0, and their pairwise
    correlation.

    Returns ``(b, rho)``: ``b`` of shape ``(n, *logits.shape)`` (0./1. in ``logits.dtype``; every
    ``b[i]`` has exactly the Bernoulli(sigmoid(logits)) marginal) and ``rho`` shaped like ``logits``
    (``Corr(b[i], b[j])`` for ``i != j``). Both are detached.

    For the Dirichlet copula the bit is thresholded on ``u`` where ``p >= 1/2`` and on ``1 - u`` below
    (section 3.1.1). The flip is done on the bit, ``b = 1[u < q]`` xor ``(phi < 0)`` with
    ``q = sigmoid(|phi|)``, which is the same event as ``1[1 - u < p]`` without rounding ``1 - u`` or
    ``1 - p``.
    """
    out_dtype = logits.dtype
    lg = logits.detach()
    if lg.dtype not in (torch.float32, torch.float64):  # half / bfloat16: sample in float32
        lg = lg.float()
    p = torch.sigmoid(lg)
    if copula == "independent":
        u = torch.rand((n, *lg.shape), generator=generator, dtype=lg.dtype, device=lg.device)
        return (u < p).to(out_dtype), torch.zeros_like(p, dtype=out_dtype)
    if copula == "dirichlet":
        u = torch.ops.gradkern.dirichlet_copula(lg, n, generator)
        c = u < torch.sigmoid(lg.abs())
        b = torch.where(lg >= 0, c, ~c)
        return b.to(out_dtype), copulas.dirichlet_rho(p, n, "oriented").to(out_dtype)
    if copula == "gaussian":
        u = torch.ops.gradkern.gaussian_copula(lg, n, generator)
        return (u < p).to(out_dtype), copulas.gaussian_rho(p, n).to(out_dtype)
    raise ValueError(f"gradkern.estimators.sample_bernoulli: copula must be one of {COPULAS}, got {copula!r}")


def _evaluate(fn, f, b, logits):
    """Call f once and view its values (n,) + S so they broadcast against (n, *logits.shape)."""
    values = f(b)
    n = b.shape[0]
    if not isinstance(values, torch.Tensor):
        raise TypeError(f"gradkern.estimators.{fn}: f must return a Tensor, got {type(values).__name__}")
    shape = tuple(logits.shape)
    s = tuple(values.shape[1:])
    if values.dim() == 0 or values.shape[0] != n or shape[:len(s)] != s:
        raise ValueError(
            f"gradkern.estimators.{fn}: f must return values of shape (n,) + S with S a prefix of logits.shape "
            f"{shape} (n = {n}), got {tuple(values.shape)}")
    return values.reshape((n, *s) + (1,) * (len(shape) - len(s)))


def arms_from_samples(values, b, logits, rho):
    r"""Eq. 7: ``1/(n-1) sum_i (F_i - Fbar) (b_i - p) / (1 - rho)`` from given samples and values.

    ``values``: ``(n, ...)`` broadcastable to ``b``'s shape ``(n, *logits.shape)``; ``rho`` broadcastable
    to ``logits``. With ``rho = 0`` this is LOORF (eq. 2).
    """
    n = b.shape[0]
    values = values.detach()
    centred = values - values.mean(0, keepdim=True)
    p = torch.sigmoid(logits.detach())
    return (centred * (b - p)).sum(0) / ((n - 1) * (1 - rho))


def disarm_from_samples(values, b, logits):
    r"""DisARM / U2G: ``1/2 (F - F') (b - b') max(p, 1 - p)``, averaged over the pairs
    ``(b[k], b[k + n/2])``."""
    half = b.shape[0] // 2
    values = values.detach()
    q = torch.sigmoid(logits.detach().abs())  # max(p, 1 - p)
    return (0.5 * (values[:half] - values[half:]) * (b[:half] - b[half:])).mean(0) * q


def _arms(fn, logits, f, n, copula, generator):
    _check(fn, logits, n, copula)
    b, rho = sample_bernoulli(logits, n, copula, generator)
    values = _evaluate(fn, f, b, logits)
    return arms_from_samples(values, b, logits, rho).to(logits.dtype), values


def _disarm(fn, logits, f, n, generator):
    _check(fn, logits, n, even=True)
    half = n // 2
    # n/2 independent antithetic pairs; the pair is drawn by the Dirichlet copula with n = 2 (d, 1 - d),
    # so that DisARM and ARMS-D at n = 2 see the same samples for the same generator state.
    lg = logits.detach()
    pairs, _ = sample_bernoulli(lg.expand(half, *lg.shape), 2, "dirichlet", generator)
    b = pairs.reshape(n, *lg.shape)
    values = _evaluate(fn, f, b, logits)
    return disarm_from_samples(values, b, logits).to(logits.dtype), values


def _arm(fn, logits, f, n, generator):
    _check(fn, logits, n, even=True)
    half = n // 2
    lg = logits.detach()
    p = torch.sigmoid(lg)
    u = torch.rand((half, *lg.shape), generator=generator, dtype=lg.dtype, device=lg.device)
    b = torch.cat([(u < p), (u > 1 - p)]).to(lg.dtype)
    values = _evaluate(fn, f, b, logits)
    vd = values.detach()
    grad = ((vd[:half] - vd[half:]) * (0.5 - u)).mean(0)
    return grad.to(logits.dtype), values


def _msb(fn, logits, log_r, n, copula, generator):
    _check(fn, logits, n, copula)
    lg = logits.detach()
    iid, _ = sample_bernoulli(lg, n, "independent", generator)
    corr, rho = sample_bernoulli(lg, n, copula, generator)
    values = _evaluate(fn, log_r, torch.cat([iid, corr]), logits)  # (2n, S..., 1...)
    lr, lt = values[:n], values[n:].detach()
    lrd = lr.detach()
    log_n = math.log(n)
    bound = torch.logsumexp(lr, 0) - log_n
    # log sum_{l != k} r(b_l) for every k: an (n, n) table with the diagonal removed.
    eye = torch.eye(n, dtype=torch.bool, device=lg.device).reshape((n, n) + (1,) * (lrd.dim() - 1))
    loo = torch.logsumexp(lrd.unsqueeze(0).masked_fill(eye, -math.inf), 1)  # (n_k, ...)
    # f_{b_-k}(b~_i) = log((sum_{l != k} r(b_l) + r(b~_i)) / n), table (k, i, ...).
    table = torch.logaddexp(loo.unsqueeze(1), lt.unsqueeze(0)) - log_n
    weights = (table - table.mean(1, keepdim=True)).sum(0)  # sum over k of the centred values, (n_i, ...)
    p = torch.sigmoid(lg)
    grad = (weights * (corr - p)).sum(0) / ((n - 1) * (1 - rho))
    return grad.to(logits.dtype), bound


def _surrogate(grad, objective, logits):
    # Value: the objective estimate. Gradient: `grad` into logits, autograd through the objective for
    # f's parameters (and for any direct use of logits inside f).
    g = grad.detach()
    return objective.sum() + ((g * logits).sum() - (g * logits.detach()).sum())


# --- public API --------------------------------------------------------------------------------------
def arms(logits, f, n, copula="dirichlet", *, generator=None):
    r"""ARMS gradient estimate (eq. 7 / section 3.2): ``n`` evaluations of ``f`` regardless of the
    number of Bernoulli dimensions.

    Args:
        logits (Tensor): ``phi``, shape ``(*B, m)`` (any shape).
        f (callable): batched objective, ``(n, *phi.shape)`` samples to ``(n,) + S`` values (module doc).
        n (int): number of mutually antithetic samples, ``n >= 2``.
        copula (str): ``"dirichlet"`` (ARMS-D), ``"gaussian"`` (ARMS-N) or ``"independent"`` (LOORF).
        generator (torch.Generator, optional).

    Returns:
        Tensor shaped like ``logits``: an unbiased estimate of ``d/dphi sum_S E[f(b)]``.
    """
    return _arms("arms", logits, f, n, copula, generator)[0]


def arms_surrogate(logits, f, n, copula="dirichlet", *, generator=None):
    """Surrogate-loss form of :func:`arms` (value: mean of ``f`` over the samples, summed over ``S``)."""
    grad, values = _arms("arms_surrogate", logits, f, n, copula, generator)
    return _surrogate(grad, values.mean(0), logits)


def loorf(logits, f, n, *, generator=None):
    r"""LOORF (eq. 2): ``1/(n-1) sum_i (F_i - Fbar) (b_i - p)`` with ``n`` independent samples."""
    return _arms("loorf", logits, f, n, "independent", generator)[0]


def loorf_surrogate(logits, f, n, *, generator=None):
    """Surrogate-loss form of :func:`loorf`."""
    grad, values = _arms("loorf_surrogate", logits, f, n, "independent", generator)
    return _surrogate(grad, values.mean(0), logits)


def disarm(logits, f, n=2, *, generator=None):
    r"""DisARM / U2G with ``n/2`` antithetic pairs (``n`` even): ``1/2 (F - F') (b - b') max(p, 1-p)``
    averaged over the pairs. Equal to ARMS-D sample for sample when ``n = 2``."""
    return _disarm("disarm", logits, f, n, generator)[0]


def disarm_surrogate(logits, f, n=2, *, generator=None):
    """Surrogate-loss form of :func:`disarm`."""
    grad, values = _disarm("disarm_surrogate", logits, f, n, generator)
    return _surrogate(grad, values.mean(0), logits)


def arm(logits, f, n=2, *, generator=None):
    r"""ARM (Yin & Zhou 2019) with ``n/2`` antithetic pairs: ``(F(1[u < p]) - F(1[u > 1-p])) (1/2 - u)``,
    for reference (DisARM is its Rao-Blackwellisation)."""
    return _arm("arm", logits, f, n, generator)[0]


def arm_surrogate(logits, f, n=2, *, generator=None):
    """Surrogate-loss form of :func:`arm`."""
    grad, values = _arm("arm_surrogate", logits, f, n, generator)
    return _surrogate(grad, values.mean(0), logits)


def arms_msb(logits, log_r, n, copula="dirichlet", *, generator=None):
    r"""ARMS for the multi-sample bound (section 3.3): the score-function part of
    ``d/dphi E[log (1/n) sum_k r(b_k)]``, ``b_k`` i.i.d.

    ``log_r`` is called once on ``2n`` samples (``n`` i.i.d., then ``n`` from the copula) and returns
    ``log r(b) = log p(x, b) - log q(b | x)`` with shape ``(2n,) + S``. For every ``k`` the i.i.d.
    ``b_k`` is replaced by each correlated ``b~_i`` inside the bound,
    ``f_{-k}(b~_i) = log((sum_{l != k} r(b_l) + r(b~_i)) / n)``, and
    ``grad = sum_k 1/(n-1) sum_i (f_{-k}(b~_i) - mean_j f_{-k}(b~_j)) (b~_i - p) / (1 - rho)``.
    The pathwise part (``log_r``'s own dependence on ``logits`` and its parameters) comes from
    :func:`arms_msb_surrogate`.
    """
    return _msb("arms_msb", logits, log_r, n, copula, generator)[0]


def arms_msb_surrogate(logits, log_r, n, copula="dirichlet", *, generator=None):
    """Surrogate-loss form of :func:`arms_msb`; value: the ``n``-sample bound from the i.i.d. samples."""
    grad, bound = _msb("arms_msb_surrogate", logits, log_r, n, copula, generator)
    return _surrogate(grad, bound, logits)


def loorf_msb(logits, log_r, n, *, generator=None):
    """:func:`arms_msb` with independent correlated-set samples (``rho = 0``)."""
    return _msb("loorf_msb", logits, log_r, n, "independent", generator)[0]


def loorf_msb_surrogate(logits, log_r, n, *, generator=None):
    """Surrogate-loss form of :func:`loorf_msb`."""
    grad, bound = _msb("loorf_msb_surrogate", logits, log_r, n, "independent", generator)
    return _surrogate(grad, bound, logits)
