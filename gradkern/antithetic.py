r"""Differentiable antithetic sampling of Gaussians (Wu, Goodman & Ermon, AISTATS 2019), with an exact
chi-square reflection of the sample spread.

For :math:`x_1..x_k` i.i.d. :math:`N(\mu, \sigma^2)` the sample mean :math:`\eta`, the scaled sample
variance :math:`S = (k-1)\delta^2/\sigma^2 \sim \chi^2_{k-1}` (:math:`\delta` the unbiased sample std) and
the direction of :math:`x - \eta\mathbf{1}` are independent, and any triple with those three laws
reassembles into an i.i.d. :math:`N(\mu, \sigma^2)` sample. The antithetic set keeps the laws but
reflects the first two:

.. math::
    \eta_a = 2\mu - \eta, \qquad S_a = F^{-1}(1 - F(S)), \qquad
    \delta_a = \sigma \sqrt{S_a / (k-1)},

with :math:`F` the :math:`\chi^2_{k-1}` CDF and a fresh uniformly random direction, so every antithetic
sample is marginally exactly :math:`N(\mu, \sigma^2)` while the two sets are negatively correlated in
mean and spread. Marsaglia's construction or Cheng's inverse Helmert transform turn
:math:`(\eta_a, \delta_a)` and the direction into :math:`k` values with exactly that sample mean and
sample std. Everything is a smooth function of :math:`(\mu, \sigma)` given the noise, so pathwise
gradients flow through autograd.

Public functions:

* :func:`normal_rsample` -- ``(2k, *batch)`` samples: ``k`` i.i.d., then ``k`` antithetic.
* :func:`reflect_moments` -- building block 1: ``(eta_a, delta_a)`` from ``k`` i.i.d. samples.
* :func:`antithetic_from_moments` -- building block 2: ``k`` samples with a prescribed sample mean
  and sample std.
* :func:`chi2_reflect` -- the quantile reflection :math:`S \mapsto F^{-1}(1 - F(S))` (or its
  Hawkins-Wixley approximation), differentiable in ``S``.

Every step is a ``torch.ops.gradkern`` op over the numerical core (csrc/core/antithetic.h, CPU and CUDA
kernels): ``antithetic_reflection_table`` tabulates the exact reflection once per ``k``,
``chi2_reflect`` applies it elementwise, ``antithetic_construction`` builds the values with unit sample
std along a direction, and ``antithetic_normal_standardized`` fuses all of it for :func:`normal_rsample`
(one pass per row: mean, spread, reflection, construction). The pathwise gradients w.r.t. the location
and scale flow through plain torch arithmetic around the ops. An eager reference of the same math lives
in tests/antithetic_reference.py, the oracle the tests compare the ops with.
"""
import operator
from numbers import Number

import torch

from ._promote import promote2
from ._utils import as_float_tensor

_ops = torch.ops.gradkern

__all__ = ["normal_rsample", "reflect_moments", "antithetic_from_moments", "chi2_reflect",
           "METHODS", "REFLECTIONS"]

METHODS = ("marsaglia", "cheng")
REFLECTIONS = ("exact", "hawkins-wixley")


# --- argument checks ---------------------------------------------------------------------------------
def _check_k(fn, k):
    if isinstance(k, (bool, float)) or not hasattr(k, "__index__"):
        raise TypeError(f"gradkern.antithetic.{fn}: k must be an integer >= 2, got {type(k).__name__} {k!r}")
    try:
        k = operator.index(k)
    except TypeError:
        raise TypeError(f"gradkern.antithetic.{fn}: k must be an integer >= 2, got {k!r}") from None
    if k < 2:
        raise ValueError(f"gradkern.antithetic.{fn}: k must be an integer >= 2 (the sample std of fewer "
                         f"than 2 values is undefined), got k={k}")
    return k


def _check_choice(fn, name, value, choices):
    if value not in choices:
        raise ValueError(f"gradkern.antithetic.{fn}: {name} must be one of "
                         f"{', '.join(repr(c) for c in choices)}; got {value!r}")


def _as_float_tensor(fn, name, value, like=None):
    return as_float_tensor(f"antithetic.{fn}", name, value, like)


def _as_pair(fn, name_a, a, name_b, b):
    # torch's type promotion (gradkern._promote): numbers take the tensor's dtype, float32 with float64
    # gives float64.
    a, b = promote2(f"antithetic.{fn}", name_a, a, name_b, b)
    if a.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"gradkern.antithetic.{fn}: {name_a} and {name_b} must be float32 or float64, got {a.dtype}")
    return a, b


