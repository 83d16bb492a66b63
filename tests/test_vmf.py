"""von Mises-Fisher (csrc/core/vmf.h, gradkern._vmf, gradkern.distributions.VonMisesFisher).

Accuracy against mpmath (tests/data/vmf_ref.csv, tools/gen_vmf_ref.py) over d in {2, ..., 1000} and kappa
from 0 to 1e6 at bulk and extreme quantiles; the d = 3 closed form; the d = 2 agreement with the von Mises
kernels; the sampler by KS tests of w = mu^T z against the exact CDF and by the moments of the tangent
direction; the gradients w.r.t. the concentration and the mean direction by Monte Carlo within standard
errors; the distribution's normaliser, entropy, KL, mean and variance; errors and domains.
"""
import math
import os

import pytest
import torch
from scipy import stats

import gradkern
from gradkern.distributions import HypersphericalUniform, VonMisesFisher
from gradkern.reference import vmf as vmf_ref

OPS = torch.ops.gradkern
DATA = os.path.join(os.path.dirname(__file__), "data", "vmf_ref.csv")


def _table():
    rows = []
    with open(DATA) as f:
        for line in f:
            if line.startswith("#"):
                continue
            p = line.strip().split(",")
            rows.append([int(p[0])] + [float(x) for x in p[1:]])
    return rows


def _rel(got, want):
    return ((got - want).abs() / want.abs().clamp_min(1e-300)).max().item()


@pytest.fixture(scope="module")
def table():
    rows = _table()
    assert len(rows) > 400
    return rows


def _columns(rows, dtype):
    t = torch.tensor([r[1:] for r in rows], dtype=torch.float64)
    return {"d": [r[0] for r in rows], "kappa": t[:, 0].to(dtype), "u": t[:, 1].to(dtype), "cdf": t[:, 2],
            "grad": t[:, 3], "log_z": t[:, 4], "mean": t[:, 5], "var": t[:, 6]}


def _by_d(cols):
    for d in sorted(set(cols["d"])):
        idx = torch.tensor([i for i, x in enumerate(cols["d"]) if x == d])
        yield d, idx


# float64: the goal is max relative error <= 1e-10 (measured here: ~1e-13); float32 <= 1e-4.
@pytest.mark.parametrize("dtype,tol,kmax", [(torch.float64, 1e-10, 1e6), (torch.float32, 1e-4, 1e5)])
def test_grad_and_cdf_against_mpmath(table, dtype, tol, kmax):
    cols = _columns(table, dtype)
    worst = {}
    for d, idx in _by_d(cols):
        k, u = cols["kappa"][idx], cols["u"][idx]
        keep = k <= kmax
        if dtype == torch.float32:  # values float32 cannot hold (CDFs below its smallest normal)
            keep &= cols["cdf"][idx] > 1e-30
        g = OPS.vmf_grad_u(k, u, d).double()
        F = OPS.vmf_cdf_u(u, k, d).double()
        worst[d] = (_rel(g[keep], cols["grad"][idx][keep]), _rel(F[keep], cols["cdf"][idx][keep]))
    bad = {d: w for d, w in worst.items() if max(w) > tol}
    assert not bad, f"relative errors (grad, cdf) above {tol}: {bad}"


def test_grad_deep_in_the_far_tail():
    # u = 1.98 at kappa = 1e6 (w = -0.98, e^-2e6 below the mode): each side's integral is relative to its own
    # peak and the sides are combined through exponent differences. The earlier combination in logs lost 2e-10
    # here (measured against these references); the bound is the 1e-10.
    for d, u in ((7, 1.98), (33, 1.9800001), (100, 1.98)):
        want = float(vmf_ref.grad_u(1e6, d, u))
        got = OPS.vmf_grad_u(torch.tensor(1e6, dtype=torch.float64), torch.tensor(u, dtype=torch.float64), d).item()
        assert abs(got - want) <= 1e-10 * abs(want), (d, u, got, want)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-11), (torch.float32, 1e-5)])
def test_moments_against_mpmath(table, dtype, tol):
    cols = _columns(table, dtype)
    for d, idx in _by_d(cols):
        k = cols["kappa"][idx]
        keep = k <= (1e6 if dtype == torch.float64 else 1e5)
        log_z, mean, var = (o.double() for o in OPS.vmf_moments(k[keep], d))
        assert _rel(mean, cols["mean"][idx][keep]) < tol, d
        assert _rel(var, cols["var"][idx][keep]) < 10 * tol, d
        # log Z_u: absolute error relative to max(1, |log Z_u|)
        err = ((log_z - cols["log_z"][idx][keep]).abs() / cols["log_z"][idx][keep].abs().clamp_min(1)).max()
        assert err < tol, d


