// gradkern numerical core: second derivatives of the incomplete gamma function in the shape (issue 15).
//
//   gammainc_grad_aa(a, x)                d2P/da2 (d2Q/da2 = -d2P/da2).
//   log_standard_gamma_grad_dalpha(a, L)  d/da of h = d(log x)/da (the implicit gradient in log space) at
//                                        fixed L = log x.
//   standard_gamma_grad_dalpha(a, x)      d/da of g = dx/da = x h at fixed x.
//
// With h = -(dP/da) / (x q) (igamma.h), d h / da at fixed x is D = -(d2P/da2) / (x q) - h (log x - psi(a)),
// so both gradients' a-derivatives and d2P/da2 = -x q (D + h (log x - psi(a))) come from one evaluation of
// D and E = D + h (log x - psi(a)). They are the first-order branches of igamma.h carried one order
// further in forward mode (a dual number in a, exact derivatives of every term), branch by branch:
//
//   series  x < a + 1, a below the Temme range: P = x^a e^-x / Gamma(a+1) S, S = sum t_n; with r_n =
//           sum_k<=n 1/(a+k), s_n = sum_k<=n 1/(a+k)^2: dt_n/da = -t_n r_n, d2t_n/da2 = t_n (r_n^2 + s_n).
//   CF      the Legendre continued fraction's Wallis recurrences with their first and second a-derivatives
//           (a_n and b_n are linear in a, so the second derivatives of the recurrences have no new terms).
//   Temme   a >= 20 (double) / 10 (float), |eta| <= 1: the first-order formula h = Gamma*(a) br / a
//           differentiated in a at fixed x, through eta(a), rho = t / eta, the coefficient sums and
//           Gamma*(a) (d log Gamma*(a) / da = psi(a) - log a + 1/(2a), by its asymptotic series, which
//           does not cancel).
//   bulk    where the first order evaluates the bulk polynomial (igamma_bulk.h, a >= 10 and x near a): the
//           polynomial's own derivative in a (cheaper than Temme, and the derivative of exactly what the
//           first-order op returns).
//   huge x  x > max(a, 1) 1e9 (1e5 float): the leading terms of the CF.
// float32 is computed in double and rounded once (as the incomplete beta ops do): the second-derivative
// recurrences of the continued fraction lose up to 1e-4 relative in float near x = a + 1, a ~ 10. The
// exception is the bulk path, a polynomial without cancellation, which float32 evaluates in float.
// The series and the continued fraction stop at a tolerance relative to their sums (loop_tol, common.h:
// double's eps for float64, 2^-34 for float32, which needs no more before its final rounding).
// No cancellation is introduced beyond what the values themselves have (d2P/da2 changes sign in x, as
// the density's a-derivative does). Every loop is capped at num<T>::max_iter; no allocation.
#pragma once

#include "igamma.h"

