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
#include "normal.h"
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
    const double step = (log_q - log_p) * gk_exp(log_q - log_gamma_density(a, lgamma_a, y));
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
  double xa = gk_exp(v - consts<double>::ln2);  // S_a / 2
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
    const double two_over_sqrt_pi = 2.0 / consts<double>::sqrt_pi;
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
  return xa - (p_xa - q) * gk_exp(-log_gamma_density(a, lgamma_a, xa));
}

// Hawkins-Wixley: (S/d)^(1/4) ~ N(m, .) approximately; reflect the fourth root about m (the 2019
// reference code's approximation, ~1% bias in E[S_a]).
GK_HD double hawkins_wixley_reflect(double s, double df) {
  const double m = 1.0 - 3.0 / (16.0 * df) - 7.0 / (512.0 * df * df) + 231.0 / (8192.0 * df * df * df);
  const double r = 2.0 * m - gk_sqrt(gk_sqrt(s / df));
  return df * (r * r) * (r * r);
}

// S_a = F^{-1}(1 - F(S)) for chi2 with df degrees of freedom (lgamma_a = lgamma(df / 2)), from the
// table; polish: one Newton step (float64 outputs). The elementwise op chi2_reflect and the fused
// sampler both take this path.
GK_HD double chi2_reflect_value(double s, double df, double lgamma_a, AntitheticReflection reflection,
                                const ReflectTable& tab, bool polish) {
  if (reflection == AntitheticReflection::hawkins_wixley) return hawkins_wixley_reflect(s, df);
  return 2.0 * gamma_reflect_tabulated(0.5 * df, lgamma_a, 0.5 * s, tab, polish);
}

// Range of the reflection table: u = log S between the chi2 quantiles tail and 1 - tail of S; rows
// outside it (2 tail of them) take the direct path.
GK_HD void reflection_table_range(double a, double tail, double* u_lo, double* u_hi) {
  *u_lo = gk_log(2.0 * gammaincinv(a, tail));
  *u_hi = gk_log(2.0 * gammaincinv(a, 1.0 - tail));
}

// The table itself: v(u) = log S_a on `nodes` equispaced u in [u_lo, u_hi] with exact values (direct
// path) and exact derivatives dv/du = -(f(S) / f(S_a)) (S / S_a), and on each of the nodes - 1
// intervals the cubic Hermite interpolant in the power basis of s = (u - u_j) / h, written to coef
// (4 doubles per interval), so that evaluation is one gather and a Horner scheme. The interpolation
// error is at most h^4 max|v^(4)| / 384: below float32 rounding for 4096 nodes, and float64 outputs
// take one Newton step from it. Fills intervals [begin, end) (node positions are global, so any split
// of the work gives the same table).
GK_HD void reflection_table_fill(double a, double lgamma_a, double u_lo, double u_hi, int64_t nodes, int64_t begin,
                                 int64_t end, double* coef) {
  const double h = (u_hi - u_lo) / static_cast<double>(nodes - 1);
  double v_prev = 0.0, m_prev = 0.0;
  for (int64_t j = begin; j <= end; ++j) {
    const double u = (j == nodes - 1) ? u_hi : u_lo + static_cast<double>(j) * h;
    const double x = 0.5 * gk_exp(u);
    const double xa = gamma_reflect_direct(a, lgamma_a, x);
    const double v = gk_log(2.0 * xa);
    const double m = -h * gk_exp(log_gamma_density(a, lgamma_a, x) -
                                 log_gamma_density(a, lgamma_a, xa) + u - v);
    if (j > begin) {
      double* c = coef + 4 * (j - 1);
      c[0] = v_prev;
      c[1] = m_prev;
      c[2] = 3.0 * (v - v_prev) - 2.0 * m_prev - m;
      c[3] = 2.0 * (v_prev - v) + m_prev + m;
    }
    v_prev = v;
    m_prev = m;
  }
}

// Reflected spread sqrt(S_a) = delta_a sqrt(k - 1) of one row, from S = sum (eps_j - mean)^2.
template <typename T>
GK_HD T antithetic_reflected_root(T s, int64_t k, AntitheticReflection reflection, const ReflectTable& tab,
                                  double lgamma_a) {
  const double df = static_cast<double>(k - 1);
  if (reflection == AntitheticReflection::hawkins_wixley)
    return gk_sqrt(static_cast<T>(hawkins_wixley_reflect(static_cast<double>(s), df)));
  const bool polish = sizeof(T) == sizeof(double);
  return gk_sqrt(static_cast<T>(chi2_reflect_value(static_cast<double>(s), df, lgamma_a, reflection, tab, polish)));
}

