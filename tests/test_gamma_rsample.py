"""Reparameterized Gamma-family samplers: unbiasedness of the implicit gradients (appendix A of
Figurnov et al. 2018 and analogous closed forms), gradients through the composition with the sample held
fixed (gradcheck), small-concentration correctness, distributions, errors."""
import math

import numpy as np
import pytest
import torch

import gradkern
import gradkern._gamma as gamma_mod
from conftest import DEVICES, mc_check

N = 200_000


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("alpha", [1e-2, 0.3, 1.0, 7.0, 300.0])
def test_gamma_mean_gradient_is_one(alpha, device):
    # d/dalpha E[z] = 1 for z ~ Gamma(alpha, 1): per-sample gradients dz/dalpha average to 1.
    g = torch.Generator(device=device).manual_seed(1)
    a = torch.full((N,), alpha, dtype=torch.float64, device=device, requires_grad=True)
    z = gradkern.gamma_rsample(a, generator=g)
    z.sum().backward()
    mc_check(a.grad, 1.0, what=f"dz/dalpha, alpha={alpha}")


def test_gamma_rate_gradient():
    # E[z] = alpha / rate, so d/drate E[z] = -alpha / rate^2.
    g = torch.Generator().manual_seed(2)
    alpha, rate = torch.tensor(2.5, dtype=torch.float64), torch.full((N,), 3.0, dtype=torch.float64,
                                                                   requires_grad=True)
    gradkern.gamma_rsample(alpha, rate, generator=g).sum().backward()
    mc_check(rate.grad, -2.5 / 9.0, what="dz/drate")


def test_backward_is_the_kernel_gradient():
    g = torch.Generator().manual_seed(3)
    a = torch.rand(1000, dtype=torch.float64, generator=g) * 5 + 0.01
    a.requires_grad_()
    z = gradkern.gamma_rsample(a, generator=g)
    (grad,) = torch.autograd.grad(z.sum(), a)
    torch.testing.assert_close(grad, gradkern.standard_gamma_grad(a.detach(), z.detach()), rtol=0, atol=0)
    log_z = gradkern.log_gamma_rsample(a, generator=g)
    (grad,) = torch.autograd.grad(log_z.sum(), a)
    torch.testing.assert_close(grad, gradkern.log_standard_gamma_grad(a.detach(), log_z.detach()),
                               rtol=0, atol=0)


@pytest.mark.parametrize("alpha", [1e-3, 0.2, 4.0])
def test_log_gamma_mean_gradient_is_trigamma(alpha):
    # E[log z] = digamma(alpha), so the per-sample d(log z)/dalpha average to trigamma(alpha).
    g = torch.Generator().manual_seed(4)
    a = torch.full((N,), alpha, dtype=torch.float64, requires_grad=True)
    gradkern.log_gamma_rsample(a, generator=g).sum().backward()
    mc_check(a.grad, torch.special.polygamma(1, torch.tensor(alpha, dtype=torch.float64)).item(),
             what=f"dlogz/dalpha alpha={alpha}")


def test_log_gamma_samples_distribution_small_alpha():
    # log z for alpha = 1e-6: alpha * log z -> log(u) in distribution (z^alpha ~ U(0, 1) as alpha -> 0,
    # up to a factor Gamma(alpha + 1)^alpha = 1 - O(alpha)); torch's sampler returns 0 here.
    g = torch.Generator().manual_seed(5)
    log_z = gradkern.log_gamma_rsample(torch.full((50_000,), 1e-6, dtype=torch.float64), generator=g)
    assert torch.isfinite(log_z).all()
    u = torch.exp(1e-6 * log_z)
    from scipy import stats
    assert stats.kstest(u.numpy(), "uniform").pvalue > 1e-3


def test_beta_mean_gradient():
    # E[B] = a / (a + b): d/da = b / (a + b)^2, d/db = -a / (a + b)^2.
    g = torch.Generator().manual_seed(6)
    a = torch.full((N,), 0.7, dtype=torch.float64, requires_grad=True)
    b = torch.full((N,), 2.2, dtype=torch.float64, requires_grad=True)
    gradkern.beta_rsample(a, b, generator=g).sum().backward()
    mc_check(a.grad, 2.2 / 2.9 ** 2, what="Beta d/da")
    mc_check(b.grad, -0.7 / 2.9 ** 2, what="Beta d/db")


