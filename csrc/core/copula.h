// gradkern numerical core: antithetic copulas for multi-sample Bernoulli gradients (ARMS,
// Dimitriev & Zhou 2021, "ARMS: Antithetic-REINFORCE-Multi-Sample Gradient for Binary Variables").
//
// bvn_cdf(h, k, r)                        P(X < h, Y < k) for a standard bivariate normal with
//                                         correlation r (Drezner-Wesolowsky / Genz integrals, 20-point
//                                         Gauss-Legendre; absolute error ~1e-16 in double).
// dirichlet_copula_rho(p, n, mode)        common pairwise correlation of b_i = 1[u_i < p] for the
//                                         antithetic Dirichlet copula (Theorem 4 / eq. 8), for u, for
//                                         its reflection 1 - u, or for the orientation ARMS uses.
// gaussian_copula_rho(p, n)               the same for the antithetic Gaussian copula (Algorithm 2).
// dirichlet_copula_sample(n, src, out, s) one draw of Algorithm 1 (n uniforms, stride s).
// gaussian_copula_sample(n, src, out, s)  one draw of Algorithm 2, O(n) (centred i.i.d. normals).
//
// The samplers are written once over an abstract uniform source (anything with a member
// `template <typename T> T uniform()` returning values in the open interval (0, 1), such as core::Philox
// from philox.h), so the CPU and CUDA kernels share the body (the
// BaseSampler pattern of ATen's Distributions.h). They use `out` as scratch for the first pass, so
// they need no allocation.
#pragma once

#include "common.h"
#include "normal.h"