// The antithetic construction of a block of rows b < nb (nb <= Block, row b at column offset b):
// from the direction z_i = z[i * stride + b] (i < k - 1) it writes x_j = x[j * stride + b] (j < k),
// k values with sample mean a[b] and sum of squared deviations (r[b] |z|)^2, i.e. r[b] = delta sqrt(k - 1)
// / |z| for a target sample std delta. Marsaglia's construction or Cheng's inverse Helmert transform
// (both orthogonal bases of the complement of 1, so x - a is |z| r times a unit vector uniform on that
// sphere). Loops run over j outside and rows inside, so that on the CPU (Block = 64) the inner loops
// walk contiguous memory and vectorize and the per-j constants are computed once per block.
template <typename T, int Block>
GK_HD void antithetic_construct_rows(const T* __restrict__ z, T* __restrict__ x, const T* a, const T* r, int64_t k,
                                     int64_t stride, int nb, AntitheticMethod method) {
  T acc[Block];
  if (method == AntitheticMethod::marsaglia) {
    // w_i = z_i / sqrt((k-i)(k-i+1) |z|^2), t(i) = w_1 + .. + w_i:
    // x_i = a + sqrt(S) (t(i-1) + (i-k) w_i), i < k; x_k = a + sqrt(S) t(k-1). With
    // c_i = 1/sqrt((k-i)(k-i+1)) and r = sqrt(S) / |z|: x_i = a + r (acc + (i-k) c_i z_i),
    // acc = t(i-1) |z| = sum_{j<i} c_j z_j.
    for (int b = 0; b < nb; ++b) acc[b] = T(0);
    for (int64_t i = 1; i < k; ++i) {
      const T c = T(1) / gk_sqrt(T((k - i) * (k - i + 1)));
      const T ci = T(i - k) * c;
      const T* zi = z + (i - 1) * stride;
      T* xi = x + (i - 1) * stride;
      for (int b = 0; b < nb; ++b) {
        xi[b] = a[b] + r[b] * (acc[b] + ci * zi[b]);
        acc[b] += c * zi[b];
      }
    }
    T* xk = x + (k - 1) * stride;
    for (int b = 0; b < nb; ++b) xk[b] = a[b] + r[b] * acc[b];
  } else {
    // Inverse Helmert: y_j = sqrt(S) z_j / |z| = r z_j (j = 2..k stored at i = j - 2);
    // x_1 = a - sqrt(k(k-1))/k y_2, x_j = x_{j-1} + (sqrt(k+2-j) y_j - sqrt(k-j) y_{j+1}) / sqrt(k+1-j),
    // y_{k+1} = 0. acc holds x_j.
    const T c1 = gk_sqrt(T(k * (k - 1))) / T(k);
    for (int b = 0; b < nb; ++b) {
      acc[b] = a[b] - c1 * (r[b] * z[b]);
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

// Sum of squares of the k - 1 direction values of each row of a block.
template <typename T, int Block>
GK_HD void direction_sq_norm(const T* __restrict__ z, int64_t k, int64_t stride, int nb, T* zz) {
  for (int b = 0; b < nb; ++b) zz[b] = T(0);
  for (int64_t i = 0; i < k - 1; ++i) {
    const T* zi = z + i * stride;
    for (int b = 0; b < nb; ++b) zz[b] += zi[b] * zi[b];
  }
}

// The construction alone (gradkern.antithetic.antithetic_from_moments): x with sample mean 0 and
// unbiased sample std 1 along the direction z, so that mean + std * x has the requested moments.
template <typename T, int Block>
GK_HD void antithetic_unit_rows(const T* __restrict__ z, T* __restrict__ x, int64_t k, int64_t stride, int nb,
                                AntitheticMethod method) {
  T a[Block], r[Block];
  direction_sq_norm<T, Block>(z, k, stride, nb, r);
  const T root = gk_sqrt(T(k - 1));
  for (int b = 0; b < nb; ++b) {
    a[b] = T(0);
    r[b] = root / gk_sqrt(r[b]);
  }
  antithetic_construct_rows<T, Block>(z, x, a, r, k, stride, nb, method);
}

// The fused sampler (gradkern.antithetic.normal_rsample): noise[j * stride + b] holds eps_j for j < k,
// then the direction z_i = noise[(k + i) * stride + b], i < k - 1. out[j * stride + b], j < 2k: eps_j,
// then the antithetic standardized values, the construction with mean -mean(eps) and std
// delta_a = sqrt(S_a / (k - 1)), S_a the reflection of S = sum (eps_j - mean)^2. The caller forms
// loc + scale * out. The CUDA kernel uses Block = 1 (one thread per row).
template <typename T, int Block>
GK_HD void antithetic_standardized_rows(const T* __restrict__ noise, T* __restrict__ out, int64_t k, int64_t stride,
                                        int nb, AntitheticMethod method, AntitheticReflection reflection,
                                        const ReflectTable& tab, double lgamma_a) {
  T mean[Block], s[Block], zz[Block], r[Block];
  for (int b = 0; b < nb; ++b) mean[b] = s[b] = T(0);
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
  direction_sq_norm<T, Block>(z, k, stride, nb, zz);
  // r = delta_a sqrt(k - 1) over |z|. The reflection loop calls libm (scalar); the division is kept out
  // of it so that it vectorizes.
  for (int b = 0; b < nb; ++b) r[b] = antithetic_reflected_root<T>(s[b], k, reflection, tab, lgamma_a);
  for (int b = 0; b < nb; ++b) {
    r[b] /= gk_sqrt(zz[b]);
    mean[b] = -mean[b];
  }
  antithetic_construct_rows<T, Block>(z, out + k * stride, mean, r, k, stride, nb, method);
}

}  // namespace core
}  // namespace gradkern
