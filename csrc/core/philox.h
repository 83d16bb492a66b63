// Philox4x32-10 counter-based generator (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy
// as 1, 2, 3", SC'11), written from the published round function:
//   (hi0, lo0) = mulhilo(0xD2511F53, c0); (hi1, lo1) = mulhilo(0xCD9E8D57, c2)
//   c' = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0);  key bump k0 += 0x9E3779B9, k1 += 0xBB67AE85
// ten rounds per 128-bit block. Host and device, no torch dependency.
//
// Stream layout (so results do not depend on the thread count): key = seed (64 bits), counter words
// (c2, c3) = subsequence (the element index), (c0, c1) = block index within the element's stream.
// `offset` counts 32-bit outputs already consumed from the element's stream (offset / 4 selects the
// block, offset % 4 the word), so a kernel can resume a stream where a previous call stopped.
#pragma once

#include <cstdint>
#include <cstring>

#include "common.h"

namespace gradkern {
namespace core {

struct Philox {
  uint32_t key0, key1;
  uint32_t ctr[4];
  uint32_t out[4];
  int idx;  // next word of `out` to hand out; 4 = block exhausted

  GK_HD Philox(uint64_t seed, uint64_t subsequence, uint64_t offset) {
    key0 = static_cast<uint32_t>(seed);
    key1 = static_cast<uint32_t>(seed >> 32);
    const uint64_t block = offset >> 2;
    ctr[0] = static_cast<uint32_t>(block);
    ctr[1] = static_cast<uint32_t>(block >> 32);
    ctr[2] = static_cast<uint32_t>(subsequence);
    ctr[3] = static_cast<uint32_t>(subsequence >> 32);
    idx = 4;
    const int skip = static_cast<int>(offset & 3u);
    if (skip != 0) {
      generate_block();
      idx = skip;
    }
  }

  static GK_HD_FORCE void mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
    const uint64_t p = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
    hi = static_cast<uint32_t>(p >> 32);
    lo = static_cast<uint32_t>(p);
  }

  // One round on the counter words, with the round's key (k0, k1). Exposed separately so that a CPU
  // loop can run one round over many counters at a time (it vectorizes; see csrc/cpu/vonmises.cpp).
  static GK_HD_FORCE void philox_round(uint32_t& c0, uint32_t& c1, uint32_t& c2, uint32_t& c3, uint32_t k0, uint32_t k1) {
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo(0xD2511F53u, c0, hi0, lo0);
    mulhilo(0xCD9E8D57u, c2, hi1, lo1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
  }
  static GK_HD_FORCE void bump_key(uint32_t& k0, uint32_t& k1) {
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }

  // One Philox4x32-10 evaluation of (counter, key).
  static GK_HD void philox4x32_10(const uint32_t in[4], uint32_t k0, uint32_t k1, uint32_t res[4]) {
    uint32_t c0 = in[0], c1 = in[1], c2 = in[2], c3 = in[3];
    for (int r = 0; r < 10; ++r) {
      philox_round(c0, c1, c2, c3, k0, k1);
      bump_key(k0, k1);
    }
    res[0] = c0;
    res[1] = c1;
    res[2] = c2;
    res[3] = c3;
  }

  GK_HD void generate_block() {
    philox4x32_10(ctr, key0, key1, out);
    // advance the 64-bit block counter (c0, c1)
    if (++ctr[0] == 0u) ++ctr[1];
    idx = 0;
  }

  GK_HD uint32_t next_uint32() {
    if (idx >= 4) generate_block();
    return out[idx++];
  }

  GK_HD uint64_t next_uint64() {
    const uint64_t hi = next_uint32();
    const uint64_t lo = next_uint32();
    return (hi << 32) | lo;
  }

  // Uniform in the open interval (0, 1): 23 random bits on the grid k 2^-23, shifted by half a step
  // (2^-24); extremes 2^-24 and 1 - 2^-24 are exactly representable, so neither 0 nor 1 occurs.
  // (int32 conversion: the value is < 2^23, and signed conversion vectorizes where unsigned does not.)
  static GK_HD_FORCE float to_uniform_float(uint32_t w) {
    return static_cast<float>(static_cast<int32_t>(w >> 9)) * 1.1920928955078125e-07f + 5.9604644775390625e-08f;
  }
  // Same with 52 bits (hi word first): extremes 2^-53 and 1 - 2^-53 (both representable). The 52 bits
  // are placed in the mantissa of a double in [1, 2) and 1 is subtracted (exact), which equals
  // m 2^-52 exactly and, unlike an int64 -> double conversion, vectorizes without AVX-512.
  static GK_HD_FORCE double to_uniform_double(uint32_t hi, uint32_t lo) {
    const uint64_t m = ((static_cast<uint64_t>(hi) << 32) | lo) >> 12;
    const uint64_t bits = 0x3FF0000000000000ull | m;
    double d;
    memcpy(&d, &bits, sizeof(d));
    return (d - 1.0) + 1.110223024625156540424e-16;
  }
  GK_HD float uniform_float() { return to_uniform_float(next_uint32()); }
  GK_HD double uniform_double() {
    const uint32_t hi = next_uint32();
    const uint32_t lo = next_uint32();
    return to_uniform_double(hi, lo);
  }
  template <typename T> GK_HD T uniform();
};

template <> GK_HD float Philox::uniform<float>() { return uniform_float(); }
template <> GK_HD double Philox::uniform<double>() { return uniform_double(); }

// Adapter giving the `next_uniform()` call used by the samplers (T in (0, 1)).
template <typename T> struct PhiloxUniform {
  Philox& gen;
  GK_HD explicit PhiloxUniform(Philox& g) : gen(g) {}
  GK_HD T operator()() { return gen.template uniform<T>(); }
};

}  // namespace core
}  // namespace gradkern
