// gradkern numerical core: elementary special functions used by the incomplete gamma code.
//
// digamma(a)          psi(a) for a > 0 (NaN for a <= 0 or NaN; no reflection needed by the callers).
// log_pos(x)          log x for normal x > 0, branch-free (vectorizes; ~1 ulp).
// log_minus_digamma(x, a)  log(x) - psi(a) with one log_pos (x > 0).
// log1pmx(t)          log(1 + t) - t, accurate for small |t| (NaN for t < -1, -inf at t = -1).
// gamma_star(a)       Stirling-regulated gamma Gamma*(a) = Gamma(a) / (sqrt(2 pi / a) a^a e^-a),
// inv_gamma_star(a)   and its reciprocal, by the asymptotic series in 1/a; valid for a >= 10.
// lgamma1p(a)         log Gamma(1 + a), accurate for small a (used by the value functions).
//
// All are host+device, float/double, without lgamma/exp on the gradient path.
#pragma once

#include "common.h"

namespace gradkern {
namespace core {

// tgamma is not among common.h's wrappers; the same float/double mapping (host and device libm).
GK_HD float gk_tgamma(float x) { return ::tgammaf(x); }
GK_HD double gk_tgamma(double x) { return ::tgamma(x); }

namespace detail {
// psi(a) is evaluated by upward recurrence to a >= shift, then the asymptotic series
// psi(a) = log a - 1/(2a) - sum_k B_2k / (2k a^2k). Truncation error of the 7 terms below at the
// shift point: double (a >= 10) ~4e-17, float (a >= 4) ~1e-10.
template <typename T> struct digamma_shift;
template <> struct digamma_shift<float> { static constexpr float value = 4.0f; };
template <> struct digamma_shift<double> { static constexpr double value = 10.0; };
}  // namespace detail

// log(x) + k0 ln 2 for finite x >= min_normal (x > 0 normal), branch-free so that CPU loops vectorize it
// (libm's log does not), within about 1 ulp. x = 2^k m with m in [sqrt(1/2), sqrt(2)) read from the bits
// (adding 1.0 - sqrt(1/2) to the bit pattern carries into the exponent exactly when the mantissa is
// >= sqrt(2)); f = m - 1 is exact; with s = f/(2+f), log(1+f) = 2 atanh(s) = f - f^2/2 + s (f^2/2 + R),
// R = sum_{j>=1} 2 s^2j/(2j+1) (|s| <= 0.172: 10 terms in double, 4 in float, truncation below 2^-56 /
// 2^-27 relative); k ln2_hi is exact (ieee<T> in common.h).
template <typename T> GK_HD_FORCE T log_pos(T x, int k0 = 0) {
  typedef ieee<T> F;
  typedef typename F::U U;
  const U u = to_bits(x) + (F::one_bits - F::sqrt_half_bits);
  const int k = static_cast<int>(u >> F::mant) - static_cast<int>(F::bias) + k0;
  const T f = from_bits<T>((u & F::mant_mask) + F::sqrt_half_bits) - T(1);
  const T s = f / (T(2) + f);
  const T z = s * s;
  T R;
  if (sizeof(T) == 8) {
    R = T(2.0 / 21);
    R = R * z + T(2.0 / 19); R = R * z + T(2.0 / 17); R = R * z + T(2.0 / 15); R = R * z + T(2.0 / 13);
    R = R * z + T(2.0 / 11); R = R * z + T(2.0 / 9); R = R * z + T(2.0 / 7); R = R * z + T(2.0 / 5);
    R = R * z + T(2.0 / 3);
  } else {
    R = T(2.0 / 9);
    R = R * z + T(2.0 / 7); R = R * z + T(2.0 / 5); R = R * z + T(2.0 / 3);
  }
  R *= z;
  const T hfsq = T(0.5) * f * f;
  const T dk = T(k);
  return dk * F::ln2_hi + (f - (hfsq - (s * (hfsq + R) + dk * F::ln2_lo)));
}

// log(1 + t) from the branch-free log above for t > -1: y = 1 + t rounded, less the rounding error's
// first-order effect ((y - 1) - t) / y (y - 1 is exact for y >= 1/2 and y = 1 + t exactly below; (y - 1) - t
// is the rounding error itself for |t| < 1); within a few ulps, and about a third of libm's log1p's time where
// it is inlined (libm's log1p was an eighth of Wood's sampler's time in vmf.h, and a sixth of
// standard_beta_grad's in ibeta.h). t <= -1, +inf and NaN go to libm's log1p (-inf, NaN, +inf).
template <typename T> GK_HD_FORCE T log1p_fast(T t) {
  const T y = T(1) + t;
  const T r = log_pos(y) - ((y - T(1)) - t) / y;
  return (t > T(-1) && gk_isfinite(t)) ? r : gk_log1p(t);
}
// log x for x > 0 through log_pos where x is normal (libm's log for a subnormal x, 0 and the rest).
template <typename T> GK_HD_FORCE T log_fast(T x) {
  return (x >= num<T>::min_normal && gk_isfinite(x)) ? log_pos(x) : gk_log(x);
}

namespace detail {
// Shared core of psi: shifts a upward to as >= digamma_shift, returns psi(a) - log(as). The shift is a
// fixed number of steps, each applied only while a < shift (enough for any a > 0), so that the function
// has no data-dependent loop and vectorizes.
template <typename T> GK_HD T digamma_minus_log_shifted(T a, T& as) {
  // Sum of 1/(a+k) over the recurrence steps, kept as one fraction nsum/den so that only one
  // division is paid; den <= a * 10! stays far from overflow/underflow for a >= 1e-30.
  constexpr int steps = static_cast<int>(digamma_shift<T>::value);
  T nsum = T(0), den = T(1);
  for (int i = 0; i < steps; ++i) {
    const bool up = a < digamma_shift<T>::value;
    nsum = up ? nsum * a + den : nsum;
    den = up ? den * a : den;
    a = up ? a + T(1) : a;
  }
  as = a;
  const T r = T(1) / (a * a);
  const T tail =
      r * (T(1.0 / 12) -
           r * (T(1.0 / 120) -
                r * (T(1.0 / 252) -
                     r * (T(1.0 / 240) - r * (T(1.0 / 132) - r * (T(691.0 / 32760) - r * T(1.0 / 12)))))));
  return -T(0.5) / a - tail - nsum / den;
}
}  // namespace detail

template <typename T> GK_HD T digamma(T a) {
  if (!(a > T(0))) return quiet_nan<T>();  // a <= 0 or NaN
  if (!(a < infinity<T>())) return a;       // psi(+inf) = +inf
  T as;
  const T rest = detail::digamma_minus_log_shifted(a, as);
  return gk_log(as) + rest;
}

// log(x) - psi(a) for x > 0, a > 0 (finite) with a single log: log(x / as) - (psi(a) - log(as)),
// as the shifted argument.
template <typename T> GK_HD T log_minus_digamma(T x, T a) {
  if (!(a > T(0))) return quiet_nan<T>();
  T as;
  const T rest = detail::digamma_minus_log_shifted(a, as);
  // Where x / as would be subnormal (inexact, and ~100x slower on x86): log(x 2^64) - 64 ln 2 - log(as)
  // (2^32 in float), x 2^64 being exact and normal for every positive x. Written with selects, so that
  // vectorized callers pay for the second log_pos but never branch.
  constexpr int kscale = sizeof(T) == 8 ? 64 : 32;
  const T scale = sizeof(T) == 8 ? T(18446744073709551616.0) : T(4294967296.0);
  const bool tiny = x < num<T>::min_normal * as;
  const T l = log_pos(tiny ? x * scale : x / as, tiny ? -kscale : 0);
  const T las = log_pos(as);
  return (tiny ? l - las : l) - rest;
}

// psi'(a) (trigamma) for a > 0: upward recurrence psi'(a) = psi'(a + 1) + 1/a^2 to a >= digamma_shift,
// then the asymptotic series psi'(a) = 1/a + 1/(2a^2) + sum_k B_2k / a^(2k+1). Truncation at the shift:
// double (a >= 10, through B_16) ~6e-17 relative, float (a >= 4) ~4e-9. Used by the second derivatives of
// the incomplete gamma (igamma_d2.h): d2/da2 log Gamma(a) = psi'(a). NaN for a <= 0 or NaN, 0 at +inf.
// The recurrence's first term 1/a^2 is taken alone (a may be tiny); the others, whose arguments are >= 1,
// are kept as one fraction N/D (N/D + 1/u^2 = (N u^2 + D) / (D u^2); D < 2e15), so that the
// function pays three divisions instead of eleven.
template <typename T> GK_HD T trigamma(T a) {
  if (!(a > T(0))) return quiet_nan<T>();
  if (!(a < infinity<T>())) return T(0);
  constexpr int steps = static_cast<int>(detail::digamma_shift<T>::value);
  const bool up0 = a < detail::digamma_shift<T>::value;
  const T s0 = up0 ? T(1) / (a * a) : T(0);
  a = up0 ? a + T(1) : a;
  T N = T(0), D = T(1);
  for (int i = 1; i < steps; ++i) {
    const bool up = a < detail::digamma_shift<T>::value;
    const T u2 = a * a;
    N = up ? N * u2 + D : N;
    D = up ? D * u2 : D;
    a = up ? a + T(1) : a;
  }
  const T w = T(1) / a, r = w * w;
  const T tail =
      r * (T(1.0 / 6) -
           r * (T(1.0 / 30) -
                r * (T(1.0 / 42) -
                     r * (T(1.0 / 30) - r * (T(5.0 / 66) - r * (T(691.0 / 2730) - r * (T(7.0 / 6) - r * T(3617.0 / 510))))))));
  return s0 + N / D + w * (T(1) + T(0.5) * w + tail);
}

// log(1+t) - t. With u = t/(2+t): log(1+t) = 2 atanh(u) = 2(u + u^3/3 + ...), and 2u - t = -t^2/(2+t)
// exactly, so log1pmx = -t^2/(2+t) + 2 u^3 sum_{j>=0} u^(2j)/(2j+3) without cancellation.
// For t in [-0.7, 1.5], |u| <= 0.54 (u^2 <= 0.29); the Horner length is picked from u^2 so that the
// dropped term u2^J/(2J+3) is below ~eps/50 relative to the first (1/3). Outside that range,
// log1p(t) - t loses at most ~1.5 bits.
template <typename T> GK_HD T log1pmx(T t) {
  if (!(t >= T(-1))) return quiet_nan<T>();
  if (t < T(-0.7) || t > T(1.5)) return gk_log1p(t) - t;
  const T u = t / (T(2) + t);
  const T u2 = u * u;
  const bool dbl = sizeof(T) == 8;
  const int J = u2 < T(1e-3) ? (dbl ? 6 : 3)
              : u2 < T(1e-2) ? (dbl ? 9 : 4)
              : u2 < T(0.05) ? (dbl ? 13 : 7)
              : u2 < T(0.15) ? (dbl ? 20 : 10)
                             : (dbl ? 32 : 16);
  // 1/(2j+3), j = 0..31 (exact rationals rounded once; no division in the loop).
  static constexpr T inv_odd[32] = {
      T(1.0 / 3),  T(1.0 / 5),  T(1.0 / 7),  T(1.0 / 9),  T(1.0 / 11), T(1.0 / 13), T(1.0 / 15),
      T(1.0 / 17), T(1.0 / 19), T(1.0 / 21), T(1.0 / 23), T(1.0 / 25), T(1.0 / 27), T(1.0 / 29),
      T(1.0 / 31), T(1.0 / 33), T(1.0 / 35), T(1.0 / 37), T(1.0 / 39), T(1.0 / 41), T(1.0 / 43),
      T(1.0 / 45), T(1.0 / 47), T(1.0 / 49), T(1.0 / 51), T(1.0 / 53), T(1.0 / 55), T(1.0 / 57),
      T(1.0 / 59), T(1.0 / 61), T(1.0 / 63), T(1.0 / 65)};
  T s = T(0);
  for (int j = J - 1; j >= 0; --j) s = s * u2 + inv_odd[j];
  return -t * u + T(2) * u * u2 * s;  // t^2/(2+t) = t u
}

namespace detail {
// Stirling coefficients g_k: Gamma*(a) ~ sum_k g_k a^-k; 1/Gamma*(a) ~ sum_k (-1)^k g_k a^-k.
// Generated by tools/gen_temme_coeffs.py (GK_STIRLING_G_TABLE). Truncation error at a = 10: double
// (12 terms) ~ g_12 1e-12 ~ 6e-15 relative ... measured in tests; float (6 terms) ~ 7e-11.
#define GK_STIRLING_G                                                                            \
  {1.0, 8.3333333333333333333e-2, 3.4722222222222222222e-3, -2.6813271604938271605e-3,           \
   -2.2947209362139917695e-4, 7.8403922172006662747e-4, 6.9728137583658577743e-5,                \
   -5.9216643735369388286e-4, -5.1717909082605921934e-5, 8.3949872067208727999e-4,               \
   7.2048954160200105591e-5, -1.9144384985654775265e-3}
template <typename T> struct stirling_terms;
template <> struct stirling_terms<float> { static constexpr int value = 6; };
template <> struct stirling_terms<double> { static constexpr int value = 12; };
}  // namespace detail

// Gamma*(a), a >= 10 (asymptotic; larger a -> more accurate). `terms` (<= 12) lets callers that
// know a is large drop terms below eps; default: enough for a >= 10.
template <typename T> GK_HD T gamma_star_w(T w, int terms = detail::stirling_terms<T>::value) {
  // Same as gamma_star(1/w), for callers that already hold w = 1/a.
  static constexpr double g[12] = GK_STIRLING_G;
  T s = T(0);
  for (int k = (terms < 12 ? terms : 12) - 1; k >= 0; --k) s = s * w + T(g[k]);
  return s;
}

template <typename T> GK_HD T gamma_star(T a, int terms = detail::stirling_terms<T>::value) {
  static constexpr double g[12] = GK_STIRLING_G;
  const T w = T(1) / a;
  T s = T(0);
  for (int k = (terms < 12 ? terms : 12) - 1; k >= 0; --k) s = s * w + T(g[k]);
  return s;
}

template <typename T> GK_HD T inv_gamma_star(T a, int terms = detail::stirling_terms<T>::value) {
  static constexpr double g[12] = GK_STIRLING_G;
  const T w = -T(1) / a;
  T s = T(0);
  for (int k = (terms < 12 ? terms : 12) - 1; k >= 0; --k) s = s * w + T(g[k]);
  return s;
}

// log Gamma(1 + a). For |a| <= 0.2 the Taylor series -euler_gamma a + sum_k (-1)^k zeta(k)/k a^k
// (the libm call on 1 + a would lose the low bits of a); otherwise libm lgamma.
template <typename T> GK_HD T lgamma1p(T a) {
  if (gk_fabs(a) <= T(0.2)) {
    // (-1)^k zeta(k)/k, k = 2..25 (tools/gen_temme_coeffs.py, GK_LGAMMA1P_TABLE)
    static constexpr double c[24] = {
        0.82246703342411321824, -0.40068563438653142847, 0.27058080842778454788,
        -0.20738555102867398527, 0.16955717699740818995, -0.14404989676884611812,
        0.12550966952474304242, -0.11133426586956469049, 0.10009945751278180853,
        -0.090954017145829042233, 0.083353840546109004025, -0.076932516411352191473,
        0.071432946295361336059, -0.066668705882420468033, 0.062500955141213040742,
        -0.058823978658684582339, 0.055555767627403611102, -0.052631679379616660734,
        0.05000004769810169364, -0.047619070330142227991, 0.045454556293204669442,
        -0.043478266053040259361, 0.041666669150341210469, -0.040000001192140140586};
    T s = T(0);
    for (int k = 23; k >= 0; --k) s = s * a + T(c[k]);
    return a * (a * s - consts<T>::euler_gamma);
  }
  return gk_lgamma(T(1) + a);
}

}  // namespace core
}  // namespace gradkern
