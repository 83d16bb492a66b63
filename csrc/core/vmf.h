// von Mises-Fisher on the sphere S^(d-1), d >= 2: the law of the cosine w = mu^T z, the implicit
// reparameterization gradient of w w.r.t. the concentration kappa, the moments of w and Wood's sampler.
// Header-only, host and device, T = float or double (the quadratures run in double for both).
//
// Everything is written in u = 1 - w in [0, 2], so that w near 1 (kappa >> d) keeps its relative
// accuracy: the sample z = w mu + sqrt(u (2 - u)) v needs sqrt(1 - w^2) = sqrt(u (2 - u)), which 1 - w
// computed from a rounded w would lose. With nu = (d - 3) / 2 the density of u is g(u) / Z_u,
//   g(u) = exp(-kappa u) u^nu (2 - u)^nu,   Z_u = int_0^2 g = e^-kappa int_-1^1 e^(kappa w) (1 - w^2)^nu dw.
//
// Implicit gradient (Figurnov et al. 2018, eq. 8, with F the CDF of u): d log g / d kappa = -u, so
//   dF/dkappa = int_0^u (m - s) g(s) ds / Z_u,   m = E[u] = 1 - A_d(kappa),  A_d = I_(d/2) / I_(d/2-1),
//   du/dkappa = -(dF/dkappa) / (g(u) / Z_u) = int_0^u (s - m) h(s) ds,   h(s) = g(s) / g(u).
// With I_k = int_0^u h (u - s)^k ds and J_k = int_u^2 h (s - u)^k ds (the two sides of u), m - u =
// (J_1 - I_1) / (I_0 + J_0), and substituting gives
//   du/dkappa = -(I_0 J_1 + J_0 I_1) / (I_0 + J_0),
// a sum of positive terms: no cancellation for any u, no m needed in advance, and the normaliser cancels
// (nothing overflows: each side is integrated relative to its own peak, combined through exponent
// differences). The CDF is P(U <= u) = I_0 / (I_0 + J_0); dw/dkappa = -du/dkappa > 0.
//
// Quadrature, in the angle theta = acos(w) in [0, pi]: g(u) du = F(theta) dtheta with
// F = e^(-kappa (1 - cos theta)) sin^(d-2)(theta), entire in theta (d - 2 is an integer), so neither the
// endpoint factors u^nu, (2 - u)^nu (square-root singularities for even d) nor the pole of one of them
// near the other end reaches the rule; differences such as cos theta_u - cos theta are formed from
// half-angle products, so kappa (s - u) keeps its accuracy up to kappa = 1e6. log F is unimodal (mode in
// closed form, mode_angle); each side of theta_u is integrated by one Gauss-Legendre panel per side of
// its peak (float64: 20 nodes out to where log F has dropped by 34 for the gradient and the CDF, 24 nodes
// and drop 42 for the moments; float32: 12 nodes, drop 20), the boundary by a quadratic-model step and
// safeguarded Newton. The rule is accurate to ~1e-15 relative on e^(-42 x) and e^(-42 x^2) over [0, 1],
// the shapes between which log-concave F ranges; the composite is compared with mpmath in
// tests/test_vmf.py (max relative error ~1e-13 over d = 2 .. 1000, kappa = 0 .. 1e6).
//
// Moments (vmf_moments): Z_u, m and Var[u] (= Var[w] = A_d'(kappa)) from the same split at the mode
// (moments about u_ref = 1 - cos(mode), so E[(u - u_ref)^2] - (m - u_ref)^2 does not cancel); central
// moments of higher order (their kappa-derivatives) split at the mean.
//
// d = 2 is the von Mises case: w = cos theta with theta ~ vonMises(0, kappa), so the gradient, the CDF
// and the sampler reuse vonmises_cdf.h and vonmises_sampler.h (du/dkappa = sin(theta) dtheta/dkappa,
// P(U <= u) = 1 - 2 F_vm(-theta), u = 2 sin^2(theta / 2)); the quadrature (sin^0 = 1) gives the moments.
// d = 3 has closed forms: F(u) = (1 - e^-kappa u) / (1 - e^-2kappa), sampled by inversion, and du/dkappa
// from it for kappa >= 1/4 (the quadrature below, where the closed form's two terms cancel).
//
// Sampler (Wood 1994; d >= 4): with b = (d - 1) / (2 kappa + sqrt(4 kappa^2 + (d - 1)^2)), x0 = (1 - b) / (1 + b),
// draw Z ~ Beta((d-1)/2, (d-1)/2) from two uniforms by Ulrich's (1984) construction of the symmetric Beta,
// Z = (1 + sqrt(1 - U1^(2/(d-2))) cos phi) / 2, phi = 2 pi U2 (with v = U1^(2/(d-2)), r = sqrt(1 - v):
// Z = cos^2(phi/2) - cos(phi) v / (2 (1 + r)) where cos phi < 0 and 1 - Z = sin^2(phi/2) + cos(phi) v / (2 (1 + r))
// where cos phi >= 0, sums of non-negative terms, the other of each pair directly), and U ~ U(0, 1); the
// proposal u = 1 - W = 2 b Z / ((1 - Z) + b Z) (W = (1 - (1 + b) Z) / (1 - (1 - b) Z) rewritten: no
// cancellation near w = 1), accepted when
//   kappa ((1 - x0) - u) + (d - 1) (log1p(x0 u / (1 - x0)) - log1p(x0)) >= log U
// (Wood's kappa W + (d - 1) log(1 - x0 W) - c >= log U with the same rewriting). kappa = 0 accepts every
// proposal (b = 1, x0 = 0): u = 2 Z, the uniform law. At most kVmfMaxProposals = 64 proposals: the
// acceptance rate measured over d = 2 .. 10000 x kappa = 0 .. 1e6 (20,000 draws each) is at least 0.658
// (d = 2, large kappa), so exhausting the cap has probability below 0.342^64 ~ 1e-30; if it happens the
// last proposal is returned (a valid point) and *exhausted set.
//
// Domain: kappa >= 0 finite (kappa = 0 is the uniform distribution), d >= 2, u in [0, 2]; anything else
// gives NaN. u = 0 and u = 2 (the poles) have du/dkappa = 0. Cost: typically three panels (36 nodes in float32,
// 60 in float64) and 2-6 scalar log-density evaluations for the panel ends per gradient or CDF; the moments
// three to four 24-node panels (bench/vmf.py has the timings).
#pragma once

