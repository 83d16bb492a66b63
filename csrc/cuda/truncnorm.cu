// CUDA kernels of the truncated Normal's ops: the functors of ops/truncnorm.h (csrc/core/truncnorm.h)
// through ATen's gpu_kernel / gpu_kernel_multiple_outputs, each called through one non-inlined device
// function per compute type (as cuda/ibeta.cu does). The core works in double for float and double.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/native/cuda/Loops.cuh>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <tuple>

#include "ops/tensor_checks.h"
#include "ops/truncnorm.h"

namespace gradkern {
namespace cuda {
namespace {

// P: the probabilities' type, scalar_t's compute type or double (a float64 p with narrower parameters).
template <typename acc_t, typename P>
__device__ __noinline__ acc_t icdf_apply(P p, acc_t loc, acc_t scale, acc_t low, acc_t high) {
  return ops::TruncatedNormalIcdf{}(p, loc, scale, low, high);
}
// __host__ __device__: gpu_kernel_multiple_outputs takes only an extended __host__ __device__ lambda.
template <typename acc_t, typename P>
__host__ __device__ __noinline__ void backward_apply(acc_t g, acc_t z, P p, acc_t loc, acc_t scale, acc_t low,
                                                     acc_t high, acc_t* o) {
  ops::TruncatedNormalBackward{}(g, z, p, loc, scale, low, high, o);
}

template <typename scalar_t, typename P>
struct DeviceIcdf {
  __device__ scalar_t operator()(P p, scalar_t loc, scalar_t scale, scalar_t low, scalar_t high) const {
    using acc_t = at::opmath_type<scalar_t>;
    using pacc_t = at::opmath_type<P>;
    return static_cast<scalar_t>(icdf_apply<acc_t, pacc_t>(static_cast<pacc_t>(p), static_cast<acc_t>(loc),
                                                           static_cast<acc_t>(scale), static_cast<acc_t>(low),
                                                           static_cast<acc_t>(high)));
  }
};

at::Tensor truncated_normal_icdf(const at::Tensor& p, const at::Tensor& loc, const at::Tensor& scale,
                                 const at::Tensor& low, const at::Tensor& high) {
  const at::Tensor* ts[5] = {&p, &loc, &scale, &low, &high};
  auto iter = ops::nary_iter("truncated_normal_icdf", 5, ops::TruncatedNormalIcdf::names, ts, 1, /*wide=*/0);
  if (iter.numel() == 0) return iter.output();
  const c10::cuda::OptionalCUDAGuard guard(iter.device(0));
  const bool wide = ops::wide_input(iter, 0);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.dtype(0), "truncated_normal_icdf", [&] {
    if (wide) {
      at::native::gpu_kernel(iter, DeviceIcdf<scalar_t, double>{});
    } else {
      at::native::gpu_kernel(iter, DeviceIcdf<scalar_t, scalar_t>{});
    }
  });
  return iter.output();
}

using Quad = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

template <typename scalar_t, typename P>
void backward_kernel(at::TensorIterator& iter) {
  using acc_t = at::opmath_type<scalar_t>;
  using pacc_t = at::opmath_type<P>;
  at::native::gpu_kernel_multiple_outputs(
      iter, [] GPU_LAMBDA(scalar_t g, scalar_t zz, P pp, scalar_t m, scalar_t s, scalar_t lo, scalar_t hi)
                -> thrust::tuple<scalar_t, scalar_t, scalar_t, scalar_t> {
        acc_t o[4];
        backward_apply<acc_t, pacc_t>(static_cast<acc_t>(g), static_cast<acc_t>(zz), static_cast<pacc_t>(pp),
                                      static_cast<acc_t>(m), static_cast<acc_t>(s), static_cast<acc_t>(lo),
                                      static_cast<acc_t>(hi), o);
        return thrust::make_tuple(static_cast<scalar_t>(o[0]), static_cast<scalar_t>(o[1]),
                                  static_cast<scalar_t>(o[2]), static_cast<scalar_t>(o[3]));
      });
}

Quad truncated_normal_backward(const at::Tensor& grad, const at::Tensor& z, const at::Tensor& p, const at::Tensor& loc,
                               const at::Tensor& scale, const at::Tensor& low, const at::Tensor& high) {
  const at::Tensor* ts[7] = {&grad, &z, &p, &loc, &scale, &low, &high};
  auto iter = ops::nary_iter("truncated_normal_backward", 7, ops::TruncatedNormalBackward::names, ts, 4, /*wide=*/2);
  if (iter.numel() > 0) {
    const c10::cuda::OptionalCUDAGuard guard(iter.device(0));
    const bool wide = ops::wide_input(iter, 2);
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.dtype(0), "truncated_normal_backward", [&] {
      if (wide) {
        backward_kernel<scalar_t, double>(iter);
      } else {
        backward_kernel<scalar_t, scalar_t>(iter);
      }
    });
  }
  return Quad(iter.output(0), iter.output(1), iter.output(2), iter.output(3));
}

}  // namespace
}  // namespace cuda

TORCH_LIBRARY_IMPL(gradkern, CUDA, m) {
  m.impl("truncated_normal_icdf", &cuda::truncated_normal_icdf);
  m.impl("truncated_normal_backward", &cuda::truncated_normal_backward);
}

}  // namespace gradkern
