// CUDA kernel of the fused antithetic Gaussian sampler: the same per-row body as
// csrc/cpu/antithetic.cpp (csrc/core/antithetic.h), one thread per row. Rows are the trailing
// (contiguous) dims, so consecutive threads read and write consecutive addresses of each of the 2k lines.
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "ops/antithetic.h"

namespace gradkern {
namespace {

template <typename T>
__global__ void antithetic_kernel(const T* noise, T* out, int64_t k, int64_t rows, core::AntitheticMethod method,
                                  core::AntitheticReflection reflection, core::ReflectTable tab, double lgamma_a) {
  const int64_t step = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; b < rows; b += step) {
    core::antithetic_standardized_rows<T, 1>(noise + b, out + b, k, rows, 1, method, reflection, tab, lgamma_a);
  }
}

at::Tensor antithetic_normal_standardized(const at::Tensor& noise, const at::Tensor& table, double u_lo, double u_hi,
                                          int64_t method, int64_t reflection) {
  TORCH_CHECK(noise.is_cuda(), "gradkern.antithetic_normal_standardized: expected a CUDA tensor, got ",
              noise.device());
  const c10::cuda::CUDAGuard guard(noise.device());
  auto p = ops::antithetic::prepare(noise, table, u_lo, u_hi, method, reflection);
  if (p.rows == 0) return p.out;
  const core::ReflectTable tab = ops::antithetic::table_view(p, u_lo, u_hi);
  const int threads = 256;
  const int64_t max_blocks = static_cast<int64_t>(at::cuda::getCurrentDeviceProperties()->multiProcessorCount) * 8;
  const int blocks = static_cast<int>(std::min<int64_t>((p.rows + threads - 1) / threads, max_blocks));
  AT_DISPATCH_FLOATING_TYPES(p.out.scalar_type(), "antithetic_normal_standardized", [&] {
    antithetic_kernel<scalar_t><<<blocks, threads, 0, at::cuda::getCurrentCUDAStream()>>>(
        p.noise.const_data_ptr<scalar_t>(), p.out.mutable_data_ptr<scalar_t>(), p.k, p.rows, p.method,
        p.reflection, tab, p.lgamma_a);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return p.out;
}

}  // namespace

TORCH_LIBRARY_IMPL(gradkern, CUDA, m) {
  m.impl("antithetic_normal_standardized", &antithetic_normal_standardized);
}

}  // namespace gradkern