#include "common.h"
#include "quadrature.h"
#include "special.h"
#include "vonmises_cdf.h"
#include "vonmises_sampler.h"

namespace gradkern {
namespace core {

static constexpr int kVmfMaxProposals = 64;

namespace vmf_detail {


// sin and cos of x for |x| <= pi / 2 from the von Mises sampler's polynomials (< 1 ulp for |x| <= pi / 4,
// vonmises_sampler.h), reduced by the complement above pi / 4; a quarter of libm's cost here.
GK_HD void sincos_half_pi(double x, double& s, double& c) {
  typedef vm_detail::vm_sampler_poly<double> P;
  const double inv_pi = 0.318309886183790671538, half_pi = 1.57079632679489661923;
  const double ax = x < 0.0 ? -x : x;
  const bool hi = ax > 0.5 * half_pi;
  const double y = hi ? half_pi - ax : ax;  // in [0, pi / 4]
  const double r = y * inv_pi, r2 = r * r;
  const double sy = r * P::sinpi_r(r2), cy = P::cospi(r2);
  s = hi ? cy : sy;
  c = hi ? sy : cy;
  if (x < 0.0) s = -s;
}

// The integrand in the angle theta = acos(w) in [0, pi]: g(u) du = F(theta) dtheta with
// F = e^(-kappa (1 - cos theta)) sin^(d-2)(theta), an entire function of theta (d - 2 = 2 nu + 1 is an
// integer), so no endpoint factor u^nu or (2 - u)^nu is left for the rule. at(theta) gives
// E = log F(theta) - log F(theta_ref), E', E'' and delta = s - u_ref (s = 1 - cos theta), the differences
// formed from half-angle products (cos theta_ref - cos theta = 2 sin((theta - theta_ref)/2)
// sin((theta + theta_ref)/2)), so that kappa delta keeps its accuracy for kappa up to 1e6.
struct Angle {
  double kappa, n2;  // n2 = d - 2
  double sh_ref, ch_ref, log_sin_ref;  // sin, cos of theta_ref / 2; log sin theta_ref (unused when n2 = 0)
  double inv_sin_ref;                  // 1 / sin theta_ref (d > 2)
  double theta_ref;
  double theta_mode, sh_mode, ch_mode;  // the mode and the sin, cos of its half (from mode_angle's 1 - cos)
  GK_HD void at(double th, double& E, double& dE, double& d2E, double& delta) const {
    // the two peaks (theta_ref where the mode is beyond it, the mode) come with their half-angle sines
    double sh = th == theta_ref ? sh_ref : sh_mode, ch = th == theta_ref ? ch_ref : ch_mode;
    if (th != theta_ref && th != theta_mode) sincos_half_pi(0.5 * th, sh, ch);  // theta / 2 in [0, pi / 2]
    const double st = 2.0 * sh * ch;
    const double ct = (ch - sh) * (ch + sh);
    delta = 2.0 * (sh * ch_ref - ch * sh_ref) * (sh * ch_ref + ch * sh_ref);
    E = th == theta_ref || n2 == 0.0 ? -kappa * delta : -kappa * delta + n2 * (log_sin(st) - log_sin_ref);
    // (d = 2 has no sin term: keep 0 / 0 out of E' and E'' at theta = 0, the mode)
    dE = -kappa * st + (n2 != 0.0 ? n2 * ct / st : 0.0);
    d2E = -kappa * ct - (n2 != 0.0 ? n2 / (st * st) : 0.0);
  }
  // log sin theta for the scalar evaluations (libm: in this latency-bound scalar code it measured faster
  // than the branch-free log_pos, which the vectorized panel loops use).
  static GK_HD double log_sin(double st) { return ::log(st); }
};

// The mode of F: E' = 0 <=> kappa sin^2 = n2 cos, cos theta* = 2 kappa / (n2 + q), q = sqrt(n2^2 + 4 kappa^2);
// theta* = 2 asin(sqrt((1 - cos theta*) / 2)) with 1 - cos theta* = (n2 + n2^2 / (q + 2 kappa)) / (n2 + q)
// (no cancellation for kappa >> d). d = 2: theta* = 0; kappa = 0: pi / 2. sh, ch: sin and cos of theta* / 2,
// sqrt((1 -+ cos theta*) / 2).
GK_HD double mode_angle(double kappa, int d, double* sh = nullptr, double* ch = nullptr) {
  const double n2 = double(d - 2);
  double omc = 0.0;
  if (n2 != 0.0) {
    const double q = ::sqrt(n2 * n2 + 4.0 * kappa * kappa);
    omc = (n2 + n2 * n2 / (q + 2.0 * kappa)) / (n2 + q);
  }
  const double s = ::sqrt(0.5 * omc);
  if (sh) *sh = s;
  if (ch) *ch = ::sqrt(1.0 - 0.5 * omc);
  return n2 == 0.0 ? 0.0 : 2.0 * ::asin(s);
}

// The integrand split at theta_ref. The reference's half-angle sines come from the rounded angle (for a
// split at u, not sqrt(u / 2)): the panels end at that angle, and deep in a tail (kappa = 1e6, u = 1.98:
// E' ~ 2e5 per radian) an ulp between the two moved the gradient by 4e-11.
GK_HD Angle make_angle(double kappa, int d, double theta_ref) {
  Angle f;
  f.kappa = kappa;
  f.n2 = double(d - 2);
  f.theta_ref = theta_ref;
  sincos_half_pi(0.5 * theta_ref, f.sh_ref, f.ch_ref);
  f.log_sin_ref = d > 2 ? Angle::log_sin(2.0 * f.sh_ref * f.ch_ref) : 0.0;
  f.inv_sin_ref = d > 2 ? 1.0 / (2.0 * f.sh_ref * f.ch_ref) : 0.0;
  f.theta_mode = mode_angle(kappa, d, &f.sh_mode, &f.ch_mode);
  return f;
}

// theta with 1 - cos theta = u, from the smaller of u and 2 - u (each exact in its half).
GK_HD double angle_of(double u) {
  return u <= 1.0 ? 2.0 * ::asin(::sqrt(0.5 * u)) : 3.14159265358979323846 - 2.0 * ::asin(::sqrt(0.5 * (2.0 - u)));
}

using quad::GaussLegendre;
using quad::next_boundary;

// The rule for results of type T.
// The rule for the gradient and the CDF (per sample) by result type; the moments (per concentration, whose
// second moment cancels partly) keep the 24-node rule for float64 (with 20 nodes d = 2, kappa = 10 lost
// its variance to 6e-10).
template <typename T> struct RuleFor { static constexpr int n = 20; };
template <> struct RuleFor<float> { static constexpr int n = 12; };
template <typename T> struct MomentRuleFor { static constexpr int n = 24; };
template <> struct MomentRuleFor<float> { static constexpr int n = 12; };

// One panel in two passes over its N nodes, each a loop without calls or data-dependent branches (the CPU
// build vectorizes them: AVX2/AVX-512 clones in cpu/vmf.cpp; every sample takes the same path, so a batch
// gives the results of single calls). panel_nodes, per node theta_j = mid + hw x_j:
// - sin and cos of theta_j / 2 by the addition formulas from those of mid / 2 (once per panel) and of
//   hw x_j / 2 (in [-pi / 4, pi / 4] as hw <= pi / 2: the sampler's polynomials without a reduction), with
//   absolute errors of a few ulps, as a direct evaluation's;
// - delta and e^(E - Eref): for d - 2 <= 32 the sine factor is an integer power, (sin theta / sin
//   theta_ref)^(d-2), by six squarings whose products the bits of d - 2 select, times e^(-kappa delta - Eref);
//   within a panel E - Eref is in [-45, 0] and each of -kappa delta and (d - 2) log(ratio) is O(d + 45)
//   there, so neither factor overflows or underflows on its own. Beyond 32, e^(-kappa delta + (d - 2)
//   log(ratio) - Eref) with the branch-free log (special.h; the ratio floored at the smallest normal, whose
//   log is far below any node's). The exponential is the sampler's branch-free one (vm_exp_le1: 0 below
//   -700, where a node is negligible against the panel's peak node, ~1).
// Then the sums w_j hw e_j |delta_j|^k in four interleaved partial sums (N is a multiple of 4), combined in
// a fixed order.
template <int N, bool ByLog>
GK_HD void panel_nodes(const Angle& f, double hw, double sm, double cm, double Eref, double* e, double* ad, double* w) {
  typedef GaussLegendre<N> R;
  typedef vm_detail::vm_sampler_poly<double> P;
  const int n = int(f.n2);
  for (int j = 0; j < N; ++j) {
    const double r = (0.5 * hw * R::x(j)) * 0.318309886183790671538, r2 = r * r;  // (hw x_j / 2) / pi
    const double so = r * P::sinpi_r(r2), co = P::cospi(r2);
    const double sh = sm * co + cm * so, ch = cm * co - sm * so;
    const double delta = 2.0 * (sh * f.ch_ref - ch * f.sh_ref) * (sh * f.ch_ref + ch * f.sh_ref);
    const double ratio = 2.0 * sh * ch * f.inv_sin_ref;
    ad[j] = delta < 0.0 ? -delta : delta;
    double arg = -f.kappa * delta - Eref, p = 1.0;
    if (ByLog) {
      arg += f.n2 * log_pos(ratio > num<double>::min_normal ? ratio : num<double>::min_normal);
    } else {
      double q = ratio;
      for (int b = 0; b < 6; ++b) {  // ratio^n, n <= 32, by squaring (the bits of n select)
        p = (n >> b) & 1 ? p * q : p;
        q *= q;
      }
    }
    e[j] = vm_detail::vm_exp_le1(arg) * p;
    w[j] = hw * R::w(j);
  }
}

template <int K, int N>
GK_HD void panel(const Angle& f, double lo, double hi, double Eref, double* acc) {
  static_assert(N % 4 == 0, "the partial sums take the nodes four at a time");
  const double mid = 0.5 * (lo + hi), hw = 0.5 * (hi - lo);
  double sm, cm;
  sincos_half_pi(0.5 * mid, sm, cm);  // mid / 2 in [0, pi / 2]
  double e[N], ad[N], w[N];
  if (f.n2 > 32.0) {
    panel_nodes<N, true>(f, hw, sm, cm, Eref, e, ad, w);
  } else {
    panel_nodes<N, false>(f, hw, sm, cm, Eref, e, ad, w);
  }
  double part[K][4];
  for (int k = 0; k < K; ++k)
    for (int l = 0; l < 4; ++l) part[k][l] = 0.0;
  for (int j = 0; j < N; j += 4) {
    for (int l = 0; l < 4; ++l) {
      double v = w[j + l] * e[j + l];
      for (int k = 0; k < K; ++k) {
        part[k][l] += v;
        v *= ad[j + l];
      }
    }
  }
  for (int k = 0; k < K; ++k) acc[k] += (part[k][0] + part[k][1]) + (part[k][2] + part[k][3]);
}

// int_lo^hi e^(E(r) - E*) |delta|^k dr for E unimodal with its peak on [lo, hi] at r_peak (E* = E(r_peak),
// returned): one panel on each side of the peak, out to where E has dropped by the rule's drop or to the interval's end.
template <int K, int N, class F>
GK_HD double integrate(const F& f, double lo, double hi, double r_peak, double* acc) {
  for (int k = 0; k < K; ++k) acc[k] = 0.0;
  double Es, dEs, d2Es, delta;
  f.at(r_peak, Es, dEs, d2Es, delta);
  const double drop = GaussLegendre<N>::drop;
  if (r_peak < hi) panel<K, N>(f, r_peak, next_boundary(f, r_peak, Es, dEs, d2Es, Es - drop, 1.0, r_peak, hi), Es, acc);
  if (r_peak > lo) panel<K, N>(f, next_boundary(f, r_peak, Es, dEs, d2Es, Es - drop, -1.0, lo, r_peak), r_peak, Es, acc);
  return Es;
}

GK_HD bool bad(double kappa, int d) { return !(kappa >= 0.0) || !(kappa < INFINITY) || d < 2; }

// Split at theta_ref (0 < theta_ref < pi, or theta_ref = 0 for d = 2): lo[k] e^E0 = int_0^theta_ref e^E |delta|^k
// and hi[k] e^E1 = int_theta_ref^pi e^E |delta|^k (|delta| = |s - u_ref|), E relative to F(theta_ref), each
// side's integral relative to its own peak (E0 = -inf for an empty side). Each side's peak is the mode
// clamped into it.
template <int K, int N = 24>
GK_HD void split_integrals(double kappa, int d, double theta_ref, double* lo, double* hi, double& E0, double& E1) {
  const Angle f = make_angle(kappa, d, theta_ref);
  const double mode = f.theta_mode;
  const double pi = 3.14159265358979323846;
  if (theta_ref > 0.0) {
    E0 = integrate<K, N>(f, 0.0, theta_ref, mode < theta_ref ? mode : theta_ref, lo);
  } else {
    E0 = -INFINITY;
    for (int k = 0; k < K; ++k) lo[k] = 0.0;
  }
  E1 = integrate<K, N>(f, theta_ref, pi, mode > theta_ref ? mode : theta_ref, hi);
}

struct Moments {
  double log_z;  // log Z_u
  double mean;   // E[u] = 1 - A_d(kappa)
  double var;    // Var[u] = Var[w] = A_d'(kappa)
};

// Z_u = int_0^pi F, E[u] and Var[u] from the integrals split at the mode (moments about u_ref = 1 - cos mode,
// close to the mean, so E[(u - u_ref)^2] - (E[u] - u_ref)^2 does not cancel).
template <int N = 24>
GK_HD Moments moments(double kappa, int d) {
  Moments out;
  if (bad(kappa, d)) {
    out.log_z = out.mean = out.var = NAN;
    return out;
  }
  const double mode = mode_angle(kappa, d);
  double lo[3], hi[3], E0, E1;
  split_integrals<3, N>(kappa, d, mode, lo, hi, E0, E1);
  const double scale = E0 > E1 ? E0 : E1;
  const double c0 = ::exp(E0 - scale), c1 = ::exp(E1 - scale);
  for (int k = 0; k < 3; ++k) {
    lo[k] *= c0;
    hi[k] *= c1;
  }
  const double z = lo[0] + hi[0];
  const double d1 = (hi[1] - lo[1]) / z;
  const double sh = ::sin(0.5 * mode);
  const double u_ref = 2.0 * sh * sh;
  const double log_f_ref = -kappa * u_ref + (d > 2 ? (d - 2) * ::log(::sin(mode)) : 0.0);
  out.log_z = log_f_ref + scale + ::log(z);
  out.mean = u_ref + d1;
  out.var = (lo[2] + hi[2]) / z - d1 * d1;
  return out;
}

// E[(u - E[u])^k], 2 <= k <= kVmfMaxMoment: the integrals split at the mean, so that (s - mean)^k is
// -|delta|^k below it for odd k and |delta|^k above (no cancellation between the sides' signs beyond the
// moment's own).
static constexpr int kVmfMaxMoment = 8;
GK_HD double central_moment(double kappa, int d, int k) {
  if (bad(kappa, d) || k < 2 || k > kVmfMaxMoment) return NAN;
  const Moments m = moments(kappa, d);
  double lo[kVmfMaxMoment + 1], hi[kVmfMaxMoment + 1], E0, E1;
  split_integrals<kVmfMaxMoment + 1>(kappa, d, angle_of(m.mean), lo, hi, E0, E1);
  const double scale = E0 > E1 ? E0 : E1;
  const double c0 = ::exp(E0 - scale), c1 = ::exp(E1 - scale);
  const double sign = (k & 1) ? -1.0 : 1.0;
  return (c1 * hi[k] + sign * c0 * lo[k]) / (c1 * hi[0] + c0 * lo[0]);
}

}  // namespace vmf_detail

// (log Z_u, E[u], Var[u]) of u = 1 - mu^T z (see the top); NaN outside the domain.
template <typename T> GK_HD void vmf_moments(T kappa, int d, T& log_z, T& mean, T& var) {
  const vmf_detail::Moments m = vmf_detail::moments<vmf_detail::MomentRuleFor<T>::n>(double(kappa), d);
  log_z = T(m.log_z);
  mean = T(m.mean);
  var = T(m.var);
}

// E[(u - E[u])^k], k = 2 .. 8 (the kappa-derivatives of the moments: d mu_k / dkappa = -(mu_(k+1) - k mu_(k-1) mu_2)).
template <typename T> GK_HD T vmf_central_moment(T kappa, int d, int k) {
  return T(vmf_detail::central_moment(double(kappa), d, k));
}

// du/dkappa at fixed P(U <= u): the implicit reparameterization gradient of u = 1 - mu^T z.
template <typename T> GK_HD T vmf_grad_u(T kappa_t, T u_t, int d) {
  const double kappa = double(kappa_t), u = double(u_t);
  if (vmf_detail::bad(kappa, d) || !(u >= 0.0 && u <= 2.0)) return quiet_nan<T>();
  if (u == 0.0 || u == 2.0) return T(0);
  if (d == 2) {
    // u = 1 - cos theta, theta in [0, pi]: du/dkappa = sin(theta) dtheta/dkappa.
    const double theta = 2.0 * ::asin(::sqrt(0.5 * u));
    return T(::sqrt(u * (2.0 - u)) * vonmises_grad<double>(kappa, theta));
  }
  if (d == 3 && kappa >= 0.25) {
    // closed form: F(u) = (1 - e^-kappa u) / D, D = 1 - e^-2kappa, f(u) = kappa e^-kappa u / D, so
    // du/dkappa = (2 (e^-kappa (2 - u) - e^-2kappa) / D - u) / kappa. The two terms cancel as kappa -> 0
    // (relatively by ~kappa), so below 1/4 the quadrature is used.
    const double D = -::expm1(-2.0 * kappa);
    return T((2.0 * (::exp(-kappa * (2.0 - u)) - ::exp(-2.0 * kappa)) / D - u) / kappa);
  }
  // du/dkappa = -(I0 J1 + J0 I1) / (I0 + J0) (see the top): every term positive.
  // h(s) ds = sin(theta_u) e^E dtheta (F(theta_u) / g(u) = sin theta_u). With I_k = e^E0 lo_k, J_k = e^E1 hi_k
  // and c_i = e^(E_i - max(E0, E1)) (one of them 1, the other possibly 0: deep in a tail one side's e^E is
  // far beyond the range of double),
  //   (I0 J1 + J0 I1) / (I0 + J0) = e^min(E0, E1) (lo0 hi1 + hi0 lo1) / (c0 lo0 + c1 hi0),
  // where min(E0, E1) = 0 (the side without the mode peaks at theta_u, E relative to it) and lo_k, hi_k are
  // integrals relative to their side's peak (between ~1e-160 and 2^k pi): nothing overflows or cancels.
  double lo[2], hi[2], E0, E1;
  vmf_detail::split_integrals<2, vmf_detail::RuleFor<T>::n>(kappa, d, vmf_detail::angle_of(u), lo, hi, E0, E1);
  const double top = E0 > E1 ? E0 : E1, bottom = E0 > E1 ? E1 : E0;
  const double c0 = vm_detail::vm_exp_le1(E0 - top), c1 = vm_detail::vm_exp_le1(E1 - top);
  const double ratio = (lo[0] * hi[1] + hi[0] * lo[1]) / (c0 * lo[0] + c1 * hi[0]);
  return T(-::sqrt(u * (2.0 - u)) * (bottom == 0.0 ? ratio : ::exp(bottom) * ratio));
}

// d/dkappa of du/dkappa at fixed u (second order, issue 15). d log h(s) / dkappa = u - s, so dI_k/dkappa =
// I_(k+1) and dJ_k/dkappa = -J_(k+1), and G = du/dkappa = -(I0 J1 + J0 I1) / D (D = I0 + J0) has
//   dG/dkappa = a J2 - b I2 - G (I1 - J1) / D,   a = I0 / D, b = J0 / D,
// with (I1 - J1) / D = a lo[1] / lo[0] - b hi[1] / hi[0] (each side's scale cancels) and a J2, b I2 formed in
// logs as a J1, b I1 are for G. The terms have mixed signs: where dG/dkappa crosses zero it is small against
// them (tests/test_vmf.py measures it relative to their sum there). d = 2 from the von Mises second
// derivative (theta is fixed with u); d >= 3 by the quadrature, d = 3 included (the closed form's terms
// cancel as kappa -> 0), with the moments' 24-node rule (the weight (s - u)^2 reaches further out than the
// gradient's). Computed in double for every T.
template <typename T> GK_HD T vmf_grad_u_dkappa(T kappa_t, T u_t, int d) {
  const double kappa = double(kappa_t), u = double(u_t);
  if (vmf_detail::bad(kappa, d) || !(u >= 0.0 && u <= 2.0)) return quiet_nan<T>();
  if (u == 0.0 || u == 2.0) return T(0);
  const double s = ::sqrt(u * (2.0 - u));  // sin(theta_u): h(s) ds = sin(theta_u) e^E dtheta
  if (d == 2) {
    const double theta = 2.0 * ::asin(::sqrt(0.5 * u));
    return T(s * vonmises_grad_dconcentration<double>(kappa, theta));
  }
  double lo[3], hi[3], E0, E1;
  vmf_detail::split_integrals<3, 24>(kappa, d, vmf_detail::angle_of(u), lo, hi, E0, E1);
  const double r = E1 - E0 + ::log(hi[0] / lo[0]);  // log(J0 / I0)
  const double la = -(r > 0.0 ? r + ::log1p(::exp(-r)) : ::log1p(::exp(r)));    // log a = -log(1 + e^r)
  const double lb = -(r < 0.0 ? -r + ::log1p(::exp(r)) : ::log1p(::exp(-r)));   // log b = -log(1 + e^-r)
  const double aJ1 = ::exp(E1 + ::log(hi[1]) + la), bI1 = ::exp(E0 + ::log(lo[1]) + lb);
  const double aJ2 = ::exp(E1 + ::log(hi[2]) + la), bI2 = ::exp(E0 + ::log(lo[2]) + lb);
  const double G = -s * (aJ1 + bI1);
  const double ratio = ::exp(la) * (lo[1] / lo[0]) - ::exp(lb) * (hi[1] / hi[0]);
  return T(s * (aJ2 - bI2) - G * ratio);
}

// P(U <= u) = P(mu^T z >= 1 - u), the survival function of w at 1 - u.
template <typename T> GK_HD T vmf_cdf_u(T kappa_t, T u_t, int d) {
  const double kappa = double(kappa_t), u = double(u_t);
  if (vmf_detail::bad(kappa, d) || !(u >= 0.0 && u <= 2.0)) return quiet_nan<T>();
  if (u == 0.0) return T(0);
  if (u == 2.0) return T(1);
  if (d == 2) {
    const double theta = 2.0 * ::asin(::sqrt(0.5 * u));
    // P(|Theta| <= theta) = 1 - 2 F(-theta), the tail F(-theta) kept exact.
    return T(1.0 - 2.0 * vonmises_cdf<double>(-theta, kappa > 0.0 ? kappa : 1e-30));
  }
  if (d == 3) {
    // closed form: (1 - e^-kappa u) / (1 - e^-2kappa) (u / 2 at kappa = 0)
    return T(kappa > 0.0 ? ::expm1(-kappa * u) / ::expm1(-2.0 * kappa) : 0.5 * u);
  }
  // P(U <= u) = I0 / (I0 + J0) = c0 lo0 / (c0 lo0 + c1 hi0) (the normaliser is the sum of the two sides;
  // c_i as in vmf_grad_u)
  double lo[1], hi[1], E0, E1;
  vmf_detail::split_integrals<1, vmf_detail::RuleFor<T>::n>(kappa, d, vmf_detail::angle_of(u), lo, hi, E0, E1);
  const double top = E0 > E1 ? E0 : E1;
  const double a = vm_detail::vm_exp_le1(E0 - top) * lo[0];
  return T(a / (a + vm_detail::vm_exp_le1(E1 - top) * hi[0]));
}

// Sums over a row in eight interleaved partial sums, combined in a fixed order: the serial chain of a
// plain sum costs an add latency per element, and lane sums vectorize. Callers add element j of the row to
// lane j % 8 (v[l] in blocks of eight, then the tail from lane 0).
template <typename T> struct LaneSum {
  T v[8];
  GK_HD LaneSum() {
    for (int l = 0; l < 8; ++l) v[l] = T(0);
  }
  GK_HD T total() const { return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7])); }
};