def _validate_positive(fn, name, value, validate_args):
    if validate_args is None:
        validate_args = torch.distributions.Distribution._validate_args
    if validate_args and not bool((value > 0).all()):
        raise ValueError(f"gradkern.antithetic.{fn}: {name} must be > 0 everywhere "
                         f"(min {value.detach().min().item():.6g}); pass validate_args=False to skip this check")


# --- chi-square quantile reflection ----------------------------------------------------------------
# The reflection is one fixed smooth monotone map per df, v(u) = log S_a as a function of u = log S:
# the op antithetic_reflection_table tabulates it (exact values and derivatives from the direct path,
# cubic Hermite, the chi2 quantiles 1e-7 .. 1 - 1e-7 of S; csrc/core/antithetic.h) and the reflection
# ops read it. One table per (df, device), cached here.
_TABLE_NODES = 4096
_TABLE_TAIL = 1e-7
_TABLES = {}


def _reflection_table(a, device):
    """(u_lo, u_hi, coef) of the reflection table for Gamma(a, 1), i.e. chi2 with 2a degrees of freedom;
    coef on ``device``."""
    key = (a, str(device))
    tab = _TABLES.get(key)
    if tab is None:
        if len(_TABLES) >= 256:  # 64 KiB each; a long-running process sweeping k should not grow forever
            _TABLES.clear()
        coef, bounds = _ops.antithetic_reflection_table(a, _TABLE_NODES, _TABLE_TAIL)
        u_lo, u_hi = bounds.tolist()
        tab = (u_lo, u_hi, coef.to(device))
        _TABLES[key] = tab
    return tab


_EMPTY_TABLES = {}


def _table_args(df, reflection, device):
    """The (table, u_lo, u_hi) arguments of the reflection ops; Hawkins-Wixley reads no table."""
    if reflection == "exact":
        u_lo, u_hi, table = _reflection_table(0.5 * df, device)
        return table, u_lo, u_hi
    key = str(device)
    if key not in _EMPTY_TABLES:
        _EMPTY_TABLES[key] = torch.empty((0, 4), dtype=torch.float64, device=device)
    return _EMPTY_TABLES[key], 0.0, 1.0


def _hawkins_wixley_reflect(s, df):
    # (S/d)^(1/4) ~ N(m, v) approximately (Hawkins & Wixley 1986); reflect the fourth root about m.
    # This is the reference code's reflection: E[S_a] is ~1% off d and S_a is not chi2_d.
    m = 1 - 3 / (16 * df) - 7 / (512 * df ** 2) + 231 / (8192 * df ** 3)
    return df * (2 * m - (s / df) ** 0.25) ** 4


def chi2_reflect(s, df, reflection="exact"):
    r"""Antithetic reflection of a :math:`\chi^2_{df}` variate: :math:`S_a = F^{-1}(1 - F(S))`.

    With ``reflection="exact"``, :math:`F(s) = P(df/2, s/2)` (regularized lower incomplete gamma) and
    :math:`1 - F(S) = Q(df/2, S/2)` is formed directly, never by subtraction; the inverse uses
    :func:`gradkern.gammaincinv` on the side where it is well conditioned and Newton polishing on
    :math:`\log Q` in the far upper tail. Because ``df`` is one number per call, the map
    :math:`\log S \mapsto \log S_a` is tabulated once per ``(df, device)`` from that direct path (4096
    nodes with exact derivatives, cubic Hermite) and evaluated from the table: as is in float32 (error
    below float32 rounding), with one Newton step on :math:`P(df/2, S_a/2) = Q(df/2, S/2)` in float64
    (a few ulp); :math:`S` outside the chi2 quantiles 1e-7 .. 1 - 1e-7 takes the direct path in float64.
    So :math:`S_a` is accurate to working precision for every :math:`S`, and
    :math:`S_a \sim \chi^2_{df}` exactly when :math:`S` is. The gradient is
    :math:`dS_a/dS = -f(S)/f(S_a)` (:math:`f` the chi2 density), formed in log space.

    With ``reflection="hawkins-wixley"``, the approximation of the 2019 reference code:
    :math:`S_a = d\,(2m - (S/d)^{1/4})^4`, :math:`m = 1 - 3/(16d) - 7/(512d^2) + 231/(8192d^3)`,
    :math:`d = df` (about 1% bias in :math:`E[S_a]`; kept for comparison).

    Args:
        s (Tensor): chi-square variates, ``s >= 0``, any shape, float32 or float64.
        df (int or float): degrees of freedom (``k - 1`` for a sample of ``k``), ``df > 0``.
        reflection (str): ``"exact"`` or ``"hawkins-wixley"``.

    Returns:
        Tensor like ``s``: the reflected variates, differentiable w.r.t. ``s``.
    """
    _check_choice("chi2_reflect", "reflection", reflection, REFLECTIONS)
    if not isinstance(s, torch.Tensor) or not s.is_floating_point():
        raise TypeError("gradkern.antithetic.chi2_reflect: s must be a floating point tensor")
    if isinstance(df, bool) or not isinstance(df, Number) or not df > 0:
        raise ValueError(f"gradkern.antithetic.chi2_reflect: df must be a positive number, got {df!r}")
    if reflection == "hawkins-wixley":
        return _hawkins_wixley_reflect(s, float(df))
    return _ops.chi2_reflect(s, float(df), *_table_args(float(df), reflection, s.device), reflection)


