"""ARMS copulas (csrc/core/copula.h via torch.ops.gradkern): samplers, correlations, bivariate normal CDF.

Organised by what each test proves: ground truth (mpmath / SciPy's Owen's T), samplers (uniform marginals,
antithetic structure, Monte Carlo correlation), bad input and gradients. The op contracts (opcheck,
torch.compile, seeding, thread count, shapes, zero-size and strided inputs) are in test_contracts.py.
"""
import math

import mpmath as mp
import numpy as np
import pytest
import torch
from scipy import stats
from scipy.special import ndtr, ndtri, owens_t

import gradkern  # noqa: F401  (loads the extension)
from gradkern import copulas

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"))]
DTYPES = [torch.float32, torch.float64]
SAMPLERS = {"dirichlet": copulas.dirichlet, "gaussian": copulas.gaussian}


def _gen(device, seed):
    return torch.Generator(device=device).manual_seed(seed)


# --- references ------------------------------------------------------------------------------------------
def bvn_owen(h, k, r):
    """Phi2(h, k; r) from Owen's T (SciPy), for h, k != 0 and |r| < 1 (Owen 1956, eq. 3.1)."""
    s = np.sqrt(1 - r * r)
    ah = (k - r * h) / (h * s)
    ak = (h - r * k) / (k * s)
    beta = np.where(h * k < 0, 0.5, 0.0)
    return 0.5 * (ndtr(h) + ndtr(k)) - owens_t(h, ah) - owens_t(k, ak) - beta


def dirichlet_rho_mp(p, n, mode="direct"):
    """Eq. 8 / Theorem 4 as printed, at 100 digits."""
    with mp.workdps(100):
        p = mp.mpf(p)
        s = {"direct": 1 - p, "reflected": p, "oriented": (1 - p) if p >= 0.5 else p}[mode]
        k = n - 1
        t = max(mp.mpf(0), 2 * s ** (mp.mpf(1) / k) - 1) ** k
        return float((t - s * s) / (s * (1 - s)))


def bernoulli_bits(u, p, copula):
    # The orientation ARMS uses for the Dirichlet copula: u above p = 1/2, 1 - u below.
    if copula == "dirichlet":
        return torch.where(p >= 0.5, u < p, (1 - u) < p)
    return u < p


# --- ground truth ------------------------------------------------------------------------------------------
def test_bivariate_normal_cdf_matches_owens_t():
    rng = np.random.default_rng(0)
    h, k = rng.normal(0, 2, (2, 2000))
    r = rng.uniform(-0.999, 0.999, 2000)
    r[:300] = rng.choice([-1, 1], 300) * rng.uniform(0.925, 0.99999, 300)  # the near-singular branch
    got = copulas.bivariate_normal_cdf(torch.tensor(h), torch.tensor(k), torch.tensor(r)).numpy()
    np.testing.assert_allclose(got, bvn_owen(h, k, r), rtol=0, atol=2e-15)


def test_bivariate_normal_cdf_limits():
    h = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
    k = torch.tensor([-0.4, 0.5, 1.0], dtype=torch.float64)
    phi = torch.special.ndtr
    torch.testing.assert_close(copulas.bivariate_normal_cdf(h, k, 0.0), phi(h) * phi(k), rtol=0, atol=1e-16)
    torch.testing.assert_close(copulas.bivariate_normal_cdf(h, k, 1.0), phi(torch.minimum(h, k)), rtol=0, atol=1e-16)
    torch.testing.assert_close(copulas.bivariate_normal_cdf(h, k, -1.0), (phi(h) - phi(-k)).clamp_min(0),
                               rtol=0, atol=1e-16)
    assert torch.isnan(copulas.bivariate_normal_cdf(h, k, 1.5)).all()


