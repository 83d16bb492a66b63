"""mpmath ground truth for the regularized incomplete beta function and the implicit reparameterization
gradient of Beta(a, b) samples (Figurnov et al. 2018, eq. 8 with the Beta CDF as the standardization
function).

Pure Python; mpmath is imported lazily. Scalar functions take Python/NumPy scalars (converted exactly)
and return mpmath numbers computed at ``dps`` significant digits (default 30); the ``*_np`` helpers take
NumPy arrays (broadcast together) and return float64 arrays.

Methods:

* ``betainc`` / ``betaincc``: ``mpmath.betainc`` (x^a 2F1(a, 1-b; a+1; x) / (a B(a, b)); mpmath's
  hypergeometric code raises its own precision where the series cancels). The upper tail 1 - I is
  computed directly, never as one minus the other at the caller's precision: for x >= 1/2 by the
  reflection I_{1-x}(b, a) (1 - x is exact there); for x < 1/2 by ``mpmath.betainc(a, b, x, 1)``, which
  mpmath forms as a difference of two values of order 1 and so loses log10(1 / (1 - I)) digits: the
  working precision is raised by that many digits (plus 5; checked by re-evaluating) first.
* ``standard_beta_grad`` = (dx/da, dx/db) = -(dI_x(a, b)/da, dI_x(a, b)/db) / q(x) at fixed I:
  the parameter derivative is taken by ``mpmath.diff`` (central difference at about twice the working
  precision with a step of 2^-(prec+10), so neither truncation nor rounding shows at ``dps`` digits) of
  the *smaller* tail: of I = betainc(a, b, 0, x) when I < 1/2, else of -(1 - I) with 1 - I computed
  as above (at the raised precision). The density q(x) is formed in log space,
  (a-1) log x + (b-1) log1p(-x) - log B(a, b), so nothing over- or underflows however small x or 1 - x.
  dI/da < 0 < dI/db everywhere (Beta(a, b) is stochastically increasing in a and decreasing in b), so
  the quotient never divides a cancelled zero.
* ``betaincinv``: Newton steps on the smaller tail, in log x for the lower tail and in log(1 - x) for the
  upper one, inside a bracket that is bisected (geometrically across orders of magnitude) whenever a step
  leaves it.

Independent checks (``_self_check``): a = b = 1 (I = x: dx/da = -x log x, dx/db = (1 - x) log(1 - x));
b = 1 (I = x^a: dx/da = -x log x / a); a = 1 (I = 1 - (1-x)^b: dx/db = (1 - x) log(1 - x) / b); and
tanh-sinh quadrature of the integral definition
    dI/da = int_0^x t^(a-1) (1-t)^(b-1) (log t - psi(a) + psi(a+b)) dt / B(a, b)
(and its mirror for b) at moderate (a, b, x); and, on far tails (upper tails of 1e-52 at x < 1/2 and
1e-120 at x > 1/2, a lower tail of 1e-600), mpmath.diff of another representation,
I_x(a, b) = x^a (1-x)^b / (a B(a, b)) 2F1(a + b, 1; a + 1; x) (DLMF 8.17.8).
"""
from __future__ import annotations

from ._mp import mpm as _mpm


def _to_mpf(v):
    """An argument as an mpf, exactly: mpf and int as they are, anything else (float, NumPy scalar) through
    float (NumPy's float32 converts exactly)."""
    mp = _mpm()
    if isinstance(v, (mp.mpf, int)):
        return mp.mpf(v)
    return mp.mpf(float(v))


def log_density(a, b, x):
    """log q(x) of the Beta(a, b) density, at the caller's working precision (mpf arguments)."""
    mp = _mpm()
    return ((a - 1) * mp.log(x) + (b - 1) * mp.log1p(-x)
            - (mp.loggamma(a) + mp.loggamma(b) - mp.loggamma(a + b)))


def _lower(a, b, x):
    return _mpm().betainc(a, b, 0, x, regularized=True)


def _upper(a, b, x):
    """1 - I_x(a, b) at the working precision: for x >= 1/2 by the reflection I_{1-x}(b, a) (1 - x is exact
    there, and the series has nothing to cancel); below, ``mpmath.betainc(a, b, x, 1)``, which mpmath forms
    as B(a, b) - B(x; a, b) and so loses log10(1 / (1 - I)) digits (see _upper_extra_digits)."""
    mp = _mpm()
    if x >= 0.5:
        return mp.betainc(b, a, 0, 1 - x, regularized=True)
    return mp.betainc(a, b, x, 1, regularized=True)


