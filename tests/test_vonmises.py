"""von Mises: unbiasedness of the gradients (appendix A), the shift-and-wrap, the fused sampler (KS, the
kernel gradient), CDF gradients and wrapping, bad input and the distribution. The op contracts (opcheck,
torch.compile, seeding, thread count, strides, empty inputs) are in test_contracts.py."""
import math

import numpy as np
import pytest
import torch

import gradkern
from conftest import DEVICES, FLOAT_DTYPES, mc_check

OPS = torch.ops.gradkern
N = 200_000


def _bessel_ratio_derivative(kappa):
    # d/dkappa E[cos z] = 1 - A/kappa - A^2 with A = I1/I0 (appendix A).
    k = torch.tensor(kappa, dtype=torch.float64)
    A = (torch.special.i1e(k) / torch.special.i0e(k)).item()
    return 1 - A / kappa - A * A


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kappa", [1e-2, 0.5, 3.0, 40.0, 2000.0])
def test_appendix_a_concentration_gradient(kappa, device):
    g = torch.Generator(device=device).manual_seed(21)
    k = torch.full((N,), kappa, dtype=torch.float64, device=device, requires_grad=True)
    z = gradkern.vonmises_rsample(0.0, k, generator=g)
    torch.cos(z).sum().backward()
    mc_check(k.grad, _bessel_ratio_derivative(kappa), what=f"d/dkappa E[cos z], kappa={kappa}")


def test_loc_gradient():
    # E[sin(z)] = sin(loc) A(kappa), so d/dloc = cos(loc) A.
    g = torch.Generator().manual_seed(22)
    loc = torch.full((N,), 0.7, dtype=torch.float64, requires_grad=True)
    z = gradkern.vonmises_rsample(loc, torch.tensor(2.0, dtype=torch.float64), generator=g)
    torch.sin(z).sum().backward()
    k = torch.tensor(2.0, dtype=torch.float64)
    A = (torch.special.i1e(k) / torch.special.i0e(k)).item()
    mc_check(loc.grad, math.cos(0.7) * A, what="d/dloc E[sin z]")
    loc2 = torch.full((10,), 0.7, dtype=torch.float64, requires_grad=True)
    gradkern.vonmises_rsample(loc2, torch.tensor(2.0, dtype=torch.float64), generator=g).sum().backward()
    assert (loc2.grad == 1).all()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shift_wrap(dtype, device):
    """vonmises_shift_wrap(x, loc) = (x + loc) wrapped into [-pi, pi): against a float64 remainder
    formula, the range including the boundary cases, NaN/inf, and gradients 1 (summed over broadcast)."""
    g = torch.Generator().manual_seed(5)
    x = (torch.rand(4000, generator=g, dtype=torch.float64) * 2 - 1) * math.pi
    loc = (torch.rand(4000, generator=g, dtype=torch.float64) * 2 - 1) * 40
    edge_x = torch.tensor([math.pi, -math.pi, 0.0, 1.0, 3.0, float("nan"), 0.0], dtype=torch.float64)
    edge_l = torch.tensor([0.0, 0.0, 2 * math.pi, -1.0, 1e6, 0.0, float("inf")], dtype=torch.float64)
    x, loc = torch.cat([x, edge_x]).to(dtype), torch.cat([loc, edge_l]).to(dtype)
    y = OPS.vonmises_shift_wrap(x.to(device), loc.to(device)).cpu()
    want = torch.remainder(x.double() + loc.double() + math.pi, 2 * math.pi) - math.pi
    finite = want.isfinite()
    assert torch.equal(finite, y.isfinite())
    assert ((y[finite] >= -math.pi) & (y[finite] < math.pi)).all()
    # Equal up to rounding of the sum, modulo 2 pi (a value rounded across -pi comes out near +pi).
    d = (y[finite].double() - want[finite]).abs()
    d = torch.minimum(d, (d - 2 * math.pi).abs())
    tol = 1e-5 if dtype == torch.float32 else 1e-13
    assert (d <= tol * (1 + (x.double() + loc.double()).abs()[finite])).all()
    # Samples already in [-pi, pi) with loc = 0 are returned unchanged.
    z = x[:4000]
    assert torch.equal(OPS.vonmises_shift_wrap(z.to(device), torch.zeros((), dtype=dtype, device=device)).cpu(), z)
    # Gradients: 1 for x, the broadcast sum for loc.
    xs = x[:10].to(device).requires_grad_()
    ls = torch.tensor(0.3, dtype=dtype, device=device, requires_grad=True)
    OPS.vonmises_shift_wrap(xs, ls).sum().backward()
    assert (xs.grad == 1).all() and ls.grad.item() == 10