namespace gradkern {
namespace core {
namespace detail {

// d log Gamma*(a) / da = psi(a) - log a + 1/(2a) = -sum_k B_2k / (2k a^2k), a >= 10 (w = 1/a).
template <typename T> GK_HD T dlog_gamma_star(T w) {
  const T r = w * w;
  return -r * (T(1.0 / 12) -
               r * (T(1.0 / 120) -
                    r * (T(1.0 / 252) -
                         r * (T(1.0 / 240) - r * (T(1.0 / 132) - r * (T(691.0 / 32760) - r * T(1.0 / 12)))))));
}

// log x - psi(a) and psi'(a) together, for a >= 1 and x > 0 (the series and the continued fraction need both
// at a + 1): one shared upward recurrence to a >= digamma_shift, its two sums kept as fractions nsum/den
// (sum 1/u) and N/D (sum 1/u^2; den D < 1e23 for a >= 1) and divided once, 1/a shared by both asymptotic
// series: five divisions where log_minus_digamma and trigamma take nine. The CPU blocks copy these
// operations on vectors (cpu/gamma_block.h, d2v::psi_pair), so both must change together.
template <typename T> GK_HD void psi_pair(T x, T a, T& c, T& psi1) {
  constexpr int steps = static_cast<int>(digamma_shift<T>::value);
  T nsum = T(0), den = T(1), N = T(0), D = T(1);
  for (int i = 0; i < steps; ++i) {
    const bool up = a < digamma_shift<T>::value;
    const T u2 = a * a;
    nsum = up ? nsum * a + den : nsum;
    den = up ? den * a : den;
    N = up ? N * u2 + D : N;
    D = up ? D * u2 : D;
    a = up ? a + T(1) : a;
  }
  const T q = T(1) / (den * D);
  const T w = T(1) / a, r = w * w;
  // psi(as) - log(as) - (-sum 1/u) and psi'(as), as in digamma_minus_log_shifted and trigamma.
  const T tail =
      r * (T(1.0 / 12) -
           r * (T(1.0 / 120) -
                r * (T(1.0 / 252) -
                     r * (T(1.0 / 240) - r * (T(1.0 / 132) - r * (T(691.0 / 32760) - r * T(1.0 / 12)))))));
  const T rest = T(-0.5) * w - tail - nsum * D * q;
  const T tail1 =
      r * (T(1.0 / 6) -
           r * (T(1.0 / 30) -
                r * (T(1.0 / 42) -
                     r * (T(1.0 / 30) - r * (T(5.0 / 66) - r * (T(691.0 / 2730) - r * (T(7.0 / 6) - r * T(3617.0 / 510))))))));
  psi1 = N * den * q + w * (T(1) + T(0.5) * w + tail1);
  // log(x / as) without a subnormal quotient, as log_minus_digamma.
  constexpr int kscale = sizeof(T) == 8 ? 64 : 32;
  const T scale = sizeof(T) == 8 ? T(18446744073709551616.0) : T(4294967296.0);
  const bool tiny = x < num<T>::min_normal * a;
  const T l = log_pos(tiny ? x * scale : x / a, tiny ? -kscale : 0);
  const T las = log_pos(a);
  c = (tiny ? l - las : l) - rest;
}

// c = log x - psi(a + 1) and psi1 = psi'(a + 1), the series' and the continued fraction's prefactors: from
// L = log x when given (the log-space entry point), else by psi_pair.
template <typename T> GK_HD void shifted_psi(T a, T x, T L, bool have_L, T& c, T& psi1) {
  if (have_L) {
    c = L - digamma(a + T(1));
    psi1 = trigamma(a + T(1));
  } else {
    psi_pair(x, a + T(1), c, psi1);
  }
}

// The one set of results every branch fills: D = dh/da, E = D + h (log x - psi(a)), and h itself.
template <typename T> struct d2_result {
  T h, D, E;
};

// Series branch. G = sum_n t_n (c - r_n) (igamma.h's series_grad, c = L - psi(a+1)), h = -G/a;
// Ga = dG/da = sum_n t_n [r_n (r_n - c) + s_n - psi'(a+1)]; D = (G/a - Ga)/a; E = -(Ga + c G)/a.
// Stops when the increments of G and of Ga are below tol/2 of the sums of their terms' magnitudes (Ga's
// terms change sign, so a test on |Ga| would wait for the cap where Ga crosses zero).
template <typename T> GK_HD d2_result<T> series_d2(T a, T x, T L, bool have_L, T tol) {
  T c, psi1;
  shifted_psi(a, x, L, have_L, c, psi1);
  T tn = T(1), r = T(0), s = T(0), G = c, Ga = -psi1, absG = gk_fabs(c), absGa = psi1;
  for (int n = 1; n < num<T>::max_iter; ++n) {
    if (!(x > T(0))) break;  // log-space entry with x underflowed to 0: only the n = 0 terms
    const T inv = T(1) / (a + T(n));
    tn *= x * inv;
    r += inv;
    s += inv * inv;
    const T g = tn * (c - r), ga = tn * (r * (r - c) + s - psi1);
    G += g;
    Ga += ga;
    absG += gk_fabs(g);
    absGa += gk_fabs(ga);
    if (gk_fabs(g) <= tol * T(0.5) * absG && gk_fabs(ga) <= tol * T(0.5) * absGa) break;
  }
  const T w = T(1) / a;
  T Gw = G * w;
  gk_no_contract(Gw);  // as the CPU blocks (cpu/gamma_block.h, d2v::series) round it
  return d2_result<T>{-Gw, (Gw - Ga) * w, -(Ga + c * G) * w};
}

// The CF prefactor's derivatives: c = log x - psi(a), psi'(a), and c^2 - psi'(a). For small a, c ~ 1/a
// and psi'(a) ~ 1/a^2 cancel in c^2 - psi'(a) (six digits at a = 1e-6); with c1 = log x - psi(a + 1) =
// c - 1/a and psi'(a) = psi'(a + 1) + 1/a^2 it is c1 (2/a + c1) - psi'(a + 1), without cancellation.
template <typename T> struct cf_coeffs {
  T c, psi1, cc;
};
template <typename T> GK_HD cf_coeffs<T> cf_coeffs_at(T a, T x, T L, bool have_L) {
  T c1, p1;
  shifted_psi(a, x, L, have_L, c1, p1);
  const T w = T(1) / a;
  return cf_coeffs<T>{c1 + w, p1 + w * w, c1 * (T(2) * w + c1) - p1};
}

// Continued-fraction branch (igamma.h's cfrac_grad one order further). Q = x q f, h = G = c f + f',
// c = L - psi(a); D = dG/da = -psi'(a) f + c f' + f''; E = D + c G.
// With f = A/B: f' = (A' - f B')/B, f'' = (A'' - 2 f' B' - f B'')/B; b_n' = -1, a_n' = n - 1.
template <typename T> GK_HD d2_result<T> cfrac_d2(T a, T x, T L, bool have_L, T tol) {
  const cf_coeffs<T> k = cf_coeffs_at(a, x, L, have_L);
  const T c = k.c, psi1 = k.psi1;
  T b = x + T(1) - a;
  // Convergents n - 2 (A2 ...) and n - 1 (A1 ...): n = 0: A = 0, B = 1; n = 1: A = 1, B = b_1, B' = -1.
  T A2 = T(0), B2 = T(1), dA2 = T(0), dB2 = T(0), ddA2 = T(0), ddB2 = T(0);
  T A1 = T(1), B1 = b, dA1 = T(0), dB1 = T(-1), ddA1 = T(0), ddB1 = T(0);
  T f = T(1) / b, f1 = f * f, f2 = T(2) * f1 * f;
  T G = c * f + f1, D = -psi1 * f + c * f1 + f2;
  T dan = T(0);
  constexpr T big = sizeof(T) == 4 ? T(1e16) : T(1e120);
  for (int n = 2; n < num<T>::max_iter; ++n) {
    dan += T(1);
    const T an = -dan * (dan - a);
    b += T(2);
    const T A = b * A1 + an * A2, B = b * B1 + an * B2;
    const T dA = -A1 + b * dA1 + dan * A2 + an * dA2;
    const T dB = -B1 + b * dB1 + dan * B2 + an * dB2;
    const T ddA = T(-2) * dA1 + b * ddA1 + T(2) * dan * dA2 + an * ddA2;
    const T ddB = T(-2) * dB1 + b * ddB1 + T(2) * dan * dB2 + an * ddB2;
    A2 = A1; B2 = B1; dA2 = dA1; dB2 = dB1; ddA2 = ddA1; ddB2 = ddB1;
    A1 = A; B1 = B; dA1 = dA; dB1 = dB; ddA1 = ddA; ddB1 = ddB;
    const T sB = T(1) / B;
    f = A * sB;
    f1 = (dA - f * dB) * sB;
    f2 = (ddA - T(2) * f1 * dB - f * ddB) * sB;
    const T Gn = c * f + f1;
    const T scale = psi1 * gk_fabs(f) + gk_fabs(c * f1) + gk_fabs(f2);
    const T Dn = -psi1 * f + c * f1 + f2;
    const bool done = gk_fabs(Gn - G) <= tol * gk_fabs(Gn) && gk_fabs(Dn - D) <= tol * scale;
    G = Gn;
    D = Dn;
    if (done) break;
    if (gk_fabs(B1) > big) {  // rescale both convergents (the ratios are unchanged)
      A2 *= sB; B2 *= sB; dA2 *= sB; dB2 *= sB; ddA2 *= sB; ddB2 *= sB;
      A1 *= sB; B1 *= sB; dA1 *= sB; dB1 *= sB; ddA1 *= sB; ddB1 *= sB;
    }
  }
  // E = D + c G = (c^2 - psi'(a)) f + 2 c f' + f'', with c^2 - psi'(a) in its non-cancelling form.
  return d2_result<T>{G, D, k.cc * f + T(2) * c * f1 + f2};
}

// Far right tail: f = (1 + (a-1)/x)/x, f' = 1/x^2, f'' = 0 (see huge_x in igamma.h).
template <typename T> GK_HD d2_result<T> huge_x_d2(T a, T x, T L) {
  const cf_coeffs<T> k = cf_coeffs_at(a, x, L, true);
  const T f = (T(1) + (a - T(1)) / x) / x, f1 = T(1) / (x * x);
  const T G = k.c * f + f1, D = -k.psi1 * f + k.c * f1;
  return d2_result<T>{G, D, k.cc * f + T(2) * k.c * f1};
}

// Temme coefficient sums with the extra ones the second order needs (w = 1/a):
//   Sum = sum_k C_k w^k, D1 = sum_k C_k' w^k, D2 = sum_k k C_k w^k,
//   E1 = sum_k C_k'' w^k, D3 = sum_k k C_k' w^k, D4 = sum_k k^2 C_k w^k.
// Full-length Taylor polynomials (no triangular truncation) and one more term in 1/a than first order:
// the second derivative of a truncated Taylor series loses two orders of its tail.
template <typename T> struct temme2_sums {
  T Sum, D1, D2, E1, D3, D4;
};
template <int N, typename T> GK_HD temme2_sums<T> temme_sums2_n(int K, T w, T eta) {
  static constexpr T d[kTemmeK][kTemmeN] = GK_TEMME_TABLE;
  static_assert(N <= kTemmeN, "Temme table too short");
  temme2_sums<T> s{T(0), T(0), T(0), T(0), T(0), T(0)};
  for (int k = K - 1; k >= 0; --k) {
    T c = d[k][N - 1], dc = T(0), ddc = T(0);
    for (int n = N - 2; n >= 0; --n) {  // Horner for the polynomial and its first two derivatives
      ddc = ddc * eta + T(2) * dc;
      dc = dc * eta + c;
      c = c * eta + d[k][n];
    }
    const T fk = T(k);
    s.Sum = s.Sum * w + c;
    s.D1 = s.D1 * w + dc;
    s.D2 = s.D2 * w + fk * c;
    s.E1 = s.E1 * w + ddc;
    s.D3 = s.D3 * w + fk * dc;
    s.D4 = s.D4 * w + fk * fk * c;
  }
  return s;
}
template <typename T> GK_HD temme2_sums<T> temme_sums2(T a, T w, T eta) {
  const int k1 = igamma_tune<T>::temme_k(a) + 1;
  const int K = k1 < kTemmeK ? k1 : kTemmeK;
  const T ae = gk_fabs(eta);
  if (sizeof(T) == 4) return ae < T(0.35) ? temme_sums2_n<8>(K, w, eta) : temme_sums2_n<12>(K, w, eta);
  if (ae < T(0.2)) return temme_sums2_n<16>(K, w, eta);
  if (ae < T(0.35)) return temme_sums2_n<24>(K, w, eta);
  return temme_sums2_n<30>(K, w, eta);
}

// d rho / d eta for rho = t / eta: (lambda - rho^2) / (rho eta) = rho^2 phi(t) / t^3 with
// phi(t) = eta^2 (1 + t) - t^2 = 2 sum_{n>=3} (-1)^(n+1) t^n / (n (n-1)). The series for |t| < 1/4 (the
// direct form loses the digits of lambda - rho^2 ~ t/3 there; at |t| = 1/4 it loses at most a factor 12).
template <typename T> GK_HD T drho_deta(T t, T eta, T rho) {
  if (gk_fabs(t) < T(0.25)) {
    const int terms = sizeof(T) == 8 ? 26 : 12;  // 0.25^26 / 351 < 1e-18
    T s = T(0);
    for (int n = terms + 2; n >= 3; --n) s = s * t + ((n & 1) ? T(2) : T(-2)) / (T(n) * T(n - 1));
    return rho * rho * s;
  }
  return (T(1) + t - rho * rho) / (rho * eta);
}

// Temme branch. h = Gamma*(a) w br, br = rho - eta/2 + (ll - w/2) Sum - w Dsum, Dsum = rho D1 + D2
// (temme_dlogx in igamma.h). Derivatives in a at fixed x: w' = -w^2, ll' = -w (ll = log(x/a)),
// eta' = -rho w, rho' = -rho w drho_deta, Sum' = -w Dsum, Dsum' = rho' D1 - w (rho^2 E1 + 2 rho D3 + D4).
// D = Gamma*(a) w [(dlog Gamma* - w) br + br'], and log x - psi(a) = ll + w/2 - dlog Gamma*.
template <typename T> GK_HD d2_result<T> temme_d2(T a, T t, T eta, T ll) {
  const T rho = (eta != T(0)) ? t / eta : T(1);
  const T w = T(1) / a;
  const temme2_sums<T> s = temme_sums2(a, w, eta);
  const T Dsum = rho * s.D1 + s.D2;
  const T br = rho - T(0.5) * eta + (ll - T(0.5) * w) * s.Sum - Dsum * w;
  const T rho_a = -rho * w * drho_deta(t, eta, rho);
  const T Dsum_a = rho_a * s.D1 - w * (rho * rho * s.E1 + T(2) * rho * s.D3 + s.D4);
  const T br_a = rho_a + T(0.5) * rho * w + (T(0.5) * w - T(1)) * w * s.Sum - (ll - T(0.5) * w) * w * Dsum -
                 w * Dsum_a + w * w * Dsum;
  const T dlg = dlog_gamma_star(w);
  const T gw = gamma_star_w(w, igamma_tune<T>::stirling_n(a)) * w;
  const T h = gw * br;
  const T D = gw * ((dlg - w) * br + br_a);
  return d2_result<T>{h, D, D + h * (ll + T(0.5) * w - dlg)};
}

// Bulk path (igamma_bulk.h): g = dx/da = sum_m w^m P_m(v), v = (x - a)/(x + a), differentiated in a at
// fixed x: dv/da = -(1 - v^2) w / 2, dw/da = -w^2, so dg/da = -w [sum_m m w^m P_m(v) + (1 - v^2)/2 sum_m
// w^m P_m'(v)]. The polynomial's truncation (every dropped term below eps/8 of g over the tier) leaves the
// derivative within a few tens of eps of the bracket, which is O(1). Exactly the derivative of what the
// first-order op evaluates there, so finite differences of that op agree with it to their own accuracy.
// V is T, or on the host a GNU vector of T (the CPU kernel's blocks, cpu/gamma_block.h: the same operations in
// the same order, lane by lane, as bulk::eval).
// Unrolled on the device (the rows are independent chains that overlap in the pipeline) and in the vector form
// (GNU vectors wider than a register are kept in registers only in straight-line code: rolled, the loop
// carries them through memory and runs 15x slower). The host's scalar form, which only serves short ranges
// and one-element calls (the bulk elements go through the CPU kernel's vector blocks), is rolled: unrolled,
// the CPU kernels' translation unit takes a minute more to compile. Unrolling changes no rounding.
#define GK_BULK_D_ROW(INNER)                       \
  V p = v * T(0), dp = p;                          \
  INNER for (int n = S::len(m) - 1; n >= 0; --n) { \
    dp = dp * v + p;                               \
    p = p * v + c[m][n];                           \
  }                                                \
  acc = acc * w + p;                               \
  accm = accm * w + T(m) * p;                      \
  accd = accd * w + dp;
template <typename T, int Tier, typename V = T> GK_HD void bulk_eval_d(V v, V w, V& g, V& ga) {
  static constexpr T c[GK_TEMME_BULK_M][GK_TEMME_BULK_N] = GK_TEMME_BULK_TABLE;
  using S = bulk::shape<T, Tier>;
  V acc = v * T(0), accm = acc, accd = acc;
#if defined(__CUDA_ARCH__)
  constexpr bool unroll = true;
#else
  constexpr bool unroll = sizeof(V) != sizeof(T);
#endif
  if constexpr (unroll) {
    GK_BULK_UNROLL
    for (int m = S::rows - 1; m >= 0; --m) {
      GK_BULK_D_ROW(GK_BULK_UNROLL)
    }
  } else {
    for (int m = S::rows - 1; m >= 0; --m) {
      GK_BULK_D_ROW()
    }
  }
  g = acc;
  ga = -w * (accm + T(0.5) * (T(1) - v * v) * accd);
}
#undef GK_BULK_D_ROW
template <typename T, int I = 0> GK_HD void bulk_eval_d_tier(int tier, T v, T w, T& g, T& ga) {
  if constexpr (I + 1 == bulk::tiers<T>::count) {
    bulk_eval_d<T, I>(v, w, g, ga);
  } else {
    if (tier == I) bulk_eval_d<T, I>(v, w, g, ga);
    else bulk_eval_d_tier<T, I + 1>(tier, v, w, g, ga);
  }
}

// h, D and E on the bulk path from the polynomial's g and dg/da at x (one function for the scalar core and
// the CPU blocks, so that both round alike).
// log x - psi(a) = log1p((x - a)/a) - (psi(a) - log a): near x = a, log x - psi(a) ~ 1/(2a) is small and
// log(x / a) would carry an absolute error of eps, i.e. 1e-9 relative at a = 3e6 (x - a is exact for
// x/a in [1/2, 2]; the bulk has x/a in [1/3, 3]).
template <typename T> GK_HD d2_result<T> bulk_d2_from(T a, T x, T g, T ga, T L, bool have_L) {
  const T h = g / x, D = ga / x;
  T as;
  const T c0 = have_L ? L - digamma(a) : gk_log1p((x - a) / a) - digamma_minus_log_shifted(a, as);
  return d2_result<T>{h, D, D + h * c0};
}

// d2P/da2 on the bulk path, from the polynomial's g and dg/da (as gammainc_grad_aa forms it). The density
// and the sum E in double for float32 too: x q = exp(-u) ... carries a relative error of about u eps, up to
// 3e-5 in float at the tiers' corners (the first-order float op's), where the rest of this is 1e-7.
template <typename T> GK_HD T bulk_gammainc_grad_aa(T a, T x, T g, T ga) {
  const double ad = double(a), xd = double(x);
  return T(-xq(ad, xd) * bulk_d2_from(ad, xd, double(g), double(ga), 0.0, false).E);
}

// float32 on the bulk path: the float tiers' polynomial (the one the first-order float op evaluates) in
// float, its derivative truncated as the first order (a few tens of float eps of the bracket, tested
// against mpmath to the 1e-5). Elsewhere float32 goes through double (header comment). Returns the
// tier, or -1 where the bulk path does not apply (also for NaN and the special values).
template <typename T> GK_HD int float_bulk(T a, T x, T& g, T& ga) {
  if constexpr (sizeof(T) != 4) {
    return -1;
  } else {
    T v;
    if (!(a > T(0)) || !(x > T(0)) || !(x < infinity<T>())) return -1;
    const int tier = bulk::classify(a, x, v);
    if (tier >= 0) bulk_eval_d_tier(tier, v, T(1) / a, g, ga);
    return tier;
  }
}

// Dispatch on the first-order branches; a > 0, 0 < x < inf (x may be 0 when have_L: log-space samples
// that underflowed).
GK_HD d2_result<double> dlogx_d2(double a, double x, double L, bool have_L, double tol) {
  double v;
  const int tier = x > 0.0 ? bulk::classify(a, x, v) : -1;
  if (tier >= 0) {
    double g, ga;
    bulk_eval_d_tier(tier, v, 1.0 / a, g, ga);
    return bulk_d2_from(a, x, g, ga, L, have_L);
  }
  if (x > 0.0 && huge_x(a, x)) return huge_x_d2(a, x, have_L ? L : gk_log(x));
  if (x > 0.0) {
    double t, eta, ll;
    switch (choose_branch(a, x, t, eta, ll)) {
      case igamma_branch::temme: return temme_d2(a, t, eta, ll);
      case igamma_branch::series: return series_d2(a, x, L, have_L, tol);
      default: return cfrac_d2(a, x, L, have_L, tol);
    }
  }
  return series_d2(a, x, L, have_L, tol);
}

// The three entry points in double (float32 is computed here too, see the header comment).
GK_HD double gammainc_grad_aa_d(double a, double x, double tol) {
  if (bad_args(a, x)) return quiet_nan<double>();
  if (x == 0.0 || !(x < infinity<double>())) return 0.0;
  return -xq(a, x) * dlogx_d2(a, x, 0.0, false, tol).E;
}

GK_HD double standard_gamma_grad_dalpha_d(double a, double x, double tol) {
  if (bad_args(a, x)) return quiet_nan<double>();
  if (x == 0.0) return 0.0;                                 // g = 0 for every a
  if (!(x < infinity<double>())) return -trigamma(a);       // g -> (log x - psi(a)) + O(1/x)
  if (huge_x(a, x))                                         // x D without forming D ~ 1/x
    return -trigamma(a) * (1.0 + (a - 1.0) / x) + (gk_log(x) - digamma(a)) / x;
  double v;
  const int tier = bulk::classify(a, x, v);
  if (tier >= 0) {  // dg/da itself, without dividing by x and multiplying again
    double g, ga;
    bulk_eval_d_tier(tier, v, 1.0 / a, g, ga);
    return ga;
  }
  return x * dlogx_d2(a, x, 0.0, false, tol).D;
}

GK_HD double log_standard_gamma_grad_dalpha_d(double a, double logx, double tol) {
  if (!(a > 0.0) || !(a < infinity<double>()) || gk_isnan(logx)) return quiet_nan<double>();
  if (logx == -infinity<double>()) return neg_inf<double>();  // h = -(L - psi(a+1))/a: dh/da -> -inf
  if (logx == infinity<double>()) return 0.0;
  const double x = gk_exp(logx);
  if (!(x < infinity<double>())) return 0.0;
  return dlogx_d2(a, x, logx, true, tol).D;
}

}  // namespace detail

template <typename T> GK_HD T gammainc_grad_aa(T a, T x) {
  T g, ga;
  if (detail::float_bulk(a, x, g, ga) >= 0) return detail::bulk_gammainc_grad_aa(a, x, g, ga);
  return T(detail::gammainc_grad_aa_d(double(a), double(x), loop_tol<T>()));
}
template <typename T> GK_HD T standard_gamma_grad_dalpha(T a, T x) {
  T g, ga;
  if (detail::float_bulk(a, x, g, ga) >= 0) return ga;
  return T(detail::standard_gamma_grad_dalpha_d(double(a), double(x), loop_tol<T>()));
}
template <typename T> GK_HD T log_standard_gamma_grad_dalpha(T a, T logx) {
  if constexpr (sizeof(T) == 4) {  // D = (dg/da) / x on the float bulk path
    T g, ga;
    const T x = gk_exp(logx);
    if (detail::float_bulk(a, x, g, ga) >= 0) return ga / x;
  }
  return T(detail::log_standard_gamma_grad_dalpha_d(double(a), double(logx), loop_tol<T>()));
}

}  // namespace core
}  // namespace gradkern
