"""Section 4 of the implicit reparameterization paper beyond the Normal: Truncated(base, low, high) for any
univariate base with a CDF (Gamma exact in both tails through gradkern's incomplete gamma), and
MixtureSameFamily with rsample for univariate components.

Unbiasedness: per-sample implicit gradients (one parameter copy per sample, so the gradient of the sum is
the vector of per-sample gradients) averaged, against the derivative of the closed-form or quadrature
expectation, within 5 standard errors. Samples: KS against SciPy's truncated CDF, in windows deep in either
tail.
"""
import math

import numpy as np
import pytest
import torch
from scipy import integrate, special as sps, stats

import gradkern
from gradkern.distributions import Gamma, MixtureSameFamily, Truncated, TruncatedNormal

F64 = torch.float64
TD = torch.distributions


def _t(v):
    return torch.tensor(v, dtype=F64)


def _ks(z, cdf):
    z = np.sort(z.detach().numpy())
    n = len(z)
    c = cdf(z)
    return max(np.max(np.arange(1, n + 1) / n - c), np.max(c - np.arange(n) / n))


def _per_sample(make, values, n, seed, f=lambda z: z):
    """(mean, standard error) of the per-sample gradients of f(z) w.r.t. each parameter."""
    leaves = [torch.full((n,), v, dtype=F64, requires_grad=True) for v in values]
    z = make(*leaves).rsample(generator=torch.Generator().manual_seed(seed))
    grads = torch.autograd.grad(f(z).sum(), leaves)
    return [(g.mean().item(), g.std().item() / math.sqrt(n)) for g in grads]


# --- Truncated Gamma ----------------------------------------------------------------------------------------
WINDOWS = [(2.0, 1.0, 0.5, 3.0), (1e-3, 1.0, 1e-30, 1e-20), (2.0, 1.0, 50.0, 60.0), (0.5, 2.0, 3.0, math.inf),
           (5.0, 1.0, 0.0, 0.1), (30.0, 3.0, 2.0, 4.0)]


