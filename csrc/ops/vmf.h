// The per-element von Mises-Fisher bodies shared by the CPU and CUDA kernels (csrc/core/vmf.h): the sampler of
// u = 1 - mu^T z on the element's own Philox stream (key = seed, subsequence = element index), so results
// depend only on the seed and the element's position, never on the thread count or launch configuration.
#pragma once

#include <ATen/ATen.h>

#include "core/philox.h"
#include "core/vmf.h"
#include "ops/gamma_sampler.h"

namespace gradkern {
namespace ops {

// 32-bit words one element may consume: per proposal two Gamma draws and one uniform (two words each in
// double). The CUDA kernel advances the generator's offset by this much per launch.
constexpr uint64_t kVmfWordsPerElement = core::kVmfMaxProposals * (2 * kGammaWordsPerDraw + 4);

template <typename acc_t>
GK_HD acc_t vmf_sample_element(acc_t kappa, int d, uint64_t seed, uint64_t index, uint64_t offset) {
  core::Philox rng(seed, index, offset);
  core::PhiloxUniform<acc_t> uniform(rng);
  return core::vmf_sample_u<acc_t>(kappa, d, uniform, core::kVmfMaxProposals);
}

// d is the sphere's ambient dimension (S^(d-1) in R^d).
inline void check_vmf_dim(const char* op, int64_t d) {
  TORCH_CHECK(d >= 2 && d <= (int64_t(1) << 30), "gradkern.", op, ": d (the dimension of the space the sphere "
              "lies in) must be an integer >= 2, got ", d);
}

inline void check_vmf_moment_order(const char* op, int64_t k) {
  TORCH_CHECK(k >= 2 && k <= core::vmf_detail::kVmfMaxMoment, "gradkern.", op, ": k (the order of the central "
              "moment) must be in [2, ", core::vmf_detail::kVmfMaxMoment, "], got ", k);
}

}  // namespace ops
}  // namespace gradkern
