"""gradkern.distributions.TruncatedNormal: samples against scipy.stats.truncnorm (deep tails included),
implicit gradients unbiased for loc, scale and both bounds, moments, log_prob / cdf / icdf, the
distribution contract (shapes, support, expand, validate_args, generator)."""
import math

import numpy as np
import pytest
import torch
from scipy import stats

from gradkern.distributions import TruncatedNormal

F64 = torch.float64
WINDOWS = [(-1.0, 2.0), (8.0, 9.0), (-40.0, -39.0), (0.0, math.inf), (-math.inf, -30.0), (3.0, 3.001),
           (-6.0, 6.0)]


def _t(v, dtype=F64):
    return torch.tensor(v, dtype=dtype)


def _dist(loc, scale, lo, hi, dtype=F64, **kw):
    return TruncatedNormal(_t(loc, dtype), _t(scale, dtype), _t(lo, dtype), _t(hi, dtype), **kw)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("lo,hi", WINDOWS)
def test_samples_follow_scipy(lo, hi, dtype):
    d = _dist(0.0, 1.0, lo, hi, dtype)
    z = d.sample((20_000,), generator=torch.Generator().manual_seed(0))
    assert z.dtype == dtype and torch.isfinite(z).all()
    assert (z >= lo).all() and (z <= hi).all()
    assert stats.kstest(z.double().numpy(), stats.truncnorm(lo, hi).cdf).pvalue > 1e-4


@pytest.mark.parametrize("loc,scale,lo,hi", [(0.3, 1.5, -1.0, 2.0), (0.0, 1.0, 8.0, 9.0), (1.0, 2.0, -math.inf, 0.5),
                                             (0.0, 1.0, -40.0, -39.0), (-2.0, 0.5, -2.5, math.inf)])
def test_gradients_unbiased(loc, scale, lo, hi):
    # d/dtheta E[z] against central differences of scipy's truncnorm mean, within 4 standard errors.
    n = 200_000
    params = [torch.full((n,), v, dtype=F64, requires_grad=True) for v in (loc, scale, lo, hi)]
    z = TruncatedNormal(*params).rsample(generator=torch.Generator().manual_seed(1))
    grads = torch.autograd.grad(z.sum(), params)

    def mean(v):
        return stats.truncnorm((v[2] - v[0]) / v[1], (v[3] - v[0]) / v[1], loc=v[0], scale=v[1]).mean()

    vals = [loc, scale, lo, hi]
    for i, g in enumerate(grads):
        assert torch.isfinite(g).all()
        if not math.isfinite(vals[i]):
            assert (g == 0).all()  # an infinite bound has no gradient
            continue
        h = 1e-5 * max(1.0, abs(vals[i]))
        vp, vm = list(vals), list(vals)
        vp[i] += h
        vm[i] -= h
        want = (mean(vp) - mean(vm)) / (2 * h)
        se = g.std().item() / math.sqrt(n)
        assert abs(g.mean().item() - want) <= 4 * se + 1e-9, (i, g.mean().item(), want, se)


