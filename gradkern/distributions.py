"""Drop-in subclasses of torch.distributions whose rsample uses gradkern's exact implicit gradients.

Everything but sampling (log_prob, entropy, moments, KL registrations, argument validation) is
inherited from torch unchanged, so the classes can replace torch's in existing code.
"""
import torch
import torch.distributions as td

from .gamma import beta_rsample, dirichlet_rsample, gamma_rsample, student_t_rsample
from .special import gammainc, gammaincinv
from .vonmises import vonmises_rsample
from .distributions_mixtures import (DiscreteGaussianScaleMixture, GaussianScaleMixture, MixtureOfDiagNormals,
                                     MixtureOfDiagNormalsSharedCovariance)

__all__ = ["Gamma", "Beta", "Dirichlet", "Chi2", "StudentT", "VonMises", "MixtureOfDiagNormalsSharedCovariance",
           "MixtureOfDiagNormals", "GaussianScaleMixture", "DiscreteGaussianScaleMixture"]


def _clamp_positive(value):
    # As torch does for Gamma: a sample that underflows to 0 would give log_prob = -inf / NaN.
    return value.clamp(min=torch.finfo(value.dtype).tiny)


class _GammaCdfMixin:
    # cdf differentiable in the concentration too (torch's uses torch.special.gammainc, which has no
    # gradient w.r.t. it), and an icdf from gradkern.gammaincinv.
    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return gammainc(self.concentration, self.rate * value)

    def icdf(self, value):
        return gammaincinv(self.concentration, value) / self.rate


class Gamma(_GammaCdfMixin, td.Gamma):
    r"""Gamma(concentration, rate) with exact implicit reparameterization gradients
    (Figurnov et al. 2018) instead of torch's approximate ``_standard_gamma_grad``; ``cdf`` is
    differentiable in every parameter and ``icdf`` is :func:`gradkern.gammaincinv` scaled by the rate.
    See :class:`torch.distributions.Gamma` for the arguments."""

    def rsample(self, sample_shape=torch.Size()):
        shape = self._extended_shape(sample_shape)
        value = gamma_rsample(self.concentration.expand(shape), self.rate.expand(shape))
        return _clamp_positive(value)


class Chi2(_GammaCdfMixin, td.Chi2):
    r"""Chi2(df) with exact implicit gradients w.r.t. ``df``, a ``cdf`` differentiable in ``df`` and an
    ``icdf``. See :class:`torch.distributions.Chi2`."""

    def rsample(self, sample_shape=torch.Size()):
        shape = self._extended_shape(sample_shape)
        value = gamma_rsample(self.concentration.expand(shape), self.rate.expand(shape))
        return _clamp_positive(value)


class Beta(td.Beta):
    r"""Beta(concentration1, concentration0) sampled from log-space Gamma variables: correct down to
    concentrations of 1e-6 (torch's Beta puts far too much mass in the interior there), with exact
    implicit gradients. See :class:`torch.distributions.Beta`."""

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        value = beta_rsample(self.concentration1.expand(shape), self.concentration0.expand(shape))
        eps = torch.finfo(value.dtype).tiny
        return value.clamp(min=eps, max=1 - torch.finfo(value.dtype).eps / 2)


class Dirichlet(td.Dirichlet):
    r"""Dirichlet(concentration) normalised in log space: correct down to concentrations of 1e-6,
    with exact implicit gradients. See :class:`torch.distributions.Dirichlet`."""

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        value = dirichlet_rsample(self.concentration.expand(shape))
        return value.clamp(min=torch.finfo(value.dtype).tiny)


class StudentT(td.StudentT):
    r"""StudentT(df, loc, scale) with exact implicit gradients w.r.t. ``df``.
    See :class:`torch.distributions.StudentT`."""

    def rsample(self, sample_shape=torch.Size()):
        shape = self._extended_shape(sample_shape)
        return student_t_rsample(self.df.expand(shape), self.loc.expand(shape), self.scale.expand(shape))


class VonMises(td.VonMises):
    r"""VonMises(loc, concentration) with ``has_rsample = True``: samples from gradkern's fused kernel
    (on CPU and CUDA), reparameterized with the exact implicit gradient w.r.t. the concentration.
    Everything else is :class:`torch.distributions.VonMises`."""

    has_rsample = True

    def rsample(self, sample_shape=torch.Size()):
        shape = self._extended_shape(sample_shape)
        return vonmises_rsample(self.loc.expand(shape), self.concentration.expand(shape))

    @torch.no_grad()
    def sample(self, sample_shape=torch.Size()):
        return self.rsample(sample_shape)
