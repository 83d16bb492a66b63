"""MixtureSameFamily with rsample: pathwise gradients for the mixture weights and every component parameter
by implicit reparameterization of the mixture's CDF (section 4 of Figurnov et al. 2018)."""
import torch
import torch.distributions as td

from .._beta import betaincc
from .._implicit import implicit_rsample
from .._special import gammaincc
from ._common import DeepcopyMixin

__all__ = ["MixtureSameFamily"]


def survival(dist, value):
    """1 - cdf(value), computed directly where the family allows it (Normal: erfc; Gamma / Chi2: the upper
    incomplete gamma; Beta: the complementary incomplete beta), so that the upper tail keeps its relative
    precision; otherwise 1 - cdf."""
    if isinstance(dist, td.Normal):
        return 0.5 * torch.special.erfc((value - dist.loc) * (dist.scale.reciprocal() * 0.7071067811865476))
    if isinstance(dist, td.Gamma):  # Chi2 too
        return gammaincc(dist.concentration, dist.rate * value)
    if isinstance(dist, td.Beta):
        return betaincc(dist.concentration1, dist.concentration0, value)
    return 1 - dist.cdf(value)


def _param_tensors(dist):
    out = []
    for name in getattr(dist, "arg_constraints", {}):
        try:
            t = getattr(dist, name)
        except Exception:  # a lazy property that cannot be formed (e.g. logits given as probs)
            continue
        if isinstance(t, torch.Tensor):
            out.append(t)
    return out


class MixtureSameFamily(DeepcopyMixin, td.MixtureSameFamily):
    r""":class:`torch.distributions.MixtureSameFamily` with ``rsample`` for univariate components.

    torch's class has no ``rsample`` (pytorch/pytorch#39178). Here a sample is drawn as torch draws it
    (a component index from the mixing distribution, then that component's sample) and then given the
    implicit reparameterization gradient of the mixture itself (eq. 8 with the mixture's CDF
    :math:`F(z) = \sum_k w_k F_k(z)` and density :math:`q(z) = \sum_k w_k q_k(z)`): pathwise w.r.t. the
    mixing logits and every component parameter, unbiased, and differentiable again (second order, every
    torch.func transform; see :func:`gradkern.implicit_rsample`). Above the median the CDF is formed from
    the components' survival functions (:math:`-\sum_k w_k S_k(z)`, the same gradient without the
    cancellation of :math:`1 - F` in the upper tail).

    Components: any univariate family with a differentiable ``cdf``: torch's Normal, Laplace, Cauchy,
    Exponential, Uniform and gradkern's Gamma, Chi2, Beta, VonMises, TruncatedNormal, ... (torch's Gamma and
    Beta have no differentiable ``cdf``; use gradkern's). Multivariate (factorized) components need the
    distributional transform and are not supported yet: ``rsample`` raises.

    Arguments and everything else: :class:`torch.distributions.MixtureSameFamily`; ``sample`` and
    ``rsample`` take ``generator=`` when the component family does (gradkern's distributions).
    """

    @property
    def has_rsample(self):
        """True for univariate components (the implicit gradient of the mixture's CDF)."""
        return self._event_ndims == 0

    def _draw(self, sample_shape, generator):
        sample_shape = torch.Size(sample_shape)
        comp = self.component_distribution
        with torch.no_grad():
            if generator is None:
                idx = self.mixture_distribution.sample(sample_shape)
                draws = comp.sample(sample_shape)
            else:
                probs = self.mixture_distribution.probs
                flat = probs.reshape(-1, probs.shape[-1])
                n = max(1, sample_shape.numel())
                idx = torch.multinomial(flat, n, replacement=True, generator=generator)  # (B, n)
                idx = idx.T.reshape(sample_shape + probs.shape[:-1])
                try:
                    draws = comp.sample(sample_shape, generator=generator)
                except TypeError:
                    raise TypeError("gradkern.distributions.MixtureSameFamily: generator= needs a component "
                                    f"family whose sample takes one (gradkern's distributions); "
                                    f"{type(comp).__name__} does not") from None
            return torch.gather(draws, -1, idx.unsqueeze(-1)).squeeze(-1).detach()

    def sample(self, sample_shape=torch.Size(), generator=None):
        """As torch's (a component index, then that component's sample); ``generator`` optional."""
        if self._event_ndims != 0 or generator is None:
            with torch.no_grad():
                return super().sample(sample_shape).detach()
        return self._draw(sample_shape, generator).detach()

    def _oriented_cdf(self, z):
        # sum_k w_k F_k(z) below the median, -sum_k w_k S_k(z) above it (the orientation is a discrete
        # choice, from the detached values: it takes no gradient, and both give the same eq.-8 gradient).
        comp = self.component_distribution
        w = self.mixture_distribution.probs
        zk = z.unsqueeze(-1)
        lower = (w * comp.cdf(zk)).sum(-1)
        upper = -(w * survival(comp, zk)).sum(-1)
        return torch.where(lower.detach() <= 0.5, lower, upper)

    def rsample(self, sample_shape=torch.Size(), generator=None):
        """Reparameterized samples of shape ``sample_shape + batch_shape``, with implicit gradients w.r.t.
        the mixing logits (or probs) and the component parameters."""
        if self._event_ndims != 0:
            raise NotImplementedError(
                "gradkern.distributions.MixtureSameFamily.rsample: multivariate components (event_shape "
                f"{tuple(self.component_distribution.event_shape)}) need the distributional transform, which is "
                "not implemented yet; univariate components are supported")
        z = self._draw(sample_shape, generator)
        params = _param_tensors(self.mixture_distribution) + _param_tensors(self.component_distribution)
        return implicit_rsample(z, lambda z, *p: self._oriented_cdf(z), params,
                                log_prob=lambda z, *p: td.MixtureSameFamily.log_prob(self, z))
