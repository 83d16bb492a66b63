// gradkern numerical core, Gaussian mixtures (Jankowiak & Karaletsos 2019): the parameters of one
// mixture, its per-component quantities, the log density and the reparameterised forward. The
// velocity fields are in mixture_fields.h, the fused per-sample backward in mixture.h.
#pragma once

#include "core/common.h"
#include "core/normal.h"
#include "core/simd.h"

// Namespace of the mixture core. The SIMD and scalar builds of these inline templates differ in
// summation order; an inline namespace gives them different symbols, so a library linking a g++ and an
// nvcc object keeps each one's own.
#ifdef GK_HOST_SIMD
#define GK_MIXTURE_BEGIN namespace gradkern { namespace core { namespace mixture { inline namespace host_simd {
#define GK_MIXTURE_END } } } }
#else
#define GK_MIXTURE_BEGIN namespace gradkern { namespace core { namespace mixture {
#define GK_MIXTURE_END } } }
#endif

GK_MIXTURE_BEGIN

enum Family : int {
  kSharedCovariance = 0,      // MixtureOfDiagNormalsSharedCovariance: N(mu_j, c)
  kGaussianScale = 1,          // GaussianScaleMixture: N(0, lambda_j c)
  kDiagNormals = 2,           // MixtureOfDiagNormals: N(mu_j, c_j)
  kDiscreteGaussianScale = 3,  // DiscreteGaussianScaleMixture: N(mu_j, lambda_j c)
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
  const T* coord_scale;      // D (shared) or K x D (per component, kDiagNormals): c
  const T* component_scale;  // K component scales, or nullptr (lambda = 1)
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
  T* coord_scale;   // D or K x D
  T* component_scale;     // K, or nullptr
};

// ---- helpers --------------------------------------------------------------------------------

// |a| with the sign of b (bit operations, no branch).
GK_HD float copysign_of(float a, float b) { return ::copysignf(a, b); }
GK_HD double copysign_of(double a, double b) { return ::copysign(a, b); }

// ---- per-component quantities ------------------------------------------------------------------------

template <typename T>
GK_HD T loc(const Params<T>& p, int j, int i) {
  return p.locs ? p.locs[j * p.D + i] : T(0);
}

template <typename T>
GK_HD T component_scale_of(const Params<T>& p, int j) {
  return p.component_scale ? p.component_scale[j] : T(1);
}



// sum_i ((z_i - mu_i) inv_i)^2 (mu may be null: zero mean). SIMD lanes then the scalar tail, so the
// order of the sums is fixed for a given build.
template <typename T>
GK_HD T scaled_sq_norm(const T* z, const T* mu, const T* inv, int D) {
  T acc = T(0);
  int i = 0;
#ifdef GK_HOST_SIMD
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

// z = mu_k + (c_k lambda_k) eps for one sample drawn from component k (the forward of rsample):
// c the component's coordinate scales (D), l its scale lambda_k (nullptr: 1), mu its mean (nullptr:
// zero mean). The CPU and CUDA kernels both write z with it.
template <typename T>
GK_HD void sample_row(const T* c, const T* l, const T* mu, const T* eps, T* z, int D) {
  if (l) {
    const T lk = *l;
    for (int i = 0; i < D; ++i) z[i] = (c[i] * lk) * eps[i];
  } else {
    for (int i = 0; i < D; ++i) z[i] = c[i] * eps[i];
  }
  if (mu) {
    for (int i = 0; i < D; ++i) z[i] = z[i] + mu[i];
  }
}

GK_MIXTURE_END

