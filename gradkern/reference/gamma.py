"""mpmath ground truth for the regularized incomplete gamma function and the implicit
reparameterization gradient of Gamma(a, 1) samples (Figurnov et al. 2018, appendix C).

Pure Python; mpmath is imported lazily. Scalar functions take Python/NumPy scalars and return
mpmath numbers; the ``*_np`` helpers take NumPy arrays (broadcast together) and return float64
arrays.

Methods (chosen so that no result relies on a cancelling formula):

* ``dpda``: eq. (15) of the paper with the *minus* sign in front of the 2F2 term
      dP/da = P (log x - psi(a)) - 2F2(a, a; a+1, a+1; -x) x^a / (a Gamma(a+1)).
  The printed "+" is wrong: at a=3, x=2.5, "+" gives 0.2412 while a high-precision finite difference
  of gammainc gives -0.24712, equal to the "-" version to all printed digits (checked in
  ``_check_sign``). Eq. (15) is used only in the lower tail (x <= a) for a <= 100, where neither
  the 2F2 series nor P cancels. Everywhere else the derivative is taken from the tail integral
      dx/da = -dP/da / q(x) = -int_0^x (t/x)^(a-1) e^(x-t) (log t - psi(a)) dt     (x <= a)
            = +dQ/da / q(x) = +int_x^inf (t/x)^(a-1) e^(x-t) (log t - psi(a)) dt  (x > a)
  with the tail chosen so that the integrand is monotone with its maximum 1 at t = x; mpmath.quad
  (tanh-sinh) on geometrically growing sub-intervals whose first width is the local decay scale.
  mpmath's gammainc / hyp2f2 do not converge for a ~ 1e8, the quadrature does.
* ``gammainc_p/q``: mpmath.gammainc for a <= 1e4, otherwise the same tail integrals times q(x).
"""
from __future__ import annotations

from ._mp import mpm as _mpm


def _tail_integral(a, x, weight_log):
    """int over the smaller-weight side of (t/x)^(a-1) e^(x-t) times a weight: 1 (weight_log = 0 / False),
    log t - psi(a) (1 / True: d/da of the density over the density) or (log t - psi(a))^2 - psi'(a) (2: the
    second a-derivative of the density over the density).

    Returns (value, side) with side = -1 for [0, x], +1 for [x, inf)."""
    mp = _mpm()
    order = int(weight_log)
    psi = mp.digamma(a) if order else 0
    psi1 = mp.psi(1, a) if order == 2 else 0
    am1 = a - 1
    side = 1 if x > a else -1
    lx = mp.log(x)

    def f(t):
        if t <= 0:
            return mp.mpf(0)
        lt = mp.log(t)
        w = mp.exp(am1 * (lt - lx) - (t - x))
        if order == 2:
            return w * ((lt - psi) ** 2 - psi1)
        return w * (lt - psi) if order else w

    s = abs(am1 / x - 1)  # |d/dt log integrand| at t = x
    h = 1 / s if s > 0 else mp.mpf(1)
    h = min(h, mp.sqrt(max(a, 1)))  # Gaussian width near the mode
    if side < 0:
        h = min(h, x)
        pts = [x]
        w = h
        while pts[-1] > 0:
            nxt = x - w
            if nxt <= 0 or w > 60 * h * 1e6:
                pts.append(mp.mpf(0))
                break
            pts.append(nxt)
            w *= 2
        pts = pts[::-1]
    else:
        pts = [x]
        w = h
        for _ in range(80):
            pts.append(x + w)
            w *= 2
            # stop once the integrand is negligibly small
            t = pts[-1]
            if am1 * (mp.log(t) - lx) - (t - x) < -mp.mpf(mp.mp.prec) * 0.7 - 20:
                break
        pts.append(mp.inf)
    return mp.quad(f, pts), side


def _to_mpf(v):
    mp = _mpm()
    return mp.mpf(v) if not isinstance(v, float) else mp.mpf(float(v))


def log_q(a, x):
    """log of the Gamma(a, 1) density at x."""
    mp = _mpm()
    return (a - 1) * mp.log(x) - x - mp.loggamma(a)


def gammainc_p(a, x, dps=40):
    mp = _mpm()
    with mp.workdps(dps):
        a = _to_mpf(a); x = _to_mpf(x)
        if x == 0:
            return mp.mpf(0)
        if a <= 1e4:
            return mp.gammainc(a, 0, x, regularized=True)
        v, side = _tail_integral(a, x, False)
        tail = v * mp.exp(log_q(a, x))
        return tail if side < 0 else 1 - tail


