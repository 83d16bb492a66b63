// CUDA kernels of the von Mises-Fisher ops: the same core (csrc/core/vmf.h) as csrc/cpu/vmf.cpp, through
// ATen's gpu_kernel for the gradient, CDF and moments (one non-inlined device function per body, for
// compile time), and a grid-stride sampler seeded from torch's Philox state (CUDA-graph safe: the seed is
// read on the device).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/native/cuda/Loops.cuh>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <tuple>

#include "core/philox_normal.h"
#include "cuda/host.cuh"
#include "ops/tensor_checks.h"
#include "ops/vmf.h"

namespace gradkern {
namespace {

// __host__ __device__: gpu_kernel takes the extended (GPU_LAMBDA) __host__ __device__ lambdas below.
template <typename acc_t>
__host__ __device__ __noinline__ acc_t vmf_grad_apply(acc_t k, acc_t u, int d) { return core::vmf_grad_u<acc_t>(k, u, d); }
template <typename acc_t>
__host__ __device__ __noinline__ acc_t vmf_cdf_apply(acc_t k, acc_t u, int d) { return core::vmf_cdf_u<acc_t>(k, u, d); }
template <typename acc_t>
__host__ __device__ __noinline__ acc_t vmf_grad_dkappa_apply(acc_t k, acc_t u, int d) {
  return core::vmf_grad_u_dkappa<acc_t>(k, u, d);
}
template <typename acc_t>
__host__ __device__ __noinline__ void vmf_moments_apply(acc_t k, int d, acc_t* lz, acc_t* m, acc_t* v) {
  core::vmf_moments<acc_t>(k, d, *lz, *m, *v);
}

// Which: 0 the gradient du/dkappa, 1 the CDF, 2 the gradient's kappa-derivative.
template <int Which>
at::Tensor vmf_binary(const char* op, const at::Tensor& concentration, const at::Tensor& u, int64_t d) {
  ops::check_vmf_dim(op, d);
  auto iter = ops::binary_iter(op, "concentration", concentration, "u", u);
  if (iter.numel() == 0) return iter.output();
  const c10::cuda::OptionalCUDAGuard guard(iter.device(0));
  const int di = static_cast<int>(d);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.common_dtype(), "gradkern_vmf", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    at::native::gpu_kernel(iter, [di] GPU_LAMBDA(scalar_t k, scalar_t x) -> scalar_t {
      const acc_t kk = static_cast<acc_t>(k), xx = static_cast<acc_t>(x);
      return static_cast<scalar_t>(Which == 1   ? vmf_cdf_apply<acc_t>(kk, xx, di)
                                   : Which == 2 ? vmf_grad_dkappa_apply<acc_t>(kk, xx, di)
                                                : vmf_grad_apply<acc_t>(kk, xx, di));
    });
  });
  return iter.output();
}

at::Tensor vmf_grad_u(const at::Tensor& concentration, const at::Tensor& u, int64_t d) {
  return vmf_binary<0>("vmf_grad_u", concentration, u, d);
}
at::Tensor vmf_cdf_u(const at::Tensor& u, const at::Tensor& concentration, int64_t d) {
  return vmf_binary<1>("vmf_cdf_u", concentration, u, d);
}
at::Tensor vmf_grad_u_dkappa(const at::Tensor& concentration, const at::Tensor& u, int64_t d) {
  return vmf_binary<2>("vmf_grad_u_dkappa", concentration, u, d);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> vmf_moments(const at::Tensor& concentration, int64_t d) {
  ops::check_floating("vmf_moments", "concentration", concentration);
  ops::check_vmf_dim("vmf_moments", d);
  auto iter = at::TensorIteratorConfig()
                  .add_owned_output(at::Tensor())
                  .add_owned_output(at::Tensor())
                  .add_owned_output(at::Tensor())
                  .add_const_input(concentration)
                  .build();
  if (iter.numel() == 0) return std::make_tuple(iter.output(0), iter.output(1), iter.output(2));
  const c10::cuda::OptionalCUDAGuard guard(iter.device(0));
  const int di = static_cast<int>(d);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.common_dtype(), "vmf_moments", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    at::native::gpu_kernel_multiple_outputs(
        iter, [di] GPU_LAMBDA(scalar_t k) -> thrust::tuple<scalar_t, scalar_t, scalar_t> {
          acc_t lz, m, v;
          vmf_moments_apply<acc_t>(static_cast<acc_t>(k), di, &lz, &m, &v);
          return thrust::make_tuple(static_cast<scalar_t>(lz), static_cast<scalar_t>(m), static_cast<scalar_t>(v));
        });
  });
  return std::make_tuple(iter.output(0), iter.output(1), iter.output(2));
}

