// Blocked CPU driver of the von Mises sampler (host only; included by csrc/cpu/vonmises.cpp). All the
// numerics are the core's (csrc/core/vonmises_sampler.h, csrc/core/philox.h); this file only arranges the
// loops so that they vectorize.
#pragma once

#include <algorithm>
#include <cstdint>

#include "core/philox.h"
#include "core/vonmises_cdf.h"  // vm_bad: the domain check shared with the CDF
#include "core/vonmises_sampler.h"


namespace gradkern {
namespace cpu {

// ---- von Mises: blocked CPU driver over the core sampler (csrc/core/vonmises_sampler.h) -------------------
// The per-element sampler (ops::vonmises_sample_element, used as is by the CUDA kernel) is a loop of
// scalar Philox blocks and proposals with a data-dependent exit. Here the same stream layout and the
// same core functions run in passes over a block of up to kVmBlock elements, each pass a plain loop that
// GCC vectorizes: (1) the per-kappa constants, (2) Philox block b of every active element, one round at
// a time over all of them, (3) the proposal(s) held in that block and their acceptance, (4) compaction
// of the rejected elements, which go through (2)-(3) again with block b + 1, (5) the angle of the
// accepted proposal. Element i consumes exactly the words ops::vonmises_sample_element would, so the
// result depends only on the seed and i (not on the block or chunk boundaries, hence not on the thread
// count), and every element is settled within kVonMisesMaxProposals proposals (the last one is kept).
constexpr int kVmBlock = 256;

// Proposals held in Philox block `blk` of the streams of the m elements given by their constants
// (kap, gam, krm) and indices (ilo, ihi): writes the (last) proposal and whether one was accepted.
template <typename T>
GK_HD_FORCE void vm_propose_block(int m, uint64_t seed, uint32_t blk, const T* kap, const T* gam,
                                   const T* krm, const uint32_t* ilo, const uint32_t* ihi, T* num, T* den,
                                   unsigned char* acc) {
  using core::Philox;
  uint32_t c0[kVmBlock], c1[kVmBlock], c2[kVmBlock], c3[kVmBlock];
  for (int j = 0; j < m; ++j) {  // counter = (block, 0, element index): Philox's stream layout
    c0[j] = blk;
    c1[j] = 0u;
    c2[j] = ilo[j];
    c3[j] = ihi[j];
  }
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int r = 0; r < 10; ++r) {
    for (int j = 0; j < m; ++j) Philox::philox_round(c0[j], c1[j], c2[j], c3[j], k0, k1);
    Philox::bump_key(k0, k1);
  }
  for (int j = 0; j < m; ++j) {
    core::VmSamplerParams<T> p;
    p.kappa = kap[j];
    p.gamma = gam[j];
    p.krm1 = krm[j];
    if constexpr (sizeof(T) == sizeof(float)) {
      // two proposals per block: (w0, w1) then (w2, w3); keep the first accepted, else the second
      T n0, d0, n1, d1;
      const bool a0 = core::vonmises_propose(p, Philox::to_uniform_float(c0[j]), Philox::to_uniform_float(c1[j]), n0, d0);
      const bool a1 = core::vonmises_propose(p, Philox::to_uniform_float(c2[j]), Philox::to_uniform_float(c3[j]), n1, d1);
      num[j] = a0 ? n0 : n1;
      den[j] = a0 ? d0 : d1;
      acc[j] = static_cast<unsigned char>(a0 | a1);
    } else {
      T n0, d0;
      const bool a0 = core::vonmises_propose(p, Philox::to_uniform_double(c0[j], c1[j]),
                                             Philox::to_uniform_double(c2[j], c3[j]), n0, d0);
      num[j] = n0;
      den[j] = d0;
      acc[j] = static_cast<unsigned char>(a0);
    }
  }
}

template <typename T, typename S>
GK_HD_FORCE void vm_sample_range(const S* kin, S* out, int64_t begin, int64_t end, uint64_t seed) {
  // Philox blocks per element: float holds two proposals per block, double one.
  constexpr uint32_t max_blocks = sizeof(T) == sizeof(float) ? (core::kVonMisesMaxProposals + 1) / 2
                                                             : core::kVonMisesMaxProposals;
  T kap[kVmBlock], gam[kVmBlock], krm[kVmBlock], num[kVmBlock], den[kVmBlock];
  uint32_t ilo[kVmBlock], ihi[kVmBlock];
  unsigned char acc[kVmBlock];
  int act[kVmBlock];
  T ck[kVmBlock], cg[kVmBlock], cr[kVmBlock], cn[kVmBlock], cd[kVmBlock];
  uint32_t cl[kVmBlock], ch[kVmBlock];
  for (int64_t b0 = begin; b0 < end; b0 += kVmBlock) {
    const int n = static_cast<int>(std::min<int64_t>(kVmBlock, end - b0));
    for (int e = 0; e < n; ++e) {
      const T k = static_cast<T>(kin[b0 + e]);
      // bad kappa (<= 0, NaN, inf): any valid constants here, NaN written in the last pass
      const core::VmSamplerParams<T> p = core::vonmises_sampler_params(core::vm_detail::vm_bad(T(0), k) ? T(1) : k);
      kap[e] = p.kappa;
      gam[e] = p.gamma;
      krm[e] = p.krm1;
      const uint64_t i = static_cast<uint64_t>(b0 + e);
      ilo[e] = static_cast<uint32_t>(i);
      ihi[e] = static_cast<uint32_t>(i >> 32);
    }
    vm_propose_block<T>(n, seed, 0u, kap, gam, krm, ilo, ihi, num, den, acc);
    int m = 0;
    for (int e = 0; e < n; ++e) {
      act[m] = e;
      m += acc[e] ? 0 : 1;
    }
    for (uint32_t blk = 1; m > 0 && blk < max_blocks; ++blk) {
      for (int j = 0; j < m; ++j) {
        const int e = act[j];
        ck[j] = kap[e];
        cg[j] = gam[e];
        cr[j] = krm[e];
        cl[j] = ilo[e];
        ch[j] = ihi[e];
      }
      vm_propose_block<T>(m, seed, blk, ck, cg, cr, cl, ch, cn, cd, acc);
      int m2 = 0;
      for (int j = 0; j < m; ++j) {
        const int e = act[j];
        num[e] = cn[j];
        den[e] = cd[j];
        act[m2] = e;
        m2 += acc[j] ? 0 : 1;
      }
      m = m2;
    }
    for (int e = 0; e < n; ++e) {
      const T k = static_cast<T>(kin[b0 + e]);
      const T x = core::vonmises_proposal_angle(num[e], den[e]);
      out[b0 + e] = static_cast<S>(core::vm_detail::vm_bad(T(0), k) ? core::quiet_nan<T>() : x);
    }
  }
}

}  // namespace cpu
}  // namespace gradkern
