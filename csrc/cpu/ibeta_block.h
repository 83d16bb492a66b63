// Lane-parallel CPU loops of the incomplete beta gradients (host only; included by csrc/cpu/ibeta.cpp, which
// compiles them once per ISA clone, without FMA contraction): standard_beta_grad and dirichlet_grad, the
// Beta and Dirichlet backward passes.
//
// Why: the scalar kernel spends most of its time in the Wallis continued fraction (csrc/core/ibeta.h,
// cfrac_wallis), whose steps wait on each other (each recurrence step needs the previous two) and whose
// three divisions per pair of steps the core cannot overlap within one element. Across elements the steps
// are independent, so four elements step together on a GNU vector (cpu/vecmath.h). Elements need from a
// few to hundreds of steps (about 2.5 sqrt(min(p, q)) near the mode), so a lane is refilled with the next
// element soon after its own element has converged (at the next of every kIbetaSync pairs of steps), rather
// than waiting for the slowest of four. On the bench grid the fraction costs about half the scalar loop's
// time per element (64 against 124 ns, AVX-512 host); the log terms and the side's choice stay scalar.
//
// Bit for bit the scalar core: each element passes through the core's own pieces (grad_prepare, wallis_init,
// wallis_pair, wallis_convergent, grad_finish; the pair step and convergent are templates instantiated on
// the vector type), the stopping test and rescaling are the scalar loop's, lane by lane, and neither side is
// contracted to FMA. Elements with an invalid or boundary argument, and those on the Lentz side of the
// fraction (y > 1/2), take the scalar core. tests/test_beta.py compares every op's batched result with
// one-element calls (a tensor shorter than kIbetaMinLanes takes the scalar path).
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
// Pairs of fraction steps between two refills of the lanes (wallis_lanes; 1 to 4 measured: 4 was fastest,
// 12% over 1, on the bench grid of bench/beta.py).
constexpr int kIbetaSync = 4;

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
// stopping test, filled by the caller for jobs 0 .. n - 1) and, filled by wallis_lanes, s = p + q and the
// state after core wallis_init (the convergents A1, B1, A2, B2 and h, value and partials). Entries n ..
// n + 2L - 1 hold an idle job (a short, finite fraction) that pads the last vector and keeps empty lanes busy.
struct Queue {
  enum { P, Q, Y, LP, LQ, S, A1, B1 = A1 + 3, A2 = B1 + 3, B2 = A2 + 3, H = B2 + 3, kFields = H + 3 };
  alignas(32) W f[kFields][kIbetaChunk + 2 * L];
  GK_HD_FORCE void put(int j, W p, W q, W y, W Lp, W Lq) {
    f[P][j] = p; f[Q][j] = q; f[Y][j] = y; f[LP][j] = Lp; f[LQ][j] = Lq;
  }
};

GK_HD_FORCE vd load4(const W* src) {
  vd v;
  std::memcpy(&v, src, sizeof(v));
  return v;
}
GK_HD_FORCE void store4(W* dst, vd v) { std::memcpy(dst, &v, sizeof(v)); }
GK_HD_FORCE void store_dual(W (*f)[kIbetaChunk + 2 * L], int j, const dual2t<vd>& d) {
  store4(f[0] + j, d.v); store4(f[1] + j, d.p); store4(f[2] + j, d.q);
}
// Lane m of d (mask: lane m set) from entry j of three consecutive fields.
GK_HD_FORCE void blend_dual(dual2t<vd>& d, vi m, const W (*f)[kIbetaChunk + 2 * L], int j) {
  d.v = vm4::select(m, vm4::splat(f[0][j]), d.v);
  d.p = vm4::select(m, vm4::splat(f[1][j]), d.p);
  d.q = vm4::select(m, vm4::splat(f[2][j]), d.q);
}

template <int Need>
GK_HD_FORCE vi partial_done(vd hn, vd h, vd hv, vd L, W eps) {
  if (!Need) return vi{} - 1;
  return vm4::vabs(hn - h) <= eps * (vm4::vabs(hv * L) + vm4::vabs(hn) + W(1e-300));
}