def test_d3_closed_form():
    # u has density kappa e^(-kappa u) / (1 - e^(-2 kappa)): F(u) = expm1(-kappa u) / expm1(-2 kappa)
    g = torch.Generator().manual_seed(3)
    k = torch.exp(torch.empty(400, dtype=torch.float64).uniform_(math.log(1e-4), math.log(1e5), generator=g))
    p = torch.rand(400, dtype=torch.float64, generator=g)
    u = -torch.log1p(p * torch.expm1(-2 * k)) / k
    # the closed form differentiated in mpmath (in float64 its two terms cancel for small kappa)
    want = torch.tensor([float(vmf_ref.grad_u_closed_d3(a, b)) for a, b in zip(k.tolist(), u.tolist())],
                        dtype=torch.float64)
    assert _rel(OPS.vmf_grad_u(k, u, 3), want) < 1e-11
    assert _rel(OPS.vmf_cdf_u(u, k, 3), p) < 1e-11  # p -> u -> p in float64 loses a few digits itself
    # the mean resultant length coth(kappa) - 1 / kappa, as E[u] = 1 - A_3
    _, mean, _ = OPS.vmf_moments(k, 3)
    a = 1 / torch.tanh(k) - 1 / k
    big = k > 1
    assert _rel(mean[big], (1 - a)[big]) < 1e-10  # the float64 formula itself cancels near kappa = 1


def test_d2_is_von_mises():
    g = torch.Generator().manual_seed(2)
    k = torch.exp(torch.empty(300, dtype=torch.float64).uniform_(math.log(1e-3), math.log(1e5), generator=g))
    theta = gradkern.vonmises_rsample(0.0, k, generator=g).abs()
    u = 2 * torch.sin(theta / 2) ** 2
    want = torch.sin(theta) * gradkern.vonmises_grad(k, theta)
    assert _rel(OPS.vmf_grad_u(k, u, 2), want) < 1e-12
    # moments: the quadrature of the d = 2 case against torch's Bessel functions
    log_z, mean, var = OPS.vmf_moments(k, 2)
    a = torch.special.i1e(k) / torch.special.i0e(k)
    assert _rel(mean, 1 - a) < 1e-9  # i1e / i0e are accurate to ~1e-12 only; 1 - a cancels at large kappa
    assert _rel(log_z, math.log(math.pi) + torch.log(torch.special.i0e(k))) < 1e-10  # torch.special.i0e: ~1e-12


@pytest.mark.parametrize("d,kappa", [(2, 3.0), (3, 0.0), (3, 50.0), (5, 0.7), (10, 1e4), (64, 20.0), (1000, 300.0)])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_sampler_ks(d, kappa, dtype):
    n = 20000
    gen = torch.Generator().manual_seed(11)
    k = torch.full((n,), kappa, dtype=dtype)
    u = OPS.vmf_sample_u(k, d, generator=gen)
    assert ((u >= 0) & (u <= 2)).all()
    cdf = lambda x: OPS.vmf_cdf_u(torch.as_tensor(x), torch.tensor(kappa, dtype=torch.float64), d).numpy()  # noqa: E731
    p = stats.kstest(u.double().numpy(), cdf).pvalue
    assert p > 1e-3, (d, kappa, p)
    # the test can fail: another concentration is rejected
    if kappa > 0:
        wrong = lambda x: OPS.vmf_cdf_u(torch.as_tensor(x), torch.tensor(1.3 * kappa + 0.3, dtype=torch.float64), d).numpy()  # noqa: E731
        assert stats.kstest(u.double().numpy(), wrong).pvalue < 1e-3


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_noise_is_standard_normal(dtype):
    # the fused Philox / Box-Muller normals of vmf_rsample: moments within 5 standard errors, a KS test, and no
    # correlation between neighbours (the two outputs of a Box-Muller pair, the words of a Philox block)
    gen = torch.Generator().manual_seed(5)
    x = OPS.vmf_noise(torch.zeros(40000, dtype=dtype), 6, generator=gen)
    assert x.shape == (40000, 5) and x.dtype == dtype
    f = x.double().flatten()
    n = f.numel()
    assert abs(f.mean().item()) < 5 / math.sqrt(n)
    assert abs(f.var().item() - 1) < 5 * math.sqrt(2 / n)
    assert abs((f ** 4).mean().item() - 3) < 5 * math.sqrt(96 / n)
    assert stats.kstest(f.numpy(), "norm").pvalue > 1e-4
    for lag in (1, 2, 3, 4):
        r = torch.corrcoef(torch.stack([f[:-lag], f[lag:]]))[0, 1].item()
        assert abs(r) < 5 / math.sqrt(n), lag
    col = x.double()
    assert (col.mean(0).abs() < 5 / math.sqrt(40000)).all()  # every position of a row