namespace gradkern {
namespace core {

namespace detail {

// 20-point Gauss-Legendre rule on [a, b] (nodes from tools/gen_gauss_legendre.py 20). Local arrays
// rather than namespace-scope tables so the same code compiles for the device without __constant__.
template <typename T, typename F>
GK_HD T gauss_legendre20(T a, T b, const F& f) {
  const double x[10] = {0.99312859918509492479, 0.96397192727791379127, 0.91223442825132590587,
                        0.83911697182221882339, 0.74633190646015079261, 0.63605368072651502545,
                        0.510867001950827098,   0.37370608871541956067, 0.22778585114164507808,
                        0.076526521133497333755};
  const double w[10] = {0.017614007139152118312, 0.040601429800386941331, 0.06267204833410906357,
                        0.083276741576704748725, 0.10193011981724043504,  0.11819453196151841731,
                        0.1316886384491766269,   0.14209610931838205133,  0.14917298647260374679,
                        0.1527533871307258507};
  const T c = T(0.5) * (a + b), hw = T(0.5) * (b - a);
  T s = T(0);
  for (int i = 0; i < 10; ++i) {
    const T dx = hw * T(x[i]);
    s += T(w[i]) * (f(c - dx) + f(c + dx));
  }
  return s * hw;
}

}  // namespace detail

// Bivariate standard normal CDF P(X < h, Y < k), Corr(X, Y) = r, |r| <= 1 (NaN otherwise).
//
// |r| < 0.925 (Drezner & Wesolowsky 1990, Genz 2004): with dPhi2/dr = phi2 (Plackett) and r = sin(t),
//   Phi2(h, k; r) = Phi(h) Phi(k) + 1/(2 pi) int_0^asin(r) exp(-(h^2 + k^2 - 2 h k sin t) / (2 cos^2 t)) dt,
// a smooth integrand on a range of length <= 1.18: one 20-point Gauss-Legendre panel.
//
// r >= 0.925: integrate Plackett's identity down from r = 1, where Phi2 = Phi(min(h, k)). With
// x = sqrt(1 - t^2) (so phi2 dt = -exp(-Q / (2 x^2)) / (2 pi t) dx and Q / (2 x^2) splits exactly into
// (h - k)^2 / (2 x^2) + h k / (1 + t)):
//   Phi2(h, k; r) = Phi(min(h, k)) - 1/(2 pi) int_0^sqrt(1-r^2) exp(-(h-k)^2/(2x^2) - hk/(1+t)) / t dx.
// exp(-(h-k)^2 / (2x^2)) switches on steeply near x ~ |h - k|, so the range is cut into geometric panels
// [a/2, a], [a/4, a/2], ... down to where that factor is below exp(-745) (or x < 1e-17 a), each smooth
// enough for 20 points.
// r <= -0.925: Phi2(h, k; r) = P(X < h) - Phi2(h, -k; -r).
template <typename T> GK_HD T bvn_cdf(T h, T k, T r) {
  if (gk_isnan(h) || gk_isnan(k) || !(r >= T(-1) && r <= T(1))) return quiet_nan<T>();
  // Infinite limits reduce to one dimension (and keep inf out of the integrands).
  if (h == -infinity<T>() || k == -infinity<T>()) return T(0);
  if (h == infinity<T>()) return std_normal_cdf(k);
  if (k == infinity<T>()) return std_normal_cdf(h);
  const T inv2pi = consts<T>::inv_two_pi;
  if (gk_fabs(r) < T(0.925)) {
    // asin(r) through atan2 (common.h has no asin wrapper).
    const T hk = h * k, hs = T(0.5) * (h * h + k * k);
    const T integral = detail::gauss_legendre20(T(0), gk_atan2(r, gk_sqrt((T(1) - r) * (T(1) + r))), [&](T th) {
      const T s = gk_sin(th), c2 = T(1) - s * s;
      return gk_exp((hk * s - hs) / c2);
    });
    return std_normal_cdf(h) * std_normal_cdf(k) + inv2pi * integral;
  }
  // Near-singular correlation. For r < 0 reflect Y -> -Y.
  const bool neg = r < T(0);
  const T kk = neg ? -k : k;
  const T rr = gk_fabs(r);
  const T a = gk_sqrt((T(1) - rr) * (T(1) + rr));
  T tail = T(0);  // 1/(2 pi) int_0^a ...
  if (a > T(0)) {
    const T d = h - kk, d2 = T(0.5) * d * d, hk = h * kk;
    auto f = [&](T x) {
      const T t = gk_sqrt((T(1) - x) * (T(1) + x));
      return gk_exp(-d2 / (x * x) - hk / (T(1) + t)) / t;
    };
    // Lowest x that matters: below x_lo the first factor is < exp(-745) (or the panel is negligible).
    T x_lo = gk_fabs(d) / T(38.6);
    x_lo = gk_max(x_lo, T(1e-17) * a);
    T hi = a;
    for (int i = 0; i < 64 && hi > x_lo; ++i) {
      const T lo = gk_max(T(0.5) * hi, x_lo);
      tail += detail::gauss_legendre20(lo, hi, f);
      hi = lo;
    }
    tail *= inv2pi;
  }
  if (!neg) return std_normal_cdf(gk_min(h, k)) - tail;
  // Phi2(h, k; r) = Phi(h) - [Phi(min(h, -k)) - tail]; P(-k < X < h) from whichever tail is accurate.
  T band = T(0);
  if (h > -k) band = (-k > T(0)) ? std_normal_ccdf(-k) - std_normal_ccdf(h) : std_normal_cdf(h) - std_normal_cdf(-k);
  return gk_max(T(0), band + tail);
}

// ---------------------------------------------------------------------------------------------------
// Dirichlet copula correlation (Theorem 4). With s = P(b = 0) and k = n - 1, eq. 8 gives
//   rho = (max(0, 2 s^(1/k) - 1)^k - s^2) / (s (1 - s)).
// Written as is it cancels twice: for large n (2 s^(1/k) - 1 -> 1, and the two terms agree to O(1/k))
// and for p near 0 or 1. Dividing the first term by s^2 exactly,
//   (2 s^(1/k) - 1)^k / s^2 = (2 s^(-1/k) - s^(-2/k))^k = (1 - w^2)^k,  w = s^(-1/k) - 1 = expm1(-log(s) / k),
// so rho = s / (1 - s) * expm1(k log1p(-w^2)), and 1 - w^2 <= 0 (w >= 1, i.e. s <= 2^-k) means the
// max(0, .) clamps: rho = -s / (1 - s). Every step is a well-conditioned expm1 / log1p.
namespace detail {
template <typename T> GK_HD T dirichlet_rho_from_s(T s, T log_s, T one_minus_s, T k) {
  if (s == T(0) || one_minus_s == T(0)) return T(0);  // degenerate Bernoulli: the limit of rho is 0
  const T w = gk_expm1(-log_s / k);
  const T ratio = s / one_minus_s;
  if (!(w < T(1))) return -ratio;
  // p -> 0 for u (or large k at moderate s): k w^2 < eps, so log1p(-w^2) = -w^2 and expm1(E) = E to
  // working precision; ordered so that neither w^2 nor ratio * w^2 underflows (w ~ p / k, ratio ~ 1/p).
  const T kw = k * w;
  if (kw * w < num<T>::eps) return -(s * kw / one_minus_s) * w;
  // log(1 - w^2): log1p(-w^2) while w^2 is small (where log1p(-w) + log1p(w) would cancel), and
  // log1p(-w) + log1p(w) when w nears 1 (where 1 - w^2 would round).
  const T log_1mw2 = w < T(0.5) ? gk_log1p(-w * w) : gk_log1p(-w) + gk_log1p(w);
  return ratio * gk_expm1(k * log_1mw2);
}
}  // namespace detail

// Which copula sample the Bernoulli variables are thresholded on (Algorithm 1 returns both).
enum class DirichletMode : int {
  oriented = 0,   // u where p >= 1/2, 1 - u where p < 1/2 (the choice of section 3.1.1; lowest rho)
  direct = 1,     // u = 1 - (1 - d)^(n-1): rho of Theorem 4
  reflected = 2,  // 1 - u: rho' of Theorem 4
};

// rho(p, n) for the Dirichlet copula. NaN for p outside [0, 1] or n < 2; 0 at p in {0, 1} (the limit).
// P(b = 0) is s = 1 - p for u and s = p for 1 - u (reflection maps p to 1 - p); the orientation picks
// s = min(p, 1 - p). log(s) comes from log1p(-p) when 1 - p would round.
template <typename T> GK_HD T dirichlet_copula_rho(T p, int64_t n, DirichletMode mode = DirichletMode::oriented) {
  if (!(p >= T(0) && p <= T(1)) || n < 2) return quiet_nan<T>();
  const T k = T(n - 1);
  bool use_u = mode == DirichletMode::direct || (mode == DirichletMode::oriented && p >= T(0.5));
  if (use_u) {  // s = 1 - p
    const T s = T(1) - p;
    const T log_s = p < T(0.5) ? gk_log1p(-p) : gk_log(s);
    return detail::dirichlet_rho_from_s(s, log_s, p, k);
  }
  return detail::dirichlet_rho_from_s(p, gk_log(p), T(1) - p, k);  // s = p
}

// ---------------------------------------------------------------------------------------------------
// Gaussian copula correlation. With R_ij = r = -1/(n-1) and h = Phi^-1(p),
//   rho = (Phi2(h, h; r) - p^2) / (p (1 - p)),
// and by the Drezner-Wesolowsky integral above with h = k (where (1 - sin t) / cos^2 t = 1 / (1 + sin t)):
//   Phi2(h, h; r) - p^2 = -1/(2 pi) int_0^asin(1/(n-1)) exp(-h^2 / (1 - sin b)) db.
// This has no cancellation at all (the integrand is positive), unlike forming Phi2 and subtracting p^2,
// which loses log10(n) digits for large n and everything for p near 0 or 1. Substituting
// s = sin b / (1 - sin b) (db = ds / ((1 + s) sqrt(1 + 2 s))) and taking exp(-h^2) out,
//   rho = -exp(-h^2) / (2 pi p (1 - p)) * int_0^(1/(n-2)) exp(-h^2 s) / ((1 + s) sqrt(1 + 2 s)) ds,
// with the prefactor formed in log space so nothing underflows for p near 0 or 1. The integral is cut
// at h^2 s = 40 (relative truncation error e^-40) and split into panels of at most 10 e-folds.
// n = 2 is the antithetic pair (x, -x): rho = -min(p, 1 - p) / max(p, 1 - p). rho(p) = rho(1 - p).
template <typename T> GK_HD T gaussian_copula_rho(T p, int64_t n) {
  if (!(p >= T(0) && p <= T(1)) || n < 2) return quiet_nan<T>();
  const T q = gk_min(p, T(1) - p);  // lower half; 1 - p is exact where it is used
  if (q == T(0)) return T(0);
  const T one_minus_q = T(1) - q;
  if (n == 2) return -q / one_minus_q;
  const T h = std_normal_icdf(q);
  const T c = h * h;
  const T s_end = T(1) / T(n - 2);
  const T s_max = c * s_end > T(40) ? T(40) / c : s_end;
  const int panels = 1 + static_cast<int>(c * s_max / T(10));  // <= 5
  T integral = T(0);
  for (int i = 0; i < panels && i < 8; ++i) {
    const T lo = s_max * T(i) / T(panels), hi = s_max * T(i + 1) / T(panels);
    integral += detail::gauss_legendre20(lo, hi, [&](T s) {
      return gk_exp(-c * s) / ((T(1) + s) * gk_sqrt(T(1) + T(2) * s));
    });
  }
  const T log_pref = -c - gk_log(q) - gk_log1p(-q);
  return -consts<T>::inv_two_pi * integral * gk_exp(log_pref);
}

// ---------------------------------------------------------------------------------------------------
// Samplers. `Source` provides `src.template uniform<T>()` in the open interval (0, 1); one call of the
// sampler consumes exactly n uniforms (Dirichlet) or 2 ceil(n / 2) uniforms (Gaussian), which is the
// documented draw budget of the kernels. out[i * stride], i < n, receives u_i.
// Budget in 32-bit Philox words (a double uniform takes two), used for the CUDA offset increment.
template <typename T> GK_HD int64_t copula_draw_words(int64_t n, bool gaussian) {
  return (gaussian ? 2 * ((n + 1) / 2) : n) * static_cast<int64_t>(sizeof(T) / 4);
}

// Algorithm 1: d = log(v) / sum_j log(v_j) ~ Dirichlet(1, ..., 1), whose marginal CDF is
// 1 - (1 - x)^(n-1), so u_i = 1 - (1 - d_i)^(n-1) ~ Unif(0, 1). Formed as -expm1((n-1) log1p(-d_i)) so
// that neither u near 0 nor large n loses digits. The reflection 1 - u is left to the caller (the
// estimators flip the Bernoulli bit instead of rounding 1 - u).
template <typename T, typename Source>
GK_HD void dirichlet_copula_sample(int64_t n, Source& src, T* out, int64_t stride) {
  T sum = T(0);
  for (int64_t i = 0; i < n; ++i) {
    const T lv = gk_log(src.template uniform<T>());  // < 0 since uniform() < 1
    out[i * stride] = lv;
    sum += lv;
  }
  const T k = T(n - 1);
  for (int64_t i = 0; i < n; ++i) {
    const T d = out[i * stride] / sum;
    out[i * stride] = -gk_expm1(k * gk_log1p(-d));
  }
}

// Algorithm 2 in O(n): with z_i i.i.d. N(0, 1) and zbar their mean, x_i = (z_i - zbar) sqrt(n / (n-1))
// has unit variance and Cov(x_i, x_j) = -1/(n-1) exactly, the R of Algorithm 2, with no Cholesky factor
// and no jitter. Normals by Box-Muller on pairs of uniforms; u_i = Phi(x_i).
template <typename T, typename Source>
GK_HD void gaussian_copula_sample(int64_t n, Source& src, T* out, int64_t stride) {
  T sum = T(0);
  for (int64_t i = 0; i < n; i += 2) {
    const T radius = gk_sqrt(T(-2) * gk_log(src.template uniform<T>()));
    const T angle = consts<T>::two_pi * src.template uniform<T>();
    const T z0 = radius * gk_cos(angle);
    out[i * stride] = z0;
    sum += z0;
    if (i + 1 < n) {
      const T z1 = radius * gk_sin(angle);
      out[(i + 1) * stride] = z1;
      sum += z1;
    }
  }
  const T mean = sum / T(n);
  const T scale = gk_sqrt(T(n) / T(n - 1));
  for (int64_t i = 0; i < n; ++i) out[i * stride] = std_normal_cdf((out[i * stride] - mean) * scale);
}

}  // namespace core
}  // namespace gradkern