def _upper_extra_digits(a, b, x, dps):
    """Digits to add to ``dps`` so that _upper(a, b, x) (and mpmath.diff of it) keeps ``dps`` digits: 0 for
    x >= 1/2, else the digits the difference cancels (plus 5), raised until two evaluations agree that it
    is enough (an evaluation that cancelled completely doubles the guess)."""
    mp = _mpm()
    if x >= 0.5:
        return 0
    extra = 0
    for _ in range(20):
        with mp.workdps(dps + extra):
            tail = _upper(a, b, x)
        need = (max(0, int(mp.ceil(-mp.log10(tail)))) + 5) if tail > 0 else 2 * extra + 40
        if need <= extra:
            return extra
        extra = need
    raise ValueError(f"1 - I_x(a, b) still cancelled with {dps + extra} digits (a={a}, b={b}, x={x})")


def _upper_accurate(a, b, x, dps):
    """1 - I_x(a, b) good to ``dps`` digits."""
    mp = _mpm()
    with mp.workdps(dps + _upper_extra_digits(a, b, x, dps)):
        return _upper(a, b, x)


def _tails(a, b, x, dps):
    """(I, 1 - I, extra digits the upper tail needs), each value good to ``dps`` digits; mpf arguments.
    ``extra`` is 0 when I < 1/2 (the lower tail is the one differentiated)."""
    I = _lower(a, b, x)
    if I < 0.5:
        return I, _upper(a, b, x), 0  # 1 - I >= 1/2: nothing to cancel
    extra = _upper_extra_digits(a, b, x, dps)
    mp = _mpm()
    with mp.workdps(dps + extra):
        Ic = _upper(a, b, x)
    return I, Ic, extra


def _value(a, b, x, dps, upper):
    mp = _mpm()
    with mp.workdps(dps):
        a, b, x = _to_mpf(a), _to_mpf(b), _to_mpf(x)
        if x <= 0 or x >= 1:
            return mp.mpf(1 if (x >= 1) != upper else 0)
        return +_tails(a, b, x, dps)[1 if upper else 0]


def betainc(a, b, x, dps=30):
    """I_x(a, b), regularized lower incomplete beta function."""
    return _value(a, b, x, dps, upper=False)


def betaincc(a, b, x, dps=30):
    """1 - I_x(a, b), computed directly."""
    return _value(a, b, x, dps, upper=True)


def betainc_grads(a, b, x, dps=30):
    """(dI_x(a, b)/da, dI_x(a, b)/db), by mpmath.diff of the smaller tail."""
    mp = _mpm()
    with mp.workdps(dps):
        a, b, x = _to_mpf(a), _to_mpf(b), _to_mpf(x)
        if x <= 0 or x >= 1:
            return mp.mpf(0), mp.mpf(0)
        I, Ic, extra = _tails(a, b, x, dps)
        with mp.workdps(dps + extra):
            if I < 0.5:
                da = mp.diff(lambda s: _lower(s, b, x), a)
                db = mp.diff(lambda s: _lower(a, s, x), b)
            else:
                da = -mp.diff(lambda s: _upper(s, b, x), a)
                db = -mp.diff(lambda s: _upper(a, s, x), b)
        return +da, +db


def standard_beta_grad(a, b, x, dps=30):
    """(dx/da, dx/db) of x ~ Beta(a, b) at fixed I_x(a, b): -(dI/da, dI/db) / q(x). 0 at x = 0 or 1."""
    mp = _mpm()
    with mp.workdps(dps):
        a, b, x = _to_mpf(a), _to_mpf(b), _to_mpf(x)
        if x <= 0 or x >= 1:
            return mp.mpf(0), mp.mpf(0)
        da, db = betainc_grads(a, b, x, dps)
        with mp.workdps(dps + 10):
            inv_q = mp.exp(-log_density(a, b, x))
            return +(-da * inv_q), +(-db * inv_q)


def betainc_grads2(a, b, x, dps=30):
    """(d2I/da2, d2I/(da db), d2I/db2), by mpmath.diff (orders (2, 0), (1, 1), (0, 2)) of the smaller tail,
    as betainc_grads; 0 at x = 0 or 1."""
    mp = _mpm()
    with mp.workdps(dps):
        a, b, x = _to_mpf(a), _to_mpf(b), _to_mpf(x)
        if x <= 0 or x >= 1:
            return mp.mpf(0), mp.mpf(0), mp.mpf(0)
        I, Ic, extra = _tails(a, b, x, dps)
        with mp.workdps(dps + extra):
            f, sign = (_lower, 1) if I < 0.5 else (_upper, -1)
            out = [sign * mp.diff(lambda s, t: f(s, t, x), (a, b), n) for n in ((2, 0), (1, 1), (0, 2))]
        return tuple(+v for v in out)


