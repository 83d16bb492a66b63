"""gradkern.rsvi, the RSVI baseline (Naesseth et al. 2017): the accepted-noise densities are densities
(they integrate to 1), the samples have the target distributions (KS tests), the surrogate's gradient is
unbiased (the mean of per-draw gradient estimates against the closed form, tolerance from the standard
error) while the reparameterization term alone is biased, and bad input gets an error or NaN."""
import math

import numpy as np
import pytest
import torch
from scipy import integrate, special, stats

import gradkern
from gradkern import rsvi


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


# --- the noise densities ------------------------------------------------------------------------------------
@pytest.mark.parametrize("a", [1.0, 1.5, 3.0, 20.0, 300.0])
def test_marsaglia_tsang_noise_density_integrates_to_one(a):
    # pi(eps; a) = q(h(eps, a); a) |dh/deps| on eps > -sqrt(9a - 3), as the module computes it
    at = torch.tensor(a, dtype=torch.float64)

    def pi(e):
        return math.exp(float(rsvi._mt_transform(torch.tensor(e, dtype=torch.float64), at)[1]))

    # (the mass lies within a few units of 0; beyond 40 it is below 1e-300)
    total, _ = integrate.quad(pi, max(-math.sqrt(9 * a - 3), -40.0), 40.0, limit=400, points=[0.0])
    assert abs(total - 1) < 1e-8


@pytest.mark.parametrize("kappa", [1e-3, 0.1, 1.0, 10.0, 1e3])
def test_best_fisher_noise_density_integrates_to_one(kappa):
    k = torch.tensor(kappa, dtype=torch.float64)

    def pi(u):
        return math.exp(float(rsvi._bf_transform(torch.tensor(u, dtype=torch.float64), k)[1]))

    total, _ = integrate.quad(pi, 0, 1, limit=400, points=[0.5, 0.9, 0.99])
    assert abs(total - 1) < 1e-7


def test_noise_densities_match_autograd_jacobians():
    # log pi = log q(h) + log |dh/d noise|, with the Jacobian taken by autograd instead of the closed form
    eps = torch.linspace(-2, 3, 11, dtype=torch.float64, requires_grad=True)
    a = torch.tensor(2.5, dtype=torch.float64)
    log_h, lp = rsvi._mt_transform(eps, a)
    (dh,) = torch.autograd.grad(log_h.exp().sum(), eps)
    h = log_h.exp().detach()
    ref = (a - 1) * torch.log(h) - h - torch.lgamma(a) + torch.log(dh)
    assert torch.allclose(lp.detach(), ref, rtol=1e-12, atol=1e-12)
    u = torch.linspace(0.05, 0.95, 10, dtype=torch.float64, requires_grad=True)
    k = torch.tensor(3.0, dtype=torch.float64)
    habs, lp = rsvi._bf_transform(u, k)
    (dh,) = torch.autograd.grad(habs.sum(), u)
    ref = (k * (torch.cos(habs.detach()) - 1) - torch.log(2 * math.pi * torch.special.i0e(k)) + math.log(2)
           + torch.log(dh.abs()))
    assert torch.allclose(lp.detach(), ref, rtol=1e-10, atol=1e-10)


# --- the samples' distributions -------------------------------------------------------------------------------
@pytest.mark.parametrize("alpha,B", [(0.3, 1), (1.0, 0), (2.5, 0), (2.5, 5), (0.05, 20)])
def test_gamma_samples_follow_gamma(alpha, B):
    s = rsvi.gamma(torch.full((20000,), alpha, dtype=torch.float64), shape_augmentation=B, generator=_gen(1))
    assert torch.isfinite(s.noise_log_prob).all()
    p = stats.kstest(s.sample.numpy(), stats.gamma(alpha).cdf).pvalue
    assert p > 1e-3, p


def test_gamma_rate_scales():
    s = rsvi.gamma(torch.tensor(3.0, dtype=torch.float64), torch.tensor(2.0, dtype=torch.float64), (20000,),
                   generator=_gen(2))
    assert stats.kstest(s.sample.numpy(), stats.gamma(3.0, scale=0.5).cdf).pvalue > 1e-3


def test_beta_and_dirichlet_samples():
    s = rsvi.beta(torch.tensor(0.7, dtype=torch.float64), torch.tensor(2.0, dtype=torch.float64), (20000,),
                  generator=_gen(3))
    assert stats.kstest(s.sample.numpy(), stats.beta(0.7, 2.0).cdf).pvalue > 1e-3
    conc = torch.tensor([0.5, 1.0, 3.0], dtype=torch.float64)
    d = rsvi.dirichlet(conc, (20000,), shape_augmentation=2, generator=_gen(4))
    assert d.sample.shape == (20000, 3) and d.noise_log_prob.shape == (20000,)
    assert torch.allclose(d.sample.sum(-1), torch.ones(20000, dtype=torch.float64))
    # marginal of a Dirichlet coordinate: Beta(a_i, sum - a_i)
    assert stats.kstest(d.sample[:, 0].numpy(), stats.beta(0.5, 4.0).cdf).pvalue > 1e-3


