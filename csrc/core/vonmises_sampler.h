// von Mises(0, kappa) sampler: Best & Fisher (1979) rejection from a wrapped Cauchy envelope, written so that nothing
// cancels for kappa -> 0 or kappa -> inf, and so that a CPU loop over elements vectorizes: every
// function below is branch-free (selects only) and uses only +, *, /, sqrt and integer bit operations
// (no libm calls), so the same code is the scalar body on the device and a SIMD body on the CPU.
//
// Envelope. The wrapped Cauchy with density proportional to 1 / (r - cos x), r = (1 + rho^2)/(2 rho),
// rho = 2 kappa / a, a = tau + sqrt(2 tau), tau = 1 + s, s = sqrt(1 + 4 kappa^2). Its inverse CDF is
// x = 2 atan(gamma tan(phi)), phi = pi (u1 - 1/2), gamma = sqrt((r - 1)/(r + 1)) = (1 - rho)/(1 + rho).
// With N = a - 2 kappa = 1 + (s - 2 kappa) + sqrt(2 tau) and s - 2 kappa = 1 / (s + 2 kappa) (no
// cancellation): gamma = N / (a + 2 kappa) and kappa (r - 1) = N^2 / (4 a).
// The proposal is kept as the pair (num, den) = (gamma sin(phi), cos(phi)) (den > 0), so that
// sin^2(x/2) = num^2 / (num^2 + den^2) needs no trigonometric function, and the angle 2 atan(num/den)
// is formed once, for the accepted proposal only (vm_angle).
// Acceptance. c = kappa ((r - 1) + 2 sin^2(x/2)) is the target/envelope ratio in Best & Fisher's
// scaling; accept when u2 <= c e^(1 - c) (their log(c/u2) + 1 - c >= 0) or when the squeeze
// c (2 - c) > u2 holds (c (2 - c) <= c e^(1 - c) for all c; both are evaluated, without branching).
// Each proposal uses two uniforms (u1, u2), in this order, from the element's Philox stream: in float a
// Philox block (4 words) holds two proposals, in double one (a double uniform takes two words). The
// acceptance probability is >= 0.65 for every kappa (Best & Fisher's efficiency bound), so after
// `max_draws` proposals the probability of never accepting is <= 0.35^max_draws;
// kVonMisesMaxProposals = 72 gives < 1e-32. If the budget is exhausted the last proposal is returned
// (a valid point of [-pi, pi), drawn from the envelope) and *exhausted is set.
// kappa -> 0 needs no special case: gamma -> 1 and c -> 1, so every proposal is accepted by the
// squeeze and x = 2 phi is uniform. kappa above max/8 is sampled as max/8 (a point mass at 0 to
// working precision either way). Result in [-pi, pi).
#pragma once

#include <cstdint>
#include <cstring>

#include "common.h"

