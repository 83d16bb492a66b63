"""Eager reference of gradkern.antithetic's math, in plain torch ops: the oracle that the tests compare
the antithetic ops (csrc/core/antithetic.h) with. Not part of the package.

- gamma_reflect(a, x): x_a with P(a, x_a) = Q(a, x), the direct path (gammaincinv, Newton on log Q in
  the far upper tail);
- reflection_table(a, device) / gamma_reflect_fast(a, x): the cubic Hermite table of log S -> log S_a
  and its evaluation (one Newton step in float64);
- marsaglia / cheng(mean, std, z): the constructions; standardized_reference(noise, method, reflection):
  the fused sampler's [eps; eps_a].
"""
import math

import torch

from gradkern import _special as special
from gradkern._utils import log_gamma_density as _log_gamma_density
from gradkern.antithetic import _hawkins_wixley_reflect

def gamma_reflect(a, x):
    r"""x_a with P(a, x_a) = Q(a, x), i.e. the Gamma(a, 1) quantile reflection; no autograd.

    Which tail is accurate decides the formula (P, Q are gradkern's incomplete gammas, both accurate
    with full relative precision in their small tails):

    * x above the median (q = Q(a, x) <= 1/2): x_a = gammaincinv(a, q); q is small and exact, and
      inverting P in its lower tail is well conditioned.
    * x below the median (p = P(a, x) < 1/2): x_a lies in the upper tail and solves Q(a, x_a) = p.
      gammaincinv(a, q) with q = 1 - p near 1 only sees p to absolute precision eps (q rounds to 1 and
      x_a = inf once p < eps/2), so where p < 2^-6 the start is polished by Newton steps on
      log Q(a, x_a) = log p, which uses p and Q with full relative precision. Where q rounded to 1 the
      start is Wilson-Hilferty, x ~ a (1 - 1/(9a) + z / (3 sqrt a))^3 with z = -ndtri(p).

    The polished rows (about 1 in 64) are computed in float64 whatever the input dtype, so that a
    float32 p below 1e-38 does not underflow; for the same reason float32 rows whose q is below 1e-30
    are redone in float64 (x_a itself is then still a normal float32, e.g. S_a ~ 1e-6 for k = 16).
    """
    q = special.gammaincc(a, x)
    xa = special.gammaincinv(a, q)
    upper = q > 1 - 2.0 ** -6
    lower = (q < 1e-30) if x.dtype != torch.float64 else torch.zeros_like(upper)
    if bool(upper.any()):
        x64 = x[upper].double()
        tiny = torch.finfo(torch.float64).tiny
        # p = 0 only for x = 0 (S = 0, probability zero) or beyond float64; tiny keeps x_a finite.
        p = special.gammainc(a, x64).clamp(min=tiny)
        log_p = torch.log(p)
        x0 = special.gammaincinv(a, special.gammaincc(a, x64))
        z = -torch.special.ndtri(p)
        wh = a * torch.clamp(1 - 1 / (9 * a) + z / (3 * math.sqrt(a)), min=0.5) ** 3
        y = torch.where(torch.isfinite(x0) & (x0 > 0), x0, torch.clamp(wh, min=a))
        for _ in range(12):  # Newton converges quadratically from either start; 12 is a safe cap
            log_q = torch.log(special.gammaincc(a, y))
            # d log Q / dx = -q(x) / Q(x); the Newton step is (log Q - log p) Q / q(x), in log space.
            step = (log_q - log_p) * torch.exp(log_q - _log_gamma_density(a, y))
            y_new = torch.clamp(y + step, min=0.5 * y, max=2 * y)  # guards the first steps from a far start
            # Q underflowed (start far right of the root): step back towards it.
            y_new = torch.where(torch.isfinite(y_new), y_new, torch.where(log_q == -math.inf, 0.75 * y, y))
            done = bool(((y_new - y).abs() <= 1e-15 * y).all())
            y = y_new
            if done:  # quadratic convergence: one step past 1e-15 is at the float64 root
                break
        xa = xa.index_put((upper,), y.to(x.dtype))
    if bool(lower.any()):
        x64 = x[lower].double()
        xa = xa.index_put((lower,), special.gammaincinv(a, special.gammaincc(a, x64)).to(x.dtype))
    return xa


