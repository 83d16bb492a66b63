// Pathwise gradients for mixtures of diagonal Normals from transport-equation velocity fields
// (Jankowiak & Karaletsos 2019, "Pathwise Derivatives for Multivariate Distributions", section 4 and
// supplementary D; equation numbers below are that paper's).
//
// For z ~ q(z) = sum_j pi_j q_j(z) and an upstream gradient g = dL/dz, the gradient for a parameter
// theta is g . v^theta(z), where v^theta solves the transport equation dq/dtheta + div(q v^theta) = 0
// (eq. 3). This header computes, for ONE sample z, the contributions g . v^theta for every parameter of
// the mixture and adds them into the caller's accumulators (plain += on the CPU, atomics on the GPU).
// Nothing of size K x K or K x K x D is ever formed; the per-sample scratch is O(1).
//
// The four families (paper's Table 3) are one parameterisation: component j is
//     q_j(z) = N(z | mu_j, s_j),   s_ji = lambda_j * c_ji,
// with mu_j = 0 (zero-mean scale mixture) or free, c_ji = c_i (coordinate scale shared) or free per
// component, and lambda_j = 1 or a free component scale.
//
// Component parameters (eq. 12): v^{theta_j} = (pi_j q_j / q) v_single^{theta_j}, the ordinary
// reparameterisation velocity of component j weighted by its responsibility.
//
// Mixture logits l_j (pi = softmax(l)): v^{l_j} = pi_j sum_k pi_k V^{jk} (eq. 14), where V^{jk} moves
// mass from component k to component j: div(q V^{jk}) = -(q_j - q_k) (eq. 13). We build every V^{jk}
// through per-component reference densities rho_j = N(mu_j, s') that share one diagonal scale s':
//     V^{jk} = W^j - W^k + U^{jk},   div(q W^j) = -(q_j - rho_j),   div(q U^{jk}) = -(rho_j - rho_k),
// so that v^{l_j} = pi_j (W^j - sum_k pi_k W^k) + pi_j sum_{k != j} pi_k U^{jk}.
//   * U^{jk}: eq. 15 (pairwise transport along mu_j - mu_k between Normals of equal covariance).
//   * W^j, shared covariance: rho_j = q_j, W^j = 0.
//   * W^j, diagonal covariances: coordinate-by-coordinate telescoping of eqs. 49-50, s'_i = min_j s_ji
//     (eq. 52).
//   * W^j, scale mixtures: radial transport of eqs. 40-43 between N(mu_j, lambda_0 c) and
//     N(mu_j, lambda_j c), lambda_0 = min_j lambda_j; for the zero-mean family the references coincide
//     (U = 0) and v^{l_j} is exactly eq. 40; for the discrete family this is eq. 54 (with eq. 55).
// That is the "pairwise" field of MixtureOfDiagNormals (Params::ref_loc == nullptr): O(K^2 D) per sample
// for the U terms. Its "reference" field (ref_loc set; the default of the Python class) is O(K D): ONE
// reference rho = N(mu', s') common to all components (s' of eq. 52, mu' = ref_loc, the mixture mean
// sum_k pi_k mu_k chosen by the caller) and W^j the eqs. 49-50 telescoping from rho to q_j, whose 1D
// fluxes Phi((z_i - mu'_i)/s'_i) - Phi((z_i - mu_ji)/s_ji) are differences of Normal CDFs with different
// means as well as scales. Because rho is common, it cancels in eq. 51:
//     div(q pi_j (W^j - sum_k pi_k W^k)) = -pi_j ((q_j - rho) - sum_k pi_k (q_k - rho)) = -pi_j (q_j - q)
// (sum_k pi_k = 1), which is -dq/dl_j, so v^{l_j} = pi_j (W^j - sum_k pi_k W^k) with no U terms at all.
// rho may be any density; mu' depends on the parameters but needs no gradient, as the transport
// equation holds pointwise for every fixed rho.
// With a shared reference scale, W^j is regular everywhere: the r^{1-D} point sources of eq. 40 cancel
// between lambda_j and lambda_0, and we evaluate that cancellation analytically (Q_j - Q_0 = P_0 - P_j)
// instead of subtracting two singular numbers.
//
// All densities and their ratios are formed in log space: every velocity is
// (difference of Normal CDFs or incomplete gammas) x (a Gaussian factor) / q(z), and we add the logs
// before exponentiating once, so nothing underflows at D in the hundreds.
#pragma once

#include "core/common.h"

// GNU vector types for the host reductions (see Simd below) where the compiler is GCC/Clang and not nvcc.
#if defined(__GNUC__) && !defined(__CUDACC__)
#define GK_MIXTURE_SIMD 1
#endif

