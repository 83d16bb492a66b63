"""Truncated Normal with implicit reparameterization gradients (section 4 of Figurnov et al. 2018): exact in
both tails, differentiable in loc, scale and both bounds."""
import math

import torch
import torch.distributions as td
from torch.distributions import constraints
from torch._functorch import utils as _functorch_utils
from torch.distributions.utils import broadcast_all

from .._implicit import _differentiating, _implicit_steps, _newton_step
from .._utils import check_fake_elementwise
from ._common import DeepcopyMixin, GeneratorSampleMixin

__all__ = ["TruncatedNormal", "Truncated"]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
_ops = torch.ops.gradkern


# --- the fused kernels (csrc/core/truncnorm.h): fake kernels -----------------------------------------------
# truncated_normal_icdf draws the samples (the oriented log-space-safe quantile function, in double);
# truncated_normal_backward is rsample's first-order backward pass in one evaluation. Autograd:
# csrc/autograd.cpp (neither op is differentiated itself: _AttachTruncatedNormal carries the gradients).
def _narrow(p, like):
    # p may be float64 with narrower floating parameters (the kernels read it as double): checked as if it
    # had their dtype.
    if p.dtype == torch.float64 and like.is_floating_point() and like.dtype != torch.float64:
        return p.to(like.dtype)
    return p


def _bounds_ordered(low, high):
    """Whether low < high everywhere, compared once per distinct pair: broadcast (stride-0) dimensions of the
    expanded parameters are narrowed to one entry first (the same values, so the same answer; at 1e6 elements
    with scalar bounds, 0.7 ms less per construction). Tensors without strides (functorch's batched ones)
    are compared whole."""
    def compact(t):
        try:
            for d in range(t.dim()):
                if t.stride(d) == 0 and t.size(d) > 1:
                    t = t.narrow(d, 0, 1)
        except (RuntimeError, NotImplementedError):
            pass
        return t
    return bool((compact(low) < compact(high)).all())


@torch.library.register_fake("gradkern::truncated_normal_icdf")
def _icdf_fake(p, loc, scale, low, high):
    device = check_fake_elementwise((_narrow(p, loc), loc, scale, low, high))
    return loc.new_empty(torch.broadcast_shapes(p.shape, loc.shape, scale.shape, low.shape, high.shape), device=device)


@torch.library.register_fake("gradkern::truncated_normal_backward")
def _backward_fake(grad, z, p, loc, scale, low, high):
    device = check_fake_elementwise((grad, z, _narrow(p, grad), loc, scale, low, high))
    shape = torch.broadcast_shapes(grad.shape, z.shape, p.shape, loc.shape, scale.shape, low.shape, high.shape)
    return tuple(grad.new_empty(shape, device=device) for _ in range(4))