namespace gradkern {
namespace core {
static constexpr int kVonMisesMaxProposals = 72;

namespace vm_detail {

// Polynomials, all on reduced ranges and accurate to < 1 ulp of T there:
//  sin(pi r) = r S(r^2), cos(pi r) = C(r^2) for |r| <= 1/4 (Taylor; truncation error at r = 1/4:
//    8e-20 / 3e-21 double, 1.8e-9 / 1.2e-10 float);
//  e^r = E(r) for |r| <= ln2 / 2 (Taylor; 4e-18 double, 5e-9 float);
//  atan(w) = w A(w^2) for |w| <= tan(pi/8) (mpmath.chebyfit; 3.5e-17 double, 1.9e-8 float).
// Horner's rule for c[0] z^(N-1) + ... + c[N-1] (tables below are written highest degree first).
template <typename T, int N> GK_HD_FORCE T vm_horner(const T (&c)[N], T z) {
  T p = c[0];
  for (int k = 1; k < N; ++k) p = p * z + c[k];
  return p;
}

template <typename T> struct vm_sampler_poly;

template <> struct vm_sampler_poly<double> {
  static GK_HD_FORCE double sinpi_r(double r2) {
    static constexpr double c[9] = {
        0.000000795205400147551278478, -0.0000219153534478302158274, 0.000466302805767612564421,
        -0.00737043094571435077726, 0.0821458866111282287988, -0.599264529320792076888,
        2.55016403987734544386, -5.16771278004997002925, 3.14159265358979323846,
    };
    return vm_horner(c, r2);
  }
  static GK_HD_FORCE double cospi(double r2) {
    static constexpr double c[10] = {
        -0.000000138789524622137721145, 0.0000043030695870329470073, -0.000104638104924845707118,
        0.0019295743094039230479, -0.0258068913900140600126, 0.235330630358893204542,
        -1.33526276885458949588, 4.05871212641676821819, -4.93480220054467930942,
        1.0,
    };
    return vm_horner(c, r2);
  }
  static GK_HD_FORCE double exp_r(double r) {
    static constexpr double c[14] = {
        0.000000000160590438368216145994, 0.00000000208767569878680989792, 0.0000000250521083854417187751,
        0.000000275573192239858906526, 0.00000275573192239858906526, 0.0000248015873015873015873,
        0.000198412698412698412698, 0.00138888888888888888889, 0.00833333333333333333333,
        0.0416666666666666666667, 0.166666666666666666667, 0.5,
        1.0, 1.0,
    };
    return vm_horner(c, r);
  }
  static GK_HD_FORCE double atan_w(double z) {
    static constexpr double c[11] = {
        0.0211353731576932452057, -0.043480522157164624777, 0.0568834922680901047935,
        -0.0664023393042940858874, 0.0768995349630685775628, -0.0909077307480841378967,
        0.111111061804559452198, -0.142857141809764668302, 0.199999999988551101336,
        -0.333333333333284385718, 0.99999999999999996532,
    };
    return vm_horner(c, z);
  }
};
template <> struct vm_sampler_poly<float> {
  static GK_HD_FORCE float sinpi_r(float r2) {
    static constexpr float c[5] = {
        0.0821458866111282287988f, -0.599264529320792076888f, 2.55016403987734544386f,
        -5.16771278004997002925f, 3.14159265358979323846f,
    };
    return vm_horner(c, r2);
  }
  static GK_HD_FORCE float cospi(float r2) {
    static constexpr float c[6] = {
        -0.0258068913900140600126f, 0.235330630358893204542f, -1.33526276885458949588f,
        4.05871212641676821819f, -4.93480220054467930942f, 1.0f,
    };
    return vm_horner(c, r2);
  }
  static GK_HD_FORCE float exp_r(float r) {
    static constexpr float c[8] = {
        0.000198412698412698412698f, 0.00138888888888888888889f, 0.00833333333333333333333f,
        0.0416666666666666666667f, 0.166666666666666666667f, 0.5f,
        1.0f, 1.0f,
    };
    return vm_horner(c, r);
  }
  static GK_HD_FORCE float atan_w(float z) {
    static constexpr float c[5] = {
        0.079762918067945579104f, -0.138484902122692076586f, 0.199740824155076671054f,
        -0.333327857719248436474f, 0.999999981264611120964f,
    };
    return vm_horner(c, z);
  }
};

// IEEE layout (common.h) plus the constants of vm_exp_le1.
template <typename T> struct vm_ieee;
template <> struct vm_ieee<double> : ieee<double> {
  static constexpr double round_magic = 6755399441055744.0;  // 1.5 * 2^52: x + magic rounds x to an integer
  static constexpr double y_min = -700.0;                    // e^-700 is still normal
};
template <> struct vm_ieee<float> : ieee<float> {
  static constexpr float round_magic = 12582912.0f;          // 1.5 * 2^23
  static constexpr float y_min = -86.0f;                     // e^-86 is still normal
};

// e^y for y <= 1 (the acceptance test's e^(1 - c), c > 0); 0 below y_min, where the acceptance
// probability c e^(1 - c) is below 1e-300 (double) / 1e-36 (float) and every u2 > 0 rejects anyway.
// y = n ln2 + r, |r| <= ln2/2, n from the round-to-nearest of y / ln2 (the magic-number add; exact in
// the default rounding mode), 2^n by writing the exponent field.
template <typename T> GK_HD_FORCE T vm_exp_le1(T y) {
  typedef vm_ieee<T> F;
  typedef typename F::U U;
  const T yc = y < F::y_min ? F::y_min : y;
  const T t = yc * T(1.44269504088896340736) + F::round_magic;
  const T n = t - F::round_magic;
  const T r = (yc - n * F::ln2_hi) - n * F::ln2_lo;
  // the low bits of t hold n (two's complement, |n| < 2^mant); add the bias and move into the exponent
  const U e = (to_bits(t) - to_bits(F::round_magic) + F::bias) << F::mant;
  const T v = vm_sampler_poly<T>::exp_r(r) * from_bits<T>(e);
  return y < F::y_min ? T(0) : v;
}

// sin and cos of 2 pi u for u in (0, 1), branch-free: t = 4 u, q = round(t) (the magic-number rounding),
// x = (t - q) / 2 in [-1/4, 1/4] (exact), 2 pi u = q pi / 2 + pi x; the polynomials of pi x above, rotated
// by the quadrant q mod 4. (The Box-Muller normals of philox_normal.h; half angles pi u as u / 2.)
template <typename T> GK_HD_FORCE void sincos_two_pi(T u, T& s, T& c) {
  typedef vm_sampler_poly<T> P;
  const T t = T(4) * u;                                                       // exact
  const T q = (t + vm_ieee<T>::round_magic) - vm_ieee<T>::round_magic;        // round(t), 0..4
  const T x = T(0.5) * (t - q), x2 = x * x;                                   // exact, |x| <= 1/4
  const T s0 = x * P::sinpi_r(x2), c0 = P::cospi(x2);
  const int k = static_cast<int>(q) & 3;
  const T s1 = (k & 1) ? c0 : s0, c1 = (k & 1) ? s0 : c0;
  s = (k & 2) ? -s1 : s1;                   // sin(a + k pi/2): s, c, -s, -c
  c = ((k ^ (k >> 1)) & 1) ? -c1 : c1;      // cos(a + k pi/2): c, -s, -c, s
}

}  // namespace vm_detail

// Per-kappa constants of the envelope (see the comment above).
template <typename T> struct VmSamplerParams {
  T kappa;  // clamped to <= max/8
  T gamma;  // (1 - rho) / (1 + rho)
  T krm1;   // kappa (r - 1)
};

// kappa must be >= 0 and finite (callers return NaN otherwise); kappa = 0 (the uniform distribution)
// gives gamma = 1 and kappa (r - 1) = 1, so every proposal is accepted and x = 2 phi. Branch-free.
template <typename T> GK_HD_FORCE VmSamplerParams<T> vonmises_sampler_params(T kappa) {
  const T k = kappa > num<T>::max * T(0.125) ? num<T>::max * T(0.125) : kappa;
  // s = sqrt(1 + 4 k^2); above `big` the 1 is below half an ulp of 4 k^2 and s = 2 k (k^2 would
  // overflow for huge k).
  const T big = sizeof(T) == sizeof(double) ? T(134217728.0) : T(4096.0);  // 2^27, 2^12
  const T kc = k > big ? big : k;
  const T s = k > big ? T(2) * k : gk_sqrt(T(1) + T(4) * kc * kc);
  const T s_m_2k = T(1) / (s + T(2) * k);  // s - 2k without cancellation
  const T tau = T(1) + s;
  const T st = gk_sqrt(T(2) * tau);
  const T a = tau + st;
  const T nn = (T(1) + s_m_2k) + st;       // a - 2k
  VmSamplerParams<T> p;
  p.kappa = k;
  p.gamma = nn / (a + T(2) * k);
  p.krm1 = nn * nn / (T(4) * a);
  return p;
}

// One proposal from uniforms u1, u2 in (0, 1). Writes the proposal as (num, den) and returns whether
// it is accepted. Branch-free.
template <typename T>
GK_HD_FORCE bool vonmises_propose(const VmSamplerParams<T>& p, T u1, T u2, T& num, T& den) {
  typedef vm_detail::vm_sampler_poly<T> P;
  // sin and cos of phi = pi h, h = u1 - 1/2 in (-1/2, 1/2) (exact), from the polynomials on
  // r = min(|h|, 1/2 - |h|) <= 1/4 (both exact), swapped for |h| > 1/4: cos(phi) keeps its relative
  // accuracy near |phi| = pi/2 (the Cauchy tails).
  const T h = u1 - T(0.5);
  const T ah = h < T(0) ? -h : h;
  const bool hi = ah > T(0.25);
  const T r = hi ? T(0.5) - ah : ah;
  const T r2 = r * r;
  const T sp = r * P::sinpi_r(r2);
  const T cp = P::cospi(r2);
  const T sn = hi ? cp : sp;
  num = p.gamma * (h < T(0) ? -sn : sn);
  den = hi ? sp : cp;
  const T y2 = num * num;
  const T sin2 = y2 / (den * den + y2);  // sin^2(x/2), x = 2 atan(num / den)
  const T c = p.krm1 + T(2) * p.kappa * sin2;
  return (c * (T(2) - c) > u2) | (c * vm_detail::vm_exp_le1(T(1) - c) >= u2);
}

// The accepted angle 2 atan(num / den) (den > 0) in [-pi, pi). One division: |num|/den is reduced to
// |w| <= tan(pi/8) by atan(v) = pi/4 + atan((v - 1)/(v + 1)) for tan(pi/8) < v <= 1/tan(pi/8) and
// atan(v) = pi/2 - atan(1/v) above. Branch-free.
template <typename T> GK_HD_FORCE T vonmises_proposal_angle(T num, T den) {
  const T t8 = T(0.414213562373095048802);
  const T a = num < T(0) ? -num : num;
  const bool mid = a > t8 * den;
  const bool big = a * t8 > den;
  const T wn = big ? -den : (mid ? a - den : a);
  const T wd = big ? a : (mid ? a + den : den);
  const T base = big ? T(1.57079632679489661923) : (mid ? T(0.785398163397448309616) : T(0));
  const T w = wn / wd;
  const T half = base + w * vm_detail::vm_sampler_poly<T>::atan_w(w * w);
  const T x = num < T(0) ? T(-2) * half : T(2) * half;
  const T pi = consts<T>::pi;
  return x < pi ? x : -pi;
}

// The whole sampler for one element, drawing uniforms from next_uniform() (two per proposal).
template <typename T, typename Uniform>
GK_HD T vonmises_sample(T kappa, Uniform& next_uniform, int max_draws, bool* exhausted = nullptr) {
  if (exhausted) *exhausted = false;
  if (!(kappa >= T(0)) || !gk_isfinite(kappa)) return quiet_nan<T>();
  const VmSamplerParams<T> p = vonmises_sampler_params(kappa);
  T num = T(0), den = T(1);
  for (int it = 0; it < max_draws; ++it) {
    const T u1 = next_uniform();
    const T u2 = next_uniform();
    if (vonmises_propose(p, u1, u2, num, den)) break;
    if (it + 1 == max_draws && exhausted) *exhausted = true;
  }
  return vonmises_proposal_angle(num, den);
}

}  // namespace core
}  // namespace gradkern
