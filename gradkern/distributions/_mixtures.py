r"""Mixtures of diagonal Normal distributions with pathwise gradients for all parameters.

The four families of Table 3 in Jankowiak & Karaletsos, "Pathwise Derivatives for Multivariate
Distributions" (AISTATS 2019). Sampling is "categorical, then Normal", but ``rsample`` is differentiable
w.r.t. every parameter, mixture logits included: the gradient of a sample is the velocity field of the
transport equation :math:`\partial_\theta q + \nabla_z \cdot (q\, v^\theta) = 0` (paper eq. 3), so that
:math:`\nabla_\theta \mathbb{E}_q[f] = \mathbb{E}_q[\nabla_z f \cdot v^\theta]` is unbiased. The
velocity fields are evaluated by the native kernels (csrc/core/mixture.h) in log space and without
forming K x K x D tensors.

Shapes: ``K`` components, event dimension ``D >= 1``, any batch shape; every parameter broadcasts to
the batch shape. Samples have shape ``sample_shape + batch_shape + (D,)``.
"""
import functools

import torch
import torch.distributions as td
from torch.distributions import constraints

from .._mixtures import mixture_rsample
from ._common import DeepcopyMixin

__all__ = ["MixtureOfDiagNormalsSharedCovariance", "MixtureOfDiagNormals", "GaussianScaleMixture",
           "DiscreteGaussianScaleMixture"]


def _check_tensor(cls, name, value, min_dim):
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{cls}: {name} must be a Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"{cls}: {name} must be a floating point tensor, got {value.dtype}")
    if value.dim() < min_dim:
        raise ValueError(f"{cls}: {name} must have at least {min_dim} dimension(s), got shape {tuple(value.shape)}")


