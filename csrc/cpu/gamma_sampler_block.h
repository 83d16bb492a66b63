// Blocked CPU driver of the Gamma-family samplers (host only; included by csrc/cpu/gamma_sampler.cpp): the
// Marsaglia-Tsang draw of csrc/core/gamma_sampler.h (gamma_draw) on up to kGbBlock elements at a time, in
// passes that GCC vectorizes: (1) the per-alpha constants, (2) Philox blocks holding try k's three
// uniforms for every element still drawing, one round at a time over all of them, (3) the proposal and its
// acceptance, (4) compaction of the rejected elements, which go through (2)-(3) again with try k + 1, (5)
// the boost's uniform for alpha < 1 and the logarithm. Element i consumes exactly the uniforms of its own
// Philox stream (key = seed, subsequence = i) that core::gamma_draw would, in the same order, so the result
// depends only on the seed and i (not on the block or chunk boundaries, hence not on the thread count),
// and every draw is settled within kGammaMaxTries tries (the last positive candidate is kept, as there).
// The logarithms are core::log_pos (branch-free, within about an ulp) where gamma_draw calls libm's log, and
// the log of the result is one log of d t^3 where gamma_draw adds log d and 3 log t: the draws are the same
// in distribution and differ from the per-element (CUDA) path in the last bits (an acceptance decided within
// an ulp of its threshold can differ too, rarely).
#pragma once

#include <algorithm>
#include <cstdint>

#include "core/gamma_sampler.h"
#include "core/philox.h"
#include "core/special.h"  // log_pos