// One sample z in R^d from u = 1 - mu^T z, d - 1 standard normals and the mean direction loc (row
// pointers, d >= 2): v = noise / |noise| is uniform on S^(d-2), x = (1 - u, sqrt(u (2 - u)) v),
// z = -sigma (x - 2 (h^T x / h^T h) h) with h = e_1 + sigma loc, sigma = sign(loc_0) (+1 at 0): the
// Householder map that sends e_1 to loc with h^T h = 2 (1 + |loc_0|) >= 2 for unit loc (the textbook
// h = e_1 - loc divides by ~0 near loc = e_1). sqrt(u (2 - u)) is floored at sqrt(min_normal), so the poles
// u = 0, 2 keep a finite derivative (their du/dkappa is 0). For j >= 1, h_j = sigma loc_j and
// x_j = scale noise_(j-1), so h^T x = h_0 x_0 + sigma scale sum loc_j noise_(j-1): one pass for the sums,
// one for z.
template <typename T>
GK_HD void vmf_direction(const T* loc, T u, const T* noise, int d, T* out) {
  const T sigma = loc[0] >= T(0) ? T(1) : T(-1);
  const int m = d - 1;
  LaneSum<T> nn, ln, ll;  // |noise|^2, sum loc_j noise_(j-1), sum loc_j^2 (j >= 1)
  int j0 = 0;
  for (; j0 + 8 <= m; j0 += 8)
    for (int l = 0; l < 8; ++l) {
      const T n = noise[j0 + l], lc = loc[j0 + l + 1];
      nn.v[l] += n * n;
      ln.v[l] += lc * n;
      ll.v[l] += lc * lc;
    }
  for (int l = 0; j0 + l < m; ++l) {
    const T n = noise[j0 + l], lc = loc[j0 + l + 1];
    nn.v[l] += n * n;
    ln.v[l] += lc * n;
    ll.v[l] += lc * lc;
  }
  const T norm2 = nn.total();
  const T s2 = u * (T(2) - u);
  const T s = gk_sqrt(s2 > num<T>::min_normal ? s2 : num<T>::min_normal);
  const T scale = norm2 > T(0) ? s / gk_sqrt(norm2) : T(0);
  const T h0 = sigma * loc[0] + T(1), x0 = T(1) - u;
  const T hx = h0 * x0 + sigma * scale * ln.total();
  const T hh = h0 * h0 + ll.total();
  const T c = T(2) * hx / hh;
  // z_0 = -sigma (x_0 - c h_0); z_j = -sigma (scale noise_(j-1) - c sigma loc_j) = c loc_j - sigma scale noise_(j-1)
  out[0] = -sigma * (x0 - c * h0);
  const T ss = sigma * scale;
  for (int j = 1; j < d; ++j) out[j] = c * loc[j] - ss * noise[j - 1];
}

