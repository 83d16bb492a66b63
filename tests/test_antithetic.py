"""Differentiable antithetic Gaussian sampling (gradkern.antithetic): the moment identities of the two
constructions, location-scale equivariance, exact N(mu, sigma^2) marginals with the exact chi-square
reflection (KS), the visible bias of the Hawkins-Wixley reflection, pathwise gradients (gradcheck,
unbiasedness), the reflection and gammaincinv against mpmath, bad input. Deterministic: fixed seeds,
Monte Carlo tolerances from standard errors. The op contracts (opcheck, torch.compile, seeding, thread
count, strided and empty inputs) are in test_contracts.py."""
import math

import mpmath as mp
import pytest
import torch
from scipy import stats

import gradkern
from gradkern import antithetic as A
import antithetic_reference as R
from conftest import DEVICES, FLOAT_DTYPES, mc_check

METHODS = ["marsaglia", "cheng"]


def _gen(device, seed):
    return torch.Generator(device=device).manual_seed(seed)


def _tol(dtype):
    return 1e-12 if dtype == torch.float64 else 2e-5


# --- identities ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("k", [2, 3, 5, 16])
def test_antithetic_half_has_reflected_mean_and_std(k, method, dtype, device):
    # Antithetic half: sample mean exactly 2 mu - eta, unbiased sample std exactly delta_a (to rounding).
    g = _gen(device, 10 + k)
    loc = torch.randn(4, 3, dtype=dtype, device=device, generator=g)
    scale = torch.rand(3, dtype=dtype, device=device, generator=g) * 2 + 0.1
    x = A.normal_rsample(loc, scale, k, method=method, generator=g)
    assert x.shape == (2 * k, 4, 3) and x.dtype == dtype and x.device.type == device
    iid, anti = x[:k], x[k:]
    eta_a, delta_a = A.reflect_moments(iid, loc, scale)
    torch.testing.assert_close(eta_a, 2 * loc - iid.mean(0), rtol=0, atol=_tol(dtype) * 10)
    torch.testing.assert_close(anti.mean(0), eta_a, rtol=_tol(dtype), atol=_tol(dtype) * 10)
    torch.testing.assert_close(anti.std(0), delta_a, rtol=_tol(dtype) * 10, atol=_tol(dtype))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("k", [2, 3, 4, 9, 64])
def test_construction_matches_prescribed_moments(k, method, dtype):
    g = _gen("cpu", 20 + k)
    mean = torch.randn(50, dtype=dtype, generator=g) * 3
    std = torch.rand(50, dtype=dtype, generator=g) * 5
    x = A.antithetic_from_moments(mean, std, k, method=method, generator=g)
    assert x.shape == (k, 50)
    scale = 1 + mean.abs() + std
    torch.testing.assert_close(x.mean(0), mean, rtol=0, atol=_tol(dtype) * 10 * scale.max().item())
    torch.testing.assert_close(x.std(0), std, rtol=_tol(dtype) * 10, atol=_tol(dtype) * scale.max().item())


def test_constructions_are_the_same_map():
    # As written in the notes, Marsaglia's vectors v_j = (0..0, j-k, 1..1) / sqrt((k-j)(k-j+1)) are the
    # (reversed) Helmert basis and Cheng's recursion is its cumulative-sum form: given the same direction
    # both give the same values to rounding (with Cheng's independent signs, the same law).
    noise = torch.randn(6, 40, dtype=torch.float64, generator=_gen("cpu", 6))
    mean, std = torch.randn(40, dtype=torch.float64), torch.rand(40, dtype=torch.float64)
    torch.testing.assert_close(A.antithetic_from_moments(mean, std, 7, "marsaglia", noise=noise),
                               A.antithetic_from_moments(mean, std, 7, "cheng", noise=noise), rtol=1e-13, atol=1e-13)


