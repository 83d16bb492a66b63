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

    Factorized vector components, ``Independent(base, 1)`` with a univariate base (e.g. diagonal Normals),
    are reparameterized by the distributional transform of the paper's section 4: coordinate ``d`` through
    its CDF conditioned on the earlier coordinates, whose mixing weights are the posterior component
    probabilities given them; the triangular system of implicit gradients is solved by forward
    substitution (one sweep over the coordinates, O(K D) per sample), not formed.

    Components: any univariate family with a differentiable ``cdf``: torch's Normal, Laplace, Cauchy,
    Exponential, Uniform and gradkern's Gamma, Chi2, Beta, TruncatedNormal, ... (torch's Gamma and Beta have
    no differentiable ``cdf``; use gradkern's). Not VonMises: each component's CDF is measured from its own
    ``loc - pi``, so ``rsample`` raises. Other vector components (full covariance, ...)
    raise in ``rsample``.

    Arguments and everything else: :class:`torch.distributions.MixtureSameFamily`; ``sample`` and
    ``rsample`` take ``generator=`` when the component family does (gradkern's distributions).
    """

    @property
    def has_rsample(self):
        """True for univariate components (the implicit gradient of the mixture's CDF) and for factorized
        vector components, ``Independent(base, 1)`` of a univariate base (the distributional transform)."""
        return self._event_ndims == 0 or self._factorized() is not None

    def _factorized(self):
        """The per-coordinate component distributions (batch ``(*B, K)`` each) of an ``Independent(base, 1)``
        component family whose base is univariate and built from its ``arg_constraints`` parameters; None
        otherwise."""
        comp = self.component_distribution
        if not (isinstance(comp, td.Independent) and comp.reinterpreted_batch_ndims == 1 and self._event_ndims == 1):
            return None
        base = comp.base_dist
        if base.event_shape != torch.Size():
            return None
        names = [n for n in base.arg_constraints if isinstance(getattr(base, n, None), torch.Tensor)]
        try:
            coords = [type(base)(**{n: getattr(base, n)[..., d] for n in names}, validate_args=False)
                      for d in range(base.batch_shape[-1])]
        except TypeError:
            return None
        return coords

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
            if self._event_ndims == 0:
                return torch.gather(draws, -1, idx.unsqueeze(-1)).squeeze(-1).detach()
            event = draws.shape[draws.dim() - self._event_ndims:]
            index = idx.reshape(idx.shape + (1,) * (1 + self._event_ndims)).expand(idx.shape + (1,) + event)
            return torch.gather(draws, idx.dim(), index).squeeze(idx.dim()).detach()

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
        """Reparameterized samples of shape ``sample_shape + batch_shape + event_shape``, with implicit
        gradients w.r.t. the mixing logits (or probs) and the component parameters."""
        if isinstance(self.component_distribution, td.VonMises):
            # Each component's CDF is measured from its own loc - pi: their weighted sum is not the mixture's
            # CDF on a common origin, and the gradient would be silently wrong.
            raise NotImplementedError("gradkern.distributions.MixtureSameFamily.rsample: von Mises components are "
                                      "not supported (their CDFs have no common origin on the circle)")
        if self._event_ndims != 0:
            coords = self._factorized()
            if coords is None:
                raise NotImplementedError(
                    "gradkern.distributions.MixtureSameFamily.rsample: vector components must be factorized, "
                    "Independent(base, 1) of a univariate base (the distributional transform), got "
                    f"{type(self.component_distribution).__name__} with event_shape "
                    f"{tuple(self.component_distribution.event_shape)}")
            return self._distributional_transform(self._draw(sample_shape, generator), coords)
        z = self._draw(sample_shape, generator)
        params = _param_tensors(self.mixture_distribution) + _param_tensors(self.component_distribution)
        return implicit_rsample(z, lambda z, *p: self._oriented_cdf(z), params,
                                log_prob=lambda z, *p: td.MixtureSameFamily.log_prob(self, z))

    def _sweep(self, z, coords, target):
        """One Gauss-Seidel Newton sweep over the coordinates of the distributional transform (section 4):
        coordinate d's CDF conditioned on the earlier ones, F_d(z_d | z_<d) = sum_k w_kd F_kd(z_d) with the
        posterior weights w_kd proportional to pi_k prod_{j<d} q_kj(z_j), is moved towards its target with
        the earlier coordinates already updated. The weights are carried as running log-weights (O(K) per
        coordinate), so the triangular system of the transform is solved by forward substitution through
        the graph, never formed. With target None, returns the conditional CDFs at z instead."""
        logw = torch.log_softmax(self.mixture_distribution.logits, -1)
        out = []
        for d, comp in enumerate(coords):
            zd = z[..., d]
            zk = zd.unsqueeze(-1)
            w = torch.softmax(logw, -1)
            F = (w * comp.cdf(zk)).sum(-1)
            if target is None:
                out.append(F)
                new = zd
            else:
                q = (w * comp.log_prob(zk).exp()).sum(-1)
                r = F - target[..., d]
                edge = (F.detach() == target[..., d]) & ~torch.isfinite(target[..., d])
                r = torch.where(edge, torch.zeros_like(r), r)
                q = torch.where(edge | (q.detach() == 0), torch.ones_like(q), q)
                new = zd - r / q
                out.append(new)
            logw = logw + comp.log_prob(new.unsqueeze(-1))
        return torch.stack(out, -1)

    def _distributional_transform(self, z, coords):
        # The quantiles of the sample under the transform (a constant), then two sweeps from the sample:
        # the value is z bit for bit (every residual is exactly 0), the derivatives those of the implicit
        # map theta -> z at fixed quantiles, to third order (as implicit_rsample's two Newton steps).
        with torch.no_grad():
            u = self._sweep(z, coords, None).detach()
        z1 = self._sweep(z, coords, u)
        return self._sweep(z1, coords, u)
