// The incomplete beta function and its implicit gradients for large parameters by quadrature: both a and b
// at least kQuadMin (1e3) and x within kQuadSd (200) standard deviations of the mean (and not below half the
// mean, nor 1 - x below half of 1 - mean: quad_regime). There the continued fraction of csrc/core/ibeta.h
// needs about 2.5 sqrt(min(a, b)) pairs of steps near the mode by its convergence estimate, but measured it
// ran to its 10,000-pair cap already at a = b = 1e5 (116 us per element, 1e-12 to 1e-11 relative error; 6e-10
// at a = b = 1e8) and, with a = 10 b and b >= 1e6 about one standard deviation below the
// mean, returned NaN values and gradients of the wrong sign (the side rule for x > 0.9 sent it to a side that
// does not converge within the cap); 8e-9 relative at (1e5, 1e4) there. Header-only, host and device,
// double (float results are the double ones rounded once), no allocation; every loop is capped.
//
// With h(t) = t^(a-1) (1-t)^(b-1) / (x^(a-1) (1-x)^(b-1)) (the density relative to its value at x: no
// beta function, no normaliser), l(t) = log t and l'(t) = log(1 - t), and the integrals on either side of x
//   I_0 = int_0^x h,   I_1 = int_0^x h (l(x) - l),    I_2 = int_0^x h (l' - l'(x)),
//   J_0 = int_x^1 h,   J_1 = int_x^1 h (l - l(x)),    J_2 = int_x^1 h (l'(x) - l'),
// all non-negative: q(x) = 1 / (I_0 + J_0), I_x(a, b) = I_0 / (I_0 + J_0), and (eq. 8 with
// dF/da = q(x) int_0^x h (l - E[l]), E[l] - l(x) = (J_1 - I_1) / (I_0 + J_0))
//   dx/da =  (I_1 J_0 + I_0 J_1) / (I_0 + J_0),   dx/db = -(I_2 J_0 + I_0 J_2) / (I_0 + J_0):
// sums of positive terms, so nothing cancels, whichever side of the mode x lies on (the construction of
// the von Mises-Fisher gradient, csrc/core/vmf.h). The second order (csrc/core/ibeta_d2.h) adds the
// integrals of products of two log ratios.
//
// The integrand, in the offset d = t - x: log h = (a-1) log1pmx(d/x) + (b-1) log1pmx(-d/(1-x)) + c1 d, the
// linear terms gathered into c1 = (a-1)/x - (b-1)/(1-x), the slope at x. c1's numerator
// (a-1)(1-x) - (b-1) x cancels near the mode: it is formed from error-free products (fma) and the exact
// 1 - x (a double-double below x = 1/2), so that c1 d keeps its accuracy at a = 1e8 (computed directly,
// each of the two large terms, ~1e4 k for a sample k standard deviations out, errs by an ulp: 1e-12 in h).
// log h is concave (a, b >= 1). Each side is integrated by 24-node Gauss-Legendre panels that span the rule's
// drop (42, e^-42 ~ 6e-19) from the side's peak: the side without the mode peaks at x (log h = 0), the
// other at the mode, where it is integrated relative to e^em, em = log h(mode) (~k^2 / 2), so nothing
// overflows; from x to the mode (skipping what lies more than the drop below it), and from the mode
// outwards. Three panels, 72 evaluations of two log1pmx and one exp (the second order: four times as many,
// see beta_panel): 1.2-2.4 us per element, against 1.4-6 us for the fraction near the mode at min(a, b) = 1e3
// and 10-150 us from 1e4 on (C++ timing, one core).
// Measured against mpmath (gradkern/reference/beta.py, large_*; tests/data/beta_large_ref.csv): values within 1.1e-13
// and dx/da, dx/db within 1.3e-13 relative (2e-15 typical) over a, b in 1e3 .. 1e8, |k| <= 200 (tests/test_beta.py; the
// fraction there: up to 7e-12, and 1e-6 in the second order at a = b = 1e8, k = 60). Below a or b = 1e3 the fraction is
// kept: the quadrature loses accuracy as the smaller parameter falls (1e-8 at b = 3, where (1 - t)^(b-1) is far from
// the Gaussian shape the panels are sized for) and the fraction is fast there; except with one parameter from 1e4
// on and x on the far side of the mean from the small parameter's end, where quad_tail (below) integrates the tail
// alone, on panels graded towards that end, and ibeta.h adds the closed-form density and digamma terms.
#pragma once

