// Host-side helpers shared by the CUDA kernels: the Philox state a random op takes from a
// torch.Generator, and the launch grid of the grid-stride loops.
#pragma once

#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGeneratorImpl.h>
#include <ATen/cuda/PhiloxUtils.cuh>

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <optional>

namespace gradkern {
namespace cuda {

// Under the generator's mutex, philox_cuda_state(increment) once per launch, unpacked on the device by
// at::cuda::philox::unpack. The seed fields are never read on the host, which is what keeps the draw
// valid under CUDA-graph capture (the offset then lives in device memory and advances per replay).
// increment: the most Philox words one element (or copula column) may consume, rounded up to whole
// 4-word blocks by the caller.
inline at::PhiloxCudaState philox_state(const std::optional<at::Generator>& generator, uint64_t increment) {
  auto* gen = at::get_generator_or_default<at::CUDAGeneratorImpl>(generator, at::cuda::detail::getDefaultCUDAGenerator());
  std::lock_guard<std::mutex> lock(gen->mutex_);
  return gen->philox_cuda_state(increment);
}

// Blocks for a grid-stride loop over n items: enough to fill the device (8 blocks per SM), never more
// than the items need.
inline int grid_blocks(int64_t n, int threads) {
  const int64_t max_blocks = static_cast<int64_t>(at::cuda::getCurrentDeviceProperties()->multiProcessorCount) * 8;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>((n + threads - 1) / threads, max_blocks)));
}

}  // namespace cuda
}  // namespace gradkern
