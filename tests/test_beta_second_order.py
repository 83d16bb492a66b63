"""Second derivatives of the incomplete beta function in its parameters and of Beta / Dirichlet samples
(issue 15; csrc/core/ibeta_d2.h): betainc_grads2 and standard_beta_grad_d2 against mpmath ground truth
(tests/data/beta_d2_ref.csv, tools/gen_beta_d2_ref.py), against finite differences of the first-order kernels,
gradgradcheck through every Beta-family op, and Hessians of Beta and Dirichlet expectations by Monte Carlo
within standard errors."""
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck
from torch.func import hessian, jacfwd, jacrev

import gradkern
from conftest import mc_check

OPS = torch.ops.gradkern
F64 = torch.float64
DATA = Path(__file__).parent / "data" / "beta_d2_ref.csv"
# The goals: float64 relative error <= 1e-12, float32 <= 1e-5, where the value is not tiny.
GOAL = {F64: 1e-12, torch.float32: 1e-5}
I_NAMES = ("Iaa", "Iab", "Ibb")
G_NAMES = ("Gaa", "Gab", "Gba", "Gbb")


@pytest.fixture(scope="module")
def ref():
    table = np.genfromtxt(DATA, delimiter=",", names=True, dtype=np.float64, encoding="ascii")
    assert table.size > 300
    return {name: np.ascontiguousarray(table[name]) for name in table.dtype.names}


# The corner where one parameter is 100 or more times the other had a relaxed float64 bound of 5e-11 until
# 2026-12-08: the continued fraction is ill-conditioned far below the mean there (a >> b) or far above it
# (b >> a), 2.9e-11 of the scale at (1e6, 5), and its second order near the mean at (1e4, 100) was 3.4e-11
# relative. The tail quadrature (csrc/core/ibeta.h tail_regime) and the second order's quadrature from
# min(a, b) = 100 on (ibeta_quad.h kQuadMinD2) took those points: 1.4e-13 relative, 3.6e-14 of the scale, so
# the goal holds everywhere.


def _check(got, want, scale, dtype, what, rows):
    """Error within goal * scale everywhere (scale: the sizes of the value's two parts, see the generator),
    and relative error within the goal where the value is not small against its parts (>= 1% of the scale).
    Values below the dtype's smallest normal / eps carry fewer significant bits: bounded absolutely."""
    got = got.double().numpy()
    assert np.isfinite(got).all(), (what, np.sum(~np.isfinite(got)))
    floor = torch.finfo(dtype).tiny / torch.finfo(dtype).eps
    goal = np.full(got.shape, GOAL[dtype])
    err = np.abs(got - want)
    ok = err <= goal * scale + floor
    assert ok.all(), (what, rows["a"][~ok][:4], rows["b"][~ok][:4], rows["x"][~ok][:4], got[~ok][:4], want[~ok][:4])
    big = (np.abs(want) > floor) & (np.abs(want) >= 0.01 * scale)
    rel = err[big] / np.abs(want[big]) / goal[big]
    worst = int(np.argmax(rel))
    assert rel[worst] <= 1, (what, rel[worst], rows["a"][big][worst], rows["b"][big][worst], rows["x"][big][worst])
    assert big.mean() > 0.6, (what, big.mean())  # the relative test covers most points (61-98% measured)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_second_derivatives_against_mpmath(ref, dtype):
    a, b, x = (torch.tensor(ref[k], dtype=dtype) for k in ("a", "b", "x"))
    for got, name in zip(OPS.betainc_grads2(a, b, x), I_NAMES):
        _check(got, ref[name], ref["s" + name], dtype, "d2I " + name, ref)
    for got, name in zip(OPS.standard_beta_grad_d2(a, b, x), G_NAMES):
        _check(got, ref[name], ref["s" + name], dtype, "dg " + name, ref)


