"""mpmath ground truth for the von Mises(0, kappa) CDF, its kappa-derivative and the implicit
reparameterization gradient dx/dkappa = -(dF/dkappa) / q(x) (Figurnov et al. 2018, sec. 4, app. C).

Pure Python; mpmath is imported lazily. Scalar functions take Python/NumPy scalars and return mpmath
numbers; the ``*_np`` helpers take NumPy arrays (broadcast together) and return float64 arrays.

Conventions: F(-pi) = 0, F(pi) = 1 on [-pi, pi]; outside, F(x + 2 pi n) = F(x) + n.

Methods (``_all(..., method=None)`` picks by kappa; the two agree to all printed digits where both
run, checked at kappa in {1e-6, 1e-2, 1, 10, 50} and x in {-3.1, -1, -1e-3, 0.5, 3.1, 7}):

* kappa <= 50, 'series': eq. (14) and its exact derivative dr_j/dkappa = r_{j+1} + (j/kappa) r_j
  - r_1 r_j (eq. 16), r_j = I_j/I_0 by Miller's backward recursion with ~kappa + 36 sqrt(kappa) + 60
  terms, at 40 + 0.87 kappa + 10 digits so that the cancellation of the series in the tails
  (F ~ e^(-2 kappa) near -pi) is absorbed.
* kappa > 50, 'quad' (no cancelling formula is relied upon; positive-integrand quadrature):
with v = |x| reduced to [0, pi], alpha = 2 kappa sin^2(v/2) = kappa (1 - cos v) and
W = 2 kappa - alpha = 2 kappa cos^2(v/2), the substitution w = kappa (cos v - cos t) turns the smaller
tail into
    F(-v) = q(v) A,     A  = int_0^W e^-w (alpha + w)^-1/2 (W - w)^-1/2 dw,
    dF(-v)/dkappa = q(v) B,   B = (cos v - r1) A - A1 / kappa,  A1 = same integral with an extra w,
using d log q / d kappa = cos t - r1 with r1 = I1/I0 and cos t = cos v - w/kappa. mpmath.quad (tanh-sinh) handles the integrable endpoint singularity
at w = W; sub-intervals are split geometrically from alpha up to W so every piece is smooth.
For kappa = 1e6 this is as reliable as for kappa = 1 (no series with 1e6 terms is needed). Central
points (F(-v) > 1/4) integrate H = F(v) - 1/2 and dH/dkappa directly over [0, v] instead.

``gauss_legendre_table`` (from ._mp, shared with tools/gen_gauss_legendre.py) returns the fixed-node
rules used by csrc/core/vonmises_cdf.h.
"""
from __future__ import annotations

from ._mp import gauss_legendre_table, mpm as _mpm  # noqa: F401  (re-exported)


def _splits(mp, alpha, W):
    pts = [mp.mpf(0)]
    # geometric splits resolving (alpha + w)^-1/2 near w = 0 and e^-w up to w ~ 200
    a = alpha if alpha > 0 else mp.mpf(10) ** -30
    s = min(a, mp.mpf(1))
    while s < min(W / 2, 200):
        if s > pts[-1]:
            pts.append(s)
        s *= 4
    if W / 2 > pts[-1]:
        pts.append(W / 2)
    # toward the singular endpoint W
    if W > pts[-1]:
        pts.append(W)
    return pts


def _tail_AB(v, kappa, dps):
    """Return (logq, A, B, r1) at v in [0, pi] (high precision)."""
    mp = _mpm()
    v = mp.mpf(v)
    k = mp.mpf(kappa)
    sh = mp.sin(v / 2)
    ch = mp.cos(v / 2)
    alpha = 2 * k * sh * sh
    W = 2 * k * ch * ch
    i0 = mp.besseli(0, k)
    i1 = mp.besseli(1, k)
    r1 = i1 / i0
    logq = -alpha - mp.log(2 * mp.pi) - (mp.log(i0) - k)
    if W == 0:
        return logq, mp.mpf(0), mp.mpf(0), r1
    pts = _splits(mp, alpha, W)
    f0 = lambda w: mp.exp(-w) / mp.sqrt((alpha + w) * (W - w))
    f1 = lambda w: w * mp.exp(-w) / mp.sqrt((alpha + w) * (W - w))
    A = mp.quad(f0, pts)
    A1 = mp.quad(f1, pts)
    B = (mp.cos(v) - r1) * A - A1 / k
    return logq, A, B, r1