def standard_beta_grad_d2(a, b, x, dps=30):
    """(d g_a/da, d g_a/db, d g_b/da, d g_b/db) at fixed x for (g_a, g_b) = standard_beta_grad(a, b, x):
    from g = -(dI/dtheta) / q, d g_i / dtheta_k = -(d2I / dtheta_i dtheta_k) / q - g_i dlog q / dtheta_k with
    dlog q/da = log x - psi(a) + psi(a + b), dlog q/db = log(1 - x) - psi(b) + psi(a + b), at 10 more digits
    than asked (the two terms may cancel); 0 at x = 0 or 1."""
    mp = _mpm()
    with mp.workdps(dps):
        a, b, x = _to_mpf(a), _to_mpf(b), _to_mpf(x)
        if x <= 0 or x >= 1:
            return (mp.mpf(0),) * 4
    d = dps + 10
    ia, ib = betainc_grads(a, b, x, d)
    iaa, iab, ibb = betainc_grads2(a, b, x, d)
    with mp.workdps(d):
        inv_q = mp.exp(-log_density(a, b, x))
        ga, gb = -ia * inv_q, -ib * inv_q
        la = mp.log(x) - mp.digamma(a) + mp.digamma(a + b)
        lb = mp.log1p(-x) - mp.digamma(b) + mp.digamma(a + b)
        out = (-iaa * inv_q - ga * la, -iab * inv_q - ga * lb, -iab * inv_q - gb * la, -ibb * inv_q - gb * lb)
    with mp.workdps(dps):
        return tuple(+v for v in out)


def dirichlet_grad(x, alpha, total, dps=30):
    """torch._dirichlet_grad's contract: (dx/dalpha) / (1 - x) for x ~ Beta(alpha, total - alpha).

    At x = 1 its limit, (psi(alpha + beta) - psi(alpha)) / beta (1 - I ~ (1-x)^beta / (beta B(alpha, beta))
    there, so dx/dalpha ~ (1 - x) (psi(alpha + beta) - psi(alpha)) / beta); 0 at x = 0."""
    mp = _mpm()
    with mp.workdps(dps + 10):
        al, b = _to_mpf(alpha), _to_mpf(total) - _to_mpf(alpha)  # exact: 40 digits hold the difference
        X = _to_mpf(x)
        if X >= 1:
            lim = (mp.digamma(al + b) - mp.digamma(al)) / b
            with mp.workdps(dps):
                return +lim
    ga, _ = standard_beta_grad(al, b, X, dps)
    with mp.workdps(dps):
        return ga / (1 - X)


def betaincinv(a, b, p, dps=30):
    """x with I_x(a, b) = p (mpf, not rounded to any float format): safeguarded Newton on the smaller tail."""
    mp = _mpm()
    with mp.workdps(dps + 10):
        a, b, p = _to_mpf(a), _to_mpf(b), _to_mpf(p)
        if p <= 0:
            return mp.mpf(0)
        if p >= 1:
            return mp.mpf(1)
        upper = p > 0.5
        target = 1 - p if upper else p
        lbeta = mp.loggamma(a) + mp.loggamma(b) - mp.loggamma(a + b)
        mean = a / (a + b)
        tol = mp.mpf(10) ** (-(dps + 5))
        # Work in u = log x (lower tail) or u = log(1 - x) (upper tail); the tail value is monotone in u:
        # the lower tail I increases with log x, the upper tail 1 - I increases with log(1 - x).
        if upper:
            u0 = (mp.log(target * b) + lbeta) / b           # 1 - I ~ (1-x)^b / (b B(a, b)) near x = 1
            if not mp.log1p(-mean) < u0 < 0:
                u0 = mp.log1p(-mean)
        else:
            u0 = (mp.log(target * a) + lbeta) / a           # I ~ x^a / (a B(a, b)) near x = 0
            if not u0 < mp.log(mean):
                u0 = mp.log(mean)
        lo, hi = None, mp.mpf(0)  # bracket in u (None: unbounded below); every u < 0 has 0 < x < 1
        u = u0
        for _ in range(400):
            x = -mp.expm1(u) if upper else mp.exp(u)
            xc = mp.exp(u) if upper else -mp.expm1(u)  # 1 - x
            F = _upper_accurate(a, b, x, mp.mp.dps) if upper else _lower(a, b, x)
            f = F - target
            if f == 0:
                break
            if f > 0:
                hi = u
            else:
                lo = u
            # dF/du = q(x) x (lower tail) or q(x) (1 - x) (upper tail), both > 0
            un = u - f / (mp.exp(log_density(a, b, x)) * (xc if upper else x))
            # converged when the Newton step no longer moves x or 1 - x relatively (u is the log of one
            # of them), or the residual is negligible
            if (abs(un - u) * max(1, (xc / x) if upper else (x / xc)) <= tol
                    or abs(f) <= tol * target):
                u = un
                break
            if not ((lo is None or un > lo) and un < hi):
                un = (u - max(1, abs(u))) if lo is None else (lo + hi) / 2
            u = un
        x = -mp.expm1(u) if upper else mp.exp(u)
    with mp.workdps(dps):
        return +x