@pytest.mark.parametrize("kappa", [0.05, 1.0, 30.0])
def test_vonmises_samples(kappa):
    s = rsvi.vonmises(torch.tensor(2.5, dtype=torch.float64), torch.full((20000,), kappa, dtype=torch.float64),
                      generator=_gen(5))
    x = s.sample.numpy()
    assert x.min() >= -math.pi and x.max() < math.pi
    centred = np.remainder(x - 2.5 + math.pi, 2 * math.pi) - math.pi  # scipy's vonmises lives on loc +- pi
    p = stats.kstest(centred, stats.vonmises(kappa).cdf).pvalue
    assert p > 1e-3, p


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_vonmises_extreme_concentrations_stay_finite(dtype):
    # kappa = 1e-4 cancelled to rho = 0 (r = inf, NaN samples) in the textbook formula for rho
    k = torch.tensor([1e-4, 1e-2, 1.0, 1e3, 1e5], dtype=dtype).repeat(200).requires_grad_()
    s = rsvi.vonmises(0.0, k, generator=_gen(6))
    assert torch.isfinite(s.sample).all() and torch.isfinite(s.noise_log_prob).all()
    (g,) = torch.autograd.grad(rsvi.surrogate(torch.cos(s.sample), s.noise_log_prob).sum(), k)
    assert torch.isfinite(g).all()
    kd = torch.tensor([1e-4, 1.0, 1e5], dtype=torch.float64)
    rho = rsvi._bf_params(kd)[0]
    tau = 1 + torch.sqrt(1 + 4 * kd * kd)
    assert torch.allclose(rho[1:], ((tau - torch.sqrt(2 * tau)) / (2 * kd))[1:], rtol=1e-12)
    assert torch.allclose(rho[0], kd[0] / 2, rtol=1e-7)  # rho ~ kappa / 2 for small kappa


def test_seeded_runs_reproduce():
    a = rsvi.gamma(torch.full((100,), 1.5), shape_augmentation=3, generator=_gen(7))
    b = rsvi.gamma(torch.full((100,), 1.5), shape_augmentation=3, generator=_gen(7))
    assert torch.equal(a.sample, b.sample) and torch.equal(a.noise_log_prob, b.noise_log_prob)


# --- unbiasedness ---------------------------------------------------------------------------------------------
def _mean_and_se(per_draw):
    return per_draw.mean().item(), per_draw.std().item() / math.sqrt(per_draw.numel())


def _per_draw_grad(param, f, noise_lp, correction=True):
    """Per-draw gradient estimates d f_i / d param_i (param holds one entry per draw)."""
    loss = rsvi.surrogate(f, noise_lp) if correction else f
    (g,) = torch.autograd.grad(loss.sum(), param)
    return g


N = 200_000


@pytest.mark.parametrize("alpha,B", [(1.5, 0), (1.5, 1), (0.4, 5)])
@pytest.mark.parametrize("fname", ["z", "log z", "z^2"])
def test_gamma_gradient_is_unbiased(alpha, B, fname):
    a = torch.full((N,), alpha, dtype=torch.float64, requires_grad=True)
    s = rsvi.gamma(a, shape_augmentation=B, generator=_gen(11))
    f = {"z": s.sample, "log z": torch.log(s.sample), "z^2": s.sample ** 2}[fname]
    truth = {"z": 1.0, "log z": special.polygamma(1, alpha), "z^2": 2 * alpha + 1}[fname]
    m, se = _mean_and_se(_per_draw_grad(a, f, s.noise_log_prob))
    assert abs(m - truth) < 4 * se, (m, truth, se)


def test_reparameterization_term_alone_is_biased():
    # Without the correction the estimator misses the accept/reject step's effect: at alpha = 1.5, B = 0 and
    # f = log z its mean is well away from trigamma(1.5) = 0.935 (so the unbiasedness tests can fail).
    a = torch.full((N,), 1.5, dtype=torch.float64, requires_grad=True)
    s = rsvi.gamma(a, shape_augmentation=0, generator=_gen(12))
    m, se = _mean_and_se(_per_draw_grad(a, torch.log(s.sample), s.noise_log_prob, correction=False))
    assert abs(m - special.polygamma(1, 1.5)) > 10 * se, (m, se)