def gammainc_q(a, x, dps=40):
    mp = _mpm()
    with mp.workdps(dps):
        a = _to_mpf(a); x = _to_mpf(x)
        if x == 0:
            return mp.mpf(1)
        if a <= 1e4:
            return mp.gammainc(a, x, mp.inf, regularized=True)
        v, side = _tail_integral(a, x, False)
        tail = v * mp.exp(log_q(a, x))
        return tail if side > 0 else 1 - tail


def _dxda_over_x(a, x):
    """(dx/da)/x at fixed quantile; x > 0, working precision set by caller."""
    mp = _mpm()
    if x <= a and a <= 100:
        # eq. (15), minus sign. dx/da = -dP/da / q, q = x^(a-1) e^-x / Gamma(a)
        P = mp.gammainc(a, 0, x, regularized=True)
        logq = log_q(a, x)
        F = mp.hyp2f2(a, a, a + 1, a + 1, -x)
        # x^a/(a Gamma(a+1)) / q = x e^x / a^2
        val = -(P * mp.exp(-logq) * (mp.log(x) - mp.digamma(a)) - F * x * mp.exp(x) / a ** 2)
        return val / x
    v, side = _tail_integral(a, x, True)
    return (-v if side < 0 else v) / x


def _times_x(per_x, a, x, dps):
    """x * per_x(a, x) at dps digits, 0 at x = 0: the x-space form of a quantity per_x given per unit of x."""
    mp = _mpm()
    with mp.workdps(dps):
        a = _to_mpf(a); x = _to_mpf(x)
        if x == 0:
            return mp.mpf(0)
        return x * per_x(a, x)


def _at_log_x(fn, a, logx, dps):
    """fn(a, exp(logx)) at dps digits: the log-space entry points (x itself may underflow in a float)."""
    mp = _mpm()
    with mp.workdps(dps):
        return fn(_to_mpf(a), mp.exp(_to_mpf(logx)))


def standard_gamma_grad(a, x, dps=40):
    """dx/da of x ~ Gamma(a, 1) at fixed quantile (torch._standard_gamma_grad contract)."""
    return _times_x(_dxda_over_x, a, x, dps)


def log_standard_gamma_grad(a, logx, dps=40):
    """d(log x)/da given log x."""
    return _at_log_x(_dxda_over_x, a, logx, dps)


def dpda(a, x, dps=40):
    """dP(a, x)/da (dQ/da = -dP/da)."""
    mp = _mpm()
    with mp.workdps(dps):
        a = _to_mpf(a); x = _to_mpf(x)
        if x == 0:
            return mp.mpf(0)
        return -x * _dxda_over_x(a, x) * mp.exp(log_q(a, x))


def _d2_over_xq(a, x):
    """(d2P/da2) / (x q(x)); working precision set by the caller.

    Lower side (x <= a) for a <= 1e4: mpmath.diff (high-precision numerical differentiation, extra working
    digits) of mpmath.gammainc's P, which converges there. The tail integral of the density's second
    a-derivative is not used on that side for small a: its integrand has the singularity t^(a-1) at 0 and,
    for a -> 0, parts of size 1/a^3 that cancel to a result of size 1/a.
    Otherwise: that tail integral on the smaller side (the second a-derivative of the density integrates to
    0 over (0, inf), so the upper tail gives it with the sign flipped); the integrand is smooth there, and
    mpmath.diff of Q loses digits far in the upper tail (x = 1e30)."""
    mp = _mpm()
    if a <= 1e4 and x <= a:
        f = lambda s: mp.gammainc(s, 0, x, regularized=True)  # noqa: E731
        return mp.diff(f, a, 2) / (x * mp.exp(log_q(a, x)))
    v, side = _tail_integral(a, x, 2)
    return (v if side < 0 else -v) / x


def second_order_parts(a, x, dps=40):
    """(d2P/da2, x q(x) |D|, x q(x) |h (log x - psi(a))|) with h = (dx/da)/x and D = dh/da at fixed x, so that
    d2P/da2 = -x q (D + h (log x - psi(a))): the sizes of the two parts whose sum it is (a test's scale where
    the sum crosses zero)."""
    mp = _mpm()
    with mp.workdps(dps):
        a = _to_mpf(a); x = _to_mpf(x)
        xq = x * mp.exp(log_q(a, x))
        d2 = _d2_over_xq(a, x)
        hc = _dxda_over_x(a, x) * (mp.log(x) - mp.digamma(a))
        return d2 * xq, abs(d2 + hc) * xq, abs(hc) * xq