def test_noise_streams():
    # a value depends only on (seed, flat position): the same seed gives the same flat stream whatever the
    # shape (totals that end inside a Philox block included) and the thread count; successive calls differ
    for dtype in (torch.float32, torch.float64):
        a = OPS.vmf_noise(torch.zeros(5, dtype=dtype), 4, generator=torch.Generator().manual_seed(3)).flatten()
        b = OPS.vmf_noise(torch.zeros(3, dtype=dtype), 6, generator=torch.Generator().manual_seed(3)).flatten()
        assert torch.equal(a, b)
        big = torch.zeros(70001, dtype=dtype)
        threads = torch.get_num_threads()
        try:
            torch.set_num_threads(1)
            one = OPS.vmf_noise(big, 3, generator=torch.Generator().manual_seed(4))
            torch.set_num_threads(max(2, threads))
            many = OPS.vmf_noise(big, 3, generator=torch.Generator().manual_seed(4))
        finally:
            torch.set_num_threads(threads)
        assert torch.equal(one, many)
        g = torch.Generator().manual_seed(4)
        assert not torch.equal(OPS.vmf_noise(big, 3, generator=g), OPS.vmf_noise(big, 3, generator=g))
    assert OPS.vmf_noise(torch.zeros(0, 3), 5).shape == (0, 3, 4)
    with pytest.raises(RuntimeError, match="like must be float32 or float64"):
        OPS.vmf_noise(torch.zeros(3, dtype=torch.float16), 3)
    with pytest.raises(RuntimeError, match="d .* must be an integer >= 2"):
        OPS.vmf_noise(torch.zeros(3), 1)


@pytest.mark.parametrize("d", [2, 3, 7, 50])
def test_direction_is_uniform_around_loc(d):
    # the tangent part v = (z - w mu) / |z - w mu| is uniform on the sphere orthogonal to mu: E[v] = 0 and
    # E[v v^T] = (I - mu mu^T) / (d - 1), within 5 standard errors
    n = 40000
    gen = torch.Generator().manual_seed(d)
    mu = torch.nn.functional.normalize(torch.randn(d, dtype=torch.float64, generator=gen), dim=0)
    z = gradkern.vmf_rsample(mu, 4.0, (n,), generator=gen)
    assert torch.allclose(z.norm(dim=-1), torch.ones(n, dtype=torch.float64), atol=1e-14)
    w = z @ mu
    t = z - w[:, None] * mu
    v = t / t.norm(dim=-1, keepdim=True)
    assert (v.mean(0).abs() < 5 * (1 / math.sqrt((d - 1) * n)) + 1e-12).all()
    proj = torch.eye(d, dtype=torch.float64) - torch.outer(mu, mu)
    second = v.T @ v / n
    se = math.sqrt(1.0 / n)  # |v_i v_j| <= 1
    assert (second - proj / (d - 1)).abs().max() < 5 * se


@pytest.mark.parametrize("d,kappa", [(3, 2.0), (10, 15.0), (100, 80.0), (2, 1.5)])
def test_concentration_gradient_unbiased(d, kappa):
    # d/dkappa E[mu^T z] = A_d'(kappa) = Var[w]
    n = 40000
    gen = torch.Generator().manual_seed(7)
    mu = torch.zeros(d, dtype=torch.float64)
    mu[0] = 1
    # one concentration per sample: its gradient is that sample's dw/dkappa
    k = torch.full((n,), kappa, dtype=torch.float64, requires_grad=True)
    z = gradkern.vmf_rsample(mu, k, generator=gen)
    (per,) = torch.autograd.grad(z[:, 0].sum(), k)
    se = per.std().item() / math.sqrt(n)
    _, _, var = OPS.vmf_moments(torch.tensor(kappa, dtype=torch.float64), d)
    assert abs(per.mean().item() - var.item()) < 5 * se, (per.mean().item(), var.item(), se)


