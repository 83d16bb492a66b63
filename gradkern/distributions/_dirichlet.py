"""Dirichlet with torch's gradient field computed exactly, and log-space sampling."""
import torch
import torch.distributions as td

from .._gamma import _check_reparameterization, dirichlet_rsample
from ._common import DeepcopyMixin, GeneratorSampleMixin

__all__ = ["Dirichlet"]


class Dirichlet(GeneratorSampleMixin, DeepcopyMixin, td.Dirichlet):
    r"""Dirichlet(concentration) normalised in log space (correct down to concentrations of 1e-6), with
    exact implicit gradients.

    Args:
        concentration, validate_args: as :class:`torch.distributions.Dirichlet`.
        reparameterization (str, keyword-only): ``"marginal"`` (default): torch's gradient field, each
            coordinate's marginal Beta implicit gradient (Jankowiak and Obermeyer 2018), computed exactly
            from the incomplete beta function; ``"gamma"``: through the Gamma components. See
            :func:`gradkern.dirichlet_rsample`; for concentrations so small that coordinates underflow,
            :func:`gradkern.log_dirichlet_rsample` gives ``log z`` with its exact gradient.
    """

    def __init__(self, concentration, validate_args=None, *, reparameterization="marginal"):
        _check_reparameterization("distributions.Dirichlet", reparameterization)
        self.reparameterization = reparameterization
        super().__init__(concentration, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        """:meth:`torch.distributions.Dirichlet.expand`, keeping ``reparameterization``."""
        new = self._get_checked_instance(Dirichlet, _instance)
        new.reparameterization = self.reparameterization
        return super().expand(batch_shape, _instance=new)

    def rsample(self, sample_shape=torch.Size(), generator=None):
        """Reparameterized samples of shape ``sample_shape + batch_shape + event_shape`` from
        :func:`gradkern.dirichlet_rsample` with this distribution's ``reparameterization``, in
        ``[tiny, 1 - eps/2]`` like torch's; ``generator`` is passed on."""
        shape = self._extended_shape(sample_shape)
        return dirichlet_rsample(self.concentration.expand(shape), generator=generator,
                                 reparameterization=self.reparameterization)
