"""Pyro-ready versions of every :mod:`gradkern.distributions` class.

``pyro.sample`` accepts only Pyro distributions: objects with Pyro's
:class:`~pyro.distributions.torch_distribution.TorchDistributionMixin` (they are callable, and have
``expand_by``, ``to_event``, ``mask``, ``shape``, ``score_parts``, ...). Pyro adds the mixin to its own
copies of torch's classes only, so a :mod:`gradkern.distributions` object fails there with
``'Gamma' object is not callable``. Each class here is the gradkern class with the mixin added,
under the same name::

    import pyro
    import gradkern.pyro as gdist

    def guide():
        a = pyro.param("a", torch.tensor(2.0), constraint=constraints.positive)
        b = pyro.param("b", torch.tensor(1.0), constraint=constraints.positive)
        pyro.sample("rate", gdist.Gamma(a, b))   # exact implicit reparameterization gradients

Classes: :class:`Gamma`, :class:`Chi2`, :class:`Beta`, :class:`Dirichlet`, :class:`StudentT`, :class:`TruncatedNormal`,
:class:`Truncated` (any univariate base), :class:`MixtureSameFamily` (rsample for univariate components),
:class:`VonMises` (reparameterized, which Pyro's is not), :class:`VonMisesFisher` and
:class:`HypersphericalUniform` (the hyperspherical VAE's posterior and prior), and the Gaussian mixtures with pathwise
gradients for every parameter, :class:`MixtureOfDiagNormalsSharedCovariance`,
:class:`MixtureOfDiagNormals`, :class:`GaussianScaleMixture`, :class:`DiscreteGaussianScaleMixture`.

Each is a subclass of both the :mod:`gradkern.distributions` class (so of the torch class too) and
``TorchDistributionMixin``; sampling, ``log_prob`` and everything else are the gradkern class's. All have
``has_rsample = True``, so Pyro's ELBOs use the pathwise (reparameterized) estimator for their sites.
``expand`` returns an instance of the same class (with ``_instance`` honoured, as subclasses need), so
``pyro.plate`` broadcasting, ``expand_by``, ``to_event`` and ``mask`` keep gradkern's sampler.

This module imports Pyro (``pip install pyro-ppl``); ``import gradkern`` alone never does.
"""
try:
    from pyro.distributions.torch_distribution import TorchDistributionMixin
except ImportError as _e:  # pragma: no cover - exercised in a subprocess by tests/test_pyro.py
    if _e.name is not None and (_e.name == "pyro" or _e.name.startswith("pyro.")):
        raise ImportError("gradkern.pyro needs pyro-ppl: pip install pyro-ppl") from _e
    raise ImportError("gradkern.pyro needs pyro-ppl: pip install pyro-ppl (pyro is installed but failed "
                      f"to import: {_e})") from _e

import torch

from . import distributions as _gkd

__all__ = ["Gamma", "Chi2", "Beta", "Dirichlet", "StudentT", "VonMises", "VonMisesFisher", "HypersphericalUniform", "TruncatedNormal", "Truncated",
           "MixtureSameFamily",
           "MixtureOfDiagNormalsSharedCovariance",
           "MixtureOfDiagNormals", "GaussianScaleMixture", "DiscreteGaussianScaleMixture"]


class Gamma(_gkd.Gamma, TorchDistributionMixin):
    """:class:`gradkern.distributions.Gamma` for Pyro: Gamma(concentration, rate) with exact implicit
    reparameterization gradients, plus Pyro's ``TorchDistributionMixin``. Use it in ``pyro.sample``
    wherever ``pyro.distributions.Gamma`` goes."""


class Chi2(_gkd.Chi2, TorchDistributionMixin):
    """:class:`gradkern.distributions.Chi2` for Pyro: Chi2(df) with the exact implicit gradient w.r.t.
    ``df``, plus Pyro's ``TorchDistributionMixin``."""


class Beta(_gkd.Beta, TorchDistributionMixin):
    """:class:`gradkern.distributions.Beta` for Pyro: Beta(concentration1, concentration0) sampled in
    log space with exact implicit gradients, plus Pyro's ``TorchDistributionMixin``."""


class Dirichlet(_gkd.Dirichlet, TorchDistributionMixin):
    """:class:`gradkern.distributions.Dirichlet` for Pyro: Dirichlet(concentration) normalised in log
    space with exact implicit gradients, plus Pyro's ``TorchDistributionMixin``."""

    @staticmethod
    def infer_shapes(concentration):
        """``(batch_shape, event_shape)`` for a ``concentration`` of the given shape: the last
        dimension is the event."""
        return torch.Size(concentration[:-1]), torch.Size(concentration[-1:])


class StudentT(_gkd.StudentT, TorchDistributionMixin):
    """:class:`gradkern.distributions.StudentT` for Pyro: StudentT(df, loc, scale) with the exact
    implicit gradient w.r.t. ``df``, plus Pyro's ``TorchDistributionMixin``."""


class TruncatedNormal(_gkd.TruncatedNormal, TorchDistributionMixin):
    """:class:`gradkern.distributions.TruncatedNormal` for Pyro: Normal(loc, scale) truncated to
    ``[low, high]``, sampled by the log-space inverse CDF (deep tails included) with implicit gradients
    w.r.t. loc, scale and both bounds, plus Pyro's ``TorchDistributionMixin``."""