# Fast path: the reflection is one fixed smooth monotone map per k, v(u) = log S_a as a function of
# u = log S, so it is tabulated once per (a, device) on a uniform grid in u with exact values and exact
# derivatives dv/du = -(f(S) / f(S_a)) (S / S_a) from _gamma_reflect, and evaluated by cubic Hermite
# interpolation (error <= h^4 max|v^(4)| / 384). The grid spans the chi2 quantiles 1e-7 .. 1 - 1e-7 of S;
# rows outside it (2 in 10^7) take the direct path. float32 rows use the interpolated value as is (its
# error is below float32 rounding, checked in tests/test_antithetic.py); float64 rows take one Newton step
# on P(a, x_a) = Q(a, x) from it, which squares the error. Cost per row: one gammaincc and one gammainc in
# float64, no special function in float32, against one gammaincc and one (~4x dearer) gammaincinv for
# the direct path.
_TABLE_NODES = 4096
_TABLE_TAIL = 1e-7
_TABLES = {}


def reflection_table(a, device):
    key = (a, str(device))
    tab = _TABLES.get(key)
    if tab is None:
        if len(_TABLES) >= 256:  # 64 KiB each; a long-running process sweeping k should not grow forever
            _TABLES.clear()
        f64 = torch.float64
        ends = special.gammaincinv(torch.tensor(a, dtype=f64),
                                   torch.tensor([_TABLE_TAIL, 1 - _TABLE_TAIL], dtype=f64))
        u_lo, u_hi = torch.log(2 * ends).tolist()
        u = torch.linspace(u_lo, u_hi, _TABLE_NODES, dtype=f64)
        x = torch.exp(u) / 2
        xa = gamma_reflect(a, x)
        v = torch.log(2 * xa)
        dv = -torch.exp(_log_gamma_density(a, x) - _log_gamma_density(a, xa) + u - v)
        h = (u_hi - u_lo) / (_TABLE_NODES - 1)
        # Cubic Hermite on [u_j, u_j+1] in the power basis of s = (u - u_j) / h, one row per interval,
        # so that evaluation is one gather and a Horner scheme.
        p0, p1, m0, m1 = v[:-1], v[1:], h * dv[:-1], h * dv[1:]
        coef = torch.stack([p0, m0, 3 * (p1 - p0) - 2 * m0 - m1, 2 * (p0 - p1) + m0 + m1], dim=-1)
        tab = (u_lo, u_hi, h, coef.to(device))
        _TABLES[key] = tab
    return tab


def gamma_reflect_fast(a, x):
    """Same contract as _gamma_reflect (x_a with P(a, x_a) = Q(a, x)), via the table; no autograd."""
    u_lo, u_hi, h, coef = reflection_table(a, x.device)
    u = torch.log(2 * x.double())
    inside = (u >= u_lo) & (u <= u_hi)
    t = (u.clamp(u_lo, u_hi) - u_lo) / h
    j = t.floor().clamp(max=_TABLE_NODES - 2)
    s = t - j
    c = coef[j.long()].unbind(-1)
    v = torch.addcmul(c[0], s, torch.addcmul(c[1], s, torch.addcmul(c[2], s, c[3])))
    xa = torch.exp(v - math.log(2))
    if x.dtype == torch.float64:
        q = special.gammaincc(a, x)
        # One Newton step on P(a, x_a) = q. Where q > 1 - 2^-6 the target p = 1 - q has lost relative
        # precision; those rows (and the ones outside the table) take the direct path below.
        xa = xa - (special.gammainc(a, xa) - q) * torch.exp(-_log_gamma_density(a, xa))
        inside = inside & (q <= 1 - 2.0 ** -6)
    xa = xa.to(x.dtype)
    if not bool(inside.all()):
        out = ~inside  # rare rows: the direct path, in float64 whatever the dtype (float32 P, Q lose ~10 ulp)
        xa = xa.index_put((out,), gamma_reflect(a, x[out].double()).to(x.dtype))
    return xa


