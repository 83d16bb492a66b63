// gradkern numerical core: second derivatives of the regularized incomplete beta function in its
// parameters, and the parameter derivatives of the Beta implicit gradient (issue 15).
//
//   betainc_grads2(a, b, x, o)        o = (d2I/da2, d2I/(da db), d2I/db2) (the complement's are the
//                                     negatives).
//   standard_beta_grad_d2(a, b, x, o) o = (d g_a/da, d g_a/db, d g_b/da, d g_b/db) at fixed x, where
//                                     (g_a, g_b) = (dx/da, dx/db) = -(dI/da, dI/db) / q(x) is
//                                     standard_beta_grad (ibeta.h).
//
// Method: ibeta.h's first-order evaluation carried one order further in forward mode. On the side of the
// symmetry that ibeta.h picks (I_x(a, b) = I_y(p, q) or 1 - I_y(p, q), y = x or 1 - x),
//   I_y(p, q) = K h,  K = y^p (1-y)^q / (p B(p, q)),  h the continued fraction,
// with d log K/dp = L_p = log y - psi(p+1) + psi(p+q) and d log K/dq = L_q = log(1-y) - psi(q) + psi(p+q)
// (ibeta.h), and second log-derivatives L_pp = psi'(p+q) - psi'(p+1), L_pq = psi'(p+q),
// L_qq = psi'(p+q) - psi'(q). The fraction's value and its first and second partials in p and q are
// carried through the same recurrences as ibeta.h's (Wallis for y <= 1/2, modified Lentz above) in
// hyper-dual numbers: each coefficient d_k is a rational function of p and q whose log-derivatives are
// sums of reciprocals, so its second partials are exact and cheap. Then, with k = y (1 - y) / p (so that
// K p = y (1 - y) q(y): the density cancels analytically, as in ibeta.h),
//   I_pp / (K) = h (L_p^2 + L_pp) + 2 h_p L_p + h_pp    (and pq, qq alike),
//   d/dp [I_p / q] = k [h L_pp + h_p L_p + h_pp - W_p],   W_p = (h L_p + h_p) / p = I_p / (q k p),
//   d/dq [I_p / q] = k [h L_pq + h_q L_p + h_pq],
//   d/dp [I_q / q] = k [h L_pq + h_p L_q + h_pq - W_q],   W_q = (h L_q + h_q) / p,
//   d/dq [I_q / q] = k [h L_qq + h_q L_q + h_qq].
// The second group is differentiated directly rather than formed as -(I_pp / q) - g d log q / dp: the
// L_p^2 terms of the two would cancel. Differences of trigammas are formed by trigamma_diff (no
// subtraction of two trigammas), and for q < 1, L_q^2 + L_qq (both ~ 1/q^2 with opposite signs) is formed
// as c (2/q + c) + psi'(p+q) - psi'(q+1) with c = L_q - 1/q = log(1-y) + psi(p+q) - psi(q+1): no
// cancellation. On the swapped side a and b exchange roles and I = 1 - I_y(b, a) flips the signs.
//
// Working precision double for float and double (float results rounded once), every loop capped
// (kMaxIter pairs of steps, as ibeta.h), no allocation. Special values as ibeta.h: NaN outside the
// domain, 0 at x = 0 and x = 1 (I is constant in a and b there; the implicit gradient and its limit are 0).
#pragma once

#include "ibeta.h"

