"""Drop-in subclasses of torch.distributions whose rsample uses gradkern's exact implicit gradients,
and Gaussian mixtures with pathwise gradients for every parameter.

Each class is a subclass of torch's (Pyro's, for the mixtures) with the same constructor, shapes,
constraints and validation, so it can replace torch's in existing code; what it adds or changes is
listed in docs/distributions.md: ``generator=`` on every ``sample`` / ``rsample``, ``cdf`` / ``icdf``
for Gamma, Chi2 and VonMises, VonMises ``entropy``, KL and concentration 0, a StudentT ``log_prob``
that does not overflow in float32. Moments, KL registrations and the rest are torch's.

One module per family; the differentiable ops they sample with, and the registrations of those ops,
are elsewhere (gradkern._gamma, gradkern._special, gradkern._vonmises, gradkern._mixtures):

* :mod:`.gamma`: :class:`Gamma`, :class:`Chi2` (and their shared ``cdf`` / ``icdf``)
* :mod:`.beta`: :class:`Beta`
* :mod:`.dirichlet`: :class:`Dirichlet`
* :mod:`.student_t`: :class:`StudentT`
* :mod:`.von_mises`: :class:`VonMises`
* :mod:`.von_mises_fisher`: :class:`VonMisesFisher` (any dimension d >= 2), :class:`HypersphericalUniform`
* :mod:`.truncated`: :class:`TruncatedNormal` (implicit gradients w.r.t. loc, scale and both bounds)
* :mod:`.mixture_same_family`: :class:`MixtureSameFamily` (torch's, with rsample for univariate components)
* :mod:`.mixtures`: :class:`MixtureOfDiagNormalsSharedCovariance`, :class:`MixtureOfDiagNormals`,
  :class:`GaussianScaleMixture`, :class:`DiscreteGaussianScaleMixture`
"""
from ._beta import Beta
from ._dirichlet import Dirichlet
from ._gamma import Chi2, Gamma
from ._mixtures import (DiscreteGaussianScaleMixture, GaussianScaleMixture, MixtureOfDiagNormals,
                       MixtureOfDiagNormalsSharedCovariance)
from ._mixture_same_family import MixtureSameFamily
from ._student_t import StudentT
from ._truncated import Truncated, TruncatedNormal
from ._von_mises import VonMises
from ._von_mises_fisher import HypersphericalUniform, VonMisesFisher

__all__ = ["Gamma", "Beta", "Dirichlet", "Chi2", "StudentT", "VonMises", "VonMisesFisher", "HypersphericalUniform", "TruncatedNormal", "Truncated", "MixtureSameFamily",
           "MixtureOfDiagNormalsSharedCovariance",
           "MixtureOfDiagNormals", "GaussianScaleMixture", "DiscreteGaussianScaleMixture"]