def marsaglia(mean, std, z):
    # z: (k-1, *batch) fresh N(0, 1) directions. With w_i = z_i / sqrt((k-i)(k-i+1) s), s = |z|^2,
    # t(i) = w_1 + .. + w_i, r = delta sqrt(k-1):  x_i = a + r (t(i-1) + (i-k) w_i), i = 1..k,
    # t(0) = 0, w_k = 0. The vectors v_j = (0,..,0, j-k, 1,..,1) (j-k at position j) are orthogonal,
    # orthogonal to 1, with |v_j|^2 = (k-j)(k-j+1); hence sum x = k a and |x - a|^2 = r^2.
    k = z.shape[0] + 1
    shape = (k - 1,) + (1,) * (z.dim() - 1)
    i = torch.arange(1, k, dtype=z.dtype, device=z.device).reshape(shape)
    s = (z * z).sum(0)
    w = z * torch.rsqrt((k - i) * (k - i + 1) * s)
    zero = torch.zeros_like(w[:1])
    t_prev = torch.cat([zero, torch.cumsum(w, 0)], 0)             # t(i-1), i = 1..k
    w_full = torch.cat([w, zero], 0)                               # w_i, w_k = 0
    coef = torch.cat([i - k, torch.zeros_like(i[:1])], 0)           # i - k
    r = std * math.sqrt(k - 1)
    return mean + r * (t_prev + coef * w_full)


def cheng(mean, std, z):
    # Inverse Helmert transform. y_j = delta sqrt(k-1) z_j / |z|, j = 2..k (Cheng draws |z_j| and an
    # independent random sign b_j; b_j |z_j| has the law of z_j, so z_j is used directly).
    # x_1 = a - sqrt(k(k-1))/k y_2; x_j = x_{j-1} + (sqrt(k+2-j) y_j - sqrt(k-j) y_{j+1}) / sqrt(k+1-j),
    # j = 2..k, with y_{k+1} = 0: one cumulative sum.
    k = z.shape[0] + 1
    shape = (k - 1,) + (1,) * (z.dim() - 1)
    j = torch.arange(2, k + 1, dtype=z.dtype, device=z.device).reshape(shape)
    y = z * (std * math.sqrt(k - 1) * torch.rsqrt((z * z).sum(0)))
    y_next = torch.cat([y[1:], torch.zeros_like(y[:1])], 0)
    inc = (torch.sqrt(k + 2 - j) * y - torch.sqrt(k - j) * y_next) * torch.rsqrt(k + 1 - j)
    x1 = mean - math.sqrt(k * (k - 1)) / k * y[0]
    return torch.cat([x1.unsqueeze(0), x1 + torch.cumsum(inc, 0)], 0)


CONSTRUCTIONS = {"marsaglia": marsaglia, "cheng": cheng}


def standardized_reference(noise, method, reflection):
    """[eps; eps_a] from noise = [eps; z] ((2k - 1, *batch)) in eager torch ops: the reference path of
    the fused op gradkern::antithetic_normal_standardized (tests compare the two)."""
    k = (noise.shape[0] + 1) // 2
    eps, z = noise[:k], noise[k:]
    eps_bar = eps.mean(0)
    s = ((eps - eps_bar) ** 2).sum(0)  # (k-1) times the unbiased sample variance
    s_a = chi2_reflect_reference(s, k - 1, reflection)
    eps_a = CONSTRUCTIONS[method](-eps_bar, torch.sqrt(s_a / (k - 1)), z)
    return torch.cat([eps, eps_a], 0)




def chi2_reflect_reference(s, df, reflection="exact"):
    """chi2_reflect in eager ops (no autograd): 2 gamma_reflect_fast(df / 2, s / 2), or Hawkins-Wixley."""
    if reflection == "hawkins-wixley":
        return _hawkins_wixley_reflect(s, float(df))
    return 2 * gamma_reflect_fast(0.5 * float(df), s / 2)
