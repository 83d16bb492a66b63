// CUDA kernels of the fused Gamma-family samplers: the same per-element bodies as the CPU
// (csrc/ops/gamma_sampler.h), seeded from torch's Philox state so CUDA-graph capture and
// torch.cuda.manual_seed work as usual. Element i of the contiguous output uses subsequence i.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/ExpandUtils.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "cuda/host.cuh"
#include "ops/gamma_sampler.h"
#include "ops/tensor_checks.h"

namespace gradkern {
namespace {

template <typename scalar_t>
__global__ void gamma_sample_kernel(const scalar_t* __restrict__ alpha, scalar_t* __restrict__ out, int64_t n,
                                    at::PhiloxCudaState philox_args, bool log_space) {
  using acc_t = at::opmath_type<scalar_t>;
  const auto seeds = at::cuda::philox::unpack(philox_args);  // on the device (graph capture)
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    out[i] = static_cast<scalar_t>(ops::gamma_sample_element<acc_t>(
        static_cast<acc_t>(alpha[i]), std::get<0>(seeds), static_cast<uint64_t>(i), std::get<1>(seeds), log_space));
  }
}

template <typename scalar_t>
__global__ void beta_sample_kernel(const scalar_t* __restrict__ a, const scalar_t* __restrict__ b,
                                   scalar_t* __restrict__ out, int64_t n, at::PhiloxCudaState philox_args) {
  using acc_t = at::opmath_type<scalar_t>;
  const auto seeds = at::cuda::philox::unpack(philox_args);
  const acc_t lo = static_cast<acc_t>(ops::unit_clamp<scalar_t>::lo);
  const acc_t hi = static_cast<acc_t>(ops::unit_clamp<scalar_t>::hi);
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    out[i] = static_cast<scalar_t>(ops::beta_sample_element<acc_t>(
        static_cast<acc_t>(a[i]), static_cast<acc_t>(b[i]), std::get<0>(seeds), static_cast<uint64_t>(i),
        std::get<1>(seeds), lo, hi));
  }
}

at::Tensor gamma_sampler(const char* op, const at::Tensor& alpha, std::optional<at::Generator> generator,
                         bool log_space) {
  ops::check_floating(op, "alpha", alpha);
  const c10::cuda::CUDAGuard guard(alpha.device());
  const auto a = alpha.contiguous();
  auto out = at::empty_like(a, at::MemoryFormat::Contiguous);
  const int64_t n = a.numel();
  if (n == 0) return out;
  const at::PhiloxCudaState philox_args = cuda::philox_state(generator, ops::kGammaWordsPerDraw);
  constexpr int threads = 256;
  const int blocks = cuda::grid_blocks(n, threads);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, a.scalar_type(), "gradkern_gamma_sampler", [&] {
    gamma_sample_kernel<scalar_t><<<blocks, threads, 0, at::cuda::getCurrentCUDAStream()>>>(
        a.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), n, philox_args, log_space);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

at::Tensor log_standard_gamma(const at::Tensor& alpha, std::optional<at::Generator> generator) {
  return gamma_sampler("log_standard_gamma", alpha, generator, true);
}

at::Tensor standard_beta(const at::Tensor& a, const at::Tensor& b, std::optional<at::Generator> generator) {
  ops::check_beta_concentrations("standard_beta", a, b);
  // A 0-dim CPU tensor joins the other argument's device (as in torch's binary ops).
  const auto device = (a.dim() == 0 && a.is_cpu()) ? b.device() : a.device();
  const c10::cuda::CUDAGuard guard(device);
  const auto shape = at::infer_size(a.sizes(), b.sizes());
  // Broadcast parameters are materialised (one output-sized copy each where they broadcast).
  const auto ac = a.to(device).expand(shape).contiguous(), bc = b.to(device).expand(shape).contiguous();
  auto out = at::empty(shape, ac.options().memory_format(at::MemoryFormat::Contiguous));
  const int64_t n = out.numel();
  if (n == 0) return out;
  const at::PhiloxCudaState philox_args = cuda::philox_state(generator, ops::kBetaWordsPerElement);
  constexpr int threads = 256;
  const int blocks = cuda::grid_blocks(n, threads);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, a.scalar_type(), "gradkern_beta_sampler", [&] {
    beta_sample_kernel<scalar_t><<<blocks, threads, 0, at::cuda::getCurrentCUDAStream()>>>(
        ac.const_data_ptr<scalar_t>(), bc.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), n,
        philox_args);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(gradkern, CUDA, m) {
  m.impl("log_standard_gamma", &log_standard_gamma);
  m.impl("standard_beta", &standard_beta);
}

}  // namespace gradkern