template <typename acc_t>
__host__ __device__ __noinline__ acc_t vmf_central_apply(acc_t k, int d, int order) {
  return core::vmf_central_moment<acc_t>(k, d, order);
}

at::Tensor vmf_central_moment(const at::Tensor& concentration, int64_t d, int64_t k) {
  ops::check_floating("vmf_central_moment", "concentration", concentration);
  ops::check_vmf_dim("vmf_central_moment", d);
  ops::check_vmf_moment_order("vmf_central_moment", k);
  auto iter = at::TensorIteratorConfig().add_owned_output(at::Tensor()).add_const_input(concentration).build();
  if (iter.numel() == 0) return iter.output();
  const c10::cuda::OptionalCUDAGuard guard(iter.device(0));
  const int di = static_cast<int>(d), ki = static_cast<int>(k);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.common_dtype(), "vmf_central_moment", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    at::native::gpu_kernel(iter, [di, ki] GPU_LAMBDA(scalar_t kap) -> scalar_t {
      return static_cast<scalar_t>(vmf_central_apply<acc_t>(static_cast<acc_t>(kap), di, ki));
    });
  });
  return iter.output();
}

template <typename scalar_t>
__global__ void vmf_sample_kernel(const scalar_t* __restrict__ kappa, scalar_t* __restrict__ out, int64_t n, int d,
                                  at::PhiloxCudaState philox_args) {
  using acc_t = at::opmath_type<scalar_t>;
  const auto seeds = at::cuda::philox::unpack(philox_args);
  const uint64_t seed = std::get<0>(seeds);
  const uint64_t offset = std::get<1>(seeds);
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    out[i] = static_cast<scalar_t>(
        ops::vmf_sample_element<acc_t>(static_cast<acc_t>(kappa[i]), d, seed, static_cast<uint64_t>(i), offset));
  }
}

