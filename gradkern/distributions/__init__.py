"""Drop-in subclasses of torch.distributions whose rsample uses gradkern's exact implicit gradients,
and Gaussian mixtures with pathwise gradients for every parameter.

Everything but sampling (log_prob, entropy, moments, KL registrations, argument validation) is
inherited from torch unchanged, so the classes can replace torch's in existing code.

One module per family; the differentiable ops they sample with, and the registrations of those ops,
are elsewhere (gradkern.gamma, gradkern.special, gradkern.vonmises, gradkern.mixtures):

* :mod:`.gamma`: :class:`Gamma`, :class:`Chi2` (and their shared ``cdf`` / ``icdf``)
* :mod:`.beta`: :class:`Beta`
* :mod:`.dirichlet`: :class:`Dirichlet`
* :mod:`.student_t`: :class:`StudentT`
* :mod:`.von_mises`: :class:`VonMises`
* :mod:`.mixtures`: :class:`MixtureOfDiagNormalsSharedCovariance`, :class:`MixtureOfDiagNormals`,
  :class:`GaussianScaleMixture`, :class:`DiscreteGaussianScaleMixture`
"""
from .beta import Beta
from .dirichlet import Dirichlet
from .gamma import Chi2, Gamma
from .mixtures import (DiscreteGaussianScaleMixture, GaussianScaleMixture, MixtureOfDiagNormals,
                       MixtureOfDiagNormalsSharedCovariance)
from .student_t import StudentT
from .von_mises import VonMises

__all__ = ["Gamma", "Beta", "Dirichlet", "Chi2", "StudentT", "VonMises", "MixtureOfDiagNormalsSharedCovariance",
           "MixtureOfDiagNormals", "GaussianScaleMixture", "DiscreteGaussianScaleMixture"]
