"""Second derivatives in the von Mises concentration (issue 15; csrc/core/vonmises_cdf.h, WANT_D2): d2F/dkappa2
and the kappa-derivative of the implicit gradient, against mpmath ground truth on the first-order grid
(tests/data/vonmises_d2_ref.csv, tools/gen_vonmises_d2_ref.py), against finite differences of the first-order
kernels, and Hessians of von Mises expectations by Monte Carlo within standard errors."""
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.func import jacfwd, jacrev

import gradkern
from conftest import mc_check

OPS = torch.ops.gradkern
F64 = torch.float64
DATA = Path(__file__).parent / "data" / "vonmises_d2_ref.csv"
# The goals: float64 relative error <= 1e-12, float32 <= 1e-5, where the value is not tiny.
GOAL = {F64: 1e-12, torch.float32: 1e-5}


@pytest.fixture(scope="module")
def ref():
    table = np.genfromtxt(DATA, delimiter=",", names=True, dtype=None, encoding="ascii")
    assert table.size > 2900
    return {name: (table[name] if name == "set" else np.ascontiguousarray(table[name], dtype=np.float64))
            for name in table.dtype.names}


def _check(got, want, dtype, what, rows, scale):
    """Relative error within the goal where the value is not tiny against the scale of its parts, and error
    within goal * scale everywhere. g1 = -F_kk / q - g (cos x - r1) is small against its two terms where it
    crosses zero in x (scale = the sum of their sizes); F_kk = q (g1 + g m1) likewise, its scale q times that.
    Values below the dtype's smallest normal / eps carry fewer significant bits: bounded absolutely."""
    got = got.double().numpy()
    assert np.isfinite(got).all(), (what, np.sum(~np.isfinite(got)))
    floor = torch.finfo(dtype).tiny / torch.finfo(dtype).eps
    err = np.abs(got - want)
    ok = err <= GOAL[dtype] * scale + floor
    assert ok.all(), (what, rows["x"][~ok][:5], rows["kappa"][~ok][:5], got[~ok][:5], want[~ok][:5])
    big = (np.abs(want) > floor) & (np.abs(want) >= 0.1 * scale)
    rel = err[big] / np.abs(want[big])
    worst = int(np.argmax(rel))
    assert rel[worst] <= GOAL[dtype], (what, rel[worst], rows["x"][big][worst], rows["kappa"][big][worst])
    assert big.mean() > 0.75, (what, big.mean())  # the relative test covers most points (79-98% measured)


def _q(x, k):
    """The von Mises(0, kappa) density in float64 numpy (the scale of F_kk is q times that of g1)."""
    from scipy.special import i0e

    return np.exp(k * (np.cos(x) - 1)) / (2 * np.pi * i0e(k))


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_second_derivatives_against_mpmath(ref, dtype):
    x = torch.tensor(ref["x"], dtype=dtype)
    k = torch.tensor(ref["kappa"], dtype=dtype)
    _check(OPS.vonmises_grad_dconcentration(k, x), ref["g1"], dtype, "d/dkappa vonmises_grad", ref, ref["scale"])
    _check(OPS.vonmises_cdf_grad_kk(x, k), ref["Fkk"], dtype, "d2F/dkappa2", ref,
           ref["scale"] * _q(ref["x"], ref["kappa"]))


def test_reference_branches_agree():
    # The mpmath reference's series (kappa <= 50) and quadrature (kappa > 50) methods agree where both run.
    from gradkern.reference import vonmises as vm

    for kappa in (20.0, 50.0):
        for x in (-1.2, 2.9):  # a central point and a tail point
            s = vm._all2(x, kappa, method="series")
            q = vm._all2(x, kappa, method="quad")
            for a, b in zip(s[:2], q[:2]):
                assert abs(a - b) <= 1e-20 * (abs(a) + s[2]), (kappa, x, a, b)