class _GaussianMixture(DeepcopyMixin, td.Distribution):
    """Shared implementation; subclasses set ``_family`` and ``_min_dims`` (checked in ``_init``)."""

    has_rsample = True
    support = constraints.real_vector
    _family = None

    def _init(self, params, validate_args):
        cls = type(self).__name__
        for name, value in params.items():  # the constructor's arguments, in its order
            _check_tensor(cls, name, value, self._min_dims[name])
        K = params["component_logits"].shape[-1]
        D = params["locs" if "locs" in params else "coord_scale"].shape[-1]
        if K < 1 or D < 1:
            raise ValueError(f"{cls}: need K >= 1 components and D >= 1 dimensions, got K={K}, D={D}")
        batch_shapes = []
        for name, value in params.items():
            tail = self._tail(name, K, D)
            if tuple(value.shape[value.dim() - len(tail):]) != tail:
                raise ValueError(f"{cls}: {name} must have shape (*batch, {', '.join(map(str, tail))}) "
                                 f"(K={K}, D={D}), got {tuple(value.shape)}")
            batch_shapes.append(value.shape[:value.dim() - len(tail)])
        try:
            batch_shape = torch.broadcast_shapes(*batch_shapes)
        except RuntimeError as e:
            raise ValueError(f"{cls}: parameter batch shapes {[tuple(b) for b in batch_shapes]} do not "
                             "broadcast") from e
        # torch's type promotion across the parameters (float32 with float64 gives float64), as
        # torch.distributions' broadcast_all does; .to keeps the gradient path to the given tensors.
        dtype = functools.reduce(torch.promote_types, [v.dtype for v in params.values()])
        params = {n: (v if v.dtype == dtype else v.to(dtype)) for n, v in params.items()}
        self._K, self._D = K, D
        self._raw = dict(params)  # the tensors as given (what pickle stores)
        self._set_params(batch_shape)
        super().__init__(batch_shape, torch.Size((D,)), validate_args=validate_args)

    def _set_params(self, batch_shape):
        # The public attributes are the arguments expanded to the batch shape (views of _raw), as torch's
        # distributions store theirs.
        for name, value in self._raw.items():
            setattr(self, name, value.expand(batch_shape + self._tail(name, self._K, self._D)))

    def __getstate__(self):
        # Pickle stores the arguments and rebuilds the expanded views from them (views of one argument
        # again, rather than separate copies). copy.deepcopy goes through DeepcopyMixin.
        state = self.__dict__.copy()
        for name in self._raw:
            state.pop(name, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._set_params(self._batch_shape)

    def _tail(self, name, K, D):
        if name == "locs" or (name == "coord_scale" and self._family == "diag_normals"):
            return (K, D)
        if name == "coord_scale":
            return (D,)
        return (K,)

    @property
    def _params(self):
        return {n: getattr(self, n) for n in self.arg_constraints}

    # --- component view: means and scales (*batch, K, D) ---
    @property
    def component_locs(self):
        """Component means, shape ``batch_shape + (K, D)`` (zeros for the zero-mean family)."""
        if "locs" in self.arg_constraints:
            return self.locs
        return self.coord_scale.new_zeros(self.batch_shape + (self._K, self._D))

    @property
    def component_scales(self):
        """Component standard deviations ``lambda_j * c_ji``, shape ``batch_shape + (K, D)``."""
        c = self.coord_scale
        if self._family != "diag_normals":
            c = c.unsqueeze(-2).expand(self.batch_shape + (self._K, self._D))
        if "component_scale" in self.arg_constraints:
            c = c * self.component_scale.unsqueeze(-1)
        return c

    @property
    def mixture_probs(self):
        """Mixture weights ``softmax(component_logits)``, shape ``batch_shape + (K,)``."""
        return torch.softmax(self.component_logits, -1)

    @property
    def mixture_distribution(self):
        """The mixing distribution, ``Categorical(logits=component_logits)`` (batch shape ``batch_shape``),
        as :attr:`torch.distributions.MixtureSameFamily.mixture_distribution`."""
        return td.Categorical(logits=self.component_logits, validate_args=False)

    @property
    def component_distribution(self):
        """The components, ``Independent(Normal(component_locs, component_scales), 1)`` (batch shape
        ``batch_shape + (K,)``, event shape ``(D,)``), as
        :attr:`torch.distributions.MixtureSameFamily.component_distribution`: ``MixtureSameFamily(
        d.mixture_distribution, d.component_distribution)`` is the same distribution (without the
        pathwise gradients)."""
        return td.Independent(td.Normal(self.component_locs, self.component_scales, validate_args=False), 1)

    @property
    def mode(self):
        """Not implemented, as for :class:`torch.distributions.MixtureSameFamily`: a Gaussian mixture's
        modes have no closed form (and may be several)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement mode (no closed form; "
                                  "torch.distributions.MixtureSameFamily has none either)")

    def entropy(self):
        """Not implemented, as for :class:`torch.distributions.MixtureSameFamily`: a Gaussian mixture's
        entropy has no closed form. Estimate it by Monte Carlo, ``-d.log_prob(d.rsample((n,))).mean(0)``
        (differentiable in every parameter)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement entropy (no closed form; "
                                  "torch.distributions.MixtureSameFamily has none either). Monte Carlo: "
                                  "-d.log_prob(d.rsample((n,))).mean(0)")

    @property
    def mean(self):
        """Mixture mean ``sum_j pi_j mu_j``, shape ``batch_shape + (D,)``."""
        return (self.mixture_probs.unsqueeze(-1) * self.component_locs).sum(-2)

    @property
    def variance(self):
        """Per-coordinate mixture variance ``sum_j pi_j (s_j^2 + mu_j^2) - mean^2``, shape
        ``batch_shape + (D,)``."""
        pi = self.mixture_probs.unsqueeze(-1)
        locs, scales = self.component_locs, self.component_scales
        second = (pi * (scales ** 2 + locs ** 2)).sum(-2)
        return second - self.mean ** 2

    def log_prob(self, value):
        """``log sum_j pi_j N(value | mu_j, s_j)`` by logsumexp (no underflow in high dimension)."""
        if self._validate_args:
            self._validate_sample(value)
        log_pi = torch.log_softmax(self.component_logits, -1)
        scales = self.component_scales
        eps = (value.unsqueeze(-2) - self.component_locs) / scales
        log_qj = (-0.5 * eps ** 2 - scales.log()).sum(-1) - 0.5 * self._D * torch.log(
            torch.tensor(2 * torch.pi, dtype=value.dtype, device=value.device))
        return torch.logsumexp(log_pi + log_qj, -1)

    _velocity = None  # the logit field where the family offers a choice (MixtureOfDiagNormals)

    def rsample(self, sample_shape=torch.Size(), generator=None):
        """Samples of shape ``sample_shape + batch_shape + (D,)``, differentiable w.r.t. every
        parameter through the transport-equation velocity fields (see the class docstring)."""
        return mixture_rsample(self._family, self._params, self.batch_shape, self._D, sample_shape, generator,
                               velocity=self._velocity)

    def sample(self, sample_shape=torch.Size(), generator=None):
        """Samples as :meth:`rsample`, without gradient."""
        with torch.no_grad():
            return self.rsample(sample_shape, generator).detach()

    def expand(self, batch_shape, _instance=None):
        """The same mixture with its parameters expanded to ``batch_shape`` (see
        :meth:`torch.distributions.Distribution.expand`); keeps the velocity field."""
        new = self._get_checked_instance(type(self), _instance)
        batch_shape = torch.Size(batch_shape)
        try:
            ok = torch.broadcast_shapes(batch_shape, self.batch_shape) == batch_shape
        except RuntimeError:
            ok = False
        if not ok:  # RuntimeError, as Tensor.expand raises in torch's own distributions
            raise RuntimeError(f"{type(self).__name__}.expand: batch shape {tuple(self.batch_shape)} cannot be "
                               f"expanded to {tuple(batch_shape)}")
        new._K, new._D = self._K, self._D
        new._raw = self._raw
        new._set_params(batch_shape)
        new._velocity = self._velocity
        super(_GaussianMixture, new).__init__(batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new


class MixtureOfDiagNormalsSharedCovariance(_GaussianMixture):
    r"""Mixture of K Normals ``N(mu_j, diag(coord_scale)^2)`` sharing one diagonal covariance.

    Args:
        locs (Tensor): component means, shape ``(*batch, K, D)``.
        coord_scale (Tensor): shared standard deviations, shape ``(*batch, D)``, positive.
        component_logits (Tensor): mixture logits, shape ``(*batch, K)``; ``pi = softmax(logits)``.

    Gradients of :meth:`rsample`: ``locs`` and ``coord_scale`` through eq. 12 (each sample contributes
    to every component, weighted by its responsibility ``pi_j q_j / q``); ``component_logits`` through
    eqs. 14-15 (pairwise mass transport along ``mu_j - mu_k``), cost O(K^2 D) per sample.
    """

    # Constraints carry the parameters' event dimensions, (K, D), (D,) and (K,), so that check() reduces
    # to the batch shape (torch's tooling broadcasts constraints by their event_dim).
    arg_constraints = {"locs": constraints.independent(constraints.real, 2),
                       "coord_scale": constraints.independent(constraints.positive, 1),
                       "component_logits": constraints.independent(constraints.real, 1)}
    _family = "shared_cov"
    _min_dims = {"locs": 2, "coord_scale": 1, "component_logits": 1}  # dimensions each argument needs at least

    def __init__(self, locs, coord_scale, component_logits, validate_args=None):
        self._init({"locs": locs, "coord_scale": coord_scale, "component_logits": component_logits},
                   validate_args)


class MixtureOfDiagNormals(_GaussianMixture):
    r"""Mixture of K Normals ``N(mu_j, diag(coord_scale_j)^2)`` with arbitrary diagonal covariances.

    Args:
        locs (Tensor): component means, shape ``(*batch, K, D)``.
        coord_scale (Tensor): component standard deviations, shape ``(*batch, K, D)``, positive.
        component_logits (Tensor): mixture logits, shape ``(*batch, K)``.
        velocity (str): the velocity field for ``component_logits``, ``"reference"`` (default) or
            ``"pairwise"``; both are unbiased and differ in cost and variance (see below).

    Gradients of :meth:`rsample`: ``locs``, ``coord_scale`` through eq. 12 (O(K D) per sample);
    ``component_logits`` through eq. 51, ``v^{l_j} = pi_j (W^j - sum_k pi_k W^k)``, where ``W^j``
    moves mass between ``q_j`` and a reference density by the coordinate-wise telescoping of
    eqs. 49-50, with reference scale ``s'_i = min_j coord_scale_ji`` (eq. 52):

    * ``velocity="reference"``: one reference ``N(mu', s')`` common to all components,
      ``mu' = sum_k pi_k mu_k`` (the mixture mean). The reference cancels in eq. 51, so this is the
      whole field: cost O(K D) per sample.
    * ``velocity="pairwise"``: per-component references ``N(mu_j, s')``, joined by eq. 15 (pairwise
      transport along ``mu_j - mu_k`` at scale ``s'``). Cost O(K^2 D) per sample (the construction Pyro
      also uses); with equal covariances it reduces exactly to
      :class:`MixtureOfDiagNormalsSharedCovariance` (the remark on Fig. 1c in the paper).

    The reference field moves mass along the coordinate axes (a staircase from ``mu_j`` to ``mu'``)
    rather than along the straight lines ``mu_j - mu_k``; its variance is compared with the pairwise
    field's in the README (Gaussian mixtures, Fig. 1b/1c).
    """

    arg_constraints = {"locs": constraints.independent(constraints.real, 2),
                       "coord_scale": constraints.independent(constraints.positive, 2),
                       "component_logits": constraints.independent(constraints.real, 1)}
    _family = "diag_normals"
    _min_dims = {"locs": 2, "coord_scale": 2, "component_logits": 1}  # dimensions each argument needs at least

    def __init__(self, locs, coord_scale, component_logits, validate_args=None, velocity="reference"):
        cls = type(self).__name__
        if velocity not in ("reference", "pairwise"):
            raise ValueError(f"{cls}: velocity must be 'reference' or 'pairwise', got {velocity!r}")
        self._velocity = velocity
        self._init({"locs": locs, "coord_scale": coord_scale, "component_logits": component_logits},
                   validate_args)


class GaussianScaleMixture(_GaussianMixture):
    r"""Zero-mean Gaussian scale mixture: K Normals ``N(0, diag(component_scale_j * coord_scale)^2)``.

    Args:
        coord_scale (Tensor): coordinate standard deviations, shape ``(*batch, D)``, positive.
        component_logits (Tensor): mixture logits, shape ``(*batch, K)``.
        component_scale (Tensor): per-component scale factors ``lambda_j``, shape ``(*batch, K)``, positive.

    Gradients of :meth:`rsample`: ``coord_scale``, ``component_scale`` through eq. 12;
    ``component_logits`` through the radial velocity field of eq. 40, whose radial CDF (eqs. 41-43, even
    and odd D) is evaluated as a regularized incomplete gamma function ``Q(D/2, r^2/2)`` in log space.
    Cost O(K D) per sample. Any ``D >= 1``.
    """

    arg_constraints = {"coord_scale": constraints.independent(constraints.positive, 1),
                       "component_logits": constraints.independent(constraints.real, 1),
                       "component_scale": constraints.independent(constraints.positive, 1)}
    _family = "gaussian_scale"
    _min_dims = {"coord_scale": 1, "component_logits": 1, "component_scale": 1}  # dimensions each argument needs at least

    def __init__(self, coord_scale, component_logits, component_scale, validate_args=None):
        self._init({"coord_scale": coord_scale, "component_logits": component_logits,
                    "component_scale": component_scale}, validate_args)


class DiscreteGaussianScaleMixture(_GaussianMixture):
    r"""Discrete Gaussian scale mixture with means: K Normals
    ``N(mu_j, diag(component_scale_j * coord_scale)^2)``.

    Args:
        locs (Tensor): component means, shape ``(*batch, K, D)``.
        coord_scale (Tensor): shared coordinate standard deviations, shape ``(*batch, D)``, positive.
        component_logits (Tensor): mixture logits, shape ``(*batch, K)``.
        component_scale (Tensor): per-component scale factors ``lambda_j``, shape ``(*batch, K)``, positive.

    Gradients of :meth:`rsample`: ``locs``, ``coord_scale``, ``component_scale`` through eq. 12;
    ``component_logits`` through eq. 54: eq. 15 with the reference scale ``lambda_0 * coord_scale``
    (``lambda_0 = min_j lambda_j``) moves mass between the component means, and the radial fields of
    eq. 40 (their difference, eq. 55) dilate each component from ``lambda_0`` to ``lambda_j``.
    Cost O(K^2 D) per sample.
    """

    arg_constraints = {"locs": constraints.independent(constraints.real, 2),
                       "coord_scale": constraints.independent(constraints.positive, 1),
                       "component_logits": constraints.independent(constraints.real, 1),
                       "component_scale": constraints.independent(constraints.positive, 1)}
    _family = "discrete_gaussian_scale"
    _min_dims = {"locs": 2, "coord_scale": 1, "component_logits": 1, "component_scale": 1}  # dimensions each argument needs at least

    def __init__(self, locs, coord_scale, component_logits, component_scale, validate_args=None):
        self._init({"locs": locs, "coord_scale": coord_scale, "component_logits": component_logits,
                    "component_scale": component_scale}, validate_args)
