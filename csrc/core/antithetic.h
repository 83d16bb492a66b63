// gradkern numerical core: differentiable antithetic sampling of Gaussians (Wu, Goodman & Ermon 2019)
// with the exact chi-square reflection of the sample spread; the per-row body of
// gradkern.antithetic.normal_rsample (gradkern/antithetic.py has the math and the reference path).
//
// gamma_reflect_direct(a, x)               x_a with P(a, x_a) = Q(a, x) (Gamma(a, 1) quantile
//                                          reflection), from gammaincc / gammaincinv, Newton-polished
//                                          on log Q in the far upper tail.
// gamma_reflect_tabulated(a, x, tab, pol)  the same from the cubic Hermite table of log(2 x) ->
//                                          log(2 x_a) that gradkern/antithetic.py builds from the
//                                          direct path; pol: one Newton step on P(a, x_a) = Q(a, x)
//                                          (float64 outputs), rows off the table take the direct path.
// antithetic_standardized_rows<T, Block>   a block of rows: k i.i.d. N(0, 1) values and k - 1 direction
//                                          values in, the k i.i.d. values and the k antithetic ones out.
//
// The reflection is computed in double whatever T is (one call per row of 2k samples, so it is cheap
// relative to the row, and float32 P, Q would lose ~10 ulp); the row sums and the construction run
// in T, as in the Python path. Every loop is capped by k or a fixed count; no allocation.
#pragma once

#include "common.h"
#include "copula.h"  // std_normal_icdf
#include "igamma.h"

