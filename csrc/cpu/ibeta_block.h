// Lane-parallel CPU loops of the incomplete beta gradients (host only; included by csrc/cpu/ibeta.cpp, which
// compiles them once per ISA clone, without FMA contraction): standard_beta_grad and dirichlet_grad, the
// Beta and Dirichlet backward passes.
//
// Why: the scalar kernel spends most of its time in the continued fraction (csrc/core/ibeta.h, cfrac_wallis
// and cfrac_lentz), whose steps wait on each other (each recurrence step needs the previous ones) and whose
// divisions the core cannot overlap within one element. Across elements the steps are independent, so four
// elements step together on a GNU vector (cpu/vecmath.h). Elements need from a few to hundreds of steps
// (about 2.5 sqrt(min(p, q)) near the mode), so a lane is refilled with the next element soon after its own
// element has converged (at the next of every kIbetaSync pairs of steps), rather than waiting for the slowest
// of four. The side's choice, the logs of x and 1 - x and the log terms' digamma differences run on lanes too
// (log_pos and the branch-free log1p_fast, as in the scalar core); only the gathering and the special values
// are per element. On the bench grid of bench/beta.py, one AVX-512 thread: 88-91 ns per element in float64
// against the scalar loop's 155-170 (float32: 74-77 against 120-130); 83-90 ns in float64 since the
// branch-free log1p, 76 ns since the side and logs moved to lanes (2026-12-07).
//
// Bit for bit the scalar core: each element passes through the core's own pieces (grad_prepare_t /
// grad_a_prepare_t with swapped_t, log_terms_t and digamma_diff_t, wallis_init / wallis_pair /
// wallis_convergent, lentz_init / lentz_pair, grad_finish_t / grad_a_finish_t: templates instantiated on double
// and on the vector type, with lane_ops for the few non-arithmetic operations), the stopping tests and the rescaling are the scalar loops', lane by lane, and
// neither side is contracted to FMA. Elements with an invalid or boundary argument, or in the quadratures' regimes
// (core/ibeta_quad.h: large parameters, and one large parameter on the far side), take the scalar core.
// tests/test_beta.py compares the batched results with one-element calls (a range shorter than
// kIbetaMinLanes takes the scalar path).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "core/ibeta.h"
#include "cpu/vecmath.h"