def _central(v, kappa, r1, weights):
    """int_0^v q(t) w(t) dt for each w in weights (functions of cos t), by mpmath.quad on steps of
    1/sqrt(kappa): the central points' integrals, where 1/2 - F(-v) would cancel (x = 1e-30 at kappa = 1e6)."""
    mp = _mpm()
    k = mp.mpf(kappa)
    c0 = mp.log(mp.besseli(0, k)) - k + mp.log(2 * mp.pi)
    qf = lambda t: mp.exp(-2 * k * mp.sin(t / 2) ** 2 - c0)  # noqa: E731
    step = 1 / mp.sqrt(k)
    pts = [mp.mpf(0)]
    while pts[-1] + step < v:
        pts.append(pts[-1] + step)
    pts.append(v)
    return [mp.quad(lambda t: qf(t) * w(mp.cos(t)), pts) for w in weights]


def _reduce(x):
    mp = _mpm()
    x = mp.mpf(x)
    n = mp.floor((x + mp.pi) / (2 * mp.pi))
    xr = x - 2 * mp.pi * n
    return xr, n


def _series(xr, kappa, dps):
    """(F(xr), dF/dkappa, dx/dkappa) for xr in [-pi, pi] from eq. (14) and its exact derivative
    dr_j/dkappa = r_{j+1} + (j/kappa) r_j - r_1 r_j (eq. 16). Bessel ratios r_j = I_j/I_0 by Miller's
    backward recursion (normalised with I_0 + 2 sum I_j = e^kappa). Working precision is raised by
    0.87 kappa digits so the cancellation in the tails (F ~ e^(-2 kappa) near -pi) is absorbed."""
    mp = _mpm()
    k = mp.mpf(kappa)
    J = int(kappa + 12 * mp.sqrt(kappa + 1) * 3 + 60)
    # Miller: ratios rho_j = I_j / I_{j-1}
    rho = [mp.mpf(0)] * (J + 2)
    for j in range(J, 0, -1):
        rho[j] = 1 / (2 * j / k + rho[j + 1])
    r = [mp.mpf(1)] * (J + 2)
    for j in range(1, J + 1):
        r[j] = r[j - 1] * rho[j]
    r[J + 1] = r[J] * rho[J] * 0  # negligible
    S = xr / (2 * mp.pi)
    dS = mp.mpf(0)
    for j in range(1, J + 1):
        sj = mp.sin(j * xr) / j
        S += r[j] * sj / mp.pi
        dS += (r[j + 1] + j * r[j] / k - r[1] * r[j]) * sj / mp.pi
    F = S + mp.mpf(1) / 2
    logq = k * (mp.cos(xr) - 1) - mp.log(2 * mp.pi) - (mp.log(mp.besseli(0, k)) - k)
    return F, dS, -dS / mp.exp(logq)


def _all(x, kappa, dps=40, method=None):
    """(F, dF/dkappa, dx/dkappa) as mpmath numbers. method: None (auto), 'series' or 'quad'."""
    mp = _mpm()
    if method is None:
        method = "series" if kappa <= 50 else "quad"
    if method == "series":
        with mp.workdps(dps + int(0.87 * kappa) + 10):
            xr, n = _reduce(x)
            if xr == 0:
                return n + mp.mpf(1) / 2, mp.mpf(0), mp.mpf(0)
            F, dF, g = _series(xr, kappa, dps)
            return F + n, dF, g
    with mp.workdps(dps):
        xr, n = _reduce(x)
        v = abs(xr)
        logq, A, B, r1 = _tail_AB(v, kappa, dps)
        q = mp.exp(logq)
        lo = q * A            # F(-v)
        dlo = q * B           # dF(-v)/dkappa
        if xr == 0:  # exact: F = n + 1/2, dF/dkappa = 0 (symmetry), avoid quadrature noise
            return n + mp.mpf(1) / 2, mp.mpf(0), mp.mpf(0)
        if lo > mp.mpf(1) / 4:
            # central point: integrate H = int_0^v q dt and dH/dkappa = int_0^v q (cos t - r1) dt directly
            H, dH = _central(v, kappa, r1, (lambda c: 1, lambda c: c - r1))
            sgn = -1 if xr < 0 else 1
            return n + mp.mpf(1) / 2 + sgn * H, sgn * dH, -sgn * dH / q
        if xr < 0:
            F, dF, g = lo, dlo, -B
        else:
            F, dF, g = 1 - lo, -dlo, B
        return F + n, dF, g


