// CUDA kernels for the ARMS copula ops: the same core bodies as csrc/cpu/copula.cpp.
//
// Random numbers: under the generator's mutex, philox_cuda_state(increment) once per launch (CUDA-graph
// safe; the seed fields are never read directly), unpacked on the device. Column j reads the Philox
// stream (seed, subsequence = j) from the launch's offset; `increment` covers the documented draw
// budget of one column (core::copula_draw_words, rounded up to whole 4-word blocks).
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGeneratorImpl.h>
#include <ATen/cuda/PhiloxUtils.cuh>
#include <ATen/native/cuda/Loops.cuh>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <mutex>
#include <vector>

#include "core/copula.h"
#include "core/philox.h"
#include "ops/tensor_checks.h"

namespace gradkern {
namespace {

template <typename T, bool Gaussian>
__global__ void copula_kernel(T* out, int64_t n, int64_t m, at::PhiloxCudaState philox_args) {
  const auto seeds = at::cuda::philox::unpack(philox_args);
  const uint64_t seed = std::get<0>(seeds), offset = std::get<1>(seeds);
  const int64_t step = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < m; j += step) {
    core::Philox src(seed, static_cast<uint64_t>(j), offset);
    if (Gaussian) {
      core::gaussian_copula_sample<T>(n, src, out + j, m);
    } else {
      core::dirichlet_copula_sample<T>(n, src, out + j, m);
    }
  }
}

template <bool Gaussian>
at::Tensor cuda_copula(const char* op, const at::Tensor& like, int64_t n,
                       const std::optional<at::Generator>& generator) {
  TORCH_CHECK(n >= 2, "gradkern.", op, ": n (the number of antithetic samples) must be >= 2, got ", n);
  TORCH_CHECK(like.defined(), "gradkern.", op, ": like is undefined");
  TORCH_CHECK(like.is_cuda(), "gradkern.", op, ": expected a CUDA tensor, got ", like.device());
  TORCH_CHECK(like.scalar_type() == at::kFloat || like.scalar_type() == at::kDouble, "gradkern.", op,
              ": like must be a float32 or float64 tensor (it sets the output dtype), got ", like.scalar_type());
  const c10::cuda::CUDAGuard guard(like.device());
  std::vector<int64_t> shape{n};
  shape.insert(shape.end(), like.sizes().begin(), like.sizes().end());
  at::Tensor out = at::empty(shape, like.options().memory_format(at::MemoryFormat::Contiguous));
  const int64_t m = like.numel();
  if (m == 0) return out;
  const int threads = 256;
  const int64_t max_blocks = static_cast<int64_t>(at::cuda::getCurrentDeviceProperties()->multiProcessorCount) * 8;
  const int blocks = static_cast<int>(std::min<int64_t>((m + threads - 1) / threads, max_blocks));
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "copula_sample", [&] {
    const int64_t words = core::copula_draw_words<scalar_t>(n, Gaussian);
    const uint64_t increment = static_cast<uint64_t>((words + 3) / 4 * 4);
    at::PhiloxCudaState rng_state;
    {
      auto* gen = at::get_generator_or_default<at::CUDAGeneratorImpl>(generator,
                                                                      at::cuda::detail::getDefaultCUDAGenerator());
      std::lock_guard<std::mutex> lock(gen->mutex_);
      rng_state = gen->philox_cuda_state(increment);
    }
    copula_kernel<scalar_t, Gaussian><<<blocks, threads, 0, at::cuda::getCurrentCUDAStream()>>>(
        out.data_ptr<scalar_t>(), n, m, rng_state);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

at::Tensor dirichlet_copula(const at::Tensor& like, int64_t n, std::optional<at::Generator> generator) {
  return cuda_copula<false>("dirichlet_copula", like, n, generator);
}

at::Tensor gaussian_copula(const at::Tensor& like, int64_t n, std::optional<at::Generator> generator) {
  return cuda_copula<true>("gaussian_copula", like, n, generator);
}

// Elementwise functors (no --extended-lambda needed).
template <typename scalar_t>
struct DirichletRhoFn {
  int64_t n;
  core::DirichletMode mode;
  __device__ scalar_t operator()(scalar_t p) const {
    using acc_t = at::opmath_type<scalar_t>;
    return static_cast<scalar_t>(core::dirichlet_copula_rho<acc_t>(static_cast<acc_t>(p), n, mode));
  }
};

template <typename scalar_t>
struct GaussianRhoFn {
  int64_t n;
  __device__ scalar_t operator()(scalar_t p) const {
    // Evaluated in double for every dtype, as on the CPU.
    return static_cast<scalar_t>(core::gaussian_copula_rho<double>(static_cast<double>(p), n));
  }
};

template <typename scalar_t>
struct BvnFn {
  __device__ scalar_t operator()(scalar_t h, scalar_t k, scalar_t r) const {
    using acc_t = at::opmath_type<scalar_t>;
    return static_cast<scalar_t>(core::bvn_cdf<acc_t>(static_cast<acc_t>(h), static_cast<acc_t>(k),
                                                      static_cast<acc_t>(r)));
  }
};

at::TensorIterator unary_iter(const char* op, const at::Tensor& p, int64_t n) {
  TORCH_CHECK(n >= 2, "gradkern.", op, ": n (the number of antithetic samples) must be >= 2, got ", n);
  ops::check_floating(op, "p", p);
  at::Tensor out;  // undefined: allocated by TensorIterator
  return at::TensorIteratorConfig().add_output(out).add_const_input(p).build();
}

at::Tensor dirichlet_copula_rho(const at::Tensor& p, int64_t n, int64_t mode) {
  TORCH_CHECK(mode >= 0 && mode <= 2, "gradkern.dirichlet_copula_rho: mode must be 0 (oriented), 1 (direct) "
              "or 2 (reflected), got ", mode);
  auto iter = unary_iter("dirichlet_copula_rho", p, n);
  if (iter.numel() == 0) return iter.output();
  const c10::cuda::OptionalCUDAGuard guard(iter.device(0));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.common_dtype(), "dirichlet_copula_rho", [&] {
    at::native::gpu_kernel(iter, DirichletRhoFn<scalar_t>{n, static_cast<core::DirichletMode>(mode)});
  });
  return iter.output();
}

at::Tensor gaussian_copula_rho(const at::Tensor& p, int64_t n) {
  auto iter = unary_iter("gaussian_copula_rho", p, n);
  if (iter.numel() == 0) return iter.output();
  const c10::cuda::OptionalCUDAGuard guard(iter.device(0));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.common_dtype(), "gaussian_copula_rho", [&] {
    at::native::gpu_kernel(iter, GaussianRhoFn<scalar_t>{n});
  });
  return iter.output();
}

at::Tensor bivariate_normal_cdf(const at::Tensor& h, const at::Tensor& k, const at::Tensor& r) {
  const char* op = "bivariate_normal_cdf";
  ops::check_floating(op, "h", h);
  ops::check_floating(op, "k", k);
  ops::check_floating(op, "r", r);
  TORCH_CHECK(h.scalar_type() == k.scalar_type() && h.scalar_type() == r.scalar_type(), "gradkern.", op,
              ": h, k and r must have the same dtype, got ", h.scalar_type(), ", ", k.scalar_type(), " and ",
              r.scalar_type());
  at::Tensor out;
  auto iter = at::TensorIteratorConfig()
                  .add_output(out)
                  .add_const_input(h)
                  .add_const_input(k)
                  .add_const_input(r)
                  .build();
  if (iter.numel() == 0) return iter.output();
  const c10::cuda::OptionalCUDAGuard guard(iter.device(0));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.common_dtype(), "bivariate_normal_cdf", [&] {
    at::native::gpu_kernel(iter, BvnFn<scalar_t>{});
  });
  return iter.output();
}

}  // namespace

TORCH_LIBRARY_IMPL(gradkern, CUDA, m) {
  m.impl("dirichlet_copula", &dirichlet_copula);
  m.impl("gaussian_copula", &gaussian_copula);
  m.impl("dirichlet_copula_rho", &dirichlet_copula_rho);
  m.impl("gaussian_copula_rho", &gaussian_copula_rho);
  m.impl("bivariate_normal_cdf", &bivariate_normal_cdf);
}

}  // namespace gradkern
