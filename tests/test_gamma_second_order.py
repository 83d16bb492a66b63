"""Second derivatives in the Gamma shape (issue 15; csrc/core/igamma_d2.h): d2P/da2 and the a-derivatives of
the implicit gradients, against mpmath ground truth on the first-order grid (tests/data/igamma_d2_ref.csv,
tools/gen_igamma_d2_ref.py), and Hessians of Gamma expectations by Monte Carlo within standard errors."""
from pathlib import Path

import numpy as np
import pytest
import torch

import gradkern
from conftest import mc_check

OPS = torch.ops.gradkern
F64 = torch.float64
DATA = Path(__file__).parent / "data" / "igamma_d2_ref.csv"
# The goals: float64 relative error <= 1e-12, float32 <= 1e-5, where the value is not tiny.
GOAL = {F64: 1e-12, torch.float32: 1e-5}


@pytest.fixture(scope="module")
def ref():
    return np.genfromtxt(DATA, delimiter=",", names=True, dtype=None, encoding=None)


def _rows(ref, dtype):
    rows = ref if dtype == F64 else ref[ref["set"] != 3]  # set 3: inputs that float32 cannot hold
    return rows


def _check(got, want, dtype, what, rows, scale=None):
    """Relative error within the goal where the value is not tiny. "Tiny": below the dtype's smallest normal
    number / eps (where a value carries fewer significant bits; its absolute error is bounded instead), and,
    where a scale is given, below a tenth of it: d2P/da2 = -x q (D + h (log x - psi(a))) crosses zero in x,
    and near the crossing the sum is small against its parts (scale = the sum of their sizes), so the error
    is bounded relative to the scale there, as its conditioning allows."""
    got = got.double().numpy()
    assert np.isfinite(got).all(), (what, np.sum(~np.isfinite(got)))
    floor = torch.finfo(dtype).tiny / torch.finfo(dtype).eps
    err = np.abs(got - want)
    big = np.abs(want) > floor
    if scale is not None:
        assert np.all(err[scale > floor] <= GOAL[dtype] * scale[scale > floor]), what
        big &= np.abs(want) >= 0.1 * scale
    rel = err[big] / np.abs(want[big])
    worst = int(np.argmax(rel))
    assert rel[worst] <= GOAL[dtype], (what, rel[worst], rows["a"][big][worst], rows["x"][big][worst])
    assert big.mean() > 0.8, (what, big.mean())  # the relative test covers most points (85% measured)
    assert np.all(err[~big & (np.abs(want) <= floor)] <= floor), what


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_second_derivatives_against_mpmath(ref, dtype):
    rows = _rows(ref, dtype)
    assert rows.size > 1000
    a = torch.tensor(rows["a"], dtype=dtype)
    x = torch.tensor(rows["x"], dtype=dtype)
    _check(OPS.gammainc_grad_aa(a, x), rows["d2pda2"], dtype, "d2P/da2", rows, scale=rows["scale"])
    _check(OPS.standard_gamma_grad_dalpha(a, x), rows["dgda"], dtype, "d/da standard_gamma_grad", rows)
    sel = np.isfinite(rows["dhda"])
    _check(OPS.log_standard_gamma_grad_dalpha(a[sel], torch.tensor(rows["logx"][sel], dtype=dtype)),
           rows["dhda"][sel], dtype, "d/da log_standard_gamma_grad", rows[sel])


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_special_values(dtype):
    t = lambda *v: torch.tensor(v, dtype=dtype)  # noqa: E731
    inf, nan = float("inf"), float("nan")
    # x = 0 and x = inf: P is constant in a there; g = 0 at x = 0; g -> log x - psi(a) as x -> inf.
    assert OPS.gammainc_grad_aa(t(2.0, 2.0), t(0.0, inf)).tolist() == [0.0, 0.0]
    assert OPS.standard_gamma_grad_dalpha(t(2.0), t(0.0)).item() == 0.0
    torch.testing.assert_close(OPS.standard_gamma_grad_dalpha(t(2.0), t(inf)), -torch.special.polygamma(1, t(2.0)))
    assert OPS.log_standard_gamma_grad_dalpha(t(2.0, 2.0), t(-inf, inf)).tolist() == [-inf, 0.0]
    # Outside the domain: NaN, as for the first derivatives.
    for op in (OPS.gammainc_grad_aa, OPS.standard_gamma_grad_dalpha):
        assert torch.isnan(op(t(0.0, -1.0, nan, 2.0, inf), t(1.0, 1.0, 1.0, -1.0, 1.0))).all()
    assert torch.isnan(OPS.log_standard_gamma_grad_dalpha(t(0.0, 2.0), t(0.0, nan))).all()