// The vector-Jacobian product of vmf_direction for one row: given g = dL/dz, writes dL/dloc (d), dL/du (1)
// and dL/dnoise (d - 1). M = -sigma (I - 2 h h^T / q) is symmetric and its own inverse, so
// g^T M dx = (M g)^T dx with dx/du = (-1, (1 - u) / s^2 x_1..) (0 where s is floored) and
// dx_1../dnoise = (s / |noise|) (I - v v^T); dz/dh at fixed x = 2 sigma [h (dh^T x) + c dh - 2 c h (h^T dh) / q] / q
// with c = h^T x, dh = sigma dloc. The same formulas as csrc/autograd.cpp's differentiable (ATen) version,
// arranged as three passes over the row: the sums c, g^T h, q and |noise|^2; the sum (M g)^T noise; the
// outputs (with (M g)_j = -sigma g_j + a loc_j for j >= 1, a = 2 g^T h / q, and dL/dloc = A g + B x - C h).
template <typename T>
GK_HD void vmf_direction_backward(const T* g, const T* loc, T u, const T* noise, int d, T* gl, T* gu, T* gn) {
  const T sigma = loc[0] >= T(0) ? T(1) : T(-1);
  const int m = d - 1;
  LaneSum<T> nn, ln, gls, ll;  // |noise|^2, sum loc_j noise_(j-1), sum g_j loc_j, sum loc_j^2 (j >= 1)
  int j0 = 0;
  for (; j0 + 8 <= m; j0 += 8)
    for (int l = 0; l < 8; ++l) {
      const T n = noise[j0 + l], lc = loc[j0 + l + 1];
      nn.v[l] += n * n;
      ln.v[l] += lc * n;
      gls.v[l] += g[j0 + l + 1] * lc;
      ll.v[l] += lc * lc;
    }
  for (int l = 0; j0 + l < m; ++l) {
    const T n = noise[j0 + l], lc = loc[j0 + l + 1];
    nn.v[l] += n * n;
    ln.v[l] += lc * n;
    gls.v[l] += g[j0 + l + 1] * lc;
    ll.v[l] += lc * lc;
  }
  const T norm2 = nn.total();
  const T nrm = gk_sqrt(norm2);
  const T s2 = u * (T(2) - u);
  const bool floored = !(s2 > num<T>::min_normal);
  const T s = gk_sqrt(floored ? num<T>::min_normal : s2);
  const T inv_n = nrm > T(0) ? T(1) / nrm : T(0);
  const T sc = s * inv_n;  // x_j = sc noise_(j-1), j >= 1
  const T h0 = sigma * loc[0] + T(1), x0 = T(1) - u;
  const T c = h0 * x0 + sigma * sc * ln.total();   // h^T x
  const T gh = g[0] * h0 + sigma * gls.total();    // g^T h
  const T q = h0 * h0 + ll.total();                // h^T h
  const T inv_q = T(1) / q;
  const T a = T(2) * gh * inv_q;
  // (M g)_0 and sum_(j>=1) (M g)_j noise_(j-1): mgx = s v^T (M g)_1.. = sc S, v^T (M g)_1.. = inv_n S
  const T mg0 = -sigma * (g[0] - a * h0);
  LaneSum<T> mn;
  j0 = 0;
  for (; j0 + 8 <= m; j0 += 8)
    for (int l = 0; l < 8; ++l) mn.v[l] += (a * loc[j0 + l + 1] - sigma * g[j0 + l + 1]) * noise[j0 + l];
  for (int l = 0; j0 + l < m; ++l) mn.v[l] += (a * loc[j0 + l + 1] - sigma * g[j0 + l + 1]) * noise[j0 + l];
  const T S = mn.total();
  const T coef = floored ? T(0) : (T(1) - u) / s2;
  *gu = coef * sc * S - mg0;
  // dL/dnoise_(j-1) = sc ((M g)_j - noise_(j-1) inv_n^2 S); dL/dloc = 2 [g c / q + x gh / q - 2 h gh c / q^2]
  const T vs = inv_n * inv_n * S;
  const T A = T(2) * c * inv_q, B = T(2) * gh * inv_q, C = T(4) * gh * c * inv_q * inv_q;
  gl[0] = A * g[0] + B * x0 - C * h0;
  const T Bs = B * sc, Cs = C * sigma;
  for (int j = 1; j < d; ++j) {
    const T n = noise[j - 1];
    gn[j - 1] = sc * ((a * loc[j] - sigma * g[j]) - n * vs);
    gl[j] = A * g[j] + Bs * n - Cs * loc[j];
  }
}

