// Blocked CPU driver of standard_gamma_grad (host only; included by csrc/cpu/elementwise.cpp). All the
// numerics are the core's (csrc/core/igamma.h, csrc/core/igamma_bulk.h); this file only arranges the
// work so that it vectorizes.
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

#include "core/igamma.h"


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

template <typename T, int I = 0>
GK_HD_FORCE void bulk_block_tier(int tier, const T* v, const T* w, T* out) {
  if constexpr (I + 1 == core::bulk::tiers<T>::count) {
    bulk_block<T, I>(v, w, out);
  } else if (tier == I) {
    bulk_block<T, I>(v, w, out);
  } else {
    bulk_block_tier<T, I + 1>(tier, v, w, out);
  }
}

// The series branch (eq. 13; core::detail::series_grad; series_lane elements have a below the Temme
// range) on the first `nb` lanes: the scalar loop's steps, lane by lane, each lane
// frozen once its own test has stopped it (so each result is the scalar one); the lane loops vectorize.
// c = log x - psi(a + 1) per lane (computed by the caller as the scalar path does). Writes
// dx/da = -(x/a) G.
template <typename T>
GK_HD_FORCE void series_block(int nb, const T* a_, const T* x_, const T* c_, T* out) {
  constexpr int L = kGammaBlock;
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
  for (int l = 0; l < nb; ++l) out[l] = xo[l] * (-G[l] / a[l]);
}

// The continued fraction (eq. 12; core::detail::cfrac_grad) on the first `nb` lanes, lane-parallel in
// the same way as series_block: the scalar loop's steps (core::detail::cfrac_step / cfrac_done /
// cfrac_rescale), each lane frozen once its own convergence test has stopped it. c =
// log x - psi(a) per lane. Writes dx/da = x G. The scalar loop is latency-bound (each Wallis step waits
// for the previous one, 25-60 steps for a ~ 1); across lanes the steps are independent.
template <typename T>
GK_HD_FORCE void cfrac_block(int nb, const T* a_, const T* x_, const T* c_, T* out) {
  constexpr int L = kGammaBlock;
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
  for (int l = 0; l < nb; ++l) out[l] = x_[l] * G[l];
}

// Classes of elements, each evaluated by blocks of its own: bulk tier t (0 <= t < tiers::count), the
// series branch split by x (a block runs until its slowest lane has converged, and the number of terms
// grows with x: x < 1/4 takes at most ~6 pairs of terms, x near 2 twice that, so lanes of small x are
// kept apart), the continued fraction, and the rest (special values, Temme, huge x), element by element.
template <typename T> struct gamma_class {
  static constexpr int series_short = core::bulk::tiers<T>::count;
  static constexpr int series = series_short + 1;
  static constexpr int cfrac = series + 1;
  static constexpr int other = series + 2;
  static constexpr int count = series + 3;
  static constexpr T short_x = T(0.25);
};

// Evaluates kGammaBlock lanes of one class k (lanes past nb hold finite padding; their results are
// dropped by the caller). c is only filled here, for the series branch.
template <typename T>
GK_HD_FORCE void gamma_class_block(int k, int nb, const T* a, const T* x, const T* v, const T* w, T* out) {
  using C = gamma_class<T>;
  if (k < C::series_short) {
    bulk_block_tier<T>(k, v, w, out);
  } else if (k == C::series_short || k == C::series) {
    T c[kGammaBlock];
#pragma omp simd
    for (int l = 0; l < nb; ++l) c[l] = core::log_minus_digamma(x[l], a[l] + T(1));
    series_block<T>(nb, a, x, c, out);
  } else if (k == C::cfrac) {
    T c[kGammaBlock];
#pragma omp simd
    for (int l = 0; l < nb; ++l) c[l] = core::log_minus_digamma(x[l], a[l]);
    cfrac_block<T>(nb, a, x, c, out);
  } else {
    for (int l = 0; l < nb; ++l) out[l] = core::standard_gamma_grad(a[l], x[l]);
  }
}