namespace gradkern {
namespace core {
namespace ibeta_detail {

// A value with its first and second partials in p and q.
struct hdual {
  W v, p, q, pp, pq, qq;
};
GK_HD hdual hd_mul(const hdual& x, const hdual& y) {
  return hdual{x.v * y.v,
               x.p * y.v + x.v * y.p,
               x.q * y.v + x.v * y.q,
               x.pp * y.v + W(2) * x.p * y.p + x.v * y.pp,
               x.pq * y.v + x.p * y.q + x.q * y.p + x.v * y.pq,
               x.qq * y.v + W(2) * x.q * y.q + x.v * y.qq};
}
// x + c y
GK_HD hdual hd_fma(const hdual& x, const hdual& c, const hdual& y) {
  const hdual m = hd_mul(c, y);
  return hdual{x.v + m.v, x.p + m.p, x.q + m.q, x.pp + m.pp, x.pq + m.pq, x.qq + m.qq};
}
GK_HD hdual hd_one_plus(hdual x) {
  x.v += W(1);
  return x;
}
GK_HD hdual hd_inv(const hdual& x) {
  const W r = W(1) / x.v, f1 = -r * r, f2 = W(-2) * f1 * r;
  return hdual{r, f1 * x.p, f1 * x.q, f1 * x.pp + f2 * x.p * x.p, f1 * x.pq + f2 * x.p * x.q,
               f1 * x.qq + f2 * x.q * x.q};
}
GK_HD hdual hd_scale(const hdual& x, W k) {
  return hdual{x.v * k, x.p * k, x.q * k, x.pp * k, x.pq * k, x.qq * k};
}
GK_HD hdual hd_guard(hdual x) {
  constexpr W tiny = 1e-300;
  if (gk_fabs(x.v) < tiny) x.v = tiny;
  return x;
}
// v with d log v/dp = al, d log v/dq = be and second log-derivatives app, apq, aqq.
GK_HD hdual hd_from_log(W v, W al, W be, W app, W apq, W aqq) {
  return hdual{v, v * al, v * be, v * (al * al + app), v * (al * be + apq), v * (be * be + aqq)};
}

// The fraction's coefficients (ibeta.h, DLMF 8.17.22) with their partials.
// d_1 = -s y / (p + 1), s = p + q: log-derivatives 1/s - 1/(p+1) and 1/s.
GK_HD hdual coef_first(W p, W q, W y) {
  const W s = p + q, is = W(1) / s, ip = W(1) / (p + W(1));
  return hd_from_log(-s * y * ip, is - ip, is, ip * ip - is * is, -is * is, -is * is);
}
// d_2m = m (q - m) y / ((p + 2m - 1)(p + 2m)); may be 0 (q = m), so its partials are written directly:
// dv/dp = -v S1, d2v/dp2 = v (S1^2 + S2) with S1 = 1/u0 + 1/u1, S2 = 1/u0^2 + 1/u1^2; dv/dq = m y / (u0 u1),
// d2v/(dp dq) = -S1 dv/dq, d2v/dq2 = 0.
GK_HD hdual coef_even(W p, W q, W y, W M) {
  const W u0 = p + W(2) * M - W(1), u1 = p + W(2) * M;
  const W r = W(1) / (u0 * u1);
  const W i0 = u1 * r, i1 = u0 * r;
  const W S1 = i0 + i1, S2 = i0 * i0 + i1 * i1;
  const W vq = M * y * r, v = (q - M) * vq;
  return hdual{v, -v * S1, vq, v * (S1 * S1 + S2), -vq * S1, W(0)};
}
// d_2m+1 = -(p + m)(s + m) y / ((p + 2m)(p + 2m + 1)): log-derivatives 1/pm + 1/sm - 1/u0 - 1/u1 and
// 1/sm; second: -1/pm^2 - 1/sm^2 + 1/u0^2 + 1/u1^2, -1/sm^2, -1/sm^2 (v is linear in q).
GK_HD hdual coef_odd(W p, W q, W y, W M) {
  const W u0 = p + W(2) * M, u1 = u0 + W(1), pm = p + M, sm = p + q + M;
  const W r = W(1) / (u0 * u1 * pm * sm);  // one division for the four reciprocals
  const W u01 = u0 * u1, pmsm = pm * sm;
  const W i0 = u1 * pmsm * r, i1 = u0 * pmsm * r, ipm = u01 * sm * r, ism = u01 * pm * r;
  const W v = -pmsm * pmsm * y * r;
  return hd_from_log(v, ipm + ism - i0 - i1, ism, i0 * i0 + i1 * i1 - ipm * ipm - ism * ism, -ism * ism,
                     -ism * ism);
}

// The log terms of the prefactor K and their combinations (see the top of the file).
struct terms2 {
  W Lp, Lq, Lpp, Lpq, Lqq;
  W Mpp, Mpq, Mqq;  // L_p^2 + L_pp, L_p L_q + L_pq, L_q^2 + L_qq: d2 K / K
};

// psi'(z) - psi'(z + d) for z > 0, d >= 0, without subtracting two trigammas: shift both by n to
// Z = z + n >= 10, sum_{k<n} d (2(z+k) + d) / ((z+k)^2 (z+d+k)^2), then the asymptotic series
// psi'(Z) = w + w^2/2 + sum_k B_2k w^(2k+1) (w = 1/Z) differenced term by term with
// w^n - u^n = delta T_n, delta = w - u = d w u, T_n = sum_j w^j u^(n-1-j) (u = 1/(Z + d)): every piece
// has the sign of d. Truncation as trigamma's (through B_16: ~6e-17 relative at Z = 10).
GK_HD W trigamma_diff(W z, W d) {
  W sum = W(0);
  int n = 0;
  for (; n < 10 && z + W(n) < W(10); ++n) {
    const W zk = z + W(n), zd = zk + d;
    sum += d * (zk + zk + d) / (zk * zk * zd * zd);
  }
  const W Z = z + W(n);
  const W w = W(1) / Z, u = W(1) / (Z + d);
  const W delta = d * w * u;
  constexpr W B[8] = {1.0 / 6, -1.0 / 30, 1.0 / 42, -1.0 / 30, 5.0 / 66, -691.0 / 2730, 7.0 / 6, -3617.0 / 510};
  // T_1 = 1, T_{n+1} = w^n + u T_n; the series needs T_2 and T_3, T_5, ..., T_17.
  W T = W(1), wn = W(1), acc = W(0), T2 = W(0);
  for (int m = 1; m <= 16; ++m) {
    wn *= w;
    T = wn + u * T;  // T_{m+1}
    if (m == 1) T2 = T;
    if (m % 2 == 0) acc += B[m / 2 - 1] * T;  // T_{m+1}, m + 1 = 2k + 1
  }
  return sum + delta * (W(1) + W(0.5) * T2 + acc);
}

// psi(z + d) - psi(z) and psi'(z + d) - psi'(z) for z > 0, z + d > 0, d of either sign (d passed
// exactly, e.g. q - 1, never as a difference of two rounded sums).
GK_HD W digamma_step(W z, W d) { return (d >= W(0)) ? digamma_diff(z, d) : -digamma_diff(z + d, -d); }
GK_HD W trigamma_step(W z, W d) { return (d >= W(0)) ? -trigamma_diff(z, d) : trigamma_diff(z + d, -d); }

GK_HD terms2 log_terms2(W p, W q, W ly, W ly1) {
  terms2 t;
  log_terms(p, q, ly, ly1, t.Lp, t.Lq);
  t.Lpq = trigamma(p + q);
  t.Lpp = trigamma_step(p + W(1), q - W(1));
  t.Lqq = -trigamma_diff(q, p);
  t.Mpp = t.Lp * t.Lp + t.Lpp;
  t.Mpq = t.Lp * t.Lq + t.Lpq;
  if (q < W(1)) {
    const W c = ly1 + digamma_step(q + W(1), p - W(1));
    t.Mqq = c * (W(2) / q + c) + trigamma_step(q + W(1), p - W(1));
  } else {
    t.Mqq = t.Lq * t.Lq + t.Lqq;
  }
  return t;
}

// Stopping test: every component of the convergent stopped changing against the size of the terms it
// enters (h L for h_p, h M + 2 h_p L + h_pp for h_pp, ...).
GK_HD bool hd_converged(const hdual& n, const hdual& o, const terms2& t) {
  constexpr W eps = W(2.220446049250313e-16), tiny = W(1e-300);
  const W av = gk_fabs(n.v), ap = gk_fabs(n.p), aq = gk_fabs(n.q);
  const W sp = av * gk_fabs(t.Lp) + ap, sq = av * gk_fabs(t.Lq) + aq;
  const W spp = av * (t.Lp * t.Lp + gk_fabs(t.Lpp)) + W(2) * ap * gk_fabs(t.Lp) + gk_fabs(n.pp);
  const W spq = av * (gk_fabs(t.Lp * t.Lq) + gk_fabs(t.Lpq)) + ap * gk_fabs(t.Lq) + aq * gk_fabs(t.Lp) + gk_fabs(n.pq);
  const W sqq = av * (gk_fabs(t.Mqq)) + W(2) * aq * gk_fabs(t.Lq) + gk_fabs(n.qq);
  return gk_fabs(n.v - o.v) <= eps * av && gk_fabs(n.p - o.p) <= eps * sp + tiny &&
         gk_fabs(n.q - o.q) <= eps * sq + tiny && gk_fabs(n.pp - o.pp) <= eps * spp + tiny &&
         gk_fabs(n.pq - o.pq) <= eps * spq + tiny && gk_fabs(n.qq - o.qq) <= eps * sqq + tiny;
}

// A / B with its partials.
GK_HD hdual hd_div(const hdual& A, const hdual& B) { return hd_mul(A, hd_inv(B)); }

// ibeta.h's Wallis recurrences A_k = A_{k-1} + d_k A_{k-2} (B alike) in hyper-dual numbers; convergents
// compared once per pair of steps, rescaled by 1 / B when |B| leaves [1e-100, 1e100].
GK_HD hdual cfrac2_wallis(W p, W q, W y, const terms2& t) {
  const hdual one{W(1), W(0), W(0), W(0), W(0), W(0)}, zero{W(0), W(0), W(0), W(0), W(0), W(0)};
  hdual A2 = zero, B2 = one, A1 = one, B1 = one;
  {
    const hdual c = coef_first(p, q, y);
    const hdual A = hd_fma(A1, c, A2), B = hd_fma(B1, c, B2);
    A2 = A1; B2 = B1; A1 = A; B1 = B;
  }
  hdual h = hd_div(A1, B1);
  for (int m = 1; m < kMaxIter; ++m) {
    const W M = W(m);
    for (int odd = 0; odd < 2; ++odd) {
      const hdual c = odd ? coef_odd(p, q, y, M) : coef_even(p, q, y, M);
      const hdual A = hd_fma(A1, c, A2), B = hd_fma(B1, c, B2);
      A2 = A1; B2 = B1; A1 = A; B1 = B;
    }
    const hdual hn = hd_div(A1, B1);
    const bool done = hd_converged(hn, h, t);
    h = hn;
    if (done) break;
    const W ab = gk_fabs(B1.v);
    if (!(ab < W(1e100) && ab > W(1e-100))) {
      const W r = W(1) / B1.v;
      A1 = hd_scale(A1, r); B1 = hd_scale(B1, r); A2 = hd_scale(A2, r); B2 = hd_scale(B2, r);
    }
  }
  return h;
}

// ibeta.h's modified Lentz recurrence in hyper-dual numbers (y > 1/2, where it is better conditioned).
GK_HD hdual cfrac2_lentz(W p, W q, W y, const terms2& t) {
  const hdual one{W(1), W(0), W(0), W(0), W(0), W(0)};
  hdual C = one;
  hdual D = hd_inv(hd_guard(hd_one_plus(coef_first(p, q, y))));
  hdual h = D;
  for (int m = 1; m < kMaxIter; ++m) {
    const W M = W(m);
    const hdual ho = h;
    for (int odd = 0; odd < 2; ++odd) {
      const hdual c = odd ? coef_odd(p, q, y, M) : coef_even(p, q, y, M);
      D = hd_inv(hd_guard(hd_one_plus(hd_mul(c, D))));
      C = hd_guard(hd_one_plus(hd_mul(c, hd_inv(C))));
      h = hd_mul(h, hd_mul(D, C));
    }
    if (hd_converged(h, ho, t)) break;
  }
  return h;
}

// What both ops need, on the fraction's side: the fraction, the log terms, the side and y (1 - y) / p.
struct d2_eval {
  hdual h;
  terms2 t;
  bool sw;
  W p, k;
};
GK_HD d2_eval d2_evaluate(W a, W b, W x) {
  d2_eval e;
  e.sw = swapped(a, b, x);
  const W p = e.sw ? b : a, q = e.sw ? a : b;
  const W y = e.sw ? W(1) - x : x;
  const W lx = gk_log(x), l1x = gk_log1p(-x);
  e.t = log_terms2(p, q, e.sw ? l1x : lx, e.sw ? lx : l1x);
  e.h = y > W(0.5) ? cfrac2_lentz(p, q, y, e.t) : cfrac2_wallis(p, q, y, e.t);
  e.p = p;
  e.k = x * (W(1) - x) / p;
  return e;
}

// (d2I/da2, d2I/(da db), d2I/db2) for valid a, b and 0 < x < 1: K (h M + ...) with
// K = x (1 - x) q(x) / p, formed in log space (log_beta_power) so that nothing over- or underflows.
GK_HD void grads2(W a, W b, W x, W o[3]) {
  const d2_eval e = d2_evaluate(a, b, x);
  const hdual& h = e.h;
  const terms2& t = e.t;
  const W Bpp = h.v * t.Mpp + W(2) * h.p * t.Lp + h.pp;
  const W Bpq = h.v * t.Mpq + h.p * t.Lq + h.q * t.Lp + h.pq;
  const W Bqq = h.v * t.Mqq + W(2) * h.q * t.Lq + h.qq;
  const W K = gk_exp(log_beta_power(a, b, x, W(1) - x, gk_log(x), gk_log1p(-x))) / e.p;
  if (e.sw) {  // I_x(a, b) = 1 - I_y(b, a)
    o[0] = -K * Bqq; o[1] = -K * Bpq; o[2] = -K * Bpp;
  } else {
    o[0] = K * Bpp; o[1] = K * Bpq; o[2] = K * Bqq;
  }
}

// (d g_a/da, d g_a/db, d g_b/da, d g_b/db) at fixed x, for valid a, b and 0 < x < 1.
GK_HD void grad_d2(W a, W b, W x, W o[4]) {
  const d2_eval e = d2_evaluate(a, b, x);
  const hdual& h = e.h;
  const terms2& t = e.t;
  const W ip = W(1) / e.p;
  const W Wp = (h.v * t.Lp + h.p) * ip, Wq = (h.v * t.Lq + h.q) * ip;
  // d/d(p, q) of I_p / q(y) and of I_q / q(y), over k.
  const W Pp = (h.v * t.Lpp + h.p * t.Lp + h.pp) * ip - Wp * ip;
  const W Pq = (h.v * t.Lpq + h.q * t.Lp + h.pq) * ip;
  const W Qp = (h.v * t.Lpq + h.p * t.Lq + h.pq) * ip - Wq * ip;
  const W Qq = (h.v * t.Lqq + h.q * t.Lq + h.qq) * ip;
  const W k = x * (W(1) - x);
  if (e.sw) {
    // g_a = -(dI/da)/q = +(dI_y/dq)/q, with d/da = d/dq; g_b = +(dI_y/dp)/q, d/db = d/dp.
    o[0] = k * Qq; o[1] = k * Qp; o[2] = k * Pq; o[3] = k * Pp;
  } else {
    o[0] = -k * Pp; o[1] = -k * Pq; o[2] = -k * Qp; o[3] = -k * Qq;
  }
}

// Both outputs in the quadrature's regime of large a and b (csrc/core/ibeta_quad.h), from the second moments
// of the log ratios alpha = log t - log x, beta = log(1 - t) - log(1 - x) on the side of x without the mode
// (S_0, S_a, S_b, S_aa, S_ab, S_bb: int h alpha^i beta^j there, h = 1 at x, so none is scaled; sigma = +1 for
// t < x, -1 for t > x, as each integrand below integrates to 0 over [0, 1]). With mu = E[alpha], nu = E[beta]
// (both sides), V_a = Var log t = psi'(a) - psi'(a+b), V_b = psi'(b) - psi'(a+b), C = Cov = -psi'(a+b) (in
// closed form: from the moments they would cancel k^2-fold for x k standard deviations from the mean) and
// q(x) = 1 / (I_0 + J_0):
//   d2I/da2 = sigma q int_S h ((alpha - mu)^2 - V_a),  d2I/(da db) = sigma q int_S h ((alpha - mu)(beta - nu) - C),
//   and b alike; for g_a = -(dI/da) / q, d g_a/da = -(d2I/da2) / q - g_a d log q/da with d log q/da = -mu,
//   and the terms in mu cancel analytically (using g_a = (I_1 J_0 + I_0 J_1) / (I_0 + J_0)):
//   d g_a/da = sigma (V_a S_0 - S_aa + mu S_a),   d g_a/db = sigma (C S_0 - S_ab + mu S_b),
//   d g_b/da = sigma (C S_0 - S_ab + nu S_a),     d g_b/db = sigma (V_b S_0 - S_bb + nu S_b).
// Checked against mpmath (tests/data/beta_large_ref.csv: central differences of the reference's first order)
// in tests/test_beta_second_order.py.
// The formulas above from the signed moments of the side without the mode (sg, S_*), mu, nu and, for the
// derivatives of I (N = 3), q(x): shared by the two-sided quadrature and the tail's (tail_d2).
template <int N>
GK_HD void d2_from_moments(W a, W b, W sg, W S0, W Sa, W Sb, W Saa, W Sab, W Sbb, W mu, W nu, W q, W* o) {
  const W Va = trigamma_diff(a, b), Vb = trigamma_diff(b, a), C = -trigamma(a + b);
  if (N == 3) {
    o[0] = sg * q * (Saa - W(2) * mu * Sa + mu * mu * S0 - Va * S0);
    o[1] = sg * q * (Sab - nu * Sa - mu * Sb + mu * nu * S0 - C * S0);
    o[2] = sg * q * (Sbb - W(2) * nu * Sb + nu * nu * S0 - Vb * S0);
  } else {
    o[0] = sg * (Va * S0 - Saa + mu * Sa);
    o[1] = sg * (C * S0 - Sab + mu * Sb);
    o[2] = sg * (C * S0 - Sab + nu * Sa);
    o[3] = sg * (Vb * S0 - Sbb + nu * Sb);
  }
}

template <int N> GK_HD void quad_d2(W a, W b, W x, W* o) {
  const QuadSides s = quad_sides<true>(a, b, x);
  const QuadScale k = quad_scale(s);
  const QuadAcc& n = s.mode_right ? s.i : s.j;  // the side without the mode, relative to h(x) = 1
  const W sg = s.mode_right ? W(1) : W(-1);
  // signed moments of that side: alpha < 0 < beta below x, the reverse above
  const W S0 = n.s0, Sa = -sg * n.s1, Sb = sg * n.s2, Saa = n.s11, Sab = -n.s12, Sbb = n.s22;
  const W den = k.fi * s.i.s0 + k.fj * s.j.s0;
  const W mu = (k.fj * s.j.s1 - k.fi * s.i.s1) / den, nu = (k.fi * s.i.s2 - k.fj * s.j.s2) / den;
  d2_from_moments<N>(a, b, sg, S0, Sa, Sb, Saa, Sab, Sbb, mu, nu, N == 3 ? gk_exp(-s.em) / den : W(0), o);
}

// Both outputs in the tail quadrature's regime (ibeta.h tail_regime: one large parameter, x on the far side of
// the mean): quad_d2's formulas with the moments of the tail (csrc/core/ibeta_quad.h quad_tail, the side without
// the mode) and mu = E[alpha] = -L_a, nu = E[beta] = -L_b, q(x) in closed form (ibeta.h tail_log_terms, tail_density).
template <int N> GK_HD void tail_d2(W a, W b, W x, W* o) {
  QuadAcc n;
  const bool lower = quad_tail<true>(a, b, x, n);
  const W sg = lower ? W(1) : W(-1);
  const W S0 = n.s0, Sa = -sg * n.s1, Sb = sg * n.s2, Saa = n.s11, Sab = -n.s12, Sbb = n.s22;
  const W lx = log_fast(x), l1x = log1p_fast(-x);
  W La, Lb;
  tail_log_terms(a, b, lx, l1x, La, Lb);
  const W q = N == 3 ? tail_density(a, b, x, lx, l1x) : W(0);
  d2_from_moments<N>(a, b, sg, S0, Sa, Sb, Saa, Sab, Sbb, -La, -Lb, q, o);
}

template <typename T, int N> GK_HD void d2_value(T a, T b, T x, T* o) {
  if (bad_args(W(a), W(b), W(x))) {
    for (int i = 0; i < N; ++i) o[i] = quiet_nan<T>();
    return;
  }
  if (x == T(0) || x == T(1)) {
    for (int i = 0; i < N; ++i) o[i] = T(0);
    return;
  }
  W w[N];
  if (quad_regime(W(a), W(b), W(x), kQuadMinD2)) quad_d2<N>(W(a), W(b), W(x), w);  // large a and b
  else if (tail_regime(W(a), W(b), W(x))) tail_d2<N>(W(a), W(b), W(x), w);  // one large, the far side
  else if constexpr (N == 3) grads2(W(a), W(b), W(x), w);
  else grad_d2(W(a), W(b), W(x), w);
  for (int i = 0; i < N; ++i) o[i] = T(w[i]);
}

}  // namespace ibeta_detail

template <typename T> GK_HD void betainc_grads2(T a, T b, T x, T* o) { ibeta_detail::d2_value<T, 3>(a, b, x, o); }
template <typename T> GK_HD void standard_beta_grad_d2(T a, T b, T x, T* o) {
  ibeta_detail::d2_value<T, 4>(a, b, x, o);
}

}  // namespace core
}  // namespace gradkern