// cfrac_wallis<Need>(p, q, y, Lp, Lq, true, eps) of the n jobs of Qu, 4 lanes at a time, each lane refilled
// with the next job as soon as its own has converged; out[j] = h of job j.
template <int Need>
GK_HD_FORCE void wallis_lanes(int n, Queue& Qu, W eps, dual2* out) {
  using core::ibeta_detail::kMaxIter;
  typedef Queue F;
  W(*f)[kIbetaChunk + 2 * L] = Qu.f;
  for (int j = n; j < n + 2 * L; ++j) Qu.put(j, W(1), W(1), W(0.25), W(0), W(0));
  // The initial states, 4 jobs at a time (the core's wallis_init on lanes).
  for (int j = 0; j < n + L; j += L) {
    const vd p = load4(f[F::P] + j), q = load4(f[F::Q] + j), y = load4(f[F::Y] + j);
    dual2t<vd> h0;
    const wallis_t<vd> w0 = core::ibeta_detail::wallis_init(p, q, y, h0);
    store4(f[F::S] + j, p + q);
    store_dual(f + F::A1, j, w0.A1); store_dual(f + F::B1, j, w0.B1);
    store_dual(f + F::A2, j, w0.A2); store_dual(f + F::B2, j, w0.B2);
    store_dual(f + F::H, j, h0);
  }
  const int idle = n;
  vd p{}, q{}, s{}, y{}, Lp{}, Lq{}, M{};
  wallis_t<vd> w{};
  dual2t<vd> h{};
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
    blend_dual(w.A1, m, f + F::A1, j); blend_dual(w.B1, m, f + F::B1, j);
    blend_dual(w.A2, m, f + F::A2, j); blend_dual(w.B2, m, f + F::B2, j);
    blend_dual(h, m, f + F::H, j);
    slot[l] = j < n ? j : -1;
  };
  int next = 0, active = 0;
  for (int l = 0; l < L; ++l) {
    if (next < n) { load(l, next++); ++active; } else load(l, idle);
  }
  const vd last = vm4::splat(W(kMaxIter - 1));
  while (active > 0) {
    // kSync pairs of steps between refills: a lane whose job has converged is frozen (h kept, its steps
    // discarded) until the next refill, so that the data-dependent branches of a refill come once per kSync
    // steps instead of after almost every step.
    vi frozen{};
    for (int k = 0; k < kIbetaSync; ++k) {
      core::ibeta_detail::wallis_pair(w, p, q, s, y, M);
      vd r;
      const dual2t<vd> hn = core::ibeta_detail::wallis_convergent(w, r);
      // cfrac_wallis's test: the value, then each partial the caller needs, against the gradient's scale.
      vi done = vm4::vabs(hn.v - h.v) <= eps * vm4::vabs(hn.v);
      done &= partial_done<(Need & 1)>(hn.p, h.p, hn.v, Lp, eps) & partial_done<(Need & 2)>(hn.q, h.q, hn.v, Lq, eps);
      done |= M >= last;  // the loop's cap: m < kMaxIter
      h.v = vm4::select(frozen, h.v, hn.v);
      h.p = vm4::select(frozen, h.p, hn.p);
      h.q = vm4::select(frozen, h.q, hn.q);
      frozen |= done;
      // The rescaling of the lanes that go on (the scalar loop breaks before it).
      const vd ab = vm4::vabs(w.B1.v);
      const vi resc = ~((ab < W(1e100)) & (ab > W(1e-100))) & ~frozen;
      if (vm4::any(resc)) {
        dual2t<vd>* st[4] = {&w.A1, &w.B1, &w.A2, &w.B2};
        for (auto* d : st) {
          d->v = vm4::select(resc, d->v * r, d->v);
          d->p = vm4::select(resc, d->p * r, d->p);
          d->q = vm4::select(resc, d->q * r, d->q);
        }
      }
      M += W(1);
    }
    if (vm4::any(frozen)) {
      for (int l = 0; l < L; ++l) {
        if (!frozen[l]) continue;
        if (slot[l] >= 0) {
          out[slot[l]] = dual2{h.v[l], h.p[l], h.q[l]};
          if (next < n) load(l, next++);
          else { load(l, idle); --active; }
        } else {
          load(l, idle);
        }
      }
    }
  }
}

template <typename S> GK_HD_FORCE W rd(char* const* data, const int64_t* strides, int k, int64_t i) {
  return static_cast<W>(*reinterpret_cast<const S*>(data[k] + i * strides[k]));
}
template <typename S> GK_HD_FORCE void wr(char* const* data, const int64_t* strides, int k, int64_t i, S v) {
  *reinterpret_cast<S*>(data[k] + i * strides[k]) = v;
}
}  // namespace ibv