# --- large parameters ----------------------------------------------------------------------------------
def _large_side(a, b, x, dps):
    """For large a and b (mpmath.betainc's hypergeometric series does not converge from about 5e3 on): the
    tail of x away from the mode, by Gauss-Legendre quadrature of the integral definition on pieces laid out
    from x outwards. With r(t) = t^(a-1) (1-t)^(b-1) / (x^(a-1) (1-x)^(b-1)) (<= 1 on that side) returns
    (upper, Q, G_a, G_b): upper = x lies above the mode; Q = int r over the tail; G_a = int r (log t - E log t)
    and G_b = int r (log(1 - t) - E log(1 - t)) over it (E log t = psi(a) - psi(a + b)). The pieces grow
    geometrically from the smaller of sd / (4 (1 + |k|)) (k: x's distance from the mode in standard deviations)
    and a quarter of the integrand's e-folding length at x (so that the first pieces resolve its slope there)
    to sd / 2, until log r < -140 (the rest is below the working precision's 1e-(dps + 10) relative).
    Meant for x beyond both the mean and the mode (where the side is the smaller one): with a small parameter
    (b ~ 1-2 next to a large a) and x between the mean and the mode, the side away from the mode is the bulk
    and G_a, G_b cancel (4e-10 relative error in dx/db at b = 1.5, one standard deviation above the mean,
    against mpmath.betainc's own derivative). Tiny b (< 0.1) makes the pieces' count grow as 1 / sqrt(b)."""
    mp = _mpm()
    s = a + b
    sd = mp.sqrt(a * b / (s * s * (s + 1)))
    mode = (a - 1) / (s - 2)
    upper = x > mode
    lx, l1x = mp.log(x), mp.log1p(-x)
    la = mp.digamma(a) - mp.digamma(s)
    lb = mp.digamma(b) - mp.digamma(s)

    def logr(t):
        return (a - 1) * (mp.log(t) - lx) + (b - 1) * (mp.log1p(-t) - l1x)

    # the first pieces resolve the integrand's decay at x: e-fold lengths 1 / |d log r / dt| (far beyond the
    # near-Gaussian region this is much shorter than sd / k)
    slope = abs((a - 1) / x - (b - 1) / (1 - x))
    step = min(sd / (4 * (1 + abs(x - mode) / sd)), 1 / (4 * slope)) if slope > 0 else sd / 4
    pts, t, end = [x], x, (mp.mpf(1) if upper else mp.mpf(0))
    for _ in range(20000):
        t = t + step if upper else t - step
        if (upper and t >= end) or (not upper and t <= end):
            pts.append(end)
            break
        pts.append(t)
        if logr(t) < -140:
            break
        step = min(step * mp.mpf(1.5), sd / 2)
    pts = sorted(pts)

    def q(f):
        return mp.quad(f, pts, method="gauss-legendre")

    def r(t):
        return mp.exp(logr(t)) if 0 < t < 1 else mp.mpf(0)

    Q = q(r)
    Ga = q(lambda t: r(t) * (mp.log(t) - la) if 0 < t < 1 else mp.mpf(0))
    Gb = q(lambda t: r(t) * (mp.log1p(-t) - lb) if 0 < t < 1 else mp.mpf(0))
    return upper, Q, Ga, Gb


