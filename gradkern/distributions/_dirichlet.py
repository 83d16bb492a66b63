"""Dirichlet normalised in log space, with exact implicit reparameterization gradients."""
import torch
import torch.distributions as td

from .._gamma import dirichlet_rsample
from ._common import DeepcopyMixin, GeneratorSampleMixin

__all__ = ["Dirichlet"]


class Dirichlet(GeneratorSampleMixin, DeepcopyMixin, td.Dirichlet):
    r"""Dirichlet(concentration) normalised in log space: correct down to concentrations of 1e-6,
    with exact implicit gradients. See :class:`torch.distributions.Dirichlet`."""

    def rsample(self, sample_shape=torch.Size(), generator=None):
        """Reparameterized samples from :func:`gradkern.dirichlet_rsample` (exact implicit gradients
        w.r.t. the concentration), clamped away from 0; ``generator`` is passed on."""
        shape = self._extended_shape(sample_shape)
        value = dirichlet_rsample(self.concentration.expand(shape), generator=generator)
        return value.clamp(min=torch.finfo(value.dtype).tiny)