namespace gradkern {
namespace cpu {

// Below this many elements per chunk the scalar loop is used (the gathering costs more than the lanes save).
constexpr int64_t kIbetaMinLanes = 8;
// Elements gathered per pass (stack buffers).
constexpr int kIbetaChunk = 256;
// Pairs of fraction steps between two refills of the lanes (cfrac_lanes; 1 to 4 measured: 4 was fastest,
// 12% over 1, on the bench grid of bench/beta.py).
constexpr int kIbetaSync = 4;

}  // namespace cpu

namespace core {
namespace ibeta_detail {
// The vector half of the fraction steps' lane_ops (csrc/core/ibeta.h): the guard as a lane-wise select.
template <> struct lane_ops<cpu::vm4::vd> {
  typedef cpu::vm4::vd vd;
  typedef cpu::vm4::vi vi;
  static GK_HD_FORCE vd select(vi m, vd a, vd b) { return cpu::vm4::select(m, a, b); }
  static GK_HD_FORCE bool any(vi m) { return cpu::vm4::any(m); }
  static GK_HD_FORCE vi and_not(vi a, vi b) { return a & ~b; }
  static GK_HD_FORCE vd sqrt(vd x) { return cpu::vm4::vsqrt(x); }
  // core::log1p_fast on lanes for t > -1 (+inf and NaN returned, as there): vm4::log_pos is core::log_pos's
  // reduction and series, operation for operation, so each lane is the scalar core's value bit for bit.
  static GK_HD_FORCE vd log1p(vd t) {
    const vd y = 1.0 + t;
    const vd r = cpu::vm4::log_pos(y) - ((y - 1.0) - t) / y;
    return cpu::vm4::select(cpu::vm4::finite(t), r, t);
  }
  // core::log_fast for 0 < x < 1 on lanes: log_pos, but libm's log for a subnormal x (lane by lane, as there).
  static GK_HD_FORCE vd log_unit(vd x) {
    vd lx = cpu::vm4::log_pos(x);
    const vi sub = x < core::num<double>::min_normal;
    if (cpu::vm4::any(sub))
      for (int l = 0; l < cpu::vm4::L; ++l)
        if (sub[l]) lx[l] = core::gk_log(x[l]);
    return lx;
  }
  // lane_ops<W>::pow2_down on lanes (the same integer steps)
  static GK_HD_FORCE vd pow2_down(vd d) {
    typedef cpu::vm4::vu vu;
    vi e = (vi)((cpu::vm4::bits(d) >> 52) & 0x7FF) - 1023;
    e &= ~(e >> 63);                         // below 0: 0
    const vi big = e > 1000;
    e = (e & ~big) | (big & 1000);
    return cpu::vm4::from_bits((vu)(1023 - e) << 52);
  }
  static GK_HD_FORCE vd guard_tiny(vd x, W tiny) { return cpu::vm4::select(cpu::vm4::vabs(x) < tiny, cpu::vm4::splat(tiny), x); }
};
}  // namespace ibeta_detail
}  // namespace core

namespace cpu {
namespace ibv {
using core::ibeta_detail::dual2;
using core::ibeta_detail::dual2t;
using core::ibeta_detail::W;
using core::ibeta_detail::wallis;
using core::ibeta_detail::wallis_t;
using vm4::L;
using vm4::vd;
using vm4::vi;

// The queued fractions of one pass, structure of arrays: their arguments (p, q, y and the log terms of the
// stopping test, filled by the caller for jobs 0 .. n - 1) and, filled by cfrac_lanes, s = p + q and the
// method's state after its first step. Entries n .. n + 2L - 1 hold an idle job (a short, finite fraction)
// that pads the last vector and keeps empty lanes busy.
struct Queue {
  static constexpr int kMaxState = 15;
  enum { P, Q, Y, LP, LQ, S, ST, kFields = ST + kMaxState };
  alignas(32) W f[kFields][kIbetaChunk + 2 * L];
  GK_HD_FORCE void put(int j, W p, W q, W y, W Lp, W Lq) {
    f[P][j] = p; f[Q][j] = q; f[Y][j] = y; f[LP][j] = Lp; f[LQ][j] = Lq;
  }
};

// The fractions' results h of one pass (value and both partials), structure of arrays; L entries of slack so
// that the finishing passes read whole vectors.
struct HOut {
  alignas(32) W v[kIbetaChunk + L], p[kIbetaChunk + L], q[kIbetaChunk + L];
};

GK_HD_FORCE vd load4(const W* src) {
  vd v;
  std::memcpy(&v, src, sizeof(v));
  return v;
}
GK_HD_FORCE void store4(W* dst, vd v) { std::memcpy(dst, &v, sizeof(v)); }

GK_HD_FORCE dual2t<vd> get_dual(const vd* st, int k) { return dual2t<vd>{st[k], st[k + 1], st[k + 2]}; }
GK_HD_FORCE void set_dual(vd* st, int k, const dual2t<vd>& d) { st[k] = d.v; st[k + 1] = d.p; st[k + 2] = d.q; }

template <int Need>
GK_HD_FORCE vi partial_done(vd hn, vd h, vd hv, vd L, W eps) {
  if (!Need) return vi{} - 1;
  return vm4::vabs(hn - h) <= eps * (vm4::vabs(hv * L) + vm4::vabs(hn) + W(1e-300));
}

// The Wallis form (core cfrac_wallis): state A1, B1, A2, B2, h.
template <int Need> struct WallisLanes {
  static constexpr int kState = 15, kH = 12;
  static GK_HD_FORCE void init(vd p, vd q, vd y, vd* st) {
    dual2t<vd> h0;
    const wallis_t<vd> w = core::ibeta_detail::wallis_init(p, q, y, h0);
    set_dual(st, 0, w.A1); set_dual(st, 3, w.B1); set_dual(st, 6, w.A2); set_dual(st, 9, w.B2); set_dual(st, kH, h0);
  }
  // One pair of steps and cfrac_wallis's stopping test on every lane; h kept on the frozen lanes, the
  // rescaling only on the others (the scalar loop breaks before it). Returns the lanes whose test passed.
  static GK_HD_FORCE vi pair(vd* st, vd p, vd q, vd s, vd y, vd Lp, vd Lq, vd M, W eps, vi frozen) {
    wallis_t<vd> w{get_dual(st, 0), get_dual(st, 3), get_dual(st, 6), get_dual(st, 9)};
    const dual2t<vd> h = get_dual(st, kH);
    core::ibeta_detail::wallis_pair(w, p, q, s, y, M);
    vd r;
    const dual2t<vd> hn = core::ibeta_detail::wallis_convergent(w, r);
    vi done = vm4::vabs(hn.v - h.v) <= eps * vm4::vabs(hn.v);
    done &= partial_done<(Need & 1)>(hn.p, h.p, hn.v, Lp, eps) & partial_done<(Need & 2)>(hn.q, h.q, hn.v, Lq, eps);
    set_dual(st, kH, dual2t<vd>{vm4::select(frozen, h.v, hn.v), vm4::select(frozen, h.p, hn.p),
                                vm4::select(frozen, h.q, hn.q)});
    const vd ab = vm4::vabs(w.B1.v);
    const vi resc = ~((ab < W(1e100)) & (ab > W(1e-100))) & ~(frozen | done);
    if (vm4::any(resc)) {
      dual2t<vd>* d4[4] = {&w.A1, &w.B1, &w.A2, &w.B2};
      for (auto* d : d4) {
        d->v = vm4::select(resc, d->v * r, d->v);
        d->p = vm4::select(resc, d->p * r, d->p);
        d->q = vm4::select(resc, d->q * r, d->q);
      }
    }
    set_dual(st, 0, w.A1); set_dual(st, 3, w.B1); set_dual(st, 6, w.A2); set_dual(st, 9, w.B2);
    return done;
  }
};

// The modified Lentz form (core cfrac_lentz, the fraction's side y > 1/2): state C, D, h.
template <int Need> struct LentzLanes {
  static constexpr int kState = 9, kH = 6;
  static GK_HD_FORCE void init(vd p, vd q, vd y, vd* st) {
    dual2t<vd> C, D, h;
    core::ibeta_detail::lentz_init(p, q, y, C, D, h);
    set_dual(st, 0, C); set_dual(st, 3, D); set_dual(st, kH, h);
  }
  static GK_HD_FORCE vi pair(vd* st, vd p, vd q, vd s, vd y, vd Lp, vd Lq, vd M, W eps, vi frozen) {
    dual2t<vd> C = get_dual(st, 0), D = get_dual(st, 3), h = get_dual(st, kH), del;
    const dual2t<vd> h0 = h;
    core::ibeta_detail::lentz_pair(C, D, h, del, p, q, s, y, M);
    // cfrac_lentz's test: del's value within eps of 1, then the partials of log h (del.p / del.v, del = 1 +
    // O(eps)) against the gradient's scale.
    vi done = vm4::vabs(del.v - W(1)) <= eps;
    if (Need & 1) done &= vm4::vabs(del.p) <= eps * (vm4::vabs(Lp) + vm4::vabs(h.p / h.v) + W(1e-300));
    if (Need & 2) done &= vm4::vabs(del.q) <= eps * (vm4::vabs(Lq) + vm4::vabs(h.q / h.v) + W(1e-300));
    set_dual(st, 0, C); set_dual(st, 3, D);
    set_dual(st, kH, dual2t<vd>{vm4::select(frozen, h0.v, h.v), vm4::select(frozen, h0.p, h.p),
                                vm4::select(frozen, h0.q, h.q)});
    return done;
  }
};

// The fraction h (value and partials) of the n jobs of Qu by Method (WallisLanes / LentzLanes, whose scalar
// loops run up to kMaxIter - 1 pairs of steps): 4 lanes at a time, each lane refilled with the next job at
// the first multiple of kIbetaSync pairs after its own job has converged (its h frozen in between, so that
// the data-dependent branches of a refill come once per kIbetaSync steps rather than after almost every
// one); out.v[j], out.p[j], out.q[j] = h of job j.
template <class Method>
GK_HD_FORCE void cfrac_lanes(int n, Queue& Qu, W eps, HOut& out) {
  using core::ibeta_detail::kMaxIter;
  typedef Queue F;
  constexpr int K = Method::kState;
  W(*f)[kIbetaChunk + 2 * L] = Qu.f;
  for (int j = n; j < n + 2 * L; ++j) Qu.put(j, W(1), W(1), W(0.25), W(0), W(0));
  // The initial states, 4 jobs at a time.
  for (int j = 0; j < n + L; j += L) {
    const vd p = load4(f[F::P] + j), q = load4(f[F::Q] + j), y = load4(f[F::Y] + j);
    vd st[K];
    Method::init(p, q, y, st);
    store4(f[F::S] + j, p + q);
    for (int k = 0; k < K; ++k) store4(f[F::ST + k] + j, st[k]);
  }
  const int idle = n;
  vd p{}, q{}, s{}, y{}, Lp{}, Lq{}, M{};
  vd st[K] = {};
  int slot[L];
  const vi lane[L] = {vi{-1, 0, 0, 0}, vi{0, -1, 0, 0}, vi{0, 0, -1, 0}, vi{0, 0, 0, -1}};
  // Lane l takes entry j (a job, or the idle one: slot -1).
  auto load = [&](int l, int j) {
    const vi m = lane[l];
    p = vm4::select(m, vm4::splat(f[F::P][j]), p);
    q = vm4::select(m, vm4::splat(f[F::Q][j]), q);
    s = vm4::select(m, vm4::splat(f[F::S][j]), s);
    y = vm4::select(m, vm4::splat(f[F::Y][j]), y);
    Lp = vm4::select(m, vm4::splat(f[F::LP][j]), Lp);
    Lq = vm4::select(m, vm4::splat(f[F::LQ][j]), Lq);
    M = vm4::select(m, vm4::splat(W(1)), M);
    for (int k = 0; k < K; ++k) st[k] = vm4::select(m, vm4::splat(f[F::ST + k][j]), st[k]);
    slot[l] = j < n ? j : -1;
  };
  int next = 0, active = 0;
  for (int l = 0; l < L; ++l) {
    if (next < n) { load(l, next++); ++active; } else load(l, idle);
  }
  const vd last = vm4::splat(W(kMaxIter - 1));
  while (active > 0) {
    vi frozen{};
    for (int k = 0; k < kIbetaSync; ++k) {
      const vi done = Method::pair(st, p, q, s, y, Lp, Lq, M, eps, frozen);
      frozen |= done | (M >= last);  // the scalar loop's cap: m < kMaxIter
      M += W(1);
    }
    if (vm4::any(frozen)) {
      for (int l = 0; l < L; ++l) {
        if (!frozen[l]) continue;
        if (slot[l] >= 0) {
          out.v[slot[l]] = st[Method::kH][l];
          out.p[slot[l]] = st[Method::kH + 1][l];
          out.q[slot[l]] = st[Method::kH + 2][l];
          if (next < n) load(l, next++);
          else { load(l, idle); --active; }
        } else {
          load(l, idle);
        }
      }
    }
  }
}

// The elements of a TensorIterator 2-D loop, in order: operand k of element (i0, i1) is at
// base[k] + i0 strides[k] + i1 strides[NT + k] (NT operands; size0 elements per row).
template <int NT> struct Walk {
  char* const* base;
  const int64_t* st;
  int64_t size0, i0, i1;
  GK_HD_FORCE char* at(int k) const { return base[k] + i0 * st[k] + i1 * st[NT + k]; }
  GK_HD_FORCE void next() {
    if (++i0 == size0) { i0 = 0; ++i1; }
  }
};
template <typename S> GK_HD_FORCE W rd(const char* p) { return static_cast<W>(*reinterpret_cast<const S*>(p)); }
template <typename S> GK_HD_FORCE void wr(char* p, S v) { *reinterpret_cast<S*>(p) = v; }
}  // namespace ibv

// The fractions of jobs 0 .. n - 1 of a driver's queue: by the Lentz form (y > 1/2) or the Wallis form, each
// stopping on the partials Need names (1: p, 2: q, 3: both).
template <int NeedW, int NeedL> GK_HD_FORCE void run_class(bool lentz, int n, ibv::Queue& jobs, ibv::W eps,
                                                           ibv::HOut& h) {
  if (n == 0) return;
  if (lentz) ibv::cfrac_lanes<ibv::LentzLanes<NeedL>>(n, jobs, eps, h);
  else ibv::cfrac_lanes<ibv::WallisLanes<NeedW>>(n, jobs, eps, h);
}

// core grad_prepare_t for gathered elements j .. j + L - 1 of valid a, b and 0 < x < 1 (in[0..2]): p, q, y,
// L_p, L_q into pq[0..4] and the side into sw.
GK_HD_FORCE void grad_side_lanes(const ibv::W (*in)[kIbetaChunk + vm4::L], ibv::W (*pq)[kIbetaChunk + vm4::L],
                                 int64_t* sw, int j) {
  using namespace vm4;
  using ibv::load4;
  using ibv::store4;
  vd p, q, y, Lp, Lq;
  vi s;
  core::ibeta_detail::grad_prepare_t<vd>(load4(in[0] + j), load4(in[1] + j), load4(in[2] + j), p, q, y, Lp, Lq, s);
  store4(pq[0] + j, p);
  store4(pq[1] + j, q);
  store4(pq[2] + j, y);
  store4(pq[3] + j, Lp);
  store4(pq[4] + j, Lq);
  std::memcpy(sw + j, &s, sizeof(s));
}

// standard_beta_grad over a TensorIterator chunk: data = {ga, gb, a, b, x}; T the op's math type (float for
// float, half and bfloat16; double), S the storage type. core::standard_beta_grad element by element, with
// the continued fractions of the chunk on lanes: two queues, the Wallis side (y <= 1/2) and the Lentz side.
template <typename T, typename S>
GK_HD_FORCE void standard_beta_grad_lanes(char* const* data, const int64_t* strides, int64_t size0, int64_t size1) {
  using namespace ibv;
  const W eps = core::loop_tol<T>();
  const int64_t n = size0 * size1;
  Walk<5> it{data, strides, size0, 0, 0};
  Queue jobs;
  int idx[2][kIbetaChunk];  // [class][job]: the gathered element
  char* gout[2][kIbetaChunk];
  // a, b, x of the gathered elements; then p, q, y, L_p, L_q and the side (sw) from grad_side_lanes
  alignas(32) W in[3][kIbetaChunk + L], pq[5][kIbetaChunk + L];
  alignas(32) int64_t sw[kIbetaChunk + L];
  // one class's side and x by job, and its two outputs
  alignas(32) int64_t swc[kIbetaChunk + L];
  alignas(32) W xc[kIbetaChunk + L], res[2][kIbetaChunk + L];
  HOut h;
  for (int64_t e0 = 0; e0 < n; e0 += kIbetaChunk) {
    const int m = static_cast<int>(std::min<int64_t>(kIbetaChunk, n - e0));
    int nj[2] = {0, 0}, ng = 0;
    for (int t = 0; t < m; ++t, it.next()) {
      const T a = static_cast<T>(rd<S>(it.at(2))), b = static_cast<T>(rd<S>(it.at(3))), x = static_cast<T>(rd<S>(it.at(4)));
      if (core::ibeta_detail::bad_args(W(a), W(b), W(x)) || x == T(0) || x == T(1) ||
          core::ibeta_detail::quad_regime(W(a), W(b), W(x)) || core::ibeta_detail::tail_regime(W(a), W(b), W(x))) {
        T o0, o1;
        core::standard_beta_grad(a, b, x, o0, o1);  // the special values; the quadratures' regimes
        wr<S>(it.at(0), static_cast<S>(o0));
        wr<S>(it.at(1), static_cast<S>(o1));
        continue;
      }
      in[0][ng] = W(a); in[1][ng] = W(b); in[2][ng] = W(x);
      gout[0][ng] = it.at(0);
      gout[1][ng] = it.at(1);
      ++ng;
    }
    // core grad_side and log_terms on lanes (the gathered elements padded with a benign one)
    for (int j = ng; j < ng + L; ++j) in[0][j] = in[1][j] = W(1), in[2][j] = W(0.25);
    for (int j = 0; j < ng; j += L) grad_side_lanes(in, pq, sw, j);
    // the two queues: core cfrac's choice of the recurrence (Lentz for y > 1/2)
    for (int j = 0; j < ng; ++j) {
      const int c = pq[2][j] > W(0.5);
      idx[c][nj[c]++] = j;
    }
    for (int c = 0; c < 2; ++c) {
      const int nc = nj[c];
      for (int k = 0; k < nc; ++k) {
        const int j = idx[c][k];
        jobs.put(k, pq[0][j], pq[1][j], pq[2][j], pq[3][j], pq[4][j]);
        swc[k] = sw[j];
        xc[k] = in[2][j];
      }
      run_class<3, 3>(c == 1, nc, jobs, eps, h);
      // core grad_finish_t and pair_value's scaling by x (1 - x) on lanes (the queue still holds p, L_p, L_q;
      // cfrac_lanes padded it with its idle job, the rest is padded here)
      for (int k = nc; k < nc + L; ++k) h.v[k] = h.p[k] = h.q[k] = W(0), swc[k] = 0, xc[k] = W(0.5);
      for (int k = 0; k < nc; k += L) {
        vi s;
        std::memcpy(&s, swc + k, sizeof(s));
        vd ga, gb;
        core::ibeta_detail::grad_finish_t<vd>(s, load4(jobs.f[Queue::P] + k), load4(jobs.f[Queue::LP] + k),
                                              load4(jobs.f[Queue::LQ] + k), load4(h.v + k), load4(h.p + k),
                                              load4(h.q + k), ga, gb);
        const vd x = load4(xc + k), kx = x * (1.0 - x);
        store4(res[0] + k, ga * kx);
        store4(res[1] + k, gb * kx);
      }
      for (int k = 0; k < nc; ++k) {
        const int j = idx[c][k];
        wr<S>(gout[0][j], static_cast<S>(T(res[0][k])));
        wr<S>(gout[1][j], static_cast<S>(T(res[1][k])));
      }
    }
  }
}

// core grad_a_prepare_t for gathered elements j .. j + L - 1 of valid alpha, beta and 0 < x < 1 (in[0..2]):
// p, q, y, L into pq[0..3] and the side into sw.
GK_HD_FORCE void grad_a_side_lanes(const ibv::W (*in)[kIbetaChunk + vm4::L], ibv::W (*pq)[kIbetaChunk + vm4::L],
                                   int64_t* sw, int j) {
  using namespace vm4;
  using ibv::load4;
  using ibv::store4;
  vd p, q, y, Lv;
  vi s;
  core::ibeta_detail::grad_a_prepare_t<vd>(load4(in[0] + j), load4(in[1] + j), load4(in[2] + j), p, q, y, Lv, s);
  store4(pq[0] + j, p);
  store4(pq[1] + j, q);
  store4(pq[2] + j, y);
  store4(pq[3] + j, Lv);
  std::memcpy(sw + j, &s, sizeof(s));
}

// dirichlet_grad over a chunk: data = {out, x, alpha, total}. core grad_a_scaled's fraction stops on the
// p-partial on the direct side (Need = 1) and on the q-partial on the swapped one (Need = 2), each by
// either recurrence: four queues.
template <typename T, typename S>
GK_HD_FORCE void dirichlet_grad_lanes(char* const* data, const int64_t* strides, int64_t size0, int64_t size1) {
  using namespace ibv;
  const W eps = core::loop_tol<T>();
  const int64_t n = size0 * size1;
  Walk<4> it{data, strides, size0, 0, 0};
  Queue jobs;
  int idx[4][kIbetaChunk];  // [class][job]: the gathered element
  char* gout[kIbetaChunk];
  // alpha, beta = total - alpha, x of the gathered elements; then p, q, y, L and the side from
  // grad_a_side_lanes
  alignas(32) W in[3][kIbetaChunk + L], pq[4][kIbetaChunk + L];
  alignas(32) int64_t sw[kIbetaChunk + L];
  alignas(32) W xc[kIbetaChunk + L], res[kIbetaChunk + L];  // one class's x by job, and its output
  HOut h;
  for (int64_t e0 = 0; e0 < n; e0 += kIbetaChunk) {
    const int m = static_cast<int>(std::min<int64_t>(kIbetaChunk, n - e0));
    int nj[4] = {0, 0, 0, 0}, ng = 0;
    for (int t = 0; t < m; ++t, it.next()) {
      const T x = static_cast<T>(rd<S>(it.at(1))), alpha = static_cast<T>(rd<S>(it.at(2))),
              total = static_cast<T>(rd<S>(it.at(3)));
      const W beta = W(total) - W(alpha);
      if (core::ibeta_detail::bad_args(W(alpha), beta, W(x)) || x == T(0) || x == T(1) ||
          core::ibeta_detail::quad_regime(W(alpha), beta, W(x)) ||
          core::ibeta_detail::tail_regime(W(alpha), beta, W(x))) {
        // the special values; the quadratures' regimes
        wr<S>(it.at(0), static_cast<S>(core::dirichlet_grad(x, alpha, total)));
        continue;
      }
      in[0][ng] = W(alpha); in[1][ng] = beta; in[2][ng] = W(x);
      gout[ng++] = it.at(0);
    }
    // core grad_a_prepare on lanes, padded with a benign element
    for (int j = ng; j < ng + L; ++j) in[0][j] = in[1][j] = W(1), in[2][j] = W(0.25);
    for (int j = 0; j < ng; j += L) grad_a_side_lanes(in, pq, sw, j);
    // four queues: the side (the partial the fraction stops on) and the recurrence
    for (int j = 0; j < ng; ++j) {
      const int c = (sw[j] ? 1 : 0) + (pq[2][j] > W(0.5) ? 2 : 0);
      idx[c][nj[c]++] = j;
    }
    for (int c = 0; c < 4; ++c) {
      const bool swc = c & 1;
      const int nc = nj[c];
      for (int k = 0; k < nc; ++k) {
        const int j = idx[c][k];
        jobs.put(k, pq[0][j], pq[1][j], pq[2][j], swc ? W(0) : pq[3][j], swc ? pq[3][j] : W(0));
        xc[k] = in[2][j];
      }
      if (swc) run_class<2, 2>(c & 2, nc, jobs, eps, h);
      else run_class<1, 1>(c & 2, nc, jobs, eps, h);
      // core grad_a_finish_t times x on lanes (the queue still holds p and L; padded as in
      // standard_beta_grad_lanes)
      for (int k = nc; k < nc + L; ++k) h.v[k] = h.p[k] = h.q[k] = W(0), xc[k] = W(0.5);
      const W* Lf = jobs.f[swc ? Queue::LQ : Queue::LP];
      const W* hd = swc ? h.q : h.p;
      const vi sv = vm4::vi{} - (swc ? 1 : 0);
      for (int k = 0; k < nc; k += L) {
        const vd g = core::ibeta_detail::grad_a_finish_t<vd>(sv, load4(jobs.f[Queue::P] + k), load4(Lf + k),
                                                             load4(h.v + k), load4(hd + k));
        store4(res + k, g * load4(xc + k));
      }
      for (int k = 0; k < nc; ++k) wr<S>(gout[idx[c][k]], static_cast<S>(T(res[k])));
    }
  }
}

}  // namespace cpu
}  // namespace gradkern