def large_betainc(a, b, x, dps=30):
    """(I_x(a, b), 1 - I_x(a, b)) for large a and b (both >= ~1e3; mpmath.betainc fails from ~5e3): the tail
    away from the mode is w(x) / B(a, b) times _large_side's Q (w the unnormalised density, B from
    loggamma), the other side one minus it (at dps + 10 digits)."""
    mp = _mpm()
    with mp.workdps(dps + 10):
        a, b, x = _to_mpf(a), _to_mpf(b), _to_mpf(x)
        upper, Q, _, _ = _large_side(a, b, x, mp.mp.dps)
        tail = mp.exp((a - 1) * mp.log(x) + (b - 1) * mp.log1p(-x)
                      - (mp.loggamma(a) + mp.loggamma(b) - mp.loggamma(a + b))) * Q
        I, Ic = (1 - tail, tail) if upper else (tail, 1 - tail)
    with mp.workdps(dps):
        return +I, +Ic


def large_standard_beta_grad(a, b, x, dps=30):
    """(dx/da, dx/db) for large a and b: dx/da = -(dI/da) / q(x) = -int_0^x r (log t - E log t) dt, and
    since the integrand integrates to 0 over [0, 1], +int_x^1 of it where x lies above the mode: each from
    the tail away from the mode (_large_side), where r <= 1 and log t - E log t keeps one sign, so nothing
    cancels (the side holding the mode would cancel e^(k^2 / 2)-fold)."""
    mp = _mpm()
    with mp.workdps(dps + 10):
        a, b, x = _to_mpf(a), _to_mpf(b), _to_mpf(x)
        upper, _, Ga, Gb = _large_side(a, b, x, mp.mp.dps)
        sign = 1 if upper else -1
    with mp.workdps(dps):
        return +(sign * Ga), +(sign * Gb)


# --- NumPy helpers ------------------------------------------------------------------------------------
def _vec(fn, *args, n_out=1, **kw):
    import numpy as np

    b = np.broadcast_arrays(*[np.asarray(v, dtype=np.float64) for v in args])
    outs = [np.empty(b[0].shape, dtype=np.float64) for _ in range(n_out)]
    flat = [v.ravel() for v in b]
    for i in range(flat[0].size):
        r = fn(*[float(v[i]) for v in flat], **kw)
        r = r if n_out > 1 else (r,)
        for o, v in zip(outs, r):
            o.flat[i] = float(v)
    return tuple(outs) if n_out > 1 else outs[0]


def betainc_np(a, b, x, dps=30):
    return _vec(betainc, a, b, x, dps=dps)


def betaincc_np(a, b, x, dps=30):
    return _vec(betaincc, a, b, x, dps=dps)


def betaincinv_np(a, b, p, dps=30):
    return _vec(betaincinv, a, b, p, dps=dps)


def betainc_grads_np(a, b, x, dps=30):
    return _vec(betainc_grads, a, b, x, n_out=2, dps=dps)


def standard_beta_grad_np(a, b, x, dps=30):
    """(dx/da, dx/db) as two float64 arrays."""
    return _vec(standard_beta_grad, a, b, x, n_out=2, dps=dps)


def dirichlet_grad_np(x, alpha, total, dps=30):
    return _vec(dirichlet_grad, x, alpha, total, dps=dps)


# --- independent checks -------------------------------------------------------------------------------
def quad_betainc_grads(a, b, x, dps=30):
    """(dI/da, dI/db) from tanh-sinh quadrature of the integral definition (an independent method):
    dI/da = int_0^x t^(a-1) (1-t)^(b-1) (log t - psi(a) + psi(a+b)) dt / B(a, b), and for b the same with
    log(1 - t) - psi(b) + psi(a+b). Tanh-sinh copes with the integrable singularity at t = 0; [0, x] is
    cut so that no piece is longer than its distance to t = 1, geometrically towards 0, and at the mode.
    For moderate arguments only: on far tails, where the weight is a narrow peak at an end, it agrees
    with the other methods to 1e-11 or worse (measured), see alt_betainc_grads."""
    mp = _mpm()
    with mp.workdps(dps + 10):
        a, b, x = _to_mpf(a), _to_mpf(b), _to_mpf(x)
        la = mp.digamma(a + b) - mp.digamma(a)
        lb = mp.digamma(a + b) - mp.digamma(b)
        lB = mp.loggamma(a) + mp.loggamma(b) - mp.loggamma(a + b)

        def w(t):
            if not 0 < t < 1:
                return mp.mpf(0)
            return mp.exp((a - 1) * mp.log(t) + (b - 1) * mp.log1p(-t) - lB)

        n = 4 * mp.mp.dps
        pts = {mp.mpf(0), x} | {1 - (1 - x) * 2 ** k for k in range(1, n) if 1 - (1 - x) * 2 ** k > 0}
        if a < 1:
            pts |= {min(x, mp.mpf(1) / 2) * mp.mpf(2) ** -j for j in range(1, n)}
        if a > 1 and b > 1:
            mode = (a - 1) / (a + b - 2)
            if 0 < mode < x:
                pts.add(mode)
        pts = sorted(p for p in pts if 0 <= p <= x)
        ga = mp.quad(lambda t: w(t) * (mp.log(t) + la), pts)
        gb = mp.quad(lambda t: w(t) * (mp.log1p(-t) + lb), pts)
    with mp.workdps(dps):
        return +ga, +gb