namespace gradkern {
namespace core {

enum class AntitheticMethod : int { marsaglia = 0, cheng = 1 };
enum class AntitheticReflection : int { exact = 0, hawkins_wixley = 1 };

// Cubic Hermite table of v(u) = log S_a as a function of u = log S (S = 2 x): interval j covers
// [u_lo + j h, u_lo + (j + 1) h] and holds the power-basis coefficients c0..c3 of v in s = (u - u_j)/h.
struct ReflectTable {
  const double* coef;  // n_int x 4, row-major
  int64_t n_int;
  double u_lo, u_hi, inv_h;  // inv_h = n_int / (u_hi - u_lo)
};

namespace detail {

// log q(x) for Gamma(a, 1) given lgamma(a); a = 1 (k = 3) keeps the x = 0 value finite like xlogy.
GK_HD double log_gamma_density(double a, double lgamma_a, double x) {
  return (a == 1.0 ? 0.0 : (a - 1.0) * gk_log(x)) - x - lgamma_a;
}

}  // namespace detail

// Mirrors gradkern.antithetic._gamma_reflect in float64: x_a = gammaincinv(a, Q(a, x)); where
// Q(a, x) > 1 - 2^-6 (x below the median, x_a in the far upper tail) the target p = P(a, x) = 1 - Q has
// lost relative precision in q, so x_a is polished by Newton steps on log Q(a, x_a) = log p, starting
// from gammaincinv(a, q) or, where that is infinite, from Wilson-Hilferty.
GK_HD double gamma_reflect_direct(double a, double lgamma_a, double x) {
  double q;
  const double p_raw = detail::gammainc_pq(a, x, q);
  double xa = gammaincinv(a, q);
  if (!(q > 1.0 - 0.015625)) return xa;
  // p = 0 only for x = 0 (probability zero) or beyond double; min_normal keeps x_a finite.
  const double p = gk_max(p_raw, num<double>::min_normal);
  const double log_p = gk_log(p);
  const double z = -std_normal_icdf(p);
  const double c = gk_max(1.0 - 1.0 / (9.0 * a) + z / (3.0 * gk_sqrt(a)), 0.5);
  const double wh = a * c * c * c;
  double y = (gk_isfinite(xa) && xa > 0.0) ? xa : gk_max(wh, a);
  for (int i = 0; i < 12; ++i) {  // quadratic convergence from either start; 12 is a safe cap
    const double log_q = gk_log(gammainc_q(a, y));
    // d log Q / dx = -q(x) / Q(x): the Newton step is (log Q - log p) Q / q(x), formed in log space.
    const double step = (log_q - log_p) * gk_exp(log_q - detail::log_gamma_density(a, lgamma_a, y));
    double y_new = gk_min(gk_max(y + step, 0.5 * y), 2.0 * y);  // guards the first steps from a far start
    if (!gk_isfinite(y_new)) y_new = (log_q == -infinity<double>()) ? 0.75 * y : y;  // Q underflowed
    const bool done = gk_fabs(y_new - y) <= 1e-15 * y;
    y = y_new;
    if (done) break;
  }
  return y;
}

// Mirrors gradkern.antithetic._gamma_reflect_fast: the table value (as is for float32 outputs), one
// Newton step on P(a, x_a) = Q(a, x) when polish (float64 outputs), the direct path off the table and,
// when polishing, where Q(a, x) > 1 - 2^-6.
GK_HD double gamma_reflect_tabulated(double a, double lgamma_a, double x, const ReflectTable& tab, bool polish) {
  const double u = gk_log(2.0 * x);
  if (!(u >= tab.u_lo && u <= tab.u_hi)) return gamma_reflect_direct(a, lgamma_a, x);  // also NaN
  const double t = (u - tab.u_lo) * tab.inv_h;
  const double jf = gk_min(gk_floor(t), static_cast<double>(tab.n_int - 1));
  const double s = t - jf;
  const double* c = tab.coef + 4 * static_cast<int64_t>(jf);
  const double v = c[0] + s * (c[1] + s * (c[2] + s * c[3]));
  double xa = gk_exp(v - 0.69314718055994530942);  // S_a / 2
  if (!polish) return xa;
  // Q(a, x) and P(a, x_a) in closed form where there is one without cancellation (k = 2: a = 1/2,
  // P = erf(sqrt x), Q = erfc(sqrt x); k = 3: a = 1, P = -expm1(-x), Q = exp(-x); k = 4: a = 3/2,
  // Q = erfc(sqrt x) + 2 sqrt(x / pi) e^-x, and P = 1 - Q where P = q > 1/4, so that the subtraction
  // loses at most 2 bits): the general series / continued fraction costs ~100 ns each, which dominates
  // a row of 4 to 8 samples.
  double q, p_xa;
  if (a == 0.5) {
    q = gk_erfc(gk_sqrt(x));
    p_xa = gk_erf(gk_sqrt(xa));
  } else if (a == 1.0) {
    q = gk_exp(-x);
    p_xa = -gk_expm1(-xa);
  } else if (a == 1.5) {
    const double two_over_sqrt_pi = 1.12837916709551257390;
    const double rx = gk_sqrt(x);
    q = gk_erfc(rx) + two_over_sqrt_pi * rx * gk_exp(-x);
    if (q > 0.25) {
      const double ry = gk_sqrt(xa);
      p_xa = gk_erf(ry) - two_over_sqrt_pi * ry * gk_exp(-xa);
    } else {
      p_xa = gammainc_p(a, xa);
    }
  } else {
    q = gammainc_q(a, x);
    p_xa = gammainc_p(a, xa);
  }
  if (q > 1.0 - 0.015625) return gamma_reflect_direct(a, lgamma_a, x);
  return xa - (p_xa - q) * gk_exp(-detail::log_gamma_density(a, lgamma_a, xa));
}

// Hawkins-Wixley: (S/d)^(1/4) ~ N(m, .) approximately; reflect the fourth root about m (the 2019
// reference code's approximation, ~1% bias in E[S_a]).
GK_HD double hawkins_wixley_reflect(double s, double df) {
  const double m = 1.0 - 3.0 / (16.0 * df) - 7.0 / (512.0 * df * df) + 231.0 / (8192.0 * df * df * df);
  const double r = 2.0 * m - gk_sqrt(gk_sqrt(s / df));
  return df * (r * r) * (r * r);
}

// Reflected spread sqrt(S_a) = delta_a sqrt(k - 1) of one row, from S = sum (eps_j - mean)^2.
template <typename T>
GK_HD T antithetic_reflected_root(T s, int64_t k, AntitheticReflection reflection, const ReflectTable& tab,
                                  double lgamma_a) {
  const double df = static_cast<double>(k - 1);
  if (reflection == AntitheticReflection::hawkins_wixley)
    return gk_sqrt(static_cast<T>(hawkins_wixley_reflect(static_cast<double>(s), df)));
  const bool polish = sizeof(T) == sizeof(double);
  const T s_a = T(2) * static_cast<T>(gamma_reflect_tabulated(0.5 * df, lgamma_a, 0.5 * static_cast<double>(s), tab,
                                                               polish));
  return gk_sqrt(s_a);
}

// Block rows b < nb (nb <= Block), row b at column offset b: noise[j * stride + b] holds eps_j for
// j < k, then the direction z_i = noise[(k + i) * stride + b], i < k - 1. out[j * stride + b], j < 2k:
// eps_j, then the antithetic standardized values, i.e. the construction applied to mean -mean(eps) and
// std delta_a = sqrt(S_a / (k - 1)), S_a the reflection of S = sum (eps_j - mean)^2. The caller forms
// loc + scale * out. Every pass loops over j outside and the rows inside, so that on the CPU
// (Block = 64) the inner loops run over contiguous memory and vectorize, and the per-j constants of the
// constructions are computed once per block; the CUDA kernel uses Block = 1 (one thread per row).
template <typename T, int Block>
GK_HD void antithetic_standardized_rows(const T* __restrict__ noise, T* __restrict__ out, int64_t k, int64_t stride,
                                        int nb, AntitheticMethod method, AntitheticReflection reflection,
                                        const ReflectTable& tab, double lgamma_a) {
  T mean[Block], s[Block], zz[Block], r[Block], acc[Block];
  for (int b = 0; b < nb; ++b) mean[b] = s[b] = zz[b] = T(0);
  for (int64_t j = 0; j < k; ++j) {
    const T* e = noise + j * stride;
    T* o = out + j * stride;
    for (int b = 0; b < nb; ++b) {
      o[b] = e[b];
      mean[b] += e[b];
    }
  }
  for (int b = 0; b < nb; ++b) mean[b] /= T(k);
  for (int64_t j = 0; j < k; ++j) {
    const T* e = noise + j * stride;
    for (int b = 0; b < nb; ++b) {
      const T d = e[b] - mean[b];
      s[b] += d * d;
    }
  }
  const T* z = noise + k * stride;
  for (int64_t i = 0; i < k - 1; ++i) {
    const T* zi = z + i * stride;
    for (int b = 0; b < nb; ++b) zz[b] += zi[b] * zi[b];
  }
  // r = delta_a sqrt(k - 1) over |z|: both constructions scale the unit direction z / |z| by it. The
  // reflection loop calls libm (scalar); the division is kept out of it so that it vectorizes.
  for (int b = 0; b < nb; ++b) r[b] = antithetic_reflected_root<T>(s[b], k, reflection, tab, lgamma_a);
  for (int b = 0; b < nb; ++b) {
    r[b] /= gk_sqrt(zz[b]);
    acc[b] = T(0);
  }
  T* x = out + k * stride;
  if (method == AntitheticMethod::marsaglia) {
    // w_i = z_i / sqrt((k-i)(k-i+1) |z|^2), t(i) = w_1 + .. + w_i, a = -mean:
    // x_i = a + sqrt(S_a) (t(i-1) + (i-k) w_i), i < k; x_k = a + sqrt(S_a) t(k-1). With
    // c_i = 1/sqrt((k-i)(k-i+1)) and r = sqrt(S_a) / |z|: x_i = a + r (acc + (i-k) c_i z_i),
    // acc = t(i-1) |z| = sum_{j<i} c_j z_j.
    for (int64_t i = 1; i < k; ++i) {
      const T c = T(1) / gk_sqrt(T((k - i) * (k - i + 1)));
      const T ci = T(i - k) * c;
      const T* zi = z + (i - 1) * stride;
      T* xi = x + (i - 1) * stride;
      for (int b = 0; b < nb; ++b) {
        xi[b] = -mean[b] + r[b] * (acc[b] + ci * zi[b]);
        acc[b] += c * zi[b];
      }
    }
    T* xk = x + (k - 1) * stride;
    for (int b = 0; b < nb; ++b) xk[b] = -mean[b] + r[b] * acc[b];
  } else {
    // Inverse Helmert: y_j = sqrt(S_a) z_j / |z| = r z_j (j = 2..k stored at i = j - 2);
    // x_1 = a - sqrt(k(k-1))/k y_2, x_j = x_{j-1} + (sqrt(k+2-j) y_j - sqrt(k-j) y_{j+1}) / sqrt(k+1-j),
    // y_{k+1} = 0. acc holds x_j.
    const T c1 = gk_sqrt(T(k * (k - 1))) / T(k);
    for (int b = 0; b < nb; ++b) {
      acc[b] = -mean[b] - c1 * (r[b] * z[b]);
      x[b] = acc[b];
    }
    for (int64_t j = 2; j <= k; ++j) {
      const T inv = T(1) / gk_sqrt(T(k + 1 - j));
      const T cy = gk_sqrt(T(k + 2 - j)) * inv, cn = gk_sqrt(T(k - j)) * inv;
      const T* yj = z + (j - 2) * stride;
      const T* yn = z + (j - 1) * stride;  // y_{j+1}; not read when j = k
      T* xj = x + (j - 1) * stride;
      if (j < k) {
        for (int b = 0; b < nb; ++b) {
          acc[b] += r[b] * (cy * yj[b] - cn * yn[b]);
          xj[b] = acc[b];
        }
      } else {
        for (int b = 0; b < nb; ++b) {
          acc[b] += r[b] * (cy * yj[b]);
          xj[b] = acc[b];
        }
      }
    }
  }
}

}  // namespace core
}  // namespace gradkern