def test_dirichlet_mean_gradient():
    # E[z_0] = c_0 / C: d/dc_0 = (C - c_0) / C^2, d/dc_1 = -c_0 / C^2.
    g = torch.Generator().manual_seed(7)
    c = torch.tensor([0.4, 1.5, 3.0], dtype=torch.float64).expand(N, 3).clone().requires_grad_()
    gradkern.dirichlet_rsample(c, generator=g)[:, 0].sum().backward()
    C = 4.9
    mc_check(c.grad[:, 0], (C - 0.4) / C ** 2, what="Dirichlet d/dc0")
    mc_check(c.grad[:, 1], -0.4 / C ** 2, what="Dirichlet d/dc1")


def test_chi2_mean_gradient():
    g = torch.Generator().manual_seed(8)
    df = torch.full((N,), 3.0, dtype=torch.float64, requires_grad=True)
    gradkern.chi2_rsample(df, generator=g).sum().backward()
    mc_check(df.grad, 1.0, what="Chi2 d/ddf")


def test_student_t_second_moment_gradient():
    # E[t^2] = df / (df - 2) for df > 2, so d/ddf = -2 / (df - 2)^2; E[t] = loc, E[(t-loc)^2] ∝ scale^2.
    g = torch.Generator().manual_seed(9)
    df = torch.full((N,), 9.0, dtype=torch.float64, requires_grad=True)
    scale = torch.full((N,), 1.5, dtype=torch.float64, requires_grad=True)
    t = gradkern.student_t_rsample(df, 0.0, scale, generator=g)
    (t ** 2).sum().backward()
    mc_check(df.grad, -2 * 1.5 ** 2 / 49.0, what="StudentT d/ddf E[t^2]")
    mc_check(scale.grad, 2 * 1.5 * 9.0 / 7.0, what="StudentT d/dscale E[t^2]")


# --- gradients through the composition, sample held fixed -------------------------------------------
class _QuantileOps:
    """Stands in for torch.ops.gradkern inside gradkern._gamma: log-Gamma 'samples' at fixed quantiles u,
    log(gammaincinv(alpha, u)), whose alpha-derivative is the implicit gradient by definition. gradcheck
    then checks every gradient of the Beta / Dirichlet / Student-t compositions by finite differences."""

    def __init__(self, u):
        self.u = u
        self.calls = 0

    def _quantiles(self, alpha):
        # One call per draw: when the sampler draws its Gamma components one call each (beta_rsample:
        # g1 then g0), call i takes u[..., i % n] so every component keeps its own fixed quantiles.
        if self.u.shape == alpha.shape or self.u.dim() <= alpha.dim():
            return self.u.expand_as(alpha)
        i = self.calls % self.u.shape[-1]
        self.calls += 1
        return self.u[..., i].expand_as(alpha)

    def log_standard_gamma(self, alpha, generator=None):
        return torch.log(gradkern.gammaincinv(alpha, self._quantiles(alpha)))

    def standard_gamma(self, alpha, generator=None):
        return gradkern.gammaincinv(alpha, self.u.expand_as(alpha))

    def sigmoid_difference(self, x, y):
        return torch.ops.gradkern.sigmoid_difference(x, y)


@pytest.fixture
def quantile_ops(monkeypatch):
    def install(shape):
        u = torch.rand(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(10)) * 0.9 + 0.05
        q = _QuantileOps(u)
        monkeypatch.setattr(gamma_mod, "_ops", q)
        # The wrappers' eager calls go to the ops' C++ callables (gradkern/_fast.py) or their OpOverloads.
        for name in ("_SG", "_SG_RAW"):
            monkeypatch.setattr(gamma_mod, name, q.standard_gamma)
        for name in ("_LSG", "_LSG_RAW"):
            monkeypatch.setattr(gamma_mod, name, q.log_standard_gamma)
    return install