def alt_betainc_grads(a, b, x, dps=30):
    """(dI/da, dI/db) by mpmath.diff of another representation of the smaller tail (DLMF 8.17.8),
    I_x(a, b) = x^a (1-x)^b / (a B(a, b)) 2F1(a + b, 1; a + 1; x), applied to (a, b, x) or, for the upper
    tail, to (b, a, 1 - x): a different hypergeometric function from mpmath.betainc's, with the powers and
    the beta function in log space, for far tails (where quadrature is inaccurate)."""
    mp = _mpm()

    def rep(p, q, y):
        return mp.exp(p * mp.log(y) + q * mp.log1p(-y) - (mp.loggamma(p) + mp.loggamma(q) - mp.loggamma(p + q))) \
            / p * mp.hyp2f1(p + q, 1, p + 1, y)

    with mp.workdps(dps + 10):
        a, b, x = _to_mpf(a), _to_mpf(b), _to_mpf(x)
        if _lower(a, b, x) < 0.5:
            da = mp.diff(lambda s: rep(s, b, x), a)
            db = mp.diff(lambda s: rep(a, s, x), b)
        else:
            y = 1 - x
            da = -mp.diff(lambda s: rep(b, s, y), a)
            db = -mp.diff(lambda s: rep(s, a, y), b)
    with mp.workdps(dps):
        return +da, +db


def _self_check(dps=30):
    """[(case, computed, expected, relative difference)] for the closed forms and the quadrature."""
    mp = _mpm()
    out = []
    with mp.workdps(dps):
        for x in (1e-3, 0.3, 0.9):
            X = mp.mpf(x)
            ga, gb = standard_beta_grad(1, 1, x, dps)
            out.append((f"a=b=1 dx/da x={x}", ga, -X * mp.log(X)))
            out.append((f"a=b=1 dx/db x={x}", gb, (1 - X) * mp.log1p(-X)))
            ga, _ = standard_beta_grad(2.5, 1, x, dps)
            out.append((f"b=1 a=2.5 dx/da x={x}", ga, -X * mp.log(X) / mp.mpf(2.5)))
            _, gb = standard_beta_grad(1, 0.3, x, dps)
            out.append((f"a=1 b=0.3 dx/db x={x}", gb, (1 - X) * mp.log1p(-X) / mp.mpf(0.3)))
        # far upper tails: 1 - I = 1e-120 (x >= 1/2, by the reflection) and a closed form
        X = mp.mpf(1 - 1e-12)
        _, gb = standard_beta_grad(1, 10, X, dps)
        out.append(("a=1 b=10 dx/db x=1-1e-12", gb, (1 - X) * mp.log1p(-X) / 10))
        for a, b, x in ((0.7, 2.5, 0.2), (3.0, 5.0, 0.6), (0.5, 0.5, 0.95), (20.0, 30.0, 0.35)):
            da, db = betainc_grads(a, b, x, dps)
            qa, qb = quad_betainc_grads(a, b, x, dps)
            out.append((f"quad dI/da a={a} b={b} x={x}", da, qa))
            out.append((f"quad dI/db a={a} b={b} x={x}", db, qb))
        # far tails: upper tail 1e-52 at x < 1/2 (the cancelling branch), 1e-120 at x > 1/2, lower 1e-600
        for a, b, x in ((0.01, 200.0, 0.45), (0.3, 10.0, 1 - 1e-12), (200.0, 0.01, 1e-3), (1e3, 1e3, 0.4)):
            da, db = betainc_grads(a, b, x, dps)
            ra, rb = alt_betainc_grads(a, b, x, dps)
            out.append((f"DLMF 8.17.8 dI/da a={a} b={b} x={x}", da, ra))
            out.append((f"DLMF 8.17.8 dI/db a={a} b={b} x={x}", db, rb))
        return [(c, v, e, abs(v - e) / abs(e)) for c, v, e in out]
