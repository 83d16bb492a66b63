// CUDA kernel of the fused von Mises sampler: the same per-element body as the CPU (csrc/ops/vonmises.h),
// seeded from torch's Philox state so CUDA-graph capture and torch.cuda.manual_seed work as usual.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "cuda/host.cuh"
#include "ops/vonmises.h"
#include "ops/tensor_checks.h"

namespace gradkern {
namespace {

template <typename scalar_t>
__global__ void vonmises_sample_kernel(const scalar_t* __restrict__ kappa, scalar_t* __restrict__ out,
                                       int64_t n, at::PhiloxCudaState philox_args) {
  using acc_t = at::opmath_type<scalar_t>;
  // Read the seed and offset on the device: never dereference them on the host (graph capture).
  const auto seeds = at::cuda::philox::unpack(philox_args);
  const uint64_t seed = std::get<0>(seeds);
  const uint64_t offset = std::get<1>(seeds);
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    out[i] = static_cast<scalar_t>(ops::vonmises_sample_element<acc_t>(
        static_cast<acc_t>(kappa[i]), seed, static_cast<uint64_t>(i), offset));
  }
}

at::Tensor vonmises_sample(const at::Tensor& concentration, std::optional<at::Generator> generator) {
  ops::check_floating("vonmises_sample", "concentration", concentration);
  const c10::cuda::CUDAGuard guard(concentration.device());
  const auto kappa = concentration.contiguous();
  auto out = at::empty_like(kappa, at::MemoryFormat::Contiguous);
  const int64_t n = kappa.numel();
  if (n == 0) return out;
  // Every element owns its subsequence; the offset moves past the most any element can consume.
  const at::PhiloxCudaState philox_args = cuda::philox_state(generator, ops::kVonMisesWordsPerElement);
  constexpr int threads = 256;
  const int blocks = cuda::grid_blocks(n, threads);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, kappa.scalar_type(), "vonmises_sample", [&] {
    vonmises_sample_kernel<scalar_t><<<blocks, threads, 0, at::cuda::getCurrentCUDAStream()>>>(
        kappa.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), n, philox_args);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(gradkern, CUDA, m) {
  m.impl("vonmises_sample", &vonmises_sample);
}

}  // namespace gradkern
