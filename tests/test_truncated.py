"""gradkern.distributions.TruncatedNormal: samples against scipy.stats.truncnorm (deep tails included),
implicit gradients unbiased for loc, scale and both bounds, moments, log_prob / cdf / icdf, the
distribution contract (shapes, support, expand, validate_args, generator)."""
import math

import pytest
import torch
from scipy import stats

from gradkern.distributions import TruncatedNormal

F64 = torch.float64
WINDOWS = [(-1.0, 2.0), (8.0, 9.0), (-40.0, -39.0), (0.0, math.inf), (-math.inf, -30.0), (3.0, 3.001),
           (-6.0, 6.0)]


def _t(v, dtype=F64):
    return torch.tensor(v, dtype=dtype)


def _dist(loc, scale, lo, hi, dtype=F64, **kw):
    return TruncatedNormal(_t(loc, dtype), _t(scale, dtype), _t(lo, dtype), _t(hi, dtype), **kw)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("lo,hi", WINDOWS)
def test_samples_follow_scipy(lo, hi, dtype):
    d = _dist(0.0, 1.0, lo, hi, dtype)
    z = d.sample((20_000,), generator=torch.Generator().manual_seed(0))
    assert z.dtype == dtype and torch.isfinite(z).all()
    assert (z >= lo).all() and (z <= hi).all()
    assert stats.kstest(z.double().numpy(), stats.truncnorm(lo, hi).cdf).pvalue > 1e-4


@pytest.mark.parametrize("loc,scale,lo,hi", [(0.3, 1.5, -1.0, 2.0), (0.0, 1.0, 8.0, 9.0), (1.0, 2.0, -math.inf, 0.5),
                                             (0.0, 1.0, -40.0, -39.0), (-2.0, 0.5, -2.5, math.inf)])
def test_gradients_unbiased(loc, scale, lo, hi):
    # d/dtheta E[z] against central differences of scipy's truncnorm mean, within 4 standard errors.
    n = 200_000
    params = [torch.full((n,), v, dtype=F64, requires_grad=True) for v in (loc, scale, lo, hi)]
    z = TruncatedNormal(*params).rsample(generator=torch.Generator().manual_seed(1))
    grads = torch.autograd.grad(z.sum(), params)

    def mean(v):
        return stats.truncnorm((v[2] - v[0]) / v[1], (v[3] - v[0]) / v[1], loc=v[0], scale=v[1]).mean()

    vals = [loc, scale, lo, hi]
    for i, g in enumerate(grads):
        assert torch.isfinite(g).all()
        if not math.isfinite(vals[i]):
            assert (g == 0).all()  # an infinite bound has no gradient
            continue
        h = 1e-5 * max(1.0, abs(vals[i]))
        vp, vm = list(vals), list(vals)
        vp[i] += h
        vm[i] -= h
        want = (mean(vp) - mean(vm)) / (2 * h)
        se = g.std().item() / math.sqrt(n)
        assert abs(g.mean().item() - want) <= 4 * se + 1e-9, (i, g.mean().item(), want, se)