# --- second order in kappa (issue 15) -------------------------------------------------------------
# d2F/dkappa2 at fixed x and d/dkappa of the implicit gradient g = -(dF/dkappa) / q at fixed x:
#   dg/dkappa = -(d2F/dkappa2) / q - g (cos x - r1)         (d log q / d kappa = cos x - r1),
#   d2F/dkappa2 = int_{-pi}^x [(cos t - r1)^2 - r1'] q(t) dt,  r1' = dr1/dkappa = 1 - r1/kappa - r1^2.
# Series (kappa <= 50): eq. (14) with r_j'' from differentiating eq. (16) once more,
#   r_j'' = r_{j+1}' + (j/kappa) r_j' - (j/kappa^2) r_j - r_1' r_j - r_1 r_j',
# at the first order's raised precision plus 10 digits (the O(1) terms of eq. 16 cancel to O(1/kappa^2)).
# Quadrature (kappa > 50): with A2 = int e^-w w^2 ... (the tail integral A with a factor w^2), the
# kappa-derivatives of the tail integrals at fixed v are dA/dkappa = -A1/kappa and dA1/dkappa = (A1 - A2)/kappa
# (w = kappa (cos v - cos t) in the t form of A), so
#   dB/dkappa = -r1' A - (cos v - r1) A1 / kappa + A2 / kappa^2,
#   d2F(-v)/dkappa2 = q(v) ((cos v - r1) B + dB/dkappa);
# central points integrate H_kk = int_0^v q [(cos t - r1)^2 - r1'] dt directly.
def _series2(xr, kappa):
    """(d2F/dkappa2, g, r1) at xr in [-pi, pi] by eq. (14) differentiated twice (working precision set by the
    caller)."""
    mp = _mpm()
    k = mp.mpf(kappa)
    J = int(kappa + 12 * mp.sqrt(kappa + 1) * 3 + 60)
    rho = [mp.mpf(0)] * (J + 3)
    for j in range(J + 1, 0, -1):
        rho[j] = 1 / (2 * j / k + rho[j + 1])
    r = [mp.mpf(1)] * (J + 3)
    for j in range(1, J + 2):
        r[j] = r[j - 1] * rho[j]
    r[J + 2] = mp.mpf(0)
    d1 = [mp.mpf(0)] * (J + 2)
    for j in range(1, J + 2):
        d1[j] = r[j + 1] + j * r[j] / k - r[1] * r[j]
    dS = mp.mpf(0)
    d2S = mp.mpf(0)
    for j in range(1, J + 1):
        d2 = d1[j + 1] + j * d1[j] / k - j * r[j] / k ** 2 - d1[1] * r[j] - r[1] * d1[j]
        sj = mp.sin(j * xr) / j
        dS += d1[j] * sj
        d2S += d2 * sj
    logq = k * (mp.cos(xr) - 1) - mp.log(2 * mp.pi) - (mp.log(mp.besseli(0, k)) - k)
    q = mp.exp(logq)
    return d2S / mp.pi, -dS / mp.pi / q, r[1], q