// standard_beta_grad over a TensorIterator chunk: data = {ga, gb, a, b, x}; T the op's math type (float for
// float, half and bfloat16; double), S the storage type. core::standard_beta_grad element by element, with
// the Wallis fractions of the chunk on lanes.
template <typename T, typename S>
GK_HD_FORCE void standard_beta_grad_lanes(char* const* data, const int64_t* strides, int64_t n) {
  using namespace ibv;
  const W eps = core::loop_tol<T>();
  Queue jobs;
  core::ibeta_detail::grad_args args[kIbetaChunk];
  int64_t idx[kIbetaChunk];
  dual2 h[kIbetaChunk];
  for (int64_t i0 = 0; i0 < n; i0 += kIbetaChunk) {
    const int m = static_cast<int>(std::min<int64_t>(kIbetaChunk, n - i0));
    int nj = 0;
    for (int t = 0; t < m; ++t) {
      const int64_t i = i0 + t;
      const T a = static_cast<T>(rd<S>(data, strides, 2, i)), b = static_cast<T>(rd<S>(data, strides, 3, i)),
              x = static_cast<T>(rd<S>(data, strides, 4, i));
      core::ibeta_detail::grad_args g{};
      const bool plain = !core::ibeta_detail::bad_args(W(a), W(b), W(x)) && x != T(0) && x != T(1) &&
                         ((g = core::ibeta_detail::grad_prepare(W(a), W(b), W(x))).y <= W(0.5));
      if (!plain) {
        T o0, o1;
        core::standard_beta_grad(a, b, x, o0, o1);
        wr<S>(data, strides, 0, i, static_cast<S>(o0));
        wr<S>(data, strides, 1, i, static_cast<S>(o1));
        continue;
      }
      jobs.put(nj, g.p, g.q, g.y, g.Lp, g.Lq);
      args[nj] = g;
      idx[nj++] = i;
    }
    wallis_lanes<3>(nj, jobs, eps, h);
    for (int j = 0; j < nj; ++j) {
      const int64_t i = idx[j];
      W w0, w1;
      core::ibeta_detail::grad_finish(args[j], h[j], w0, w1);
      // pair_value's scaling by x (1 - x), from the argument as the op received it
      const W x = W(static_cast<T>(rd<S>(data, strides, 4, i)));
      const W k = x * (W(1) - x);
      wr<S>(data, strides, 0, i, static_cast<S>(T(w0 * k)));
      wr<S>(data, strides, 1, i, static_cast<S>(T(w1 * k)));
    }
  }
}

// dirichlet_grad over a chunk: data = {out, x, alpha, total}. The direct side's fractions (Need = 1) and the
// swapped side's (Need = 2) stop on different partials, so they run as two queues.
template <typename T, typename S>
GK_HD_FORCE void dirichlet_grad_lanes(char* const* data, const int64_t* strides, int64_t n) {
  using namespace ibv;
  const W eps = core::loop_tol<T>();
  Queue jobs;
  core::ibeta_detail::grad_a_args args[2][kIbetaChunk];
  int64_t idx[2][kIbetaChunk];
  dual2 h[kIbetaChunk];
  for (int64_t i0 = 0; i0 < n; i0 += kIbetaChunk) {
    const int m = static_cast<int>(std::min<int64_t>(kIbetaChunk, n - i0));
    int nj[2] = {0, 0};
    for (int t = 0; t < m; ++t) {
      const int64_t i = i0 + t;
      const T x = static_cast<T>(rd<S>(data, strides, 1, i)), alpha = static_cast<T>(rd<S>(data, strides, 2, i)),
              total = static_cast<T>(rd<S>(data, strides, 3, i));
      const W beta = W(total) - W(alpha);
      core::ibeta_detail::grad_a_args g{};
      const bool plain = !core::ibeta_detail::bad_args(W(alpha), beta, W(x)) && x != T(0) && x != T(1) &&
                         ((g = core::ibeta_detail::grad_a_prepare(W(alpha), beta, W(x))).y <= W(0.5));
      if (!plain) {
        wr<S>(data, strides, 0, i, static_cast<S>(core::dirichlet_grad(x, alpha, total)));
        continue;
      }
      const int k = g.sw ? 1 : 0;
      args[k][nj[k]] = g;
      idx[k][nj[k]++] = i;
    }
    for (int k = 0; k < 2; ++k) {
      for (int j = 0; j < nj[k]; ++j) {
        const core::ibeta_detail::grad_a_args& g = args[k][j];
        jobs.put(j, g.p, g.q, g.y, k ? W(0) : g.L, k ? g.L : W(0));
      }
      if (k == 0) wallis_lanes<1>(nj[0], jobs, eps, h);
      else wallis_lanes<2>(nj[1], jobs, eps, h);
      for (int j = 0; j < nj[k]; ++j) {
        const int64_t i = idx[k][j];
        const W x = W(static_cast<T>(rd<S>(data, strides, 1, i)));
        wr<S>(data, strides, 0, i, static_cast<S>(T(core::ibeta_detail::grad_a_finish(args[k][j], h[j]) * x)));
      }
    }
  }
}

}  // namespace cpu
}  // namespace gradkern