def _quadrature_table(csv, dtype, goal, rel_names, min_big):
    """The second order on a quadrature reference table (tools/gen_beta_large_ref.py): every value within
    goal * its scale, and within goal relatively where it is at least 10% of the scale, for the names in
    rel_names (which must have at least min_big such points)."""
    table = np.genfromtxt(DATA.parent / csv, delimiter=",", names=True, dtype=np.float64, encoding="ascii")
    rows = {name: np.ascontiguousarray(table[name]) for name in table.dtype.names}
    a, b, x = (torch.tensor(rows[k], dtype=dtype) for k in ("a", "b", "x"))
    goal = goal(rows) * np.ones(a.shape)
    floor = torch.finfo(dtype).tiny / torch.finfo(dtype).eps
    outs = list(zip(OPS.betainc_grads2(a, b, x), I_NAMES)) + list(zip(OPS.standard_beta_grad_d2(a, b, x), G_NAMES))
    for got, name in outs:
        got = got.double().numpy()
        assert np.isfinite(got).all(), name
        want, scale = rows[name], rows["s" + name]
        err = np.abs(got - want)
        assert (err <= goal * scale + floor).all(), (name, (err / np.maximum(scale, 1e-300) / goal).max())
        if name in rel_names:
            big = (np.abs(want) > floor) & (np.abs(want) >= 0.1 * scale)
            assert big.sum() >= min_big, name
            rel = err[big] / (goal[big] * np.abs(want[big]))
            assert rel.max() <= 1, (name, rel.max(), rows["a"][big][rel.argmax()], rows["b"][big][rel.argmax()])


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_large_parameters_second_order_against_mpmath(dtype):
    """a, b from 1e3 to 1e8 (tests/data/beta_large_ref.csv, tools/gen_beta_large_ref.py): the quadrature's
    second moments (csrc/core/ibeta_d2.h quad_d2). Its one-sided moment formulas cancel near the mean, more
    so as the law becomes symmetric: measured 2.7e-12 of the scale at a = b = 1e8, x = 1/2 (2.7e-11 before
    the second order's panels were split in four), 1e-12 at 1e6, below 5e-13 away from the mean; the float64
    bound is (1e-12 + 1e-15 sqrt(min(a, b))) of the scale (the continued fraction there: 1e-6 relative at
    a = b = 1e8).
    The second derivatives of I are mostly near their scale (136 of the 232 points in float32, 163 in float64
    are above the floor and at >= 10% of it): their relative error too. The G's are small against the
    identity's parts away from the mode (9-14 points at >= 10%), where the bound against the scale is the
    test; near the mode of a skewed law their relative error reaches 1.2x the bound (G_ab at (1e7, 1e6):
    2.4e-12 relative, within the bound of the scale)."""
    goal = (lambda r: 1e-12 + 1e-15 * np.sqrt(np.minimum(r["a"], r["b"]))) if dtype == F64 else (lambda r: 1e-5)
    _quadrature_table("beta_large_ref.csv", dtype, goal, I_NAMES, 100)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_one_large_parameter_far_side_second_order_against_mpmath(dtype):
    """The tail quadrature's regime (tests/data/beta_tail_ref.csv: one parameter from 1e4 to 1e8, the other
    from 0.1 to 700, x on the far side of the mean; csrc/core/ibeta_d2.h tail_d2): the same identities with the
    tail's moments and the closed-form E[log t], E[log(1 - t)] (the pairs with the smaller parameter >= 100 take
    the two-sided quadrature in the second order); measured 3.0e-14 of the scale in float64 (1.8e-13 at
    (1e8, 300) with the tail's moments; as much relative where a value is at least 10% of its scale). Before
    it (the fraction): 1e-8 of the scale."""
    _quadrature_table("beta_tail_ref.csv", dtype, lambda r: 1e-12 if dtype == F64 else 1e-5, I_NAMES + G_NAMES, 4)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_smaller_parameter_100_to_1e3_second_order_against_mpmath(dtype):
    """The second order's quadrature from min(a, b) = 100 on (tests/data/beta_mid_ref.csv; csrc/core/ibeta_quad.h
    kQuadMinD2): the continued fraction's second derivatives there were 7.4e-12 of their scale at a = b = 500
    near the mean and 3.4e-11 relative at (1e4, 100); the quadrature measured 3.0e-14."""
    _quadrature_table("beta_mid_ref.csv", dtype, lambda r: 1e-12 if dtype == F64 else 1e-5, I_NAMES, 20)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_special_values(dtype):
    t = lambda *v: torch.tensor(v, dtype=dtype)  # noqa: E731
    nan, inf = float("nan"), float("inf")
    # x = 0 and x = 1: I is constant in a and b there, and g and its limit vanish.
    for op in (OPS.betainc_grads2, OPS.standard_beta_grad_d2):
        for out in op(t(2.0, 0.5), t(3.0, 0.5), t(0.0, 1.0)):
            assert out.tolist() == [0.0, 0.0]
        # Outside the domain: NaN, as for the first derivatives.
        for out in op(t(0.0, -1.0, nan, 2.0, inf, 2.0), t(1.0, 1.0, 1.0, 2.0, 1.0, 2.0), t(0.5, 0.5, 0.5, 1.5, 0.5, nan)):
            assert torch.isnan(out).all()
    # Symmetry I_x(a, b) = 1 - I_(1-x)(b, a): d2I/da2 (a, b, x) = -d2I/db2 (b, a, 1 - x), on both sides of
    # the fraction's switch.
    a, b = t(2.0, 0.3, 40.0), t(5.0, 0.7, 3.0)
    x = t(0.3, 0.6, 0.95)
    aa, ab, bb = OPS.betainc_grads2(a, b, x)
    aa2, ab2, bb2 = OPS.betainc_grads2(b, a, 1 - x)
    tol = dict(rtol=1e-5, atol=1e-7) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(aa, -bb2, **tol)
    torch.testing.assert_close(ab, -ab2, **tol)


