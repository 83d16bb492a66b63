// gradkern numerical core: the standard normal distribution, accurate in both tails.
//
// std_normal_cdf(x), std_normal_ccdf(x)  Phi(x) and 1 - Phi(x), each without cancellation in its tail.
// std_normal_icdf_start(p)               Abramowitz & Stegun 26.2.23 for p in (0, 1/2] (|error| < 4.5e-4):
//                                        the starting value of every normal / Wilson-Hilferty inversion.
// std_normal_icdf(p)                     Phi^-1(p) (that start, Halley polish on Phi).
// std_normal_icdf_lower(p)               Phi^-1(p) for p in [1e-281, 1/2], double: fitted start, one Halley step.
// log_ndtr(x)                            log Phi(x) (asymptotic series deep in the lower tail).
// log_ndtr_diff(a, b)                    log(Phi(a) - Phi(b)), a >= b, in the tail that keeps it exact.
// ndtr_diff_scaled(a, b, l)              (Phi(a) - Phi(b)) e^l without overflow of e^l or underflow of
//                                        the difference (the mixture fluxes); split_ndtr_diff_scaled
//                                        returns its erfc/exp arguments for batched evaluation.
// log1mexp(x), logaddexp(a, b)           log(1 - e^x) and log(e^a + e^b), the log-space helpers.
#pragma once

#include "common.h"

