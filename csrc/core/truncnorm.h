// gradkern numerical core: the Normal(loc, scale) truncated to [low, high] (section 4 of Figurnov et al.
// 2018): its quantile function and the vector-Jacobian product of its implicit reparameterization
// gradients, fused, one element at a time. Computed in double for float and double arguments.
//
// truncated_normal_icdf(p, loc, scale, low, high)   z with F(z) = p, F the truncated CDF
//     (tn_prepare + tn_icdf_from: the per-window part separately, for loops that reuse it).
// truncated_normal_backward(g, z, p, loc, scale, low, high, o)
//     o = g * (dz/dloc, dz/dscale, dz/dlow, dz/dhigh) at fixed F(z) = p (eq. 8 with the truncated CDF).
//
// Both work in the oriented standardized window [a, b] (tn_window): (low - loc) / scale and
// (high - loc) / scale, mirrored when the window's midpoint lies above the mean, so that a + b <= 0. Then
// a < 0 and b <= |a|: the window never lies in the upper tail, where Phi rounds to 1, and every Phi below
// comes from erfc in the tail that keeps it exact. Invalid parameters (low >= high, scale <= 0 or not
// finite, loc not finite, NaN) give NaN: never a finite sample or gradient.
#pragma once

#include "common.h"
#include "normal.h"

