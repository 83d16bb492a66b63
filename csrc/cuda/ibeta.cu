// CUDA kernels of the incomplete beta ops: the functors of ops/elementwise.h (csrc/core/ibeta.h) through
// ATen's gpu_kernel / gpu_kernel_multiple_outputs, called through one non-inlined device function per
// op and compute type (as cuda/elementwise.cuh does, for compile time). The core works in double for
// float and double arguments.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/native/cuda/Loops.cuh>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <tuple>

#include "ops/elementwise.h"
#include "ops/tensor_checks.h"

namespace gradkern {
namespace cuda {
namespace {

template <typename acc_t, typename Op>
__device__ __noinline__ acc_t ternary_apply(acc_t x, acc_t y, acc_t z) {
  return Op{}(x, y, z);
}
// __host__ __device__: gpu_kernel_multiple_outputs takes only an extended __host__ __device__ lambda.
template <typename acc_t, typename Op>
__host__ __device__ __noinline__ void ternary_pair_apply(acc_t x, acc_t y, acc_t z, acc_t* o0, acc_t* o1) {
  Op{}(x, y, z, *o0, *o1);
}

template <typename scalar_t, typename Op>
struct DeviceTernary {
  __device__ scalar_t operator()(scalar_t x, scalar_t y, scalar_t z) const {
    using acc_t = at::opmath_type<scalar_t>;
    return static_cast<scalar_t>(
        ternary_apply<acc_t, Op>(static_cast<acc_t>(x), static_cast<acc_t>(y), static_cast<acc_t>(z)));
  }
};

template <typename Op>
at::Tensor cuda_ternary(const char* op, const char* na, const at::Tensor& a, const char* nb, const at::Tensor& b,
                        const char* nc, const at::Tensor& c) {
  auto iter = ops::ternary_iter(op, na, a, nb, b, nc, c);
  if (iter.numel() == 0) return iter.output();
  const c10::cuda::OptionalCUDAGuard guard(iter.device(0));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.common_dtype(), "gradkern_ibeta", [&] {
    at::native::gpu_kernel(iter, DeviceTernary<scalar_t, Op>{});
  });
  return iter.output();
}

template <typename Op>
std::tuple<at::Tensor, at::Tensor> cuda_ternary_pair(const char* op, const char* na, const at::Tensor& a,
                                                     const char* nb, const at::Tensor& b, const char* nc,
                                                     const at::Tensor& c) {
  auto iter = ops::ternary_iter(op, na, a, nb, b, nc, c, 2);
  if (iter.numel() == 0) return std::make_tuple(iter.output(0), iter.output(1));
  const c10::cuda::OptionalCUDAGuard guard(iter.device(0));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.common_dtype(), "gradkern_ibeta", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    at::native::gpu_kernel_multiple_outputs(
        iter, [] GPU_LAMBDA(scalar_t x, scalar_t y, scalar_t z) -> thrust::tuple<scalar_t, scalar_t> {
          acc_t o0, o1;
          ternary_pair_apply<acc_t, Op>(static_cast<acc_t>(x), static_cast<acc_t>(y), static_cast<acc_t>(z), &o0, &o1);
          return thrust::make_tuple(static_cast<scalar_t>(o0), static_cast<scalar_t>(o1));
        });
  });
  return std::make_tuple(iter.output(0), iter.output(1));
}

#define GK_DEFINE_KERNEL(FN, OP, NA, NB, NC)                                          \
  at::Tensor FN(const at::Tensor& a, const at::Tensor& b, const at::Tensor& c) {      \
    return cuda_ternary<ops::OP>(#FN, NA, a, NB, b, NC, c);                           \
  }
GK_TERNARY_OPS(GK_DEFINE_KERNEL)
#undef GK_DEFINE_KERNEL
#define GK_DEFINE_KERNEL(FN, OP, NA, NB, NC)                                                              \
  std::tuple<at::Tensor, at::Tensor> FN(const at::Tensor& a, const at::Tensor& b, const at::Tensor& c) {  \
    return cuda_ternary_pair<ops::OP>(#FN, NA, a, NB, b, NC, c);                                          \
  }
GK_TERNARY_PAIR_OPS(GK_DEFINE_KERNEL)
#undef GK_DEFINE_KERNEL

}  // namespace
}  // namespace cuda

TORCH_LIBRARY_IMPL(gradkern, CUDA, m) {
#define GK_REGISTER_KERNEL(FN, OP, NA, NB, NC) m.impl(#FN, &cuda::FN);
  GK_TERNARY_OPS(GK_REGISTER_KERNEL)
  GK_TERNARY_PAIR_OPS(GK_REGISTER_KERNEL)
#undef GK_REGISTER_KERNEL
}

}  // namespace gradkern