# --- building block 1: reflected moments -------------------------------------------------------------
def reflect_moments(samples, loc, scale, reflection="exact"):
    r"""Reflected sample mean and sample std of ``k`` i.i.d. :math:`N(\mu, \sigma^2)` samples.

    .. math::
        \eta = \tfrac1k \sum_i x_i,\quad \delta^2 = \tfrac{1}{k-1}\sum_i (x_i - \eta)^2,\quad
        S = (k-1)\,\delta^2 / \sigma^2,

        \eta_a = 2\mu - \eta,\qquad S_a = \mathrm{chi2\_reflect}(S, k-1),\qquad
        \delta_a = \sigma \sqrt{S_a / (k-1)}.

    Args:
        samples (Tensor): shape ``(k, *batch)``, ``k >= 2``, the i.i.d. samples along dim 0.
        loc (Tensor or float): :math:`\mu`, broadcastable to ``batch``.
        scale (Tensor or float): :math:`\sigma > 0`, broadcastable to ``batch``.
        reflection (str): ``"exact"`` (default) or ``"hawkins-wixley"``; see :func:`chi2_reflect`.

    Returns:
        ``(eta_a, delta_a)``, two tensors of shape ``broadcast(batch, loc, scale)``, differentiable
        w.r.t. ``samples``, ``loc`` and ``scale``. Feed them to :func:`antithetic_from_moments`.
    """
    _check_choice("reflect_moments", "reflection", reflection, REFLECTIONS)
    if not isinstance(samples, torch.Tensor) or not samples.is_floating_point() or samples.dim() < 1:
        raise TypeError("gradkern.antithetic.reflect_moments: samples must be a floating point tensor of "
                        "shape (k, *batch)")
    k = _check_k("reflect_moments", samples.shape[0])
    loc = _as_float_tensor("reflect_moments", "loc", loc, like=samples)
    scale = _as_float_tensor("reflect_moments", "scale", scale, like=samples)
    eta = samples.mean(0)
    s = ((samples - eta) ** 2).sum(0) / scale ** 2  # (k-1) delta^2 / sigma^2, delta the unbiased std
    s_a = chi2_reflect(s, k - 1, reflection)
    return 2 * loc - eta, scale * torch.sqrt(s_a / (k - 1))


