"""Student's t with exact implicit reparameterization gradients w.r.t. the degrees of freedom, and a
``log_prob`` that does not overflow."""
import math

import torch
import torch.distributions as td
from torch.distributions.utils import broadcast_all

from .._gamma import _nan_unless_positive, _student_t
from ._common import DeepcopyMixin, GeneratorSampleMixin

__all__ = ["StudentT"]

# log Gamma(a + 1/2) - log Gamma(a) = log(a) / 2 - 1/(8a) + 1/(192a^3) - 1/(640a^5) + 17/(14336a^7)
# - 31/(18432a^9) + ... for large a: the difference of two lgamma values of size a log a loses
# eps * a log a to cancellation (0.5 absolute at df = 1e6 in float32); the series is exact to rounding
# above these thresholds (truncation < 4e-14 at a = 10, < 3e-19 at a = 30).
_LGAMMA_HALF_SERIES = (-1 / 8, 1 / 192, -1 / 640, 17 / 14336, -31 / 18432)
_SERIES_FROM = {torch.float64: 30.0}  # a = df / 2 at which the series takes over; 10 for other dtypes


def _lgamma_half_difference(a):
    """``lgamma(a + 1/2) - lgamma(a)`` without cancellation for large ``a``."""
    threshold = _SERIES_FROM.get(a.dtype, 10.0)
    large = a > threshold
    a_large = torch.where(large, a, threshold)  # keeps both branches finite (and their gradients)
    inv = a_large.reciprocal()
    inv2 = inv * inv
    poly = torch.zeros_like(inv)
    for c in reversed(_LGAMMA_HALF_SERIES):
        poly = poly * inv2 + c
    series = 0.5 * torch.log(a_large) + poly * inv
    a_small = torch.where(large, threshold, a)
    direct = torch.lgamma(a_small + 0.5) - torch.lgamma(a_small)
    return torch.where(large, series, direct)


def _log1p_square(diff, scale, df):
    r"""``log1p(t^2)`` for ``t = diff / (scale sqrt(df))`` without forming ``t^2`` where it could overflow:
    ``2 log|t| + log1p(t^-2)`` for ``|t| > 1`` (with ``log|t|`` a difference of logs, so that ``t``
    itself is never formed there), ``log1p(t^2)`` otherwise. Both branches see safe inputs, so the
    gradient is finite everywhere, ``value = loc`` included."""
    with torch.no_grad():
        big = (torch.log(diff.abs()) - torch.log(scale) - 0.5 * torch.log(df)) > 0
    one = torch.ones((), dtype=diff.dtype, device=diff.device)
    log_t = (torch.log(torch.where(big, diff, one).abs()) - torch.log(torch.where(big, scale, one))
             - 0.5 * torch.log(torch.where(big, df, one)))
    large = 2 * log_t + torch.log1p(torch.exp(-2 * log_t))
    t = torch.where(big, torch.zeros((), dtype=diff.dtype, device=diff.device), diff) / (scale * df.sqrt())
    return torch.where(big, large, torch.log1p(t * t))


class StudentT(GeneratorSampleMixin, DeepcopyMixin, td.StudentT):
    r"""StudentT(df, loc, scale) with exact implicit gradients w.r.t. ``df``. ``log_prob`` is torch's
    density evaluated without overflow (finite, matching scipy, where torch's returns -inf in float32
    for ``|value - loc| / scale`` beyond ~1.8e19) and without the cancellation of
    ``lgamma(df/2) - lgamma((df+1)/2)`` at large ``df``. See :class:`torch.distributions.StudentT`."""

    def __init__(self, df, loc=0.0, scale=1.0, validate_args=None):
        # torch's __init__, except that its inner Chi2 (used only by torch's own sampler) is built with
        # validate_args=False: torch validates it even when asked not to, so StudentT(-1.0,
        # validate_args=False) raised there.
        self.df, self.loc, self.scale = broadcast_all(df, loc, scale)
        self._chi2 = td.Chi2(self.df, validate_args=False)
        td.Distribution.__init__(self, self.df.size(), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        """As :meth:`torch.distributions.StudentT.expand` (the class has its own ``__init__``)."""
        new = self._get_checked_instance(StudentT, _instance)
        batch_shape = torch.Size(batch_shape)
        new.df = self.df.expand(batch_shape)
        new.loc = self.loc.expand(batch_shape)
        new.scale = self.scale.expand(batch_shape)
        new._chi2 = self._chi2.expand(batch_shape)
        td.Distribution.__init__(new, batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def rsample(self, sample_shape=torch.Size(), generator=None):
        """Reparameterized samples from :func:`gradkern.student_t_rsample` (exact implicit gradient
        w.r.t. ``df``; ``loc`` and ``scale`` by the location-scale transform); ``generator`` is passed on."""
        # The sampler of student_t_rsample on the broadcast parameters; an invalid scale gives NaN samples
        # unless validate_args has already refused it (two ops less per call).
        scale = self.scale if self._validate_args else _nan_unless_positive(self.scale)
        return _student_t(self.df, self.loc, scale, self._extended_shape(sample_shape), generator)

    def log_prob(self, value):
        r""":math:`-\frac{df+1}{2}\log(1 + t^2) - \log(scale) - \frac12\log(df\,\pi)
        - \log\Gamma(df/2) + \log\Gamma((df+1)/2)`, :math:`t = (value - loc) / (scale\sqrt{df})`, in a form
        that neither overflows nor cancels (see the class docstring)."""
        if self._validate_args:
            self._validate_sample(value)
        df, scale = self.df, self.scale
        log1p_t2 = _log1p_square(value - self.loc, scale, df)
        log_z = (scale.log() + 0.5 * df.log() + 0.5 * math.log(math.pi)
                 - _lgamma_half_difference(0.5 * df))
        return -0.5 * (df + 1.0) * log1p_t2 - log_z
