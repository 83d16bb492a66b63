// von Mises(0, kappa): CDF, its kappa-derivative, log density and the implicit reparameterization
// gradient dx/dkappa = -(dF/dkappa) / q(x) (Figurnov et al. 2018, sec. 4 and appendices B-C). The
// sampler is in vonmises_sampler.h. Header-only, host + device, T = float or double.
//
// Conventions: F(-pi) = 0, F(pi) = 1 on [-pi, pi]; outside, F(x + 2 pi n) = F(x) + n (continuous,
// increasing on the real line). kappa <= 0, NaN or inf, and x = NaN or +-inf give NaN.
//
// Notation used throughout. x is reduced to xr = x - 2 pi n in [-pi, pi]; v = |xr|; b = pi - v (kept
// accurately: computed directly as x - m pi with a three-part pi); sh = sin(v/2), ch = cos(v/2);
//   sigma = 2 sqrt(kappa) sh,  alpha = sigma^2 / 2 = kappa (1 - cos v),  W = 2 kappa ch^2 = 2 kappa - alpha.
// The density is q(x) = exp(-alpha) / (2 pi I0e(kappa)), I0e = e^-kappa I0. Everything is computed for
// the smaller tail P = F(-v) (or for H = F(v) - 1/2 near the mode) and mapped back by symmetry
// F(xr) = 1 - F(-xr), so no result is obtained as 1 - (something close to 1).
//
// Branches (switch points in vm_cfg<T>; measured by tests/native/test_vonmises.cpp):
//  1. kappa < k_switch, sigma < sigma_tail: eq. (14) truncated at J(kappa) terms. Bessel ratios
//     rho_j = I_j / I_{j-1} by Hill's backward recursion (rho_j = 1 / (2j/kappa + rho_{j+1}), run as
//     Miller's unnormalised three-term recurrence so no division sits on the dependency chain), with
//     the forward-mode derivative carried through the recursion (rho_j' = rho_j^2 (2j/kappa^2 -
//     rho_{j+1}')); then a forward pass r_j = r_{j-1} rho_j (and r_j') with sin(j theta) by Reinsch's
//     modified Chebyshev recurrence (stable for small theta). Angle theta = v (H form) for v <= pi/2, theta = b with the
//     alternating series P = b/(2 pi) + (1/pi) sum (-1)^j r_j sin(j b)/j (the symmetric formula) for
//     v > pi/2. I0e = 1 / (1 + 2 sum r_j) (no cancellation).
//  2. kappa >= k_switch, sigma < sigma_tail: Gaussian expansion. With s = 2 sqrt(kappa) sin(x/2) the
//     density in s is exp(-s^2/2) (1 - s^2/(4 kappa))^(-1/2); expanding the binomial factor,
//     sum_n c_n (s^2/4kappa)^n with c_n = binom(2n, n)/4^n, and integrating term by term gives
//     H = exp(-sigma^2/2) sum_n A_n p_n / (sqrt(2 pi) Z), A_n = c_n (4 kappa)^-n,
//     p_n = e^(sigma^2/2) int_0^sigma t^2n e^(-t^2/2) dt  (p_0 from erf, p_n = (2n-1) p_{n-1} - sigma^(2n-1):
//     the forward recurrence loses relative accuracy in p_n, but its absolute error times A_n stays
//     below eps a_n p_0, which is what the sum needs), and the normaliser is the same series at
//     infinity, Z = sum a_n, a_n = A_n (2n-1)!!. The expansion is asymptotic: the truncation error
//     is ~ min_n a_n ~ e^(-2 kappa), below eps for kappa >= k_switch. d/dkappa in closed form from
//     dA_n/dkappa = -n A_n / kappa and dsigma/dkappa = sigma / (2 kappa).
//  3. sigma >= sigma_tail (any kappa): tail integral. With w = kappa (cos v - cos t),
//       P = q(v) A,   A  = int_0^W e^-w (alpha + w)^-1/2 (W - w)^-1/2 dw,
//       dP/dkappa = q(v) B,   B = (cos v - r1) A - A1 / kappa,   A1 = same with an extra factor w,
//     (d log q / d kappa = cos t - r1, r1 = I1/I0), so dx/dkappa = -B exactly, with no density
//     factor to overflow. Both terms of B are negative in the tail (cos t <= cos v < r1): no
//     cancellation. The series of branch 1 cannot be used there: P is the difference of O(1) terms
//     (relative error ~ eps / P, 1e-6 at P = 1e-10 in double). A is evaluated with w = W sin^2(theta)
//     (removes the (W - w)^-1/2 endpoint singularity; e^-w becomes a Gaussian of width W^-1/2 in
//     theta) by two fixed-node Gauss-Legendre panels (20 nodes each in double, 10 in float)
//     [0, c/sqrt(W)] and [c/sqrt(W), theta_max] (c = 2.5 double, 2 float),
//     theta_max = asin(sqrt(w_cut / W)) (e^-w_cut below eps). Nodes: tools/gen_gauss_legendre.py.
//
// Float: kappa < 16 is evaluated in double and rounded once (the paper-grid mean-error goal 3e-8 needs
// < 2.5 ulp on average; float-internal evaluation measured 3.5-7 ulp, see vm_promote). kappa >= 16
// (Gaussian expansion, tail integral) is computed in float with the switch points of vm_cfg<float>.
#pragma once

#include <cstring>

#include "common.h"