def test_matches_finite_differences_of_the_first_derivatives():
    # Independent of the reference data: central differences of the first-order kernels (which the tests of
    # test_gamma_accuracy.py hold to 1e-13) in a, step 1e-5 relative (truncation ~1e-10).
    a = torch.tensor([0.05, 0.8, 3.0, 12.0, 45.0, 800.0], dtype=F64)
    for p in (0.02, 0.5, 0.97):
        x = gradkern.gammaincinv(a, torch.full_like(a, p))
        h = 1e-5 * a
        for op, first in ((OPS.gammainc_grad_aa, OPS.gammainc_grad_a),
                          (OPS.standard_gamma_grad_dalpha, OPS.standard_gamma_grad)):
            fd = (first(a + h, x) - first(a - h, x)) / (2 * h)
            torch.testing.assert_close(op(a, x), fd, rtol=1e-7, atol=0)


def _per_sample_second(alpha, n, seed):
    """(z, dz/dalpha, d2z/dalpha2) per sample for z ~ Gamma(alpha, 1), each sample with its own alpha leaf."""
    a = torch.full((n,), alpha, dtype=F64, requires_grad=True)
    z = gradkern.gamma_rsample(a, generator=torch.Generator().manual_seed(seed))
    (g,) = torch.autograd.grad(z.sum(), a, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), a)
    return z.detach(), g.detach(), h


def _mc(per_sample, want, k=4.0):
    # within k standard errors, and the error bar small against the value (the check has power)
    mc_check(per_sample, want, n_se=k, max_se=0.05 * max(abs(want), 1.0))


@pytest.mark.parametrize("alpha", [0.3, 1.0, 4.0, 40.0])
def test_hessian_of_second_moment(alpha):
    # E[z^2] = alpha (alpha + 1), so d2/dalpha2 E[z^2] = 2; per sample d2(z^2)/dalpha2 = 2 g^2 + 2 z h.
    z, g, h = _per_sample_second(alpha, 100_000, seed=11)
    _mc(2 * g * g + 2 * z * h, 2.0)


@pytest.mark.parametrize("alpha", [0.5, 2.0, 10.0])
def test_hessian_of_log_mean(alpha):
    # E[log z] = psi(alpha), so d2/dalpha2 E[log z] = psi''(alpha); per sample d2 log z = h/z - (g/z)^2.
    z, g, h = _per_sample_second(alpha, 100_000, seed=12)
    want = torch.special.polygamma(2, torch.tensor(alpha, dtype=F64)).item()
    _mc(h / z - (g / z) ** 2, want)


def test_distribution_hessian_modes_agree():
    # The Hessian of a Gamma rsample expectation in (concentration, rate): the four mode orders agree.
    from torch.func import jacfwd, jacrev

    def f(p):
        d = gradkern.distributions.Gamma(p[0], p[1])
        return (d.rsample((64,), generator=torch.Generator().manual_seed(3)) ** 2).mean()

    fwd = lambda fn: jacfwd(fn, randomness="same")  # noqa: E731  (random ops under jacfwd need a mode)
    p = torch.tensor([2.5, 1.5], dtype=F64)
    ref_h = jacrev(jacrev(f))(p)
    assert torch.isfinite(ref_h).all() and (ref_h != 0).all()
    for outer, inner in ((fwd, fwd), (fwd, jacrev), (jacrev, fwd)):
        torch.testing.assert_close(outer(inner(f))(p), ref_h, rtol=1e-10, atol=1e-12)
