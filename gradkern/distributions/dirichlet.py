"""Dirichlet normalised in log space, with exact implicit reparameterization gradients."""
import torch
import torch.distributions as td

from ..gamma import dirichlet_rsample

__all__ = ["Dirichlet"]


class Dirichlet(td.Dirichlet):
    r"""Dirichlet(concentration) normalised in log space: correct down to concentrations of 1e-6,
    with exact implicit gradients. See :class:`torch.distributions.Dirichlet`."""

    def rsample(self, sample_shape=()):
        """Reparameterized samples from :func:`gradkern.dirichlet_rsample` (exact implicit gradients
        w.r.t. the concentration), clamped away from 0."""
        shape = self._extended_shape(sample_shape)
        value = dirichlet_rsample(self.concentration.expand(shape))
        return value.clamp(min=torch.finfo(value.dtype).tiny)
