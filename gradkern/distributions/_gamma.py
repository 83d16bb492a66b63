"""Gamma and Chi2 with exact implicit reparameterization gradients, and a ``cdf`` / ``icdf``
differentiable in every parameter."""
import torch
import torch.distributions as td

from .._gamma import _nan_unless_positive, _scaled_gamma
from .._special import gammainc, gammaincinv
from ._common import DeepcopyMixin, GeneratorSampleMixin

__all__ = ["Gamma", "Chi2"]


def _clamp_positive(value):
    """Clamp to the smallest positive normal number, as torch does for Gamma: a sample that
    underflows to 0 would give log_prob = -inf / NaN."""
    return value.clamp(min=torch.finfo(value.dtype).tiny)


class _GammaCdfMixin:
    """``cdf`` and ``icdf`` of a Gamma(concentration, rate) family (Gamma, Chi2), and its sampler."""

    def _scaled_sample(self, sample_shape, generator):
        # The sampler of gradkern.gamma_rsample on the broadcast parameters; an invalid rate gives NaN
        # samples unless validate_args has already refused it (which saves two ops per call).
        rate = self.rate if self._validate_args else _nan_unless_positive(self.rate)
        return _scaled_gamma(self.concentration, rate, self._extended_shape(sample_shape)[:len(sample_shape)],
                             generator)

    def cdf(self, value):
        """Regularized lower incomplete gamma function ``P(concentration, rate * value)``, by
        :func:`gradkern.gammainc`: differentiable in the concentration too (torch's ``cdf`` uses
        ``torch.special.gammainc``, which has no gradient w.r.t. it), as well as in the rate and
        ``value``."""
        if self._validate_args:
            self._validate_sample(value)
        return gammainc(self.concentration, self.rate * value)

    def icdf(self, value):
        """Quantile function, :func:`gradkern.gammaincinv` ``(concentration, value) / rate``
        (torch's Gamma has none); differentiable in every argument."""
        return gammaincinv(self.concentration, value) / self.rate


class Gamma(GeneratorSampleMixin, DeepcopyMixin, _GammaCdfMixin, td.Gamma):
    r"""Gamma(concentration, rate) with exact implicit reparameterization gradients
    (Figurnov et al. 2018) instead of torch's approximate ``_standard_gamma_grad``; ``cdf`` is
    differentiable in every parameter and ``icdf`` is :func:`gradkern.gammaincinv` scaled by the rate.
    See :class:`torch.distributions.Gamma` for the arguments."""

    def rsample(self, sample_shape=torch.Size(), generator=None):
        """Reparameterized samples from :func:`gradkern.gamma_rsample` (exact implicit gradients
        w.r.t. concentration and rate), clamped away from 0 like torch's; ``generator`` is passed on."""
        return _clamp_positive(self._scaled_sample(sample_shape, generator))


class Chi2(GeneratorSampleMixin, DeepcopyMixin, _GammaCdfMixin, td.Chi2):
    r"""Chi2(df) with exact implicit gradients w.r.t. ``df``, a ``cdf`` differentiable in ``df`` and an
    ``icdf``. See :class:`torch.distributions.Chi2`."""

    def rsample(self, sample_shape=torch.Size(), generator=None):
        """Reparameterized samples (a Gamma(df / 2, 1 / 2) from :func:`gradkern.gamma_rsample`) with the
        exact implicit gradient w.r.t. ``df``, clamped away from 0 like torch's; ``generator`` is passed on."""
        return _clamp_positive(self._scaled_sample(sample_shape, generator))
