"""mpmath ground truth for the von Mises-Fisher cosine w = mu^T z on S^(d-1) (csrc/core/vmf.h).

Everything is in u = 1 - w in [0, 2], density g(u) / Z_u with g(u) = exp(-kappa u) u^nu (2 - u)^nu,
nu = (d - 3) / 2. Independent of the kernel's method: the moments come from Bessel functions,

    Z_u = e^-kappa sqrt(pi) Gamma(nu + 1) (2 / kappa)^(d/2 - 1) I_(d/2 - 1)(kappa),
    E[u] = 1 - A_d(kappa),  A_d = I_(d/2) / I_(d/2 - 1),  Var[u] = A_d' = 1 - A_d^2 - (d - 1) A_d / kappa,

(kappa = 0: the Beta((d-1)/2, (d-1)/2) values), and the CDF and the implicit gradient
du/dkappa = int_0^u (s - E[u]) g(s) ds / g(u) from mpmath's tanh-sinh quadrature with breakpoints at the
mean +- multiples of the standard deviation, at `dps` digits. Kept free of torch (tools/ loads it by path).
"""
from ._mp import mpm


def _setup(kappa, d):
    mp = mpm()
    kappa = mp.mpf(kappa)
    nu = mp.mpf(d - 3) / 2
    return mp, kappa, nu


def moments(kappa, d, dps=40):
    """(log Z_u, E[u], Var[u]) as mpf."""
    mp = mpm()
    with mp.workdps(dps + 10):
        _, kappa, nu = _setup(kappa, d)
        if kappa == 0:
            # u / 2 ~ Beta(nu + 1, nu + 1): Z_u = 2^(2 nu + 1) B(nu + 1, nu + 1), mean 1, var 1 / (d)
            log_z = (2 * nu + 1) * mp.log(2) + mp.log(mp.beta(nu + 1, nu + 1))
            return log_z, mp.mpf(1), mp.mpf(1) / d
        v = mp.mpf(d) / 2 - 1
        iv = mp.besseli(v, kappa)
        a = mp.besseli(v + 1, kappa) / iv
        log_z = -kappa + mp.log(mp.sqrt(mp.pi) * mp.gamma(nu + 1)) + v * mp.log(2 / kappa) + mp.log(iv)
        var = 1 - a * a - (d - 1) * a / kappa
        return log_z, 1 - a, var


def _breaks(lo, hi, mean, sd, extra=()):
    mp = mpm()
    pts = {lo, hi}
    for j in (0, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128):
        for sgn in (-1, 1):
            p = mean + sgn * j * sd
            if lo < p < hi:
                pts.add(p)
    for p in extra:
        if lo < p < hi:
            pts.add(p)
    # geometric points towards the ends (the u^nu / (2 - u)^nu factors)
    for k in range(1, 6):
        for p in (lo + (hi - lo) * mp.mpf(2) ** -k, hi - (hi - lo) * mp.mpf(2) ** -k):
            pts.add(p)
    return sorted(pts)


def _sides(kappa, d, u, dps, order=1):
    """I_k = int_0^u h (u - s)^k, J_k = int_u^2 h (s - u)^k, k = 0, 1 (and 2 with order=2), with h = g(s) / g(u):
    (i0, i1, j0, j1) or (i0, i1, i2, j0, j1, j2)."""
    mp = mpm()
    _, kappa, nu = _setup(kappa, d)
    u = mp.mpf(u)
    _, mean, var = moments(kappa, d, dps)
    sd = mp.sqrt(var)

    def log_g(s):
        return -kappa * s + nu * (mp.log(s) + mp.log(2 - s))

    lg_u = log_g(u)

    def h(s):
        if s <= 0 or s >= 2:
            return mp.mpf(0)
        return mp.exp(log_g(s) - lg_u)

    lo_pts = _breaks(mp.mpf(0), u, mean, sd)
    hi_pts = _breaks(u, mp.mpf(2), mean, sd)
    i0 = mp.quad(h, lo_pts)
    i1 = mp.quad(lambda s: h(s) * (u - s), lo_pts)
    j0 = mp.quad(h, hi_pts)
    j1 = mp.quad(lambda s: h(s) * (s - u), hi_pts)
    if order == 1:
        return i0, i1, j0, j1
    i2 = mp.quad(lambda s: h(s) * (u - s) ** 2, lo_pts)
    j2 = mp.quad(lambda s: h(s) * (s - u) ** 2, hi_pts)
    return i0, i1, i2, j0, j1, j2


def grad_u(kappa, d, u, dps=30):
    """du/dkappa at fixed CDF (float64-roundable mpf)."""
    mp = mpm()
    with mp.workdps(dps):
        if u <= 0 or u >= 2:
            return mp.mpf(0)
        i0, i1, j0, j1 = _sides(kappa, d, u, dps)
        return -(i0 * j1 + j0 * i1) / (i0 + j0)


def grad_u_dkappa(kappa, d, u, dps=30):
    """d/dkappa of du/dkappa at fixed u, and the sum of the sizes of its terms: (value, scale). With
    d log h(s) / dkappa = u - s, dI_k/dkappa = I_(k+1) and dJ_k/dkappa = -J_(k+1), so G = -(I0 J1 + J0 I1) / D
    (D = I0 + J0) has dG/dkappa = (I0 J2 - J0 I2) / D - G (I1 - J1) / D."""
    mp = mpm()
    with mp.workdps(dps):
        if u <= 0 or u >= 2:
            return mp.mpf(0), mp.mpf(0)
        i0, i1, i2, j0, j1, j2 = _sides(kappa, d, u, dps, order=2)
        D = i0 + j0
        G = -(i0 * j1 + j0 * i1) / D
        t1, t2, t3 = i0 * j2 / D, j0 * i2 / D, G * (i1 - j1) / D
        return t1 - t2 - t3, abs(t1) + abs(t2) + abs(t3)


def cdf_u(kappa, d, u, dps=30):
    """P(1 - mu^T z <= u)."""
    mp = mpm()
    with mp.workdps(dps):
        if u <= 0:
            return mp.mpf(0)
        if u >= 2:
            return mp.mpf(1)
        i0, _, j0, _ = _sides(kappa, d, u, dps)
        return i0 / (i0 + j0)


def grad_u_closed_d3(kappa, u, dps=30):
    """d = 3 in closed form: u has density kappa e^(-kappa u) / (1 - e^(-2 kappa)) on [0, 2], so
    F(u) = (1 - e^(-kappa u)) / (1 - e^(-2 kappa)) and du/dkappa = -(dF/dkappa) / f(u)."""
    mp = mpm()
    with mp.workdps(dps):
        k, u = mp.mpf(kappa), mp.mpf(u)
        F = lambda kk: -mp.expm1(-kk * u) / -mp.expm1(-2 * kk)  # noqa: E731
        f = k * mp.exp(-k * u) / -mp.expm1(-2 * k)
        return -mp.diff(F, k) / f