def test_matches_finite_differences_of_the_first_derivatives():
    # Independent of the reference data: central differences in kappa of the first-order kernels (held to
    # 1e-13 by test_vonmises_accuracy.py), step 1e-5 relative (truncation ~1e-10), in every kernel branch
    # (series, its tail integral, the Gaussian expansion, the large-kappa tail).
    k = torch.tensor([0.01, 0.7, 4.0, 25.0, 45.0, 400.0, 3e4], dtype=F64)
    for u in (0.003, 0.2, 0.45, 0.8, 0.999):
        x = gradkern.distributions.VonMises(torch.zeros_like(k), k).icdf(torch.full_like(k, u))
        h = 1e-5 * k
        for op, first, args in ((OPS.vonmises_cdf_grad_kk, OPS.vonmises_cdf_grad_concentration, lambda kk: (x, kk)),
                                (OPS.vonmises_grad_dconcentration, OPS.vonmises_grad, lambda kk: (kk, x))):
            fd = (first(*args(k + h)) - first(*args(k - h))) / (2 * h)
            torch.testing.assert_close(op(*args(k)), fd, rtol=1e-7, atol=1e-300)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_special_values(dtype):
    t = lambda *v: torch.tensor(v, dtype=dtype)  # noqa: E731
    nan, inf = float("nan"), float("inf")
    # x = 0: g = 0 and F = 1/2 for every kappa; x = +-pi: F = 0 or 1. Both constant in kappa (float32's pi is
    # 8.7e-8 beyond pi, where both are ~ 8.7e-8 times their x-derivative).
    for op, args in ((OPS.vonmises_cdf_grad_kk, lambda x, k: (x, k)), (OPS.vonmises_grad_dconcentration, lambda x, k: (k, x))):
        got = op(*args(t(0.0, 0.0, np.pi, -np.pi), t(0.5, 300.0, 2.0, 2.0)))
        assert got.abs().max().item() <= (1e-12 if dtype == F64 else 1e-7), got
        # Out of the domain: NaN, as for the first derivatives.
        assert torch.isnan(op(*args(t(0.3, 0.3, nan, inf), t(-1.0, nan, 1.0, 1.0)))).all()
    # Periodicity: F(x + 2 pi n) = F(x) + n, so F_kk and the gradient's derivative repeat.
    x, k = t(0.8, -2.0), t(1.5, 60.0)
    torch.testing.assert_close(OPS.vonmises_cdf_grad_kk(x + 2 * np.pi, k), OPS.vonmises_cdf_grad_kk(x, k),
                               rtol=1e-5 if dtype == torch.float32 else 1e-12, atol=0)


def _bessel_a(k):
    """A(kappa) = I1/I0, A' and A'' in float64 (scipy; moderate kappa only)."""
    from scipy.special import i0e, i1e

    a = i1e(k) / i0e(k)
    a1 = 1 - a / k - a * a
    a2 = -a1 / k + a / k ** 2 - 2 * a * a1
    return a, a1, a2


def _per_sample_second(kappa, n, seed):
    """(z, dz/dkappa, d2z/dkappa2) per sample for z ~ vonMises(0, kappa), each sample with its own leaf."""
    k = torch.full((n,), kappa, dtype=F64, requires_grad=True)
    z = gradkern.vonmises_rsample(0.0, k, generator=torch.Generator().manual_seed(seed))
    (g,) = torch.autograd.grad(z.sum(), k, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), k)
    return z.detach(), g.detach(), h


def _mc(per_sample, want, k=4.0):
    # within k standard errors, and the error bar small against the value (the check has power)
    mc_check(per_sample, want, n_se=k, max_se=0.1 * abs(want))


@pytest.mark.parametrize("kappa", [0.5, 2.0, 8.0, 40.0])
def test_hessian_of_mean_cosine(kappa):
    # E[cos z] = A(kappa), so d2/dkappa2 E[cos z] = A''; per sample -cos z g^2 - sin z h.
    z, g, h = _per_sample_second(kappa, 100_000, seed=21)
    _mc(-torch.cos(z) * g * g - torch.sin(z) * h, _bessel_a(kappa)[2])


