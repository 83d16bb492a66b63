// CUDA kernels of the antithetic Gaussian ops: the same per-row bodies as csrc/cpu/antithetic.cpp
// (csrc/core/antithetic.h), one thread per row. Rows are the trailing (contiguous) dims, so consecutive
// threads read and write consecutive addresses of each line. The reflection table is built on the
// host (CompositeExplicitAutograd kernel in cpu/antithetic.cpp) and moved to the device by the caller.
#include <ATen/Dispatch.h>
#include <ATen/native/cuda/Loops.cuh>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "cuda/host.cuh"
#include "ops/antithetic.h"

namespace gradkern {
namespace {

namespace an = ops::antithetic;

template <typename T>
__global__ void antithetic_kernel(const T* noise, T* out, int64_t k, int64_t rows, core::AntitheticMethod method,
                                  core::AntitheticReflection reflection, core::ReflectTable tab, double lgamma_a) {
  const int64_t step = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; b < rows; b += step) {
    core::antithetic_standardized_rows<T, 1>(noise + b, out + b, k, rows, 1, method, reflection, tab, lgamma_a);
  }
}

template <typename T>
__global__ void construction_kernel(const T* z, T* out, int64_t k, int64_t rows, core::AntitheticMethod method) {
  const int64_t step = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; b < rows; b += step) {
    core::antithetic_unit_rows<T, 1>(z + b, out + b, k, rows, 1, method);
  }
}

// chi2_reflect's core (the incomplete gamma function and its inverse behind the table) out of line: the
// elementwise loop's variants (see csrc/cuda/copula.cu) then share one copy instead of inlining it each.
__device__ __noinline__ double chi2_reflect_device(double x, double df, double lgamma_a, core::AntitheticReflection refl,
                                                   core::ReflectTable tab, bool polish) {
  return core::chi2_reflect_value(x, df, lgamma_a, refl, tab, polish);
}

template <typename scalar_t>
struct Chi2ReflectDevice {
  double df, lgamma_a;
  core::AntitheticReflection refl;
  core::ReflectTable tab;
  bool polish;
  __device__ scalar_t operator()(scalar_t x) const {
    return static_cast<scalar_t>(chi2_reflect_device(static_cast<double>(x), df, lgamma_a, refl, tab, polish));
  }
};

at::Tensor antithetic_normal_standardized(const at::Tensor& noise, const at::Tensor& table, double u_lo, double u_hi,
                                          c10::string_view method, c10::string_view reflection) {
  TORCH_CHECK(noise.is_cuda(), "gradkern.antithetic_normal_standardized: expected a CUDA tensor, got ",
              noise.device());
  const c10::cuda::CUDAGuard guard(noise.device());
  auto p = an::prepare(noise, table, u_lo, u_hi, method, reflection);
  if (p.rows == 0) return p.out;
  const int threads = 256;
  const int blocks = cuda::grid_blocks(p.rows, threads);
  AT_DISPATCH_FLOATING_TYPES(p.out.scalar_type(), "antithetic_normal_standardized", [&] {
    antithetic_kernel<scalar_t><<<blocks, threads, 0, at::cuda::getCurrentCUDAStream()>>>(
        p.noise.const_data_ptr<scalar_t>(), p.out.mutable_data_ptr<scalar_t>(), p.k, p.rows, p.method,
        p.reflection, p.tab, p.lgamma_a);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return p.out;
}

at::Tensor antithetic_construction(const at::Tensor& z, c10::string_view method) {
  TORCH_CHECK(z.is_cuda(), "gradkern.antithetic_construction: expected a CUDA tensor, got ", z.device());
  const c10::cuda::CUDAGuard guard(z.device());
  auto p = an::prepare_construction(z, method);
  if (p.rows == 0) return p.out;
  const int threads = 256;
  const int blocks = cuda::grid_blocks(p.rows, threads);
  AT_DISPATCH_FLOATING_TYPES(p.out.scalar_type(), "antithetic_construction", [&] {
    construction_kernel<scalar_t><<<blocks, threads, 0, at::cuda::getCurrentCUDAStream()>>>(
        p.noise.const_data_ptr<scalar_t>(), p.out.mutable_data_ptr<scalar_t>(), p.k, p.rows, p.method);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return p.out;
}

at::Tensor chi2_reflect(const at::Tensor& s, double df, const at::Tensor& table, double u_lo, double u_hi,
                        c10::string_view reflection) {
  TORCH_CHECK(s.is_cuda(), "gradkern.chi2_reflect: expected a CUDA tensor, got ", s.device());
  const c10::cuda::CUDAGuard guard(s.device());
  auto r = an::prepare_reflect(s, df, table, u_lo, u_hi, reflection);
  AT_DISPATCH_FLOATING_TYPES(r.iter.common_dtype(), "chi2_reflect", [&] {
    const bool polish = std::is_same<scalar_t, double>::value;
    at::native::gpu_kernel(r.iter, Chi2ReflectDevice<scalar_t>{r.df, r.lgamma_a, r.reflection, r.tab, polish});
  });
  return r.iter.output();
}

}  // namespace

TORCH_LIBRARY_IMPL(gradkern, CUDA, m) {
  m.impl("antithetic_normal_standardized", &antithetic_normal_standardized);
  m.impl("antithetic_construction", &antithetic_construction);
  m.impl("chi2_reflect", &chi2_reflect);
}

}  // namespace gradkern