// One draw of u = 1 - mu^T z for z ~ vMF(mu, kappa) on S^(d-1) (Wood's algorithm, see the top).
template <typename T, typename Uniform>
GK_HD T vmf_sample_u(T kappa, int d, Uniform& next_uniform, int max_proposals, bool* exhausted = nullptr) {
  if (exhausted) *exhausted = false;
  if (!(kappa >= T(0)) || !gk_isfinite(kappa) || d < 2) return quiet_nan<T>();
  if (d == 2) {
    // the von Mises case: u = 1 - cos theta = 2 sin^2(theta / 2), theta from the Best-Fisher sampler
    const T th = vonmises_sample<T>(kappa, next_uniform, kVonMisesMaxProposals, exhausted);
    const T sh = gk_sin(T(0.5) * th);
    return T(2) * sh * sh;
  }
  if (d == 3) {
    // inverse CDF of F(u) = (1 - e^-kappa u) / (1 - e^-2kappa): u = -log1p(U expm1(-2 kappa)) / kappa
    const T U = next_uniform();
    return kappa > T(0) ? -gk_log1p(U * gk_expm1(T(-2) * kappa)) / kappa : T(2) * U;
  }
  const T dm1 = T(d - 1);
  // 2 kappa + sqrt(4 kappa^2 + (d - 1)^2) without overflow of kappa^2
  const T k2 = T(2) * kappa;
  const T big = k2 > dm1 ? k2 : dm1, small = k2 > dm1 ? dm1 : k2;
  const T ratio = small / big;
  const T b = dm1 / (k2 + big * gk_sqrt(T(1) + ratio * ratio));
  const T omx0 = T(2) * b / (T(1) + b);  // 1 - x0
  const T x0 = (T(1) - b) / (T(1) + b);
  const T log1p_x0 = log1p_fast(x0);
  T u = T(1);
  const T expo = T(2) / T(d - 2);  // 1 / (a - 1/2)
  for (int it = 0; it < max_proposals; ++it) {
    // Z ~ Beta(a, a), a = (d - 1) / 2 >= 3/2 (Ulrich; see the top): Z and 1 - Z each without cancellation
    const T L = expo * gk_log(next_uniform());
    const T v = gk_exp(L), r = gk_sqrt(-gk_expm1(L));  // U1^(2/(d-2)) and sqrt(1 - U1^(2/(d-2)))
    T sh, ch;
    vm_detail::sincos_two_pi(T(0.5) * next_uniform(), sh, ch);  // of phi / 2 = pi U2 (U2 / 2 exact)
    const T cphi = (ch - sh) * (ch + sh);
    const T corr = cphi * v / (T(2) * (T(1) + r));
    const T Z = cphi < T(0) ? ch * ch - corr : T(0.5) * (T(1) + r * cphi);
    const T omZ = cphi >= T(0) ? sh * sh + corr : T(0.5) * (T(1) - r * cphi);
    u = T(2) * b * Z / (omZ + b * Z);
    const T lu = gk_log(next_uniform());
    const T crit = kappa * (omx0 - u) + dm1 * (log1p_fast(x0 * u / omx0) - log1p_x0);
    if (crit >= lu) return u;
  }
  if (exhausted) *exhausted = true;
  return u;
}

}  // namespace core
}  // namespace gradkern
