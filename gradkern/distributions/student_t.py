"""Student's t with exact implicit reparameterization gradients w.r.t. the degrees of freedom."""
import torch
import torch.distributions as td

from ..gamma import student_t_rsample

__all__ = ["StudentT"]


class StudentT(td.StudentT):
    r"""StudentT(df, loc, scale) with exact implicit gradients w.r.t. ``df``.
    See :class:`torch.distributions.StudentT`."""

    def rsample(self, sample_shape=torch.Size()):
        """Reparameterized samples from :func:`gradkern.student_t_rsample` (exact implicit gradient
        w.r.t. ``df``; ``loc`` and ``scale`` by the location-scale transform)."""
        shape = self._extended_shape(sample_shape)
        return student_t_rsample(self.df.expand(shape), self.loc.expand(shape), self.scale.expand(shape))