@pytest.mark.parametrize("lo,hi", WINDOWS)
def test_moments_log_prob_cdf_icdf(lo, hi):
    loc, scale = 0.5, 2.0
    d = _dist(loc, scale, loc + scale * lo, loc + scale * hi)
    ref = stats.truncnorm(lo, hi, loc=loc, scale=scale)
    torch.testing.assert_close(d.mean, _t(ref.mean()), rtol=1e-12, atol=1e-12)
    # the closed-form variance is a difference of terms ~alpha^2 (and 1/width^2 of a narrow window)
    # larger than itself
    torch.testing.assert_close(d.variance, _t(ref.var()), rtol=1e-5 if hi - lo < 0.01 else 1e-9, atol=0)
    u = torch.tensor([0.01, 0.3, 0.5, 0.8, 0.99], dtype=F64)
    x = d.icdf(u)
    torch.testing.assert_close(x, torch.from_numpy(ref.ppf(u.numpy())), rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(d.cdf(x), u, rtol=1e-9, atol=1e-12)
    lp = d.log_prob(x)
    want = torch.from_numpy(ref.logpdf(x.numpy()))
    torch.testing.assert_close(lp, want, rtol=1e-9, atol=1e-9)
    if math.isfinite(lo):
        below = torch.tensor([loc + scale * lo - 1.0], dtype=F64)
        d_v = _dist(loc, scale, loc + scale * lo, loc + scale * hi, validate_args=True)
        with pytest.raises(ValueError):  # torch's convention under validate_args
            d_v.log_prob(below)
        d_nv = _dist(loc, scale, loc + scale * lo, loc + scale * hi, validate_args=False)
        assert d_nv.log_prob(below).item() == -math.inf


def test_invalid_parameters_give_nan_samples():
    nan = math.nan
    d = TruncatedNormal(torch.tensor([0.0, 0.0, nan, 0.0]), torch.tensor([1.0, -1.0, 1.0, 1.0]),
                        torch.tensor([2.0, -1.0, -1.0, -1.0]), torch.tensor([1.0, 1.0, 1.0, 1.0]),
                        validate_args=False)
    z = d.sample((5,))
    assert z[:, :3].isnan().all() and z[:, 3].isfinite().all()


def test_copy_and_pickle():
    import copy
    import pickle

    d = TruncatedNormal(torch.zeros(2), torch.ones(2), torch.tensor([-1.0, 8.0]), torch.tensor([1.0, 9.0]))
    for e in (copy.deepcopy(d), pickle.loads(pickle.dumps(d))):
        assert type(e) is TruncatedNormal
        for name in ("loc", "scale", "low", "high"):
            assert torch.equal(getattr(e, name), getattr(d, name))
        assert torch.equal(e.sample((3,), generator=torch.Generator().manual_seed(4)),
                           d.sample((3,), generator=torch.Generator().manual_seed(4)))


def test_contract():
    d = TruncatedNormal(torch.zeros(3), torch.ones(3), torch.tensor([-1.0, 0.0, 5.0]), torch.tensor(6.0))
    assert d.batch_shape == (3,) and d.event_shape == ()
    assert d.rsample((4, 2)).shape == (4, 2, 3)
    e = d.expand((5, 3))
    assert e.batch_shape == (5, 3) and e.sample().shape == (5, 3)
    assert d.support.check(torch.tensor([0.0, 1.0, 5.5])).all()
    g1 = d.sample((10,), generator=torch.Generator().manual_seed(3))
    g2 = d.sample((10,), generator=torch.Generator().manual_seed(3))
    assert torch.equal(g1, g2)
    with pytest.raises(ValueError, match="low must be smaller than high"):
        TruncatedNormal(0.0, 1.0, 2.0, 1.0, validate_args=True)
    with pytest.raises(ValueError):
        TruncatedNormal(0.0, -1.0, 0.0, 1.0, validate_args=True)
    # low < high is checked once per distinct pair of broadcast bounds: one bad pair among expanded ones
    loc = torch.zeros(4, 3)
    for low, high in ((torch.zeros(4, 1), torch.tensor([1.0, 2.0, 0.0])), (0.0, torch.tensor([[1.0], [1.0], [-1.0], [1.0]])),
                      (torch.tensor([0.0, 0.5, 0.2]).expand(4, 3), 0.5)):
        with pytest.raises(ValueError, match="low must be smaller than high"):
            TruncatedNormal(loc, 1.0, low, high, validate_args=True)
    TruncatedNormal(loc, 1.0, torch.zeros(4, 1), torch.tensor([1.0, 2.0, 0.1]), validate_args=True)
    # Second derivatives are exact: against the inverse-CDF map z(loc) = loc + scale * ndtri(Phi(alpha) +
    # u (Phi(beta) - Phi(alpha))) at the sample's quantile u.
    a = torch.tensor(0.5, dtype=F64, requires_grad=True)
    z = TruncatedNormal(a, _t(1.0), _t(0.0), _t(2.0)).rsample((3,), generator=torch.Generator().manual_seed(0))
    (g,) = torch.autograd.grad(z.sum(), a, create_graph=True)
    (h,) = torch.autograd.grad(g, a)
    lo, hi, zz = _t(0.0), _t(2.0), z.detach()
    ndtr = torch.special.ndtr
    u = (ndtr(zz - 0.5) - ndtr(lo - 0.5)) / (ndtr(hi - 0.5) - ndtr(lo - 0.5))
    explicit = lambda m: (m + torch.special.ndtri(ndtr(lo - m) + u * (ndtr(hi - m) - ndtr(lo - m)))).sum()  # noqa: E731
    torch.testing.assert_close(g.detach(), torch.func.grad(explicit)(a.detach()), rtol=1e-9, atol=0)
    torch.testing.assert_close(h, torch.func.hessian(explicit)(a.detach()), rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("loc,scale,lo,hi", [(0.3, 1.5, -1.0, 2.0), (0.0, 1.0, 8.0, 9.0), (1.0, 2.0, -math.inf, 0.5),
                                             (0.0, 1.0, -40.0, -39.0), (-2.0, 0.5, -2.5, math.inf)])
def test_closed_form_gradients_match_implicit_rsample(loc, scale, lo, hi):
    # rsample's closed-form implicit gradients (_AttachTruncatedNormal) against implicit reparameterization's
    # Newton steps on the oriented log CDF (the previous implementation, exact to third order), on the same
    # samples: first derivatives (jacrev), the Hessian (jacrev of jacrev, and jacfwd of jacrev) in every
    # parameter pair, windows deep in both tails and with an infinite bound. The previous implementation's
    # Hessian was NaN with an infinite bound (inf * 0 in its graph); the reference stands in +-1e3 for it (>=
    # 500 standard deviations out: Phi rounds to exactly 0 or 1 there, so the value and every derivative are
    # those of the infinite bound to double precision).
    from torch.func import jacfwd, jacrev

    from gradkern._implicit import _implicit_steps

    p0 = torch.tensor([loc, scale, lo, hi], dtype=F64)
    fin = torch.isfinite(p0)

    def fast(p):
        q = torch.where(fin, p, p0)
        return TruncatedNormal(*q).rsample((6,), generator=torch.Generator().manual_seed(5))

    def ref(p):
        q = torch.where(fin, p, p0.clamp(-1e3, 1e3))
        with torch.no_grad():
            z = TruncatedNormal(*p0).rsample((6,), generator=torch.Generator().manual_seed(5))
        d = TruncatedNormal(*q)
        return _implicit_steps(z, d._log_cdf_oriented, tuple(q), d._log_cdf_oriented_dz)

    pf = torch.where(fin, p0, torch.zeros_like(p0))
    torch.testing.assert_close(fast(pf), ref(pf), rtol=0, atol=0)
    j1, j2 = jacrev(fast)(pf), jacrev(ref)(pf)
    assert torch.isfinite(j1).all() and (j1[:, fin] != 0).any()
    torch.testing.assert_close(j1, j2, rtol=1e-9, atol=1e-12)
    h1, h2 = jacrev(jacrev(fast))(pf), jacrev(jacrev(ref))(pf)
    assert torch.isfinite(h1).all()
    torch.testing.assert_close(h1, h2, rtol=1e-7, atol=1e-10)
    torch.testing.assert_close(jacfwd(jacrev(fast), randomness="same")(pf), h1, rtol=1e-8, atol=1e-12)


# Windows for the fused kernels' checks: both tails, deep ones (log space below Phi = 1e-280), one-sided,
# untruncated, straddling the mean, and narrow.
KERNEL_WINDOWS = WINDOWS + [(-math.inf, math.inf), (-math.inf, 0.3), (0.5, math.inf), (-50.0, -45.0), (45.0, 50.0),
                            (-0.1, 40.0), (-45.0, 0.0)]


def _mp_quantile(p, lo, hi, start):
    """The truncated standard normal's quantile at p by mpmath: windows above the mean mirrored (the quantile
    at 1 - p, exact in mpmath, of [-hi, -lo]) so that only lower-tail Phi values enter, then Newton's method
    on Phi(x) - target from ``start`` (mpmath's exponent range holds Phi(-50); 60 digits)."""
    import mpmath as mp

    with mp.workdps(60):
        p = mp.mpf(p)
        if lo + hi > 0:
            p, lo, hi, start, sign = 1 - p, -hi, -lo, -start, -1
        else:
            sign = 1
        Phi = lambda t: mp.erfc(-t / mp.sqrt(2)) / 2  # noqa: E731
        fa = Phi(mp.mpf(lo)) if math.isfinite(lo) else mp.mpf(0)
        fb = Phi(mp.mpf(hi)) if math.isfinite(hi) else mp.mpf(1)
        target = fa + p * (fb - fa)
        x = mp.mpf(start)
        if target == fa:
            return sign * float(lo)
        for _ in range(30):
            x = x - (Phi(x) - target) / mp.npdf(x)
        return sign * float(x)


@pytest.mark.parametrize("lo,hi", KERNEL_WINDOWS)
def test_icdf_kernel_against_mpmath(lo, hi):
    # The fused quantile kernel (csrc/core/truncnorm.h) at probabilities from 1e-300 to 1 - 2^-53: within 2 ulp
    # of max(|x|, 1) (the oriented window's 1 - p rounds p's last bits away near the mirrored window's far
    # bound, an absolute error of eps there; measured maximum 1 ulp).
    ps = [1e-300, 1e-100, 1e-16, 1e-8, 0.01, 0.3, 0.5, 0.8, 0.99, 1 - 1e-8, 1 - 2 ** -53]
    z = torch.ops.gradkern.truncated_normal_icdf(torch.tensor(ps, dtype=F64), _t(0.0), _t(1.0), _t(lo), _t(hi))
    assert torch.isfinite(z).all() and (z >= lo).all() and (z <= hi).all()
    for p, got in zip(ps, z.tolist()):
        want = _mp_quantile(p, lo, hi, got)
        assert abs(got - want) <= 4.5e-16 * max(abs(want), 1.0), (p, got, want)


def test_icdf_kernel_batched_path_against_mpmath():
    # Inputs of 64 elements and more take the CPU kernel's batched path (csrc/cpu/truncnorm.cpp: ATen's
    # vectorised erfc / erf / exp); the test above, with 11 elements, the one-at-a-time loop. The same grid
    # and tolerance here, every window and probability in one call, mixed so that consecutive elements
    # alternate between windows (direct and log-space ones).
    ps = [1e-300, 1e-100, 1e-16, 1e-8, 0.01, 0.3, 0.5, 0.8, 0.99, 1 - 1e-8, 1 - 2 ** -53]
    rows = [(p, lo, hi) for p in ps for lo, hi in KERNEL_WINDOWS]
    p_t, lo_t, hi_t = (torch.tensor(c, dtype=F64) for c in zip(*rows))
    assert len(rows) >= 64
    z = torch.ops.gradkern.truncated_normal_icdf(p_t, _t(0.0), _t(1.0), lo_t, hi_t)
    assert torch.isfinite(z).all() and (z >= lo_t).all() and (z <= hi_t).all()
    for (p, lo, hi), got in zip(rows, z.tolist()):
        want = _mp_quantile(p, lo, hi, got)
        assert abs(got - want) <= 4.5e-16 * max(abs(want), 1.0), (p, lo, hi, got, want)


def _one_at_a_time(op, *args):
    """The op on slices of 32 elements: iterations below the kernels' batching threshold (64 elements) take
    the one-element-at-a-time loops with libm's erfc / erf / exp (csrc/cpu/truncnorm.cpp)."""
    flat = [a.reshape(-1) for a in torch.broadcast_tensors(*args)]
    parts = [op(*(f[i:i + 32] for f in flat)) for i in range(0, flat[0].numel(), 32)]
    if isinstance(parts[0], torch.Tensor):
        return torch.cat(parts).view(torch.broadcast_shapes(*(a.shape for a in args)))
    return tuple(torch.cat(c).view(torch.broadcast_shapes(*(a.shape for a in args))) for c in zip(*parts))


def _icdf_inputs(dtype, W=32, N=600):
    g = torch.Generator().manual_seed(3)
    u_row = torch.rand(N, 1, generator=g, dtype=F64)
    u_row[:5, 0] = torch.tensor([0.0, 1.0, -0.5, math.nan, 1e-300], dtype=F64)
    loc = (torch.randn(N, W, generator=g, dtype=F64) * 5).to(dtype)
    run = slice(N // 2 + 20, N // 2 + 90)  # one parameter set for 70 rows (longer than a chunk), past the middle
    loc[run] = 0.25
    scale = torch.rand(N, W, generator=g, dtype=F64).add(0.2).to(dtype)
    scale[10, :4] = torch.tensor([-1.0, 0.0, math.nan, math.inf])
    scale[run] = 0.7
    low = torch.full((N, W), -1.0, dtype=dtype)
    high = torch.full((N, W), 2.0, dtype=dtype)
    low[20:30], high[20:30] = -50.0, -45.0  # log space
    low[30:40], high[30:40] = 45.0, 50.0    # mirrored into log space
    low[40:50], high[40:50] = 3.0, math.inf
    low[50, :3] = torch.tensor([2.0, math.nan, 3.0])  # low >= high, NaN
    return u_row, loc, scale, low, high


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_icdf_kernel_batched_matches_one_at_a_time(dtype):
    # The batched path (a contiguous iteration, and short rows gathered into chunks: a probability expanded
    # along the last dimension keeps the iteration 2-D with rows of 32) against the one-at-a-time loop on the
    # same inputs: mirrored, deep and invalid windows, probabilities outside [0, 1], and a run of equal
    # parameters longer than a chunk (4096), so that the window carried across chunks is exercised. The two
    # batched forms agree bit for bit; the one-at-a-time loop within 2 ulp of |loc| + |z - loc| + 1 (erfc /
    # erf / exp differ by implementation only; z = loc + scale x cancels where loc and scale x nearly
    # cancel, and near 1 ulp of the terms is the most either path can promise there).
    u_row, loc, scale, low, high = _icdf_inputs(dtype)
    N, W = loc.shape
    op = torch.ops.gradkern.truncated_normal_icdf
    batched = op(u_row.expand(N, W).contiguous(), loc, scale, low, high)
    gathered = op(u_row.expand(N, W), loc, scale, low, high)
    single = _one_at_a_time(op, u_row.expand(N, W), loc, scale, low, high)
    assert torch.equal(batched.isnan(), gathered.isnan()) and torch.equal(batched.nan_to_num(), gathered.nan_to_num())
    assert torch.equal(batched.isnan(), single.isnan())
    assert batched.isnan().sum() == 2 * W + 7  # two probabilities outside [0, 1]; 4 scales, 3 windows invalid
    ok = ~single.isnan()
    ulp = torch.finfo(dtype).eps * (loc[ok].abs() + (single[ok] - loc[ok]).abs() + 1.0)
    assert ((batched[ok] - single[ok]).abs() <= 2 * ulp).all()
    assert not torch.equal(batched[ok], single[ok]) or dtype == torch.float32  # the paths are distinct


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_narrow_kernels_match_double_rounded(dtype):
    # Narrower results than double take the lane-parallel loops on AVX2 hosts (csrc/cpu/truncnorm_block.h: own
    # erfc and exp in double on 4-lane vectors, the fitted quantile without its Halley step), the batched ATen
    # path elsewhere. Against the double kernel on the same (rounded) parameters, rounded once: the sample within
    # one ulp of |z| + |z - loc| in the result type (the fit's 2.4e-8 relative error in the standardized x moves
    # z = loc + scale x by up to 0.2 ulp of |z - loc|, which z can cross a rounding boundary with; half and
    # bfloat16 agree exactly here), every gradient the double one rounded (see below); the same NaNs (bfloat16 also rounds
    # the window (3, 3.001) to an empty one). Every window of the kernel tests, mirrored, deep (log space),
    # invalid ones and probabilities outside [0, 1] are in the inputs.
    g = torch.Generator().manual_seed(5)
    rows = [(0.3, 1.5, lo, hi) for lo, hi in KERNEL_WINDOWS for _ in range(12)]
    rows += [(0.0, -1.0, -1.0, 1.0), (0.0, 1.0, 2.0, 1.0), (math.nan, 1.0, -1.0, 1.0)]
    N, W = len(rows), 16
    prm = [torch.tensor(c, dtype=F64)[:, None].expand(N, W) for c in zip(*rows)]
    prm[0] = prm[0] + torch.randn(N, W, generator=g, dtype=F64) * 0.1  # a loc per element: the masses per lane
    narrow = [t.to(dtype) for t in prm]
    p = torch.rand(N, W, generator=g, dtype=F64)
    p[-5, :3] = torch.tensor([1.5, math.nan, 0.0], dtype=F64)
    op, bwd = torch.ops.gradkern.truncated_normal_icdf, torch.ops.gradkern.truncated_normal_backward
    z = op(p, *narrow)
    want = op(p, *(t.double() for t in narrow)).to(dtype)
    assert torch.equal(z.isnan(), want.isnan()) and z.isnan().sum() >= 3 * W + 2
    ok = ~want.isnan()
    w, loc = want[ok].double(), narrow[0][ok].double()
    ulp = torch.finfo(dtype).eps * (w.abs() + (w - loc).abs()).clamp_min(torch.finfo(dtype).tiny)
    assert ((z[ok].double() - w).abs() <= ulp).all()
    grad = torch.linspace(0.5, 2.0, W, dtype=dtype).expand(N, W)
    zc = z.nan_to_num()
    got = bwd(grad, zc, p, *narrow)
    ref = bwd(grad.double(), zc.double(), p, *(t.double() for t in narrow))
    # the gradients: within the result type's rounding of the double values plus the double kernels' own spread
    # (the exp implementations differ in the last bits; dz/dloc = 1 - dx/da - dx/db and dz/dscale cancel terms of
    # size 1 + 2 m in a narrow window, m its largest finite standardized bound, as in the test above)
    std_bounds = torch.stack([(prm[2] - prm[0]) / prm[1], (prm[3] - prm[0]) / prm[1]]).nan_to_num(0.0, 0.0, 0.0)
    cond = 1 + 2 * std_bounds.abs().amax(0)
    for a, b in zip(got, ref):
        assert torch.equal(a.isnan(), b.isnan())
        ok = ~b.isnan()
        fi = torch.finfo(dtype)
        tol = fi.eps * b[ok].abs().clamp_min(fi.tiny) + 16 * torch.finfo(F64).eps * b[ok].abs().clamp_min(1.0) * cond[ok]
        assert ((a[ok].double() - b[ok]).abs() <= tol).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_batched_kernels_thread_count_independent(dtype):
    # A 2-D iteration with rows of 100 (a probability expanded along the last dimension) splits rows at the
    # threads' range boundaries (193 rows: two threads split row 96 in halves of 50); every piece takes the
    # batched path (chosen from the whole iteration's size), so 1 and 2 threads give the same bits, for the
    # quantile and the backward kernel.
    u_row, loc, scale, low, high = _icdf_inputs(dtype, W=100, N=193)
    N, W = loc.shape
    u = u_row.expand(N, W)
    g = torch.linspace(0.5, 2.0, W, dtype=dtype)
    old = torch.get_num_threads()
    out = {}
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            z = torch.ops.gradkern.truncated_normal_icdf(u, loc, scale, low, high)
            out[n] = (z, *torch.ops.gradkern.truncated_normal_backward(g, z.nan_to_num(), u.clamp(0, 1), loc, scale,
                                                                        low, high))
    finally:
        torch.set_num_threads(old)
    for a, b in zip(out[1], out[2]):
        assert torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(), b.nan_to_num())


def test_icdf_kernel_dense_grid_untruncated():
    # The kernel's normal quantile (csrc/core/normal.h std_normal_icdf_lower: fitted start, one Halley step)
    # on a dense grid from 1e-280 to 1 - 1e-16, untruncated: within 4.5e-16 of max(|x|, 1) (2 ulp).
    import mpmath as mp

    ps = torch.cat([torch.logspace(-280, -1, 300, dtype=F64), torch.linspace(0.1, 0.9, 161, dtype=F64),
                    1 - torch.logspace(-16, -1, 60, dtype=F64)])
    inf = math.inf
    z = torch.ops.gradkern.truncated_normal_icdf(ps, _t(0.0), _t(1.0), _t(-inf), _t(inf))
    with mp.workdps(40):
        for p, got in zip(ps.tolist(), z.tolist()):
            lower = p <= 0.5
            lp = mp.log(mp.mpf(p)) if lower else mp.log1p(-mp.mpf(p))  # log of the smaller tail
            x = mp.mpf(got if lower else -got)
            for _ in range(8):  # Newton on log Phi from the kernel's value
                x = x - (mp.log(mp.ncdf(x)) - lp) * mp.ncdf(x) / mp.npdf(x)
            want = float(x if lower else -x)
            assert abs(got - want) <= 4.5e-16 * max(abs(want), 1.0), (p, got, want)


@pytest.mark.parametrize("lo,hi", KERNEL_WINDOWS)
def test_backward_kernel_against_mpmath(lo, hi):
    # The fused backward (rsample's first-order gradients) and the differentiable formulas (_partials, which
    # serve create_graph and torch.func) against eq. 8 evaluated by mpmath at the same samples. Measured
    # maxima of |error| / max(|truth|, 1): 1e-16 to 3e-16 near the mean, 1e-14 at (8, 9) and 3e-12 at 40-50
    # standard deviations (the exponents x^2 / 2 ~ 1e3 carry their rounding), both implementations alike.
    import mpmath as mp

    from gradkern.distributions._truncated import _AttachTruncatedNormal

    params = [torch.full((6,), v, dtype=F64) for v in (0.3, 1.5, lo, hi)]
    p = torch.rand(6, dtype=F64, generator=torch.Generator().manual_seed(0))
    z = torch.ops.gradkern.truncated_normal_icdf(p, *params)
    fused = torch.stack(torch.ops.gradkern.truncated_normal_backward(torch.ones_like(z), z, p, *params))
    comp = torch.stack(_AttachTruncatedNormal._partials(z, *params))
    rows = {"fused": [], "comp": []}
    with mp.workdps(700):
        Phi = lambda t: mp.erfc(-t / mp.sqrt(2)) / 2 if t != -mp.inf else mp.mpf(0)  # noqa: E731
        phi = lambda t: mp.npdf(t) if abs(t) != mp.inf else mp.mpf(0)  # noqa: E731
        m, s = mp.mpf(0.3), mp.mpf(1.5)
        al = (mp.mpf(lo) - m) / s if math.isfinite(lo) else -mp.inf
        be = (mp.mpf(hi) - m) / s if math.isfinite(hi) else mp.inf
        for zz, pp in zip(z.tolist(), p.tolist()):
            x = (mp.mpf(zz) - m) / s
            big_z = (Phi(be) if be != mp.inf else 1) - Phi(al)
            # the fused kernel differentiates the map at the draw's probability (F = p); the formulas of
            # _partials at the rounded sample's own F(z)
            for key, f in (("fused", mp.mpf(pp)), ("comp", (Phi(x) - Phi(al)) / big_z)):
                dlo, dhi = phi(al) * (1 - f) / phi(x), phi(be) * f / phi(x)
                dsc = x - (al * dlo if al != -mp.inf else 0) - (be * dhi if be != mp.inf else 0)
                rows[key].append([float(1 - dlo - dhi), float(dsc), float(dlo), float(dhi)])
    # The conditioning: exponents x^2 / 2 of the standardized bounds (m = their largest magnitude), and the
    # differences Phi(x) - Phi(a) of a window of standardized width w.
    bounds = [(v - 0.3) / 1.5 for v in (lo, hi) if math.isfinite(v)]
    m = max((abs(v) for v in bounds), default=0.0)
    w = (hi - lo) / 1.5
    tol = 1e-15 * max(1.0, 8 * m * m) + 1e-15 / w
    for key, got in (("fused", fused), ("comp", comp)):
        truth = torch.tensor(rows[key], dtype=F64).t()
        assert ((got - truth).abs() / truth.abs().clamp_min(1.0)).max().item() <= tol, key


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_backward_kernel_batched_matches_one_at_a_time(dtype):
    # Iterations of 64 elements and more take the backward kernel's batched path (ATen's exp_ on a chunk's
    # exponents), contiguous or with short rows gathered; slices of 32 elements the one-at-a-time loop. Every
    # kernel window, samples across each (the far side folds log F into the exponent), invalid parameters and
    # probabilities: the same NaNs, values within 2 ulp of max(|value|, 1) (1 + 2 m), m the window's largest
    # finite standardized bound (dz/dscale = x - a dx/da - b dx/db sums terms of size m: 32 ulp measured at
    # 40-50 standard deviations, where an exponential's last-bit difference is carried by terms ~27).
    g = torch.Generator().manual_seed(4)
    rows = []
    for lo, hi in KERNEL_WINDOWS:
        for _ in range(8):
            rows.append((0.3, 1.5, lo, hi))
    rows += [(0.0, -1.0, -1.0, 1.0), (0.0, 1.0, 2.0, 1.0), (math.nan, 1.0, -1.0, 1.0)]
    N, W = len(rows), 32
    loc, scale, low, high = (torch.tensor(c, dtype=dtype)[:, None].expand(N, W).contiguous() for c in zip(*rows))
    p = torch.rand(N, W, generator=g, dtype=F64)
    p[-4, :2] = torch.tensor([1.5, math.nan], dtype=F64)
    z = torch.ops.gradkern.truncated_normal_icdf(p.clamp(0, 1), loc, scale, low, high)
    g_row = torch.linspace(0.5, 2.0, N, dtype=dtype)[:, None]
    batched = torch.stack(torch.ops.gradkern.truncated_normal_backward(g_row.expand(N, W).contiguous(), z, p, loc,
                                                                        scale, low, high))
    gathered = torch.stack(torch.ops.gradkern.truncated_normal_backward(g_row.expand(N, W), z, p, loc, scale, low,
                                                                         high))
    assert torch.equal(batched.nan_to_num(), gathered.nan_to_num())  # short rows gathered: the batched path too
    single = torch.stack(_one_at_a_time(torch.ops.gradkern.truncated_normal_backward, g_row.expand(N, W), z, p, loc,
                                        scale, low, high))
    assert torch.equal(batched.isnan(), single.isnan())
    assert batched.isnan().sum() == 4 * (3 * W + 2)  # three invalid windows, two probabilities outside [0, 1]
    ok = ~single.isnan()
    std_bounds = torch.stack([(low - loc) / scale, (high - loc) / scale]).nan_to_num(0.0, 0.0, 0.0)
    cond = (1 + 2 * std_bounds.abs().amax(0)).expand_as(single)
    tol = 2 * torch.finfo(dtype).eps * single.abs().clamp_min(1.0) * cond
    assert ((batched[ok] - single[ok]).abs() <= tol[ok]).all()


def test_fused_backward_matches_differentiable_formulas():
    # rsample's backward takes the fused kernel for a first-order pass and the differentiable formulas under
    # create_graph: the two agree in float64 (broadcast parameters, an infinite bound, mirrored windows). A
    # float32 draw (the same uniforms, rounded once) has the float64 gradients to within the effect of that
    # rounding on the gradient (|x| dx ~ 2e-6 relative at 6 standard deviations).
    def grads(dtype, create_graph):
        loc = torch.tensor([0.3, -2.0, 5.0, 0.0], dtype=dtype, requires_grad=True)
        scale = torch.tensor(1.5, dtype=dtype, requires_grad=True)
        low = torch.tensor([-1.0, -math.inf, 6.0, 8.0], dtype=dtype, requires_grad=True)
        high = torch.tensor([2.0, 0.0, math.inf, 9.0], dtype=dtype, requires_grad=True)
        params = (loc, scale, low, high)
        z = TruncatedNormal(*params).rsample((3,), generator=torch.Generator().manual_seed(0))
        w = torch.linspace(0.5, 2.0, z.numel(), dtype=dtype).view_as(z)
        return [g.detach() for g in torch.autograd.grad((w * z).sum(), params, create_graph=create_graph)]

    want = grads(F64, True)
    for dtype, tol in ((F64, 1e-13), (torch.float32, 1e-5)):
        got = grads(dtype, False)
        for a, b in zip(got, want):
            assert a.shape == b.shape and a.dtype == dtype and torch.isfinite(a).all()
            torch.testing.assert_close(a.double(), b, rtol=tol, atol=tol)
        assert got[2][1] == 0 and got[3][2] == 0  # infinite bounds get no gradient


def test_fused_kernels_give_nan_for_invalid_parameters():
    ops = torch.ops.gradkern
    nan, inf = math.nan, math.inf
    loc = _t([0.0, 0.0, nan, inf, 0.0, 0.0])
    scale = _t([1.0, -1.0, 1.0, 1.0, inf, 1.0])
    low = _t([2.0, -1.0, -1.0, -1.0, -1.0, -1.0])
    high = _t([1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    z = ops.truncated_normal_icdf(_t(0.5), loc, scale, low, high)
    assert z[:5].isnan().all() and z[5].isfinite()
    assert ops.truncated_normal_icdf(_t([-0.1, 1.1, nan]), _t(0.0), _t(1.0), _t(-1.0), _t(1.0)).isnan().all()
    for g in ops.truncated_normal_backward(torch.ones(6, dtype=F64), torch.zeros(6, dtype=F64), _t(0.5), loc, scale,
                                           low, high):
        assert g[:5].isnan().all() and g[5].isfinite()
    # a probability outside [0, 1]
    for g in ops.truncated_normal_backward(_t(1.0), _t(0.0), _t(1.5), _t(0.0), _t(1.0), _t(-1.0), _t(1.0)):
        assert g.isnan()


def test_rsample_under_torch_compile():
    # fullgraph: the compiled graph takes the Newton-step form (an autograd.Function with a custom jvp does not
    # trace); value and gradient equal eager's closed form.
    a = torch.tensor([0.2, 0.5], dtype=F64, requires_grad=True)

    def f(a):
        return TruncatedNormal(a, 1.0, -1.0, 2.0).rsample((3,)).sum()

    torch.manual_seed(2)
    eager_v = f(a)
    (eager_g,) = torch.autograd.grad(eager_v, a)
    torch.manual_seed(2)  # the eager backend of aot_eager draws the same numbers
    comp_v = torch.compile(f, fullgraph=True, backend="aot_eager")(a)
    (comp_g,) = torch.autograd.grad(comp_v, a)
    torch.testing.assert_close(comp_v, eager_v, rtol=0, atol=0)
    torch.testing.assert_close(comp_g, eager_g, rtol=1e-12, atol=1e-14)