@pytest.mark.parametrize("kappa", [0.3, 3.0, 20.0])
def test_hessian_of_mean_cosine_2z(kappa):
    # E[cos 2z] = I2/I0 = 1 - 2A/kappa; per sample d2 cos(2z) = -4 cos(2z) g^2 - 2 sin(2z) h.
    z, g, h = _per_sample_second(kappa, 100_000, seed=22)
    a, a1, a2 = _bessel_a(kappa)
    want = -2 * (a2 / kappa - 2 * a1 / kappa ** 2 + 2 * a / kappa ** 3)
    _mc(-4 * torch.cos(2 * z) * g * g - 2 * torch.sin(2 * z) * h, want)


def test_modes_agree_on_the_distribution():
    # The Hessian of a VonMises rsample expectation in (loc, concentration), and of its cdf: the four mode
    # orders agree, and nothing raises any more.
    def f(p):
        d = gradkern.distributions.VonMises(p[0], p[1])
        z = d.rsample((64,), generator=torch.Generator().manual_seed(3))
        return (torch.cos(z - 0.3) + d.cdf(torch.tensor(0.7, dtype=F64))).mean()

    fwd = lambda fn: jacfwd(fn, randomness="same")  # noqa: E731  (random ops under jacfwd need a mode)
    p = torch.tensor([0.2, 2.5], dtype=F64)
    ref_h = jacrev(jacrev(f))(p)
    assert torch.isfinite(ref_h).all() and (ref_h != 0).all()
    for outer, inner in ((fwd, fwd), (fwd, jacrev), (jacrev, fwd)):
        torch.testing.assert_close(outer(inner(f))(p), ref_h, rtol=1e-10, atol=1e-12)


def test_hessian_of_the_cdf_matches_the_kernel():
    x = torch.tensor([-2.0, 0.5, 3.0], dtype=F64)
    k = torch.tensor([0.4, 5.0, 70.0], dtype=F64)
    hk = torch.func.vmap(torch.func.hessian(lambda kk, xx: gradkern.vonmises_cdf(xx, 0.0, kk)))(k, x)
    torch.testing.assert_close(hk, OPS.vonmises_cdf_grad_kk(x, k), rtol=1e-14, atol=0)


def test_third_order_in_kappa_raises():
    k = torch.tensor([1.5, 2.5], dtype=F64)
    x = torch.tensor(0.3, dtype=F64)
    with pytest.raises(RuntimeError, match=r"gradkern.vonmises_cdf_grad_kk: the derivative w.r.t. concentration "):
        jacrev(jacrev(jacrev(lambda k: gradkern.vonmises_cdf(x, 0.0, k).sum())))(k)
    kr = k.clone().requires_grad_()
    z = gradkern.vonmises_rsample(0.0, kr, generator=torch.Generator().manual_seed(0))
    (g,) = torch.autograd.grad(z.sum(), kr, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), kr, create_graph=True)
    assert torch.isfinite(h).all() and (h != 0).all()
    with pytest.raises(RuntimeError, match=r"gradkern.vonmises_grad_dconcentration: the derivative w.r.t. concentration "):
        h.sum().backward()


@pytest.mark.parametrize("kappa", [0.2, 5.0, 45.0, 1e3, 1e5])
def test_x_derivatives_of_the_second_order_ops(kappa):
    # d/dx d2F/dkappa2 = d2q/dkappa2 = q ((cos x - A)^2 - A') and d/dx of the gradient's kappa-derivative
    # = A' + (g1 kappa + g) sin x (csrc/autograd.cpp; A' from Hankel's expansion from kappa = 30 on), against
    # central differences in x of the kernels.
    k = torch.full((4,), kappa, dtype=F64)
    x = gradkern.distributions.VonMises(torch.zeros_like(k), k).icdf(torch.tensor([0.05, 0.3, 0.6, 0.9], dtype=F64))
    h = 1e-6 * x.abs()
    for op, args in ((OPS.vonmises_cdf_grad_kk, lambda xx: (xx, k)), (OPS.vonmises_grad_dconcentration, lambda xx: (k, xx))):
        xr = x.clone().requires_grad_()
        (got,) = torch.autograd.grad(op(*args(xr)).sum(), xr)
        fd = (op(*args(x + h)) - op(*args(x - h))) / (2 * h)
        torch.testing.assert_close(got, fd, rtol=1e-6, atol=0)