// standard_gamma_grad on m <= kGammaChunk contiguous elements (a, x) -> r. Aligned blocks whose lanes
// are all of one class (parameters that vary slowly or not at all) are evaluated in place; the lanes of
// mixed blocks are appended to per-class index lists, which are then evaluated in full blocks.
template <typename T>
GK_HD_FORCE void gamma_grad_chunk(int m, const T* a, const T* x, T* r) {
  using C = gamma_class<T>;
  constexpr int L = kGammaBlock;
  int16_t idx[C::count][kGammaChunk];
  int cnt[C::count] = {};
  int cls[kGammaChunk];
  T v[kGammaChunk], w[kGammaChunk];
  // The two divisions per element (v and w = 1/a) on GNU vectors of kGammaBlock lanes (a and x hold
  // finite padding up to the next multiple of kGammaBlock, see gamma_grad_strided); then the class of
  // each element from the same tier, v and tests as core::bulk::classify and core::detail::series_lane /
  // cfrac_lane.
  typedef T vec_t __attribute__((vector_size(kGammaBlock * sizeof(T))));
  for (int j = 0; j < m; j += L) {
    vec_t av, xv;
    std::memcpy(&av, a + j, sizeof(av));
    std::memcpy(&xv, x + j, sizeof(xv));
    const vec_t vv = (xv - av) / (xv + av), wv = T(1) / av;
    std::memcpy(v + j, &vv, sizeof(vv));
    std::memcpy(w + j, &wv, sizeof(wv));
  }
  using tiers = core::bulk::tiers<T>;
  for (int j = 0; j < m; ++j) {
    const T aj = a[j], xj = x[j], vj = v[j];
    const int t = tiers::of(aj);
    const bool bulk = t >= 0 && aj < T(1e30) && core::gk_fabs(vj) <= tiers::v_max(t);
    v[j] = bulk ? vj : T(0);  // lanes outside the bulk: any finite value
    cls[j] = bulk ? t : core::detail::series_lane(aj, xj) ? (xj < C::short_x ? C::series_short : C::series)
                      : core::detail::cfrac_lane(aj, xj) ? C::cfrac : C::other;
  }
  int j0 = 0;
  for (; j0 + L <= m; j0 += L) {
    bool uniform = true;
    for (int l = 1; l < L; ++l) uniform &= cls[j0 + l] == cls[j0];
    if (uniform) {
      gamma_class_block<T>(cls[j0], L, a + j0, x + j0, v + j0, w + j0, r + j0);
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
  T ab[L] = {}, xb[L] = {}, vb[L], wb[L], rb[L];
  for (int k = 0; k < C::count; ++k) {
    const int16_t* id = idx[k];
    for (int b = 0; b < cnt[k]; b += L) {
      const int nb = cnt[k] - b < L ? cnt[k] - b : L;
      // Lanes past nb repeat the last element (finite values; their results are dropped).
      if (k < C::series_short) {
        for (int l = 0; l < L; ++l) {
          const int j = id[b + (l < nb ? l : nb - 1)];
          vb[l] = v[j];
          wb[l] = w[j];
        }
      } else {
        for (int l = 0; l < nb; ++l) {
          const int j = id[b + l];
          ab[l] = a[j];
          xb[l] = x[j];
        }
      }
      gamma_class_block<T>(k, nb, ab, xb, vb, wb, rb);
      for (int l = 0; l < nb; ++l) r[id[b + l]] = rb[l];
    }
  }
}

// standard_gamma_grad over a strided 1-D range (TensorIterator's inner loop: data = {out, alpha, x},
// byte strides).
// Ranges shorter than one block go element by element through the scalar core (which the tests use as
// the reference for the blocked evaluation: a one-element tensor takes this path).
template <typename T>
GK_HD_FORCE void gamma_grad_strided(char** data, const int64_t* strides, int64_t n) {
  char *o = data[0], *pa = data[1], *px = data[2];
  if (n < kGammaBlock) {
    for (int64_t i = 0; i < n; ++i)
      *reinterpret_cast<T*>(o + i * strides[0]) = core::standard_gamma_grad(
          *reinterpret_cast<const T*>(pa + i * strides[1]), *reinterpret_cast<const T*>(px + i * strides[2]));
    return;
  }
  T a[kGammaChunk], x[kGammaChunk], r[kGammaChunk];
  for (int64_t i = 0; i < n; i += kGammaChunk) {
    const int m = static_cast<int>(n - i < kGammaChunk ? n - i : kGammaChunk);
    for (int j = 0; j < m; ++j) {
      a[j] = *reinterpret_cast<const T*>(pa + (i + j) * strides[1]);
      x[j] = *reinterpret_cast<const T*>(px + (i + j) * strides[2]);
    }
    for (int j = m; j < kGammaChunk && j % kGammaBlock != 0; ++j) a[j] = x[j] = T(1);  // finite padding
    gamma_grad_chunk<T>(m, a, x, r);
    for (int j = 0; j < m; ++j) *reinterpret_cast<T*>(o + (i + j) * strides[0]) = r[j];
  }
}

}  // namespace cpu
}  // namespace gradkern
