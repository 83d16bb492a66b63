// Blocked CPU driver of standard_gamma_grad and of the second-order standard_gamma_grad_dalpha and
// gammainc_grad_aa (host only; included by csrc/cpu/elementwise.cpp). All the numerics are the core's
// (csrc/core/igamma.h, igamma_bulk.h, igamma_d2.h); this file only arranges the work so that it vectorizes.
// What follows describes standard_gamma_grad; the second-order ops use the same chunks with fewer classes
// (gamma_d2_policy).
//
// The elements go by chunks of kGammaChunk. Each element of a chunk is classified as the scalar core
// would (bulk tier of a, series branch for small or larger x, continued fraction, or anything else);
// aligned blocks whose lanes share one class are evaluated in place, the lanes of mixed blocks are
// appended to per-class index lists, and each list is then evaluated in full blocks of kGammaBlock lanes:
// the bulk polynomial of one tier on GNU vectors, the series and the continued fraction by lane-parallel
// copies of the scalar loops (log x - psi(a) vectorized, special.h), the rest element by element through
// the scalar core. Compacting by class matters when the parameters vary from element to element (e.g. a
// batch of different alphas): evaluated in place, a block holding three tiers and a few series lanes
// would pay for three full polynomial evaluations and a full series block, each mostly for lanes whose
// result is thrown away. Each result is the scalar core's, bit for bit, whatever the neighbours
// (tests/test_gamma_accuracy.py checks it against one-element calls, which take the scalar core). That
// relies on GCC rounding the scalar and the vectorized copies of the core's code the same way (FMA
// contraction included), which holds for the code as written but is not guaranteed by the language:
// a change to the core's arithmetic must keep that test passing.

#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "core/igamma_d2.h"
#include "cpu/vecmath.h"