def test_gamma_rate_gradient_is_exact():
    rate = torch.full((1000,), 2.0, dtype=torch.float64, requires_grad=True)
    s = rsvi.gamma(3.0, rate, generator=_gen(13))
    (g,) = torch.autograd.grad(s.sample.sum(), rate)
    assert torch.allclose(g, -s.sample.detach() / 2.0)


def test_beta_gradient_is_unbiased():
    a = torch.full((N,), 2.0, dtype=torch.float64, requires_grad=True)
    b = torch.full((N,), 3.0, dtype=torch.float64, requires_grad=True)
    s = rsvi.beta(a, b, shape_augmentation=1, generator=_gen(14))
    loss = rsvi.surrogate(s.sample, s.noise_log_prob)
    ga, gb = torch.autograd.grad(loss.sum(), (a, b))
    # E[x] = a / (a + b): d/da = b / (a + b)^2 = 0.12, d/db = -a / (a + b)^2 = -0.08
    for g, truth in ((ga, 0.12), (gb, -0.08)):
        m, se = _mean_and_se(g)
        assert abs(m - truth) < 4 * se, (m, truth, se)


def test_dirichlet_gradient_is_unbiased():
    conc = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64).repeat(N // 4, 1).requires_grad_()
    s = rsvi.dirichlet(conc, shape_augmentation=1, generator=_gen(15))
    loss = rsvi.surrogate(s.sample[:, 0], s.noise_log_prob)
    (g,) = torch.autograd.grad(loss.sum(), conc)
    # E[x_1] = a_1 / A: d/da_1 = (A - a_1) / A^2 = 5/36, d/da_2 = -a_1 / A^2 = -1/36
    for j, truth in ((0, 5 / 36), (1, -1 / 36)):
        m, se = _mean_and_se(g[:, j])
        assert abs(m - truth) < 4 * se, (j, m, truth, se)


@pytest.mark.parametrize("kappa", [0.5, 2.0, 10.0])
def test_vonmises_gradient_is_unbiased(kappa):
    k = torch.full((N,), kappa, dtype=torch.float64, requires_grad=True)
    loc = torch.zeros(N, dtype=torch.float64, requires_grad=True)
    s = rsvi.vonmises(loc, k, generator=_gen(16))
    loss = rsvi.surrogate(torch.cos(s.sample), s.noise_log_prob)
    gk, gl = torch.autograd.grad(loss.sum(), (k, loc))
    A = special.i1e(kappa) / special.i0e(kappa)
    m, se = _mean_and_se(gk)
    assert abs(m - (1 - A / kappa - A * A)) < 4 * se, (m, se)
    m, se = _mean_and_se(gl)  # d/dloc E[cos(x)] = 0 at loc = 0
    assert abs(m) < 4 * se


# --- bad input ------------------------------------------------------------------------------------------------
def test_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"gradkern\.rsvi\.gamma: shape_augmentation must be an int >= 0"):
        rsvi.gamma(2.0, shape_augmentation=-1)
    with pytest.raises(ValueError, match=r"concentration \+ shape_augmentation >= 1"):
        rsvi.gamma(torch.tensor([0.5, 2.0]), shape_augmentation=0)
    with pytest.raises(ValueError, match=r"noise_log_prob must have f's shape"):
        rsvi.surrogate(torch.ones(3), torch.ones(3, 2))
    with pytest.raises(ValueError, match=r"rsvi\.dirichlet: concentration must have at least one dimension"):
        rsvi.dirichlet(torch.tensor(1.0))
    with pytest.raises(TypeError, match=r"gradkern\.rsvi\.gamma: concentration must be a Tensor or a real number"):
        rsvi.gamma("2")


def test_invalid_parameters_give_nan():
    s = rsvi.gamma(torch.tensor([-1.0, float("nan"), float("inf"), 2.0]), generator=_gen(17))
    assert torch.isnan(s.sample[:3]).all() and torch.isfinite(s.sample[3])
    s = rsvi.beta(torch.tensor([float("inf"), 2.0]), 1.0, generator=_gen(17))
    assert torch.isnan(s.sample[0]) and torch.isfinite(s.sample[1])
    s = rsvi.gamma(torch.tensor([2.0, 2.0]), torch.tensor([-1.0, 1.0]), generator=_gen(18))
    assert torch.isnan(s.sample[0]) and torch.isfinite(s.sample[1])
    s = rsvi.vonmises(0.0, torch.tensor([0.0, -1.0, float("inf"), 1.0]), generator=_gen(19))
    assert torch.isnan(s.sample[:3]).all() and torch.isfinite(s.sample[3])


def test_module_is_public():
    assert gradkern.rsvi is rsvi and "rsvi" in gradkern.__all__