# --- building block 2: samples with prescribed sample mean and std ------------------------------------
def antithetic_from_moments(mean, std, k, method="marsaglia", generator=None, noise=None):
    r"""``k`` values with sample mean exactly ``mean`` and unbiased sample std exactly ``std``, along a
    fresh uniformly random direction.

    Marsaglia (``method="marsaglia"``): with :math:`z \in \mathbb{R}^{k-1}` i.i.d. N(0, 1),
    :math:`s = |z|^2`, :math:`r = \delta\sqrt{k-1}`, :math:`w_i = z_i / \sqrt{(k-i)(k-i+1)s}`,
    :math:`t(i) = \sum_{j \le i} w_j`:

    .. math::
        x_1 = a + (1-k)\,r\,w_1,\quad x_i = a + r\,(t(i-1) + (i-k)\,w_i)\ (2 \le i \le k-1),\quad
        x_k = a + r\,t(k-1).

    Cheng (``method="cheng"``, inverse Helmert transform): :math:`y_j = \delta\sqrt{k-1}\,z_j/|z|`,
    :math:`j = 2..k`:

    .. math::
        x_1 = a - \tfrac{\sqrt{k(k-1)}}{k} y_2,\quad
        x_j = x_{j-1} + \frac{\sqrt{k+2-j}\,y_j - \sqrt{k-j}\,y_{j+1}}{\sqrt{k+1-j}}\ (2 \le j \le k-1),
        \quad x_k = x_{k-1} + \sqrt2\,y_k.

    Both are linear in ``(mean, std)`` given the direction, so location-scale equivariant, and
    differentiable w.r.t. ``mean`` and ``std``. If ``mean``/``std`` are the output of
    :func:`reflect_moments` with the exact reflection, each value is marginally exactly
    :math:`N(\mu, \sigma^2)`.

    Args:
        mean (Tensor or float): target sample mean :math:`a`, shape ``batch``.
        std (Tensor or float): target sample std :math:`\delta \ge 0`, broadcastable with ``mean``.
        k (int): number of values, ``k >= 2``.
        method (str): ``"marsaglia"`` (default) or ``"cheng"``.
        generator (torch.Generator, optional): source of the direction ``z``.
        noise (Tensor, optional): the direction itself, shape ``(k-1, *batch)`` of i.i.d. N(0, 1)
            (instead of drawing it); for reproducible tests and common random numbers.

    Returns:
        Tensor of shape ``(k, *broadcast(mean, std).shape)``.
    """
    k = _check_k("antithetic_from_moments", k)
    _check_choice("antithetic_from_moments", "method", method, METHODS)
    mean, std = _as_pair("antithetic_from_moments", "mean", mean, "std", std)
    batch = torch.broadcast_shapes(mean.shape, std.shape)
    if noise is None:
        z = torch.randn((k - 1,) + batch, dtype=mean.dtype, device=mean.device, generator=generator)
    else:
        if tuple(noise.shape) != (k - 1,) + tuple(batch):
            raise ValueError(f"gradkern.antithetic.antithetic_from_moments: noise must have shape "
                             f"(k-1, *batch) = {(k - 1,) + tuple(batch)}, got {tuple(noise.shape)}")
        z = noise
    # The op gives unit sample std and zero mean along z; both constructions are linear in (mean, std)
    # given z, so the pathwise gradients flow through this addcmul.
    return torch.addcmul(mean, std, _ops.antithetic_construction(z, method))


# --- the sampler ---------------------------------------------------------------------------------------
def normal_rsample(loc, scale, k, method="marsaglia", reflection="exact", generator=None,
                   validate_args=None):
    r"""``k`` i.i.d. reparameterized samples of :math:`N(\mu, \sigma^2)` followed by ``k`` antithetic ones.

    Rows ``0..k-1``: :math:`x_i = \mu + \sigma\epsilon_i`, :math:`\epsilon_i` i.i.d. N(0, 1). Rows
    ``k..2k-1``: the antithetic set, with sample mean :math:`2\mu - \eta` and sample std
    :math:`\delta_a = \sigma\sqrt{S_a/(k-1)}` (:func:`reflect_moments`), built by ``method`` from a fresh
    direction (:func:`antithetic_from_moments`). With ``reflection="exact"`` every row is marginally
    exactly :math:`N(\mu, \sigma^2)`; the two halves are negatively correlated, which lowers the
    variance of Monte Carlo averages over all ``2k`` rows for monotone integrands.

    All randomness is drawn in standardized form, :math:`\epsilon` and the antithetic
    :math:`\epsilon_a` (the construction applied to :math:`(-\bar\epsilon, \sqrt{S_a/(k-1)})`), and the
    output is :math:`\mu + \sigma\,[\epsilon; \epsilon_a]`; by the equivariance of the constructions this
    equals applying them to :math:`(\eta_a, \delta_a)` directly, and the pathwise gradients are
    :math:`\partial x/\partial\mu = 1`, :math:`\partial x/\partial\sigma = \epsilon` or :math:`\epsilon_a`.

    Cost: one ``torch.randn`` of ``(2k - 1, *batch)`` (with ``generator``), one fused native pass that
    forms :math:`[\epsilon; \epsilon_a]` row by row (the exact reflection read from a table built once per
    ``(k, device)``, Newton-polished in float64), and one ``addcmul``; measured at 1.2-2.5x (forward) and
    1.0-3.0x (forward + backward) the cost of
    ``loc + scale * torch.randn(2k, ...)`` per sample on one CPU thread (README). The result depends only
    on the generator's state, not on the number of threads.

    Args:
        loc (Tensor or float): mean :math:`\mu`, shape ``B1``.
        scale (Tensor or float): standard deviation :math:`\sigma > 0`, shape ``B2`` (broadcast with
            ``B1`` to ``batch``); same dtype and device as ``loc`` (float32 or float64).
        k (int): samples per half, ``k >= 2``.
        method (str): ``"marsaglia"`` (default) or ``"cheng"``.
        reflection (str): ``"exact"`` (default) or ``"hawkins-wixley"`` (the 2019 reference code's
            approximation, biased; for comparison).
        generator (torch.Generator, optional): on the device of ``loc``.
        validate_args (bool, optional): check ``scale > 0`` (a device sync on CUDA); default
            ``torch.distributions.Distribution._validate_args``.

    Returns:
        Tensor of shape ``(2k, *batch)``, differentiable w.r.t. ``loc`` and ``scale``.

    Example::

        >>> loc = torch.zeros(3, requires_grad=True); scale = torch.ones(3, requires_grad=True)
        >>> x = gradkern.antithetic.normal_rsample(loc, scale, k=4)   # (8, 3)
        >>> x.exp().mean(0).sum().backward()
    """
    k = _check_k("normal_rsample", k)
    _check_choice("normal_rsample", "method", method, METHODS)
    _check_choice("normal_rsample", "reflection", reflection, REFLECTIONS)
    loc, scale = _as_pair("normal_rsample", "loc", loc, "scale", scale)
    _validate_positive("normal_rsample", "scale", scale, validate_args)
    batch = torch.broadcast_shapes(loc.shape, scale.shape)
    # One draw for both halves: eps (k rows) and the antithetic direction z (k - 1 rows).
    noise = torch.randn((2 * k - 1,) + batch, dtype=loc.dtype, device=loc.device, generator=generator)
    # The standardized noise does not depend on (loc, scale): no graph for it.
    with torch.no_grad():
        standardized = _standardized_native(noise, method, reflection)
    return torch.addcmul(loc, scale, standardized)  # loc + scale * [eps; eps_a], one pass


