"""Bad input gets NaN or a clear error, never a finite number; edge cases of the domain keep their limits.

torch's convention for out-of-domain arguments of special functions is NaN; gradkern's samplers follow it
(torch's own Gamma sampler returns finite numbers there). The distribution classes under validate_args
raise ValueError as torch's do.
"""
import math

import pytest
import torch
from scipy import stats

import gradkern
from gradkern import antithetic

NAN = float("nan")
DTYPES = (torch.float32, torch.float64)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


# --- invalid parameters give NaN samples ----------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_gamma_family_invalid_parameters_give_nan(dtype):
    t = lambda *v: torch.tensor(v, dtype=dtype)  # noqa: E731
    g = _gen()
    z = gradkern.gamma_rsample(t(NAN, -1.0, 0.0, 2.0), sample_shape=(50,), generator=g)
    assert z[:, :3].isnan().all() and (z[:, 3] > 0).all()
    z = gradkern.log_gamma_rsample(t(NAN, -0.5, 0.3), sample_shape=(50,), generator=g)
    assert z[:, :2].isnan().all() and z[:, 2].isfinite().all()
    assert gradkern.chi2_rsample(t(-1.0), sample_shape=(20,), generator=g).isnan().all()
    assert gradkern.dirichlet_rsample(t(NAN, 1.0, 2.0), sample_shape=(10,), generator=g).isnan().all()
    z = gradkern.gamma_rsample(t(2.0), rate=t(-1.0, 0.0, 1.0), sample_shape=(30,), generator=g)
    assert z[:, :2].isnan().all() and (z[:, 2] > 0).all()
    z = gradkern.log_gamma_rsample(t(2.0), rate=t(-1.0), sample_shape=(30,), generator=g)
    assert z.isnan().all()
    assert gradkern.beta_rsample(t(-1.0), t(1.0), sample_shape=(10,), generator=g).isnan().all()
    assert gradkern.student_t_rsample(t(-1.0), sample_shape=(10,), generator=g).isnan().all()
    assert gradkern.student_t_rsample(t(3.0), scale=t(-2.0), sample_shape=(10,), generator=g).isnan().all()


def test_distributions_still_raise_under_validate_args():
    with pytest.raises(ValueError):
        gradkern.distributions.Gamma(torch.tensor(-1.0), torch.tensor(1.0), validate_args=True)
    with pytest.raises(ValueError):
        gradkern.distributions.Dirichlet(torch.tensor([NAN, 1.0]), validate_args=True)
    with pytest.raises(ValueError):
        gradkern.distributions.StudentT(torch.tensor(-1.0), validate_args=True)


def test_chi2_reflect_nan_and_negative_give_nan():
    s = torch.tensor([NAN, -1.0, 2.0], dtype=torch.float64)
    out = antithetic.chi2_reflect(s, 3)
    assert out[:2].isnan().all() and out[2].isfinite()
    samples = torch.tensor([[NAN, 0.1], [0.5, 0.2], [0.3, 1.0]], dtype=torch.float64)
    eta, delta = antithetic.reflect_moments(samples, 0.0, 1.0)
    assert eta[0].isnan() and delta[0].isnan() and delta[1].isfinite()


# --- random ops are tagged as seeded draws -------------------------------------------------------------
RANDOM_OPS = ("standard_gamma", "log_standard_gamma", "vonmises_sample", "dirichlet_copula", "gaussian_copula")


@pytest.mark.parametrize("name", RANDOM_OPS)
def test_random_ops_are_tagged_nondeterministic_seeded(name):
    assert torch.Tag.nondeterministic_seeded in getattr(torch.ops.gradkern, name).default.tags


def test_deterministic_ops_are_not_tagged():
    for name in ("gammainc", "standard_gamma_grad", "vonmises_cdf", "chi2_reflect"):
        assert torch.Tag.nondeterministic_seeded not in getattr(torch.ops.gradkern, name).default.tags


# --- half / bfloat16: computed in float32, returned in the input's dtype ---------------------------------
@pytest.mark.parametrize("dtype", (torch.float16, torch.bfloat16))
def test_reduced_precision_samplers_and_ops(dtype):
    a = torch.tensor([0.5, 2.0, 30.0], dtype=dtype)
    g = _gen(3)
    for z in (gradkern.gamma_rsample(a, sample_shape=(200,), generator=g),
              gradkern.chi2_rsample(a, sample_shape=(200,), generator=g),
              gradkern.dirichlet_rsample(a, sample_shape=(200,), generator=g),
              gradkern.beta_rsample(a, a, sample_shape=(200,), generator=g)):
        assert z.dtype == dtype and z.isfinite().all() and (z >= 0).all()
    z = gradkern.gamma_rsample(a, sample_shape=(20000,), generator=_gen(4)).float()
    # Gamma(alpha) has mean alpha: 4 standard errors (sd sqrt(alpha / n)) plus the dtype's rounding.
    tol = 4 * torch.sqrt(a.float() / 20000) + 4 * torch.finfo(dtype).eps * a.float()
    assert ((z.mean(0) - a.float()).abs() <= tol).all()
    assert gradkern.gammainc(a, a).dtype == dtype
    k = torch.tensor([0.5, 4.0], dtype=dtype)
    assert gradkern.vonmises_rsample(torch.zeros_like(k), k, sample_shape=(10,), generator=_gen()).dtype == dtype


# --- von Mises: concentration 0 and a large location ------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_vonmises_concentration_zero_is_uniform(dtype):
    kappa = torch.zeros(1, dtype=dtype)
    x = gradkern.vonmises_rsample(torch.zeros(1, dtype=dtype), kappa, sample_shape=(20000,), generator=_gen(5))
    assert x.isfinite().all()
    assert stats.kstest(x.double().flatten().numpy(), stats.uniform(loc=-math.pi, scale=2 * math.pi).cdf).pvalue > 1e-3
    grid = torch.linspace(-3.0, 3.0, 13, dtype=dtype)
    rtol = 1e-6 if dtype == torch.float32 else 1e-14
    torch.testing.assert_close(gradkern.vonmises_cdf(grid, 0.0, torch.zeros_like(grid)), (grid + math.pi) / (2 * math.pi),
                               rtol=rtol, atol=rtol)
    # kappa -> 0 limit of dx/dkappa = -(dF/dkappa) / q = -sin x.
    torch.testing.assert_close(gradkern.vonmises_grad(torch.zeros_like(grid), grid), -torch.sin(grid), rtol=rtol,
                               atol=rtol)


def test_vonmises_large_loc_float32_keeps_the_sample():
    loc = torch.tensor(1e7, dtype=torch.float32)
    x = gradkern.vonmises_rsample(loc, torch.tensor(10.0), sample_shape=(20000,), generator=_gen(6))
    assert x.unique().numel() > 10000
    target = math.fmod(float(loc), 2 * math.pi)  # the float32 loc, reduced exactly
    mean_dir = math.atan2(torch.sin(x.double()).mean().item(), torch.cos(x.double()).mean().item())
    # Circular s.e. at kappa = 10 with 20000 samples is ~2.4e-3 rad.
    assert abs(math.remainder(mean_dir - target, 2 * math.pi)) < 0.02


# --- Student-t in float32 at tiny df ---------------------------------------------------------------------
def test_student_t_float32_tiny_df_finite():
    df = torch.tensor(0.1, dtype=torch.float32, requires_grad=True)
    z = gradkern.student_t_rsample(df, sample_shape=(100_000,), generator=_gen(7))
    assert z.isfinite().all()
    z.abs().clamp(max=1e30).log().mean().backward()
    assert df.grad.isfinite()