def test_matches_finite_differences_of_the_first_derivatives():
    # Independent of the reference data: central differences of the first-order kernels (held to 1e-13 by
    # test_beta.py) in a and b, step 1e-5 relative (truncation ~1e-10).
    a = torch.tensor([0.05, 0.8, 3.0, 12.0, 45.0, 800.0, 2.0], dtype=F64)
    b = torch.tensor([1.5, 0.3, 7.0, 12.0, 2.0, 900.0, 0.02], dtype=F64)
    for p in (0.02, 0.5, 0.97):
        x = gradkern.betaincinv(a, b, torch.full_like(a, p))
        I2 = OPS.betainc_grads2(a, b, x)
        G = OPS.standard_beta_grad_d2(a, b, x)
        for k, (ha, hb) in enumerate(((1e-5 * a, 0 * b), (0 * a, 1e-5 * b))):
            h = ha + hb
            dI = [(u - v) / (2 * h) for u, v in zip(OPS.betainc_grads(a + ha, b + hb, x), OPS.betainc_grads(a - ha, b - hb, x))]
            dg = [(u - v) / (2 * h) for u, v in zip(OPS.standard_beta_grad(a + ha, b + hb, x),
                                                     OPS.standard_beta_grad(a - ha, b - hb, x))]
            # d/dtheta_k of (I_a, I_b): (I_ak, I_bk); of (g_a, g_b): (G_ak, G_bk)
            torch.testing.assert_close(I2[k], dI[0], rtol=1e-6, atol=1e-12)
            torch.testing.assert_close(I2[1 + k], dI[1], rtol=1e-6, atol=1e-12)
            torch.testing.assert_close(G[k], dg[0], rtol=1e-6, atol=1e-12)
            torch.testing.assert_close(G[2 + k], dg[1], rtol=1e-6, atol=1e-12)


def _leaves(*vals):
    return [torch.tensor(v, dtype=F64, requires_grad=True) for v in vals]