namespace gradkern {
namespace core {

struct TnWindow {
  double a, b;    // the oriented standardized bounds, a + b <= 0 (a may be -inf, b +inf)
  double sign;    // -1 where the window was mirrored: x = sign (z - loc) / scale
  bool valid;
};

GK_HD TnWindow tn_window(double loc, double scale, double low, double high) {
  TnWindow w;
  w.valid = low < high && scale > 0.0 && gk_isfinite(scale) && gk_isfinite(loc);
  const double a = (low - loc) / scale, b = (high - loc) / scale;
  // a + b is NaN for (-inf, inf), the untruncated case: not mirrored.
  const bool flip = a + b > 0.0;
  w.a = flip ? -b : a;
  w.b = flip ? -a : b;
  w.sign = flip ? -1.0 : 1.0;
  return w;
}

// Below this point Phi is no longer a normal double (Phi(-37) = 5.7e-300) and exp((x^2 - b^2) / 2) of
// the backward pass could overflow. Windows whose upper oriented bound (the quantile kernel) or sample
// (the backward) lies above it are computed directly, from erfc: Phi(a) may underflow there, but it is
// then negligible next to the window's mass. The others are computed in log space.
constexpr double kTnDeep = -37.0;
// The direct inversion takes p from this value up (std_normal_icdf_lower); a smaller p is inverted in log
// space.
constexpr double kTnTinyP = 1e-280;

// x with log Phi(x) = lp (lp <= log kTnTinyP, so x < -35): the Mills-ratio asymptote
// x0 = -sqrt(t - log t - log 2 pi), t = -2 lp, then Newton steps on log Phi,
// x <- x - (log Phi(x) - lp) Phi(x) / phi(x): quadratic convergence, 2-3 steps; capped at 12.
GK_HD double tn_log_ndtri(double lp) {
  const double t = -2.0 * lp;
  double x = -gk_sqrt(t - gk_log(t) - 2.0 * consts<double>::log_sqrt_2pi);
  for (int i = 0; i < 12; ++i) {
    const double lnd = log_ndtr(x);
    const double lphi = -0.5 * x * x - consts<double>::log_sqrt_2pi;
    const double step = (lnd - lp) * gk_exp(lnd - lphi);
    x -= step;
    if (!(gk_fabs(step) > 4.0 * num<double>::eps * gk_fabs(x))) break;  // converged (or NaN)
  }
  return x;
}

// What the quantile of one window needs, computed once per parameter set (the CPU loop reuses it while the
// parameters repeat): the oriented window and its masses from erfc, in the tail that keeps them exact.
struct TnState {
  TnWindow w;
  bool direct;     // b > kTnDeep: probabilities in linear space; else the whole window is in log space
  double ca;       // 2 Phi(a) (may underflow when a is deep: then negligible next to z2)
  double cq;       // 2 Phi(b) if b <= 0, else 2 Phi(-b)
  double z2;       // 2 Z = 2 (Phi(b) - Phi(a))
  double la, lz;   // log Phi(a), log Z (log space only)
};

// tn_prepare in two halves, for loops that evaluate the erfc of many windows at once (the CPU kernel's
// batched erfc): tn_direct_erfc_args gives the two erfc arguments of a valid window in the direct branch
// (b > kTnDeep; returns false for the others, which tn_prepare handles itself), tn_direct_state the state
// from their erfc values. tn_prepare is exactly tn_direct_state(w, erfc(e1), erfc(e2)) on that branch.
GK_HD bool tn_direct_erfc_args(const TnWindow& w, double* e1, double* e2) {
  const double s = consts<double>::inv_sqrt2;
  if (!(w.valid && w.b > kTnDeep)) return false;
  *e1 = -w.a * s;                            // erfc(-a / sqrt 2) = 2 Phi(a)
  *e2 = w.b <= 0.0 ? -w.b * s : w.b * s;     // 2 Phi(b) if b <= 0, else 2 Phi(-b) (0 for b = inf)
  return true;
}

GK_HD TnState tn_direct_state(const TnWindow& w, double ca, double cq) {
  TnState st;
  st.w = w;
  st.direct = true;
  st.la = st.lz = 0.0;
  st.ca = ca;
  st.cq = cq;
  st.z2 = w.b <= 0.0 ? cq - ca : (2.0 - ca) - cq;
  return st;
}

GK_HD TnState tn_prepare(double loc, double scale, double low, double high) {
  const TnWindow w = tn_window(loc, scale, low, high);
  double e1, e2;
  if (tn_direct_erfc_args(w, &e1, &e2)) return tn_direct_state(w, gk_erfc(e1), gk_erfc(e2));
  TnState st;
  st.w = w;
  st.direct = w.b > kTnDeep;
  st.ca = st.cq = st.z2 = st.la = st.lz = 0.0;
  if (!w.valid) return st;
  st.la = log_ndtr(w.a);   // the whole window deep in the lower tail: log space
  st.lz = log_ndtr_diff(w.b, w.a);
  return st;
}

// The direct branch of the oriented quantile (st.direct, a valid window; u the oriented probability) split
// for loops that evaluate the normal quantile of many elements at once. Returns 0 when *x is the quantile
// already (u at an end of the window, or a probability below kTnTinyP, inverted here in log space), +1 when
// x = std_normal_icdf_lower(*q) and -1 when x = -std_normal_icdf_lower(*q).
GK_HD int tn_direct_quantile_arg(const TnState& st, double u, double* q, double* x) {
  const double a = st.w.a, b = st.w.b;
  if (u <= 0.0) {
    *x = a;
    return 0;
  }
  if (u >= 1.0) {
    *x = b;
    return 0;
  }
  const double p = 0.5 * (st.ca + u * st.z2);  // Phi(a) + u Z
  if (b <= 0.0 || p <= 0.5) {
    // below the median: p inverted directly (in log space when it is tiny; u Z itself may underflow)
    if (p >= kTnTinyP) {
      *q = p;
      return 1;
    }
    *x = tn_log_ndtri(logaddexp(log_ndtr(a), gk_log(u) + gk_log(0.5 * st.z2)));
    return 0;
  }
  // a < 0 < b <= |a|, above the median: 1 - p = Phi(-b) + (1 - u) Z from the upper tail mass, exact
  // (>= (1 - u) Z / 2 with 1 - u >= 2^-53 and Z ~ 1 here: never tiny)
  *q = 0.5 * (st.cq + (1.0 - u) * st.z2);
  return -1;
}

// The oriented standardized quantile x in [a, b] at oriented probability u (F(x) = u in the window).
GK_HD double tn_oriented_icdf(const TnState& st, double u, bool polish = true) {
  double x, q;
  if (st.direct) {
    const int k = tn_direct_quantile_arg(st, u, &q, &x);
    if (k != 0) x = k * std_normal_icdf_lower(q, polish);
  } else if (u <= 0.0) {
    x = st.w.a;
  } else if (u >= 1.0) {
    x = st.w.b;
  } else {
    // the whole window deep in the lower tail: log(Phi(a) + u Z), all in log space
    x = tn_log_ndtri(logaddexp(st.la, gk_log(u) + st.lz));
  }
  return x;
}

// The mirrored window's CDF runs backwards: its oriented probability is 1 - p.
GK_HD double tn_oriented_u(const TnWindow& w, double p) { return w.sign > 0.0 ? p : 1.0 - p; }

// z from the oriented quantile x: x onto the window (rounding can leave it a few ulp outside), then
// z = loc + scale sign x onto [low, high].
GK_HD double tn_icdf_finish(const TnWindow& w, double x, double loc, double scale, double low, double high) {
  if (x < w.a) x = w.a;
  if (x > w.b) x = w.b;
  double z = loc + scale * (w.sign * x);
  if (z < low) z = low;
  if (z > high) z = high;
  return z;
}

// z = F^-1(p) from a prepared window (loc and scale as given to tn_prepare). polish = false skips the
// quantile's Halley step (std_normal_icdf_lower): for results rounded to float or narrower.
GK_HD double tn_icdf_from(const TnState& st, double p, double loc, double scale, double low, double high,
                          bool polish = true) {
  if (!st.w.valid || !(p >= 0.0 && p <= 1.0)) return quiet_nan<double>();
  return tn_icdf_finish(st.w, tn_oriented_icdf(st, tn_oriented_u(st.w, p), polish), loc, scale, low, high);
}

// T is the result's type: p may be wider (a double probability for a float sample).
template <typename T, typename P>
GK_HD T truncated_normal_icdf(P p, T loc, T scale, T low, T high) {
  const TnState st = tn_prepare(loc, scale, low, high);
  return T(tn_icdf_from(st, p, loc, scale, low, high, sizeof(T) >= 8));
}

// o[0..3] = g * (dz/dloc, dz/dscale, dz/dlow, dz/dhigh) for a sample z = F^-1(p) of the truncated Normal
// (p the probability it was drawn at). With x the oriented standardized sample and F its oriented CDF value
// (p, or 1 - p where the window is mirrored: both F and 1 - F are exact from p), eq. 8 gives
//   dx/da = phi(a) (1 - F) / phi(x) = exp((x - a)(x + a) / 2) (1 - F),
//   dx/db = phi(b) F / phi(x)       = exp((x - b)(x + b) / 2) F,
// 0 at an infinite bound (exp(-inf)); the first exponential is <= 1 (x^2 <= a^2 since a + b <= 0), the
// second is combined with log F where it would overflow (x deep in a long window). The sample moves with a
// common shift or scaling of loc and the bounds: dz/dloc = 1 - dx/da - dx/db, dz/dscale =
// sign (x - a dx/da - b dx/db) (an infinite bound's term is 0), dz/d(oriented low, high) = (dx/da, dx/db),
// swapped back where the window was mirrored. The same values as gradkern/distributions/_truncated.py's
// differentiable _partials (which recompute F from z and serve the higher derivatives); no erfc here.
// truncated_normal_backward in two halves, for loops that evaluate the exponentials of many elements at once
// (the CPU kernel's batched exp): tn_backward_args gives the oriented sample and the exponents of the two
// phi ratios, tn_backward_from the four outputs from their exponentials. truncated_normal_backward is
// exactly tn_backward_from(r, g, exp(r.la), exp(r.lb), o).
struct TnGradArgs {
  TnWindow w;
  double x;       // the oriented standardized sample, on the window
  double f, f1;   // the oriented F and 1 - F
  double la, lb;  // dx/da = exp(la) (1 - F); dx/db = exp(lb) F, or exp(lb) alone where log F is folded in
  bool fold_b;    // lb includes log F (exp of the ratio's exponent alone would overflow)
  bool ok;        // a valid window, sample and probability
};

GK_HD TnGradArgs tn_backward_args(double z, double p, double loc, double scale, double low, double high) {
  TnGradArgs r;
  r.w = tn_window(loc, scale, low, high);
  const double a = r.w.a, b = r.w.b;
  double x = r.w.sign * (z - loc) / scale;
  if (x < a) x = a;  // a sample rounded onto or just past a bound: the bound's limit
  if (x > b) x = b;
  r.x = x;
  r.ok = r.w.valid && !gk_isnan(x) && p >= 0.0 && p <= 1.0;
  const bool flip = r.w.sign < 0.0;
  r.f = flip ? 1.0 - p : p;
  r.f1 = flip ? p : 1.0 - p;
  r.la = 0.5 * (x - a) * (x + a);  // <= 0: x^2 <= a^2 since a + b <= 0; -inf at a = -inf
  const double eb = 0.5 * (x - b) * (x + b);
  r.fold_b = !(eb < 700.0);
  r.lb = !r.fold_b ? eb : (r.f > 0.0 ? eb + gk_log(r.f) : -infinity<double>());
  if (!r.ok) r.la = r.lb = 0.0;  // keep the batched exp finite; the outputs are NaN
  return r;
}

template <typename T>
GK_HD void tn_backward_from(const TnGradArgs& r, double g, double ea, double eb, T* o) {
  if (!r.ok) {
    for (int j = 0; j < 4; ++j) o[j] = quiet_nan<T>();
    return;
  }
  const double a = r.w.a, b = r.w.b;
  const double da = ea * r.f1, db = r.fold_b ? eb : eb * r.f;
  const double ta = !gk_isfinite(a) ? 0.0 : a * da, tb = !gk_isfinite(b) ? 0.0 : b * db;
  const bool flip = r.w.sign < 0.0;
  o[0] = T(g * (1.0 - da - db));
  o[1] = T(g * (r.w.sign * (r.x - ta - tb)));
  o[2] = T(g * (flip ? db : da));
  o[3] = T(g * (flip ? da : db));
}

template <typename T, typename P>
GK_HD void truncated_normal_backward(T g_, T z_, P p_, T loc_, T scale_, T low_, T high_, T* o) {
  const TnGradArgs r = tn_backward_args(z_, p_, loc_, scale_, low_, high_);
  tn_backward_from(r, double(g_), gk_exp(r.la), gk_exp(r.lb), o);
}

}  // namespace core
}  // namespace gradkern
