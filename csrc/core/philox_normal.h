// gradkern numerical core: standard normals from counter-based Philox4x32-10 blocks by Box-Muller, without
// calls or branches (CPU loops over blocks vectorize; CUDA runs one block per thread).
//
// Stream layout: normal g of a tensor of standard normals (flat, row-major) comes from Philox block
// b = g / per_block, as the other samplers' streams are laid out (philox.h): key = seed, counter words
// (c2, c3) = b (the subsequence), (c0, c1) = `offset` (the CPU draws a fresh seed per call and passes 0; CUDA
// passes torch's Philox offset / 4, the generator's position), so a value depends only on (seed, offset, g):
// never on the thread count or the chunking. float: a block's four 32-bit words are four uniforms
// (Philox::to_uniform_float, in (0, 1)), two Box-Muller pairs, four normals; double: two uniforms of 52 bits
// (to_uniform_double), one pair, two normals.
//
// Box-Muller (both outputs used): r = sqrt(-2 log u1), (n1, n2) = r (cos 2 pi u2, sin 2 pi u2). log is the
// branch-free log_pos (special.h, ~1 ulp); sin and cos of 2 pi u2 by vm_detail::sincos_two_pi
// (vonmises_sampler.h: the sampler's polynomials after an exact quadrant reduction).
// The largest |normal| is sqrt(-2 log u_min): 5.8 (float, u_min = 2^-24) and 8.6 (double, 2^-53).
#pragma once

#include <cstdint>

#include "common.h"
#include "philox.h"
#include "special.h"
#include "vonmises_sampler.h"  // vm_detail::vm_sampler_poly: sin(pi x), cos(pi x) for |x| <= 1/4

namespace gradkern {
namespace core {

template <typename T> struct PhiloxNormal;
template <> struct PhiloxNormal<float> { static constexpr int per_block = 4; };
template <> struct PhiloxNormal<double> { static constexpr int per_block = 2; };

// The pair of normals of the uniforms (u1, u2), both in (0, 1).
template <typename T> GK_HD_FORCE void box_muller(T u1, T u2, T& n1, T& n2) {
  const T r = gk_sqrt(T(-2) * log_pos(u1));
  T s, c;
  vm_detail::sincos_two_pi(u2, s, c);
  n1 = r * c;
  n2 = r * s;
}

// The Philox4x32-10 block `block` under (seed, offset) (the stream layout above).
GK_HD_FORCE void philox_normal_words(uint64_t seed, uint64_t offset, uint64_t block, uint32_t w[4]) {
  uint32_t c0 = static_cast<uint32_t>(offset), c1 = static_cast<uint32_t>(offset >> 32);
  uint32_t c2 = static_cast<uint32_t>(block), c3 = static_cast<uint32_t>(block >> 32);
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int r = 0; r < 10; ++r) {
    Philox::philox_round(c0, c1, c2, c3, k0, k1);
    Philox::bump_key(k0, k1);
  }
  w[0] = c0;
  w[1] = c1;
  w[2] = c2;
  w[3] = c3;
}

// The per_block normals of that block: float, two Box-Muller pairs of 32-bit uniforms; double, one pair of
// 52-bit uniforms.
template <typename T> GK_HD_FORCE void philox_normal_block(uint64_t seed, uint64_t offset, uint64_t block, T* out) {
  uint32_t w[4];
  philox_normal_words(seed, offset, block, w);
  if (sizeof(T) == 4) {
    for (int p = 0; p < 2; ++p)
      box_muller<T>(T(Philox::to_uniform_float(w[2 * p])), T(Philox::to_uniform_float(w[2 * p + 1])), out[2 * p],
                    out[2 * p + 1]);
  } else {
    box_muller<T>(T(Philox::to_uniform_double(w[0], w[1])), T(Philox::to_uniform_double(w[2], w[3])), out[0], out[1]);
  }
}

}  // namespace core
}  // namespace gradkern