def d2pda2(a, x, dps=40):
    """d2P(a, x)/da2 (d2Q/da2 = -d2P/da2)."""
    mp = _mpm()
    with mp.workdps(dps):
        a = _to_mpf(a); x = _to_mpf(x)
        if x == 0:
            return mp.mpf(0)
        return _d2_over_xq(a, x) * x * mp.exp(log_q(a, x))


def _dlogx_dalpha(a, x):
    """d/da of h = (dx/da)/x at fixed x: -(d2P/da2)/(x q) - h (log x - psi(a))."""
    mp = _mpm()
    return -_d2_over_xq(a, x) - _dxda_over_x(a, x) * (mp.log(x) - mp.digamma(a))


def standard_gamma_grad_dalpha(a, x, dps=40):
    """d/da of standard_gamma_grad(a, x) at fixed x."""
    return _times_x(_dlogx_dalpha, a, x, dps)


def log_standard_gamma_grad_dalpha(a, logx, dps=40):
    """d/da of log_standard_gamma_grad(a, log x) at fixed log x."""
    return _at_log_x(_dlogx_dalpha, a, logx, dps)


def gammaincinv(a, p, dps=40):
    """x with P(a, x) = p (root of the smaller tail, mpmath.findroot in log x)."""
    mp = _mpm()
    with mp.workdps(dps):
        a = _to_mpf(a); p = _to_mpf(p)
        if p == 0:
            return mp.mpf(0)
        if p == 1:
            return mp.inf
        # Wilson-Hilferty start, then Newton on log x using the density
        z = mp.sqrt(2) * mp.erfinv(2 * p - 1)
        x0 = a * (1 - 1 / (9 * a) + z / (3 * mp.sqrt(a))) ** 3
        if not (x0 > 0):
            x0 = (p * mp.gamma(a + 1)) ** (1 / a)
        u = mp.log(x0)
        use_q = p > 0.5
        target = (1 - p) if use_q else p
        for _ in range(200):
            x = mp.exp(u)
            F = gammainc_q(a, x, dps) if use_q else gammainc_p(a, x, dps)
            q = mp.exp(log_q(a, x))
            # d F / du = -/+ x q
            step = (F - target) / (x * q) * (1 if use_q else -1)
            # Newton in u = log x: dF/du = -x q (upper tail Q) or +x q (lower tail P), so
            # u_new = u - (F - target)/(dF/du) = u + step; the step is limited in log space.
            step = max(min(step, 2), -2)
            u += step
            if abs(step) < mp.mpf(10) ** (-dps + 5):
                break
        return mp.exp(u)


def _vec(fn, *args, **kw):
    import numpy as np

    b = np.broadcast_arrays(*[np.asarray(v, dtype=np.float64) for v in args])
    out = np.empty(b[0].shape, dtype=np.float64)
    it = np.nditer(b + [out], op_flags=[["readonly"]] * len(b) + [["writeonly"]])
    for vals in it:
        vals[-1][...] = float(fn(*[float(v) for v in vals[:-1]], **kw))
    return out


def gammainc_p_np(a, x, dps=40):
    return _vec(gammainc_p, a, x, dps=dps)


def gammainc_q_np(a, x, dps=40):
    return _vec(gammainc_q, a, x, dps=dps)


def dpda_np(a, x, dps=40):
    return _vec(dpda, a, x, dps=dps)


def standard_gamma_grad_np(a, x, dps=40):
    return _vec(standard_gamma_grad, a, x, dps=dps)


def log_standard_gamma_grad_np(a, logx, dps=40):
    return _vec(log_standard_gamma_grad, a, logx, dps=dps)


def gammaincinv_np(a, p, dps=40):
    return _vec(gammaincinv, a, p, dps=dps)


def _check_sign():
    """Returns (eq15 with '+', eq15 with '-', finite difference) at a=3, x=2.5."""
    mp = _mpm()
    with mp.workdps(40):
        a, x = mp.mpf(3), mp.mpf("2.5")
        P = mp.gammainc(a, 0, x, regularized=True)
        h = mp.hyp2f2(a, a, a + 1, a + 1, -x) * x ** a / (a * mp.gamma(a + 1))
        base = P * (mp.log(x) - mp.digamma(a))
        fd = mp.diff(lambda s: mp.gammainc(s, 0, x, regularized=True), a)
        return base + h, base - h, fd