def test_loc_gradient_unbiased():
    # E[a^T z] = A_d(kappa) a^T mu; with mu = theta / |theta| its gradient is A (a - (a^T mu) mu) / |theta|
    d, n, kappa = 6, 40000, 3.0
    gen = torch.Generator().manual_seed(4)
    theta0 = torch.randn(d, dtype=torch.float64, generator=gen)
    a = torch.randn(d, dtype=torch.float64, generator=gen)
    theta = theta0.expand(n, d).clone().requires_grad_()  # one copy per sample: per-sample gradients
    mu = theta / theta.norm(dim=-1, keepdim=True)
    f = gradkern.vmf_rsample(mu, kappa, generator=gen) @ a
    (jac,) = torch.autograd.grad(f.sum(), theta)
    g = jac.mean(0)
    _, m, _ = OPS.vmf_moments(torch.tensor(kappa, dtype=torch.float64), d)
    A = 1 - m
    mu0 = theta0 / theta0.norm()
    want = A * (a - (a @ mu0) * mu0) / theta0.norm()
    se = jac.std(0) / math.sqrt(n)
    assert ((g - want).abs() < 5 * se + 1e-12).all(), (g, want, se)


def test_direction_maps_e1_to_loc():
    # vmf_direction at u = 0 is H(loc) e_1 = loc (up to the pole's floor sqrt(tiny)), for loc = +-e_1 too (the
    # textbook reflection h = e_1 - loc divides by 0 at loc = e_1); for any u it is an isometry: |z| = 1, and
    # loc^T z = 1 - u
    gen = torch.Generator().manual_seed(0)
    for d in (2, 3, 17):
        loc = torch.nn.functional.normalize(torch.randn(50, d, generator=gen, dtype=torch.float64), dim=-1)
        loc[0] = 0
        loc[0, 0] = 1
        loc[1] = 0
        loc[1, 0] = -1
        noise = torch.randn(50, d - 1, generator=gen, dtype=torch.float64)
        z0 = OPS.vmf_direction(loc, torch.zeros(50, 1, dtype=torch.float64), noise)
        assert torch.allclose(z0, loc, atol=1e-15)
        u = torch.rand(50, 1, generator=gen, dtype=torch.float64) * 2
        z = OPS.vmf_direction(loc, u, noise)
        assert torch.allclose(z.norm(dim=-1), torch.ones(50, dtype=torch.float64), atol=1e-14)
        assert torch.allclose((z * loc).sum(-1), 1 - u[:, 0], atol=1e-14)


def test_half_precision_samples():
    # half and bfloat16 go through the float32 kernels and come back in their own dtype, with gradients
    loc = torch.nn.functional.normalize(torch.randn(5, 4), dim=-1)
    for dtype in (torch.float16, torch.bfloat16):
        k = torch.tensor([1.0, 10.0, 100.0, 0.0, 5.0], dtype=dtype, requires_grad=True)
        z = gradkern.vmf_rsample(loc.to(dtype), k, (3,), generator=torch.Generator().manual_seed(0))
        assert z.dtype == dtype and z.shape == (3, 5, 4)
        assert (z.float().norm(dim=-1) - 1).abs().max() < 1e-2
        (g,) = torch.autograd.grad(z.float().sum(), k)
        assert torch.isfinite(g).all() and g.dtype == dtype


