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
// before exponentiating once, so nothing underflows at D in the hundreds.#pragma once

#include "core/mixture_fields.h"

GK_MIXTURE_BEGIN

// ---- the fused per-sample backward ---------------------------------------------------------------

// Up to this many components the per-sample log q_j are kept in registers / local memory between the
// two passes; above it they are recomputed (O(K D) more work, no allocation either way).
constexpr int kCachedComponents = 32;

// The zero-mean scale mixture (kGaussianScale), O(D + K) per sample instead of O(K D): with
// s_ji = lambda_j c_i and mu_j = 0, the standardised radius |z/c| and g . z are the same for every
// component, so log q_j = log pi_j + log_norm_j - |z/c|^2 / (2 lambda_j^2), and the eq. 12 coordinate-
// scale term sum_j (pi_j q_j / q) g_i lambda_j eps_ji = g_i z_i / c_i sum_j (pi_j q_j / q). The same
// quantities as the general path, summed in a different order (rounding only).
template <typename T, typename Add>
GK_HD void zero_mean_gaussian_scale_sample(const Params<T>& p, const T* z, const T* g, const Grads<T>& out, Add add) {
  const int K = p.K, D = p.D;
  const T* inv_ref = p.inv_ref;
  const T l0 = p.lam0;
  // 1 / c_i = lambda_0 / s'_i.
  T r2 = T(0), gz = T(0);
  int i = 0;
#ifdef GK_HOST_SIMD
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
    const T lj = component_scale_of(p, j);
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
    const T lj = component_scale_of(p, j);
    const T l = j < kCachedComponents ? lqj[j] : p.log_pi[j] + (T(-0.5) * r2 / (lj * lj) + p.log_norm[j]);
    const T w = gk_exp(l - log_q);  // responsibility pi_j q_j / q (eq. 12)
    w_tot += w;
    if (out.component_scale) add(&out.component_scale[j], w * gz / lj);  // dz/dlambda_j = z / lambda_j
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
  for (i = 0; i < D; ++i) add(&out.coord_scale[i], w_tot * (g[i] * z[i] * (inv_ref[i] * l0)));
}

// The pair (j, k)'s share of the logits gradient, given pi_j and v = g . U^{jk}: pi_j pi_k v to logit j
// and, since U^{kj} = -U^{jk}, its negative to logit k (one evaluation serves both).
template <typename T, typename Add>
GK_HD void add_pairwise_logits(const Params<T>& p, int j, int k, T pj, T v, const Grads<T>& out, Add add) {
  const T t = pj * gk_exp(p.log_pi[k]) * v;
  add(&out.logits[j], t);
  add(&out.logits[k], -t);
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
  if (p.family == kGaussianScale && !p.locs && p.component_scale) {
    zero_mean_gaussian_scale_sample(p, z, g, out, add);
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
  const bool radial = p.family == kGaussianScale || p.family == kDiscreteGaussianScale;
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
    const T lj = component_scale_of(p, j);
    const T* inv = p.inv_scale + j * D;
    // Branches hoisted out of the coordinate loops (family and optional pointers are fixed per call).
    const T* mu = p.locs ? p.locs + j * D : nullptr;
    T* g_locs = out.locs ? out.locs + j * D : nullptr;
    const bool per_comp = p.family == kDiagNormals;
    T* g_coord = per_comp ? out.coord_scale + j * D : out.coord_scale;
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
    if (out.component_scale || radial) {
      for (int i = 0; i < D; ++i) {
        const T d = mu ? z[i] - mu[i] : z[i];
        const T e = d * inv[i];
        lam_acc += g[i] * d;
        r2 += (e * lj) * (e * lj);
      }
    }
    if (out.component_scale) add(&out.component_scale[j], w * lam_acc / lj);  // dz/dlambda_j = (z - mu_j)/lambda_j
    if (K > 1) {
      if (p.family == kDiagNormals) {
        if (!deferred_log_q) add(&out.acc_w[j], telescoping_dot(p, j, z, g, log_q));
      } else if (radial) {
        add(&out.acc_w[j], p.locs ? radial_dot(p, j, r2, lam_acc, log_q, rc)
                                  : radial_dot(p, j, r2_shared, gx_shared, log_q, rc, pq0));
      }
    }
  }
  if (p.family == kGaussianScale || K < 2) return;  // zero means: all references coincide
  if (p.ref_loc) return;  // one common reference (the reference field): no U terms
  if (deferred_log_q) return;  // the caller evaluates the U terms (see pairwise_args)
  for (int j = 0; j < K; ++j) {
    const T pj = gk_exp(p.log_pi[j]);
    for (int k = j + 1; k < K; ++k) add_pairwise_logits(p, j, k, pj, pairwise_dot(p, j, k, z, g, log_q), out, add);
  }
}

GK_MIXTURE_END

