// CUDA kernels for the elementwise ops: the same functors as csrc/cpu/elementwise.cpp, launched through
// ATen's gpu_kernel (TensorIterator: broadcasting, strides, 32-bit index splitting, launch checks).
//
// The kernels are split over several translation units, csrc/cuda/elementwise_*.cu, each defining a few
// ops with GK_CUDA_ELEMENTWISE_KERNEL(name): compiled as one file, ptxas took over 7 minutes on the core
// functions of the ten ops (sm_90, -O3), the longest step of a 16-core build; split, the files compile in
// parallel. csrc/cuda/elementwise.cu registers every op of the list (ops/elementwise.h) from the
// declarations below, so an op whose kernel no file defines fails to link, and cannot be forgotten.
#pragma once

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/native/cuda/Loops.cuh>
#include <c10/cuda/CUDAGuard.h>

#include "ops/elementwise.h"
#include "ops/tensor_checks.h"

namespace gradkern {
namespace cuda {
namespace elementwise {

// One declaration per op of the list, and its row: the functor and the argument names.
#define GK_DECLARE_KERNEL(FN, OP, NAME_A, NAME_B)                \
  at::Tensor FN(const at::Tensor& a, const at::Tensor& b);       \
  struct FN##_row {                                              \
    using Op = ops::OP;                                          \
    static constexpr const char* name_a = NAME_A;                \
    static constexpr const char* name_b = NAME_B;                \
  };
GK_ELEMENTWISE_OPS(GK_DECLARE_KERNEL)
#undef GK_DECLARE_KERNEL

// The core function is called through a non-inlined device function: gpu_kernel instantiates several
// loop variants (vectorised, unrolled, strided) per dtype, and inlining the series / expansions into
// every one of them multiplied compile time and code size for no speed gain (the work is in the math,
// not the call). half and bfloat16 share the float instantiation.
template <typename acc_t, typename Op>
__device__ __noinline__ acc_t device_apply(acc_t x, acc_t y) {
  return Op{}(x, y);
}

template <typename scalar_t, typename Op>
struct DeviceBinary {
  __device__ scalar_t operator()(scalar_t x, scalar_t y) const {
    using acc_t = at::opmath_type<scalar_t>;
    return static_cast<scalar_t>(device_apply<acc_t, Op>(static_cast<acc_t>(x), static_cast<acc_t>(y)));
  }
};

template <typename Op>
at::Tensor cuda_binary(const char* op, const char* name_a, const at::Tensor& a, const char* name_b,
                       const at::Tensor& b) {
  auto iter = ops::binary_iter(op, name_a, a, name_b, b);
  if (iter.numel() == 0) return iter.output();
  const c10::cuda::OptionalCUDAGuard guard(iter.device(0));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.common_dtype(), "gradkern_elementwise", [&] {
    at::native::gpu_kernel(iter, DeviceBinary<scalar_t, Op>{});
  });
  return iter.output();
}

}  // namespace elementwise
}  // namespace cuda
}  // namespace gradkern

// The kernel of op FN (a name in GK_ELEMENTWISE_OPS), at namespace scope of an elementwise_*.cu file.
#define GK_CUDA_ELEMENTWISE_KERNEL(FN)                                                                   \
  namespace gradkern {                                                                                   \
  namespace cuda {                                                                                       \
  namespace elementwise {                                                                                \
  at::Tensor FN(const at::Tensor& a, const at::Tensor& b) {                                              \
    return cuda_binary<FN##_row::Op>(#FN, FN##_row::name_a, a, FN##_row::name_b, b);                     \
  }                                                                                                      \
  }                                                                                                      \
  }                                                                                                      \
  }