# --- the distribution ---------------------------------------------------------------------------------
def test_log_prob_d3_closed_form():
    # C_3(kappa) = kappa / (4 pi sinh kappa)
    gen = torch.Generator().manual_seed(1)
    mu = torch.nn.functional.normalize(torch.randn(3, dtype=torch.float64, generator=gen), dim=0)
    for kappa in (1e-3, 0.5, 7.0, 300.0):
        p = VonMisesFisher(mu, torch.tensor(kappa, dtype=torch.float64), validate_args=True)
        z = p.sample((200,), generator=gen)
        want = math.log(kappa) - math.log(4 * math.pi) - (kappa + math.log(-math.expm1(-2 * kappa)) - math.log(2)) \
            + kappa * (z @ mu)
        assert torch.allclose(p.log_prob(z), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("d", [2, 3, 8, 200])
def test_entropy_mean_variance_kl(d):
    n = 40000
    gen = torch.Generator().manual_seed(d)
    mu = torch.nn.functional.normalize(torch.randn(d, dtype=torch.float64, generator=gen), dim=0)
    p = VonMisesFisher(mu, torch.tensor(5.0 + d / 4, dtype=torch.float64), validate_args=True)
    z = p.sample((n,), generator=gen)
    lp = p.log_prob(z)
    assert abs(-lp.mean() - p.entropy()) < 5 * lp.std() / math.sqrt(n)
    assert ((z.mean(0) - p.mean).abs() < 5 * z.std(0) / math.sqrt(n)).all()
    var_se = ((z - z.mean(0)) ** 2).std(0) / math.sqrt(n)
    assert ((z.var(0) - p.variance).abs() < 5 * var_se + 1e-12).all()
    uniform = HypersphericalUniform(d, dtype=torch.float64)
    kl = torch.distributions.kl_divergence(p, uniform)
    assert abs(kl - (lp - uniform.log_prob(z)).mean()) < 5 * lp.std() / math.sqrt(n)
    # KL(p || p) = 0 exactly; KL to the concentration-0 vMF is the KL to the uniform distribution
    assert torch.distributions.kl_divergence(p, p).abs() < 1e-12
    q0 = VonMisesFisher(mu, torch.tensor(0.0, dtype=torch.float64))
    assert torch.allclose(torch.distributions.kl_divergence(p, q0), kl, rtol=1e-10)


def test_uniform_limit():
    d = 5
    p = VonMisesFisher(torch.eye(d, dtype=torch.float64)[0], torch.tensor(0.0, dtype=torch.float64))
    u = HypersphericalUniform(d, dtype=torch.float64)
    assert torch.allclose(p.entropy(), u.entropy(), rtol=1e-13)
    assert torch.allclose(p.variance, u.variance, rtol=1e-12)
    z = u.sample((100,))
    assert torch.allclose(p.log_prob(z), u.log_prob(z), rtol=1e-13)


def test_shapes_and_expand():
    loc = torch.nn.functional.normalize(torch.randn(4, 1, 3), dim=-1)
    kappa = torch.rand(5) + 0.5
    p = VonMisesFisher(loc, kappa)
    assert p.batch_shape == (4, 5) and p.event_shape == (3,)
    z = p.rsample((2,))
    assert z.shape == (2, 4, 5, 3)
    assert p.log_prob(z).shape == (2, 4, 5)
    q = p.expand((6, 4, 5))
    assert type(q) is VonMisesFisher and q.sample().shape == (6, 4, 5, 3)
    assert p.entropy().shape == (4, 5) and p.mean.shape == (4, 5, 3)


def test_errors_and_domain():
    with pytest.raises(ValueError, match="loc"):
        VonMisesFisher(torch.tensor([1.0, 1.0]), 1.0, validate_args=True)  # not unit norm
    with pytest.raises(ValueError, match="concentration"):
        VonMisesFisher(torch.tensor([1.0, 0.0]), -1.0, validate_args=True)
    with pytest.raises(ValueError, match="last dimension d >= 2"):
        gradkern.vmf_rsample(torch.tensor([1.0]), 1.0)
    with pytest.raises(RuntimeError, match="d .* must be an integer >= 2"):
        OPS.vmf_sample_u(torch.ones(3), 1)
    # invalid concentrations give NaN, never a finite sample
    z = gradkern.vmf_rsample(torch.tensor([0.0, 1.0, 0.0]), torch.tensor([-1.0, float("nan"), float("inf")]))
    assert torch.isnan(z).all()
    kap, u = torch.tensor([1.0, -1.0, 1.0]), torch.tensor([0.5, 0.5, 2.5])
    for out in (OPS.vmf_grad_u(kap, u, 4), OPS.vmf_cdf_u(u, kap, 4)):
        assert torch.isfinite(out[0]) and torch.isnan(out[1:]).all()


def test_large_concentration_float32():
    # kappa = 1e5 in float32: samples stay unit vectors, within a few 1/kappa of loc, gradients finite
    loc = torch.nn.functional.normalize(torch.ones(16), dim=0)
    k = torch.tensor(1e5, requires_grad=True)
    z = gradkern.vmf_rsample(loc, k, (1000,), generator=torch.Generator().manual_seed(0))
    assert torch.allclose(z.norm(dim=-1), torch.ones(1000), atol=1e-6)
    one_m_w = 0.5 * (z - loc).pow(2).sum(-1)
    assert one_m_w.mean().item() == pytest.approx(15 / (2 * 1e5), rel=0.05)
    (g,) = torch.autograd.grad(z.sum(), k)
    assert torch.isfinite(g)


def test_gradient_at_the_poles_is_finite():
    # d = 2 draws can land exactly on the antipode (theta = -pi, u = 2): du/dkappa = 0 there and the
    # sample's gradient must be 0, not 0 * inf = NaN (a VAE training run hit this); likewise u = 0
    k = torch.tensor([0.9, 0.9], requires_grad=True)
    u = torch.tensor([2.0, 0.0])
    assert (OPS.vmf_grad_u(k.detach(), u, 2) == 0).all()
    # u with the sampler's autograd path (du/dkappa from vmf_grad_u, here 0) placed exactly on the poles
    draw = OPS.vmf_sample_u(k, 2) * 0 + u
    loc = torch.tensor([[0.6, 0.8], [0.6, 0.8]], requires_grad=True)
    for dtype in (torch.float32, torch.float64):
        z = OPS.vmf_direction(loc.to(dtype), draw.to(dtype).unsqueeze(-1), torch.ones(2, 1, dtype=dtype))
        gk, gl = torch.autograd.grad(z.sum(), (k, loc), retain_graph=True)
        assert torch.isfinite(gk).all() and torch.isfinite(gl).all() and (gk == 0).all()


@pytest.mark.parametrize("dtype,kmin,kmax", [(torch.float64, 1e-6, 1e6), (torch.float32, 1e-4, 1e5)])
def test_domain_ends(dtype, kmin, kmax):
    # the domain: d = 2 .. 1024, kappa from kmin to kmax; finite everywhere, continuous at kappa -> 0
    for d in (2, 3, 4, 33, 1024):
        k = torch.tensor([kmin, kmax], dtype=dtype)
        u = OPS.vmf_sample_u(k.repeat(500), d, generator=torch.Generator().manual_seed(d))
        g = OPS.vmf_grad_u(k.repeat(500), u, d)
        assert torch.isfinite(u).all() and torch.isfinite(g).all() and (g <= 0).all(), d
        for out in OPS.vmf_moments(k, d):
            assert torch.isfinite(out).all(), d
        # kappa = kmin is the uniform distribution to first order: du/dkappa -> its kappa = 0 value
        x = torch.tensor([0.3, 1.0, 1.7], dtype=dtype)
        g0 = OPS.vmf_grad_u(torch.zeros(3, dtype=dtype), x, d)
        g1 = OPS.vmf_grad_u(torch.full((3,), kmin, dtype=dtype), x, d)
        assert torch.allclose(g1, g0, rtol=100 * kmin * d, atol=1e-12), (d, g0, g1)


def test_fused_direction_backward_matches_the_differentiable_formula():
    # first-order backward runs the fused kernel; with create_graph=True the ATen formulas (the twin that
    # has second derivatives) run instead: both must give the same gradient
    g = torch.Generator().manual_seed(9)
    for d in (2, 3, 16):
        loc = torch.nn.functional.normalize(torch.randn(40, d, generator=g, dtype=torch.float64), dim=-1)
        loc[0] = 0
        loc[0, 0] = -1
        loc.requires_grad_()
        u = (torch.rand(40, 1, generator=g, dtype=torch.float64) * 2).requires_grad_()
        noise = torch.randn(40, d - 1, generator=g, dtype=torch.float64).requires_grad_()
        w = torch.randn(40, d, generator=g, dtype=torch.float64)
        z = OPS.vmf_direction(loc, u, noise)
        fused = torch.autograd.grad((z * w).sum(), (loc, u, noise), retain_graph=True)
        formula = torch.autograd.grad((z * w).sum(), (loc, u, noise), create_graph=True)
        for a, b in zip(fused, formula):
            torch.testing.assert_close(a, b.detach(), rtol=1e-12, atol=1e-12)  # O(1) gradients, summed differently


def test_vmap_rules_of_the_direction_ops():
    # batched and unbatched arguments of different leading ranks, against a loop over the batch
    g = torch.Generator().manual_seed(5)
    d, V = 4, 3
    loc = torch.nn.functional.normalize(torch.randn(V, d, generator=g, dtype=torch.float64), dim=-1)  # (V, d)
    u = torch.rand(V, 2, 5, 1, generator=g, dtype=torch.float64) * 2  # (V, 2, 5, 1)
    noise = torch.randn(5, d - 1, generator=g, dtype=torch.float64)  # unbatched
    got = torch.vmap(OPS.vmf_direction, in_dims=(0, 0, None))(loc, u, noise)
    want = torch.stack([OPS.vmf_direction(loc[i], u[i], noise) for i in range(V)])
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    grad = torch.randn(V, 2, 5, d, generator=g, dtype=torch.float64)
    full = [t.expand(V, 2, 5, t.shape[-1]) for t in (loc[:, None, None], u, noise.expand(V, 2, 5, d - 1))]
    got = torch.vmap(OPS.vmf_direction_backward, in_dims=(0, 0, 0, None))(grad, loc, u, noise)
    want = [torch.stack(t) for t in zip(*[OPS.vmf_direction_backward(grad[i], *(f[i] for f in full)) for i in range(V)])]
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_forward_over_reverse_through_the_direction():
    # a tangent on loc reaching the backward (forward_ad dual + backward without create_graph) must take the
    # differentiable formulas, not the fused kernel (which has no derivatives): the tangent of the gradient
    # equals torch.func's jvp of grad
    import torch.autograd.forward_ad as fwAD
    g = torch.Generator().manual_seed(3)
    loc = torch.nn.functional.normalize(torch.randn(6, 5, generator=g, dtype=torch.float64), dim=-1)
    t = torch.randn(6, 5, generator=g, dtype=torch.float64)
    u = torch.rand(6, 1, generator=g, dtype=torch.float64) * 2
    noise = torch.randn(6, 4, generator=g, dtype=torch.float64)
    w = torch.randn(6, 5, generator=g, dtype=torch.float64)
    f = lambda l: (OPS.vmf_direction(l, u, noise) * w).sum()  # noqa: E731
    _, want = torch.func.jvp(torch.func.grad(f), (loc,), (t,))
    leaf = loc.clone().requires_grad_()
    with fwAD.dual_level():
        dual = fwAD.make_dual(leaf, t)
        (gl,) = torch.autograd.grad(f(dual), leaf)
        got = fwAD.unpack_dual(gl).tangent
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)