def _all2(x, kappa, dps=40, method=None):
    """(d2F/dkappa2, dg/dkappa, scale) as mpmath numbers, g = dx/dkappa = -(dF/dkappa) / q at fixed x.
    scale = |d2F/dkappa2| / q + |g (cos x - r1)|: the sizes of the two terms of dg/dkappa (where they cancel,
    dg/dkappa is small against them and its error is bounded relative to the scale)."""
    mp = _mpm()
    if method is None:
        method = "series" if kappa <= 50 else "quad"
    if method == "series":
        with mp.workdps(dps + int(0.87 * kappa) + 20):
            xr, n = _reduce(x)
            if xr == 0:
                return mp.mpf(0), mp.mpf(0), mp.mpf(0)
            Fkk, g, r1, q = _series2(xr, kappa)
            m1 = mp.cos(xr) - r1
            return Fkk, -Fkk / q - g * m1, abs(Fkk) / q + abs(g * m1)
    with mp.workdps(dps):
        xr, n = _reduce(x)
        if xr == 0:
            return mp.mpf(0), mp.mpf(0), mp.mpf(0)
        v = abs(xr)
        k = mp.mpf(kappa)
        logq, A, B, r1 = _tail_AB(v, kappa, dps)
        q = mp.exp(logq)
        dr1 = 1 - r1 / k - r1 * r1
        m1 = mp.cos(v) - r1
        sgn = -1 if xr < 0 else 1
        if q * A > mp.mpf(1) / 4:  # central: integrate H_k and H_kk over [0, v] (see _all)
            dH, Hkk = _central(v, kappa, r1, (lambda c: c - r1, lambda c: (c - r1) ** 2 - dr1))
            Fkk, g = sgn * Hkk, -sgn * dH / q
        else:
            W = 2 * k * mp.cos(v / 2) ** 2
            alpha = 2 * k * mp.sin(v / 2) ** 2
            pts = _splits(mp, alpha, W)
            f1 = lambda w: w * mp.exp(-w) / mp.sqrt((alpha + w) * (W - w))
            f2 = lambda w: w * w * mp.exp(-w) / mp.sqrt((alpha + w) * (W - w))
            A1 = mp.quad(f1, pts)
            A2 = mp.quad(f2, pts)
            dB = -dr1 * A - m1 * A1 / k + A2 / k ** 2
            Pkk = q * (m1 * B + dB)                # d2F(-v)/dkappa2
            Fkk, g = -sgn * Pkk, sgn * B           # F(v) = 1 - F(-v); g as in _all
        return Fkk, -Fkk / q - g * m1, abs(Fkk) / q + abs(g * m1)


def cdf_dkappa2(x, kappa, dps=40):
    """d2F/dkappa2 of vonMises(0, kappa) at fixed x."""
    return _all2(x, kappa, dps)[0]


def grad_dkappa(kappa, x, dps=40):
    """d/dkappa of the implicit gradient dx/dkappa at fixed x."""
    return _all2(x, kappa, dps)[1]


def cdf(x, kappa, dps=40):
    return _all(x, kappa, dps)[0]


def cdf_dkappa(x, kappa, dps=40):
    return _all(x, kappa, dps)[1]


def grad(kappa, x, dps=40):
    return _all(x, kappa, dps)[2]


def log_pdf(x, kappa, dps=40):
    mp = _mpm()
    with mp.workdps(dps):
        k = mp.mpf(kappa)
        return k * (mp.cos(mp.mpf(x)) - 1) - mp.log(2 * mp.pi) - (mp.log(mp.besseli(0, k)) - k)


def ppf(u, kappa, dps=25):
    """Quantile on [-pi, pi): Newton on the smaller tail (log scale), bracketed."""
    mp = _mpm()
    with mp.workdps(dps):
        u = mp.mpf(u)
        k = mp.mpf(kappa)
        if u > mp.mpf(1) / 2:
            return -ppf(1 - u, kappa, dps)
        lo, hi = -mp.pi, mp.mpf(0)
        # normal-ish start
        s = mp.sqrt(2) * mp.erfinv(2 * u - 1)
        x = -2 * mp.asin(min(mp.mpf(1), abs(s) / (2 * mp.sqrt(k)))) if k > 1 else (2 * u - 1) * mp.pi
        x = min(max(x, lo + mp.mpf(10) ** -20), hi)
        for _ in range(200):
            F = cdf(x, kappa, dps)
            if F > u:
                hi = x
            else:
                lo = x
            q = mp.exp(log_pdf(x, kappa, dps))
            if q == 0:
                xn = (lo + hi) / 2
            else:
                # Newton on log F (well conditioned in the tail)
                xn = x - (mp.log(F) - mp.log(u)) * F / q
            if not (lo < xn < hi):
                xn = (lo + hi) / 2
            if abs(xn - x) < mp.mpf(10) ** (-dps + 5) * (1 + abs(x)):
                return xn
            x = xn
        return x


def _np_apply(fn, *args):
    import numpy as np

    b = np.broadcast_arrays(*[np.asarray(a, dtype=np.float64) for a in args])
    out = np.empty(b[0].shape, dtype=np.float64)
    for idx in np.ndindex(out.shape):
        out[idx] = float(fn(*[float(a[idx]) for a in b]))
    return out


def cdf_np(x, kappa):
    return _np_apply(cdf, x, kappa)


