// CUDA kernels for the ARMS copula ops: the same core bodies as csrc/cpu/copula.cpp.
//
// Random numbers: one Philox state per launch (cuda/host.cuh), unpacked on the device. Column j reads the Philox
// stream (seed, subsequence = j) from the launch's offset; `increment` covers the documented draw
// budget of one column (core::copula_draw_words, rounded up to whole 4-word blocks).
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/native/cuda/Loops.cuh>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <vector>

#include "core/philox.h"
#include "cuda/host.cuh"
#include "ops/copula.h"

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
  TORCH_CHECK(!like.defined() || like.is_cuda(), "gradkern.", op, ": expected a CUDA tensor, got ",
              like.device());
  const c10::cuda::OptionalCUDAGuard guard(like.defined() ? std::optional<c10::Device>(like.device())
                                                          : std::nullopt);
  at::Tensor out = ops::copula_output(op, like, n);
  const int64_t m = like.numel();
  if (m == 0) return out;
  const int threads = 256;
  const int blocks = cuda::grid_blocks(m, threads);
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "copula_sample", [&] {
    const int64_t words = core::copula_draw_words<scalar_t>(n, Gaussian);
    const uint64_t increment = static_cast<uint64_t>((words + 3) / 4 * 4);
    const at::PhiloxCudaState rng_state = cuda::philox_state(generator, increment);
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

// Elementwise ops: the shared functors of ops/copula.h, each called through a non-inlined device
// function of the compute type. gpu_kernel instantiates several loop variants (vectorised at three
// widths, unrolled, strided, casting) per dtype; with the core inlined into each of them ptxas took
// over 20 minutes on this file (sm_90, -O3), the longest step of the whole build. Out of line, the core
// is compiled once per compute type (half and bfloat16 share float's), and the results are the same.
template <typename acc_t>
__device__ __noinline__ acc_t dirichlet_rho_device(acc_t p, int64_t n, core::DirichletMode mode) {
  return ops::DirichletRhoFn<acc_t, acc_t>{n, mode}(p);
}

__device__ __noinline__ double gaussian_rho_device(double p, int64_t n) { return ops::GaussianRhoFn<double>{n}(p); }

template <typename acc_t>
__device__ __noinline__ acc_t bvn_device(acc_t h, acc_t k, acc_t r) {
  return ops::BvnFn<acc_t, acc_t>{}(h, k, r);
}

template <typename scalar_t>
struct DirichletRhoDevice {
  int64_t n;
  core::DirichletMode mode;
  __device__ scalar_t operator()(scalar_t p) const {
    using acc_t = at::opmath_type<scalar_t>;
    return static_cast<scalar_t>(dirichlet_rho_device<acc_t>(static_cast<acc_t>(p), n, mode));
  }
};

// GaussianRhoFn evaluates every dtype in double and rounds once; so does this.
template <typename scalar_t>
struct GaussianRhoDevice {
  int64_t n;
  __device__ scalar_t operator()(scalar_t p) const {
    return static_cast<scalar_t>(gaussian_rho_device(static_cast<double>(p), n));
  }
};

template <typename scalar_t>
struct BvnDevice {
  __device__ scalar_t operator()(scalar_t h, scalar_t k, scalar_t r) const {
    using acc_t = at::opmath_type<scalar_t>;
    return static_cast<scalar_t>(bvn_device<acc_t>(static_cast<acc_t>(h), static_cast<acc_t>(k), static_cast<acc_t>(r)));
  }
};

at::Tensor dirichlet_copula_rho(const at::Tensor& p, int64_t n, c10::string_view mode) {
  const auto m = ops::dirichlet_mode(mode);
  auto iter = ops::copula_rho_iter("dirichlet_copula_rho", p, n);
  if (iter.numel() == 0) return iter.output();
  const c10::cuda::OptionalCUDAGuard guard(iter.device(0));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.common_dtype(), "dirichlet_copula_rho", [&] {
    at::native::gpu_kernel(iter, DirichletRhoDevice<scalar_t>{n, m});
  });
  return iter.output();
}

at::Tensor gaussian_copula_rho(const at::Tensor& p, int64_t n) {
  auto iter = ops::copula_rho_iter("gaussian_copula_rho", p, n);
  if (iter.numel() == 0) return iter.output();
  const c10::cuda::OptionalCUDAGuard guard(iter.device(0));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.common_dtype(), "gaussian_copula_rho", [&] {
    at::native::gpu_kernel(iter, GaussianRhoDevice<scalar_t>{n});
  });
  return iter.output();
}

at::Tensor bivariate_normal_cdf(const at::Tensor& h, const at::Tensor& k, const at::Tensor& r) {
  auto iter = ops::bvn_iter(h, k, r);
  if (iter.numel() == 0) return iter.output();
  const c10::cuda::OptionalCUDAGuard guard(iter.device(0));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.common_dtype(), "bivariate_normal_cdf", [&] {
    at::native::gpu_kernel(iter, BvnDevice<scalar_t>{});
  });
  return iter.output();
}

}  // namespace

TORCH_LIBRARY_IMPL(gradkern, CUDA, m) {
#define GK_REGISTER(NAME) m.impl(#NAME, &NAME);
  GK_COPULA_OPS(GK_REGISTER)
#undef GK_REGISTER
}

}  // namespace gradkern
