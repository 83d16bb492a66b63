// The per-element von Mises sampler body shared by the CPU and CUDA kernels. Each element i draws from its own
// Philox stream (key = seed, subsequence = i), so results depend only on the seed and the element's
// position, never on the thread count or launch configuration.
#pragma once

#include "core/philox.h"
#include "core/vonmises_sampler.h"

namespace gradkern {
namespace ops {

// 32-bit outputs one von Mises element may consume: two uniforms per proposal, a double uniform takes
// two 32-bit words. The CUDA kernel advances the generator's offset by this much per launch.
constexpr uint64_t kVonMisesWordsPerElement = 4ull * core::kVonMisesMaxProposals;

template <typename acc_t>
GK_HD acc_t vonmises_sample_element(acc_t kappa, uint64_t seed, uint64_t index, uint64_t offset) {
  core::Philox rng(seed, index, offset);
  core::PhiloxUniform<acc_t> uniform(rng);
  return core::vonmises_sample<acc_t>(kappa, uniform, core::kVonMisesMaxProposals);
}

}  // namespace ops
}  // namespace gradkern