# --- second order in the concentration (issue 15; vmf_grad_u_dkappa) --------------------------------------
D2_DATA = os.path.join(os.path.dirname(__file__), "data", "vmf_d2_ref.csv")


@pytest.mark.parametrize("dtype,tol,kmax", [(torch.float64, 1e-10, 1e6), (torch.float32, 1e-4, 1e5)])
def test_grad_dkappa_against_mpmath(dtype, tol, kmax):
    # d/dkappa du/dkappa at fixed u against tools/gen_vmf_d2_ref.py (the first-order grid). The value is a sum
    # of three terms of mixed signs: relative error where it is at least a tenth of their summed sizes (the
    # scale), error within tol * scale everywhere.
    import numpy as np

    t = np.genfromtxt(D2_DATA, delimiter=",", names=True)
    assert t.size > 400
    keep = t["kappa"] <= kmax
    t = t[keep]
    got = np.empty(t.size)
    for d in np.unique(t["d"]):
        sel = t["d"] == d
        k = torch.tensor(t["kappa"][sel], dtype=dtype)
        u = torch.tensor(t["u"][sel], dtype=dtype)
        got[sel] = OPS.vmf_grad_u_dkappa(k, u, int(d)).double().numpy()
    assert np.isfinite(got).all()
    err = np.abs(got - t["g1"])
    floor = torch.finfo(dtype).tiny / torch.finfo(dtype).eps
    assert (err <= tol * t["scale"] + floor).all(), t[err > tol * t["scale"] + floor][:5]
    big = (np.abs(t["g1"]) >= 0.1 * t["scale"]) & (np.abs(t["g1"]) > floor)
    rel = err[big] / np.abs(t["g1"][big])
    assert rel.max() <= tol, (rel.max(), t[big][np.argmax(rel)])
    # a third of the points: near the mean for large d the terms cancel (by up to 1e7 at d = 1000, small
    # kappa, where the value vanishes with the skewness); elsewhere the error is bounded by tol * scale above
    assert big.mean() > 0.3, big.mean()