def test_gradcheck_beta_dirichlet_student_fixed_sample(quantile_ops):
    a = torch.tensor([0.3, 2.0, 11.0], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([1.7, 0.05, 4.0], dtype=torch.float64, requires_grad=True)
    quantile_ops((3, 2))
    # The Gamma-composition reparameterization (the default, "marginal", is checked in test_beta.py: its
    # gradient at a fixed quantile is betaincinv's, gradchecked there, and its field the transport equation).
    assert torch.autograd.gradcheck(lambda a, b: gradkern.beta_rsample(a, b, reparameterization="gamma"), (a, b),
                                    atol=1e-6, rtol=1e-5)
    quantile_ops((2, 3))
    c = torch.tensor([[0.2, 1.0, 5.0], [3.0, 0.5, 0.9]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda c: gradkern.dirichlet_rsample(c, reparameterization="gamma"), (c,),
                                    atol=1e-6, rtol=1e-5)
    quantile_ops((3,))
    df = torch.tensor([0.8, 3.0, 25.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda df: gradkern.chi2_rsample(df), (df,), atol=1e-6, rtol=1e-5)


# --- small concentrations ------------------------------------------------------------------------------
def test_beta_tiny_concentration_mass():
    # Beta(1e-3, 1e-3): P(0.1 < B < 0.9) = I_0.9 - I_0.1 ~ 0.2% (torch puts ~24% there).
    from scipy import stats
    truth = stats.beta(1e-3, 1e-3).cdf(0.9) - stats.beta(1e-3, 1e-3).cdf(0.1)
    g = torch.Generator().manual_seed(11)
    for dtype in (torch.float32, torch.float64):
        b = gradkern.beta_rsample(torch.full((N,), 1e-3, dtype=dtype), torch.full((N,), 1e-3, dtype=dtype),
                                  generator=g)
        inside = ((b > 0.1) & (b < 0.9)).double()
        mc_check(inside, truth, what=f"Beta(1e-3,1e-3) mass in (0.1,0.9) {dtype}")


def test_dirichlet_tiny_concentration_largest_component():
    # Dirichlet(1e-4 x 10): almost all mass on one vertex, E[max_k z_k] ~ 1 - O(1e-4) (torch: 0.55).
    g = torch.Generator().manual_seed(12)
    for dtype in (torch.float32, torch.float64):
        c = torch.full((20_000, 10), 1e-4, dtype=dtype, requires_grad=True)
        z = gradkern.dirichlet_rsample(c, generator=g)
        assert z.max(-1).values.mean().item() > 0.998
        torch.testing.assert_close(z.sum(-1), torch.ones(20_000, dtype=dtype))
        z[:, 0].sum().backward()
        assert torch.isfinite(c.grad).all()


@pytest.mark.parametrize("alpha", [1e-6, 1e-4])
def test_tiny_concentration_gradients_finite(alpha):
    g = torch.Generator().manual_seed(13)
    a = torch.full((10_000,), alpha, dtype=torch.float32, requires_grad=True)
    b = torch.full((10_000,), 1.0, dtype=torch.float32, requires_grad=True)
    gradkern.beta_rsample(a, b, generator=g).sum().backward()
    assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()


# --- distributions -------------------------------------------------------------------------------------
def test_distributions_are_drop_in():
    D = gradkern.distributions
    conc = torch.tensor([0.5, 2.0], requires_grad=True)
    for d in (D.Gamma(conc, 2.0), D.Chi2(conc), D.Beta(conc, conc), D.Dirichlet(conc),
              D.StudentT(conc, 0.0, 1.0)):
        assert d.has_rsample
        x = d.rsample((5,))
        assert x.shape == d.sample((5,)).shape
        d.log_prob(x).sum().backward()
        assert torch.isfinite(conc.grad).all()
        conc.grad = None
    # KL registrations are inherited.
    kl = torch.distributions.kl_divergence(D.Gamma(conc, 1.0), D.Gamma(conc + 1, 1.0))
    assert torch.isfinite(kl).all()


def test_gamma_chi2_cdf_icdf():
    D = gradkern.distributions
    from scipy import stats
    conc = torch.tensor([0.3, 2.0, 40.0], dtype=torch.float64, requires_grad=True)
    rate = torch.tensor([1.5, 0.5, 2.0], dtype=torch.float64)
    u = torch.tensor([0.1, 0.5, 0.99], dtype=torch.float64)
    g = D.Gamma(conc, rate)
    x = g.icdf(u)
    want = stats.gamma(conc.detach().numpy(), scale=1 / rate.numpy()).ppf(u.numpy())
    torch.testing.assert_close(x.detach(), torch.from_numpy(want), rtol=1e-10, atol=0)
    torch.testing.assert_close(g.cdf(x), u, rtol=1e-12, atol=0)
    # The cdf is differentiable in the concentration (torch's is not) and matches a finite difference.
    assert torch.autograd.gradcheck(lambda c: D.Gamma(c, rate).cdf(x.detach()), (conc,))
    chi2 = D.Chi2(torch.tensor([3.0], dtype=torch.float64))
    torch.testing.assert_close(chi2.icdf(torch.tensor([0.95], dtype=torch.float64)),
                               torch.tensor([stats.chi2(3.0).ppf(0.95)], dtype=torch.float64), rtol=1e-10, atol=0)


def test_distributions_validate_args():
    D = gradkern.distributions
    with pytest.raises(ValueError):
        D.Gamma(torch.tensor([-1.0]), 1.0, validate_args=True)
    with pytest.raises(ValueError):
        D.Dirichlet(torch.tensor([0.0, 1.0]), validate_args=True)
    with pytest.raises(ValueError):
        D.Beta(torch.tensor([1.0]), torch.tensor([-2.0]), validate_args=True)


def test_rsample_promotion_and_errors():
    # torch's promotion: float32 with float64 gives float64 (torch's Gamma(a64, r32) works too), an
    # integer concentration the default dtype.
    z = gradkern.gamma_rsample(torch.ones(2), torch.ones(2, dtype=torch.float64))
    assert z.dtype == torch.float64
    assert gradkern.distributions.Gamma(torch.ones(2, dtype=torch.float64), torch.ones(2)).rsample().dtype == torch.float64
    assert gradkern.gamma_rsample(torch.ones(2, dtype=torch.long)).dtype == torch.get_default_dtype()
    with pytest.raises(TypeError, match="gradkern.gamma_rsample: concentration must be a real tensor"):
        gradkern.gamma_rsample(torch.ones(2, dtype=torch.complex64))
    with pytest.raises(ValueError, match="at least one dimension"):
        gradkern.dirichlet_rsample(torch.tensor(1.0))


# --- the fused log-space Gamma and Beta samplers (csrc/core/gamma_sampler.h) -----------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("alpha", [1e-6, 1e-3, 0.1, 0.5, 1.0, 2.5, 30.0, 1e4])
def test_log_standard_gamma_distribution(alpha, dtype):
    # KS against the Gamma CDF of log G, P(alpha, e^t); for t < -30, P = e^(alpha t) / Gamma(alpha + 1) to
    # working precision (the series' next term is e^t alpha / (alpha + 1)).
    from scipy import special, stats
    n = 50_000
    t = torch.ops.gradkern.log_standard_gamma(torch.full((n,), alpha, dtype=dtype),
                                              generator=torch.Generator().manual_seed(21)).double().numpy()
    assert np.isfinite(t).all()
    u = np.where(t < -30, np.exp(alpha * t - special.gammaln(alpha + 1)),
                 special.gammainc(alpha, np.exp(np.maximum(t, -30))))
    assert stats.kstest(u, "uniform").pvalue > 1e-4


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("a,b", [(0.05, 0.05), (0.7, 2.0), (5.0, 1.0), (40.0, 60.0), (1e-3, 3.0)])
def test_standard_beta_distribution(a, b, dtype):
    from scipy import stats
    n = 50_000
    x = torch.ops.gradkern.standard_beta(torch.full((n,), a, dtype=dtype), torch.tensor(b, dtype=dtype),
                                         generator=torch.Generator().manual_seed(22)).double().numpy()
    fi = torch.finfo(dtype)
    lo, hi = fi.tiny, 1 - fi.eps / 2
    assert (x >= lo).all() and (x <= hi).all()
    # The clamp into [tiny, 1 - eps/2] makes point masses at the ends (most of the mass for tiny
    # concentrations): the randomized probability integral transform spreads each over the CDF range it
    # stands for, and the result must be uniform.
    from scipy import special
    rng = np.random.default_rng(23)
    F = special.betainc(a, b, x)
    F_lo, F_hi = special.betainc(a, b, lo), special.betainc(a, b, hi)
    u = np.where(x <= lo, rng.uniform(0, F_lo, n), np.where(x >= hi, rng.uniform(F_hi, 1, n), F))
    assert stats.kstest(u, "uniform").pvalue > 1e-4


def test_fused_samplers_invalid_parameters_and_infinity():
    nan, inf = float("nan"), float("inf")
    t = torch.ops.gradkern.log_standard_gamma(torch.tensor([-1.0, 0.0, nan, inf, 2.0], dtype=torch.float64))
    assert t[:3].isnan().all() and t[3] == inf and t[4].isfinite()
    x = torch.ops.gradkern.standard_beta(torch.tensor([-1.0, 2.0, nan, 2.0]), torch.tensor([1.0, 0.0, 1.0, 3.0]))
    assert x[:3].isnan().all() and x[3].isfinite()