@pytest.mark.parametrize("n", [3, 4, 10, 100])
def test_gaussian_rho_matches_owens_t(n):
    p = np.array([0.01, 0.1, 0.3, 0.5, 0.6, 0.9, 0.99])
    h = ndtri(p)
    r = -1.0 / (n - 1)
    a = np.sqrt((1 - r) / (1 + r))
    # Phi2(h, h; r) = Phi(h) - 2 T(h, a); the difference with p^2 costs ~log10(n) digits here, not in the op.
    ref = (ndtr(h) - 2 * owens_t(h, a) - p * p) / (p * (1 - p))
    ref[p == 0.5] = 2 / math.pi * math.asin(r)
    got = copulas.gaussian_rho(torch.tensor(p), n).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-11 * n)


def test_dirichlet_rho_matches_eq8():
    for n in (2, 3, 5, 10, 1000):
        for p in (1e-6, 0.05, 0.3, 0.5, 0.7, 0.999):
            for mode in ("direct", "reflected", "oriented"):
                got = copulas.dirichlet_rho(torch.tensor([p], dtype=torch.float64), n, mode).item()
                assert got == pytest.approx(dirichlet_rho_mp(p, n, mode), rel=1e-13, abs=0), (p, n, mode)


def test_rho_stable_at_extremes():
    p = torch.tensor([0.0, 1e-300, 1e-12, 0.5, 1 - 1e-12, 1.0], dtype=torch.float64)
    for n in (2, 10, 10**6, 10**9):
        for fn in (copulas.dirichlet_rho, copulas.gaussian_rho):
            rho = fn(p, n)
            assert torch.isfinite(rho).all(), (fn, n, rho)
            assert (rho <= 0).all() and (rho >= -1.0 / (n - 1) - 1e-15).all(), (fn, n, rho)
    # Large n: rho ~ -c / n, resolved to full relative precision (eq. 8 as printed gives 0 or garbage).
    big = copulas.dirichlet_rho(torch.tensor([0.3], dtype=torch.float64), 10**9, "direct").item()
    assert big == pytest.approx(dirichlet_rho_mp(0.3, 10**9), rel=1e-12)
    # rho(p) = rho(1 - p) for the Gaussian copula and for the oriented Dirichlet copula.
    q = torch.tensor([0.02, 0.2, 0.45], dtype=torch.float64)
    for fn in (copulas.dirichlet_rho, copulas.gaussian_rho):
        torch.testing.assert_close(fn(q, 7), fn(1 - q, 7), rtol=1e-13, atol=0)
    # n = 2: both copulas are the antithetic pair, rho = -min(p, 1-p) / max(p, 1-p) (Theorem 2).
    want = -torch.minimum(q, 1 - q) / torch.maximum(q, 1 - q)
    torch.testing.assert_close(copulas.dirichlet_rho(q, 2), want, rtol=1e-15, atol=0)
    torch.testing.assert_close(copulas.gaussian_rho(q, 2), want, rtol=1e-15, atol=0)
    assert torch.isnan(copulas.gaussian_rho(torch.tensor([-0.1, 1.1, math.nan]), 4)).all()


# --- samplers ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("copula", sorted(SAMPLERS))
def test_marginals_are_uniform(copula, dtype, device):
    u = SAMPLERS[copula](5, (20000,), _gen(device, 1), dtype=dtype, device=device)
    assert u.shape == (5, 20000) and u.dtype == dtype and u.device.type == device
    assert ((u > 0) & (u < 1)).all()
    for i in range(5):  # columns are independent draws, so each row is an i.i.d. sample of one marginal
        assert stats.kstest(u[i].double().cpu().numpy(), "uniform").pvalue > 1e-3


@pytest.mark.parametrize("copula", sorted(SAMPLERS))
def test_two_samples_are_the_antithetic_pair(copula):
    u = SAMPLERS[copula](2, (1000,), _gen("cpu", 2), dtype=torch.float64)
    torch.testing.assert_close(u[1], 1 - u[0], rtol=0, atol=1e-12)