#include "common.h"
#include "quadrature.h"
#include "special.h"

namespace gradkern {
namespace core {
namespace ibeta_detail {

static constexpr double kQuadMin = 1e3;
// The second order (ibeta_d2.h d2_value) takes the quadrature from 100 on: between 100 and 1e3 the fraction's
// second derivatives near the mean of a skewed law were 3.4e-11 relative at (1e4, 100) (1.3e-12 of their
// scale; 7.4e-12 of the scale at a = b = 500) and the quadrature's within 1.4e-13, at 6-8 us per element
// instead of 3-4 (the first order keeps the fraction there: it is accurate, and fast for the samplers'
// backward passes).
static constexpr double kQuadMinD2 = 100.0;
static constexpr double kQuadSd = 200.0;
static constexpr int kQuadNodes = 24;

// Whether (a, b, x) (valid, 0 < x < 1) is in the quadrature's regime.
// Also x at least half the mean and 1 - x at least half of 1 - mean: where x is a small fraction of the
// mean (or 1 - x of 1 - mean), log h(mode) grows beyond ~k^2 / 2 (9e4 at a = 1e4, b = 1e8, x = 5e-5 of the
// mean) and so do the rounding errors of the nodes' exponents (7e-12 there), while the fraction converges in
// a few steps.
GK_HD bool quad_regime(double a, double b, double x, double amin = kQuadMin) {
  if (!(a >= amin && b >= amin)) return false;
  // the standard deviation from the two means' product (a b and s^2 overflow from ~1e154 on)
  const double s = a + b, m = a / s, m1 = b / s, sd = gk_sqrt(m * m1 / (s + 1.0));
  return gk_fabs(x - m) <= kQuadSd * sd && x >= 0.5 * m && 1.0 - x >= 0.5 * m1;
}

// log h(x + d) and the two log ratios l(x + d) - l(x), l'(x + d) - l'(x).
struct BetaLogRatio {
  double am1, bm1, x, x1, c1;  // a - 1, b - 1, x, 1 - x rounded, the slope of log h at x
  // quad_tail: beyond |d| = x / 2 or (1 - x) / 2 the log ratios directly (log1p), not as log1pmx plus the
  // linear term, which cancel there (log1pmx(v) ~ -v: at v = 1e12, 1 - x = 1e-16 and a small b, E lost 1e-4)
  bool direct = false;
  GK_HD double E(double d, double& l1, double& l2) const {
    const double u = d / x, v = -d / x1;
    if (direct && !(gk_fabs(u) < 0.5 && gk_fabs(v) < 0.5)) {
      l1 = gk_log1p(u);
      l2 = gk_log1p(v);
      return am1 * l1 + bm1 * l2;
    }
    const double m1 = log1pmx(u), m2 = log1pmx(v);
    l1 = m1 + u;
    l2 = m2 + v;
    return am1 * m1 + bm1 * m2 + c1 * d;
  }
  // quad::next_boundary's interface: E, its first two derivatives in d (the linear terms removed, so the
  // slope near the mode does not cancel), and the offset.
  GK_HD void at(double d, double& e, double& de, double& d2e, double& delta) const {
    double l1, l2;
    e = E(d, l1, l2);
    const double ti = 1.0 / (x + d), si = 1.0 / (x1 - d);
    de = c1 - am1 * d * ti / x - bm1 * d * si / x1;
    d2e = -am1 * ti * ti - bm1 * si * si;
    delta = d;
  }
};

// The integrals of one side, each relative to e^ref: s0 = int h e^-ref, s1 = int h e^-ref |l - l(x)|,
// s2 = int h e^-ref |l' - l'(x)| (the sign of each log ratio is fixed on a side) and, for the second order
// (csrc/core/ibeta_d2.h), s11, s12, s22: the products of two of the log ratios' magnitudes.
struct QuadAcc {
  double s0, s1, s2, s11, s12, s22;
};

template <int N, bool Second>
GK_HD void beta_rule(const BetaLogRatio& f, double lo, double hi, double ref, QuadAcc& acc) {
  typedef quad::GaussLegendre<N> R;
  const double mid = 0.5 * (lo + hi), hw = 0.5 * (hi - lo);
  double s0 = 0.0, s1 = 0.0, s2 = 0.0, s11 = 0.0, s12 = 0.0, s22 = 0.0;
  for (int j = 0; j < N; ++j) {
    double l1, l2;
    const double e = R::w(j) * gk_exp(f.E(mid + hw * R::x(j), l1, l2) - ref);
    const double m1 = gk_fabs(l1), m2 = gk_fabs(l2);
    s0 += e;
    s1 += e * m1;
    s2 += e * m2;
    if (Second) {
      s11 += e * m1 * m1;
      s12 += e * m1 * m2;
      s22 += e * m2 * m2;
    }
  }
  acc.s0 += hw * s0;
  acc.s1 += hw * s1;
  acc.s2 += hw * s2;
  if (Second) {
    acc.s11 += hw * s11;
    acc.s12 += hw * s12;
    acc.s22 += hw * s22;
  }
}

// One panel: the rule once for the first order; for the second order on four equal parts of it. The second
// order's one-sided moment formulas (ibeta_d2.h quad_d2) cancel near the mean, up to ~1e4-fold at a = b = 1e8,
// and there the rule's truncation (~2e-15 relative on a panel) showed: 2.7e-11 of the scale with one rule per
// panel, 2.7e-12 with four (eight: no better, 8.7e-12; measured against tests/data/beta_large_ref.csv).
template <int N, bool Second>
GK_HD void beta_panel(const BetaLogRatio& f, double lo, double hi, double ref, QuadAcc& acc) {
  constexpr int kParts = Second ? 4 : 1;
  const double w = (hi - lo) / kParts;
  for (int i = 0; i < kParts; ++i)
    beta_rule<N, Second>(f, lo + w * i, i + 1 == kParts ? hi : lo + w * (i + 1), ref, acc);
}

// Both sides: I (t < x) and J (t > x), the mode's side relative to e^em (em = E*, >= 0), the other to 1.
struct QuadSides {
  QuadAcc i, j;
  double em;
  bool mode_right;  // the mode lies above x (on J's side)
};

// The integrand's set-up at (a, b, x); *num = (a-1)(1-x) - (b-1) x, the numerator of the slope c1 (its sign:
// whether the mode lies above x).
GK_HD BetaLogRatio beta_log_ratio(double a, double b, double x, double* num) {
  BetaLogRatio f;
  f.am1 = a - 1.0;
  f.bm1 = b - 1.0;
  f.x = x;
  f.x1 = 1.0 - x;
  const double r = (1.0 - f.x1) - x;  // 1 - x = x1 + r exactly (0 for x >= 1/2)
  // (a-1)(1-x) - (b-1) x from the products' rounding errors: exact up to the final additions
  const double p1 = f.am1 * f.x1, e1 = gk_fma(f.am1, f.x1, -p1);
  const double p2 = f.bm1 * x, e2 = gk_fma(f.bm1, x, -p2);
  *num = (p1 - p2) + ((e1 - e2) + f.am1 * r);
  f.c1 = *num / (x * f.x1);
  return f;
}

template <bool Second = false> GK_HD QuadSides quad_sides(double a, double b, double x) {
  typedef quad::GaussLegendre<kQuadNodes> R;
  double num;
  const BetaLogRatio f = beta_log_ratio(a, b, x, &num);
  const double dm = num / (f.am1 + f.bm1);  // the mode (a-1)/(a+b-2) minus x
  double em, dem, d2em, t;
  f.at(dm, em, dem, d2em, t);
  if (!(em > 0.0)) em = 0.0;  // the peak; rounding could put it a hair below log h(x) = 0
  const double d2e0 = -(f.am1 / (x * x) + f.bm1 / (f.x1 * f.x1));
  const double drop = R::drop, lo = -x, hi = f.x1;
  QuadSides s{{0.0, 0.0, 0.0, 0.0, 0.0, 0.0}, {0.0, 0.0, 0.0, 0.0, 0.0, 0.0}, em, dm >= 0.0};
  QuadAcc& near = s.mode_right ? s.i : s.j;  // the side peaking at x
  QuadAcc& far = s.mode_right ? s.j : s.i;   // the side holding the mode
  const double dir = s.mode_right ? 1.0 : -1.0;  // from x towards the mode
  // the side peaking at x: from x away from the mode, to the drop
  const double dn = quad::next_boundary(f, 0.0, 0.0, f.c1, d2e0, -drop, -dir, lo, hi);
  beta_panel<kQuadNodes, Second>(f, dir > 0.0 ? dn : 0.0, dir > 0.0 ? 0.0 : dn, 0.0, near);
  // the mode's side: from x (or from the drop below the peak, nearer to it) to the mode, then outwards
  const double da = em > drop ? quad::next_boundary(f, dm, em, dem, d2em, em - drop, -dir, dir > 0.0 ? 0.0 : dm,
                                                    dir > 0.0 ? dm : 0.0)
                              : 0.0;
  beta_panel<kQuadNodes, Second>(f, dir > 0.0 ? da : dm, dir > 0.0 ? dm : da, em, far);
  const double df = quad::next_boundary(f, dm, em, dem, d2em, em - drop, dir, lo, hi);
  beta_panel<kQuadNodes, Second>(f, dir > 0.0 ? dm : df, dir > 0.0 ? df : dm, em, far);
  return s;
}

// The two sides' totals, I_0 + J_0 = e^em (fi I~_0 + fj J~_0) with the tilde sums of QuadSides.
struct QuadScale {
  double fi, fj;  // e^(ref - em) of each side: 1 for the mode's, e^-em for the other
};
GK_HD QuadScale quad_scale(const QuadSides& s) {
  const double t = gk_exp(-s.em);
  return s.mode_right ? QuadScale{t, 1.0} : QuadScale{1.0, t};
}

// I_x(a, b) and 1 - I_x(a, b); false (nothing written) where the smaller of the two is below ~e^-700, which
// e^-em would round to a subnormal or 0 (beyond ~37 standard deviations for a near-Gaussian law; the
// continued fraction converges fast there and keeps the tail's relative precision).
GK_HD bool quad_values(double a, double b, double x, double& I, double& Ic) {
  const QuadSides s = quad_sides(a, b, x);
  if (!(s.em <= 700.0)) return false;
  const QuadScale k = quad_scale(s);
  const double ti = k.fi * s.i.s0, tj = k.fj * s.j.s0;
  I = ti / (ti + tj);
  Ic = tj / (ti + tj);
  return true;
}

// dx/da and dx/db; q(x) = 1 / (I_0 + J_0) into *dens where asked.
GK_HD void quad_grads(double a, double b, double x, double& ga, double& gb, double* dens = nullptr) {
  const QuadSides s = quad_sides(a, b, x);
  const QuadScale k = quad_scale(s);
  // (I_1 J_0 + I_0 J_1) / (I_0 + J_0) = e^(ref_I + ref_J - em) (...) / (fi I~_0 + fj J~_0), and the
  // prefactor is e^0: one side's reference is 0, the other's em.
  const double den = k.fi * s.i.s0 + k.fj * s.j.s0;
  ga = (s.i.s1 * s.j.s0 + s.i.s0 * s.j.s1) / den;
  gb = -(s.i.s2 * s.j.s0 + s.i.s0 * s.j.s2) / den;
  if (dens) *dens = gk_exp(-s.em) / den;
}

// The tail away from the mode alone (ibeta.h tail_regime: one parameter large, the other possibly small, x on
// the far side of the mean from the small parameter's end, where the continued fraction's argument is near 1
// and it loses digits: 4e-9 relative at a = 1e8, b = 2, two standard deviations below the mean). Returns
// whether the mode lies above x (the tail is then t < x, else t > x) and the tail's integrals s0, s1, s2 (as
// in QuadAcc, relative to h(x) = 1, the side's peak); ibeta.h combines them with the closed-form density and
// digamma differences. The panels run from x away from the mode, each spanning at most the rule's drop and
// at most kTailGrow times its distance from the end of [0, 1] behind it (t = 1 where the tail is t < x): that
// end carries the small parameter's factor (1 - t)^(b - 1), singular or far from polynomial there, which a
// panel reaching close to it relative to its own length would resolve poorly (24 nodes: the rule's error
// falls like rho^-48, rho = 2.6 for a singularity half a half-length beyond the panel). Stops where the rest is
// negligible against the sum, at the end of [0, 1], or after kTailPanels panels (enough from a distance of
// 1e-30 on, which tail_regime requires).
static constexpr double kTailGrow = 4.0;
static constexpr int kTailPanels = 64;  // 5^43 > 1e30: from 1e-30 (ibeta.h kTailEdge) to the whole interval

template <bool Second = false> GK_HD bool quad_tail(double a, double b, double x, QuadAcc& acc) {
  typedef quad::GaussLegendre<kQuadNodes> R;
  double num;
  BetaLogRatio f = beta_log_ratio(a, b, x, &num);
  f.direct = true;
  const bool mode_right = num >= 0.0;
  const double dir = mode_right ? -1.0 : 1.0;          // away from the mode
  const double lo = -x, hi = f.x1, end = dir < 0.0 ? lo : hi;
  const double behind = dir < 0.0 ? f.x1 : x;           // distance from x to the end of [0, 1] behind
  acc = QuadAcc{0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
  double d0 = 0.0, e0 = 0.0, de0 = f.c1, d2e0 = -(f.am1 / (x * x) + f.bm1 / (f.x1 * f.x1)), delta;
  for (int i = 0; i < kTailPanels; ++i) {
    double d1 = quad::next_boundary(f, d0, e0, de0, d2e0, e0 - R::drop, dir, lo, hi);
    const double cap = kTailGrow * (behind + gk_fabs(d0));
    if (gk_fabs(d1 - d0) > cap) d1 = d0 + dir * cap;
    if (dir * (d1 - end) > 0.0) d1 = end;
    beta_panel<kQuadNodes, Second>(f, dir > 0.0 ? d0 : d1, dir > 0.0 ? d1 : d0, 0.0, acc);
    if (d1 == end) break;
    f.at(d1, e0, de0, d2e0, delta);
    d0 = d1;
    // the rest, were the integrand to fall exponentially from here at its present slope, below 1e-19 of the
    // sum so far (or NaN: stop). Not a drop from the peak alone: the peak at x can be a spike as narrow as
    // 1 - x (a small b), with the sum ~30 times its height times that width, so e^-50 of the peak over the
    // tail's decay length was still 1e-12 of the sum (a = 1e4, b = 1e-6, 1 - x = 1e-16).
    if (!(gk_exp(e0) >= 1e-19 * acc.s0 * gk_fabs(de0))) break;
  }
  return mode_right;
}

}  // namespace ibeta_detail
}  // namespace core
}  // namespace gradkern
