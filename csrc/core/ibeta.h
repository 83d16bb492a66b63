// gradkern numerical core: regularized incomplete beta function I_x(a, b), its derivatives in a and b,
// the implicit reparameterization gradient of Beta(a, b) samples and the inverse of I in x.
//
//   betainc(a, b, x), betaincc(a, b, x)   I_x(a, b) and 1 - I_x(a, b) (each computed directly).
//   standard_beta_grad(a, b, x, ga, gb)   dx/da and dx/db at fixed I_x(a, b) (Figurnov et al. 2018,
//                                         eq. (8) with F = I_x): dx/da = -(dI/da) / q(x), q the
//                                         Beta(a, b) density.
//   dirichlet_grad(x, alpha, total)       torch._dirichlet_grad's contract (dx/dalpha) / (1 - x).
//   betainc_grads(a, b, x, da, db)        dI/da and dI/db.
//   betaincinv(a, b, p)                   x with I_x(a, b) = p.
//
// Method. With (p, q, y) = (a, b, x) if x <= (a + 1)/(a + b + 2), else (b, a, 1 - x) and
// I_x(a, b) = 1 - I_y(p, q) (the symmetry is applied to the function, never by subtracting computed
// values of it: the derivatives of 1 vanish, so nothing cancels), the continued fraction
//   I_y(p, q) = y^p (1-y)^q / (p B(p, q)) * h,  h = 1 / (1 + d_1 / (1 + d_2 / (1 + ...))),
//   d_{2m+1} = -(p+m)(p+q+m) y / ((p+2m)(p+2m+1)),  d_{2m} = m (q-m) y / ((p+2m-1)(p+2m)),
// converges on that side (DLMF 8.17.22). Its partials dh/dp, dh/dq are carried in forward mode through
// the modified Lentz recurrence (dual numbers; the approach of Boik and Robison-Cox 1998 for the same
// fraction), which stops when the value and both partials have converged (capped at kMaxIter).
// The density factor cancels analytically in the implicit gradient: q(y) y (1-y) = y^p (1-y)^q / B(p, q),
// so
//   dI_y/dp / q(y) = y (1-y) / p * (h L_p + dh/dp),  L_p = log y - psi(p+1) + psi(p+q),
//   dI_y/dq / q(y) = y (1-y) / p * (h L_q + dh/dq),  L_q = log(1-y) - psi(q) + psi(p+q),
// with no power, exponential or beta function: nothing over- or underflows, whatever a, b and x.
// L_p and L_q take the digamma differences from digamma_diff (no subtraction of two digammas) and the
// logs of y and 1 - y from the exact input (log x, log1p(-x)).
//
// Working precision is double for both float and double arguments (float results are the double result
// rounded once): the fraction needs O(sqrt(min(p, q))) steps near the mode and float would accumulate
// their rounding.
//
// Special values: a or b <= 0, NaN or +inf, both a and b above kMaxBoth (1e20), x outside [0, 1] or NaN
// -> NaN. x = 0: I = 0, gradients 0; x = 1: I = 1, gradients 0. Both a and b >= 1e3 near the mean: the
// quadrature of csrc/core/ibeta_quad.h instead of the continued fraction.
#pragma once

#include "common.h"
#include "ibeta_quad.h"
#include "special.h"