namespace gradkern {
namespace cpu {

constexpr int kGbBlock = 256;

// Uniforms per Philox block: a double uniform takes two 32-bit words, a float one.
template <typename T> struct gb_words { static constexpr uint32_t per_block = sizeof(T) == 8 ? 2u : 4u; };

// Words of Philox block blk[j] of the streams (ilo[j], ihi[j]), j < m.
GK_HD_FORCE void gb_philox(int m, uint64_t seed, const uint32_t* blk, const uint32_t* ilo, const uint32_t* ihi,
                           uint32_t* w0, uint32_t* w1, uint32_t* w2, uint32_t* w3) {
  for (int j = 0; j < m; ++j) {  // counter = (block, 0, element index): core::Philox's layout
    w0[j] = blk[j];
    w1[j] = 0u;
    w2[j] = ilo[j];
    w3[j] = ihi[j];
  }
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int r = 0; r < 10; ++r) {
    for (int j = 0; j < m; ++j) core::Philox::philox_round(w0[j], w1[j], w2[j], w3[j], k0, k1);
    core::Philox::bump_key(k0, k1);
  }
}

// Uniform number u of a stream whose Philox block u / per_block has the words (w0 .. w3): core::Philox's
// uniform<T>() at that position (double: words 2h, 2h + 1 of the block, h = u % 2; float: word u % 4).
template <typename T>
GK_HD_FORCE T gb_uniform(uint32_t u, uint32_t w0, uint32_t w1, uint32_t w2, uint32_t w3) {
  if constexpr (sizeof(T) == 8) {
    const bool h = (u & 1u) != 0;
    return core::Philox::to_uniform_double(h ? w2 : w0, h ? w3 : w1);
  } else {
    const uint32_t q = u & 3u;
    return core::Philox::to_uniform_float(q == 0 ? w0 : q == 1 ? w1 : q == 2 ? w2 : w3);
  }
}

// Gamma(alpha[j], 1) draws of n <= kGbBlock elements (their log when log_space), from the streams (ilo, ihi),
// starting at uniform number s[j] of each; s[j] is advanced past the uniforms the draw consumed (the Beta
// sampler's second draw continues there). Invalid alpha consume nothing, as in core::gamma_draw.
template <typename T>
GK_HD_FORCE void gb_draw(int n, uint64_t seed, const T* alpha, const uint32_t* ilo, const uint32_t* ihi,
                         uint32_t* s, bool log_space, T* out) {
  constexpr uint32_t U = gb_words<T>::per_block;
  T d[kGbBlock], c[kGbBlock], t[kGbBlock];
  uint32_t tries[kGbBlock];
  unsigned char special[kGbBlock];
  int act[kGbBlock];
  for (int e = 0; e < n; ++e) {
    const T al = alpha[e];
    special[e] = !(al > T(0)) || !(al < core::infinity<T>());
    const T a = special[e] ? T(1) : (al < T(1) ? al + T(1) : al);
    d[e] = a - T(1) / T(3);
    c[e] = T(1) / core::gk_sqrt(T(9) * d[e]);
    t[e] = T(1);
    tries[e] = core::kGammaMaxTries;
  }
  int m = 0;
  for (int e = 0; e < n; ++e) {
    act[m] = e;
    m += special[e] ? 0 : 1;
  }
  uint32_t b0[kGbBlock], b1[kGbBlock], cl[kGbBlock], ch[kGbBlock];
  uint32_t w0[kGbBlock], w1[kGbBlock], w2[kGbBlock], w3[kGbBlock], v0[kGbBlock], v1[kGbBlock], v2[kGbBlock],
      v3[kGbBlock];
  T cd[kGbBlock], cc[kGbBlock], ct[kGbBlock];
  unsigned char acc[kGbBlock];
  for (uint32_t k = 0; m > 0 && k < uint32_t(core::kGammaMaxTries); ++k) {
    // try k takes uniforms s + 3k, s + 3k + 1, s + 3k + 2: blocks b0 = (s + 3k) / U and b1 = (s + 3k + 2) / U
    for (int j = 0; j < m; ++j) {
      const int e = act[j];
      const uint32_t u0 = s[e] + 3u * k;
      b0[j] = u0 / U;
      b1[j] = (u0 + 2u) / U;
      cl[j] = ilo[e];
      ch[j] = ihi[e];
      cd[j] = d[e];
      cc[j] = c[e];
      ct[j] = t[e];
    }
    gb_philox(m, seed, b0, cl, ch, w0, w1, w2, w3);
    gb_philox(m, seed, b1, cl, ch, v0, v1, v2, v3);
    T cx2[kGbBlock], cu[kGbBlock];
#pragma omp simd
    for (int j = 0; j < m; ++j) {
      const uint32_t u0 = s[act[j]] + 3u * k;
      T u[3];
      for (int q = 0; q < 3; ++q) {
        const bool first = (u0 + q) / U == b0[j];
        u[q] = gb_uniform<T>(u0 + q, first ? w0[j] : v0[j], first ? w1[j] : v1[j], first ? w2[j] : v2[j],
                             first ? w3[j] : v3[j]);
      }
      // core::gamma_draw's try, with log_pos for log; the squeeze here, the log test below for the few lanes
      // the squeeze does not accept (acc 2)
      const T x = core::gk_sqrt(T(-2) * core::log_pos(u[0])) * core::cos_two_pi(u[1]);
      const T tt = T(1) + cc[j] * x;
      const bool pos = tt > T(0);
      const T x2 = x * x;
      cx2[j] = x2;
      cu[j] = u[2];
      ct[j] = pos ? tt : ct[j];
      acc[j] = !pos ? 0 : (u[2] < T(1) - T(0.0331) * x2 * x2 ? 1 : 2);
    }
    for (int j = 0; j < m; ++j) {
      if (acc[j] != 2) continue;
      const T tp = ct[j], v = tp * tp * tp;
      acc[j] = core::log_pos(cu[j]) < T(0.5) * cx2[j] + cd[j] * (T(1) - v + T(3) * core::log_pos(tp));
    }
    int m2 = 0;
    for (int j = 0; j < m; ++j) {
      const int e = act[j];
      t[e] = ct[j];
      if (acc[j]) tries[e] = k + 1;
      act[m2] = e;
      m2 += acc[j] ? 0 : 1;
    }
    m = m2;
  }
  // the boost's uniform (number s + 3 tries) for alpha < 1, then the sample or its logarithm
  int nb = 0;
  for (int e = 0; e < n; ++e) {
    act[nb] = e;
    nb += !special[e] && alpha[e] < T(1) ? 1 : 0;
  }
  T lu[kGbBlock] = {};
  for (int j = 0; j < nb; ++j) {
    const int e = act[j];
    b0[j] = (s[e] + 3u * tries[e]) / U;
    cl[j] = ilo[e];
    ch[j] = ihi[e];
  }
  gb_philox(nb, seed, b0, cl, ch, w0, w1, w2, w3);
  for (int j = 0; j < nb; ++j) {
    const int e = act[j];
    lu[e] = core::log_pos(gb_uniform<T>(s[e] + 3u * tries[e], w0[j], w1[j], w2[j], w3[j]));
  }
#pragma omp simd
  for (int e = 0; e < n; ++e) {
    const bool boost = alpha[e] < T(1);
    T lg = core::log_pos(d[e] * (t[e] * t[e] * t[e]));  // gamma_draw's log d + 3 log t, one log (d t^3 normal)
    if (boost) lg += lu[e] / alpha[e];
    out[e] = special[e] ? (alpha[e] > T(0) ? core::infinity<T>() : core::quiet_nan<T>()) : lg;
    s[e] += special[e] ? 0u : 3u * tries[e] + (boost ? 1u : 0u);
  }
  if (!log_space) {
    for (int e = 0; e < n; ++e) {
      if (special[e]) continue;
      out[e] = alpha[e] < T(1) ? core::gk_exp(out[e]) : d[e] * (t[e] * t[e] * t[e]);
    }
  }
}

}  // namespace cpu
}  // namespace gradkern
