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
#include <utility>

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
__host__ __device__ __noinline__ void ternary_multi_apply(acc_t x, acc_t y, acc_t z, acc_t* o) {
  Op{}(x, y, z, o);
}

// The thrust::tuple of N scalars that gpu_kernel_multiple_outputs writes to the N outputs.
template <typename S, int N> struct tuple_of;
template <typename S> struct tuple_of<S, 2> {
  using type = thrust::tuple<S, S>;
  __host__ __device__ static type make(const S* o) { return thrust::make_tuple(o[0], o[1]); }
};
template <typename S> struct tuple_of<S, 3> {
  using type = thrust::tuple<S, S, S>;
  __host__ __device__ static type make(const S* o) { return thrust::make_tuple(o[0], o[1], o[2]); }
};
template <typename S> struct tuple_of<S, 4> {
  using type = thrust::tuple<S, S, S, S>;
  __host__ __device__ static type make(const S* o) { return thrust::make_tuple(o[0], o[1], o[2], o[3]); }
};

template <size_t... I>
auto outputs_of(at::TensorIterator& iter, std::index_sequence<I...>) {
  return std::make_tuple(iter.output(I)...);
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

// std::tuple of N tensors. Spelled out because nvcc refuses a deduced return type on a function that
// encloses an extended __host__ __device__ lambda.
template <int N>
using tensor_tuple = decltype(outputs_of(std::declval<at::TensorIterator&>(), std::make_index_sequence<N>{}));

// Op::outputs outputs from one evaluation, returned as a std::tuple of that many tensors.
template <typename Op>
tensor_tuple<Op::outputs> cuda_ternary_multi(const char* op, const char* na, const at::Tensor& a, const char* nb, const at::Tensor& b,
                        const char* nc, const at::Tensor& c) {
  constexpr int N = Op::outputs;
  auto iter = ops::ternary_iter(op, na, a, nb, b, nc, c, N);
  if (iter.numel() == 0) return outputs_of(iter, std::make_index_sequence<N>{});
  const c10::cuda::OptionalCUDAGuard guard(iter.device(0));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.common_dtype(), "gradkern_ibeta", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    using tup = tuple_of<scalar_t, N>;
    at::native::gpu_kernel_multiple_outputs(
        iter, [] GPU_LAMBDA(scalar_t x, scalar_t y, scalar_t z) -> typename tup::type {
          acc_t o[N];
          ternary_multi_apply<acc_t, Op>(static_cast<acc_t>(x), static_cast<acc_t>(y), static_cast<acc_t>(z), o);
          scalar_t r[N];
          for (int j = 0; j < N; ++j) r[j] = static_cast<scalar_t>(o[j]);
          return tup::make(r);
        });
  });
  return outputs_of(iter, std::make_index_sequence<N>{});
}

#define GK_DEFINE_KERNEL(FN, OP, NA, NB, NC)                                          \
  at::Tensor FN(const at::Tensor& a, const at::Tensor& b, const at::Tensor& c) {      \
    return cuda_ternary<ops::OP>(#FN, NA, a, NB, b, NC, c);                           \
  }
GK_TERNARY_OPS(GK_DEFINE_KERNEL)
#undef GK_DEFINE_KERNEL
#define GK_DEFINE_KERNEL(FN, OP, NA, NB, NC)                                 \
  auto FN(const at::Tensor& a, const at::Tensor& b, const at::Tensor& c) {   \
    return cuda_ternary_multi<ops::OP>(#FN, NA, a, NB, b, NC, c);            \
  }
GK_TERNARY_MULTI_OPS(GK_DEFINE_KERNEL)
#undef GK_DEFINE_KERNEL

}  // namespace
}  // namespace cuda

TORCH_LIBRARY_IMPL(gradkern, CUDA, m) {
#define GK_REGISTER_KERNEL(FN, OP, NA, NB, NC) m.impl(#FN, &cuda::FN);
  GK_TERNARY_OPS(GK_REGISTER_KERNEL)
  GK_TERNARY_MULTI_OPS(GK_REGISTER_KERNEL)
#undef GK_REGISTER_KERNEL
}

}  // namespace gradkern