@pytest.mark.parametrize("lo,hi", WINDOWS)
def test_moments_log_prob_cdf_icdf(lo, hi):
    loc, scale = 0.5, 2.0
    d = _dist(loc, scale, loc + scale * lo, loc + scale * hi)
    ref = stats.truncnorm(lo, hi, loc=loc, scale=scale)
    torch.testing.assert_close(d.mean, _t(ref.mean()), rtol=1e-12, atol=1e-12)
    # the closed-form variance is a difference of terms ~alpha^2 (and 1/width^2 of a narrow window)
    # larger than itself
    torch.testing.assert_close(d.variance, _t(ref.var()), rtol=1e-5 if hi - lo < 0.01 else 1e-9, atol=0)
    u = torch.tensor([0.01, 0.3, 0.5, 0.8, 0.99], dtype=F64)
    x = d.icdf(u)
    torch.testing.assert_close(x, torch.from_numpy(ref.ppf(u.numpy())), rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(d.cdf(x), u, rtol=1e-9, atol=1e-12)
    lp = d.log_prob(x)
    want = torch.from_numpy(ref.logpdf(x.numpy()))
    torch.testing.assert_close(lp, want, rtol=1e-9, atol=1e-9)
    if math.isfinite(lo):
        below = torch.tensor([loc + scale * lo - 1.0], dtype=F64)
        d_v = _dist(loc, scale, loc + scale * lo, loc + scale * hi, validate_args=True)
        with pytest.raises(ValueError):  # torch's convention under validate_args
            d_v.log_prob(below)
        d_nv = _dist(loc, scale, loc + scale * lo, loc + scale * hi, validate_args=False)
        assert d_nv.log_prob(below).item() == -math.inf


def test_invalid_parameters_give_nan_samples():
    nan = math.nan
    d = TruncatedNormal(torch.tensor([0.0, 0.0, nan, 0.0]), torch.tensor([1.0, -1.0, 1.0, 1.0]),
                        torch.tensor([2.0, -1.0, -1.0, -1.0]), torch.tensor([1.0, 1.0, 1.0, 1.0]),
                        validate_args=False)
    z = d.sample((5,))
    assert z[:, :3].isnan().all() and z[:, 3].isfinite().all()


def test_copy_and_pickle():
    import copy
    import pickle

    d = TruncatedNormal(torch.zeros(2), torch.ones(2), torch.tensor([-1.0, 8.0]), torch.tensor([1.0, 9.0]))
    for e in (copy.deepcopy(d), pickle.loads(pickle.dumps(d))):
        assert type(e) is TruncatedNormal
        for name in ("loc", "scale", "low", "high"):
            assert torch.equal(getattr(e, name), getattr(d, name))
        assert torch.equal(e.sample((3,), generator=torch.Generator().manual_seed(4)),
                           d.sample((3,), generator=torch.Generator().manual_seed(4)))


def test_contract():
    d = TruncatedNormal(torch.zeros(3), torch.ones(3), torch.tensor([-1.0, 0.0, 5.0]), torch.tensor(6.0))
    assert d.batch_shape == (3,) and d.event_shape == ()
    assert d.rsample((4, 2)).shape == (4, 2, 3)
    e = d.expand((5, 3))
    assert e.batch_shape == (5, 3) and e.sample().shape == (5, 3)
    assert d.support.check(torch.tensor([0.0, 1.0, 5.5])).all()
    g1 = d.sample((10,), generator=torch.Generator().manual_seed(3))
    g2 = d.sample((10,), generator=torch.Generator().manual_seed(3))
    assert torch.equal(g1, g2)
    with pytest.raises(ValueError, match="low must be smaller than high"):
        TruncatedNormal(0.0, 1.0, 2.0, 1.0, validate_args=True)
    with pytest.raises(ValueError):
        TruncatedNormal(0.0, -1.0, 0.0, 1.0, validate_args=True)
    # Second derivatives are exact: against the inverse-CDF map z(loc) = loc + scale * ndtri(Phi(alpha) +
    # u (Phi(beta) - Phi(alpha))) at the sample's quantile u.
    a = torch.tensor(0.5, dtype=F64, requires_grad=True)
    z = TruncatedNormal(a, _t(1.0), _t(0.0), _t(2.0)).rsample((3,), generator=torch.Generator().manual_seed(0))
    (g,) = torch.autograd.grad(z.sum(), a, create_graph=True)
    (h,) = torch.autograd.grad(g, a)
    lo, hi, zz = _t(0.0), _t(2.0), z.detach()
    ndtr = torch.special.ndtr
    u = (ndtr(zz - 0.5) - ndtr(lo - 0.5)) / (ndtr(hi - 0.5) - ndtr(lo - 0.5))
    explicit = lambda m: (m + torch.special.ndtri(ndtr(lo - m) + u * (ndtr(hi - m) - ndtr(lo - m)))).sum()  # noqa: E731
    torch.testing.assert_close(g.detach(), torch.func.grad(explicit)(a.detach()), rtol=1e-9, atol=0)
    torch.testing.assert_close(h, torch.func.hessian(explicit)(a.detach()), rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("loc,scale,lo,hi", [(0.3, 1.5, -1.0, 2.0), (0.0, 1.0, 8.0, 9.0), (1.0, 2.0, -math.inf, 0.5),
                                             (0.0, 1.0, -40.0, -39.0), (-2.0, 0.5, -2.5, math.inf)])
def test_closed_form_gradients_match_implicit_rsample(loc, scale, lo, hi):
    # rsample's closed-form implicit gradients (_AttachTruncatedNormal) against implicit reparameterization's
    # Newton steps on the oriented log CDF (the previous implementation, exact to third order), on the same
    # samples: first derivatives (jacrev), the Hessian (jacrev of jacrev, and jacfwd of jacrev) in every
    # parameter pair, windows deep in both tails and with an infinite bound. The previous implementation's
    # Hessian was NaN with an infinite bound (inf * 0 in its graph); the reference stands in +-1e3 for it (>=
    # 500 standard deviations out: Phi rounds to exactly 0 or 1 there, so the value and every derivative are
    # those of the infinite bound to double precision).
    from torch.func import jacfwd, jacrev

    from gradkern._implicit import _implicit_steps

    p0 = torch.tensor([loc, scale, lo, hi], dtype=F64)
    fin = torch.isfinite(p0)

    def fast(p):
        q = torch.where(fin, p, p0)
        return TruncatedNormal(*q).rsample((6,), generator=torch.Generator().manual_seed(5))

    def ref(p):
        q = torch.where(fin, p, p0.clamp(-1e3, 1e3))
        with torch.no_grad():
            z = TruncatedNormal(*p0).rsample((6,), generator=torch.Generator().manual_seed(5))
        d = TruncatedNormal(*q)
        return _implicit_steps(z, d._log_cdf_oriented, tuple(q), d._log_cdf_oriented_dz)

    pf = torch.where(fin, p0, torch.zeros_like(p0))
    torch.testing.assert_close(fast(pf), ref(pf), rtol=0, atol=0)
    j1, j2 = jacrev(fast)(pf), jacrev(ref)(pf)
    assert torch.isfinite(j1).all() and (j1[:, fin] != 0).any()
    torch.testing.assert_close(j1, j2, rtol=1e-9, atol=1e-12)
    h1, h2 = jacrev(jacrev(fast))(pf), jacrev(jacrev(ref))(pf)
    assert torch.isfinite(h1).all()
    torch.testing.assert_close(h1, h2, rtol=1e-7, atol=1e-10)
    torch.testing.assert_close(jacfwd(jacrev(fast), randomness="same")(pf), h1, rtol=1e-8, atol=1e-12)


def test_log_ndtri_against_mpmath():
    # The draw's inversion of log Phi (both starting points: ndtri above log Phi = -600, the Mills-ratio
    # asymptote below), after its fixed number of Newton steps.
    import mpmath as mp

    from gradkern.distributions._truncated import _log_ndtri

    lps = [-1e-12, -1e-3, -0.5, -3.0, -30.0, -300.0, -599.0, -601.0, -700.0, -3000.0, -1e5]
    got = _log_ndtri(torch.tensor(lps, dtype=F64)).tolist()
    with mp.workdps(40):
        for lp, x in zip(lps, got):
            want = mp.findroot(lambda t: mp.log(mp.ncdf(t)) - lp, x)
            assert abs(x - float(want)) <= 1e-15 * abs(float(want)), (lp, x, want)


def test_rsample_under_torch_compile():
    # fullgraph: the compiled graph takes the Newton-step form (an autograd.Function with a custom jvp does not
    # trace); value and gradient equal eager's closed form.
    a = torch.tensor([0.2, 0.5], dtype=F64, requires_grad=True)

    def f(a):
        return TruncatedNormal(a, 1.0, -1.0, 2.0).rsample((3,)).sum()

    torch.manual_seed(2)
    eager_v = f(a)
    (eager_g,) = torch.autograd.grad(eager_v, a)
    torch.manual_seed(2)  # the eager backend of aot_eager draws the same numbers
    comp_v = torch.compile(f, fullgraph=True, backend="aot_eager")(a)
    (comp_g,) = torch.autograd.grad(comp_v, a)
    torch.testing.assert_close(comp_v, eager_v, rtol=0, atol=0)
    torch.testing.assert_close(comp_g, eager_g, rtol=1e-12, atol=1e-14)