namespace gradkern {
namespace core {

namespace vm_detail {

template <typename T> struct vm_cfg;
template <> struct vm_cfg<double> {
  // Gaussian expansion from kappa = 30 on: min_n a_n ~ e^-60 and the sum needs <= 19 terms there;
  // the series below needs J = 9 + 8 sqrt(kappa) <= 53 terms.
  static constexpr double k_switch = 30.0;
  // Tail integral where sigma >= 2.5 (P <~ 6e-3): below, the series / central form lose at most
  // ~2 digits (measured worst: 3.4e-14 relative in F at kappa = 39.9, sigma = 2.34).
  static constexpr double sigma_tail = 2.5;
  static constexpr double w_cut = 40.0;      // e^-40 = 4e-18
  static constexpr double split_c = 2.5;
  static constexpr double asym_stop = 2e-18;  // stop the Gaussian expansion when a_n < asym_stop
  static constexpr int asym_max = 40;
  static GK_HD int series_terms(double k, double sk) {
    // number of eq. (14) terms: r_J / J < 1e-17 relative, plus one for the derivative series
    // (d r_j / d kappa ~ r_{j-1} / 2 for small kappa); fitted with scipy.special.ive.
    return k < 1.0 ? static_cast<int>(7.0 + 11.5 * sk) : static_cast<int>(9.0 + 8.0 * sk);
  }
};
template <> struct vm_cfg<float> {
  // Below 16 float is evaluated in double (vm_promote); at kappa = 8 the truncated Gaussian
  // expansion still met F to 1e-7 but its kappa-derivative only to 2.2e-5 (measured), at 16 the
  // smallest term is ~ e^-32.
  static constexpr float k_switch = 16.0f;
  // Tail integral where sigma >= 1.5 (P <~ 0.07): the central form F = 1/2 - H loses < 1 digit.
  static constexpr float sigma_tail = 1.5f;
  static constexpr float w_cut = 20.0f;      // e^-20 = 2e-9
  static constexpr float split_c = 2.0f;
  static constexpr float asym_stop = 1e-9f;
  static constexpr int asym_max = 24;
  static GK_HD int series_terms(float k, float sk) {  // unused in practice (promoted to double)
    (void)k;
    return static_cast<int>(5.5f + 5.0f * sk);
  }
};

// Constants for exact-as-possible reductions: pi_hi + pi_lo = pi; q1 + q2 + q3 = pi with q1, q2 short
// (26 / 11 bits) so that m * q1 and m * q2 are exact for |m| < 2^27 (double) / 2^13 (float)
// (Cody-Waite). The distance b of a wrapped x to the nearest odd multiple of pi is computed directly
// as x - m pi, not as pi - |x - 2 pi n| (which would carry the absolute rounding error of x - 2 pi n).
template <typename T> struct vm_pi;
template <> struct vm_pi<double> {
  static constexpr double pi_hi = 3.141592653589793116;      // double(pi)
  static constexpr double pi_lo = 1.2246467991473532e-16;    // pi - pi_hi
  static constexpr double q1 = 3.1415926218032837;
  static constexpr double q2 = 3.1786509424591713e-08;
  static constexpr double q3 = 1.2246467991473532e-16;
};
template <> struct vm_pi<float> {
  static constexpr float pi_hi = 3.14159274101257324f;        // float(pi) (> pi)
  static constexpr float pi_lo = -8.742277657347586e-08f;     // pi - pi_hi
  static constexpr float q1 = 3.140625f;
  static constexpr float q2 = 0.0009675025939941406f;
  static constexpr float q3 = 1.5099580252808664e-07f;
};

// Reduced argument (see the notation at the top).
template <typename T> struct VmArg {
  T n;      // number of whole turns
  bool neg; // xr < 0
  T v, b;   // |xr| in [0, pi], b = pi - v >= 0 (both accurate)
  T sh, ch; // sin(v/2), cos(v/2)
};

template <typename T> GK_HD T vm_minus_m_pi(T x, T m) {  // x - m pi (Cody-Waite, 3 parts)
  typedef vm_pi<T> P;
  return ((x - m * P::q1) - m * P::q2) - m * P::q3;
}

template <typename T> GK_HD VmArg<T> vm_reduce(T x) {
  typedef vm_pi<T> P;
  VmArg<T> a;
  T n = T(0);
  T xr = x, b;
  if (gk_fabs(x) <= P::pi_hi) {
    b = (P::pi_hi - gk_fabs(x)) + P::pi_lo;  // pi_hi - |x| is exact (Sterbenz) where b is small
  } else {
    n = gk_floor((x + P::pi_hi) * T(0.159154943091895335768883763372514362));
    // Cody-Waite is exact while 2n * q1 is: |n| < 2^26 (double) / 2^12 (float). Beyond, x itself is
    // uncertain by ulp(x) >~ 1e-8 rad (double) / 1e-3 (float); reduce with fmod by the rounded 2 pi
    // (exact remainder, finite result) instead.
    const T n_max = sizeof(T) == sizeof(double) ? T(67108864.0) : T(4096.0);
    if (gk_fabs(n) >= n_max) {
      const T tp = T(2) * P::pi_hi;
      T r = gk_fmod(x, tp);                 // exact, same sign as x
      if (r >= P::pi_hi) r -= tp;
      else if (r < -P::pi_hi) r += tp;
      n = gk_floor((x - r) / tp + T(0.5));  // approximate turn count (F ~ n: relative accuracy kept)
      xr = r;
      const T v0 = gk_fabs(xr);
      b = (P::pi_hi - v0) + P::pi_lo;
      if (b < T(0)) b = T(0);
    } else {
    xr = vm_minus_m_pi(x, T(2) * n);
    // the estimate of n can be off by one next to an odd multiple of pi: fix (at most once each way)
    if (xr < -P::pi_hi) { n -= T(1); xr = vm_minus_m_pi(x, T(2) * n); }
    else if (xr > P::pi_hi) { n += T(1); xr = vm_minus_m_pi(x, T(2) * n); }
    b = xr < T(0) ? vm_minus_m_pi(x, T(2) * n - T(1)) : -vm_minus_m_pi(x, T(2) * n + T(1));
    }
  }
  T v = gk_fabs(xr);
  bool neg = xr < T(0);
  if (b < T(0)) {
    // |xr| beyond pi by |b| (|x| = float(pi) > pi, or rounding next to an odd multiple of pi): the
    // same point is at -sign(xr) (pi - |b|) in the neighbouring turn.
    n += neg ? T(-1) : T(1);
    neg = !neg;
    b = -b;
    v = (P::pi_hi - b) + P::pi_lo;
  }
  a.n = n;
  a.neg = neg;
  a.v = v;
  a.b = b;
  if (v <= T(1.5707963267948966)) {
    a.sh = gk_sin(T(0.5) * v);
    a.ch = gk_cos(T(0.5) * v);
  } else {  // near pi: take the half-angle functions from b so they keep relative accuracy
    a.sh = gk_cos(T(0.5) * b);
    a.ch = gk_sin(T(0.5) * b);
  }
  return a;
}

// Result of the core evaluation for the reduced point.
template <typename T> struct VmOut {
  bool central;  // true: H = F(v) - 1/2 is given; false: P = F(-v)
  T val;         // H or P
  T dval;        // dH/dkappa or dP/dkappa
  T g;           // -dF(-v)/dkappa / q(v)  (= dH/dk / q or -dP/dk / q)
  // second order (WANT_D2, double only; see "Second order" below)
  T d2val;       // d2H/dkappa2 or d2P/dkappa2
  T g1;          // dg/dkappa at fixed v
};

// Branch 3: tail integrals A, A1 (see header). Fixed nodes, two panels.
// WANT_D2: also A2 (the same integral with a factor w^2), for the kappa-derivative of B.
template <typename T, bool WANT_D, bool WANT_D2 = false>
GK_HD void vm_tail_integrals(T alpha, T W, T& A, T& A1, T* A2 = nullptr) {
  typedef vm_cfg<T> C;
  const T half_pi = T(1.5707963267948966);
  T thm = half_pi;
  if (W > C::w_cut) thm = gk_atan2(gk_sqrt(C::w_cut), gk_sqrt(W - C::w_cut));  // asin(sqrt(cut/W))
  const T sw = gk_sqrt(W);
  // panel split at W sin^2(theta) = split_w (= 6.25 double, 4 float; chosen by measurement against
  // mpmath over kappa 2..1e6, sigma >= sigma_tail: worst relative error 2.4e-15 (2 x 20 nodes) and
  // 4.7e-9 (2 x 10 nodes)).
  T tha = (sw > T(0)) ? C::split_c / sw : thm;
  if (tha > thm) tha = thm;
  T s0 = T(0), s1 = T(0), s2 = T(0);
  for (int panel = 0; panel < 2; ++panel) {
    const T lo = panel == 0 ? T(0) : tha;
    const T hi = panel == 0 ? tha : thm;
    if (!(hi > lo)) continue;
    const T mid = T(0.5) * (hi + lo), hw = T(0.5) * (hi - lo);
    T p0 = T(0), p1 = T(0), p2 = T(0);
#define GK_VM_NODE(XI, WI)                                                       \
    {                                                                            \
      const T xi = T(XI), wi = T(WI);                                            \
      for (int sgn = -1; sgn <= 1; sgn += 2) {                                   \
        const T th = mid + T(sgn) * hw * xi;                                     \
        const T st = gk_sin(th);                                                 \
        const T w = W * st * st;                                                 \
        const T f = wi * st * gk_exp(-w) / gk_sqrt(alpha + w);                   \
        p0 += f;                                                                 \
        if (WANT_D) p1 += f * w;                                                 \
        if (WANT_D2) p2 += f * w * w;                                            \
      }                                                                          \
    }
    if (sizeof(T) == sizeof(double)) {
      // 20-point rule (tools/gen_gauss_legendre.py 20)
      GK_VM_NODE(0.99312859918509492479, 0.017614007139152118312)
      GK_VM_NODE(0.96397192727791379127, 0.040601429800386941331)
      GK_VM_NODE(0.91223442825132590587, 0.06267204833410906357)
      GK_VM_NODE(0.83911697182221882339, 0.083276741576704748725)
      GK_VM_NODE(0.74633190646015079261, 0.10193011981724043504)
      GK_VM_NODE(0.63605368072651502545, 0.11819453196151841731)
      GK_VM_NODE(0.510867001950827098, 0.1316886384491766269)
      GK_VM_NODE(0.37370608871541956067, 0.14209610931838205133)
      GK_VM_NODE(0.22778585114164507808, 0.14917298647260374679)
      GK_VM_NODE(0.076526521133497333755, 0.1527533871307258507)
    } else {
      // 10-point rule (tools/gen_gauss_legendre.py 10)
      GK_VM_NODE(0.97390652851717172008, 0.066671344308688137594)
      GK_VM_NODE(0.86506336668898451073, 0.14945134915058059315)
      GK_VM_NODE(0.67940956829902440623, 0.219086362515982044)
      GK_VM_NODE(0.4333953941292471908, 0.26926671930999635509)
      GK_VM_NODE(0.14887433898163121088, 0.29552422471475287017)
    }
#undef GK_VM_NODE
    s0 += hw * p0;
    s1 += hw * p1;
    s2 += hw * p2;
  }
  A = T(2) * sw * s0;
  A1 = T(2) * sw * s1;
  if (WANT_D2) *A2 = T(2) * sw * s2;
}

// Branch 1 (series). Returns R = sum r_j, r1 = I1/I0 and (mode != 0) U = sum r_j c_j, dU = its
// kappa-derivative, with c_j = sin(j theta)/j (mode 1, H form on theta = v) or (-1)^j sin(j theta)/j
// (mode 2, symmetric form on theta = b); mode 0: R and r1 only.
// Pass 1 (backward): Hill's recursion for rho_j = I_j/I_{j-1} evaluated as Miller's unnormalised
// recurrence y_{j-1} = (2j/kappa) y_j + y_{j+1}, rho_j = y_j / y_{j-1}: the divisions are off the
// dependency chain (the chain is one multiply-add per term), y is renormalised when it grows.
// Then the forward-mode derivative rho_j' = rho_j^2 (2j/kappa^2 - rho_{j+1}') (positive terms; no
// cancellation, unlike r_{j+1} + j r_j/kappa - r_1 r_j of eq. 16 for large kappa).
// Pass 2 (forward): r_j = r_{j-1} rho_j, r_j' = r_{j-1}' rho_j + r_{j-1} rho_j', and sin(j theta) by
// Reinsch's form of the Chebyshev recurrence from sin(theta) (stable for 0 <= theta <= pi/2; a
// backward recurrence would have to start from sin(J theta), whose argument J theta carries J times
// the rounding error of theta).
template <typename T> struct vm_series_cap { static constexpr int jmax = 63; };

// Second-order outputs of vm_series (WANT_D2): dr1 = d r1 / d kappa (from the derivative recursion: positive
// terms, unlike 1 - r1/kappa - r1^2, which cancels to O(1/kappa^2)) and d2U = d2U/dkappa2. With WANT_D and
// mode 0 only dr1 is filled.
// rho_j'' comes from differentiating rho_j' = rho_j^2 M_j, M_j = 2j/kappa^2 - rho_{j+1}', once more:
//   rho_j'' = rho_j^2 (C_j - rho_{j+1}''),  C_j = 2 rho_j M_j^2 - 4j/kappa^3.
// Written so, C_j cancels to leading order for small kappa (both terms ~ 4j/kappa^3, result ~ 1/kappa^2:
// at kappa = 0.01 four digits would go). With 2j rho_j / kappa - 1 = -rho_j rho_{j+1} (Hill's relation
// rho_j = kappa / (2j + kappa rho_{j+1})), the leading terms cancel analytically:
//   C_j = rho_j (2 rho_{j+1}'^2 - (4j/kappa^2) (rho_{j+1}/kappa + 2 rho_{j+1}')),
// two negative terms and a small positive one for small kappa, -4j/kappa^3 dominant for large kappa; then
// C_j - rho_{j+1}'' (rho'' < 0) cancels by a factor <= (6j + 1)/(2j - 1) only.
// Forward: r_j'' = r_{j-1}'' rho_j + 2 r_{j-1}' rho_j' + r_{j-1} rho_j''.
template <typename T> struct VmSeries2 {
  T ct;        // input: cos(theta), accurate (used for theta > pi/3)
  T dr1, d2U;  // outputs
};

// h = sin(theta/2) and sin_theta = sin(theta) are passed in (they are products of the half-angle
// functions already computed by vm_reduce: no extra transcendental calls).
template <typename T, bool WANT_D, bool WANT_D2 = false>
GK_HD void vm_series(T k, int mode, T h, T sin_theta, T& R, T& r1, T& U, T& dU,
                     VmSeries2<T>* s2 = nullptr) {
  typedef vm_cfg<T> C;
  const int JMAX = vm_series_cap<T>::jmax;
  const T sk = gk_sqrt(k);
  int J = C::series_terms(k, sk);
  if (J > JMAX) J = JMAX;  // iteration cap (not reached: J <= 53 for kappa < k_switch)
  if (J < 1) J = 1;
  const T tk = T(2) / k;   // 2/kappa
  const T tk2 = tk / k;    // 2/kappa^2
  T rho_a[JMAX + 2];
  T drho_a[JMAX + 1];
  T d2rho_a[JMAX + 1];
  // start: y_J = 1, y_{J+1} = rho_{J+1} ~ kappa / (J+1 + sqrt((J+1)^2 + kappa^2)) (Amos' bound); its
  // error decays through the recursion and r_{J+1} is below eps anyway.
  const T jp = T(J + 1);
  T y1 = T(1), y2 = k / (jp + gk_sqrt(jp * jp + k * k));
  rho_a[J + 1] = y2;
  const T big = sizeof(T) == sizeof(double) ? T(1e150) : T(1e18);
  for (int j = J; j >= 1; --j) {
    const T y0 = T(j) * tk * y1 + y2;
    rho_a[j] = y1 / y0;
    y2 = y1;
    y1 = y0;
    if (y1 > big) {  // renormalise (keeps y finite for tiny kappa)
      y2 = rho_a[j];
      y1 = T(1);
    }
  }
  if (WANT_D) {
    T drho = T(0), d2rho = T(0);  // rho_{J+1}' and rho_{J+1}'' taken as 0 (r_{J+1} is below eps)
    for (int j = J; j >= 1; --j) {
      const T rj = rho_a[j];
      if (WANT_D2) {  // uses rho_{j+1}, rho_{j+1}' (= drho here), rho_{j+1}''
        const T cj = rj * (T(2) * drho * drho - T(j) * T(2) * tk2 * (rho_a[j + 1] / k + T(2) * drho));
        d2rho = rj * rj * (cj - d2rho);
        d2rho_a[j] = d2rho;
      }
      drho = rj * rj * (T(j) * tk2 - drho);
      drho_a[j] = drho;
    }
    if (WANT_D2) s2->dr1 = drho_a[1];
  }
  T r = T(1), dr = T(0), d2r = T(0), SR = T(0), S = T(0), dS = T(0), d2S = T(0);
  if (mode == 0) {
    for (int j = 1; j <= J; ++j) {
      r *= rho_a[j];
      SR += r;
    }
  } else {
    const T d = T(4) * h * h;
    T s = sin_theta;      // s_1
    T e = s;              // s_1 - s_0
    T sign = mode == 2 ? T(-1) : T(1);
    // Second order, theta > pi/3 (d > 1): sin(j theta) by rotation from cos(theta) (s2->ct, from libm)
    // instead. Reinsch's step s_2 = 2 s_1 - d s_1 cancels as theta -> pi/2 (d -> 2), which leaves sin(2 theta)
    // an absolute eps only; d2U is dominated by r_2'' sin(2 theta) there for small kappa (r_1'' ~ kappa), and
    // lost 1e-10 relative at kappa = 1e-6, theta = pi/2 - 1e-6 (measured). The rotation forms
    // sin(2 theta) = 2 sin(theta) cos(theta) to relative accuracy.
    const bool rot = WANT_D2 && d > T(1);
    T cj = rot ? s2->ct : T(0);  // cos(j theta)
    for (int j = 1; j <= J; ++j) {
      if (WANT_D2) d2r = d2r * rho_a[j] + T(2) * dr * drho_a[j] + r * d2rho_a[j];
      if (WANT_D) dr = dr * rho_a[j] + r * drho_a[j];
      r *= rho_a[j];
      SR += r;
      const T c = sign * s / T(j);
      S += r * c;
      if (WANT_D) dS += dr * c;
      if (WANT_D2) d2S += d2r * c;
      if (rot) {
        const T sn = s * s2->ct + cj * sin_theta;
        cj = cj * s2->ct - s * sin_theta;
        s = sn;
      } else {
        e -= d * s;   // e_{j+1} = e_j - d s_j
        s += e;       // s_{j+1}
      }
      if (mode == 2) sign = -sign;
    }
  }
  R = SR;
  r1 = rho_a[1];
  U = S;
  dU = dS;
  if (WANT_D2 && mode != 0) s2->d2U = d2S;
}

// Second order (WANT_D2, which needs WANT_D): with m1 = d log q / d kappa = cos v - r1 at v,
//   g1 = dg/dkappa = -F_kk(-v) / q - g m1,   so   H_kk = -F_kk(-v) = q (g1 + g m1),  P_kk = -q (g1 + g m1).
// Series: g1 from d2U (vm_series). Tail integrals: g = -B, g1 = -dB/dkappa with dA/dkappa = -A1/kappa,
// dA1/dkappa = (A1 - A2)/kappa (w = kappa (cos v - cos t) in the t form of A):
//   dB/dkappa = -r1' A - m1 A1/kappa + A2/kappa^2.
// Gaussian expansion: g = kappa^(-3/2) N, N = (sigma/2) S3 - S2 + S1 Zn/Z, differentiated term by term with
// dA_n/dkappa = -n A_n/kappa, dp_n/dsigma = sigma p_n + sigma^2n, dsigma/dkappa = sigma/(2 kappa), S3 = sum
// c_n sh^2n constant in kappa, dZ/dkappa = -Zn/kappa, dZn/dkappa = -Zn2/kappa (Zn2 = sum n^2 a_n):
//   g1 = kappa^(-3/2) (N' - 1.5 N/kappa),  N' = sigma S3/(4 kappa) - S2' + S1' Zn/Z - S1 (Zn2/Z - (Zn/Z)^2)/kappa,
//   S1' = -S2/kappa + (sigma/2kappa)(sigma S1 + S3),  S2' = -S2n/kappa + (sigma/2kappa)(sigma S2 + S3n),
// S2n = sum n^2 A_n p_n, S3n = sum n b_n. For kappa >= k_switch r1' = 1 - r1/kappa - r1^2 cancels to
// 1/(2 kappa^2); with e = 1 - r1 = 1/(2 kappa) + Zn/(kappa Z) it is 2 Zn/(kappa Z) + e (1/(2 kappa) - Zn/(kappa Z)),
// positive terms.
template <typename T, bool WANT_D, bool WANT_D2 = false>
GK_HD VmOut<T> vm_core(const VmArg<T>& a, T k) {
  typedef vm_cfg<T> C;
  // kappa below 1e-200 (double) / 1e-30 (float) is the kappa -> 0 limit to working precision
  // (F and dF/dkappa change by O(kappa)); clamping keeps 2/kappa finite in the recursion.
  const T k_tiny = sizeof(T) == sizeof(double) ? T(1e-200) : T(1e-30);
  if (k < k_tiny) k = k_tiny;
  // kappa above max/8 (4e37 float, 2e307 double) is evaluated at max/8 so that W = 2 kappa cos^2(v/2)
  // stays finite (a point mass at 0 to working precision either way).
  if (k > num<T>::max * T(0.125)) k = num<T>::max * T(0.125);
  const T inv_pi = T(0.318309886183790671537767526745028724);
  const T inv_2pi = T(0.159154943091895335768883763372514362);
  const T sk = gk_sqrt(k);
  const T sigma = T(2) * sk * a.sh;
  // (k sh)(2 sh): no intermediate overflow for kappa up to the largest finite T
  const T alpha = (k * a.sh) * (T(2) * a.sh);
  const bool tail = sigma >= C::sigma_tail;
  VmOut<T> o;
  if (k < C::k_switch) {
    T R, r1, U, dU;
    VmSeries2<T> s2;
    if (tail) {
      vm_series<T, WANT_D2, WANT_D2>(k, 0, T(0), T(0), R, r1, U, dU, &s2);
      const T W = (k * a.ch) * (T(2) * a.ch);
      T A, A1, A2;
      vm_tail_integrals<T, WANT_D, WANT_D2>(alpha, W, A, A1, &A2);
      const T q = gk_exp(-alpha) * (T(1) + T(2) * R) * inv_2pi;
      o.central = false;
      o.val = q * A;
      if (WANT_D) {
        const T m1 = (T(1) - r1) - T(2) * a.sh * a.sh;
        const T B = m1 * A - A1 / k;
        o.dval = q * B;
        o.g = -B;
        if (WANT_D2) {
          const T dB = -s2.dr1 * A - m1 * A1 / k + A2 / (k * k);
          o.g1 = -dB;
          o.d2val = q * (m1 * B + dB);
        }
      }
      return o;
    }
    const bool hform = a.v <= T(1.5707963267948966);
    // theta = v: sin(theta/2) = sh; theta = b = pi - v: sin(theta/2) = ch; sin(theta) = 2 sh ch.
    if (WANT_D2) s2.ct = gk_cos(hform ? a.v : a.b);
    vm_series<T, WANT_D, WANT_D2>(k, hform ? 1 : 2, hform ? a.sh : a.ch, T(2) * a.sh * a.ch, R, r1, U, dU, &s2);
    // g = -dF(-v)/dk / q with q = e^-alpha (1 + 2R) / (2 pi): fused, e^alpha <= e^(sigma_tail^2/2)
    const T fac = T(2) * gk_exp(alpha) / (T(1) + T(2) * R);
    o.central = hform;
    // H form: g = H_k / q; P form: g = -P_k / q (H_kk = q (g1 + g m1), P_kk = -q (g1 + g m1))
    const T sgn = hform ? T(1) : T(-1);
    o.val = (hform ? a.v : a.b) * inv_2pi + U * inv_pi;
    if (WANT_D) {
      o.dval = dU * inv_pi;
      o.g = sgn * dU * fac;
      if (WANT_D2) {
        // m1 = cos v - r1. Near v = pi/2 (cos v -> 0, r1 ~ kappa/2 small too for small kappa) 1 - 2 sh^2
        // keeps cos v only to an absolute eps; cos(theta) from libm is accurate to an ulp of the result.
        const T cv = (a.v > T(1.0471975511965976) && a.v < T(2.0943951023931957)) ? (hform ? s2.ct : -s2.ct)
                                                                                  : T(1) - T(2) * a.sh * a.sh;
        const T m1 = cv - r1;
        o.d2val = s2.d2U * inv_pi;
        o.g1 = sgn * s2.d2U * fac - o.g * m1;
      }
    }
    return o;
  }
  // Gaussian expansion (branch 2) / tail integral with the expansion's normaliser (branch 3).
  const T ik = T(1) / k;
  const T i4k = T(0.25) * ik;
  const T inv_sqrt_2pi = T(0.398942280401432677939946059934381868);
  if (tail) {
    // Z = sum a_n, Zn = sum n a_n (for 1 - r1 = 1/(2 kappa) + Zn / (kappa Z)).
    T an = T(1), Z = T(1), Zn = T(0);
    for (int n = 1; n <= C::asym_max; ++n) {
      const T tn = T(2 * n - 1);
      an *= tn * tn * T(0.125) * ik / T(n);
      Z += an;
      Zn += T(n) * an;
      if (an < C::asym_stop) break;
    }
    const T W = (k * a.ch) * (T(2) * a.ch);
    T A, A1, A2;
    vm_tail_integrals<T, WANT_D, WANT_D2>(alpha, W, A, A1, &A2);
    const T q = sk * gk_exp(-alpha) * inv_sqrt_2pi / Z;
    o.central = false;
    o.val = q * A;
    if (WANT_D) {
      const T one_m_r1 = T(0.5) * ik + Zn * ik / Z;
      const T m1 = one_m_r1 - T(2) * a.sh * a.sh;
      const T B = m1 * A - A1 * ik;
      o.dval = q * B;
      o.g = -B;
      if (WANT_D2) {
        const T zr = Zn / Z;
        const T dr1 = T(2) * zr * ik + one_m_r1 * (T(0.5) - zr) * ik;
        const T dB = -dr1 * A - m1 * A1 * ik + A2 * ik * ik;
        o.g1 = -dB;
        o.d2val = q * (m1 * B + dB);
      }
    }
    return o;
  }
  const T s2 = sigma * sigma;
  // p_0 = e^(s^2/2) int_0^sigma e^(-t^2/2) dt
  T p = T(1.25331413731550025120788264240552263) * gk_erf(sigma * T(0.707106781186547524400844362104849039)) *
        gk_exp(T(0.5) * s2);
  T An = T(1), an = T(1), Z = T(1), Zn = T(0), Zn2 = T(0);
  T S1 = p, S2 = T(0), S3 = T(1), S2n = T(0), S3n = T(0);
  T pw = sigma;   // sigma^(2n-1)
  T bn = T(1);    // A_n sigma^2n = c_n (sigma^2 / 4 kappa)^n
  const T t = s2 * i4k;
  for (int n = 1; n <= C::asym_max; ++n) {
    const T tn = T(2 * n - 1);
    const T rn = tn / T(2 * n);
    An *= rn * i4k;
    an *= rn * tn * i4k;
    p = tn * p - pw;
    pw *= s2;
    bn *= rn * t;
    S1 += An * p;
    Z += an;
    if (WANT_D) {
      S2 += T(n) * An * p;
      S3 += bn;
      Zn += T(n) * an;
    }
    if (WANT_D2) {
      S2n += T(n) * T(n) * An * p;
      S3n += T(n) * bn;
      Zn2 += T(n) * T(n) * an;
    }
    if (an < C::asym_stop) break;
  }
  o.central = true;
  o.val = gk_exp(T(-0.5) * s2) * S1 * inv_sqrt_2pi / Z;
  if (WANT_D) {
    // g = [ (sigma/2k) S3 - (S2 - S1 Zn / Z) / k ] / sqrt(k)
    o.g = (T(0.5) * sigma * ik * S3 - (S2 - S1 * Zn / Z) * ik) / sk;
    const T q = sk * gk_exp(-alpha) * inv_sqrt_2pi / Z;
    o.dval = o.g * q;
    if (WANT_D2) {
      const T zr = Zn / Z;
      const T hs = T(0.5) * sigma * ik;  // dsigma/dkappa
      const T N = T(0.5) * sigma * S3 - S2 + S1 * zr;
      const T dS1 = -S2 * ik + hs * (sigma * S1 + S3);
      const T dS2 = -S2n * ik + hs * (sigma * S2 + S3n);
      const T dN = T(0.5) * hs * S3 - dS2 + dS1 * zr - S1 * (Zn2 / Z - zr * zr) * ik;
      o.g1 = (dN - T(1.5) * N * ik) * ik / sk;
      const T m1 = (T(0.5) * ik + zr * ik) - T(2) * a.sh * a.sh;
      o.d2val = q * (o.g1 + o.g * m1);
    }
  }
  return o;
}

// float instantiation: for kappa < 16 (branch 1 and its tails) the evaluation is done in double and
// rounded once. Measured on the paper grid (tests/native/test_vonmises.cpp): the same code run in
// float gives a mean |error| of dx/dkappa of 4.0e-8 / 5.1e-8 / 6.3e-8 at kappa = 0.01 / 0.1 / 1
// against the goal 3e-8 (promoted: 1.2e-8 / 1.1e-8 / 0.9e-8, i.e. correct rounding). Correct rounding
// of |dx/dkappa| ~ 0.6 alone costs ~1.2e-8, so the goal leaves < 2.5 ulp on average, while the
// recursion, the forward sums and the density factor in float accumulate 3.5-7 ulp. kappa >= 16 stays
// in float (Gaussian expansion, tail integral): paper-grid kappa = 10 is thus evaluated in double too.
template <typename T> GK_HD bool vm_promote(T k);
template <> GK_HD bool vm_promote<double>(double) { return false; }
template <> GK_HD bool vm_promote<float>(float k) { return k < vm_cfg<float>::k_switch; }

// kappa >= 0 (kappa = 0: the uniform distribution on the circle) and finite, x finite.
template <typename T> GK_HD bool vm_bad(T x, T k) {
  return !(k >= T(0)) || !gk_isfinite(k) || !gk_isfinite(x);
}

// kappa = 0 is evaluated at kappa = 1e-30: the CDF, density and dF/dkappa differ from their kappa -> 0
// limits (F = (x + pi) / (2 pi), q = 1 / (2 pi), dF/dkappa = sin(x) / (2 pi), dx/dkappa = -sin x) by a
// relative O(kappa), far below the rounding of either type.
template <typename T> GK_HD T vm_positive(T k) { return k == T(0) ? T(1e-30) : k; }

// F and dF/dkappa and dx/dkappa from the core result at the reduced point.
template <typename T> GK_HD T vm_assemble_F(const VmArg<T>& a, const VmOut<T>& o) {
  if (o.central) return a.n + (T(0.5) + (a.neg ? -o.val : o.val));
  return a.neg ? a.n + o.val : (a.n + T(1)) - o.val;
}

}  // namespace vm_detail

// log density of vonMises(0, kappa) at x: -2 kappa sin^2(x/2) - log(2 pi I0e(kappa)).
template <typename T> GK_HD T vonmises_log_pdf(T x, T kappa) {
  using namespace vm_detail;
  if (vm_bad(x, kappa)) return quiet_nan<T>();
  kappa = vm_positive(kappa);
  const T sh = gk_sin(T(0.5) * x);
  const T alpha = (kappa * sh) * (T(2) * sh);
  T log_i0e;
  if (kappa < vm_cfg<T>::k_switch) {
    T R, r1, U, dU;
    vm_series<T, false>(kappa, 0, T(0), T(0), R, r1, U, dU);
    log_i0e = -gk_log1p(T(2) * R);
  } else {
    const T ik = T(1) / kappa;
    T an = T(1), Z = T(1);
    for (int n = 1; n <= vm_cfg<T>::asym_max; ++n) {
      const T tn = T(2 * n - 1);
      an *= tn * tn * T(0.125) * ik / T(n);
      Z += an;
      if (an < vm_cfg<T>::asym_stop) break;
    }
    log_i0e = gk_log(Z) - T(0.5) * (gk_log(consts<T>::two_pi) + gk_log(kappa));
  }
  return -alpha - gk_log(consts<T>::two_pi) - log_i0e;
}

// CDF (see conventions at the top).
template <typename T> GK_HD T vonmises_cdf(T x, T kappa) {
  using namespace vm_detail;
  if (vm_bad(x, kappa)) return quiet_nan<T>();
  kappa = vm_positive(kappa);
  if (vm_promote(kappa)) return T(vonmises_cdf<double>(double(x), double(kappa)));
  const VmArg<T> a = vm_reduce(x);
  const VmOut<T> o = vm_core<T, false>(a, kappa);
  return vm_assemble_F(a, o);
}

// dF/dkappa at fixed x.
template <typename T> GK_HD T vonmises_cdf_grad_concentration(T x, T kappa) {
  using namespace vm_detail;
  if (vm_bad(x, kappa)) return quiet_nan<T>();
  kappa = vm_positive(kappa);
  if (vm_promote(kappa)) return T(vonmises_cdf_grad_concentration<double>(double(x), double(kappa)));
  const VmArg<T> a = vm_reduce(x);
  const VmOut<T> o = vm_core<T, true>(a, kappa);
  if (o.central) return a.neg ? -o.dval : o.dval;
  return a.neg ? o.dval : -o.dval;
}

// Implicit reparameterization gradient dx/dkappa = -(dF/dkappa) / q(x), density factor fused.
// (x + loc) wrapped into [-pi, pi): the location shift of vonmises_rsample, one pass. The wrap is
// piecewise a shift, so d/dx = d/dloc = 1 (registered in gradkern/_vonmises.py). Samples of
// vonMises(0, kappa) lie in [-pi, pi) already, so with loc = 0 the result is x itself. The rounded
// floor() step can land exactly on pi (or just below -pi): the two final checks put it back in range.
// NaN or inf in either argument gives NaN.
template <typename T> GK_HD T vonmises_shift_wrap(T x, T loc) {
  T y = x + loc;
  if (y >= -consts<T>::pi && y < consts<T>::pi) return y;
  if (!(gk_fabs(y) < infinity<T>())) return quiet_nan<T>();
  if (gk_fabs(loc) > T(4) * consts<T>::pi) {
    // A large |loc| would round x away in x + loc (float: loc = 1e7 leaves 3 distinct sums of 2e4
    // samples). Reduce loc first, in double: fmod is exact for the rounded 2 pi, so the reduced loc is
    // off by m (2 pi - fl(2 pi)) ~ m 2.4e-16 for m turns, below float rounding for |loc| < 1e8.
    double yd = double(x) + gk_fmod(double(loc), consts<double>::two_pi);
    yd -= consts<double>::two_pi * gk_floor((yd + consts<double>::pi) / consts<double>::two_pi);
    y = T(yd);  // float: may round up to pi
    if (y >= consts<T>::pi) y -= consts<T>::two_pi;
    if (y < -consts<T>::pi) y += consts<T>::two_pi;
    return y;
  }
  y -= consts<T>::two_pi * gk_floor((y + consts<T>::pi) / consts<T>::two_pi);
  if (y >= consts<T>::pi) y -= consts<T>::two_pi;
  if (y < -consts<T>::pi) y += consts<T>::two_pi;
  return y;
}

template <typename T> GK_HD T vonmises_grad(T kappa, T x) {
  using namespace vm_detail;
  if (vm_bad(x, kappa)) return quiet_nan<T>();
  kappa = vm_positive(kappa);
  if (vm_promote(kappa)) return T(vonmises_grad<double>(double(kappa), double(x)));
  const VmArg<T> a = vm_reduce(x);
  const VmOut<T> o = vm_core<T, true>(a, kappa);
  // o.g = -dF(-v)/dk / q(v); for xr > 0, dF(xr)/dk = -dF(-v)/dk, so dx/dk = -o.g
  return a.neg ? o.g : -o.g;
}

// Second order in kappa (issue 15), computed in double for both types (the float configuration's
// truncations were tuned for the first order only; float rounds the double result once).
namespace vm_detail {
GK_HD double vonmises_d2_d(double x, double kappa, bool want_cdf) {
  if (vm_bad(x, kappa)) return quiet_nan<double>();
  kappa = vm_positive(kappa);
  const VmArg<double> a = vm_reduce(x);
  const VmOut<double> o = vm_core<double, true, true>(a, kappa);
  // H = F(v) - 1/2 and F(xr) = n + 1/2 +- H; P = F(-v) and F(xr) = n + P (xr < 0) or n + 1 - P.
  // g at xr: a.neg ? o.g : -o.g (vonmises_grad), and so is its kappa-derivative.
  if (want_cdf) return (o.central != a.neg) ? o.d2val : -o.d2val;
  return a.neg ? o.g1 : -o.g1;
}
}  // namespace vm_detail

// d2F/dkappa2 at fixed x.
template <typename T> GK_HD T vonmises_cdf_grad_kk(T x, T kappa) {
  return T(vm_detail::vonmises_d2_d(double(x), double(kappa), true));
}
// d/dkappa of the implicit gradient dx/dkappa, at fixed x.
template <typename T> GK_HD T vonmises_grad_dconcentration(T kappa, T x) {
  return T(vm_detail::vonmises_d2_d(double(x), double(kappa), false));
}

// CDF and gradient together (one evaluation).
template <typename T> GK_HD void vonmises_cdf_and_grad(T x, T kappa, T& F, T& grad) {
  using namespace vm_detail;
  if (vm_bad(x, kappa)) {
    F = grad = quiet_nan<T>();
    return;
  }
  kappa = vm_positive(kappa);
  if (vm_promote(kappa)) {
    double Fd, gd;
    vonmises_cdf_and_grad<double>(double(x), double(kappa), Fd, gd);
    F = T(Fd);
    grad = T(gd);
    return;
  }
  const VmArg<T> a = vm_reduce(x);
  const VmOut<T> o = vm_core<T, true>(a, kappa);
  F = vm_assemble_F(a, o);
  grad = a.neg ? o.g : -o.g;
}

}  // namespace core
}  // namespace gradkern