def cdf_dkappa_np(x, kappa):
    return _np_apply(cdf_dkappa, x, kappa)


def grad_np(kappa, x):
    return _np_apply(grad, kappa, x)


def ppf_np(u, kappa):
    return _np_apply(ppf, u, kappa)


# ----------------------------------------------------------------------------------------------
# Test-data generator for tests/native/test_vonmises.cpp:
#   python -m gradkern.reference.vonmises tests/data/vonmises_ref.csv
# Every x and kappa is rounded to float32 first, so float and double evaluations see the same exact
# inputs and the reference is exact for them. Column `set`: paper (kappa in {1e-2,1e-1,1,10}, 1000
# von Mises samples each, numpy seed 20180523), ext (extended domain: the smaller tail probability of
# the reduced x is >= 1e-10, accuracy goals apply), far (beyond the 1e-10 quantiles: finite-only).
def _approx_ppf(u, kappa):
    import math

    import numpy as np
    from scipy import optimize, special, stats

    if kappa > 50:
        s = math.sqrt(2) * special.erfinv(2 * u - 1)
        return 2 * math.asin(max(-1.0, min(1.0, s / (2 * math.sqrt(kappa)))))
    if u > 0.5:
        return -_approx_ppf(1 - u, kappa)
    f = lambda x: math.log(max(stats.vonmises.cdf(x, kappa), 1e-300)) - math.log(u)
    return optimize.brentq(f, -np.pi, 0.0, xtol=1e-15)


def generate_csv(path):
    import math

    import numpy as np
    from scipy import stats

    mp = _mpm()
    f32 = lambda v: float(np.float32(v))
    rows = []
    rng = np.random.default_rng(20180523)
    for k in (1e-2, 1e-1, 1.0, 10.0):
        k32 = f32(k)
        xs = stats.vonmises.rvs(k32, size=1000, random_state=rng)
        for x in xs:
            rows.append((f32(x), k32, "paper"))
    kappas = [1e-6, 1e-5, 1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 2.5, 3.0,
              4.0, 5.0, 5.9, 6.1, 7.0, 7.9, 8.1, 9.9, 10.1, 12.0, 15.0, 15.9, 16.1, 19.9, 20.1, 24.9, 25.1, 29.9,
              30.1, 39.9, 40.1, 49.9, 50.1, 70.0, 100.0, 300.0, 1e3, 3e3, 1e4, 1e5, 1e6]
    qs = [1e-10, 1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 5e-3, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2,
          0.25, 0.3, 0.35, 0.4, 0.45, 0.48, 0.49, 0.499, 0.4999]
    qs = qs + [1 - u for u in qs]
    for k in kappas:
        k32 = f32(k)
        for u in qs:
            rows.append((f32(_approx_ppf(u, k32)), k32, "ext"))
        # x near 0 and near +-pi, and wrapped x
        for x in (1e-30, 1e-12, 1e-7, 1e-4, -1e-30, -1e-9, -3e-5, 0.0):
            rows.append((f32(x), k32, "ext"))
        pf = f32(math.pi)
        for x in (pf, -pf, float(np.nextafter(np.float32(pf), np.float32(0))),
                  -float(np.nextafter(np.float32(pf), np.float32(0))), f32(math.pi - 1e-3),
                  -f32(math.pi - 1e-3), f32(math.pi - 0.1), -f32(math.pi - 0.3)):
            rows.append((x, k32, "ext"))
        x0 = _approx_ppf(0.3, k32)
        for nwrap in (-3, -1, 1, 2, 10):
            rows.append((f32(x0 + 2 * math.pi * nwrap), k32, "ext"))
        rows.append((f32(2 * math.pi * 5 + 1e-3), k32, "ext"))
    with open(path, "w") as fh:
        fh.write("x,kappa,F,dFdk,dxdk,set\n")
        for x, k, tag in rows:
            F, dF, g = _all(x, k)
            if tag != "paper":
                with mp.workdps(40):
                    xr, n = _reduce(x)
                    lo = min(F - n, 1 - (F - n))
                tag = "ext" if lo >= mp.mpf("1e-10") else "far"
            fh.write("%r,%r,%s,%s,%s,%s\n" % (x, k, mp.nstr(F, 22), mp.nstr(dF, 22), mp.nstr(g, 22), tag))


if __name__ == "__main__":
    import sys

    generate_csv(sys.argv[1])