@pytest.mark.parametrize("a,r,lo,hi", WINDOWS)
def test_truncated_gamma_samples(a, r, lo, hi):
    d = Truncated(Gamma(_t(a), _t(r)), _t(lo), _t(hi))
    z = d.rsample((20000,), generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(z).all() and ((z >= lo) & (z <= hi)).all()
    upper = sps.gammainc(a, r * lo) + sps.gammainc(a, r * hi) > 1 if math.isfinite(hi) else True
    if upper:
        s_lo, s_hi = sps.gammaincc(a, r * lo), sps.gammaincc(a, r * hi)
        cdf = lambda x: (s_lo - sps.gammaincc(a, r * x)) / (s_lo - s_hi)  # noqa: E731
    else:
        f_lo, f_hi = sps.gammainc(a, r * lo), sps.gammainc(a, r * hi)
        cdf = lambda x: (sps.gammainc(a, r * x) - f_lo) / (f_hi - f_lo)  # noqa: E731
    assert _ks(z, cdf) < 1.63 / math.sqrt(len(z))  # KS at the 1% level
    # The plain inverse CDF would return a bound (or inf) in the deep-tail windows: the samples spread.
    assert len(set(z.tolist())) > 19000


def _truncated_gamma_mean(a, r, lo, hi):
    z = sps.gammainc(a, r * hi) - sps.gammainc(a, r * lo)
    return integrate.quad(lambda x: x * stats.gamma.pdf(x, a, scale=1 / r), lo, hi, epsabs=1e-14)[0] / z


@pytest.mark.parametrize("a,r,lo,hi", [(2.0, 1.0, 0.5, 3.0), (0.7, 2.0, 0.1, 1.5)])
def test_truncated_gamma_gradients_unbiased(a, r, lo, hi):
    got = _per_sample(lambda a_, r_, l_, h_: Truncated(Gamma(a_, r_), l_, h_), (a, r, lo, hi), 100_000, seed=3)
    base, h = [a, r, lo, hi], 1e-5
    for i, (mean, se) in enumerate(got):
        p, m = list(base), list(base)
        p[i] += h
        m[i] -= h
        want = (_truncated_gamma_mean(*p) - _truncated_gamma_mean(*m)) / (2 * h)
        assert abs(mean - want) < 5 * se + 1e-7, (i, mean, want, se)


def test_truncated_generic_torch_base_and_normal_special_case():
    # Exponential(rate) on [lo, hi]: E[z] = 1/rate + (lo e^{-rate lo} - hi e^{-rate hi}) / (e^{-rate lo} - e^{-rate hi}).
    def mean(rate, lo=0.5, hi=2.0):
        a, b = math.exp(-rate * lo), math.exp(-rate * hi)
        return 1 / rate + (lo * a - hi * b) / (a - b)
    (m, se), = _per_sample(lambda r_: Truncated(TD.Exponential(r_), _t(0.5), _t(2.0)), (1.5,), 100_000, seed=4)
    want = (mean(1.5 + 1e-6) - mean(1.5 - 1e-6)) / 2e-6
    assert abs(m - want) < 5 * se, (m, want, se)
    d = Truncated(TD.Normal(_t(0.0), _t(1.0)), _t(8.0), _t(9.0))
    assert isinstance(d, TruncatedNormal)
    z = d.rsample((1000,))
    assert torch.isfinite(z).all() and (z >= 8).all() and (z <= 9).all()


def test_truncated_contract():
    a, r = _t(2.0).requires_grad_(), _t(1.0).requires_grad_()
    d = Truncated(Gamma(a, r), _t(0.5), _t(3.0))
    x = torch.tensor([0.2, 0.5, 1.0, 3.0, 4.0], dtype=F64)
    lp = Truncated(Gamma(a, r), _t(0.5), _t(3.0), validate_args=False).log_prob(x)
    assert lp[0] == -math.inf and lp[-1] == -math.inf and torch.isfinite(lp[1:4]).all()
    # The density integrates to 1 over the window; cdf and icdf are inverse; gradcheck of the deterministic parts.
    grid = torch.linspace(0.5, 3.0, 20001, dtype=F64)
    assert abs(torch.trapezoid(d.log_prob(grid).exp(), grid).item() - 1) < 1e-8
    p = torch.tensor([0.0, 0.1, 0.5, 0.99, 1.0], dtype=F64)
    torch.testing.assert_close(d.cdf(d.icdf(p)), p, rtol=1e-10, atol=1e-12)
    assert torch.autograd.gradcheck(lambda a, r: Truncated(Gamma(a, r), _t(0.5), _t(3.0)).log_prob(_t(1.2)), (a, r))
    assert torch.autograd.gradcheck(lambda a, q: Truncated(Gamma(a, r), _t(0.5), _t(3.0)).icdf(q),
                                    (a, _t(0.3).requires_grad_()))
    assert d.batch_shape == () and d.expand((4,)).rsample().shape == (4,)
    assert d.sample((3,), generator=torch.Generator().manual_seed(1)).shape == (3,)
    with pytest.raises(ValueError, match="low must be smaller than high"):
        Truncated(Gamma(_t(2.0), _t(1.0)), _t(3.0), _t(1.0), validate_args=True)
    with pytest.raises(ValueError, match="univariate"):
        Truncated(TD.MultivariateNormal(torch.zeros(2), torch.eye(2)), 0.0, 1.0)
    with pytest.raises(ValueError, match="circular base"):
        Truncated(gradkern.distributions.VonMises(_t(0.0), _t(1.0)), -1.0, 1.0)
    # Second order, through implicit_rsample: w.r.t. the concentration, the rate and the bounds (equal in
    # both mode orders; the concentration's through d2P/da2, csrc/core/igamma_d2.h); a third derivative in
    # the concentration raises, naming the op.
    f = lambda a_, r_, hi: Truncated(Gamma(a_, r_), _t(0.5), hi).rsample(  # noqa: E731
        (4,), generator=torch.Generator().manual_seed(0))
    for argnums in (0, 1, 2):
        h1 = torch.func.jacrev(torch.func.jacrev(f, argnums=argnums), argnums=argnums)(_t(2.0), _t(1.0), _t(3.0))
        h2 = torch.func.jacfwd(torch.func.jacrev(f, argnums=argnums), argnums=argnums,
                               randomness="same")(_t(2.0), _t(1.0), _t(3.0))
        torch.testing.assert_close(h1, h2, rtol=1e-9, atol=1e-12)
        assert torch.isfinite(h1).all() and (h1 != 0).any()
    g = lambda a_: Truncated(Gamma(a_, _t(1.0)), _t(0.5), _t(3.0)).rsample((4,))  # noqa: E731
    with pytest.raises(RuntimeError, match="gradkern.gammainc_grad_aa: the derivative w.r.t. a"):
        torch.func.jacrev(torch.func.jacrev(torch.func.jacrev(g)))(_t(2.0))


# --- MixtureSameFamily --------------------------------------------------------------------------------------
def test_mixture_normal_gradients_unbiased():
    # f(z) = z^2: E = sum_k w_k (mu_k^2 + s_k^2).
    logits0, loc0, scale0 = [0.3, -0.5, 0.1], [-2.0, 0.5, 3.0], [0.5, 1.0, 2.0]
    n = 100_000
    logits = torch.tensor(logits0, dtype=F64).expand(n, 3).clone().requires_grad_()
    loc = torch.tensor(loc0, dtype=F64).expand(n, 3).clone().requires_grad_()
    scale = torch.tensor(scale0, dtype=F64).expand(n, 3).clone().requires_grad_()
    m = MixtureSameFamily(TD.Categorical(logits=logits), TD.Normal(loc, scale))
    z = m.rsample(generator=None)
    grads = torch.autograd.grad((z ** 2).sum(), (logits, loc, scale))
    lt, lc, sc = (torch.tensor(v, dtype=F64, requires_grad=True) for v in (logits0, loc0, scale0))
    want = torch.autograd.grad((torch.softmax(lt, 0) * (lc ** 2 + sc ** 2)).sum(), (lt, lc, sc))
    for g, w in zip(grads, want):
        mean, se = g.mean(0), g.std(0) / math.sqrt(n)
        assert ((mean - w).abs() < 5 * se + 1e-12).all(), (mean, w, se)


def test_mixture_gamma_gradients_unbiased_and_tails():
    # Gamma components (gradkern's, differentiable cdf): E[z] = sum_k w_k a_k / r_k.
    n = 100_000
    logits = torch.tensor([0.0, 1.0], dtype=F64).expand(n, 2).clone().requires_grad_()
    conc = torch.tensor([0.5, 8.0], dtype=F64).expand(n, 2).clone().requires_grad_()
    rate = torch.tensor([1.0, 0.5], dtype=F64).expand(n, 2).clone().requires_grad_()
    m = MixtureSameFamily(TD.Categorical(logits=logits), Gamma(conc, rate))
    z = m.rsample()
    grads = torch.autograd.grad(z.sum(), (logits, conc, rate))
    lt, c, r = (torch.tensor(v, dtype=F64, requires_grad=True) for v in ([0.0, 1.0], [0.5, 8.0], [1.0, 0.5]))
    want = torch.autograd.grad((torch.softmax(lt, 0) * c / r).sum(), (lt, c, r))
    for g, w in zip(grads, want):
        mean, se = g.mean(0), g.std(0) / math.sqrt(n)
        assert ((mean - w).abs() < 5 * se + 1e-12).all(), (mean, w, se)
    assert torch.isfinite(torch.stack(grads)).all()


def test_mixture_contract():
    logits = torch.tensor([0.2, -0.1], dtype=F64, requires_grad=True)
    loc = torch.tensor([-1.0, 2.0], dtype=F64, requires_grad=True)
    m = MixtureSameFamily(TD.Categorical(logits=logits), TD.Normal(loc, _t(1.0).expand(2)))
    assert m.has_rsample and isinstance(m, TD.MixtureSameFamily)
    g = MixtureSameFamily(TD.Categorical(logits=logits), Gamma(_t(2.0).expand(2), _t(1.0).expand(2)))
    a = g.rsample((7,), generator=torch.Generator().manual_seed(2))
    b = g.rsample((7,), generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and a.shape == (7,)
    assert not torch.equal(a, g.rsample((7,), generator=torch.Generator().manual_seed(3)))
    # torch.func: per-sample gradients and forward mode agree with reverse mode.
    def f(loc):
        torch.manual_seed(0)
        return MixtureSameFamily(TD.Categorical(logits=logits.detach()), TD.Normal(loc, _t(1.0).expand(2))).rsample((5,))

    torch.testing.assert_close(torch.func.jacfwd(f, randomness="same")(loc.detach()), torch.func.jacrev(f)(loc.detach()),
                               rtol=1e-12, atol=0)
    # A sample's gradient w.r.t. loc sums to 1 over the components (shifting every component shifts z).
    torch.testing.assert_close(torch.func.jacrev(f)(loc.detach()).sum(-1), torch.ones(5, dtype=F64), rtol=1e-12, atol=0)
    full = MixtureSameFamily(TD.Categorical(logits=logits),
                             TD.MultivariateNormal(torch.zeros(2, 3, dtype=F64), torch.eye(3, dtype=F64)))
    assert not full.has_rsample
    with pytest.raises(NotImplementedError, match="must be factorized"):
        full.rsample()
    vm = MixtureSameFamily(TD.Categorical(logits=logits), gradkern.distributions.VonMises(loc, _t(1.0).expand(2)))
    with pytest.raises(NotImplementedError, match="von Mises components"):
        vm.rsample()
    with pytest.raises(TypeError, match="generator= needs a component family"):
        m.rsample((2,), generator=torch.Generator())


# --- factorized vector components: the distributional transform ---------------------------------------
def test_mixture_distributional_transform_unbiased():
    # f(z) = |z|^2 + z_0 z_1 over diagonal-Normal components: E = sum_k w_k (|mu_k|^2 + |s_k|^2 + mu_k0 mu_k1).
    logits0 = [0.3, -0.2, 0.1]
    locs0 = [[-2.0, 1.0], [0.5, -1.0], [2.0, 2.0]]
    scales0 = [[0.5, 1.0], [1.0, 0.7], [0.8, 1.5]]
    n = 100_000
    lt = torch.tensor(logits0, dtype=F64).expand(n, 3).clone().requires_grad_()
    lc = torch.tensor(locs0, dtype=F64).expand(n, 3, 2).clone().requires_grad_()
    sc = torch.tensor(scales0, dtype=F64).expand(n, 3, 2).clone().requires_grad_()
    m = MixtureSameFamily(TD.Categorical(logits=lt), TD.Independent(TD.Normal(lc, sc), 1))
    assert m.has_rsample
    torch.manual_seed(0)
    z = m.rsample()
    assert z.shape == (n, 2)
    grads = torch.autograd.grad(((z ** 2).sum(-1) + z[..., 0] * z[..., 1]).sum(), (lt, lc, sc))
    a, b, c = (torch.tensor(v, dtype=F64, requires_grad=True) for v in (logits0, locs0, scales0))
    w = torch.softmax(a, 0)
    e = (w * ((b ** 2 + c ** 2).sum(-1) + b[:, 0] * b[:, 1])).sum()
    want = torch.autograd.grad(e, (a, b, c))
    for g, wt in zip(grads, want):
        mean, se = g.mean(0), g.std(0) / math.sqrt(n)
        assert ((mean - wt).abs() < 5 * se + 1e-12).all(), (mean, wt, se)
    # The value is the ancestral draw, bit for bit (the sweeps move nothing).
    torch.manual_seed(0)
    assert torch.equal(m.sample(), z.detach())


def test_mixture_distributional_transform_modes_and_field():
    logits = torch.tensor([0.3, -0.2], dtype=F64)
    scales = torch.tensor([[0.5, 1.0], [1.0, 0.7]], dtype=F64)

    def f(locs):
        torch.manual_seed(1)
        m = MixtureSameFamily(TD.Categorical(logits=logits), TD.Independent(TD.Normal(locs, scales), 1))
        return m.rsample((3,))

    locs = torch.tensor([[-1.0, 1.0], [1.0, -1.0]], dtype=F64)
    rev = torch.func.jacrev(f)(locs)
    torch.testing.assert_close(torch.func.jacfwd(f, randomness="same")(locs), rev, rtol=1e-12, atol=1e-14)
    # Shifting every component by the same vector shifts every sample by it: sum_k dz_d / dmu_kd' = delta_dd'.
    torch.testing.assert_close(rev.sum(-2), torch.eye(2, dtype=F64).expand(3, 2, 2), rtol=1e-12, atol=1e-12)
    # The first coordinate's gradient is the univariate mixture's (its CDF does not condition on anything).
    torch.manual_seed(1)
    z = MixtureSameFamily(TD.Categorical(logits=logits), TD.Independent(TD.Normal(locs, scales), 1)).sample((3,))
    m1 = MixtureSameFamily(TD.Categorical(logits=logits), TD.Normal(locs[:, 0], scales[:, 0]))
    uni = torch.func.jacrev(lambda l0: gradkern.implicit_rsample(
        z[:, 0], lambda v, *p: MixtureSameFamily(TD.Categorical(logits=logits), TD.Normal(l0, scales[:, 0])).cdf(v),
        (l0,), log_prob=lambda v, *p: MixtureSameFamily(TD.Categorical(logits=logits),
                                                         TD.Normal(l0, scales[:, 0])).log_prob(v)))(locs[:, 0])
    torch.testing.assert_close(rev[:, 0, :, 0], uni, rtol=1e-12, atol=1e-14)
    assert m1.has_rsample