def _log1mexp(x):
    """log(1 - exp(x)) for x <= 0, accurate on both sides of -log 2 (Maechler 2012)."""
    x = torch.clamp(x, max=0.0)
    return torch.where(x > -math.log(2.0), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def _orient(loc, scale, low, high):
    """(alpha', beta', sign): the standardized window of TruncatedNormal, mirrored (sign = -1) when its midpoint
    is above the mean, so that alpha' + beta' <= 0 and the window never sits in the upper tail. The orientation
    is a discrete choice: it takes no gradient."""
    # An infinite bound stays infinite with no gradient path (inf * 0 would give NaN gradients for loc and
    # scale): the double-where keeps the finite branch's inputs finite.
    lo_inf, hi_inf = torch.isinf(low), torch.isinf(high)
    alpha = torch.where(lo_inf, low.detach(), (torch.where(lo_inf, torch.zeros_like(low), low) - loc) / scale)
    beta = torch.where(hi_inf, high.detach(), (torch.where(hi_inf, torch.zeros_like(high), high) - loc) / scale)
    flip = (alpha.detach() + beta.detach()) > 0
    sign = torch.where(flip, -torch.ones_like(alpha), torch.ones_like(alpha))
    return torch.where(flip, -beta, alpha), torch.where(flip, -alpha, beta), sign


def _log_mass(a2, b2):
    """(log Z, a, b, ia, ib, log Phi(a), log Phi(b)): Z = Phi(b2) - Phi(a2) for an oriented window (a2 + b2
    <= 0), a and b the bounds with 0 standing in for an infinite one (ia, ib), which enters analytically
    (see _window_logs)."""
    ia, ib = torch.isinf(a2), torch.isinf(b2)
    a = torch.where(ia, torch.zeros_like(a2), a2)
    b = torch.where(ib, torch.zeros_like(b2), b2)
    la, lb = torch.special.log_ndtr(a), torch.special.log_ndtr(b)
    logZ = torch.where(ib, torch.zeros_like(a), torch.where(ia, lb, lb + _log1mexp(la - lb)))
    return logZ, a, b, ia, ib, la, lb


def _window_logs(x2, a2, b2):
    """(log Z, log F, log(1 - F), a, b, ia, ib) for the oriented window [a2, b2] (a2 + b2 <= 0, so b2 = +inf
    only with a2 = -inf) and a point x2 in it: Z = Phi(b2) - Phi(a2), F = (Phi(x2) - Phi(a2)) / Z, from three
    log_ndtr values (log Phi(b) - log Phi(a) differences by log1mexp: accurate where both are tiny, deep in
    the lower tail). a, b: the bounds with 0 in place of an infinite one (ia, ib). Infinite bounds are used
    analytically (Phi(-inf) = 0, Phi(inf) = 1) and x2 on a bound (F = 0 or 1, log F = -inf) enters the
    logarithms as a stand-in point, so that no inf, -inf or 0 * inf reaches a derivative in any mode
    (log_ndtr's forward-mode rule at -inf is 0 * nan, log1mexp's derivative at 0 is infinite): the double
    where. Differentiable torch ops."""
    logZ, a, b, ia, ib, la, lb = _log_mass(a2, b2)
    at_lo, at_hi = x2.detach() <= a2.detach(), x2.detach() >= b2.detach()
    ln = torch.special.log_ndtr
    xl = torch.where(at_lo, a + 1, x2)  # stand-ins off the bound; their results are masked below
    xh = torch.where(at_hi, torch.where(ib, x2, b) - 1, x2)
    lxl, lxh = ln(xl), ln(xh)
    lF = torch.where(ia, lxl, lxl + _log1mexp(la - lxl))
    lF = torch.where(at_lo, torch.full_like(lF, -math.inf), lF - logZ)
    # log(Phi(b) - Phi(x)): with b = inf (the untruncated case) log(1 - Phi(x)), else from log Phi(b)
    l1F = torch.where(ib, _log1mexp(lxh), lb + _log1mexp(lxh - lb))
    l1F = torch.where(at_hi, torch.full_like(l1F, -math.inf), l1F - logZ)
    return logZ, lF, l1F, a, b, ia, ib


def _oriented_grads(x2, a2, b2):
    """(dx'/dalpha', dx'/dbeta', a, b) for x' ~ the standard normal truncated to [alpha', beta'] at a fixed
    value of its CDF (eq. 8 with F = (Phi(x') - Phi(alpha')) / Z):
        dx'/dalpha' = phi(alpha') (1 - F) / phi(x'),   dx'/dbeta' = phi(beta') F / phi(x'),
    in log space (_window_logs; phi ratios as exp((x' - a)(x' + a) / 2)), 0 at an infinite bound. On a bound
    the limits (dx'/dalpha' = 1 at alpha', 0 at beta') come out of the same formulas. Differentiable torch
    ops: the derivatives of the formula are the second derivatives of the sample."""
    _, lF, l1F, a, b, ia, ib = _window_logs(x2, a2, b2)
    da = torch.where(ia, torch.zeros_like(x2), torch.exp(0.5 * (x2 - a) * (x2 + a) + l1F))
    db = torch.where(ib, torch.zeros_like(x2), torch.exp(0.5 * (x2 - b) * (x2 + b) + lF))
    return da, db, a, b


class _AttachTruncatedNormal(torch.autograd.Function):
    """The drawn sample z, unchanged, with the implicit gradients of TruncatedNormal in closed form:
    with x' = sign (z - loc) / scale in the oriented window [alpha', beta'] and D_a, D_b from _oriented_grads,
        dz/d(oriented low) = D_a,  dz/d(oriented high) = D_b,  dz/dloc = 1 - D_a - D_b,
        dz/dscale = sign (x' - D_a alpha' - D_b beta')
    (the sample moves with a common shift or scaling of loc and the bounds: dz/dloc + dz/dlow + dz/dhigh = 1,
    scale dz/dscale + (low - loc) dz/dlow + (high - loc) dz/dhigh = z - loc). p is the probability z was
    drawn at (float64, no gradient). A first-order backward pass takes the fused kernel
    (truncated_normal_backward: F and 1 - F exact from p, no special function); under create_graph, in the
    jvp and under the torch.func transforms the formulas are differentiable torch ops of the saved output,
    so second and higher derivatives come out of autograd exactly (as for the Gamma samplers), and
    torch.func / vmap apply (generated vmap rule). The parameters come unexpanded; their gradients are
    summed to their shapes."""

    generate_vmap_rule = True

    @classmethod
    def apply(cls, *args, **kwargs):
        """torch's Function.apply without its per-call signature binding. With setup_context defined, torch
        binds the arguments to forward's signature on every call (inspect.signature + bind): at 10 elements,
        rsample + backward took 74 us with it and 47 us without, a plain Normal's 22 us (medians of 15
        interleaved rounds in one process, 1 thread).
        rsample passes all six arguments positionally, so the binding changes nothing; under functorch
        transforms or with keyword arguments this defers to torch's apply, unchanged."""
        if kwargs or torch._C._are_functorch_transforms_active():
            return super().apply(*args, **kwargs)
        return super(torch.autograd.Function, cls).apply(*_functorch_utils.unwrap_dead_wrappers(args))

    @staticmethod
    def forward(z, p, loc, scale, low, high):
        return z.clone()

    @staticmethod
    def setup_context(ctx, inputs, output):
        _, p, loc, scale, low, high = inputs
        ctx.save_for_backward(output, p, loc, scale, low, high)
        ctx.save_for_forward(output, p, loc, scale, low, high)

    @staticmethod
    def _partials(z, loc, scale, low, high):
        a2, b2, sign = _orient(loc, scale, low, high)
        x2 = torch.minimum(torch.maximum(sign * (z - loc) / scale, a2), b2)
        da, db, a, b = _oriented_grads(x2, a2, b2)
        flip = sign < 0
        d_low, d_high = torch.where(flip, db, da), torch.where(flip, da, db)
        return 1 - da - db, sign * (x2 - da * a - db * b), d_low, d_high

    @staticmethod
    def backward(ctx, gz):
        z, p, *params = ctx.saved_tensors
        if not torch.is_grad_enabled():
            # A first-order backward pass (no graph of the gradient is being recorded): the fused kernel, one
            # evaluation for all four gradients (in double; p is float64 for every parameter dtype).
            grads = _ops.truncated_normal_backward(gz, z, p, *params)
        else:
            # create_graph / the torch.func transforms: differentiable torch ops, so that second and higher
            # derivatives follow.
            grads = [gz * q for q in _AttachTruncatedNormal._partials(z, *params)]
        out = [None, None]
        for g, q, need in zip(grads, params, ctx.needs_input_grad[2:]):
            out.append((g.sum_to_size(q.shape) if g.shape != q.shape else g) if need else None)
        return tuple(out)

    @staticmethod
    def jvp(ctx, tz, tp, *tangents):
        z, _, *params = ctx.saved_tensors
        parts = _AttachTruncatedNormal._partials(z, *params)
        out = torch.zeros_like(z)
        for q, t in zip(parts, tangents):
            if t is not None:
                out = out + q * t
        return out


class TruncatedNormal(GeneratorSampleMixin, DeepcopyMixin, td.Distribution):
    r"""Normal(loc, scale) truncated to ``[low, high]``, with reparameterized samples.

    Sampling is by the inverse CDF, in log space and oriented so that the window lies in the lower tail
    of the standard normal (a window above the mean is sampled through its mirror image), so windows deep
    in either tail give correctly distributed, finite samples (e.g. ``[8, 9]`` or ``[-40, -39]`` standard
    deviations, where ``Phi`` itself rounds to 1 or underflows). Gradients w.r.t. ``loc``, ``scale``,
    ``low`` and ``high`` are implicit reparameterization gradients (eq. 8 with the truncated CDF,
    :func:`gradkern.implicit_rsample`): :math:`dz/d\theta = -(\partial \hat F/\partial \theta) / \hat q(z)`,
    :math:`\hat F(z) = (\Phi(x) - \Phi(\alpha)) / (\Phi(\beta) - \Phi(\alpha))`. ``low`` may be ``-inf``
    and ``high`` ``+inf``.

    Args:
        loc (Tensor or float): mean of the untruncated Normal.
        scale (Tensor or float): its standard deviation, ``> 0``.
        low, high (Tensor or float): the bounds, ``low < high``. All four broadcast together.
        validate_args (bool, optional): as torch.distributions (raises ValueError for ``low >= high``).
    """

    # +-inf bounds are valid (torch's `real` constraint rejects them): low < high is checked in __init__.
    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    has_rsample = True

    def __init__(self, loc, scale, low, high, validate_args=None):
        self.loc, self.scale, self.low, self.high = broadcast_all(loc, scale, low, high)
        super().__init__(self.loc.shape, validate_args=validate_args)
        if self._validate_args and not _bounds_ordered(self.low, self.high):
            raise ValueError("TruncatedNormal: low must be smaller than high (elementwise)")

    def expand(self, batch_shape, _instance=None):
        """:meth:`torch.distributions.Distribution.expand` for the four parameters."""
        new = self._get_checked_instance(TruncatedNormal, _instance)
        batch_shape = torch.Size(batch_shape)
        for name in ("loc", "scale", "low", "high"):
            setattr(new, name, getattr(self, name).expand(batch_shape))
        super(TruncatedNormal, new).__init__(batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        """The interval ``[low, high]``."""
        return constraints.interval(self.low, self.high)

    # --- standardized, oriented window -------------------------------------------------------------
    def _oriented(self, loc, scale, low, high):
        """(alpha', beta', sign): the standardized window, oriented (see _orient)."""
        return _orient(loc, scale, low, high)

    def _log_cdf_oriented(self, z, loc, scale, low, high):
        """log of the oriented truncated CDF, log((Phi(x') - Phi(alpha')) / (Phi(beta') - Phi(alpha'))),
        x' = sign (z - loc) / scale: monotone in z (decreasing when mirrored), which is all eq. 8 needs."""
        a2, b2, sign = self._oriented(loc, scale, low, high)
        x2 = sign * (z - loc) / scale
        x2 = torch.minimum(torch.maximum(x2, a2), b2)
        return _window_logs(x2, a2, b2)[1]

    def _log_cdf_oriented_dz(self, z, loc, scale, low, high):
        """d/dz of _log_cdf_oriented in closed form, sign phi(x') / (scale (Phi(x') - Phi(alpha'))): the
        density the Newton steps of implicit reparameterization need (cheaper than differentiating the log CDF
        by torch.func.grad; infinite on the window's lower oriented end, where the steps take no gradient)."""
        a2, b2, sign = self._oriented(loc, scale, low, high)
        x2 = torch.minimum(torch.maximum(sign * (z - loc) / scale, a2), b2)
        logZ, lF = _window_logs(x2, a2, b2)[:2]
        return sign / scale * torch.exp(-0.5 * x2 * x2 - _HALF_LOG_2PI - (lF + logZ))

    def _draw(self, u):
        """Samples z = F^-1(u) for probabilities u (float64, for every parameter dtype: the uniforms keep
        their 2^-53 resolution): the fused quantile kernel (truncated_normal_icdf), in double, rounded once to
        the parameters' dtype. It works in the oriented
        window and inverts the smaller tail of the standard normal probability, in log space deep in the
        lower tail; invalid parameters (low >= high, scale <= 0, NaN; possible with validate_args=False)
        give NaN samples, never a finite number."""
        return _ops.truncated_normal_icdf(u, *(t.detach() for t in (self.loc, self.scale, self.low, self.high)))

    def rsample(self, sample_shape=torch.Size(), generator=None):
        """Samples of shape ``sample_shape + batch_shape`` by the log-space inverse CDF (double inside,
        rounded once to the parameters' dtype; for float32 and narrower the normal quantile is the fitted one
        without its final Halley step, 2.4e-8 relative before that rounding), with implicit gradients w.r.t. loc, scale, low and high;
        ``generator`` is passed to the uniform draw."""
        shape = self._extended_shape(sample_shape)
        u = torch.rand(shape, dtype=torch.float64, device=self.loc.device, generator=generator)
        u = u.clamp_(1e-300, 1 - 2 ** -53)  # in place: u is fresh (one allocation less per call)
        with torch.no_grad():
            z = self._draw(u)
        params = (self.loc, self.scale, self.low, self.high)
        if not _differentiating(params):
            return z
        if torch.compiler.is_compiling():
            # Dynamo cannot trace an autograd.Function with a custom jvp (torch 2.13: "Unsupported custom
            # jvp"), so a compiled graph takes the Newton steps of implicit reparameterization on the oriented
            # log CDF instead: torch ops that compile (and fuse), with the same value and derivatives
            # (tests/test_truncated.py compares the two to 1e-9, Hessians included).
            return _implicit_steps(z, self._log_cdf_oriented, params, self._log_cdf_oriented_dz)
        # Eager: the implicit gradients in closed form (_AttachTruncatedNormal), from the fused backward kernel.
        return _AttachTruncatedNormal.apply(z, u, *params)

    def log_prob(self, value):
        """Normal log density minus log(Phi(beta) - Phi(alpha)); -inf outside ``[low, high]``."""
        if self._validate_args:
            self._validate_sample(value)
        a2, b2, _ = self._oriented(self.loc, self.scale, self.low, self.high)
        x = (value - self.loc) / self.scale
        lp = -0.5 * x * x - _HALF_LOG_2PI - torch.log(self.scale) - _log_mass(a2, b2)[0]
        inside = (value >= self.low) & (value <= self.high)
        return torch.where(inside, lp, torch.full_like(lp, -math.inf))

    def cdf(self, value):
        """The truncated CDF (0 below ``low``, 1 above ``high``), from the oriented log CDF."""
        if self._validate_args:
            self._validate_sample(value)
        _, _, sign = self._oriented(self.loc, self.scale, self.low, self.high)
        g = self._log_cdf_oriented(value, self.loc, self.scale, self.low, self.high)
        return torch.where(sign > 0, torch.exp(g), -torch.expm1(g))

    def icdf(self, value):
        """The quantile function: the oriented log-space inverse CDF at ``value`` (float64 inside),
        differentiable in ``value`` and in every parameter."""
        value = torch.as_tensor(value, dtype=self.loc.dtype, device=self.loc.device)
        u = value.detach().to(torch.float64)
        _, _, sign = self._oriented(self.loc.detach(), self.scale.detach(), self.low.detach(), self.high.detach())
        with torch.no_grad():
            z = self._draw(u)
        # Two Newton steps on the oriented log CDF towards the (differentiable) target: the value is the
        # quantile, the derivatives those of the quantile function in value and in every parameter (as for
        # implicit_rsample).
        target = torch.where(sign > 0, torch.log(value), torch.log1p(-value))
        params = (self.loc, self.scale, self.low, self.high)
        dz = self._log_cdf_oriented_dz
        z = _newton_step(z, target, self._log_cdf_oriented, dz, params)
        return _newton_step(z, target, self._log_cdf_oriented, dz, params)

    def _moments(self):
        # In float64: deep in a tail the variance is a difference of terms ~alpha^2 larger than itself.
        loc, scale, low, high = (t.to(torch.float64) for t in (self.loc, self.scale, self.low, self.high))
        a2, b2, sign = self._oriented(loc, scale, low, high)
        logZ, a, b, ia, ib = _log_mass(a2, b2)[:5]
        zero = torch.zeros_like(logZ)
        # phi(alpha') / Z and phi(beta') / Z, 0 at an infinite bound (whose value stays out of the ops)
        pa = torch.where(ia, zero, torch.exp(-0.5 * a * a - _HALF_LOG_2PI - logZ))
        pb = torch.where(ib, zero, torch.exp(-0.5 * b * b - _HALF_LOG_2PI - logZ))
        m2 = pa - pb  # mean of the oriented standardized variable
        ta, tb = a * pa, b * pb
        var2 = 1 + ta - tb - m2 * m2
        return loc + scale * sign * m2, scale * scale * var2

    @property
    def mean(self):
        """loc + scale (phi(alpha) - phi(beta)) / Z, formed in the oriented frame and in float64."""
        return self._moments()[0].to(self.loc.dtype)

    @property
    def variance(self):
        """scale^2 (1 + (alpha phi(alpha) - beta phi(beta)) / Z - ((phi(alpha) - phi(beta)) / Z)^2), in float64."""
        return self._moments()[1].to(self.loc.dtype)


# --- any univariate base ------------------------------------------------------------------------------
_SOLVE_STEPS = 60  # cap of the log-space Newton refinement in Truncated._solve (it stops at convergence)


def _family_cdf(base, value):
    """base.cdf, through gradkern's incomplete gamma / beta for torch's Gamma, Chi2 and Beta (whose own
    cdf is not differentiable in the shape parameters, or missing)."""
    from .._beta import betainc
    from .._special import gammainc

    if isinstance(base, td.Gamma):
        return gammainc(base.concentration, base.rate * value)
    if isinstance(base, td.Beta):
        return betainc(base.concentration1, base.concentration0, value)
    return base.cdf(value)


def _family_icdf(base, p):
    from .._beta import betaincinv
    from .._special import gammaincinv

    if isinstance(base, td.Gamma):
        return gammaincinv(base.concentration, p) / base.rate
    if isinstance(base, td.Beta):
        return betaincinv(base.concentration1, base.concentration0, p)
    return base.icdf(p)


class Truncated(GeneratorSampleMixin, DeepcopyMixin, td.Distribution):
    r"""Any univariate distribution with a ``cdf`` and an ``icdf``, truncated to ``[low, high]``, with
    reparameterized samples (section 4 of Figurnov et al. 2018).

    ``Truncated(Normal(loc, scale), low, high)`` is :class:`TruncatedNormal`. For other bases a sample is
    the inverse CDF of a uniform in the window, oriented to the smaller tail: below the median from the
    CDF, above it from the survival function (computed directly for Gamma, Chi2 and Beta, as the upper
    incomplete gamma / beta; ``1 - cdf`` otherwise), then refined by Newton's method on the log of that
    tail (capped at 60 steps), so that a window deep in a tail (Gamma(1e-3) on ``[1e-30, 1e-20]``,
    Gamma(2) on ``[50, 60]``) gives finite, correctly distributed samples where the plain inverse CDF
    would return ``inf`` or a bound. Gradients w.r.t. every parameter of the base and both bounds are the
    implicit reparameterization gradients of the truncated CDF (:func:`gradkern.implicit_rsample`),
    second order included.

    Args:
        base (Distribution): univariate (``event_shape == ()``), with ``cdf`` and ``icdf`` (torch's Gamma,
            Chi2 and Beta use gradkern's incomplete gamma / beta functions, differentiable in the shape).
        low, high (Tensor or float): the bounds, ``low < high``; broadcast with the base's batch shape.
            ``-inf`` / ``inf`` leave that side open.
    """

    arg_constraints = {}
    has_rsample = True

    def __new__(cls, base=None, low=None, high=None, validate_args=None):
        if cls is Truncated and isinstance(base, td.Normal):
            return TruncatedNormal(base.loc, base.scale, low, high, validate_args=validate_args)
        return super().__new__(cls)

    def __init__(self, base, low, high, validate_args=None):
        if not isinstance(base, td.Distribution) or base.event_shape != torch.Size():
            raise ValueError("gradkern.distributions.Truncated: base must be a univariate torch Distribution "
                             f"(event_shape ()), got {type(base).__name__}")
        if isinstance(base, td.VonMises):
            # Its CDF is measured from loc - pi (a circle, not a line): a window and its gradients w.r.t. loc
            # would be those of another distribution.
            raise ValueError("gradkern.distributions.Truncated: a circular base (VonMises) is not supported")
        like = next((getattr(base, n) for n in base.arg_constraints if isinstance(getattr(base, n, None), torch.Tensor)),
                    None)
        dtype = like.dtype if like is not None else torch.get_default_dtype()
        device = like.device if like is not None else None
        low = torch.as_tensor(low, dtype=dtype, device=device)
        high = torch.as_tensor(high, dtype=dtype, device=device)
        shape = torch.broadcast_shapes(base.batch_shape, low.shape, high.shape)
        self.base = base.expand(shape) if base.batch_shape != shape else base
        self.low, self.high = low.expand(shape), high.expand(shape)
        super().__init__(shape, validate_args=validate_args)
        if self._validate_args and not _bounds_ordered(self.low, self.high):
            raise ValueError("Truncated: low must be smaller than high (elementwise)")

    def expand(self, batch_shape, _instance=None):
        """:meth:`torch.distributions.Distribution.expand`: the base and both bounds expanded."""
        new = self._get_checked_instance(Truncated, _instance)
        batch_shape = torch.Size(batch_shape)
        new.base = self.base.expand(batch_shape)
        new.low, new.high = self.low.expand(batch_shape), self.high.expand(batch_shape)
        super(Truncated, new).__init__(batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        """The interval ``[low, high]``."""
        return constraints.interval(self.low, self.high)

    def _params(self):
        out = [self.low, self.high]
        for name in self.base.arg_constraints:
            t = getattr(self.base, name, None)
            if isinstance(t, torch.Tensor):
                out.append(t)
        return out

    # --- the window in both tails ------------------------------------------------------------------
    def _tails(self, value):
        """(F(value), S(value)) of the base: the CDF and the survival function, each computed directly
        where the family allows (see MixtureSameFamily's survival)."""
        from ._mixture_same_family import survival

        return _family_cdf(self.base, value), survival(self.base, value)

    def _ends(self):
        # F and S at the bounds; an infinite bound is the tail's end (0 or 1) exactly.
        F_lo, S_lo = self._tails(torch.where(torch.isinf(self.low), torch.zeros_like(self.low), self.low))
        F_hi, S_hi = self._tails(torch.where(torch.isinf(self.high), torch.zeros_like(self.high), self.high))
        F_lo = torch.where(torch.isinf(self.low), torch.zeros_like(F_lo), F_lo)
        S_lo = torch.where(torch.isinf(self.low), torch.ones_like(S_lo), S_lo)
        F_hi = torch.where(torch.isinf(self.high), torch.ones_like(F_hi), F_hi)
        S_hi = torch.where(torch.isinf(self.high), torch.zeros_like(S_hi), S_hi)
        # The orientation (a discrete choice, no gradient): the survival side for a window above the median.
        upper = (F_lo.detach() + F_hi.detach()) > 1
        return F_lo, S_lo, F_hi, S_hi, upper

    def _oriented_cdf(self, z):
        """The truncated CDF, (F(z) - F(low)) / Z below the median, -(S(z) - S(high)) / Z above it: the same
        eq.-8 gradient, without the cancellation of 1 - F in the upper tail."""
        F_lo, S_lo, F_hi, S_hi, upper = self._ends()
        F, S = self._tails(z)
        lower_cdf = (F - F_lo) / (F_hi - F_lo)
        upper_cdf = -(S - S_hi) / (S_lo - S_hi)
        return torch.where(upper, upper_cdf, lower_cdf)

    def _solve(self, u):
        """Standard draws for uniforms u (no gradient): the quantile of the window, oriented, refined by
        Newton's method on the log tail."""
        with torch.no_grad():
            F_lo, S_lo, F_hi, S_hi, upper = self._ends()
            p = F_lo + u * (F_hi - F_lo)          # the target CDF (lower side)
            s = S_hi + (1 - u) * (S_lo - S_hi)    # the target survival (upper side)
            z = _family_icdf(self.base, torch.where(upper, 1 - s, p).clamp(0, 1))
            lo, hi = self.low, self.high
            # A start outside the window (an inverse CDF that rounded to a bound or to inf): a point inside.
            mid = torch.where(torch.isfinite(lo) & torch.isfinite(hi), 0.5 * (lo + hi),
                              torch.where(torch.isfinite(lo), lo, hi))
            bad = ~((z >= lo) & (z <= hi))
            z = torch.where(bad, mid, z)
            log_p, log_s = torch.log(p), torch.log(s)
            for _ in range(_SOLVE_STEPS):
                F, S = self._tails(z)
                q = torch.exp(self.base.log_prob(z))
                # Newton on log F(z) = log p (or log S(z) = log s): d log F / dz = q / F, d log S / dz = -q / S.
                step = torch.where(upper, -(torch.log(S) - log_s) * S / q, (torch.log(F) - log_p) * F / q)
                step = torch.where(torch.isfinite(step), step, torch.zeros_like(step))
                new = torch.minimum(torch.maximum(z - step, lo), hi)
                done = (new == z) | ((new - z).abs() <= 1e-15 * z.abs())
                z = new
                if bool(done.all()):
                    break
            return z.detach()  # a constant for the Newton steps of rsample / icdf (no forward-mode tangent)

    def rsample(self, sample_shape=torch.Size(), generator=None):
        """Samples of shape ``sample_shape + batch_shape`` with implicit gradients w.r.t. the base's
        parameters and both bounds; ``generator`` is passed to the uniform draw."""
        shape = self._extended_shape(sample_shape)
        u = torch.rand(shape, dtype=self.low.dtype, device=self.low.device, generator=generator)
        z = self._solve(u)
        valid = self.low < self.high
        z = torch.where(valid, z, torch.full_like(z, math.nan))
        return _implicit_steps(z, lambda z, *p: self._oriented_cdf(z), self._params(), self._density)

    def log_prob(self, value):
        """The base's log density minus the log mass of the window; -inf outside ``[low, high]``."""
        if self._validate_args:
            self._validate_sample(value)
        F_lo, S_lo, F_hi, S_hi, upper = self._ends()
        log_z = torch.log(torch.where(upper, S_lo - S_hi, F_hi - F_lo))
        lp = self.base.log_prob(value) - log_z
        inside = (value >= self.low) & (value <= self.high)
        return torch.where(inside, lp, torch.full_like(lp, -math.inf))

    def cdf(self, value):
        """The truncated CDF: 0 below ``low``, 1 above ``high``."""
        if self._validate_args:
            self._validate_sample(value)
        F_lo, S_lo, F_hi, S_hi, upper = self._ends()
        F, S = self._tails(value)
        out = torch.where(upper, (S_lo - S) / (S_lo - S_hi), (F - F_lo) / (F_hi - F_lo))
        return out.clamp(0, 1)

    def icdf(self, value):
        """The quantile function; differentiable in ``value`` (1 / density) and in every parameter."""
        value = torch.as_tensor(value, dtype=self.low.dtype, device=self.low.device)
        z = self._solve(value.detach().expand(torch.broadcast_shapes(value.shape, self.batch_shape)))
        # Two Newton steps on the oriented truncated CDF with the (differentiable) target: the derivatives of
        # the quantile function, as for implicit_rsample; the target is -(1 - p) on the survival side.
        upper = self._ends()[4]
        target = torch.where(upper, value - 1, value)
        params = self._params()
        cdf = lambda z, *p: self._oriented_cdf(z)  # noqa: E731
        return _newton_step(_newton_step(z, target, cdf, self._density, params), target, cdf, self._density, params)

    def _density(self, z, *params):
        # d/dz of _oriented_cdf: the truncated density (the oriented CDF increases on both sides).
        return torch.exp(self._log_prob_unchecked(z))

    def _log_prob_unchecked(self, z):
        v, self._validate_args = self._validate_args, False
        try:
            return self.log_prob(z)
        finally:
            self._validate_args = v