at::Tensor vmf_sample_u(const at::Tensor& concentration, int64_t d, std::optional<at::Generator> generator) {
  ops::check_floating("vmf_sample_u", "concentration", concentration);
  ops::check_vmf_dim("vmf_sample_u", d);
  const c10::cuda::CUDAGuard guard(concentration.device());
  const auto kappa = concentration.contiguous();
  auto out = at::empty_like(kappa, at::MemoryFormat::Contiguous);
  const int64_t n = kappa.numel();
  if (n == 0) return out;
  const at::PhiloxCudaState philox_args = cuda::philox_state(generator, ops::kVmfWordsPerElement);
  constexpr int threads = 256;
  const int blocks = cuda::grid_blocks(n, threads);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, kappa.scalar_type(), "vmf_sample_u", [&] {
    vmf_sample_kernel<scalar_t><<<blocks, threads, 0, at::cuda::getCurrentCUDAStream()>>>(
        kappa.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), n, static_cast<int>(d), philox_args);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

// One Philox block (4 float or 2 double normals, core/philox_normal.h) per grid-stride item; the last block
// may be partial.
template <typename T>
__global__ void vmf_noise_kernel(T* __restrict__ out, int64_t total, int64_t blocks, at::PhiloxCudaState philox_args) {
  constexpr int P = core::PhiloxNormal<T>::per_block;
  const auto seeds = at::cuda::philox::unpack(philox_args);
  const uint64_t seed = std::get<0>(seeds);
  const uint64_t offset = std::get<1>(seeds) / 4;  // in 4-word blocks
  for (int64_t b = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; b < blocks;
       b += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    T v[P];
    core::philox_normal_block<T>(seed, offset, static_cast<uint64_t>(b), v);
    for (int j = 0; j < P; ++j)
      if (b * P + j < total) out[b * P + j] = v[j];
  }
}

at::Tensor vmf_noise(const at::Tensor& like, int64_t d, std::optional<at::Generator> generator) {
  ops::check_vmf_noise("vmf_noise", like, d);
  const c10::cuda::CUDAGuard guard(like.device());
  auto shape = like.sizes().vec();
  shape.push_back(d - 1);
  auto out = at::empty(shape, like.options().memory_format(at::MemoryFormat::Contiguous));
  const int64_t total = out.numel();
  if (total == 0) return out;
  const at::PhiloxCudaState philox_args = cuda::philox_state(generator, 4);  // one 4-word block per item
  constexpr int threads = 256;
  AT_DISPATCH_FLOATING_TYPES(like.scalar_type(), "vmf_noise", [&] {
    constexpr int P = core::PhiloxNormal<scalar_t>::per_block;
    const int64_t blocks = (total + P - 1) / P;
    vmf_noise_kernel<scalar_t><<<cuda::grid_blocks(blocks, threads), threads, 0, at::cuda::getCurrentCUDAStream()>>>(
        out.mutable_data_ptr<scalar_t>(), total, blocks, philox_args);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

template <typename T>
__global__ void vmf_direction_kernel(const T* __restrict__ loc, const T* __restrict__ u, const T* __restrict__ noise,
                                     T* __restrict__ out, int64_t rows, int d) {
  for (int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; r < rows;
       r += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    core::vmf_direction<T>(loc + r * d, u[r], noise + r * (d - 1), d, out + r * d);
  }
}

// One thread per row (d values each): simple, and memory-bound for the d of embedding models.
at::Tensor vmf_direction(const at::Tensor& loc, const at::Tensor& u, const at::Tensor& noise) {
  const c10::cuda::CUDAGuard guard(loc.device());
  const auto in = ops::vmf_direction_inputs(loc, u, noise);
  const int64_t d = in.d, rows = in.rows;
  const at::Tensor &l = in.loc, &uu = in.u, &nz = in.noise;
  auto out = at::empty(in.shape, loc.options());
  if (rows == 0) return out;
  constexpr int threads = 128;
  const int blocks = cuda::grid_blocks(rows, threads);
  AT_DISPATCH_FLOATING_TYPES(loc.scalar_type(), "vmf_direction", [&] {
    vmf_direction_kernel<scalar_t><<<blocks, threads, 0, at::cuda::getCurrentCUDAStream()>>>(
        l.const_data_ptr<scalar_t>(), uu.const_data_ptr<scalar_t>(), nz.const_data_ptr<scalar_t>(),
        out.mutable_data_ptr<scalar_t>(), rows, static_cast<int>(d));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

template <typename T>
__global__ void vmf_direction_backward_kernel(const T* __restrict__ g, const T* __restrict__ loc,
                                              const T* __restrict__ u, const T* __restrict__ noise, T* __restrict__ gl,
                                              T* __restrict__ gu, T* __restrict__ gn, int64_t rows, int d) {
  for (int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; r < rows;
       r += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    core::vmf_direction_backward<T>(g + r * d, loc + r * d, u[r], noise + r * (d - 1), d, gl + r * d, gu + r,
                                    gn + r * (d - 1));
  }
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> vmf_direction_backward(const at::Tensor& grad, const at::Tensor& loc,
                                                                      const at::Tensor& u, const at::Tensor& noise) {
  const c10::cuda::CUDAGuard guard(loc.device());
  const auto in = ops::vmf_direction_inputs(loc, u, noise);
  TORCH_CHECK(grad.sizes().vec() == in.shape, "gradkern.vmf_direction_backward: grad must have the output's shape ",
              in.shape, ", got ", grad.sizes());
  const int64_t d = in.d, rows = in.rows;
  const at::Tensor g = grad.contiguous(), &l = in.loc, &uu = in.u, &nz = in.noise;
  auto gl = at::empty_like(l), gu = at::empty_like(uu), gn = at::empty_like(nz);
  if (rows == 0) return std::make_tuple(gl, gu, gn);
  constexpr int threads = 128;
  const int blocks = cuda::grid_blocks(rows, threads);
  AT_DISPATCH_FLOATING_TYPES(loc.scalar_type(), "vmf_direction_backward", [&] {
    vmf_direction_backward_kernel<scalar_t><<<blocks, threads, 0, at::cuda::getCurrentCUDAStream()>>>(
        g.const_data_ptr<scalar_t>(), l.const_data_ptr<scalar_t>(), uu.const_data_ptr<scalar_t>(),
        nz.const_data_ptr<scalar_t>(), gl.mutable_data_ptr<scalar_t>(), gu.mutable_data_ptr<scalar_t>(),
        gn.mutable_data_ptr<scalar_t>(), rows, static_cast<int>(d));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return std::make_tuple(gl, gu, gn);
}

}  // namespace

TORCH_LIBRARY_IMPL(gradkern, CUDA, m) {
  m.impl("vmf_direction_backward", &vmf_direction_backward);
  m.impl("vmf_direction", &vmf_direction);
  m.impl("vmf_sample_u", &vmf_sample_u);
  m.impl("vmf_noise", &vmf_noise);
  m.impl("vmf_grad_u", &vmf_grad_u);
  m.impl("vmf_grad_u_dkappa", &vmf_grad_u_dkappa);
  m.impl("vmf_cdf_u", &vmf_cdf_u);
  m.impl("vmf_moments", &vmf_moments);
  m.impl("vmf_central_moment", &vmf_central_moment);
}

}  // namespace gradkern