# --- equivariance and broadcasting -----------------------------------------------------------------------
@pytest.mark.parametrize("reflection", ["exact", "hawkins-wixley"])
@pytest.mark.parametrize("method", METHODS)
def test_location_scale_equivariance(method, reflection):
    # Same noise: N(mu, sigma^2) samples are mu + sigma * (the N(0, 1) samples), both halves.
    loc = torch.tensor([-2.0, 0.5, 30.0], dtype=torch.float64)
    scale = torch.tensor([0.01, 1.0, 7.0], dtype=torch.float64)
    x = A.normal_rsample(loc, scale, 5, method, reflection, generator=_gen("cpu", 3))
    z = A.normal_rsample(torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64), 5, method,
                         reflection, generator=_gen("cpu", 3))
    torch.testing.assert_close(x, loc + scale * z, rtol=1e-13, atol=1e-13)
    # The building block itself: f(a + b m, b s) = a + b f(m, s) for the same direction.
    noise = torch.randn(4, 3, dtype=torch.float64, generator=_gen("cpu", 4))
    m, s = torch.randn(3, dtype=torch.float64), torch.rand(3, dtype=torch.float64)
    lhs = A.antithetic_from_moments(loc + scale * m, scale * s, 5, method, noise=noise)
    rhs = loc + scale * A.antithetic_from_moments(m, s, 5, method, noise=noise)
    torch.testing.assert_close(lhs, rhs, rtol=1e-13, atol=1e-12)
    # And the reflection: reflect_moments(a + b x, a + b mu, b sigma) = (a + b eta_a, b delta_a).
    xs = torch.randn(5, 3, dtype=torch.float64, generator=_gen("cpu", 5))
    e1, d1 = A.reflect_moments(loc + scale * xs, loc, scale, reflection)
    e0, d0 = A.reflect_moments(xs, 0.0, 1.0, reflection)
    torch.testing.assert_close(e1, loc + scale * e0, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(d1, scale * d0, rtol=1e-13, atol=0)


@pytest.mark.parametrize("device", DEVICES)
def test_broadcast_shapes(device):
    loc = torch.zeros(2, 1, device=device)
    scale = torch.ones(3, device=device)
    a = A.normal_rsample(loc, scale, 3, generator=_gen(device, 7))
    assert a.shape == (6, 2, 3) and a.dtype == torch.float32
    assert A.normal_rsample(0.0, 2.0, 2, generator=_gen("cpu", 1)).shape == (4,)  # scalars: batch ()
    assert A.normal_rsample(torch.zeros(0, 3), torch.ones(3), 4).shape == (8, 0, 3)  # empty batch


# --- the fused native op (gradkern::antithetic_normal_standardized) ------------------------------------
def _noise_with_tails(k, dtype, device, n=3000, seed=0):
    # Random rows plus rows whose spread S lies off the reflection table on either side (S = 0, S tiny,
    # S far in the upper tail), which take the direct path inside the kernel.
    noise = torch.randn(2 * k - 1, n, dtype=torch.float64, generator=_gen("cpu", seed))
    # Exactly representable values, so that both paths form the same S (near S = 0 the rounding of the
    # mean would otherwise dominate the Hawkins-Wixley fourth root).
    noise[:k, 0] = 0.5                                     # S = 0 exactly
    noise[:k, 1] = 0.5 + 2.0 ** -20 * torch.arange(k)      # S ~ 1e-12 k^3: below the 1e-7 quantile
    noise[:k, 2] = 6.0 * torch.linspace(-1, 1, k, dtype=torch.float64)  # S ~ 36 k: above the table
    noise[:k, 3] = 1e-3 * torch.linspace(-1, 1, k, dtype=torch.float64)  # S ~ 1e-6: far upper x_a
    return noise.to(dtype=dtype, device=device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("reflection", ["exact", "hawkins-wixley"])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("k", [2, 3, 4, 5, 9, 16, 64])
def test_native_matches_reference(k, method, reflection, dtype, device):
    # Same noise through the fused op and the eager reference path: equal to rounding (the native float64
    # rows take the same table + Newton polish, closed forms of P, Q for k = 2, 3, 4).
    noise = _noise_with_tails(k, dtype, device, seed=k)
    native = A._standardized_native(noise, method, reflection)
    ref = R.standardized_reference(noise, method, reflection)
    assert native.shape == (2 * k, noise.shape[1]) and native.dtype == dtype
    assert torch.equal(native[:k], noise[:k])  # the i.i.d. half is the noise itself
    if dtype == torch.float64:
        torch.testing.assert_close(native, ref, rtol=1e-12, atol=1e-12)
    else:  # Cheng's cumulative sum accumulates rounding over k terms in both paths
        torch.testing.assert_close(native, ref, rtol=2e-6 * (1 + k / 8), atol=2e-6 * (1 + k / 8))


@pytest.mark.parametrize("k", [2, 3, 4, 7])
def test_native_reflection_float64_accuracy(k):
    # The native float64 reflection (table + one Newton step, or the direct path off the table) solves
    # P(a, x_a) = Q(a, x) to a few ulp: check the identity with gradkern's own P and Q.
    noise = _noise_with_tails(k, torch.float64, "cpu", n=4000, seed=50 + k)
    x = A._standardized_native(noise, "marsaglia", "exact")
    a = torch.tensor((k - 1) / 2, dtype=torch.float64)
    s = ((noise[:k] - noise[:k].mean(0)) ** 2).sum(0)
    s_a = (k - 1) * x[k:].var(0)
    lhs, rhs = gradkern.gammainc(a, s_a / 2), gradkern.gammaincc(a, s / 2)
    ok = (rhs > 1e-300) & (s_a > 0)
    # dP = q(x_a) dx_a: relative error of S_a (rounding of the sample variance, ~1e-15) times x_a q / P
    torch.testing.assert_close(lhs[ok], rhs[ok], rtol=1e-11, atol=1e-300)


def test_native_op_errors():
    op = torch.ops.gradkern.antithetic_normal_standardized
    table = torch.zeros(4, 4, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="2k - 1"):
        op(torch.zeros(4, 3), table, 0.0, 1.0, "marsaglia", "exact")
    with pytest.raises(RuntimeError, match='method must be one of "marsaglia", "cheng", got "bogus"'):
        op(torch.zeros(3, 3), table, 0.0, 1.0, "bogus", "exact")
    with pytest.raises(RuntimeError, match='reflection must be one of "exact", "hawkins-wixley"'):
        op(torch.zeros(3, 3), table, 0.0, 1.0, "marsaglia", "approx")
    with pytest.raises(RuntimeError, match="table"):
        op(torch.zeros(3, 3), table.float(), 0.0, 1.0, "marsaglia", "exact")
    with pytest.raises(RuntimeError, match="float32 or float64"):
        op(torch.zeros(3, 3, dtype=torch.float16), table, 0.0, 1.0, "marsaglia", "exact")


# --- marginals -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("k", [2, 3, 4, 8])
def test_every_antithetic_sample_is_normal(k, method):
    # KS of each antithetic row position against N(mu, sigma^2) over many independent rows; plus
    # KS of the reflected chi-square S_a against chi2_{k-1}. Fixed seed: deterministic p-values.
    n = 20_000
    mu, sigma = 1.5, 0.7
    loc = torch.full((n,), mu, dtype=torch.float64)
    scale = torch.full((n,), sigma, dtype=torch.float64)
    x = A.normal_rsample(loc, scale, k, method=method, generator=_gen("cpu", 100 + k))
    for i in range(k, 2 * k):
        p = stats.kstest(x[i].numpy(), "norm", args=(mu, sigma)).pvalue
        assert p > 1e-3, f"antithetic sample {i - k} of k={k} ({method}): KS p = {p:.2e}"
    s_a = (k - 1) * x[k:].var(0) / sigma ** 2
    p = stats.kstest(s_a.numpy(), "chi2", args=(k - 1,)).pvalue
    assert p > 1e-3, f"S_a vs chi2_{k - 1}: KS p = {p:.2e}"
    # Antithetic means really are anti-correlated with the i.i.d. ones (the point of the exercise).
    r = torch.corrcoef(torch.stack([x[:k].mean(0), x[k:].mean(0)]))[0, 1].item()
    assert r < -0.99


def test_hawkins_wixley_bias_is_visible():
    # Same S through both reflections (common random numbers): the paired difference has a small
    # variance, so the approximation's bias in E[S_a] stands out; the exact reflection has E[S_a] = d.
    n, d = 200_000, 3
    s = 2 * gradkern.gamma_rsample(torch.full((n,), d / 2, dtype=torch.float64), generator=_gen("cpu", 9))
    exact = A.chi2_reflect(s, d, "exact")
    hw = A.chi2_reflect(s, d, "hawkins-wixley")
    mc_check(exact, float(d), what="E[S_a], exact reflection")
    diff = (hw - exact).double()
    se = diff.std().item() / n ** 0.5
    bias = diff.mean().item()
    assert abs(bias) > 8 * se, f"Hawkins-Wixley bias {bias:.3g} not visible (se {se:.2g})"
    assert 0.002 * d < abs(bias) < 0.05 * d  # "about 1%": a small but real bias
    assert stats.kstest(hw.numpy(), "chi2", args=(d,)).pvalue < 1e-3
    assert stats.kstest(exact.numpy(), "chi2", args=(d,)).pvalue > 1e-3


# --- gradients -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("reflection", ["exact", "hawkins-wixley"])
@pytest.mark.parametrize("method", METHODS)
def test_gradcheck_loc_scale(method, reflection):
    loc = torch.tensor([0.3, -1.0], dtype=torch.float64, requires_grad=True)
    scale = torch.tensor([0.5, 2.0], dtype=torch.float64, requires_grad=True)

    def f(loc, scale):  # the noise is fixed by recreating the generator inside
        return A.normal_rsample(loc, scale, 3, method, reflection, generator=_gen("cpu", 11))

    assert torch.autograd.gradcheck(f, (loc, scale))


@pytest.mark.parametrize("reflection", ["exact", "hawkins-wixley"])
@pytest.mark.parametrize("method", METHODS)
def test_gradcheck_building_blocks(method, reflection):
    g = _gen("cpu", 12)
    samples = torch.randn(4, 3, dtype=torch.float64, generator=g).requires_grad_()
    loc = torch.tensor([0.1, 0.2, -0.3], dtype=torch.float64, requires_grad=True)
    scale = torch.tensor([0.9, 1.1, 1.6], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, m, s: A.reflect_moments(x, m, s, reflection), (samples, loc, scale))
    noise = torch.randn(3, 3, dtype=torch.float64, generator=g)
    assert torch.autograd.gradcheck(lambda m, s: A.antithetic_from_moments(m, s, 4, method, noise=noise),
                                    (loc, scale))


@pytest.mark.parametrize("df", [1, 2, 7, 40])
def test_chi2_reflect_gradient(df):
    # dS_a/dS = -f(S) / f(S_a) (custom backward), against finite differences, over the bulk and tails.
    s = torch.tensor([1e-3, 0.3, 1.0, df, 3.0 * df + 5], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s: A.chi2_reflect(s, df), (s,), rtol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_pathwise_gradient_unbiased(method):
    # E[x^2] = mu^2 + sigma^2: the per-row average of d/dsigma over all 2k samples averages to 2 sigma,
    # and d/dmu is 2 mu exactly (antithetic rows are exactly N(mu, sigma^2), so no bias from the coupling).
    n, k, mu, sigma = 50_000, 3, 0.4, 1.3
    loc = torch.full((n,), mu, dtype=torch.float64, requires_grad=True)
    scale = torch.full((n,), sigma, dtype=torch.float64, requires_grad=True)
    x = A.normal_rsample(loc, scale, k, method, generator=_gen("cpu", 13))
    (x ** 2).mean(0).sum().backward()
    # d/dmu: 2 mean(x) over both halves = (eta + eta_a) = 2 mu exactly, every row: zero variance.
    torch.testing.assert_close(loc.grad, torch.full_like(loc.grad, 2 * mu), rtol=1e-13, atol=1e-13)
    mc_check(scale.grad, 2 * sigma, what="d/dsigma E[x^2]")


# --- accuracy against mpmath -----------------------------------------------------------------------------
def _mp_gamma_density(a, x):
    return mp.exp((a - 1) * mp.log(x) - x - mp.loggamma(a))


@pytest.mark.parametrize("df,s", [(1, 1e-20), (1, 0.05), (1, 3.0), (1, 40.0), (2, 1e-9), (2, 25.0),
                                  (7, 0.02), (7, 6.0), (7, 60.0), (49, 5.0), (49, 49.0), (49, 150.0)])
def test_chi2_reflect_against_mpmath(df, s):
    # F(S) + F(S_a) = 1 checked in the accurate (small) tail of S_a: residual / density = error in x_a.
    mp.mp.dps = 40
    s_a = A.chi2_reflect(torch.tensor([s], dtype=torch.float64), df).item()
    a, x, xa = mp.mpf(df) / 2, mp.mpf(s) / 2, mp.mpf(s_a) / 2
    p = mp.gammainc(a, 0, x, regularized=True)
    q = mp.gammainc(a, x, mp.inf, regularized=True)
    if p < q:   # S_a in the upper tail: Q(a, x_a) = p
        resid = mp.gammainc(a, xa, mp.inf, regularized=True) - p
    else:       # S_a in the lower tail: P(a, x_a) = q
        resid = mp.gammainc(a, 0, xa, regularized=True) - q
    rel_err = abs(resid / _mp_gamma_density(a, xa) / xa)
    assert rel_err < 1e-12, f"df={df} S={s}: S_a={s_a!r}, relative error {float(rel_err):.2e}"


@pytest.mark.parametrize("df", [1, 3, 15])
def test_chi2_reflect_float32_tails(df):
    # float32: 1 - F(S) rounds to 1 once F(S) < 6e-8, where a plain gammaincinv(a, 1 - F) returns inf;
    # the upper-tail polish keeps S_a finite and at float32 accuracy (reference: the float64 result).
    s = torch.cat([torch.logspace(-30, 0, 31), torch.linspace(1.5, 80, 40)]).double() * df
    ref = A.chi2_reflect(s, df)
    got = A.chi2_reflect(s.float(), df)
    ok = ref > 1e-37  # below that, the float32 S_a underflows (S_a is far in its lower tail)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got.double()[ok], ref[ok], rtol=5e-5, atol=0)


@pytest.mark.parametrize("df", [1, 2, 3, 8, 63, 999])
def test_tabulated_reflection_matches_direct(df):
    # The op chi2_reflect (cubic Hermite table in log S made by the op antithetic_reflection_table, plus
    # one Newton step in float64) against the eager direct gammaincc/gammaincinv path of the reference,
    # on a grid 4x denser than the table, across and beyond its ends.
    a = df / 2
    u_lo, u_hi = A._reflection_table(a, "cpu")[:2]
    u = torch.linspace(u_lo - 3, u_hi + 1, 4 * 4096 + 7, dtype=torch.float64)
    x = torch.exp(u) / 2
    ref = R.gamma_reflect(a, x)
    ok = ref > 0
    with torch.no_grad():
        torch.testing.assert_close(A.chi2_reflect(2 * x, df)[ok] / 2, ref[ok], rtol=2e-14, atol=0)
        x32 = x.float()
        ref32 = R.gamma_reflect(a, x32.double())
        ok = ref32 > 1e-37  # float32 normal range
        got32 = (A.chi2_reflect(2 * x32, df) / 2).double()
    torch.testing.assert_close(got32[ok], ref32[ok], rtol=1.2e-7, atol=0)  # float32 rounding: 6e-8


def _mp_gammaincinv(a, p):
    # Ground truth at 50 digits: Newton on the smaller tail (P for p <= 1/2, Q = 1 - p otherwise) with
    # derivative +-density, from SciPy's float64 inverse as the starting point only; the residual of the
    # result is checked, so the start cannot leak into the reference.
    from scipy import special as sc
    upper = p > 0.5
    x = mp.mpf(sc.gammainccinv(a, 1 - p) if upper else sc.gammaincinv(a, p))
    a, p = mp.mpf(a), mp.mpf(p)
    target = 1 - p if upper else p

    def f(x):  # increasing in x
        if upper:
            return target - mp.gammainc(a, x, mp.inf, regularized=True)
        return mp.gammainc(a, 0, x, regularized=True) - target

    for _ in range(5):
        x -= f(x) / _mp_gamma_density(a, x)
    assert abs(f(x)) < mp.mpf(10) ** -35 * target
    return x


@pytest.mark.parametrize("a,p", [(1e-3, 0.5), (1e-3, 0.999), (0.5, 1e-12), (0.5, 0.3), (1.0, 1 - 1e-12),
                                 (3.5, 1e-30), (3.5, 0.9), (30.0, 0.5), (1e3, 1e-6), (1e3, 1 - 1e-9),
                                 (1e6, 0.01), (1e6, 0.5)])
def test_gammaincinv_against_mpmath(a, p):
    mp.mp.dps = 50
    ref = _mp_gammaincinv(a, p)
    got = gradkern.gammaincinv(torch.tensor(a, dtype=torch.float64), torch.tensor(p, dtype=torch.float64)).item()
    assert math.isfinite(got), f"gammaincinv({a}, {p}) = {got}"
    assert abs(got - float(ref)) <= 1e-10 * float(ref), f"gammaincinv({a}, {p}) = {got!r}, mpmath {mp.nstr(ref, 17)}"


# --- bad input ---------------------------------------------------------------------------------------------
def test_errors_name_the_argument():
    loc, scale = torch.zeros(3), torch.ones(3)
    with pytest.raises(ValueError, match="k must be an integer >= 2"):
        A.normal_rsample(loc, scale, 1)
    with pytest.raises(TypeError, match="k must be an integer"):
        A.normal_rsample(loc, scale, 2.0)
    with pytest.raises(ValueError, match="method must be one of"):
        A.normal_rsample(loc, scale, 2, method="helmert")
    with pytest.raises(ValueError, match="reflection must be one of"):
        A.normal_rsample(loc, scale, 2, reflection="wilson-hilferty")
    with pytest.raises(ValueError, match="scale must be > 0"):
        A.normal_rsample(loc, torch.tensor([1.0, 0.0, 1.0]), 2, validate_args=True)
    A.normal_rsample(loc, torch.tensor([1.0, 0.0, 1.0]), 2, validate_args=False)  # opted out: no check
    # torch's type promotion: float32 with float64 gives float64, integers the default dtype.
    assert A.normal_rsample(loc, scale.double(), 2).dtype == torch.float64
    assert A.normal_rsample(torch.zeros(3, dtype=torch.long), scale, 2).dtype == torch.get_default_dtype()
    with pytest.raises(TypeError, match="gradkern.antithetic.normal_rsample: loc and scale must be float32 or float64"):
        A.normal_rsample(loc.half(), scale.half(), 2)
    with pytest.raises(ValueError, match="k must be an integer >= 2"):
        A.reflect_moments(torch.zeros(1, 3), 0.0, 1.0)
    with pytest.raises(ValueError, match="noise must have shape"):
        A.antithetic_from_moments(torch.zeros(3), torch.ones(3), 4, noise=torch.zeros(4, 3))
    with pytest.raises(ValueError, match="df must be a positive number"):
        A.chi2_reflect(torch.ones(3), 0)