def test_gradgradcheck_through_every_beta_op():
    a, b = _leaves([0.7, 2.0, 30.0, 4.0], [1.3, 5.0, 20.0, 0.2])
    x, = _leaves([0.3, 0.45, 0.62, 0.97])
    p, = _leaves([0.2, 0.5, 0.7, 0.9])
    assert gradgradcheck(gradkern.betainc, (a, b, x))
    assert gradgradcheck(gradkern.betaincc, (a, b, x))
    assert gradgradcheck(gradkern.betaincinv, (a, b, p))
    # the first-order ops: their first derivatives in all three arguments, their second in x (in a, b it
    # would be third order, see test_third_order_raises)
    assert gradcheck(lambda a, b, x: OPS.betainc_grads(a, b, x), (a, b, x))
    assert gradcheck(gradkern.standard_beta_grad, (a, b, x))
    assert gradgradcheck(lambda x: OPS.betainc_grads(a.detach(), b.detach(), x), (x,))
    assert gradgradcheck(lambda x: gradkern.standard_beta_grad(a.detach(), b.detach(), x), (x,))
    # the second-order ops themselves: first derivatives in x (a, b would be third order)
    ad, bd = a.detach(), b.detach()
    assert gradcheck(lambda x: OPS.betainc_grads2(ad, bd, x), (x,))
    assert gradcheck(lambda x: OPS.standard_beta_grad_d2(ad, bd, x), (x,))
    # dirichlet_grad (x, alpha, total), its derivatives in all three
    xd, al, tot = _leaves([0.2, 0.3, 0.6], [0.5, 2.0, 3.0], [4.0, 5.0, 3.5])
    assert gradcheck(lambda x, al, t: OPS.dirichlet_grad(x, al, t), (xd, al, tot))


def test_third_order_raises():
    a, b, x = _leaves(2.0, 3.0, 0.4)
    (aa, _, _) = OPS.betainc_grads2(a, b, x)
    with pytest.raises(RuntimeError, match=r"gradkern.betainc_grads2: the derivative w.r.t. a \(third derivatives"):
        torch.autograd.grad(aa, a)
    g = OPS.standard_beta_grad_d2(a, b, x)[3]
    with pytest.raises(RuntimeError, match=r"gradkern.standard_beta_grad_d2: the derivative w.r.t. b "):
        torch.autograd.grad(g, b)


def _mc(per_sample, want, k=4.0):
    # within k standard errors, and the error bar small against the value (the check has power)
    mc_check(per_sample, want, n_se=k, max_se=0.05 * max(abs(want), 1e-3))


def _beta_per_sample(a, b, n, seed):
    """x ~ Beta(a, b) per sample with its own (a, b) leaves; (x, [dx/da, dx/db], [[d2x/da2, d2x/dadb], [., d2x/db2]])."""
    A = torch.full((n,), a, dtype=F64, requires_grad=True)
    B = torch.full((n,), b, dtype=F64, requires_grad=True)
    x = gradkern.beta_rsample(A, B, generator=torch.Generator().manual_seed(seed))
    ga, gb = torch.autograd.grad(x.sum(), (A, B), create_graph=True)
    haa, hab = torch.autograd.grad(ga.sum(), (A, B), retain_graph=True)
    _, hbb = torch.autograd.grad(gb.sum(), (A, B))
    return x.detach(), (ga.detach(), gb.detach()), (haa, hab, hbb)


@pytest.mark.parametrize("a,b", [(0.5, 2.0), (2.0, 3.0), (20.0, 5.0)])
def test_beta_hessian_of_mean(a, b):
    # E[x] = a / s: d2/da2 = -2b/s^3, d2/(da db) = (a - b)/s^3, d2/db2 = 2a/s^3.
    s = a + b
    _, _, (haa, hab, hbb) = _beta_per_sample(a, b, 100_000, seed=21)
    _mc(haa, -2 * b / s**3)
    _mc(hab, (a - b) / s**3)
    _mc(hbb, 2 * a / s**3)