class Truncated(_gkd.Truncated, TorchDistributionMixin):
    """:class:`gradkern.distributions.Truncated` for Pyro: any univariate base truncated to ``[low, high]``
    with implicit gradients w.r.t. the base's parameters and both bounds, plus Pyro's
    ``TorchDistributionMixin`` (a Normal base stays this generic class here)."""


class MixtureSameFamily(_gkd.MixtureSameFamily, TorchDistributionMixin):
    """:class:`gradkern.distributions.MixtureSameFamily` for Pyro: torch's MixtureSameFamily with
    ``rsample`` for univariate components (implicit gradients w.r.t. the mixing logits and every component
    parameter), plus Pyro's ``TorchDistributionMixin``."""


class VonMises(_gkd.VonMises, TorchDistributionMixin):
    """:class:`gradkern.distributions.VonMises` for Pyro: VonMises(loc, concentration) with
    ``has_rsample = True`` (gradient 1 w.r.t. ``loc``, the exact implicit gradient w.r.t. the
    concentration), plus Pyro's ``TorchDistributionMixin``. Pyro's own VonMises is not
    reparameterized, so its ELBOs fall back to the score function there; with this class they do not.
    ``expand`` (gradkern's) honours ``_instance``, which torch's ``VonMises.expand`` ignores."""


def _mixture_infer_shapes(cls, arg_shapes):
    """``(batch_shape, event_shape)`` of a Gaussian mixture from its arguments' shapes: each argument's
    trailing ``(K,)``, ``(D,)`` or ``(K, D)`` dimensions are dropped and the rest broadcast."""
    tails = {"locs": 2, "component_logits": 1, "component_scale": 1,
             "coord_scale": 2 if cls._family == "diag_normals" else 1}
    D = arg_shapes["locs" if "locs" in arg_shapes else "coord_scale"][-1]
    batch = [torch.Size(shape[:len(shape) - tails[name]]) for name, shape in arg_shapes.items() if name in tails]
    return torch.broadcast_shapes(*batch), torch.Size((D,))


class MixtureOfDiagNormalsSharedCovariance(_gkd.MixtureOfDiagNormalsSharedCovariance, TorchDistributionMixin):
    """:class:`gradkern.distributions.MixtureOfDiagNormalsSharedCovariance` for Pyro: a mixture of K
    Normals sharing one diagonal covariance, ``rsample`` differentiable w.r.t. every parameter (the
    logits included), plus Pyro's ``TorchDistributionMixin``. Arguments ``(locs, coord_scale,
    component_logits)`` as in Pyro's class of the same name."""

    @classmethod
    def infer_shapes(cls, **arg_shapes):
        """``(batch_shape, event_shape)`` for arguments of the given shapes (event ``(D,)``)."""
        return _mixture_infer_shapes(cls, arg_shapes)


class MixtureOfDiagNormals(_gkd.MixtureOfDiagNormals, TorchDistributionMixin):
    """:class:`gradkern.distributions.MixtureOfDiagNormals` for Pyro: a mixture of K Normals with
    arbitrary diagonal covariances, ``rsample`` differentiable w.r.t. every parameter, plus Pyro's
    ``TorchDistributionMixin``. Arguments ``(locs, coord_scale, component_logits)`` as in Pyro's class
    of the same name, and ``velocity`` (``"reference"`` or ``"pairwise"``), which ``expand`` keeps."""

    @classmethod
    def infer_shapes(cls, **arg_shapes):
        """``(batch_shape, event_shape)`` for arguments of the given shapes (event ``(D,)``)."""
        return _mixture_infer_shapes(cls, arg_shapes)


class GaussianScaleMixture(_gkd.GaussianScaleMixture, TorchDistributionMixin):
    """:class:`gradkern.distributions.GaussianScaleMixture` for Pyro: a zero-mean Gaussian scale
    mixture, ``rsample`` differentiable w.r.t. every parameter, plus Pyro's ``TorchDistributionMixin``.
    Arguments ``(coord_scale, component_logits, component_scale)`` as in Pyro's class of the same
    name."""

    @classmethod
    def infer_shapes(cls, **arg_shapes):
        """``(batch_shape, event_shape)`` for arguments of the given shapes (event ``(D,)``)."""
        return _mixture_infer_shapes(cls, arg_shapes)


class DiscreteGaussianScaleMixture(_gkd.DiscreteGaussianScaleMixture, TorchDistributionMixin):
    """:class:`gradkern.distributions.DiscreteGaussianScaleMixture` for Pyro: a Gaussian scale mixture
    with component means, ``rsample`` differentiable w.r.t. every parameter, plus Pyro's
    ``TorchDistributionMixin``. Arguments ``(locs, coord_scale, component_logits, component_scale)``
    (Pyro has no such class)."""

    @classmethod
    def infer_shapes(cls, **arg_shapes):
        """``(batch_shape, event_shape)`` for arguments of the given shapes (event ``(D,)``)."""
        return _mixture_infer_shapes(cls, arg_shapes)


class VonMisesFisher(_gkd.VonMisesFisher, TorchDistributionMixin):
    """:class:`gradkern.distributions.VonMisesFisher` for Pyro: vMF(loc, concentration) on the sphere in any
    dimension, reparameterized (pathwise in ``loc``, the exact implicit gradient in the concentration), plus
    Pyro's ``TorchDistributionMixin``."""


class HypersphericalUniform(_gkd.HypersphericalUniform, TorchDistributionMixin):
    """:class:`gradkern.distributions.HypersphericalUniform` for Pyro: the uniform distribution on the sphere
    (the hyperspherical VAE's prior), plus Pyro's ``TorchDistributionMixin``."""
