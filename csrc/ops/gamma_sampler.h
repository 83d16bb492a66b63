// The per-element Gamma and Beta sampler bodies shared by the CPU and CUDA kernels (csrc/core/gamma_sampler.h).
// Element i (its position in the contiguous output) draws from its own Philox stream (key = seed,
// subsequence = i), so results depend only on the seed and the element's position, never on the thread
// count, the chunking or the launch configuration.
#pragma once

#include "core/gamma_sampler.h"
#include "core/philox.h"

namespace gradkern {
namespace ops {

// 32-bit outputs one Gamma draw may consume (a double uniform takes two words), rounded up to whole
// 4-word Philox blocks; a Beta element makes two draws. The CUDA kernels advance the generator's offset
// by this much per launch.
constexpr uint64_t kGammaWordsPerDraw = ((2ull * core::kGammaMaxUniforms + 3) / 4) * 4;
constexpr uint64_t kBetaWordsPerElement = 2 * kGammaWordsPerDraw;

template <typename acc_t>
GK_HD acc_t gamma_sample_element(acc_t alpha, uint64_t seed, uint64_t index, uint64_t offset, bool log_space) {
  core::Philox rng(seed, index, offset);
  core::PhiloxUniform<acc_t> uniform(rng);
  return core::gamma_draw<acc_t>(alpha, uniform, log_space);
}

template <typename acc_t>
GK_HD acc_t beta_sample_element(acc_t a, acc_t b, uint64_t seed, uint64_t index, uint64_t offset, acc_t lo, acc_t hi) {
  core::Philox rng(seed, index, offset);
  core::PhiloxUniform<acc_t> uniform(rng);
  return core::beta_draw<acc_t>(a, b, uniform, lo, hi);
}

// The open unit interval's ends a Beta sample is clamped into, [tiny, 1 - eps/2] of the output dtype
// (torch's Beta and Dirichlet clamp theirs likewise, so log_prob stays finite); half and bfloat16 use
// float's, then round.
template <typename scalar_t> struct unit_clamp {
  static constexpr double lo = sizeof(scalar_t) == 8 ? 2.2250738585072014e-308 : 1.17549435e-38;
  static constexpr double hi = sizeof(scalar_t) == 8 ? 1.0 - 1.1102230246251565e-16 : 1.0 - 5.9604644775390625e-08;
};

}  // namespace ops
}  // namespace gradkern