def test_grad_dkappa_matches_finite_differences():
    # Central differences in kappa of the first-order kernel (float64, step 1e-5 relative), every d branch
    # (2: von Mises; 3 and up: the quadrature), bulk and tail quantiles.
    for d in (2, 3, 5, 40):
        for kappa in (0.3, 4.0, 60.0, 5e3):
            k = torch.tensor(kappa, dtype=torch.float64)
            _, mean, var = OPS.vmf_moments(k, d)
            u = (mean + torch.tensor([-1.5, 0.0, 2.5], dtype=torch.float64) * var.sqrt()).clamp(1e-6, 2 - 1e-6)
            kk = k.expand_as(u)
            h = 1e-5 * kappa
            g = OPS.vmf_grad_u(kk, u, d)
            fd = (OPS.vmf_grad_u(kk + h, u, d) - OPS.vmf_grad_u(kk - h, u, d)) / (2 * h)
            # the differences' rounding: G to ~1e-13 relative (the d = 3 closed form cancels by ~1/kappa) over h
            noise = 1e-13 * g.abs().max().item() / h
            torch.testing.assert_close(OPS.vmf_grad_u_dkappa(kk, u, d), fd, rtol=1e-6, atol=noise,
                                       msg=lambda m: f"d={d} kappa={kappa}: {m}")