namespace gradkern {
namespace core {

// log(1 - e^x) for x <= 0 (Maechler's two branches: expm1 near 0, log1p far from it).
template <typename T>
GK_HD T log1mexp(T x) {
  if (gk_isnan(x) || x > T(0)) return quiet_nan<T>();
  return x > -consts<T>::ln2 ? gk_log(-gk_expm1(x)) : gk_log1p(-gk_exp(x));
}

// log(e^a + e^b) without overflow.
template <typename T>
GK_HD T logaddexp(T a, T b) {
  if (a == neg_inf<T>()) return b;
  if (b == neg_inf<T>()) return a;
  const T m = gk_max(a, b);
  return m + gk_log1p(gk_exp(-gk_fabs(a - b)));
}

// Standard normal quantile for p in (0, 0.5], Abramowitz & Stegun 26.2.23 (|error| < 4.5e-4):
// only ever a starting value.
template <typename T> GK_HD T std_normal_icdf_start(T p) {
  const T t = gk_sqrt(T(-2) * gk_log(p));
  return -(t - (T(2.515517) + t * (T(0.802853) + t * T(0.010328))) /
                   (T(1) + t * (T(1.432788) + t * (T(0.189269) + t * T(0.001308)))));
}

// Phi(x) = erfc(-x / sqrt 2) / 2: erfc keeps full relative accuracy in the lower tail, where
// 1 - erfc(...) / 2 would cancel. Phi(+-inf) = 1, 0; NaN propagates.
template <typename T> GK_HD T std_normal_cdf(T x) { return T(0.5) * gk_erfc(-x * consts<T>::inv_sqrt2); }
// 1 - Phi(x) = Phi(-x), accurate in the upper tail.
template <typename T> GK_HD T std_normal_ccdf(T x) { return T(0.5) * gk_erfc(x * consts<T>::inv_sqrt2); }

// Phi^-1(p). Start from std_normal_icdf_start, then Halley
// steps on Phi(x) - q, which converge cubically: two steps reach double precision, the cap is 6.
// Works on the lower half q = min(p, 1 - p) (1 - p is exact for p >= 1/2), so both tails keep full
// relative accuracy; the sign is restored at the end.
template <typename T> GK_HD T std_normal_icdf(T p) {
  if (!(p >= T(0) && p <= T(1))) return quiet_nan<T>();
  if (p == T(0)) return -infinity<T>();
  if (p == T(1)) return infinity<T>();
  const bool upper = p > T(0.5);
  const T q = upper ? T(1) - p : p;
  T x = std_normal_icdf_start(q);
  for (int i = 0; i < 6; ++i) {
    // d = (Phi(x) - q) / phi(x); Halley: x -= d / (1 + x d / 2) (phi'/phi = -x).
    const T phi = gk_exp(T(-0.5) * x * x) / consts<T>::sqrt_2pi;
    if (!(phi > T(0))) break;  // deep tail where phi underflows: the A&S start is all we can do
    const T d = (std_normal_cdf(x) - q) / phi;
    const T step = d / (T(1) + T(0.5) * x * d);
    x -= step;
    if (gk_fabs(step) <= T(4) * num<T>::eps * gk_fabs(x)) break;
  }
  return upper ? -x : x;
}

// Phi^-1(p) for p in (0, 1/2] in double, for the hot loops (the truncated Normal's quantile kernel): one
// polynomial starting value and one Halley step, no loop. The starting values are this project's own
// least-squares fits (Chebyshev nodes, mpmath truth at 30 digits; relative error <= 2.4e-8 on their
// ranges): x = q P(q^2 / 0.08 - 1) for p >= 0.1 (q = p - 1/2), and x = -r + T(t) with r = sqrt(-2 log p),
// t linear in 1/r, for r <= 6 and 6 < r <= 36 (p down to 1e-281). The Halley step on Phi(x) - p cubes the
// error (to <= 1e-22 relative), so the result is exact to rounding: it carries the residual's rounding,
// 1-3 ulp (tests/test_truncated.py). The residual is formed as erf(x / sqrt 2) / 2 - q where q is exact
// (p >= 1/4), else from erfc in the lower tail.
// std_normal_icdf_lower in parts, for loops that evaluate its elementary functions for many p at once:
// the fitted start from p and log p (log p is read only for p < 0.1), and the Halley step from the start x,
// c = erf(x / sqrt 2) if p >= 0.25 else erfc(-x / sqrt 2), and e = exp(x^2 / 2). std_normal_icdf_lower is
// exactly these with the libm values.
// The fitted start's two branches (std_normal_icdf_fit chooses by p): the central fit for p >= 0.1, and the
// tail fits in r = sqrt(-2 log p) below (loops that sort their elements by branch call these directly).
// The fits' polynomials, templated so that the CPU's lane-parallel kernels (cpu/truncnorm_block.h, GNU vectors
// of double) evaluate the same tables as the scalar functions below (V = double: the same operations, in the
// same order, as a plain Horner loop from the top coefficient).
template <typename V> GK_HD V icdf_central_poly(V q) {
  constexpr double kC[11] = {2.7641859422419905, 0.31925436697159343, 0.08060639206561633, 0.025417287346190833, 0.008909252856777987, 0.003357468961311913, 0.0013126701300590813, 0.00044643516264256507, 0.0001724659836250887, 0.00014973084515796633, 6.68640751554644e-05};
  const V t = q * q * (1.0 / 0.08) - 1.0;
  V s = t * kC[10] + kC[9];
  for (int i = 8; i >= 0; --i) s = s * t + kC[i];
  return q * s;
}

// v = 1 / r, r = sqrt(-2 log p): the fit for r <= 6 (near) and for r > 6 (far).
template <typename V> GK_HD V icdf_tail_near_poly(V v) {
  constexpr double kT1[9] = {0.6914710165447774, 0.1958471581263764, -0.027211236373764932, 0.005329070270986413, -0.0013058177469362831, 0.0003610819859046031, -0.00011060952473035766, 5.597046981593386e-05, -2.2207227239166414e-05};
  const V t = (v - 0.16666666666666666) * (2.0 / (0.46599060178465607 - 0.16666666666666666)) - 1.0;
  V s = t * kT1[8] + kT1[7];
  for (int i = 6; i >= 0; --i) s = s * t + kT1[i];
  return s;
}

template <typename V> GK_HD V icdf_tail_far_poly(V v) {
  constexpr double kT2[11] = {0.3187767755711719, 0.1608544469213527, -0.02281712920668642, 0.005902664350511629, -0.00209371090488225, 0.001002171534938243, -0.0005712177419311354, 4.23578211701123e-05, 8.608136009446898e-05, 0.00020678943387370484, -0.00016150339540520434};
  const V t = (v - 0.027777777777777776) * (2.0 / (0.16666666666666666 - 0.027777777777777776)) - 1.0;
  V s = t * kT2[10] + kT2[9];
  for (int i = 8; i >= 0; --i) s = s * t + kT2[i];
  return s;
}

GK_HD double std_normal_icdf_central(double p) { return icdf_central_poly(p - 0.5); }

GK_HD double std_normal_icdf_tail(double log_p) {
  const double r = gk_sqrt(-2.0 * log_p), v = 1.0 / r;
  return (r <= 6.0 ? icdf_tail_near_poly(v) : icdf_tail_far_poly(v)) - r;
}

GK_HD double std_normal_icdf_fit(double p, double log_p) {
  return p >= 0.1 ? std_normal_icdf_central(p) : std_normal_icdf_tail(log_p);
}

GK_HD double std_normal_icdf_halley(double x, double p, double c, double e) {
  const double resid = p >= 0.25 ? 0.5 * c - (p - 0.5) : 0.5 * c - p;
  const double d = resid * consts<double>::sqrt_2pi * e;  // (Phi(x) - p) / phi(x)
  return x - d / (1.0 + 0.5 * x * d);
}

GK_HD double std_normal_icdf_lower(double p, bool polish = true) {
  const double x = std_normal_icdf_fit(p, p < 0.1 ? gk_log(p) : 0.0);
  if (!polish) return x;  // the fit alone, for float results
  const double s2 = consts<double>::inv_sqrt2;
  return std_normal_icdf_halley(x, p, p >= 0.25 ? gk_erf(x * s2) : gk_erfc(-x * s2), gk_exp(0.5 * x * x));
}

// Below this argument erfc(-x / sqrt 2) would lose the last bits to underflow, and the asymptotic
// series for log Phi has converged to working precision (terms (2n-1)!!/x^{2n}).
template <typename T> struct ndtr_limits;
template <> struct ndtr_limits<float> { static constexpr float asym = -10.0f; };
template <> struct ndtr_limits<double> { static constexpr double asym = -20.0; };

// log Phi(x), Phi the standard Normal CDF, accurate in both tails.
template <typename T>
GK_HD T log_ndtr(T x) {
  if (gk_isnan(x)) return x;
  const T t = x * consts<T>::inv_sqrt2;
  // Upper half: Phi = 1 - erfc(x/sqrt2)/2 has no cancellation inside log1p.
  if (x > T(-1)) return gk_log1p(T(-0.5) * gk_erfc(t));
  if (x > ndtr_limits<T>::asym) return gk_log(T(0.5) * gk_erfc(-t));
  // Lower tail: Phi(x) = phi(x)/(-x) * sum_n (-1)^n (2n-1)!! / x^{2n} (asymptotic, |x| >= 10).
  const T x2inv = T(1) / (x * x);
  T term = T(1), sum = T(1);
  for (int n = 1; n < 32; ++n) {  // cap: converged after < 12 terms at the thresholds above
    term *= -T(2 * n - 1) * x2inv;
    sum += term;
    if (gk_fabs(term) < num<T>::eps * sum) break;
  }
  return T(-0.5) * x * x - gk_log(-x) - consts<T>::log_sqrt_2pi + gk_log(sum);
}

// log(Phi(a) - Phi(b)) for a >= b, computed in whichever tail keeps the difference exact.
template <typename T>
GK_HD T log_ndtr_diff(T a, T b) {
  if (gk_isnan(a) || gk_isnan(b) || a < b) return quiet_nan<T>();
  if (a == b) return neg_inf<T>();
  if (b > T(0)) {  // both in the upper tail: Phi(a) - Phi(b) = Phi(-b) - Phi(-a)
    const T na = -b, nb = -a;
    a = na;
    b = nb;
  }
  if (a <= T(0)) {  // both in the lower tail: factor out the larger CDF
    const T la = log_ndtr(a), lb = log_ndtr(b);
    return la + log1mexp(gk_min(lb - la, T(0)));
  }
  // b <= 0 < a: the difference is at least Phi(a) - 1/2, no cancellation.
  const T s = consts<T>::inv_sqrt2;
  return gk_log1p(-T(0.5) * (gk_erfc(-b * s) + gk_erfc(a * s)));
}

// (Phi(a) - Phi(b)) * exp(l_scale) for a >= b: the flux magnitudes of eqs. 15 and 50, where exp(l_scale)
// (a Gaussian factor over q) may be huge while the CDF difference is tiny. While the smaller tail masses
// are representable, the difference is taken directly from the two tail masses (erfc, no cancellation
// within each; absolute error eps * Phi(a) in the lower tail, as good as the sum of terms needs and two
// logarithms cheaper); deep in a tail it falls back to log space.
template <typename T>
GK_HD T ndtr_diff_scaled(T a, T b, T l_scale) {
  if (a == b) return T(0);
  if (b > T(0)) {  // mirror into the lower tail, where the tail masses carry the digits
    const T na = -b, nb = -a;
    a = na;
    b = nb;
  }
  const T scale = gk_exp(l_scale);
  if (scale < num<T>::max * T(1e-4)) {
    const T s = consts<T>::inv_sqrt2;
    if (a <= T(0) && a > ndtr_limits<T>::asym) {
      return T(0.5) * (gk_erfc(-a * s) - gk_erfc(-b * s)) * scale;
    }
    if (a > T(0)) return (T(1) - T(0.5) * (gk_erfc(a * s) + gk_erfc(-b * s))) * scale;  // b <= 0 < a
  }
  return gk_exp(log_ndtr_diff(a, b) + l_scale);
}

// ndtr_diff_scaled(a, b, l_scale) split for batched evaluation. Returns 0 when the caller must use
// ndtr_diff_scaled itself (deep lower tail or a huge scale: the log-space branch). Otherwise the value
// is, with E1 = erfc(*e1), E2 = erfc(*e2), S = exp(l_scale) evaluated later by the caller,
//   kind 1 (both arguments in the lower tail):  0.5 (E1 - E2) S
//   kind 2 (arguments on both sides of 0):       (1 - 0.5 (E1 + E2)) S
// the same two direct branches as ndtr_diff_scaled (same arguments, same arithmetic). Callers pass
// a >= b; anything else (and NaN) is left to ndtr_diff_scaled.
template <typename T>
GK_HD int split_ndtr_diff_scaled(T a, T b, T l_scale, T* e1, T* e2) {
  const T s = consts<T>::inv_sqrt2;
  // scale < max * 1e-4 in ndtr_diff_scaled, as a bound on the logarithm (NaN fails it).
  const bool small_scale = l_scale < num<T>::log_max + T(-9.2103403719761836);
  const T aa = gk_fabs(a), ab = gk_fabs(b);
  const T lo = gk_min(aa, ab), hi = gk_max(aa, ab);
  // a and b nonzero with the same sign (always so for the pairwise field's telescoping terms, whose
  // zt, zb share z - mu_j; the reference field's, with z - mu', may straddle 0: kind 2): the mirrored
  // lower-tail pair of ndtr_diff_scaled is (-hi, -lo), so E1 = erfc(lo/sqrt2), E2 = erfc(hi/sqrt2),
  // and the upper argument -lo must lie above the asymptotic-series threshold. Non-short-circuit
  // tests: the signs are random per sample and would defeat branch prediction.
  const bool same = ((a > T(0)) == (b > T(0))) & (lo > T(0)) & (a > b);  // (a > b fails for NaN)
  if (same) {
    *e1 = lo * s;
    *e2 = hi * s;
    return (small_scale & (-lo > ndtr_limits<T>::asym)) ? 1 : 0;
  }
  if (a > T(0) && b <= T(0)) {  // kind 2: nothing mirrored, E1 = erfc(a/sqrt2), E2 = erfc(-b/sqrt2)
    *e1 = aa * s;
    *e2 = ab * s;
    return small_scale ? 2 : 0;
  }
  if (a == T(0) && b < T(0)) {  // kind 1 with a = 0: E1 = erfc(0), E2 = erfc(-b/sqrt2)
    *e1 = T(0);
    *e2 = ab * s;
    return small_scale ? 1 : 0;
  }
  return 0;  // NaN, a <= b or a = b = 0: left to ndtr_diff_scaled
}

}  // namespace core
}  // namespace gradkern
