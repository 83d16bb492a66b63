// gradkern numerical core, Gaussian mixtures: the velocity fields of the logits, each a sum of fluxes
// formed in log space (derivations in mixture.h's header comment):
//   telescoping_visit / telescoping_dot  g . W^j, coordinate-wise telescoping (eqs. 49-50), diagonal
//                                        covariances, from rho_j (pairwise field) or the common rho;
//   radial_*                             the radial field of eq. 40 between lambda_0 and lambda_j
//                                        (scale mixtures, eqs. 41-43);
//   pairwise_args / pairwise_dot         g . U^{jk}, the transport between references (eq. 15).
#pragma once

#include "core/igamma_half.h"
#include "core/mixture_params.h"

GK_MIXTURE_BEGIN

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

// Constants of the radial field that depend only on D: lgamma(D/2) and
// log C_D = -(D/2) log 2 pi + (D/2 - 1) log 2 + lgamma(D/2) (eq. 41 after the substitution t = s/lambda).
template <typename T>
struct RadialConsts {
  T lgamma_half_d, log_half_d, log_cd;
  GK_HD explicit RadialConsts(int D) {
    const T half_d = T(0.5) * T(D);
    lgamma_half_d = gk_lgamma(half_d);
    log_half_d = gk_log(half_d);
    log_cd = -half_d * gk_log(consts<T>::two_pi) + (half_d - T(1)) * consts<T>::ln2 + lgamma_half_d;
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
// assembles the whole term. The zero-mean fast path (zero_mean_gaussian_scale_sample) shares everything but
// log(Q_j - Q_0) between the components.
// log(Q_j - Q_0) = log(P_0 - P_j) from the logs of P and Q at lambda_j and lambda_0, in whichever
// form has the smaller terms.
template <typename T>
GK_HD T radial_log_diff_pq(T lpj, T lqj, T lp0, T lq0) {
  return lqj < -consts<T>::ln2 ? lqj + log1mexp(gk_min(lq0 - lqj, T(0)))
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
  const T half = -consts<T>::ln2;
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
  const T lj = component_scale_of(p, j), l0 = p.lam0;
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
  const T lj = component_scale_of(p, j), l0 = p.lam0;
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
#ifdef GK_HOST_SIMD
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
#ifdef GK_HOST_SIMD
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

GK_MIXTURE_END

