// CUDA kernels for the elementwise ops: the same functors as csrc/cpu/elementwise.cpp, launched through
// ATen's gpu_kernel (TensorIterator: broadcasting, strides, 32-bit index splitting, launch checks).
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/native/cuda/Loops.cuh>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "ops/elementwise.h"
#include "ops/tensor_checks.h"

namespace gradkern {
namespace {

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

#define GK_DEFINE_KERNEL(FN, OP, NAME_A, NAME_B)                \
  at::Tensor FN(const at::Tensor& a, const at::Tensor& b) {     \
    return cuda_binary<ops::OP>(#FN, NAME_A, a, NAME_B, b);           \
  }
GK_ELEMENTWISE_OPS(GK_DEFINE_KERNEL)
#undef GK_DEFINE_KERNEL

}  // namespace

TORCH_LIBRARY_IMPL(gradkern, CUDA, m) {
#define GK_REGISTER_KERNEL(FN, OP, NAME_A, NAME_B) m.impl(#FN, &FN);
  GK_ELEMENTWISE_OPS(GK_REGISTER_KERNEL)
#undef GK_REGISTER_KERNEL
}

}  // namespace gradkern
