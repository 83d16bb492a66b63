"""Beta sampled from log-space Gamma variables, with exact implicit reparameterization gradients."""
import torch
import torch.distributions as td

from .._gamma import beta_rsample
from ._common import DeepcopyMixin, GeneratorSampleMixin

__all__ = ["Beta"]


class Beta(GeneratorSampleMixin, DeepcopyMixin, td.Beta):
    r"""Beta(concentration1, concentration0) sampled from log-space Gamma variables: correct down to
    concentrations of 1e-6 (torch's Beta puts far too much mass in the interior there), with exact
    implicit gradients. See :class:`torch.distributions.Beta`."""

    def rsample(self, sample_shape=torch.Size(), generator=None):
        """Reparameterized samples from :func:`gradkern.beta_rsample` (exact implicit gradients w.r.t.
        both concentrations), clamped into the open interval (0, 1); ``generator`` is passed on."""
        shape = self._extended_shape(sample_shape)
        value = beta_rsample(self.concentration1.expand(shape), self.concentration0.expand(shape),
                             generator=generator)
        eps = torch.finfo(value.dtype).tiny
        return value.clamp(min=eps, max=1 - torch.finfo(value.dtype).eps / 2)