namespace gradkern {
namespace cpu {

constexpr int kGammaBlock = 16;   // lanes per block: 2 AVX-512 / 4 AVX2 vectors of double
constexpr int kGammaChunk = 2048;  // elements classified together (index lists fit in int16_t)

// One block of the bulk polynomial, every lane in tier Tier, evaluated on GNU vectors of kGammaBlock
// lanes (lowered to the widest registers the caller's instruction set has).
template <typename T, int Tier>
GK_HD_FORCE void bulk_block(const T* v, const T* w, T* out) {
  typedef T vec_t __attribute__((vector_size(kGammaBlock * sizeof(T))));
  vec_t vv, ww;
  std::memcpy(&vv, v, sizeof(vv));
  std::memcpy(&ww, w, sizeof(ww));
  const vec_t r = core::bulk::eval<T, Tier, vec_t>(vv, ww);
  std::memcpy(out, &r, sizeof(r));
}

// Calls f(std::integral_constant<int, tier>()) for a run-time bulk tier (the tier is a template argument of
// the polynomials, whose row lengths it fixes).
template <typename T, int I = 0, typename F>
GK_HD_FORCE void with_tier(int tier, F&& f) {
  if constexpr (I + 1 == core::bulk::tiers<T>::count) {
    f(std::integral_constant<int, I>());
  } else if (tier == I) {
    f(std::integral_constant<int, I>());
  } else {
    with_tier<T, I + 1>(tier, f);
  }
}

template <typename T>
GK_HD_FORCE void bulk_block_tier(int tier, const T* v, const T* w, T* out) {
  with_tier<T>(tier, [&](auto I) { bulk_block<T, decltype(I)::value>(v, w, out); });
}

// One block of the bulk polynomial and its a-derivative (core::detail::bulk_eval_d, the second-order ops),
// every lane in tier Tier, on GNU vectors as bulk_block.
template <typename T>
GK_HD_FORCE void bulk_d_block_tier(int tier, const T* v, const T* w, T* g, T* ga) {
  typedef T vec_t __attribute__((vector_size(kGammaBlock * sizeof(T))));
  vec_t vv, ww, gg, gga;
  std::memcpy(&vv, v, sizeof(vv));
  std::memcpy(&ww, w, sizeof(ww));
  with_tier<T>(tier, [&](auto I) { core::detail::bulk_eval_d<T, decltype(I)::value, vec_t>(vv, ww, gg, gga); });
  std::memcpy(g, &gg, sizeof(gg));
  std::memcpy(ga, &gga, sizeof(gga));
}

// The series branch (eq. 13; core::detail::series_grad; series_lane elements have a below the Temme
// range) on the first `nb` lanes: the scalar loop's steps, lane by lane, each lane
// frozen once its own test has stopped it (so each result is the scalar one); the lane loops vectorize.
// c = log x - psi(a + 1) per lane (computed by the caller as the scalar path does). Writes
// dx/da = -(x/a) G.
template <typename T, bool TimesX = true, int L = kGammaBlock>
GK_HD_FORCE void series_block(int nb, const T* a_, const T* x_, const T* c_, T* out) {
  T a[L], x[L], xo[L], c[L], tn[L], r[L], G[L], u[L];
  int act[L];
  int any = 0;
#pragma omp simd reduction(| : any)
  for (int l = 0; l < L; ++l) {
    const bool on = l < nb;
    // Unused lanes get harmless values (no NaN/inf/subnormal in the masked arithmetic).
    a[l] = on ? a_[l] : T(1);
    x[l] = on ? x_[l] : T(0.5);
    c[l] = on ? c_[l] : T(0);
    act[l] = on && !core::detail::series_trivial(a[l], x[l], c[l]);
    // A lane done before the loop keeps G = c; its x (possibly subnormal, which is ~100x slower in the
    // arithmetic) is swapped for a harmless value in the masked loop.
    xo[l] = x[l];
    x[l] = act[l] ? x[l] : T(0.5);
    tn[l] = T(1);
    r[l] = T(0);
    G[l] = c[l];
    u[l] = a[l] + T(1);
    any |= act[l];
  }
  // Groups of four terms in double, pairs in float, as core::detail::series_quads picks for these lanes.
  constexpr int step = sizeof(T) == 8 ? 4 : 2;
  for (int n = 1; any && n < core::num<T>::max_iter; n += step) {
    any = 0;
#pragma omp simd reduction(| : any)
    for (int l = 0; l < L; ++l) {
      T t = tn[l], rr = r[l], g = G[l];
      if (step == 4) core::detail::series_step4(u[l], x[l], c[l], t, rr, g);
      else core::detail::series_step2(u[l], x[l], c[l], t, rr, g);
      const bool on_l = act[l] != 0;
      tn[l] = on_l ? t : tn[l];
      r[l] = on_l ? rr : r[l];
      G[l] = on_l ? g : G[l];
      u[l] = u[l] + T(step);
      act[l] = on_l && !core::detail::series_done(tn[l], r[l], c[l], G[l]);
      any |= act[l];
    }
  }
  for (int l = 0; l < nb; ++l) out[l] = TimesX ? xo[l] * (-G[l] / a[l]) : -G[l] / a[l];
}

// The continued fraction (eq. 12; core::detail::cfrac_grad) on the first `nb` lanes, lane-parallel in
// the same way as series_block: the scalar loop's steps (core::detail::cfrac_step / cfrac_done /
// cfrac_rescale), each lane frozen once its own convergence test has stopped it. c =
// log x - psi(a) per lane. Writes dx/da = x G. The scalar loop is latency-bound (each Wallis step waits
// for the previous one, 25-60 steps for a ~ 1); across lanes the steps are independent.
template <typename T, bool TimesX = true, int L = kGammaBlock>
GK_HD_FORCE void cfrac_block(int nb, const T* a_, const T* x_, const T* c_, T* out) {
  using State = core::detail::cfrac_state<T>;
  T a[L], c[L], b[L], A2[L], B2[L], dA2[L], dB2[L], A1[L], B1[L], dA1[L], dB1[L], G[L];
  int act[L];
  for (int l = 0; l < L; ++l) {
    const bool on = l < nb;
    // Unused lanes: a = 1, x = 3 (a converging, finite fraction).
    a[l] = on ? a_[l] : T(1);
    c[l] = on ? c_[l] : T(0);
    const State st = core::detail::cfrac_init(a[l], on ? x_[l] : T(3), c[l], G[l]);
    b[l] = st.b; A2[l] = st.A2; B2[l] = st.B2; dA2[l] = st.dA2; dB2[l] = st.dB2;
    A1[l] = st.A1; B1[l] = st.B1; dA1[l] = st.dA1; dB1[l] = st.dB1;
    act[l] = on;
  }
  T dan = T(0);  // n - 1, the same in every lane
  int any = nb > 0;
  for (int n = 2; any && n < core::num<T>::max_iter; ++n) {
    dan += T(1);
    any = 0;
#pragma omp simd reduction(| : any)
    for (int l = 0; l < L; ++l) {
      // The scalar loop's step, test and (if not done) rescale on a copy of the lane's state, kept only
      // while the lane is active.
      State st{b[l], A2[l], B2[l], dA2[l], dB2[l], A1[l], B1[l], dA1[l], dB1[l]};
      T s, f;
      const T Gn = core::detail::cfrac_step(a[l], c[l], dan, st, s, f);
      const bool done = core::detail::cfrac_done(Gn, G[l]);
      core::detail::cfrac_rescale(st, s, f, !done);
      const bool on = act[l] != 0;
      G[l] = on ? Gn : G[l];
      b[l] = on ? st.b : b[l];
      A2[l] = on ? st.A2 : A2[l];
      B2[l] = on ? st.B2 : B2[l];
      dA2[l] = on ? st.dA2 : dA2[l];
      dB2[l] = on ? st.dB2 : dB2[l];
      A1[l] = on ? st.A1 : A1[l];
      B1[l] = on ? st.B1 : B1[l];
      dA1[l] = on ? st.dA1 : dA1[l];
      dB1[l] = on ? st.dB1 : dB1[l];
      act[l] = on && !done;
      any |= act[l];
    }
  }
  for (int l = 0; l < nb; ++l) out[l] = TimesX ? x_[l] * G[l] : G[l];
}

// The continued fraction in double on GNU vectors of 4 lanes, 4 elements at a time (core::detail::cfrac_init /
// cfrac_step / cfrac_done / cfrac_rescale written out on vectors: the same operations in the same order). Each
// lane's result is the G of the step at which its own test first stops it, as the scalar loop returns, so each
// result is the scalar core's bit for bit. Unlike cfrac_block, a stopped lane is not frozen: its recurrence runs
// on (its G is kept), so that no select on the stopping test (which waits for the division 1/B_n) sits on the
// recurrence's dependency chain; the rescale, needed by some lane about once in 250 steps, is a branch. What is
// left per step is the latency of two dependent FMAs. Where the scalar loop would not rescale (the lane stopped
// at that step) the rescale changes only the state of a stopped lane. Two 4-lane groups stepped together
// measured no faster (16 lanes 589 vs 596 ns at a in [0.5, 5]) and slower for fewer lanes.
// c = log x - psi(a). Writes G per element (dx/da = x G); lanes past nb get a = 1, x = 3.
GK_HD_FORCE void cfrac_lanes4(int nb, const double* a_, const double* x_, const double* c_, double* out) {
  typedef vm4::vd v4;
  typedef vm4::vi i4;
  constexpr double eps = core::num<double>::eps;
  constexpr double big = 1e120;  // as core::detail::cfrac_rescale
  for (int q = 0; q < nb; q += 4) {
    v4 a, x, c;
    i4 act;
    for (int l = 0; l < 4; ++l) {
      const bool on = q + l < nb;
      a[l] = on ? a_[q + l] : 1.0;
      x[l] = on ? x_[q + l] : 3.0;
      c[l] = on ? c_[q + l] : 0.0;
      act[l] = on ? -1 : 0;
    }
    // core::detail::cfrac_init
    v4 b = x + 1.0 - a;
    v4 G = (c - (-1.0) / b) / b;
    v4 A2 = vm4::splat(0.0), B2 = vm4::splat(1.0), dA2 = vm4::splat(0.0), dB2 = vm4::splat(0.0);
    v4 A1 = vm4::splat(1.0), B1 = b, dA1 = vm4::splat(0.0), dB1 = vm4::splat(-1.0);
    double dan = 0.0;  // n - 1
    for (int n = 2; n < core::num<double>::max_iter; ++n) {
      dan += 1.0;
      // core::detail::cfrac_step
      const v4 an = -dan * (dan - a);
      b = b + 2.0;
      const v4 A = b * A1 + an * A2, B = b * B1 + an * B2;
      const v4 dA = -A1 + b * dA1 + dan * A2 + an * dA2;
      const v4 dB = -B1 + b * dB1 + dan * B2 + an * dB2;
      const v4 s = 1.0 / B;
      const v4 f = A * s;
      const v4 Gn = (c * A + dA - f * dB) * s;
      // core::detail::cfrac_done: the lane's result is this step's G while it has not stopped.
      const i4 stop = vm4::vabs(Gn - G) <= eps * vm4::vabs(Gn);
      G = act ? Gn : G;
      act = act & ~stop;
      const i4 r = vm4::vabs(B) > big;
      if (__builtin_expect(vm4::any(r), 0)) {
        // core::detail::cfrac_rescale: a factor of exactly 1 where nothing is rescaled.
        const v4 k = r ? s : vm4::splat(1.0);
        A2 = A1 * k; B2 = B1 * k; dA2 = dA1 * k; dB2 = dB1 * k;
        A1 = r ? f : A;
        B1 = r ? vm4::splat(1.0) : B;
        dA1 = dA * k; dB1 = dB * k;
      } else {
        A2 = A1; B2 = B1; dA2 = dA1; dB2 = dB1;
        A1 = A; B1 = B; dA1 = dA; dB1 = dB;
      }
      if (!vm4::any(act)) break;
    }
    for (int l = 0; l < 4 && q + l < nb; ++l) out[q + l] = G[l];
  }
}

// The continued-fraction class's block: in double cfrac_lanes4, in float cfrac_block. TimesX: dx/da = x G,
// else G.
template <typename T, bool TimesX>
GK_HD_FORCE void cfrac_lanes(int nb, const T* a, const T* x, const T* c, T* out) {
  if constexpr (std::is_same_v<T, double>) {
    cfrac_lanes4(nb, a, x, c, out);
    if (TimesX)
      for (int l = 0; l < nb; ++l) out[l] = x[l] * out[l];
  } else {
    cfrac_block<T, TimesX>(nb, a, x, c, out);
  }
}

// A policy tells the chunked driver below how to split elements into classes and how to evaluate a block
// of one class:
//   count                         the number of classes;
//   classify(a, x, v)             the class of an element, given v = (x - a)/(x + a) (which it may replace
//                                 by any finite value where the element is outside the bulk);
//   needs_vw(k), needs_ax(k)      which inputs class k's blocks read (v and w = 1/a are padded to full blocks
//                                 with the last lane, a and x are given for the first nb lanes only);
//   block(k, nb, a, x, v, w, out) kGammaBlock lanes of class k, the first nb of which are kept;
//   scalar(a, x)                  the scalar core's op, for ranges shorter than one block.
//
// standard_gamma_grad: bulk tier t (0 <= t < tiers::count), the series branch split by x (a block runs until
// its slowest lane has converged, and the number of terms grows with x: x < 1/4 takes at most ~6 pairs of
// terms, x near 2 twice that, so lanes of small x are kept apart), the continued fraction, and the rest
// (special values, Temme, huge x), element by element.
template <typename T> struct gamma_grad_policy {
  static constexpr bool log_input = false;
  static constexpr int tiers = core::bulk::tiers<T>::count;
  static constexpr int series_short = tiers;
  static constexpr int series = series_short + 1;
  static constexpr int cfrac = series + 1;
  static constexpr int other = series + 2;
  static constexpr int count = series + 3;
  static constexpr T short_x = T(0.25);
  static constexpr bool blocks_from_two = std::is_same_v<T, double>;  // see strided_by_class

  static GK_HD_FORCE int bulk_tier(T a, T& v) {
    using tiers_t = core::bulk::tiers<T>;
    const int t = tiers_t::of(a);
    const bool bulk = t >= 0 && a < T(1e30) && core::gk_fabs(v) <= tiers_t::v_max(t);  // as bulk::classify
    if (!bulk) v = T(0);  // lanes outside the bulk: any finite value
    return bulk ? t : -1;
  }
  static GK_HD_FORCE int classify(T a, T x, T& v) {
    const int t = bulk_tier(a, v);
    return t >= 0 ? t : core::detail::series_lane(a, x) ? (x < short_x ? series_short : series)
                      : core::detail::cfrac_lane(a, x) ? cfrac : other;
  }
  static constexpr bool needs_vw(int k) { return k < tiers; }
  static constexpr bool needs_ax(int k) { return k >= tiers; }
  static GK_HD_FORCE T scalar(T a, T x) { return core::standard_gamma_grad(a, x); }

  // c is only filled here, for the series branch.
  static GK_HD_FORCE void block(int k, int nb, const T* a, const T* x, const T*, const T* v, const T* w, T* out) {
    if (k < series_short) {
      bulk_block_tier<T>(k, v, w, out);
    } else if (k == series_short || k == series) {
      T c[kGammaBlock];
#pragma omp simd
      for (int l = 0; l < nb; ++l) c[l] = core::log_minus_digamma(x[l], a[l] + T(1));
      series_block<T>(nb, a, x, c, out);
    } else if (k == cfrac) {
      T c[kGammaBlock];
#pragma omp simd
      for (int l = 0; l < nb; ++l) c[l] = core::log_minus_digamma(x[l], a[l]);
      cfrac_lanes<T, true>(nb, a, x, c, out);
    } else {
      for (int l = 0; l < nb; ++l) out[l] = scalar(a[l], x[l]);
    }
  }
};

// log_standard_gamma_grad, d(log x)/da from (a, log x) (core::log_standard_gamma_grad: dlogx_da with the given
// log x), on the classes of standard_gamma_grad: the bulk polynomial divided by x, the series and the
// continued fraction without their final factor x and with c from log x (L - psi(a + 1), L - psi(a), as the
// core's have_L branch), everything else (special values, x = exp(log x) not a finite normal number, Temme,
// huge x) element by element through the scalar core. Each result is the scalar core's, bit for bit.
template <typename T> struct log_gamma_grad_policy : gamma_grad_policy<T> {
  using base = gamma_grad_policy<T>;
  static constexpr bool log_input = true;
  static GK_HD_FORCE int classify(T a, T x, T& v) {
    if (!(x >= core::num<T>::min_normal) || !(x < core::infinity<T>())) {
      v = T(0);
      return base::other;
    }
    return base::classify(a, x, v);
  }
  static constexpr bool needs_ax(int) { return true; }  // the bulk blocks divide by x
  static GK_HD_FORCE T scalar(T a, T logx) { return core::log_standard_gamma_grad(a, logx); }
  static GK_HD_FORCE void block(int k, int nb, const T* a, const T* x, const T* lx, const T* v, const T* w, T* out) {
    if (k < base::series_short) {
      bulk_block_tier<T>(k, v, w, out);
      for (int l = 0; l < nb; ++l) out[l] = out[l] / x[l];
    } else if (k == base::series_short || k == base::series) {
      T c[kGammaBlock];
      for (int l = 0; l < nb; ++l) c[l] = lx[l] - core::digamma(a[l] + T(1));
      series_block<T, false>(nb, a, x, c, out);
    } else if (k == base::cfrac) {
      T c[kGammaBlock];
      for (int l = 0; l < nb; ++l) c[l] = lx[l] - core::digamma(a[l]);
      cfrac_lanes<T, false>(nb, a, x, c, out);
    } else {
      for (int l = 0; l < nb; ++l) out[l] = scalar(a[l], lx[l]);
    }
  }
};

// The second-order series and continued fraction (core::detail::series_d2, cfrac_d2: float32 and float64 both
// in double) on GNU vectors of 4 doubles (one AVX2 register per quantity; wider GNU vectors in a rolled loop
// go through memory, see bulk_eval_d), W of them stepped together. Each function is the scalar core's
// operations in the same order, lane by lane, with each lane's state frozen once its own test has stopped
// it, so that each result is the scalar core's bit for bit (tests/test_gamma_accuracy.py compares blocks
// against one-element calls). This replaces the scalar loops of the class "series_d2" / "cfrac_d2" lanes (a < 10): there the second order's fixed costs
// (log x - psi(a + 1), psi'(a + 1)) and its loop were latency-bound scalar code, 5-10x the first-order
// float op, which runs lane-parallel in float.
#ifndef GK_D2V_SERIES_GROUPS  // overridable for measurements
#define GK_D2V_SERIES_GROUPS 4
#define GK_D2V_CFRAC_GROUPS 2
#endif
namespace d2v {
// The 4-lane vectors and helpers of cpu/vecmath.h (log x + k0 ln 2 by vm4::log_pos).
typedef vm4::vd v4;
typedef vm4::vi i4;
typedef vm4::vu u4;
using vm4::any;
using vm4::log_pos;
using vm4::splat;
using vm4::vabs;

// core::detail::psi_pair on 4 lanes (a >= 1, x > 0).
GK_HD_FORCE void psi_pair(v4 x, v4 a, v4& c, v4& psi1) {
  constexpr double shift = core::detail::digamma_shift<double>::value;
  constexpr int steps = static_cast<int>(shift);
  v4 nsum = splat(0.0), den = splat(1.0), N = splat(0.0), D = splat(1.0);
  for (int i = 0; i < steps; ++i) {
    const i4 up = a < shift;
    const v4 u2 = a * a;
    nsum = up ? nsum * a + den : nsum;
    den = up ? den * a : den;
    N = up ? N * u2 + D : N;
    D = up ? D * u2 : D;
    a = up ? a + 1.0 : a;
  }
  const v4 q = 1.0 / (den * D);
  const v4 w = 1.0 / a, r = w * w;
  const v4 tail =
      r * (1.0 / 12 -
           r * (1.0 / 120 -
                r * (1.0 / 252 - r * (1.0 / 240 - r * (1.0 / 132 - r * (691.0 / 32760 - r * (1.0 / 12)))))));
  const v4 rest = -0.5 * w - tail - nsum * D * q;
  const v4 tail1 =
      r * (1.0 / 6 -
           r * (1.0 / 30 -
                r * (1.0 / 42 -
                     r * (1.0 / 30 - r * (5.0 / 66 - r * (691.0 / 2730 - r * (7.0 / 6 - r * (3617.0 / 510))))))));
  psi1 = N * den * q + w * (1.0 + 0.5 * w + tail1);
  const i4 tiny = x < core::num<double>::min_normal * a;
  const v4 l = log_pos(tiny ? x * 18446744073709551616.0 : x / a, tiny & -64);
  const v4 las = log_pos(a, i4{});
  c = (tiny ? l - las : l) - rest;
}

// core::detail::series_d2 (have_L = false, x > 0) on W groups of 4 lanes, stepped together: the loop is
// latency-bound (a division and a chain of products per term), so independent groups fill the pipeline.
#define GK_D2V_EACH _Pragma("GCC unroll 4") for (int j = 0; j < W; ++j)
template <int W> GK_HD_FORCE void series(const v4* a, const v4* x, double tol, v4* D, v4* E) {
  v4 c[W], psi1[W], tn[W], r[W], s[W], G[W], Ga[W], absG[W], absGa[W];
  i4 act[W];
  GK_D2V_EACH {
    psi_pair(x[j], a[j] + 1.0, c[j], psi1[j]);
    tn[j] = splat(1.0);
    r[j] = s[j] = splat(0.0);
    G[j] = c[j];
    Ga[j] = -psi1[j];
    absG[j] = vabs(c[j]);
    absGa[j] = psi1[j];
    act[j] = a[j] == a[j];
  }
  const double ht = tol * 0.5;
  for (int n = 1; n < core::num<double>::max_iter; ++n) {
    i4 on = i4{};
    GK_D2V_EACH {
      const v4 inv = 1.0 / (a[j] + double(n));
      const v4 tn1 = tn[j] * (x[j] * inv), r1 = r[j] + inv, s1 = s[j] + inv * inv;
      const v4 g = tn1 * (c[j] - r1), ga = tn1 * (r1 * (r1 - c[j]) + s1 - psi1[j]);
      const v4 G1 = G[j] + g, Ga1 = Ga[j] + ga, absG1 = absG[j] + vabs(g), absGa1 = absGa[j] + vabs(ga);
      const i4 m = act[j];
      tn[j] = m ? tn1 : tn[j];
      r[j] = m ? r1 : r[j];
      s[j] = m ? s1 : s[j];
      G[j] = m ? G1 : G[j];
      Ga[j] = m ? Ga1 : Ga[j];
      absG[j] = m ? absG1 : absG[j];
      absGa[j] = m ? absGa1 : absGa[j];
      act[j] = m & ~((vabs(g) <= ht * absG1) & (vabs(ga) <= ht * absGa1));
      on |= act[j];
    }
    if (!any(on)) break;
  }
  GK_D2V_EACH {
    const v4 w = 1.0 / a[j];
    // G w rounded on its own, as the scalar core rounds it (core::gk_no_contract).
    v4 Gw = G[j] * w;
    core::gk_no_contract(Gw);
    D[j] = (Gw - Ga[j]) * w;
    E[j] = -(Ga[j] + c[j] * G[j]) * w;
  }
}

// core::detail::cfrac_d2 (have_L = false, a + 1 <= x, not huge_x) on W groups of 4 lanes, as series.
template <int W> GK_HD_FORCE void cfrac(const v4* a, const v4* x, double tol, v4* Dout, v4* E) {
  v4 c[W], psi1[W], cc[W], b[W], A2[W], B2[W], dA2[W], dB2[W], ddA2[W], ddB2[W], A1[W], B1[W], dA1[W], dB1[W],
      ddA1[W], ddB1[W], f[W], f1[W], f2[W], G[W], D[W];
  i4 act[W];
  GK_D2V_EACH {
    v4 c1, p1;
    psi_pair(x[j], a[j] + 1.0, c1, p1);
    const v4 w = 1.0 / a[j];
    c[j] = c1 + w;
    psi1[j] = p1 + w * w;
    cc[j] = c1 * (2.0 * w + c1) - p1;
    b[j] = x[j] + 1.0 - a[j];
    A2[j] = splat(0.0); B2[j] = splat(1.0); dA2[j] = dB2[j] = ddA2[j] = ddB2[j] = splat(0.0);
    A1[j] = splat(1.0); B1[j] = b[j]; dA1[j] = splat(0.0); dB1[j] = splat(-1.0); ddA1[j] = ddB1[j] = splat(0.0);
    f[j] = 1.0 / b[j];
    f1[j] = f[j] * f[j];
    f2[j] = 2.0 * f1[j] * f[j];
    G[j] = c[j] * f[j] + f1[j];
    D[j] = -psi1[j] * f[j] + c[j] * f1[j] + f2[j];
    act[j] = a[j] == a[j];
  }
  double dan = 0.0;
  constexpr double big = 1e120;
  for (int n = 2; n < core::num<double>::max_iter; ++n) {
    dan += 1.0;
    i4 on = i4{};
    GK_D2V_EACH {
      const v4 an = -dan * (dan - a[j]);
      const v4 bn = b[j] + 2.0;
      const v4 A = bn * A1[j] + an * A2[j], B = bn * B1[j] + an * B2[j];
      const v4 dA = -A1[j] + bn * dA1[j] + dan * A2[j] + an * dA2[j];
      const v4 dB = -B1[j] + bn * dB1[j] + dan * B2[j] + an * dB2[j];
      const v4 ddA = -2.0 * dA1[j] + bn * ddA1[j] + 2.0 * dan * dA2[j] + an * ddA2[j];
      const v4 ddB = -2.0 * dB1[j] + bn * ddB1[j] + 2.0 * dan * dB2[j] + an * ddB2[j];
      const v4 sB = 1.0 / B;
      const v4 fn = A * sB;
      const v4 f1n = (dA - fn * dB) * sB;
      const v4 f2n = (ddA - 2.0 * f1n * dB - fn * ddB) * sB;
      const v4 Gn = c[j] * fn + f1n;
      const v4 scale = psi1[j] * vabs(fn) + vabs(c[j] * f1n) + vabs(f2n);
      const v4 Dn = -psi1[j] * fn + c[j] * f1n + f2n;
      const i4 done = (vabs(Gn - G[j]) <= tol * vabs(Gn)) & (vabs(Dn - D[j]) <= tol * scale);
      // The scalar loop's rescale (only for a lane that goes on) where |B| > big.
      const v4 m = (~done & (vabs(B) > big)) ? sB : splat(1.0);
      const i4 k = act[j];
      b[j] = k ? bn : b[j];
      A2[j] = k ? A1[j] * m : A2[j]; B2[j] = k ? B1[j] * m : B2[j];
      dA2[j] = k ? dA1[j] * m : dA2[j]; dB2[j] = k ? dB1[j] * m : dB2[j];
      ddA2[j] = k ? ddA1[j] * m : ddA2[j]; ddB2[j] = k ? ddB1[j] * m : ddB2[j];
      A1[j] = k ? A * m : A1[j]; B1[j] = k ? B * m : B1[j];
      dA1[j] = k ? dA * m : dA1[j]; dB1[j] = k ? dB * m : dB1[j];
      ddA1[j] = k ? ddA * m : ddA1[j]; ddB1[j] = k ? ddB * m : ddB1[j];
      f[j] = k ? fn : f[j];
      f1[j] = k ? f1n : f1[j];
      f2[j] = k ? f2n : f2[j];
      G[j] = k ? Gn : G[j];
      D[j] = k ? Dn : D[j];
      act[j] = k & ~done;
      on |= act[j];
    }
    if (!any(on)) break;
  }
  GK_D2V_EACH {
    Dout[j] = D[j];
    E[j] = cc[j] * f[j] + 2.0 * c[j] * f1[j] + f2[j];
  }
}
#undef GK_D2V_EACH
}  // namespace d2v

// The second-order ops standard_gamma_grad_dalpha (AA = false: dg/da) and gammainc_grad_aa (AA = true:
// d2P/da2): the bulk tiers on vectors (core::detail::bulk_eval_d; d2P/da2 then multiplies by the density lane
// by lane, as the scalar core does); below a = 10 the series and the continued fraction in double on GNU
// vectors (d2v above; earlier lane-parallel copies written as `omp simd` loops over arrays of 16 lanes were
// 1.4-4x slower than the scalar loops: GCC left them scalar, and 16 lanes of the continued fraction's state
// do not fit the registers); everything else through the scalar core.
// BulkD::run<T>(tier, v, w, g, ga) evaluates one block of the bulk polynomial and its derivative
// (bulk_d_block_tier, or a non-inlined copy of it compiled for the caller's instruction set, which both ops
// share: elementwise.cpp).
template <typename T, bool AA, typename BulkD> struct gamma_d2_policy {
  static constexpr bool log_input = false;
  static constexpr bool blocks_from_two = false;
  static constexpr int tiers = core::bulk::tiers<T>::count;
  static constexpr int series_d2 = tiers;
  static constexpr int cfrac_d2 = tiers + 1;
  static constexpr int other = tiers + 2;
  static constexpr int count = tiers + 3;

  // The bulk tiers (of T), then for a < 10 the branch the double core takes (standard_gamma_grad_dalpha_d,
  // gammainc_grad_aa_d: below a = 10 neither the bulk path nor Temme applies, so the series for x < a + 1,
  // else the continued fraction, except x = 0 and huge_x).
  static GK_HD_FORCE int classify(T a, T x, T& v) {
    const int t = gamma_grad_policy<T>::bulk_tier(a, v);
    if (t >= 0) return t;
    const double ad = double(a), xd = double(x);
    if (!(ad > 0.0) || !(ad < 10.0) || !(xd > 0.0) || !(xd < core::infinity<double>()) || core::detail::huge_x(ad, xd))
      return other;
    return xd < ad + core::detail::igamma_tune<double>::series_shift ? series_d2 : cfrac_d2;
  }
  static constexpr bool needs_vw(int k) { return k < tiers; }
  static constexpr bool needs_ax(int k) { return AA || k >= tiers; }
  static GK_HD_FORCE T scalar(T a, T x) {
    return AA ? core::gammainc_grad_aa(a, x) : core::standard_gamma_grad_dalpha(a, x);
  }
  // The series_d2 / cfrac_d2 lanes of one block in double, W groups of 4 lanes stepped together (all 16 lanes
  // in the series; 8 in the continued fraction, whose state is twice the series' and spills the registers at
  // 16); lanes past nb get values that converge at once in their branch. A member function, not a lambda:
  // `flatten` did not inline a lambda here, which then ran as a baseline-ISA copy without FMA (different
  // roundings from the scalar core).
  template <int W> static GK_HD_FORCE void groups(int k, int nb, const T* a, const T* x, T* out) {
    const double tol = core::loop_tol<T>();
    for (int q = 0; q < nb; q += 4 * W) {
      d2v::v4 av[W], xv[W], D[W], E[W];
      for (int l = 0; l < 4 * W; ++l) {
        const bool on = q + l < nb;
        av[l / 4][l % 4] = on ? double(a[q + l]) : 1.0;
        xv[l / 4][l % 4] = on ? double(x[q + l]) : (k == series_d2 ? 0.5 : 3.0);
      }
      if (k == series_d2) d2v::series<W>(av, xv, tol, D, E);
      else d2v::cfrac<W>(av, xv, tol, D, E);
      for (int l = 0; l < 4 * W && q + l < nb; ++l) {
        const double al = av[l / 4][l % 4], xl = xv[l / 4][l % 4];
        out[q + l] = AA ? T(-core::detail::xq(al, xl) * E[l / 4][l % 4]) : T(xl * D[l / 4][l % 4]);
      }
    }
  }
  static GK_HD_FORCE void block(int k, int nb, const T* a, const T* x, const T*, const T* v, const T* w, T* out) {
    if (k < tiers) {
      T g[kGammaBlock], ga[kGammaBlock];
      BulkD::template run<T>(k, v, w, g, ga);
      for (int l = 0; l < nb; ++l) out[l] = AA ? core::detail::bulk_gammainc_grad_aa(a[l], x[l], g[l], ga[l]) : ga[l];
    } else if (k == series_d2 || k == cfrac_d2) {
      if (k == series_d2) groups<GK_D2V_SERIES_GROUPS>(k, nb, a, x, out);
      else groups<GK_D2V_CFRAC_GROUPS>(k, nb, a, x, out);
    } else {
      for (int l = 0; l < nb; ++l) out[l] = scalar(a[l], x[l]);
    }
  }
};

// An op of policy P on m <= kGammaChunk contiguous elements (a, x) -> r. Aligned blocks whose lanes are all
// of one class (parameters that vary slowly or not at all) are evaluated in place; the lanes of mixed blocks
// are appended to per-class index lists, which are then evaluated in full blocks.
template <typename P, typename T>
GK_HD_FORCE void chunk_by_class(int m, const T* a, const T* x, const T* e, T* r) {
  constexpr int L = kGammaBlock;
  int16_t idx[P::count][kGammaChunk];
  int cnt[P::count] = {};
  int cls[kGammaChunk];
  T v[kGammaChunk], w[kGammaChunk];
  // The two divisions per element (v and w = 1/a) on GNU vectors of kGammaBlock lanes (a and x hold
  // finite padding up to the next multiple of kGammaBlock, see strided_by_class); then the class of
  // each element from the same v, as the scalar core's tests.
  typedef T vec_t __attribute__((vector_size(kGammaBlock * sizeof(T))));
  for (int j = 0; j < m; j += L) {
    vec_t av, xv;
    std::memcpy(&av, a + j, sizeof(av));
    std::memcpy(&xv, x + j, sizeof(xv));
    const vec_t vv = (xv - av) / (xv + av), wv = T(1) / av;
    std::memcpy(v + j, &vv, sizeof(vv));
    std::memcpy(w + j, &wv, sizeof(wv));
  }
  for (int j = 0; j < m; ++j) cls[j] = P::classify(a[j], x[j], v[j]);
  int j0 = 0;
  for (; j0 + L <= m; j0 += L) {
    bool uniform = true;
    for (int l = 1; l < L; ++l) uniform &= cls[j0 + l] == cls[j0];
    if (uniform) {
      P::block(cls[j0], L, a + j0, x + j0, e + j0, v + j0, w + j0, r + j0);
    } else {
      for (int l = 0; l < L; ++l) {
        const int k = cls[j0 + l];
        idx[k][cnt[k]++] = static_cast<int16_t>(j0 + l);
      }
    }
  }
  for (int j = j0; j < m; ++j) {
    const int k = cls[j];
    idx[k][cnt[k]++] = static_cast<int16_t>(j);
  }
  T ab[L] = {}, xb[L] = {}, eb[L] = {}, vb[L], wb[L], rb[L];
  for (int k = 0; k < P::count; ++k) {
    const int16_t* id = idx[k];
    for (int b = 0; b < cnt[k]; b += L) {
      const int nb = cnt[k] - b < L ? cnt[k] - b : L;
      // Lanes past nb repeat the last element (finite values; their results are dropped).
      if (P::needs_vw(k)) {
        for (int l = 0; l < L; ++l) {
          const int j = id[b + (l < nb ? l : nb - 1)];
          vb[l] = v[j];
          wb[l] = w[j];
        }
      }
      if (P::needs_ax(k)) {
        for (int l = 0; l < nb; ++l) {
          const int j = id[b + l];
          ab[l] = a[j];
          xb[l] = x[j];
          eb[l] = e[j];
        }
      }
      P::block(k, nb, ab, xb, eb, vb, wb, rb);
      for (int l = 0; l < nb; ++l) r[id[b + l]] = rb[l];
    }
  }
}

// An op of policy P over a strided 1-D range (TensorIterator's inner loop: data = {out, alpha, x}, byte
// strides). Ranges shorter than one block (or, where P::blocks_from_two, a single element) go element by
// element through the scalar core (which the tests use as the reference for the blocked evaluation: a
// one-element tensor takes this path). A policy with
// log_input reads log x as its second operand: x = exp(log x) per element, as the scalar core computes it,
// and log x goes to the blocks as their extra operand e (else e is x itself, unused).
template <typename P, typename T>
GK_HD_FORCE void strided_by_class(char** data, const int64_t* strides, int64_t n) {
  char *o = data[0], *pa = data[1], *px = data[2];
  // Double standard_gamma_grad and log_standard_gamma_grad take the blocks from two elements on: their
  // continued fraction on 4-lane vectors costs about one scalar fraction for up to four lanes (cfrac_lanes4),
  // and the series block about one and a half scalar series for up to 16 (10 elements at a in [0.5, 5]: 0.41
  // vs 0.72 us, C++ timing on an AVX-512 host). Float's scalar core is cheap enough below one block.
  if (n < (P::blocks_from_two ? 2 : kGammaBlock)) {
    for (int64_t i = 0; i < n; ++i)
      *reinterpret_cast<T*>(o + i * strides[0]) =
          P::scalar(*reinterpret_cast<const T*>(pa + i * strides[1]), *reinterpret_cast<const T*>(px + i * strides[2]));
    return;
  }
  T a[kGammaChunk], x[kGammaChunk], lx[P::log_input ? kGammaChunk : 1], r[kGammaChunk];
  for (int64_t i = 0; i < n; i += kGammaChunk) {
    const int m = static_cast<int>(n - i < kGammaChunk ? n - i : kGammaChunk);
    for (int j = 0; j < m; ++j) {
      a[j] = *reinterpret_cast<const T*>(pa + (i + j) * strides[1]);
      x[j] = *reinterpret_cast<const T*>(px + (i + j) * strides[2]);
    }
    for (int j = m; j < kGammaChunk && j % kGammaBlock != 0; ++j) a[j] = x[j] = T(1);  // finite padding
    if constexpr (P::log_input) {
      for (int j = 0; j < kGammaChunk && (j < m || j % kGammaBlock != 0); ++j) {
        lx[j] = j < m ? x[j] : T(0);
        x[j] = j < m ? core::gk_exp(lx[j]) : T(1);
      }
      chunk_by_class<P, T>(m, a, x, lx, r);
    } else {
      chunk_by_class<P, T>(m, a, x, x, r);
    }
    for (int j = 0; j < m; ++j) *reinterpret_cast<T*>(o + (i + j) * strides[0]) = r[j];
  }
}

}  // namespace cpu
}  // namespace gradkern