namespace gradkern {
namespace core {

namespace ibeta_detail {

typedef double W;

// Lentz steps. Near the mode the fraction needs about 2.5 sqrt(min(p, q)) + 20 steps (measured); the cap
// covers min(p, q) up to ~1e7 and stops a pathological input in bounded time.
static constexpr int kMaxIter = 10000;

// A value with its partials in p and q (V = W; the gradients' pieces below also take a GNU vector of W, whose
// lanes the CPU kernel computes together: csrc/cpu/ibeta_block.h).
template <class V> struct dual2t {
  V v, p, q;
};
typedef dual2t<W> dual2;

// The few operations the templates below need beyond arithmetic, for V = W (here) and for the CPU kernel's
// GNU vectors of W (csrc/cpu/ibeta_block.h specializes it, lane by lane): m ? a : b for a comparison result m,
// whether any lane of m is set, a and not b for masks, sqrt, log1p for t > -1 (special.h log1p_fast, branch-free
// there, so that the lanes compute it as the scalar core does, bit for bit), log x for 0 < x < 1 (special.h
// log_fast), and x with |x| < tiny replaced by tiny.
template <class V> struct lane_ops;
template <> struct lane_ops<W> {
  static GK_HD W select(bool m, W a, W b) { return m ? a : b; }
  static GK_HD bool any(bool m) { return m; }
  static GK_HD bool and_not(bool a, bool b) { return a && !b; }
  static GK_HD W sqrt(W x) { return gk_sqrt(x); }
  static GK_HD W log1p(W t) { return core::log1p_fast(t); }
  static GK_HD W log_unit(W x) { return core::log_fast(x); }
  static GK_HD W guard_tiny(W x, W tiny) { return gk_fabs(x) < tiny ? tiny : x; }
  // 2^-k, k = d's unbiased exponent clamped to [0, 1000]: d 2^-k < 2 for d >= 1 (and d itself below), an exact
  // scaling that keeps the products of digamma_diff_t's paired shift terms finite for any finite d.
  static GK_HD W pow2_down(W d) {
    int e = static_cast<int>((to_bits(d) >> 52) & 0x7FF) - 1023;
    e = e < 0 ? 0 : (e > 1000 ? 1000 : e);
    return from_bits<W>(static_cast<ieee<W>::U>(1023 - e) << 52);
  }
};
// The constant c as a V (W, or a GNU vector of W with c in every lane).
template <class V> GK_HD V vconst(W c) { return V{} + c; }

template <class V> GK_HD dual2t<V> dmul(dual2t<V> x, dual2t<V> y) {
  return dual2t<V>{x.v * y.v, x.p * y.v + x.v * y.p, x.q * y.v + x.v * y.q};
}
template <class V> GK_HD dual2t<V> dinv(dual2t<V> x) {
  const V r = W(1) / x.v;
  const V r2 = -r * r;
  return dual2t<V>{r, x.p * r2, x.q * r2};
}
// 1 + c * x
template <class V> GK_HD dual2t<V> one_plus_mul(dual2t<V> c, dual2t<V> x) {
  return dual2t<V>{W(1) + c.v * x.v, c.p * x.v + c.v * x.p, c.q * x.v + c.v * x.q};
}
// 1 + c / x
template <class V> GK_HD dual2t<V> one_plus_div(dual2t<V> c, dual2t<V> x) {
  const V r = W(1) / x.v;
  const V v = c.v * r;
  return dual2t<V>{W(1) + v, (c.p - v * x.p) * r, (c.q - v * x.q) * r};
}


// Lentz's guard against a zero denominator (the fraction's own values never get near it for valid
// arguments; it only keeps a degenerate step from producing inf/NaN).
template <class V> GK_HD dual2t<V> lentz_guard(dual2t<V> x) {
  constexpr W tiny = 1e-300;
  x.v = lane_ops<V>::guard_tiny(x.v, tiny);
  return x;
}

// psi(z + d) - psi(z) for z > 0, d >= 0, without the cancellation of subtracting two digammas (psi(1.001)
// - psi(1) lost 2.5 digits that way): shift both arguments by the same n to Z = z + n >= 10, where
//   psi(z + d) - psi(z) = sum_{k<n} d / ((z + k)(z + d + k)) + log1p(d / Z) + [dml(Z + d) - dml(Z)],
// dml(z) = psi(z) - log z = -w/2 - sum_k B_2k/(2k) w^2k (w = 1/z), and the bracket is formed term by
// term from delta = u - w = -d w u (u = 1/(Z + d)): u^2k - w^2k = delta (u + w) sum_j u^2j w^2(k-1-j).
// Every piece has the sign of d: no cancellation. Seven Bernoulli terms: truncation below 4e-17 at Z = 10.
// On scalars or lanes (V = W or a GNU vector of W): the shift loop runs while any lane still needs a term,
// each lane adding its terms while z + n < 10 (z + n increases, so a lane that stops stays stopped).
template <class V> GK_HD V digamma_diff_t(V z, V d) {
  typedef lane_ops<V> O;
  V sum = vconst<V>(W(0)), nz = vconst<V>(W(0));  // nz: the lane's number of shifts n
  // Two terms per division, d / A1 + d / A2 = d (A1 + A2) / (A1 A2), A_k = (z + k)(z + d + k) (positive: no
  // cancellation): the divisions were most of the shift's cost. A lane whose second shift is inactive adds
  // d / A1. d and every A_k are scaled by the same power of two sc (pow2_down: exact, so the quotients' bits are
  // the unscaled ones), which keeps A1 A2 below ~1e4 for active lanes whatever d (unscaled it overflows from
  // d ~ 1e154, a valid concentration).
  const V sc = O::pow2_down(d), ds = d * sc;
  for (int n = 0; n < 10; n += 2) {
    const auto act = z + W(n) < W(10);
    if (!O::any(act)) break;
    const auto act2 = z + W(n + 1) < W(10);
    const V z1 = z + W(n), z2 = z + W(n + 1);
    const V A1 = z1 * ((z1 + d) * sc), A2 = z2 * ((z2 + d) * sc);
    const V num = ds * O::select(act2, A1 + A2, vconst<V>(W(1))), den = O::select(act2, A1 * A2, A1);
    sum = O::select(act, sum + num / den, sum);
    nz = O::select(act, O::select(act2, vconst<V>(W(n + 2)), vconst<V>(W(n + 1))), nz);
  }
  const V Z = z + nz;
  const V w = W(1) / Z, u = W(1) / (Z + d);
  const V delta = -d * w * u;
  const V w2 = w * w, u2 = u * u;
  // c_k = -B_2k / (2k), k = 1..7
  constexpr W c[7] = {-1.0 / 12, 1.0 / 120, -1.0 / 252, 1.0 / 240, -1.0 / 132, 691.0 / 32760, -1.0 / 12};
  V S = vconst<V>(W(1)), wk = vconst<V>(W(1)), acc = vconst<V>(W(0));  // S_k = sum_{j<k} u^2j w^2(k-1-j); wk = w^2(k-1)
  for (int k = 0; k < 7; ++k) {
    acc += c[k] * S;
    wk *= w2;
    S = u2 * S + wk;
  }
  const V bracket = -W(0.5) * delta + delta * (u + w) * acc;
  return sum + O::log1p(d * w) + bracket;
}
GK_HD W digamma_diff(W z, W d) { return digamma_diff_t<W>(z, d); }

// L_p = log y - psi(p+1) + psi(p+q) and L_q = log(1-y) - psi(q) + psi(p+q), from ly = log y and
// ly1 = log(1 - y) (each computed from the exact input: log x or log1p(-x)); on scalars or lanes.
template <class V> GK_HD void log_terms_t(V p, V q, V ly, V ly1, V& Lp, V& Lq) {
  typedef lane_ops<V> O;
  // psi(p + q) - psi(p + 1) = digamma_diff(p + 1, q - 1) for q >= 1, else -digamma_diff(p + q, 1 - q)
  const auto ge = q >= W(1);
  const V r = digamma_diff_t<V>(O::select(ge, p + W(1), p + q), O::select(ge, q - W(1), W(1) - q));
  Lp = ly + O::select(ge, r, -r);
  Lq = ly1 + digamma_diff_t<V>(q, p);
}
GK_HD void log_terms(W p, W q, W ly, W ly1, W& Lp, W& Lq) { log_terms_t<W>(p, q, ly, ly1, Lp, Lq); }

// log Gamma(p) - log Gamma(p + q) for p >= 10 (q > 0), by Stirling's form with the linear terms
// cancelled analytically: -q log p - (p + q - 1/2) log1p(q/p) + q + log(Gamma*(p) / Gamma*(p + q)).
GK_HD W lgamma_ratio_large(W p, W q) {
  const W s = p + q, r = q / p;
  // lin = (s - 1/2) log1p(r) - q; for small r as (s - 1/2) log1pmx(r) + q (q - 1/2) / p, since
  // (s - 1/2) r - q = q (q - 1/2) / p exactly: the O(q) terms cancel analytically.
  const W lin = (r < W(0.5)) ? (s - W(0.5)) * log1pmx(r) + q * (q - W(0.5)) / p : (s - W(0.5)) * log1p_fast(r) - q;
  return -q * gk_log(p) - lin + gk_log(gamma_star(p) / gamma_star(s));
}

// log Gamma(q + p) - log Gamma(q) for q, p > 0, without subtracting two lgammas (which loses the
// digits of a small difference to the magnitude of the lgammas: lgamma(1e-6) ~ 13.8): above 10 by
// lgamma_ratio_large, below by shifting q up with log Gamma(q + p + n) / Gamma(q + n) =
// log Gamma(q + p) / Gamma(q) + sum_{k<n} log1p(p / (q + k)).
GK_HD W lgamma_diff(W q, W p) {
  W sum = W(0);
  int n = 0;
  for (; n < 10 && q + W(n) < W(10); ++n) sum += log1p_fast(p / (q + W(n)));
  return -lgamma_ratio_large(q + W(n), p) - sum;
}

// log(y s / p) given r = y s / p (s = p + q), ly = log y and rq = q / p: log r where r is far from 1 (one
// rounding), else ly + log1p(rq) (no rounding of r near 1 to amplify).
GK_HD W log_ratio(W r, W ly, W rq) {
  return (r > W(0.5) && r < W(2)) ? ly + log1p_fast(rq) : gk_log(r);
}

// log(y^p (1-y)^q / (p B(p, q))) from y, y1 = 1 - y, ly = log y and ly1 = log(1 - y): the prefactor of
// the continued fraction. p B(p, q) = Gamma(p + 1) Gamma(q) / Gamma(p + q) is formed as
// lgamma1p(p) - lgamma_diff(q, p) for p < 10, so a tiny p costs no digits (the value near 1 that
// 1 - I is taken from must carry full absolute precision: betaincc(1e-6, 1, 1e-3) lost 4 digits
// with lgamma(p) + lgamma(q) - lgamma(p + q)).
GK_HD W log_power_pbeta(W p, W q, W y, W y1, W ly, W ly1) {
  const W s = p + q;
  if (p >= W(10) && q >= W(10)) {
    // Uniform form around the mode y0 = p/s: y^p (1-y)^q s^s / (p^p q^q) = exp(E) with
    // E = p log(y s/p) + q log((1-y) s/q); with d = y s - p, log(y s/p) = log1p(d/p) and
    // log((1-y) s/q) = log1p(-d/q), and the linear terms d - d cancel: E = p log1pmx(d/p) + q log1pmx(-d/q).
    // d = y q - (1-y) p: each product errs by about eps min(p, q) near the mode, where y s - p would err
    // by eps max(p, q) (5e-13 relative in the density at p = 1e4, q = 10). Away from the mode each log
    // by log_ratio.
    // 1/B(p, q) = sqrt(p q / (2 pi s)) s^s / (p^p q^q) Gamma*(s) / (Gamma*(p) Gamma*(q)).
    const W d = y * q - y1 * p;
    const W t1 = d / p, t2 = -d / q;
    const W E = (gk_fabs(t1) < W(0.5) && gk_fabs(t2) < W(0.5))
                    ? p * log1pmx(t1) + q * log1pmx(t2)
                    : p * log_ratio(y * s / p, ly, q / p) + q * log_ratio(y1 * s / q, ly1, p / q);
    return E + W(0.5) * gk_log(q / (consts<W>::two_pi * p * s)) +
           gk_log(gamma_star(s) / (gamma_star(p) * gamma_star(q)));
  }
  if (p >= W(10)) return p * ly + q * ly1 - gk_lgamma(q) - lgamma_ratio_large(p, q) - gk_log(p);
  return p * ly + q * ly1 - lgamma1p(p) + lgamma_diff(q, p);
}

// log(y^p (1-y)^q / B(p, q)) (= log of y (1 - y) times the density).
GK_HD W log_beta_power(W p, W q, W y, W y1, W ly, W ly1) {
  return log_power_pbeta(p, q, y, y1, ly, ly1) + gk_log(p);
}

// The fraction h = 1 / (1 + d_1 / (1 + d_2 / (1 + ...))) with its partials in p and q, by the Wallis
// recurrences A_k = A_{k-1} + d_k A_{k-2} (B alike; A_1 = B_1 = 1, A_0 = 0, B_0 = 1) carried in forward
// mode: the recurrences are multiply-adds only, so the chain from one step to the next has no division
// (the modified Lentz form has three per step and ran at a third of the speed); the coefficients' one
// division each is off that chain. Convergents h_k = A_k / B_k and dh_k = (dA_k - h_k dB_k) / B_k are
// formed once per pair of steps for the stopping test (value and both partials stopped changing, against
// the scale |h L| + |dh| of the gradient they enter; Lp, Lq), and everything is rescaled by 1 / B when |B|
// leaves [1e-100, 1e100] (the convergents are unchanged). Capped at kMaxIter pairs of steps.
template <class V> struct wallis_t {
  dual2t<V> A1, B1, A2, B2;  // convergents k-1 and k-2
  GK_HD void step(dual2t<V> c) {
    const dual2t<V> A{A1.v + c.v * A2.v, A1.p + c.p * A2.v + c.v * A2.p, A1.q + c.q * A2.v + c.v * A2.q};
    const dual2t<V> B{B1.v + c.v * B2.v, B1.p + c.p * B2.v + c.v * B2.p, B1.q + c.q * B2.v + c.v * B2.q};
    A2 = A1; B2 = B1; A1 = A; B1 = B;
  }
};
typedef wallis_t<W> wallis;

template <class V> GK_HD dual2t<V> scale_dual(dual2t<V> x, V k) { return dual2t<V>{x.v * k, x.p * k, x.q * k}; }

// The convergent h = A1 / B1 with its partials (dh = (dA - h dB) / B); r = 1 / B1 (the rescaling factor).
template <class V> GK_HD dual2t<V> wallis_convergent(const wallis_t<V>& w, V& r) {
  r = W(1) / w.B1.v;
  const V hv = w.A1.v * r;
  return dual2t<V>{hv, (w.A1.p - hv * w.B1.p) * r, (w.A1.q - hv * w.B1.q) * r};
}

// The fraction's coefficients with their partials in p and q, at index m (M = m, s = p + q):
// d_{2m} = m (q - m) y / ((p + 2m - 1)(p + 2m)) and d_{2m+1} = -(p + m)(s + m) y / ((p + 2m)(p + 2m + 1)).
template <class V> GK_HD dual2t<V> coef_even(V p, V q, V y, V M) {
  const V u0 = p + W(2) * M - W(1), u1 = p + W(2) * M;
  const V r = W(1) / (u0 * u1);  // 1/u0 = u1 r, 1/u1 = u0 r: one division for the three
  const V v = M * (q - M) * y * r;
  return dual2t<V>{v, -v * (u0 + u1) * r, M * y * r};
}
template <class V> GK_HD dual2t<V> coef_odd(V p, V s, V y, V M) {
  const V u0 = p + W(2) * M, u1 = u0 + W(1), pm = p + M, sm = s + M;
  const V r = W(1) / (u0 * u1 * pm * sm);  // shared by v and the four reciprocals of its partials
  const V pmsm = pm * sm, u01 = u0 * u1;
  const V v = -pmsm * pmsm * y * r;
  return dual2t<V>{v, v * ((pm + sm) * u01 - (u0 + u1) * pmsm) * r, v * pm * u01 * r};
}
// d_1 = -s y / (p + 1)
template <class V> GK_HD dual2t<V> coef_first(V p, V s, V y) {
  const V v = -s * y / (p + W(1));
  return dual2t<V>{v, v * (W(1) / s - W(1) / (p + W(1))), v / s};
}

// The state after the first step, d_1 = -s y / (p + 1), and its convergent h.
template <class V> GK_HD wallis_t<V> wallis_init(V p, V q, V y, dual2t<V>& h) {
  const V s = p + q, one = vconst<V>(W(1)), zero = vconst<V>(W(0));
  wallis_t<V> w{dual2t<V>{one, zero, zero}, dual2t<V>{one, zero, zero}, dual2t<V>{zero, zero, zero},
                dual2t<V>{one, zero, zero}};
  w.step(coef_first(p, s, y));
  V r;
  h = wallis_convergent(w, r);
  return w;
}

// Steps 2m and 2m + 1 of the Wallis recurrences. On scalars or on lanes: the same operations in the same
// order, so a lane's result is the scalar loop's bit for bit as long as neither is contracted to FMA
// (csrc/cpu/ibeta.cpp compiles its clones without).
template <class V> GK_HD void wallis_pair(wallis_t<V>& w, V p, V q, V s, V y, V M) {
  w.step(coef_even(p, q, y, M));
  w.step(coef_odd(p, s, y, M));
}

// Whether the rescaling by 1 / B applies: |B| outside [1e-100, 1e100].
GK_HD bool wallis_needs_rescale(const wallis& w) {
  const W ab = gk_fabs(w.B1.v);
  return !(ab < W(1e100) && ab > W(1e-100));
}

template <int Need = 3> GK_HD dual2 cfrac_wallis(W p, W q, W y, W Lp, W Lq, bool with_partials, W eps) {
  const W s = p + q;
  dual2 h;
  wallis w = wallis_init(p, q, y, h);
  for (int m = 1; m < kMaxIter; ++m) {
    wallis_pair(w, p, q, s, y, W(m));
    W r;
    const dual2 hn = wallis_convergent(w, r);
    bool done = gk_fabs(hn.v - h.v) <= eps * gk_fabs(hn.v);
    if (with_partials && done) {
      done = (!(Need & 1) || gk_fabs(hn.p - h.p) <= eps * (gk_fabs(hn.v * Lp) + gk_fabs(hn.p) + W(1e-300))) &&
             (!(Need & 2) || gk_fabs(hn.q - h.q) <= eps * (gk_fabs(hn.v * Lq) + gk_fabs(hn.q) + W(1e-300)));
    }
    h = hn;
    if (done) break;
    if (wallis_needs_rescale(w)) {
      w.A1 = scale_dual(w.A1, r); w.B1 = scale_dual(w.B1, r);
      w.A2 = scale_dual(w.A2, r); w.B2 = scale_dual(w.B2, r);
    }
  }
  return h;
}

// The Lentz state after the first step: C_1 = 1, D_1 = 1 / (1 + d_1), h = D_1.
template <class V> GK_HD void lentz_init(V p, V q, V y, dual2t<V>& C, dual2t<V>& D, dual2t<V>& h) {
  const V one = vconst<V>(W(1)), zero = vconst<V>(W(0));
  const dual2t<V> c = coef_first(p, p + q, y);
  C = dual2t<V>{one, zero, zero};
  D = dinv(lentz_guard(one_plus_mul(c, dual2t<V>{one, zero, zero})));
  h = D;
}
// Steps 2m and 2m + 1 of the modified Lentz recurrence; del = C D of the odd step (the stopping test's).
template <class V> GK_HD void lentz_pair(dual2t<V>& C, dual2t<V>& D, dual2t<V>& h, dual2t<V>& del, V p, V q, V s,
                                         V y, V M) {
  dual2t<V> c = coef_even(p, q, y, M);
  D = dinv(lentz_guard(one_plus_mul(c, D)));
  C = lentz_guard(one_plus_div(c, C));
  h = dmul(h, dmul(D, C));
  c = coef_odd(p, s, y, M);
  D = dinv(lentz_guard(one_plus_mul(c, D)));
  C = lentz_guard(one_plus_div(c, C));
  del = dmul(D, C);
  h = dmul(h, del);
}

// The same fraction by the modified Lentz recurrence (D_k = 1 / (1 + d_k D_{k-1}), C_k = 1 + d_k / C_{k-1},
// h *= C_k D_k), in forward mode. Three divisions per step on the dependency chain, so about three times
// slower than the Wallis form, but better conditioned for y > 1/2 (p >> q near the mode, where d_{2m+1}
// -> -y ~ -1): there the Wallis convergents' partials lost up to 7 digits (a = 1e5, b = 3), Lentz's 3-4.
template <int Need = 3> GK_HD dual2 cfrac_lentz(W p, W q, W y, W Lp, W Lq, bool with_partials, W eps) {
  const W s = p + q;
  dual2 C, D, h, del;
  lentz_init(p, q, y, C, D, h);
  for (int m = 1; m < kMaxIter; ++m) {
    lentz_pair(C, D, h, del, p, q, s, y, W(m));
    if (gk_fabs(del.v - W(1)) <= eps) {
      if (!with_partials) break;
      // The partials of log h change by del.p / del.v (del = 1 + O(eps)).
      const W sp = gk_fabs(Lp) + gk_fabs(h.p / h.v) + W(1e-300);
      const W sq = gk_fabs(Lq) + gk_fabs(h.q / h.v) + W(1e-300);
      if ((!(Need & 1) || gk_fabs(del.p) <= eps * sp) && (!(Need & 2) || gk_fabs(del.q) <= eps * sq)) break;
    }
  }
  return h;
}

// Need: which partials the caller uses and the stopping test waits for (1: d/dp, 2: d/dq, 3: both); the
// other one's arithmetic is dead code the compiler removes (dirichlet_grad needs one: 1.3x faster).
// tol: the stopping tolerance relative to the scale (double's eps; loop_tol<T> for the gradients).
template <int Need = 3> GK_HD dual2 cfrac(W p, W q, W y, W Lp, W Lq, bool with_partials,
                                          W tol = W(2.220446049250313e-16)) {
  return y > W(0.5) ? cfrac_lentz<Need>(p, q, y, Lp, Lq, with_partials, tol)
                    : cfrac_wallis<Need>(p, q, y, Lp, Lq, with_partials, tol);
}

// Both parameters above this: outside the supported domain (NaN). The quadrature's values and first
// derivatives are exact far beyond it (tested to 1e20), but its second derivatives lose digits with the
// parameters (d g_a/da: 1.3e-10 relative at a = b = 1e12, 3e-9 at 1e16, 7e-7 at 1e20), its products of
// integrals underflow from a + b ~ 1e150 on, and betaincinv returned 1 at a = b = 1e100: NaN there rather
// than a wrong number. One parameter alone may be larger (e.g. a Student-t CDF's df / 2).
static constexpr W kMaxBoth = 1e20;

GK_HD bool bad_args(W a, W b, W x) {
  return !(a > W(0)) || !(b > W(0)) || !(a < W(INFINITY)) || !(b < W(INFINITY)) || !(x >= W(0)) || !(x <= W(1)) ||
         (a > kMaxBoth && b > kMaxBoth);
}

// Which side the fraction is evaluated on: x > (a + 1)/(a + b + 2), the fraction's fast side (DLMF
// 8.17.22), and also x > 0.9 within 1.5 standard deviations below the mean. The second case only arises
// for a >> b; there the direct side has its argument y = x near 1, where both recurrences lose digits to
// the condition of the fraction (d_{2m+1} -> -y: 1e-12 relative at a = 1e5, b = 3 with Lentz, 1e-9 with
// Wallis), while the swapped side, with y = 1 - x small, still converges in a few dozen steps and stays
// within a few ulps (measured down to 1.5 standard deviations; further out it slows and loses digits, as
// it does for moderate a, b with x near 1/2: 7e-14 at a = 18, b = 9.7, x = 0.55 when the rule used x > 1/2).
// On scalars or lanes (the second rule's mean and standard deviation only where some lane needs them).
template <class V> GK_HD auto swapped_t(V a, V b, V x) -> decltype(x > a) {
  typedef lane_ops<V> O;
  const V s = a + b;
  auto sw = x > (a + W(1)) / (s + W(2));
  const auto high = O::and_not(x > W(0.9), sw);
  if (O::any(high)) {
    const V mean = a / s, sd = O::sqrt(a * b / (s * s * (s + W(1))));
    sw = sw | (high & (x >= mean - W(1.5) * sd));
  }
  return sw;
}
GK_HD bool swapped(W a, W b, W x) { return swapped_t<W>(a, b, x); }

// The tail quadrature's regime (csrc/core/ibeta_quad.h quad_tail), outside the two-sided quadrature's: the
// larger parameter at least kTailMin and the fraction's argument y above 0.9 (a >> b below the mean, or b >> a
// above it). There the fraction's coefficients d_(2m+1) -> -y
// make it ill-conditioned on its side (the other side does not converge from there): its relative error
// grew about linearly in the larger parameter, 4e-13 at 1e4, 7e-12 at 1e5, 5e-11 at 1e6, 5e-10 at 1e7 and
// 4e-9 at 1e8 (b from 1 to 300, against gradkern/reference/beta.py's large_* quadrature at 40 digits;
// exact closed forms at b = 1 and 2 agree with it to 1e-16).
static constexpr W kTailMin = 1e4;
static constexpr W kTailEdge = 1e-30;
// The second rule below also applies next to a moderate parameter (>= kTailTinyBig) when the small one is
// tiny (< kTailTiny): there the complement's absolute precision costs most (5e-11 relative in I and the
// gradients at b = 1e-6, whatever a from 10 to 5e3; 5e-14 at b = 1e-3), and the bench grid's concentrations
// (0.1 and up) never reach it.
static constexpr W kTailTiny = 1e-4;
static constexpr W kTailTinyBig = 10.0;

GK_HD bool tail_regime(W a, W b, W x) {
  const W big = a > b ? a : b, small = a > b ? b : a;
  const bool large = big >= kTailMin;
  if (!(large || (small < kTailTiny && big >= kTailTinyBig)) || quad_regime(a, b, x)) return false;
  // quad_tail's panels grow 5-fold from the distance to the end behind them: from x (or 1 - x) >= kTailEdge
  // they reach any length within its kTailPanels (a subnormal x, which a tiny a next to a large b gives,
  // would need hundreds; the fraction handles those)
  if (!(x >= kTailEdge && W(1) - x >= kTailEdge)) return false;
  // swapped_t's first rule; below its threshold the tail also takes the band x > 0.9 within 1.5 standard
  // deviations below the mean that swapped_t sends to the other side, where that side's fraction slows and
  // lost up to 7e-12 (a = 1e7, b = 300)
  const bool upper = x > (a + W(1)) / (a + b + W(2));
  if (large && (upper ? x < W(0.1) : x > W(0.9))) return true;
  // A small parameter c < 1 whose end (1 for a >> b) holds the mode: between that end and the rule's threshold
  // the fraction's own side gives the tail mass T as 1 - J (absolute precision: 7e-11 relative at a = 1e4,
  // b = 1e-6, 1e-11 in dx/da). The tail is taken where T <= 1/2 surely: in the incomplete gamma limit
  // (g = the large parameter times the distance to that end) the mass near the end is at least its series'
  // first term, g^c e^-g / Gamma(c + 1).
  const bool big_a = a > b;
  const W cmax = large ? W(1) : kTailTiny;
  if (big_a ? !(upper && x > W(0.9) && b < cmax) : !(!upper && x < W(0.1) && a < cmax)) return false;
  const W c = big_a ? b : a, g = big_a ? a * (W(1) - x) : b * x;
  return c * gk_log(g) - g - lgamma1p(c) >= -consts<W>::ln2;
}

// The tail's integrals (quad_tail) with the closed-form pieces: the density q(x) = x^(a-1) (1-x)^(b-1) / B(a, b)
// (log_beta_power) and the log terms L_a = log x - E log t = log x + (psi(a + b) - psi(a)) and
// L_b = log(1 - x) - E log(1 - t) (digamma_diff: no subtraction of two digammas). With the tail's integrals
// s0 = int h, s1 = int h |l - l(x)|, s2 = int h |l' - l'(x)| (h <= 1 the density relative to q(x)):
//   tail mass T = s0 q(x);
//   tail t < x (the mode above x): dx/da = s1 - s0 L_a,  dx/db = -(s2 + s0 L_b)   (L_a < 0 < L_b there),
//   tail t > x (the mode below x): dx/da = s1 + s0 L_a,  dx/db = s0 L_b - s2     (L_b < 0 < L_a there),
// from eq. 8 with dI/da = int_0^x (l - E l) q = -int_x^1 (l - E l) q (and likewise for b): sums of terms of
// one sign beyond the log-means; within about 1.5 standard deviations of the mean (the regime's band rule)
// the L term can change sign, a cancellation of at most a few-fold (measured within 4e-14 there).
// The density q(x) from log x and log(1 - x), and the log terms L_a, L_b (tail_d2 uses both too).
GK_HD W tail_density(W a, W b, W x, W lx, W l1x) {
  return gk_exp(log_beta_power(a, b, x, W(1) - x, lx, l1x)) / (x * (W(1) - x));
}
GK_HD void tail_log_terms(W a, W b, W lx, W l1x, W& La, W& Lb) {
  La = lx + digamma_diff(a, b);
  Lb = l1x + digamma_diff(b, a);
}
// dx/da and dx/db; q(x) into *dens where asked (dI/da = -q dx/da).
GK_HD void tail_grads(W a, W b, W x, W& ga, W& gb, W* dens = nullptr) {
  QuadAcc s;
  const bool lower = quad_tail(a, b, x, s);
  const W lx = log_fast(x), l1x = log1p_fast(-x);
  W La, Lb;
  tail_log_terms(a, b, lx, l1x, La, Lb);
  ga = lower ? s.s1 - s.s0 * La : s.s1 + s.s0 * La;
  gb = lower ? -(s.s2 + s.s0 * Lb) : s.s0 * Lb - s.s2;
  if (dens) *dens = tail_density(a, b, x, lx, l1x);
}
// I and 1 - I: the tail's mass s0 q(x) on its side, the complement on the other (no log terms needed).
GK_HD void tail_values(W a, W b, W x, W& I, W& Ic) {
  QuadAcc s;
  const bool lower = quad_tail(a, b, x, s);
  const W T0 = s.s0 * tail_density(a, b, x, log_fast(x), log1p_fast(-x));
  const W T = T0 < W(1) ? T0 : W(1);
  if (lower) { I = T; Ic = W(1) - T; } else { Ic = T; I = W(1) - T; }
}

// I_x(a, b) and 1 - I_x(a, b), both computed directly for valid a, b and 0 < x < 1.
GK_HD void ibeta_pq(W a, W b, W x, W& I, W& Ic) {
  if (quad_regime(a, b, x) && quad_values(a, b, x, I, Ic)) return;  // large a and b: csrc/core/ibeta_quad.h
  if (tail_regime(a, b, x)) { tail_values(a, b, x, I, Ic); return; }  // one large parameter, far side
  const bool sw = swapped(a, b, x);
  const W p = sw ? b : a, q = sw ? a : b;
  const W y = sw ? W(1) - x : x;
  const W lx = log_fast(x), l1x = log1p_fast(-x);
  const dual2 h = cfrac(p, q, y, W(0), W(0), false);
  const W logJ = log_power_pbeta(p, q, y, sw ? x : W(1) - x, sw ? l1x : lx, sw ? lx : l1x) + gk_log(h.v);
  const W J = gk_exp(logJ);
  // 1 - J near 0 (J ~ 1 happens for a tiny first parameter) from log J, which carries full absolute
  // precision (see log_power_pbeta), rather than by subtraction.
  const W K = (J > W(0.5)) ? -gk_expm1(logJ) : W(1) - J;
  if (sw) { I = K; Ic = J; } else { I = J; Ic = K; }
}

// The gradient's fraction arguments for valid a, b and 0 < x < 1: the side (sw), the fraction's (p, q, y)
// and the log terms L_p, L_q.
struct grad_args {
  W p, q, y, Lp, Lq;
  bool sw;
};
// The side (sw), the fraction's arguments and the log terms L_p, L_q; on scalars or lanes (M: the comparison
// type). log y and log(1 - y) come from the exact input: log x and log1p(-x).
template <class V, class M> GK_HD void grad_prepare_t(V a, V b, V x, V& p, V& q, V& y, V& Lp, V& Lq, M& sw) {
  typedef lane_ops<V> O;
  sw = swapped_t<V>(a, b, x);
  p = O::select(sw, b, a);
  q = O::select(sw, a, b);
  y = O::select(sw, W(1) - x, x);
  const V lx = O::log_unit(x), l1x = O::log1p(-x);
  log_terms_t<V>(p, q, O::select(sw, l1x, lx), O::select(sw, lx, l1x), Lp, Lq);
}
GK_HD grad_args grad_prepare(W a, W b, W x) {
  grad_args g;
  grad_prepare_t<W>(a, b, x, g.p, g.q, g.y, g.Lp, g.Lq, g.sw);
  return g;
}
// (dx/da, dx/db) / (x (1 - x)) from the fraction h (value hv and partials hp, hq) at (sw, p, L_p, L_q); on
// scalars or lanes.
template <class V, class M> GK_HD void grad_finish_t(M sw, V p, V Lp, V Lq, V hv, V hp, V hq, V& ga, V& gb) {
  typedef lane_ops<V> O;
  const V gp = (hv * Lp + hp) / p, gq = (hv * Lq + hq) / p;
  // dx/da = -(dI/da) / q(x); on the swapped side I = 1 - I_y(b, a): the sign flips and p, q swap roles.
  ga = O::select(sw, gq, -gp);
  gb = O::select(sw, gp, -gq);
}
GK_HD void grad_finish(const grad_args& g, dual2 h, W& ga, W& gb) {
  grad_finish_t<W>(g.sw, g.p, g.Lp, g.Lq, h.v, h.p, h.q, ga, gb);
}

// (dx/da, dx/db) / (x (1 - x)) for valid a, b and 0 < x < 1.
GK_HD void grad_scaled(W a, W b, W x, W& ga, W& gb, W tol) {
  const grad_args g = grad_prepare(a, b, x);
  grad_finish(g, cfrac(g.p, g.q, g.y, g.Lp, g.Lq, true, tol), ga, gb);
}

// (dx/da) / (x (1 - x)) alone, for valid a, b and 0 < x < 1: on the direct side it needs the p-partial
// (the fraction's Need = 1, L = L_p), on the swapped side the q-partial (Need = 2, L = L_q), and one of the
// two digamma differences.
struct grad_a_args {
  W p, q, y, L;
  bool sw;
};
// The side, the fraction's arguments and L (L_q on the swapped side: log(1 - y) - psi(q) + psi(p + q) with
// log(1 - y) = log x; L_p on the direct one); on scalars or lanes.
template <class V, class M> GK_HD void grad_a_prepare_t(V a, V b, V x, V& p, V& q, V& y, V& L, M& sw) {
  typedef lane_ops<V> O;
  sw = swapped_t<V>(a, b, x);
  // swapped: psi(a + b) - psi(a); direct: psi(a + b) - psi(a + 1), as in log_terms
  const auto ge = b >= W(1);
  const V z = O::select(sw, a, O::select(ge, a + W(1), a + b));
  const V d = O::select(sw, b, O::select(ge, b - W(1), W(1) - b));
  const V r = digamma_diff_t<V>(z, d);
  p = O::select(sw, b, a);
  q = O::select(sw, a, b);
  y = O::select(sw, W(1) - x, x);
  L = O::log_unit(x) + O::select(sw | ge, r, -r);
}
GK_HD grad_a_args grad_a_prepare(W a, W b, W x) {
  grad_a_args g;
  grad_a_prepare_t<W>(a, b, x, g.p, g.q, g.y, g.L, g.sw);
  return g;
}
// (dx/da) / (x (1 - x)) from the fraction's value hv and the partial hd it stopped on (h.q swapped, h.p
// direct); on scalars or lanes.
template <class V, class M> GK_HD V grad_a_finish_t(M sw, V p, V L, V hv, V hd) {
  const V g = (hv * L + hd) / p;  // one division: -(n / p) and (-n) / p are the same double
  return lane_ops<V>::select(sw, g, -g);
}
GK_HD W grad_a_finish(const grad_a_args& g, dual2 h) {
  return grad_a_finish_t<W>(g.sw, g.p, g.L, h.v, g.sw ? h.q : h.p);
}
GK_HD W grad_a_scaled(W a, W b, W x, W tol) {
  const grad_a_args g = grad_a_prepare(a, b, x);
  return grad_a_finish(g, g.sw ? cfrac<2>(g.p, g.q, g.y, W(0), g.L, true, tol) : cfrac<1>(g.p, g.q, g.y, g.L, W(0), true, tol));
}

// dI/da and dI/db for valid a, b and 0 < x < 1: the implicit gradients times -q(x).
GK_HD void grads(W a, W b, W x, W& da, W& db, W tol) {
  W ga, gb;
  grad_scaled(a, b, x, ga, gb, tol);
  // q(x) x (1 - x) = x^a (1-x)^b / B(a, b)
  const W dens_xy = gk_exp(log_beta_power(a, b, x, W(1) - x, gk_log(x), gk_log1p(-x)));
  da = -ga * dens_xy;
  db = -gb * dens_xy;
}

// Density q(x) of Beta(a, b) for valid a, b and 0 < x < 1.
GK_HD W density(W a, W b, W x) {
  return gk_exp(log_beta_power(a, b, x, W(1) - x, gk_log(x), gk_log1p(-x))) / (x * (W(1) - x));
}

// x with I_x(a, b) = p for valid a, b and 0 < p < 1: safeguarded Newton steps on a bracket, on
// whichever of I and 1 - I is the smaller at the target (so the residual keeps full relative precision
// in both tails), in log x for the lower tail and in log(1 - x) for the upper one (I ~ x^a near 0 is far
// from linear in x for small a). Start from the tails' leading terms, I ~ x^a / (a B(a, b)) and
// 1 - I ~ (1-x)^b / (b B(a, b)), or the mean where those fall on the wrong side of it.
// Capped at 200 steps; each step either is a Newton step inside the bracket or halves it (geometrically
// where it spans orders of magnitude).
GK_HD W inverse(W a, W b, W p) {
  const bool upper = p > W(0.5);
  const W target = upper ? W(1) - p : p;  // exact for p > 0.5 (Sterbenz)
  const W lb = gk_lgamma(a) + gk_lgamma(b) - gk_lgamma(a + b);
  const W mean = a / (a + b);
  W x = mean;
  if (upper) {
    const W xu = W(1) - gk_exp((gk_log(target * b) + lb) / b);
    if (xu > mean && xu < W(1)) x = xu;
  } else {
    const W xl = gk_exp((gk_log(target * a) + lb) / a);
    if (xl < mean && xl > W(0)) x = xl;
  }
  W lo = W(0), hi = W(1);
  for (int it = 0; it < 200; ++it) {
    W I, Ic;
    ibeta_pq(a, b, x, I, Ic);
    const W f = upper ? target - Ic : I - target;  // increasing in x
    if (f == W(0)) break;
    if (f > W(0)) hi = x; else lo = x;
    const W dens = density(a, b, x);
    const W w = W(1) - x;
    W xn = upper ? W(1) - w * gk_exp(-f / (w * dens)) : x * gk_exp(-f / (x * dens));
    if (!(xn > lo && xn < hi)) {
      xn = (lo > W(0) && hi > W(1e3) * lo) ? gk_sqrt(lo * hi)
         : (lo == W(0)) ? hi * W(1e-3)
         : (hi == W(1) && W(1) - lo < W(1e-3)) ? W(1) - (W(1) - lo) * W(1e-3)
         : W(0.5) * (lo + hi);
    }
    const bool done = gk_fabs(xn - x) <= W(2e-16) * xn;
    x = xn;
    if (done || hi - lo <= W(2e-16) * hi) break;
  }
  return x;
}

}  // namespace ibeta_detail

namespace ibeta_detail {
// I_x(a, b) (complement = false) or 1 - I_x(a, b) (complement = true) with the special values.
template <typename T> GK_HD T ibeta_value(T a, T b, T x, bool complement) {
  if (bad_args(W(a), W(b), W(x))) return quiet_nan<T>();
  if (x == T(0) || x == T(1)) return (x == T(1)) != complement ? T(1) : T(0);
  W I, Ic;
  ibeta_pq(W(a), W(b), W(x), I, Ic);
  return T(complement ? Ic : I);
}
}  // namespace ibeta_detail

template <typename T> GK_HD T betainc(T a, T b, T x) { return ibeta_detail::ibeta_value(a, b, x, false); }
template <typename T> GK_HD T betaincc(T a, T b, T x) { return ibeta_detail::ibeta_value(a, b, x, true); }

namespace ibeta_detail {
// The two-output ops with their special values (NaN outside the domain, 0 at x = 0 or 1): the implicit
// gradients (dx/da, dx/db) (implicit = true) or dI/da, dI/db.
template <typename T> GK_HD void pair_value(T a, T b, T x, T& o0, T& o1, bool implicit) {
  if (bad_args(W(a), W(b), W(x))) { o0 = o1 = quiet_nan<T>(); return; }
  if (x == T(0) || x == T(1)) { o0 = o1 = T(0); return; }
  W w0, w1;
  if (quad_regime(W(a), W(b), W(x))) {  // large a and b: csrc/core/ibeta_quad.h
    W dens;
    quad_grads(W(a), W(b), W(x), w0, w1, &dens);
    if (!implicit) {  // dI/da = -q(x) dx/da
      w0 *= -dens;
      w1 *= -dens;
    }
  } else if (tail_regime(W(a), W(b), W(x))) {  // one large parameter, x on the far side of the mean
    W dens;
    tail_grads(W(a), W(b), W(x), w0, w1, implicit ? nullptr : &dens);
    if (!implicit) {  // dI/da = -q(x) dx/da
      w0 *= -dens;
      w1 *= -dens;
    }
  } else if (implicit) {
    grad_scaled(W(a), W(b), W(x), w0, w1, loop_tol<T>());
    const W k = W(x) * (W(1) - W(x));
    w0 *= k;
    w1 *= k;
  } else {
    grads(W(a), W(b), W(x), w0, w1, loop_tol<T>());
  }
  o0 = T(w0);
  o1 = T(w1);
}
}  // namespace ibeta_detail

// dx/da and dx/db at fixed I_x(a, b) for x ~ Beta(a, b) (the analogue of standard_gamma_grad).
template <typename T> GK_HD void standard_beta_grad(T a, T b, T x, T& ga, T& gb) {
  ibeta_detail::pair_value(a, b, x, ga, gb, true);
}

// dI/da and dI/db.
template <typename T> GK_HD void betainc_grads(T a, T b, T x, T& da, T& db) {
  ibeta_detail::pair_value(a, b, x, da, db, false);
}

// torch._dirichlet_grad's contract: -(dI/dalpha)/q(x)/(1 - x) for x ~ Beta(alpha, total - alpha), i.e.
// the scaled gradient times x. The Dirichlet backward combines it as g_i (grad_i - sum_j x_j grad_j).
template <typename T> GK_HD T dirichlet_grad(T x, T alpha, T total) {
  using namespace ibeta_detail;
  const W beta = W(total) - W(alpha);
  if (bad_args(W(alpha), beta, W(x))) return quiet_nan<T>();
  if (x == T(0)) return T(0);  // the limit of x (dx/dalpha) / (x (1 - x)): x log x -> 0
  // x -> 1: (dx/dalpha) / (1 - x) -> (psi(alpha + beta) - psi(alpha)) / beta, finite (torch's value there).
  if (x == T(1)) return T(digamma_diff(W(alpha), beta) / beta);
  if (quad_regime(W(alpha), beta, W(x))) {  // large alpha and beta: csrc/core/ibeta_quad.h
    W ga, gb;
    quad_grads(W(alpha), beta, W(x), ga, gb);
    return T(ga / (W(1) - W(x)));
  }
  if (tail_regime(W(alpha), beta, W(x))) {  // one large parameter, x on the far side of the mean
    W ga, gb;
    tail_grads(W(alpha), beta, W(x), ga, gb);
    return T(ga / (W(1) - W(x)));
  }
  return T(grad_a_scaled(W(alpha), beta, W(x), loop_tol<T>()) * W(x));
}

template <typename T> GK_HD T betaincinv(T a, T b, T p) {
  using namespace ibeta_detail;
  if (bad_args(W(a), W(b), W(p))) return quiet_nan<T>();
  if (p == T(0)) return T(0);
  if (p == T(1)) return T(1);
  return T(inverse(W(a), W(b), W(p)));
}

}  // namespace core
}  // namespace gradkern
