// Gamma(alpha, 1) sampler: Marsaglia & Tsang (2000), "A simple method for generating gamma variables",
// with their boost for alpha < 1 carried out in log space:
//   G(alpha) = G(alpha + 1) U^(1/alpha)  ->  log G(alpha) = log G(alpha + 1) + log(U) / alpha,
// so that concentrations down to 1e-6, whose samples underflow to 0 even in double, still give finite,
// correctly distributed logarithms (the Beta and Dirichlet samplers normalise in log space).
//
// For a >= 1: d = a - 1/3, c = 1 / sqrt(9 d); draw x ~ N(0, 1) and u ~ U(0, 1), v = (1 + c x)^3; accept
// when 1 + c x > 0 and u < 1 - 0.0331 x^4 (the squeeze) or log u < x^2/2 + d (1 - v + log v); the sample
// is d v. The acceptance probability is above 0.95 for every a >= 1, so kGammaMaxTries = 64 tries leave
// a failure probability below 1e-80; if the budget is ever exhausted the last positive candidate (or d)
// is returned. x comes from Box-Muller on two uniforms (one normal per pair: the second is rarely needed).
// Uniforms come from next_uniform(), in (0, 1) (never 0 or 1, so every log is finite).
//
// Special values: alpha <= 0 or NaN -> NaN (torch's convention for out-of-domain arguments; torch's own
// sampler returns a finite number there); alpha = +inf -> +inf.
#pragma once

#include <cstdint>

#include "common.h"
#include "vonmises_sampler.h"  // vm_detail::vm_sampler_poly: sin(pi r), cos(pi r) for |r| <= 1/4

namespace gradkern {
namespace core {

static constexpr int kGammaMaxTries = 64;
// Uniforms one draw may consume: three per try and one for the boost.
static constexpr int kGammaMaxUniforms = 3 * kGammaMaxTries + 1;

// cos(2 pi u) for u in (0, 1) from the von Mises sampler's polynomials (< 1 ulp on |r| <= 1/4; libm's cos
// cost a third of a double draw): cos(2 pi u) = -cos(pi r), r = |2u - 1| in [0, 1), reduced to |r| <= 1/4
// by cos(pi r) = -cos(pi (1 - r)) and cos(pi r) = sin(pi (1/2 - r)). All steps exact but the polynomials.
template <typename T> GK_HD_FORCE T cos_two_pi(T u) {
  typedef vm_detail::vm_sampler_poly<T> P;
  T r = gk_fabs(T(2) * u - T(1));  // exact for u in (0, 1) (Sterbenz near 1/2, a power-of-2 scaling)
  const bool flip = r > T(0.5);
  r = flip ? T(1) - r : r;  // exact
  const bool use_sin = r > T(0.25);
  const T s = use_sin ? T(0.5) - r : r;  // exact
  const T s2 = s * s;
  const T c = use_sin ? s * P::sinpi_r(s2) : P::cospi(s2);
  return flip ? c : -c;
}

// One draw of Gamma(alpha, 1): the sample (log_space = false) or its logarithm (log_space = true).
template <typename T, typename Uniform>
GK_HD T gamma_draw(T alpha, Uniform& next_uniform, bool log_space) {
  if (!(alpha > T(0))) return quiet_nan<T>();
  if (!(alpha < infinity<T>())) return infinity<T>();
  const bool boost = alpha < T(1);
  const T a = boost ? alpha + T(1) : alpha;
  const T d = a - T(1) / T(3);
  const T c = T(1) / gk_sqrt(T(9) * d);
  T t = T(1);  // the accepted 1 + c x (v = t^3)
  for (int it = 0; it < kGammaMaxTries; ++it) {
    const T u1 = next_uniform();
    const T u2 = next_uniform();
    const T x = gk_sqrt(T(-2) * gk_log(u1)) * cos_two_pi(u2);
    const T u = next_uniform();
    const T tt = T(1) + c * x;
    if (!(tt > T(0))) continue;
    t = tt;
    const T x2 = x * x;
    if (u < T(1) - T(0.0331) * x2 * x2) break;
    const T v = t * t * t;
    if (gk_log(u) < T(0.5) * x2 + d * (T(1) - v + T(3) * gk_log(t))) break;
  }
  if (!boost && !log_space) return d * (t * t * t);
  T lg = gk_log(d) + T(3) * gk_log(t);
  if (boost) lg += gk_log(next_uniform()) / alpha;
  return log_space ? lg : gk_exp(lg);
}

// Beta(a, b) from two log-space Gamma draws (in this order from one stream): sigmoid(log g_a - log g_b),
// clamped into [lo, hi] (the caller's [tiny, 1 - eps/2]). NaN when either parameter is invalid.
template <typename T, typename Uniform>
GK_HD T beta_draw(T a, T b, Uniform& next_uniform, T lo, T hi) {
  const T la = gamma_draw(a, next_uniform, true);
  const T lb = gamma_draw(b, next_uniform, true);
  const T x = T(1) / (T(1) + gk_exp(lb - la));  // no cancellation for either sign; NaN propagates
  return x < lo ? lo : (x > hi ? hi : x);
}

}  // namespace core
}  // namespace gradkern