def test_gaussian_copula_covariance():
    n = 6
    u = copulas.gaussian(n, (40000,), _gen("cpu", 3), dtype=torch.float64)
    x = torch.special.ndtri(u)
    cov = x @ x.T / x.shape[1]
    want = torch.full((n, n), -1.0 / (n - 1), dtype=torch.float64).fill_diagonal_(1.0)
    torch.testing.assert_close(cov, want, rtol=0, atol=5 / math.sqrt(x.shape[1]))
    # Exactly centred: the normals of each column sum to zero (the O(n) construction).
    torch.testing.assert_close(x.sum(0), torch.zeros(x.shape[1], dtype=torch.float64), rtol=0, atol=1e-9)


@pytest.mark.parametrize("copula", sorted(SAMPLERS))
@pytest.mark.parametrize("n", [3, 5, 10])
def test_closed_form_rho_matches_monte_carlo(copula, n):
    draws = 40000
    u = SAMPLERS[copula](n, (draws,), _gen("cpu", 10 + n), dtype=torch.float64)
    rho_fn = copulas.dirichlet_rho if copula == "dirichlet" else copulas.gaussian_rho
    for p in (0.15, 0.4, 0.7, 0.93):
        pt = torch.tensor(p, dtype=torch.float64)
        b = bernoulli_bits(u, pt, copula).double()
        ones = b.sum(0)
        pairs = ones * (ones - 1) / (n * (n - 1))  # mean of b_i b_j over ordered pairs i != j, per draw
        rho_mc = (pairs.mean() - p * p) / (p * (1 - p))
        se = pairs.std() / math.sqrt(draws) / (p * (1 - p))
        rho = rho_fn(pt, n).item()
        # (+1e-12: for small p the copula can make two ones impossible, and then rho_mc is exact.)
        assert abs(rho_mc - rho) < 4.5 * se + 1e-12, (copula, n, p, rho_mc.item(), rho, se.item())
        assert abs(b.mean() - p) < 4.5 * math.sqrt(p * (1 - p) / draws)


# --- bad input and gradients -----------------------------------------------------------------------------


def test_bad_input_errors():
    for fn in (copulas.dirichlet, copulas.gaussian):
        with pytest.raises(ValueError, match="n .*must be >= 2"):
            fn(1, (3,))
        with pytest.raises(TypeError, match="n must be an int"):
            fn(2.5, (3,))
    with pytest.raises(ValueError, match="n .*must be >= 2"):
        copulas.dirichlet_rho(torch.rand(3), 1)
    with pytest.raises(ValueError, match="mode"):
        copulas.dirichlet_rho(torch.rand(3), 3, "sideways")
    # The ops check n themselves too (direct torch.ops calls, no Python wrapper).
    with pytest.raises(RuntimeError, match="n \\(the number of antithetic samples\\) must be >= 2"):
        torch.ops.gradkern.dirichlet_copula(torch.empty(3), 1)
    with pytest.raises(RuntimeError, match="n \\(the number of antithetic samples\\) must be >= 2"):
        torch.ops.gradkern.gaussian_copula_rho(torch.rand(3), 0)
    with pytest.raises(RuntimeError, match="like must be a float32 or float64 tensor"):
        torch.ops.gradkern.gaussian_copula(torch.empty(3, dtype=torch.float16), 3)
    with pytest.raises(ValueError, match="dtype must be torch.float32 or torch.float64"):
        copulas.dirichlet(3, (2,), dtype=torch.float16)
    with pytest.raises(RuntimeError, match="p must be a floating point tensor"):
        torch.ops.gradkern.dirichlet_copula_rho(torch.ones(3, dtype=torch.long), 3)


def test_bivariate_normal_cdf_gradcheck():
    h = torch.tensor([0.3, -1.0, 1.5], dtype=torch.float64, requires_grad=True)
    k = torch.tensor([0.2, 0.4, -0.5], dtype=torch.float64, requires_grad=True)
    r = torch.tensor([0.5, -0.3, 0.8], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(copulas.bivariate_normal_cdf, (h, k, r))