def test_backward_is_the_kernel_gradient():
    g = torch.Generator().manual_seed(23)
    k = (torch.rand(1000, dtype=torch.float64, generator=g) * 20 + 1e-3).requires_grad_()
    # The raw op (vonmises_rsample adds loc and re-wraps, which rounds z by an ulp).
    z = OPS.vonmises_sample(k, g)
    (grad,) = torch.autograd.grad(z.sum(), k)
    torch.testing.assert_close(grad, gradkern.vonmises_grad(k.detach(), z.detach()), rtol=0, atol=0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kappa", [1e-6, 0.3, 5.0, 100.0, 1e6])
def test_sampler_ks(kappa, dtype, device):
    from scipy import stats
    g = torch.Generator(device=device).manual_seed(24)
    z = gradkern.vonmises_rsample(0.0, torch.full((20_000,), kappa, dtype=dtype, device=device),
                                  generator=g).double()
    assert ((z >= -math.pi) & (z < math.pi)).all()
    # The probability integral transform through gradkern's CDF (checked against mpmath elsewhere).
    u = gradkern.vonmises_cdf(z, 0.0, torch.tensor(kappa, dtype=torch.float64, device=device)).cpu().numpy()
    assert stats.kstest(u, "uniform").pvalue > 1e-3


def test_sampler_matches_torch_distribution():
    from scipy import stats
    torch.manual_seed(25)
    ref = torch.distributions.VonMises(0.3, 4.0).sample((20_000,)).double().numpy()
    ours = gradkern.distributions.VonMises(torch.tensor(0.3), torch.tensor(4.0)).sample((20_000,)).double().numpy()
    assert stats.ks_2samp(ref, ours).pvalue > 1e-3


@pytest.mark.parametrize("device", DEVICES)
def test_gradcheck_cdf(device):
    x = torch.tensor([-3.0, -1.0, 0.1, 2.5, 7.0], dtype=torch.float64, device=device, requires_grad=True)
    loc = torch.tensor([0.2, -0.4, 0.0, 1.0, 0.5], dtype=torch.float64, device=device, requires_grad=True)
    kappa = torch.tensor([0.05, 1.0, 8.0, 30.0, 200.0], dtype=torch.float64, device=device, requires_grad=True)
    assert torch.autograd.gradcheck(gradkern.vonmises_cdf, (x, loc, kappa), eps=1e-6, atol=1e-6, rtol=1e-5)


def test_wrapping():
    kappa = torch.tensor(2.0, dtype=torch.float64)
    x = torch.tensor([-2.0, 0.5, 3.0], dtype=torch.float64)
    base = OPS.vonmises_cdf(x, kappa)
    for k in (-2, 1, 3):
        torch.testing.assert_close(OPS.vonmises_cdf(x + 2 * math.pi * k, kappa), base + k)
    edges = OPS.vonmises_cdf(torch.tensor([-math.pi, math.pi], dtype=torch.float64), kappa)
    torch.testing.assert_close(edges, torch.tensor([0.0, 1.0], dtype=torch.float64))


@pytest.mark.parametrize("device", DEVICES)
def test_bad_input_gives_nan(device):
    # kappa = 0 is valid (the uniform distribution: tests/test_bad_input.py checks its limits).
    k = torch.tensor([-1.0, -1e-300, math.nan, math.inf, 1.0, 1.0], dtype=torch.float64, device=device)
    x = torch.tensor([0.1, 0.1, 0.1, 0.1, math.nan, math.inf], dtype=torch.float64, device=device)
    assert torch.isnan(OPS.vonmises_cdf(x, k)).all()
    assert torch.isnan(OPS.vonmises_cdf_grad_concentration(x, k)).all()
    assert torch.isnan(OPS.vonmises_grad(k, x)).all()
    s = OPS.vonmises_sample(k[:4], None)
    assert torch.isnan(s).all()


def test_distribution():
    D = gradkern.distributions.VonMises
    loc = torch.tensor([0.0, 1.0])
    kappa = torch.tensor([0.5, 20.0], requires_grad=True)
    d = D(loc, kappa)
    assert d.has_rsample
    z = d.rsample((100,))
    assert z.shape == (100, 2)
    d.log_prob(z).sum().backward()
    assert torch.isfinite(kappa.grad).all()
    with pytest.raises(ValueError):
        D(torch.tensor(0.0), torch.tensor(-1.0), validate_args=True)
    assert isinstance(d, torch.distributions.VonMises)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_dtype_errors(dtype):
    with pytest.raises(RuntimeError, match="same dtype"):
        OPS.vonmises_grad(torch.ones(2, dtype=dtype), torch.ones(2, dtype=torch.float16))