@pytest.mark.parametrize("a,b", [(0.7, 1.5), (4.0, 9.0)])
def test_beta_hessian_of_log_mean(a, b):
    # E[log x] = psi(a) - psi(a + b): d2/da2 = psi''(a) - psi''(s), d2/(da db) = -psi''(s); per sample
    # d2 log x = h/x - g g'/x^2.
    x, (ga, gb), (haa, hab, _) = _beta_per_sample(a, b, 100_000, seed=22)
    t = lambda v: torch.special.polygamma(2, torch.tensor(v, dtype=F64)).item()  # noqa: E731
    _mc(haa / x - (ga / x) ** 2, t(a) - t(a + b))
    _mc(hab / x - ga * gb / x**2, -t(a + b))


@pytest.mark.parametrize("alpha", [(0.6, 1.2, 2.0), (3.0, 5.0, 8.0, 2.0)])
def test_dirichlet_hessian_of_mean(alpha):
    # E[x_0] = alpha_0 / A (A = sum alpha): d2/dalpha_0^2 = -2 (A - alpha_0)/A^3, d2/(dalpha_0 dalpha_j) =
    # (2 alpha_0 - A)/A^3, d2/(dalpha_i dalpha_j) = 2 alpha_0 / A^3 for i, j != 0. Per sample through the
    # Dirichlet sampler's transport-equation gradient (dirichlet_grad's own derivatives).
    n, K = 50_000, len(alpha)
    al = torch.tensor(alpha, dtype=F64).expand(n, K).clone().requires_grad_(True)
    x = gradkern.dirichlet_rsample(al, generator=torch.Generator().manual_seed(23))
    (g,) = torch.autograd.grad(x[:, 0].sum(), al, create_graph=True)
    A = sum(alpha)
    want = np.full((K, K), 2 * alpha[0] / A**3)
    want[0, :] = want[:, 0] = (2 * alpha[0] - A) / A**3
    want[0, 0] = -2 * (A - alpha[0]) / A**3
    for i in range(K):
        (h,) = torch.autograd.grad(g[:, i].sum(), al, retain_graph=True)
        for j in range(K):
            _mc(h[:, j], want[i, j])


def test_modes_agree_on_the_distribution():
    # The Hessian of a Beta rsample expectation in (concentration1, concentration0): the mode orders agree,
    # and the torch.func.hessian of the betainc value matches the kernel.
    def f(p):
        d = gradkern.distributions.Beta(p[0], p[1])
        return (d.rsample((64,), generator=torch.Generator().manual_seed(3)) ** 2).mean()

    fwd = lambda fn: jacfwd(fn, randomness="same")  # noqa: E731
    p = torch.tensor([2.5, 1.5], dtype=F64)
    ref_h = jacrev(jacrev(f))(p)
    assert torch.isfinite(ref_h).all() and (ref_h != 0).all()
    for outer, inner in ((fwd, fwd), (fwd, jacrev), (jacrev, fwd)):
        torch.testing.assert_close(outer(inner(f))(p), ref_h, rtol=1e-10, atol=1e-12)
    x = torch.tensor(0.4, dtype=F64)
    H = hessian(lambda q: gradkern.betainc(q[0], q[1], x))(p)
    aa, ab, bb = OPS.betainc_grads2(p[0], p[1], x)
    torch.testing.assert_close(H, torch.stack([torch.stack([aa, ab]), torch.stack([ab, bb])]), rtol=1e-14, atol=0)


def test_dirichlet_hessian_modes_agree():
    def f(al):
        x = gradkern.dirichlet_rsample(al, (32,), generator=torch.Generator().manual_seed(4))
        return (x[:, 0] * x[:, 1]).mean()

    al = torch.tensor([1.5, 2.5, 0.8], dtype=F64)
    ref_h = jacrev(jacrev(f))(al)
    assert torch.isfinite(ref_h).all() and (ref_h != 0).all()
    torch.testing.assert_close(jacfwd(jacrev(f), randomness="same")(al), ref_h, rtol=1e-10, atol=1e-12)
