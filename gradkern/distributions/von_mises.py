"""von Mises with a fused sampler and exact implicit reparameterization gradients."""
import torch
import torch.distributions as td

from ..vonmises import vonmises_rsample

__all__ = ["VonMises"]


class VonMises(td.VonMises):
    r"""VonMises(loc, concentration) with ``has_rsample = True``: samples from gradkern's fused kernel
    (on CPU and CUDA), reparameterized with the exact implicit gradient w.r.t. the concentration.
    Everything else is :class:`torch.distributions.VonMises`."""

    has_rsample = True

    def rsample(self, sample_shape=torch.Size()):
        """Reparameterized samples from :func:`gradkern.vonmises_rsample`, in ``[-pi, pi)``: gradient 1
        w.r.t. ``loc`` and the exact implicit gradient w.r.t. the concentration."""
        shape = self._extended_shape(sample_shape)
        return vonmises_rsample(self.loc.expand(shape), self.concentration.expand(shape))

    @torch.no_grad()
    def sample(self, sample_shape=torch.Size()):
        """Samples from the same fused kernel as :meth:`rsample`, without gradient."""
        return self.rsample(sample_shape)