@pytest.mark.parametrize("d,kappa", [(3, 2.0), (10, 15.0), (2, 1.5)])
def test_hessian_of_the_mean_cosine(d, kappa):
    # d2/dkappa2 E[mu^T z] = d Var[w]/dkappa = -E[(u - E u)^3] (the third central moment of u), by Monte Carlo
    # through two backward passes (per sample: d2w/dkappa2 along the sample's path), within 5 standard errors.
    n = 100_000
    gen = torch.Generator().manual_seed(8)
    mu = torch.zeros(d, dtype=torch.float64)
    mu[0] = 1
    k = torch.full((n,), kappa, dtype=torch.float64, requires_grad=True)
    z = gradkern.vmf_rsample(mu, k, generator=gen)
    (g,) = torch.autograd.grad(z[:, 0].sum(), k, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), k)
    se = h.std().item() / math.sqrt(n)
    want = -OPS.vmf_central_moment(torch.tensor(kappa, dtype=torch.float64), d, 3).item()
    assert abs(h.mean().item() - want) < 5 * se, (h.mean().item(), want, se)
    assert se < 0.1 * abs(want)


def test_third_order_in_kappa_raises():
    k = torch.tensor(2.0, dtype=torch.float64)
    u = torch.tensor(0.4, dtype=torch.float64)
    h = torch.func.hessian(lambda kk: OPS.vmf_cdf_u(u, kk, 5))(k)
    assert torch.isfinite(h) and h != 0
    with pytest.raises(RuntimeError, match=r"gradkern.vmf_grad_u_dkappa: the derivative w.r.t. concentration "):
        # d2/dkappa2 of du/dkappa: a third derivative of the sample
        torch.func.jacrev(torch.func.jacrev(lambda kk: OPS.vmf_grad_u(kk, u, 5)))(k)


@pytest.mark.parametrize("op", ["vmf_grad_u", "vmf_grad_u_dkappa"])
def test_second_order_in_u_every_mode(op):
    # gradgradcheck in float64 of the u-derivatives (closed forms in csrc/autograd.cpp), and the four orders of
    # the two modes give one Hessian (to rounding of its largest entry: the formulas' terms cancel partly).
    from torch.func import jacfwd, jacrev

    k = torch.tensor([0.7, 6.0, 40.0], dtype=torch.float64)
    u0 = torch.tensor([0.9, 0.2, 0.04], dtype=torch.float64)
    f = lambda u: getattr(OPS, op)(k, u, 5)  # noqa: E731
    assert torch.autograd.gradgradcheck(f, (u0.clone().requires_grad_(),), check_fwd_over_rev=True)
    ref = jacrev(jacrev(f))(u0)
    assert torch.isfinite(ref).all() and (ref != 0).any()
    for outer, inner in ((jacfwd, jacfwd), (jacfwd, jacrev), (jacrev, jacfwd)):
        torch.testing.assert_close(outer(inner(f))(u0), ref, rtol=1e-12, atol=1e-13 * ref.abs().max().item())
