"""Truncated Normal with implicit reparameterization gradients (section 4 of Figurnov et al. 2018): exact in
both tails, differentiable in loc, scale and both bounds."""
import math

import torch
import torch.distributions as td
from torch.distributions import constraints
from torch.distributions.utils import broadcast_all

from .._implicit import implicit_rsample
from ._common import DeepcopyMixin, GeneratorSampleMixin

__all__ = ["TruncatedNormal"]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
_NEWTON_STEPS = 5  # quadratic convergence from the starting points below (relative error <= 1e-3): 4 reach double precision


def _log1mexp(x):
    """log(1 - exp(x)) for x <= 0, accurate on both sides of -log 2 (Maechler 2012)."""
    x = torch.clamp(x, max=0.0)
    return torch.where(x > -math.log(2.0), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def _log_ndtr_diff(u, v):
    """log(Phi(u) - Phi(v)) for u >= v from log Phi values: log Phi(u) + log1mexp(log Phi(v) - log Phi(u)),
    accurate where both are tiny (the lower tail); callers orient windows so that they do not sit in the
    upper tail (see TruncatedNormal)."""
    lu = torch.special.log_ndtr(u)
    return lu + _log1mexp(torch.special.log_ndtr(v) - lu)


def _log_ndtri(lp):
    """x with log Phi(x) = lp (lp <= 0): a starting point (ndtri where exp(lp) is a normal number, else the
    Mills-ratio asymptote -sqrt(-2 lp - log(-2 lp) - log 2 pi)), then Newton steps on log Phi,
    x <- x - (log Phi(x) - lp) Phi(x) / phi(x), a fixed number of them (_NEWTON_STEPS)."""
    small = lp < -600.0
    lp_safe = torch.where(small, torch.full_like(lp, -1.0), lp)
    x = torch.special.ndtri(torch.exp(lp_safe))
    t = -2.0 * torch.where(small, lp, torch.full_like(lp, -1000.0))
    x = torch.where(small, -torch.sqrt(t - torch.log(t) - 2 * _HALF_LOG_2PI), x)
    x = torch.where(lp >= 0, torch.full_like(x, math.inf), x)
    for _ in range(_NEWTON_STEPS):
        lphi = -0.5 * x * x - _HALF_LOG_2PI
        step = (torch.special.log_ndtr(x) - lp) * torch.exp(torch.special.log_ndtr(x) - lphi)
        x = torch.where(torch.isfinite(x), x - step, x)
    return x


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
        if self._validate_args and not bool((self.low < self.high).all()):
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
        """(alpha', beta', sign): the standardized window, mirrored (sign = -1) when its midpoint is above
        the mean, so that alpha' + beta' <= 0 and the window never sits in the upper tail. The orientation is
        a discrete choice: it takes no gradient."""
        # An infinite bound stays infinite with no gradient path (inf * 0 would give NaN gradients for loc
        # and scale): the double-where keeps the finite branch's inputs finite.
        lo_inf, hi_inf = torch.isinf(low), torch.isinf(high)
        alpha = torch.where(lo_inf, low.detach(), (torch.where(lo_inf, torch.zeros_like(low), low) - loc) / scale)
        beta = torch.where(hi_inf, high.detach(), (torch.where(hi_inf, torch.zeros_like(high), high) - loc) / scale)
        flip = (alpha.detach() + beta.detach()) > 0
        sign = torch.where(flip, -torch.ones_like(alpha), torch.ones_like(alpha))
        a2 = torch.where(flip, -beta, alpha)
        b2 = torch.where(flip, -alpha, beta)
        return a2, b2, sign

    def _log_cdf_oriented(self, z, loc, scale, low, high):
        """log of the oriented truncated CDF, log((Phi(x') - Phi(alpha')) / (Phi(beta') - Phi(alpha'))),
        x' = sign (z - loc) / scale: monotone in z (decreasing when mirrored), which is all eq. 8 needs."""
        a2, b2, sign = self._oriented(loc, scale, low, high)
        x2 = sign * (z - loc) / scale
        x2 = torch.minimum(torch.maximum(x2, a2), b2)
        return _log_ndtr_diff(x2, a2) - _log_ndtr_diff(b2, a2)

    def _draw(self, u):
        """Standardized oriented draw for uniforms u (float64), then z. The smaller of the two tails of
        the target probability p = Phi(alpha') + u Z is carried in log space (log p or log(1 - p))."""
        loc, scale, low, high = (t.detach().to(torch.float64) for t in (self.loc, self.scale, self.low, self.high))
        a2, b2, sign = self._oriented(loc, scale, low, high)
        logZ = _log_ndtr_diff(b2, a2)
        lp = torch.logaddexp(torch.special.log_ndtr(a2), torch.log(u) + logZ)
        lq = torch.logaddexp(torch.special.log_ndtr(-b2), torch.log1p(-u) + logZ)
        lower = lp < lq
        x2 = torch.where(lower, _log_ndtri(torch.where(lower, lp, torch.full_like(lp, -1.0))),
                         -_log_ndtri(torch.where(lower, torch.full_like(lq, -1.0), lq)))
        x2 = torch.minimum(torch.maximum(x2, a2), b2)
        z = loc + scale * sign * x2
        z = torch.minimum(torch.maximum(z, low), high)
        # Invalid parameters (low >= high, scale <= 0, NaN; possible with validate_args=False) give NaN
        # samples, never a finite number.
        valid = (low < high) & (scale > 0) & ~torch.isnan(loc)
        return torch.where(valid, z, torch.full_like(z, math.nan))

    def rsample(self, sample_shape=torch.Size(), generator=None):
        """Samples of shape ``sample_shape + batch_shape`` by the log-space inverse CDF (float64 inside,
        rounded once to the parameters' dtype), with implicit gradients w.r.t. loc, scale, low and high;
        ``generator`` is passed to the uniform draw."""
        shape = self._extended_shape(sample_shape)
        u = torch.rand(shape, dtype=torch.float64, device=self.loc.device, generator=generator)
        u = u.clamp(1e-300, 1 - 2 ** -53)
        with torch.no_grad():
            z = self._draw(u).to(self.loc.dtype)
        return implicit_rsample(z, self._log_cdf_oriented, (self.loc, self.scale, self.low, self.high))

    def log_prob(self, value):
        """Normal log density minus log(Phi(beta) - Phi(alpha)); -inf outside ``[low, high]``."""
        if self._validate_args:
            self._validate_sample(value)
        a2, b2, _ = self._oriented(self.loc, self.scale, self.low, self.high)
        x = (value - self.loc) / self.scale
        lp = -0.5 * x * x - _HALF_LOG_2PI - torch.log(self.scale) - _log_ndtr_diff(b2, a2)
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
        """The quantile function: the oriented log-space inverse CDF at ``value`` (float64 inside)."""
        u = torch.as_tensor(value, dtype=torch.float64, device=self.loc.device)
        _, _, sign = self._oriented(self.loc.detach(), self.scale.detach(), self.low.detach(), self.high.detach())
        u = torch.where(sign > 0, u, 1 - u)
        return self._draw(u.expand(torch.broadcast_shapes(u.shape, self.batch_shape))).to(self.loc.dtype)

    def _moments(self):
        # In float64: deep in a tail the variance is a difference of terms ~alpha^2 larger than itself.
        loc, scale, low, high = (t.to(torch.float64) for t in (self.loc, self.scale, self.low, self.high))
        a2, b2, sign = self._oriented(loc, scale, low, high)
        logZ = _log_ndtr_diff(b2, a2)
        pa = torch.exp(-0.5 * a2 * a2 - _HALF_LOG_2PI - logZ)  # phi(alpha') / Z (0 at an infinite bound)
        pb = torch.exp(-0.5 * b2 * b2 - _HALF_LOG_2PI - logZ)
        m2 = pa - pb  # mean of the oriented standardized variable
        ta = torch.where(torch.isfinite(a2), a2 * pa, torch.zeros_like(pa))
        tb = torch.where(torch.isfinite(b2), b2 * pb, torch.zeros_like(pb))
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