namespace gradkern {
namespace core {
namespace mixture {
// The SIMD and scalar builds of these inline templates differ in summation order; an inline namespace
// gives them different symbols, so a library linking a g++ and an nvcc object keeps each one's own.
#ifdef GK_MIXTURE_SIMD
inline namespace host_simd {
#endif

enum Family : int {
  kSharedCovariance = 0,      // MixtureOfDiagNormalsSharedCovariance: N(mu_j, c)
  kScaleMixture = 1,          // GaussianScaleMixture: N(0, lambda_j c)
  kDiagNormals = 2,           // MixtureOfDiagNormals: N(mu_j, c_j)
  kDiscreteScaleMixture = 3,  // DiscreteGaussianScaleMixture: N(mu_j, lambda_j c)
};

// Parameters of one mixture (one batch element), contiguous row-major, plus quantities derived from
// them once per mixture (by the caller) so that the per-sample loops need no logarithms or divisions.
// Notation: s_ji = lambda_j c_ji is component j's scale, s' the reference scale shared by all rho_j
// (see the header comment).
template <typename T>
struct Params {
  int K;
  int D;
  int family;
  const T* locs;       // K x D, or nullptr (zero mean)
  const T* coord;      // D (shared) or K x D (per component, kDiagNormals): c
  const T* lam;        // K component scales, or nullptr (lambda = 1)
  const T* log_pi;     // K, log softmax of the logits
  const T* inv_scale;  // K x D: 1 / s_ji
  const T* log_norm;   // K: -sum_i log s_ji - D log sqrt(2 pi), the log normaliser of q_j
  const T* log_scale;  // K x D: log s_ji (kDiagNormals only, else nullptr)
  const T* ref;        // D: s'
  const T* inv_ref;    // D: 1 / s'
  const T* log_ref;    // D: log s'_i (kDiagNormals only, else nullptr)
  const T* locs_ref;   // K x D: mu_j / s' (families with means and the pairwise U terms), else nullptr
  const T* ref_loc;    // D: mu', the common reference mean (kDiagNormals, "reference" field), else nullptr
  T log_ref_sum;       // sum_i log s'_i
  T lam0;              // reference component scale lambda_0 (scale mixtures), else 1
};

// Accumulators for one mixture. `acc_w[j]` collects g . W^j; the caller finishes the logits gradient
// as pi_j (acc_w_j - sum_k pi_k acc_w_k) + logits_j (the U terms are added to logits directly, already
// weighted by pi_j pi_k). The pi-weighted mean can be taken after summing over samples because pi does
// not depend on the sample.
template <typename T>
struct Grads {
  T* logits;  // K
  T* acc_w;   // K
  T* locs;    // K x D, or nullptr
  T* coord;   // D or K x D
  T* lam;     // K, or nullptr
};

// ---- scalar helpers --------------------------------------------------------------------------------

template <typename T> GK_HD T neg_inf() { return -infinity<T>(); }

// |a| with the sign of b (bit operations, no branch).
GK_HD float copysign_of(float a, float b) { return ::copysignf(a, b); }
GK_HD double copysign_of(double a, double b) { return ::copysign(a, b); }

// log(1 - e^x) for x <= 0 (Maechler's two branches: expm1 near 0, log1p far from it).
template <typename T>
GK_HD T log1mexp(T x) {
  if (gk_isnan(x) || x > T(0)) return quiet_nan<T>();
  return x > T(-0.6931471805599453) ? gk_log(-gk_expm1(x)) : gk_log1p(-gk_exp(x));
}

// log(e^a + e^b) without overflow.
template <typename T>
GK_HD T logaddexp(T a, T b) {
  if (a == neg_inf<T>()) return b;
  if (b == neg_inf<T>()) return a;
  const T m = gk_max(a, b);
  return m + gk_log1p(gk_exp(-gk_fabs(a - b)));
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
  const T t = x * T(0.70710678118654752440);
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
  const T s = T(0.70710678118654752440);
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
    const T s = T(0.70710678118654752440);
    if (a <= T(0) && a > ndtr_limits<T>::asym) {
      return T(0.5) * (gk_erfc(-a * s) - gk_erfc(-b * s)) * scale;
    }
    if (a > T(0)) return (T(1) - T(0.5) * (gk_erfc(a * s) + gk_erfc(-b * s))) * scale;  // b <= 0 < a
  }
  return gk_exp(log_ndtr_diff(a, b) + l_scale);
}

// log P(D/2, x) and log Q(D/2, x), the regularized incomplete gamma functions at half-integer order
// (the radial CDF of eqs. 41-43 is Phi~(y) = y^{1-D} C_D Q(D/2, y^2/2)). x < a + 1: the power series for
// P (terms decrease from the first); otherwise the finite sums of eqs. 42 (D even) and 43 (D odd) for
// Q, summed from their largest (last) term downwards so no term is exponentiated separately.
// `lgamma_half_d` = lgamma(D/2) and `log_half_d` = log(D/2) depend on D only; callers that evaluate
// many x for one D pass them in so the loop over components does not recompute them.
// The one of log P, log Q that log_gamma_pq_half sums directly, for 0 < x < inf and D >= 1: returns 0
// with *l = log P (power series, x < a + 1) or 1 with *l = log Q (finite sums, clamped to <= 0); the
// other is log1mexp(*l) (clamped as in log_gamma_pq_half), so callers that need only one of them skip
// that call.
template <typename T>
GK_HD int log_gamma_half_direct(int D, T x, T* l, T lgamma_half_d, T log_half_d) {
  const T a = T(0.5) * T(D);
  if (x < a + T(1)) {
    T term = T(1), sum = T(1);
    for (int n = 1; n < 100000; ++n) {  // cap: ratio x/(a+n) < 1; ~sqrt(a) terms in practice
      term *= x / (a + T(n));
      sum += term;
      if (term < num<T>::eps * sum) break;
    }
    *l = a * gk_log(x) - x - (lgamma_half_d + log_half_d) + gk_log(sum);  // lgamma(a + 1)
    return 0;
  }
  const T lx = gk_log(x);
  T lq;
  if (D % 2 == 0) {
    // Eq. 42: Q(n, x) = e^{-x} sum_{k<n} x^k / k!, n = D/2; largest term k = n - 1 (x >= n + 1).
    const int n = D / 2;
    T term = T(1), sum = T(1);
    for (int k = n - 1; k > 0; --k) {  // cap: n - 1 terms at most
      term *= T(k) / x;
      sum += term;
      if (term < num<T>::eps * sum) break;
    }
    lq = -x + T(n - 1) * lx - lgamma_half_d + gk_log(sum);  // lgamma(n), n = D/2
  } else {
    // Eq. 43: Q(n + 1/2, x) = erfc(sqrt x) + e^{-x} sum_{k=1}^{n} x^{k-1/2} / Gamma(k + 1/2).
    const int n = (D - 1) / 2;
    const T l_erfc = T(0.69314718055994530942) + log_ndtr(-gk_sqrt(T(2) * x));
    if (n == 0) {
      lq = l_erfc;
    } else {
      T term = T(1), sum = T(1);
      for (int k = n; k > 1; --k) {  // cap: n - 1 terms at most
        term *= (T(k) - T(0.5)) / x;
        sum += term;
        if (term < num<T>::eps * sum) break;
      }
      const T lsum = -x + (T(n) - T(0.5)) * lx - lgamma_half_d + gk_log(sum);  // lgamma(n + 1/2)
      lq = logaddexp(lsum, l_erfc);
    }
  }
  *l = gk_min(lq, T(0));
  return 1;
}

template <typename T>
GK_HD void log_gamma_pq_half(int D, T x, T* log_p, T* log_q, T lgamma_half_d, T log_half_d) {
  if (gk_isnan(x) || x < T(0) || D < 1) {
    *log_p = *log_q = quiet_nan<T>();
    return;
  }
  if (x == T(0)) {
    *log_p = neg_inf<T>();
    *log_q = T(0);
    return;
  }
  T l;
  if (log_gamma_half_direct(D, x, &l, lgamma_half_d, log_half_d) == 0) {
    *log_p = l;
    *log_q = log1mexp(gk_min(l, T(0)));
  } else {
    *log_q = l;
    *log_p = log1mexp(l);
  }
}

template <typename T>
GK_HD void log_gamma_pq_half(int D, T x, T* log_p, T* log_q, T lgamma_half_d) {
  log_gamma_pq_half(D, x, log_p, log_q, lgamma_half_d, gk_log(T(0.5) * T(D)));
}

template <typename T>
GK_HD void log_gamma_pq_half(int D, T x, T* log_p, T* log_q) {
  log_gamma_pq_half(D, x, log_p, log_q, gk_lgamma(T(0.5) * T(D)));
}

// ---- per-component quantities ------------------------------------------------------------------------

template <typename T>
GK_HD T loc(const Params<T>& p, int j, int i) {
  return p.locs ? p.locs[j * p.D + i] : T(0);
}

template <typename T>
GK_HD T lam(const Params<T>& p, int j) {
  return p.lam ? p.lam[j] : T(1);
}


// Host builds with GCC/Clang (not nvcc, whose host and device passes take the scalar loops) use GNU
// vector types for the pairwise reductions below: the auto-vectoriser keeps each lane's in-order
// reduction and shuffles between lanes, which costs more than it saves. 16-byte vectors are SSE2,
// part of the x86-64 baseline (no -march flags needed). Only the order of the sums changes.
#ifdef GK_MIXTURE_SIMD
template <typename T> struct Simd;
template <> struct Simd<float> {
  typedef float type __attribute__((vector_size(16)));
  static constexpr int n = 4;
};
template <> struct Simd<double> {
  typedef double type __attribute__((vector_size(16)));
  static constexpr int n = 2;
};
template <typename T>
inline typename Simd<T>::type simd_load(const T* p) {
  typename Simd<T>::type v;
  __builtin_memcpy(&v, p, sizeof(v));  // unaligned load
  return v;
}
template <typename T>
inline T simd_total(typename Simd<T>::type v) {
  T a[Simd<T>::n];
  __builtin_memcpy(a, &v, sizeof(v));
  T t = T(0);
  for (int l = 0; l < Simd<T>::n; ++l) t += a[l];
  return t;
}
#endif

// sum_i ((z_i - mu_i) inv_i)^2 (mu may be null: zero mean). SIMD lanes then the scalar tail, so the
// order of the sums is fixed for a given build.
template <typename T>
GK_HD T scaled_sq_norm(const T* z, const T* mu, const T* inv, int D) {
  T acc = T(0);
  int i = 0;
#ifdef GK_MIXTURE_SIMD
  {
    typedef typename Simd<T>::type V;
    constexpr int N = Simd<T>::n;
    V av = {};
    for (; i + N <= D; i += N) {  // cap: D / N iterations
      const V zv = simd_load(z + i);
      const V e = (mu ? zv - simd_load(mu + i) : zv) * simd_load(inv + i);
      av += e * e;
    }
    acc = simd_total<T>(av);
  }
#endif
  for (; i < D; ++i) {
    const T e = (mu ? z[i] - mu[i] : z[i]) * inv[i];
    acc += e * e;
  }
  return acc;
}

// log q_j(z), the j-th component's log density.
template <typename T>
GK_HD T log_component(const Params<T>& p, int j, const T* z) {
  const int D = p.D;
  const T* mu = p.locs ? p.locs + j * D : nullptr;
  return T(-0.5) * scaled_sq_norm(z, mu, p.inv_scale + j * D, D) + p.log_norm[j];
}

// Streaming logsumexp: (m, s) represents log(s) + m.
template <typename T>
GK_HD void lse_push(T l, T* m, T* s) {
  if (l == neg_inf<T>()) return;
  if (l > *m) {
    *s = *s * gk_exp(*m - l) + T(1);
    *m = l;
  } else {
    *s += gk_exp(l - *m);
  }
}

// log q(z) = logsumexp_j (log pi_j + log q_j(z)), streamed over j (no K-sized scratch).
template <typename T>
GK_HD T log_density(const Params<T>& p, const T* z) {
  T m = neg_inf<T>(), s = T(0);
  for (int j = 0; j < p.K; ++j) {
    const T l = p.log_pi[j] + log_component(p, j, z);
    if (gk_isnan(l)) return l;
    lse_push(l, &m, &s);
  }
  return m + gk_log(s);
}

// g . W^j for diagonal covariances (eqs. 49-50): telescoping from the reference rho = N(m, s') to q_j
// one coordinate at a time, m = mu_j (pairwise field, rho_j) or m = mu' (reference field, common rho).
// With h_i = prod_{k<=i} q_jk(z_k) prod_{k>i} rho_k(z_k) (h_0 = rho, h_D = q_j; q_jk, rho_k the 1D
// factors), q_j - rho = sum_i (h_i - h_{i-1}) and h_i - h_{i-1} = d/dz_i of
// (Q_ji - R_i)(z_i) prod_{k<i} q_jk prod_{k>i} rho_k (Q, R the 1D CDFs), so the density flux along e_i
//   F_i = [Phi(zbar_ji) - Phi(ztilde_ji)] N_{D-1}(r_ji) / (prod_{k<i} s_jk prod_{k>i} s'_k),
// ztilde = (z - mu_j)/s_j, zbar = (z - m)/s', r_ji^2 = sum_{k<i} ztilde^2 + sum_{k>i} zbar^2,
// has div F = -(q_j - rho): consecutive terms telescope. Velocity = F / q.
//
// telescoping_visit walks the coordinates and calls visit(i, signed_g, hi, lo, l_rest) for every term
// that can be non-zero, the term being signed_g * (Phi(hi) - Phi(lo)) * exp(l_rest);
// telescoping_dot sums them with ndtr_diff_scaled. (The CPU kernel instead collects the arguments of
// many samples and evaluates the erfc and exp calls in batches, see split_ndtr_diff_scaled.)
template <typename T, typename Visit>
GK_HD void telescoping_visit(const Params<T>& p, int j, const T* z, const T* g, T log_q, Visit& visit) {
  const int D = p.D;
  const T* inv = p.inv_scale + j * D;
  const T* ls = p.log_scale + j * D;
  const T* mu = p.locs + j * D;  // kDiagNormals always has means
  const T* m = p.ref_loc ? p.ref_loc : mu;  // the reference's mean (see above)
  const T zbar_tot = scaled_sq_norm(z, m, p.inv_ref, D);  // sum of zbar^2
  // Everything but the CDF difference and the Gaussian factor, in log space.
  const T l_const = -T(D - 1) * consts<T>::log_sqrt_2pi - p.log_ref_sum - log_q;
  const T* inv_ref = p.inv_ref;  // locals: the visitor's stores cannot make the compiler reload them
  const T* log_ref = p.log_ref;
  T pre_zt = T(0), pre_zb = T(0), pre_l = T(0);  // prefix sums over k < i
  for (int i = 0; i < D; ++i) {
    const T zt = (z[i] - mu[i]) * inv[i], zb = (z[i] - m[i]) * inv_ref[i];
    // The suffix sums come from totals minus prefixes; clamp the rounding below zero.
    const T r2 = pre_zt + gk_max(zbar_tot - pre_zb - zb * zb, T(0));
    // -log(prod_{k<i} s_jk prod_{k>i} s'_k) = -(sum_k log s'_k) - sum_{k<i} (log s_jk - log s'_k) + log s'_i
    const T l_rest = T(-0.5) * r2 - pre_l + log_ref[i] + l_const;
    // Terms with zt == zb (this component has the reference's scale and mean here) or g_i = 0
    // vanish; below the l_rest bound the term underflows (the Phi difference is <= 1).
    if (zt != zb && g[i] != T(0) && l_rest > num<T>::log_min - T(40)) {
      // The flux's sign is that of zb - zt (random per sample): taken with copysign, not a branch.
      visit(i, copysign_of(T(1), zb - zt) * g[i], gk_max(zt, zb), gk_min(zt, zb), l_rest);
    }
    pre_zt += zt * zt;
    pre_zb += zb * zb;
    pre_l += ls[i] - log_ref[i];
  }
}

template <typename T>
struct TelescopingSum {
  T acc;
  GK_HD void operator()(int, T signed_g, T hi, T lo, T l_rest) { acc += signed_g * ndtr_diff_scaled(hi, lo, l_rest); }
};

template <typename T>
GK_HD T telescoping_dot(const Params<T>& p, int j, const T* z, const T* g, T log_q) {
  TelescopingSum<T> sum{T(0)};
  telescoping_visit(p, j, z, g, log_q, sum);
  return sum.acc;
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
  const T s = T(0.70710678118654752440);
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

// Constants of the radial field that depend only on D: lgamma(D/2) and
// log C_D = -(D/2) log 2 pi + (D/2 - 1) log 2 + lgamma(D/2) (eq. 41 after the substitution t = s/lambda).
template <typename T>
struct RadialConsts {
  T lgamma_half_d, log_half_d, log_cd;
  GK_HD explicit RadialConsts(int D) {
    const T half_d = T(0.5) * T(D);
    lgamma_half_d = gk_lgamma(half_d);
    log_half_d = gk_log(half_d);
    log_cd = -half_d * gk_log(consts<T>::two_pi) + (half_d - T(1)) * T(0.69314718055994530942) + lgamma_half_d;
  }
};

// g . W^j for scale mixtures (eqs. 40-43): radial transport around mu_j from N(mu_j, lambda_0 c) to
// N(mu_j, lambda_j c). With x = (z - mu_j)/c and r = |x|, the x-space flux is
//   r^{1-D} C_D [Q(D/2, r^2/2 lambda_j^2) - Q(D/2, r^2/2 lambda_0^2)] x/r,
// and in z space c * flux / prod(c). Q_j - Q_0 = P_0 - P_j >= 0 (lambda_0 <= lambda_j) is taken in the
// form whose terms are small, so the r -> 0 cancellation of the two point sources is exact.
// r2 = |x|^2 and gx = g . (c x) = g . (z - mu_j) are passed in (shared by all j for zero means).
// `pq0`, when given, holds log P and log Q at the reference (lambda_0) for this r2, shared by all j.
//
// radial_log_diff returns log(Q_j - Q_0) (requires lambda_j > lambda_0 and r2 > 0); radial_dot
// assembles the whole term. The zero-mean fast path (scale_mixture_sample) shares everything but
// log(Q_j - Q_0) between the components.
// log(Q_j - Q_0) = log(P_0 - P_j) from the logs of P and Q at lambda_j and lambda_0, in whichever
// form has the smaller terms.
template <typename T>
GK_HD T radial_log_diff_pq(T lpj, T lqj, T lp0, T lq0) {
  return lqj < T(-0.6931471805599453) ? lqj + log1mexp(gk_min(lq0 - lqj, T(0)))
                                       : lp0 + log1mexp(gk_min(lpj - lp0, T(0)));
}

// radial_log_diff_pq for x_j = r2 / (2 lambda_j^2) and the reference's log P, log Q in pq0, forming
// the complement of the directly summed one of P_j, Q_j only when the chosen branch needs it. The branch
// test is Q_j < 1/2; on the series branch it is taken as P_j > 1/2 (differs only by rounding at 1/2).
template <typename T>
GK_HD T radial_log_diff_lazy(int D, T x, const RadialConsts<T>& rc, const T* pq0) {
  if (!(x > T(0)) || !(x < infinity<T>())) {  // NaN, 0 or inf: the general path
    T lpj, lqj;
    log_gamma_pq_half(D, x, &lpj, &lqj, rc.lgamma_half_d, rc.log_half_d);
    return radial_log_diff_pq(lpj, lqj, pq0[0], pq0[1]);
  }
  const T half = T(-0.6931471805599453);
  T l;
  if (log_gamma_half_direct(D, x, &l, rc.lgamma_half_d, rc.log_half_d) == 0) {  // l = log P_j
    if (l > half) {
      const T lqj = log1mexp(gk_min(l, T(0)));
      return lqj + log1mexp(gk_min(pq0[1] - lqj, T(0)));
    }
    return pq0[0] + log1mexp(gk_min(l - pq0[0], T(0)));
  }
  if (l < half) return l + log1mexp(gk_min(pq0[1] - l, T(0)));  // l = log Q_j
  return pq0[0] + log1mexp(gk_min(log1mexp(l) - pq0[0], T(0)));
}

template <typename T>
GK_HD T radial_log_diff(const Params<T>& p, int j, T r2, const RadialConsts<T>& rc, const T* pq0) {
  const int D = p.D;
  const T lj = lam(p, j), l0 = p.lam0;
  T lpj, lqj, lp0, lq0;
  log_gamma_pq_half(D, T(0.5) * r2 / (lj * lj), &lpj, &lqj, rc.lgamma_half_d, rc.log_half_d);
  if (pq0) {
    lp0 = pq0[0];
    lq0 = pq0[1];
  } else {
    log_gamma_pq_half(D, T(0.5) * r2 / (l0 * l0), &lp0, &lq0, rc.lgamma_half_d, rc.log_half_d);
  }
  return radial_log_diff_pq(lpj, lqj, lp0, lq0);
}

template <typename T>
GK_HD T radial_dot(const Params<T>& p, int j, T r2, T gx, T log_q, const RadialConsts<T>& rc,
                   const T* pq0 = nullptr) {
  const int D = p.D;
  const T lj = lam(p, j), l0 = p.lam0;
  if (!(lj > l0)) return lj == l0 ? T(0) : quiet_nan<T>();
  if (r2 == T(0) || gx == T(0)) return T(0);  // the regular field vanishes at r = 0
  const T l_diff = radial_log_diff(p, j, r2, rc, pq0);
  // sum_i log c_i = sum_i log s'_i - D log lambda_0.
  const T l_coord = p.log_ref_sum - T(D) * gk_log(l0);
  const T half_log_r2 = T(0.5) * gk_log(r2);
  const T l_mag = -T(D) * half_log_r2 + rc.log_cd + l_diff - l_coord - log_q;  // r^{1-D} / r
  return gx * gk_exp(l_mag);
}

// g . U^{jk} (eq. 15): mass transport between rho_j = N(mu_j, s') and rho_k = N(mu_k, s') along
// u = (m_j - m_k)/|m_j - m_k|, m = mu/s'. In x = z/s' coordinates the flux is
//   [Phi(b + L) - Phi(b)] N_{D-1}(|x_perp - m_perp|) u,  b = (x - m_j).u,  L = |m_j - m_k|,
// whose divergence is -(rho_j - rho_k) (the perpendicular Gaussian is common to both Normals).
//
// pairwise_args returns false when the term vanishes, else the arguments with
// g . U^{jk} = gu * ndtr_diff_scaled(a, b, l_rest) (the CPU kernel batches those calls).
template <typename T>
GK_HD bool pairwise_args(const Params<T>& p, int j, int k, const T* z, const T* g, T log_q, T* gu_out,
                         T* a_out, T* b_out, T* l_rest_out) {
  const int D = p.D;
  const T* mj = p.locs_ref + j * D;
  const T* mk = p.locs_ref + k * D;
  const T* inv_ref = p.inv_ref;
  const T* ref = p.ref;
  T l2 = T(0), b = T(0), gu = T(0);
  int i = 0;
#ifdef GK_MIXTURE_SIMD
  {
    typedef typename Simd<T>::type V;
    constexpr int N = Simd<T>::n;
    V l2v = {}, bv = {}, guv = {};
    for (; i + N <= D; i += N) {  // cap: D / N iterations
      const V mjv = simd_load(mj + i), dm = mjv - simd_load(mk + i);
      l2v += dm * dm;
      bv += (simd_load(z + i) * simd_load(inv_ref + i) - mjv) * dm;
      guv += simd_load(g + i) * simd_load(ref + i) * dm;
    }
    l2 = simd_total<T>(l2v);
    b = simd_total<T>(bv);
    gu = simd_total<T>(guv);
  }
#endif
  for (; i < D; ++i) {
    const T dm = mj[i] - mk[i];
    l2 += dm * dm;
    b += (z[i] * inv_ref[i] - mj[i]) * dm;
    gu += g[i] * ref[i] * dm;
  }
  if (l2 == T(0) || gu == T(0)) return false;  // identical references: nothing to transport
  const T L = gk_sqrt(l2);
  b /= L;
  gu /= L;
  // |x_perp - m_perp|^2 summed directly: |x - m_j|^2 - b^2 cancels when z is far along u.
  const T t = b / L;
  T perp2 = T(0);
  i = 0;
#ifdef GK_MIXTURE_SIMD
  {
    typedef typename Simd<T>::type V;
    constexpr int N = Simd<T>::n;
    V pv = {};
    for (; i + N <= D; i += N) {  // cap: D / N iterations
      const V mjv = simd_load(mj + i);
      const V e = (simd_load(z + i) * simd_load(inv_ref + i) - mjv) - t * (mjv - simd_load(mk + i));
      pv += e * e;
    }
    perp2 = simd_total<T>(pv);
  }
#endif
  for (; i < D; ++i) {
    const T e = (z[i] * inv_ref[i] - mj[i]) - t * (mj[i] - mk[i]);
    perp2 += e * e;
  }
  *l_rest_out = T(-0.5) * perp2 - T(D - 1) * consts<T>::log_sqrt_2pi - p.log_ref_sum - log_q;
  *gu_out = gu;
  *a_out = b + L;
  *b_out = b;
  return true;
}

template <typename T>
GK_HD T pairwise_dot(const Params<T>& p, int j, int k, const T* z, const T* g, T log_q) {
  T gu, a, b, l_rest;
  if (!pairwise_args(p, j, k, z, g, log_q, &gu, &a, &b, &l_rest)) return T(0);
  return gu * ndtr_diff_scaled(a, b, l_rest);
}

// ---- the fused per-sample backward ---------------------------------------------------------------

// Up to this many components the per-sample log q_j are kept in registers / local memory between the
// two passes; above it they are recomputed (O(K D) more work, no allocation either way).
constexpr int kCachedComponents = 32;

// The zero-mean scale mixture (kScaleMixture), O(D + K) per sample instead of O(K D): with
// s_ji = lambda_j c_i and mu_j = 0, the standardised radius |z/c| and g . z are the same for every
// component, so log q_j = log pi_j + log_norm_j - |z/c|^2 / (2 lambda_j^2), and the eq. 12 coordinate-
// scale term sum_j (pi_j q_j / q) g_i lambda_j eps_ji = g_i z_i / c_i sum_j (pi_j q_j / q). The same
// quantities as the general path, summed in a different order (rounding only).
template <typename T, typename Add>
GK_HD void scale_mixture_sample(const Params<T>& p, const T* z, const T* g, const Grads<T>& out, Add add) {
  const int K = p.K, D = p.D;
  const T* inv_ref = p.inv_ref;
  const T l0 = p.lam0;
  // 1 / c_i = lambda_0 / s'_i.
  T r2 = T(0), gz = T(0);
  int i = 0;
#ifdef GK_MIXTURE_SIMD
  {
    typedef typename Simd<T>::type V;
    constexpr int N = Simd<T>::n;
    V rv = {}, gv = {};
    for (; i + N <= D; i += N) {  // cap: D / N iterations
      const V zv = simd_load(z + i);
      const V x = zv * simd_load(inv_ref + i) * l0;
      rv += x * x;
      gv += simd_load(g + i) * zv;
    }
    r2 = simd_total<T>(rv);
    gz = simd_total<T>(gv);
  }
#endif
  for (; i < D; ++i) {
    const T x = z[i] * inv_ref[i] * l0;
    r2 += x * x;
    gz += g[i] * z[i];
  }
  T lqj[kCachedComponents];
  T m = neg_inf<T>(), s = T(0);
  for (int j = 0; j < K; ++j) {  // cap: K
    const T lj = lam(p, j);
    const T l = p.log_pi[j] + (T(-0.5) * r2 / (lj * lj) + p.log_norm[j]);
    if (j < kCachedComponents) lqj[j] = l;
    lse_push(l, &m, &s);
  }
  const T log_q = m + gk_log(s);
  // Radial field (eq. 40): everything but log(Q_j - Q_0) is common to the components.
  const RadialConsts<T> rc(D);
  T pq0[2];
  T l_common = T(0);
  const bool radial = K > 1 && r2 != T(0) && gz != T(0);  // the regular field vanishes at r = 0
  if (radial) {
    log_gamma_pq_half(D, T(0.5) * r2 / (l0 * l0), &pq0[0], &pq0[1], rc.lgamma_half_d, rc.log_half_d);
    const T l_coord = p.log_ref_sum - T(D) * gk_log(l0);  // sum_i log c_i
    l_common = -T(D) * (T(0.5) * gk_log(r2)) + rc.log_cd - l_coord - log_q;  // r^{1-D} / r, over q
  }
  T w_tot = T(0);
  for (int j = 0; j < K; ++j) {  // cap: K
    const T lj = lam(p, j);
    const T l = j < kCachedComponents ? lqj[j] : p.log_pi[j] + (T(-0.5) * r2 / (lj * lj) + p.log_norm[j]);
    const T w = gk_exp(l - log_q);  // responsibility pi_j q_j / q (eq. 12)
    w_tot += w;
    if (out.lam) add(&out.lam[j], w * gz / lj);  // dz/dlambda_j = z / lambda_j
    if (K > 1) {
      T v;
      if (!(lj > l0)) {
        v = lj == l0 ? T(0) : quiet_nan<T>();
      } else if (!radial) {
        v = T(0);
      } else {
        v = gz * gk_exp(l_common + radial_log_diff_lazy(D, T(0.5) * r2 / (lj * lj), rc, pq0));
      }
      add(&out.acc_w[j], v);
    }
  }
  for (i = 0; i < D; ++i) add(&out.coord[i], w_tot * (g[i] * z[i] * (inv_ref[i] * l0)));
}

// Adds sample z's contributions (upstream gradient g) to `out`. `add(ptr, value)` is += on the CPU
// and an atomic add on the GPU. Cost: O(K D) for the component parameters and W terms, O(K^2 D) for
// the U terms (families with free means and K >= 2, except kDiagNormals with the common reference).
// `deferred_log_q`, when given, receives log q(z), and the terms that need Normal CDF differences, the
// telescoping g . W^j (kDiagNormals) and the pairwise g . U^{jk} (families with means), are left to the
// caller (the CPU kernel batches their erfc/exp calls across samples).
template <typename T, typename Add>
GK_HD void backward_sample(const Params<T>& p, const T* z, const T* g, const Grads<T>& out, Add add,
                           T* deferred_log_q = nullptr) {
  if (p.family == kScaleMixture && !p.locs && p.lam) {
    scale_mixture_sample(p, z, g, out, add);
    return;
  }
  const int K = p.K, D = p.D;
  T lqj[kCachedComponents];
  T m = neg_inf<T>(), s = T(0);
  for (int j = 0; j < K; ++j) {
    const T l = p.log_pi[j] + log_component(p, j, z);
    if (j < kCachedComponents) lqj[j] = l;
    lse_push(l, &m, &s);
  }
  const T log_q = m + gk_log(s);
  if (deferred_log_q) *deferred_log_q = log_q;
  const bool radial = p.family == kScaleMixture || p.family == kDiscreteScaleMixture;
  const RadialConsts<T> rc(radial ? D : 2);
  T r2_shared = T(0), gx_shared = T(0), pq0[2];
  if (radial && !p.locs && K > 1) {  // zero means: |x|, g . z and the reference P, Q are shared by all j
    for (int i = 0; i < D; ++i) {
      const T x = z[i] * p.inv_ref[i] * p.lam0;
      r2_shared += x * x;
      gx_shared += g[i] * z[i];
    }
    log_gamma_pq_half(D, T(0.5) * r2_shared / (p.lam0 * p.lam0), &pq0[0], &pq0[1], rc.lgamma_half_d,
                      rc.log_half_d);
  }
  for (int j = 0; j < K; ++j) {
    // Responsibility pi_j q_j / q of eq. 12, a ratio of densities taken in log space.
    const T l = j < kCachedComponents ? lqj[j] : p.log_pi[j] + log_component(p, j, z);
    const T w = gk_exp(l - log_q);
    const T lj = lam(p, j);
    const T* inv = p.inv_scale + j * D;
    // Branches hoisted out of the coordinate loops (family and optional pointers are fixed per call).
    const T* mu = p.locs ? p.locs + j * D : nullptr;
    T* g_locs = out.locs ? out.locs + j * D : nullptr;
    const bool per_comp = p.family == kDiagNormals;
    T* g_coord = per_comp ? out.coord + j * D : out.coord;
    const T cs = per_comp ? T(1) : lj;  // x 1 is exact: the same value as leaving it out
    for (int i = 0; i < D; ++i) {
      const T d = mu ? z[i] - mu[i] : z[i];
      const T wg = w * g[i];
      const T e = d * inv[i];  // the standard Normal noise eps_i that produces z from component j
      if (g_locs) add(&g_locs[i], wg);  // dz/dmu_ji = e_i
      // dz_i/dc = lambda_j eps_i for the component's own coordinate scale.
      add(&g_coord[i], wg * e * cs);
    }
    // g . (z - mu_j) for lambda_j and the radial field, |(z - mu_j)/c|^2 for the radial field.
    T lam_acc = T(0), r2 = T(0);
    if (out.lam || radial) {
      for (int i = 0; i < D; ++i) {
        const T d = mu ? z[i] - mu[i] : z[i];
        const T e = d * inv[i];
        lam_acc += g[i] * d;
        r2 += (e * lj) * (e * lj);
      }
    }
    if (out.lam) add(&out.lam[j], w * lam_acc / lj);  // dz/dlambda_j = (z - mu_j)/lambda_j
    if (K > 1) {
      if (p.family == kDiagNormals) {
        if (!deferred_log_q) add(&out.acc_w[j], telescoping_dot(p, j, z, g, log_q));
      } else if (radial) {
        add(&out.acc_w[j], p.locs ? radial_dot(p, j, r2, lam_acc, log_q, rc)
                                  : radial_dot(p, j, r2_shared, gx_shared, log_q, rc, pq0));
      }
    }
  }
  if (p.family == kScaleMixture || K < 2) return;  // zero means: all references coincide
  if (p.ref_loc) return;  // one common reference (the reference field): no U terms
  if (deferred_log_q) return;  // the caller evaluates the U terms (see pairwise_args)
  for (int j = 0; j < K; ++j) {
    const T pj = gk_exp(p.log_pi[j]);
    for (int k = j + 1; k < K; ++k) {
      const T t = pj * gk_exp(p.log_pi[k]) * pairwise_dot(p, j, k, z, g, log_q);
      // U^{kj} = -U^{jk}: one evaluation serves both logits.
      add(&out.logits[j], t);
      add(&out.logits[k], -t);
    }
  }
}

// Reparameterised draw for a given component and standard Normal noise (the forward of rsample).
template <typename T>
GK_HD T sample_coordinate(const Params<T>& p, int j, int i, T eps) {
  return loc(p, j, i) + eps / p.inv_scale[j * p.D + i];
}

#ifdef GK_MIXTURE_SIMD
}  // inline namespace host_simd
#endif
}  // namespace mixture
}  // namespace core
}  // namespace gradkern