def _standardized_native(noise, method, reflection):
    """[eps; eps_a] from noise by the fused op: one pass per row (mean, spread, reflection of the spread
    from the same table as chi2_reflect, antithetic construction)."""
    k = (noise.shape[0] + 1) // 2
    return _ops.antithetic_normal_standardized(noise, *_table_args(k - 1, reflection, noise.device), method,
                                               reflection)


# --- op registrations ------------------------------------------------------------------------------------
@torch.library.register_fake("gradkern::antithetic_normal_standardized")
def _standardized_fake(noise, table, u_lo, u_hi, method="marsaglia", reflection="exact"):
    torch._check(noise.dim() >= 1 and noise.shape[0] >= 3 and noise.shape[0] % 2 == 1,
                 lambda: "gradkern.antithetic_normal_standardized: noise must have shape (2k - 1, *batch)")
    _check_table_device_fake("antithetic_normal_standardized", noise, table, reflection)
    return noise.new_empty((noise.shape[0] + 1, *noise.shape[1:])).contiguous()


@torch.library.register_fake("gradkern::antithetic_construction")
def _construction_fake(z, method="marsaglia"):
    torch._check(z.dim() >= 1 and z.shape[0] >= 1,
                 lambda: "gradkern.antithetic_construction: z must have shape (k - 1, *batch)")
    return z.new_empty((z.shape[0] + 1, *z.shape[1:])).contiguous()


@torch.library.register_fake("gradkern::chi2_reflect")
def _chi2_reflect_fake(s, df, table, u_lo, u_hi, reflection="exact"):
    _check_table_device_fake("chi2_reflect", s, table, reflection)
    return torch.empty_like(s)


def _check_table_device_fake(op, like, table, reflection):
    # As the real kernels (csrc/ops/antithetic.h, check_table): the exact reflection reads the table on
    # the device of the samples; "hawkins-wixley" ignores it.
    if reflection == "exact" and table.device != like.device:
        raise RuntimeError(f"gradkern.{op}: table must be on the device of the samples ({like.device}), "
                           f"got {table.device}")


@torch.library.register_fake("gradkern::antithetic_reflection_table")
def _table_fake(a, nodes=4096, tail=1e-7):
    return (torch.empty((nodes - 1, 4), dtype=torch.float64), torch.empty((2,), dtype=torch.float64))


# The ops map N(0, 1) noise to standardized samples; the pathwise gradients w.r.t. (loc, scale) or
# (mean, std) flow through the addcmul around them, never through the noise. chi2_reflect's derivative
# dS_a/dS = -f(S) / f(S_a) and the autograd of all of them: csrc/autograd.cpp.
