// CPU kernels of the incomplete beta ops (csrc/core/ibeta.h): TensorIterator loops over the core
// functors of ops/elementwise.h (broadcasting, strides, type checks, multi-threading), as plain strided
// loops: the math costs 0.1-2 us per element, so ATen's vectorized cpu_kernel variants would only add
// compile time. half and bfloat16
// are computed in float (and the core works in double for both float and double).
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/TensorIterator.h>
#include <torch/library.h>

#include <tuple>
#include <utility>

#include "ops/elementwise.h"
#include "ops/tensor_checks.h"

namespace gradkern {
namespace {

// Grain: 0.1-2 us per element (the continued fraction), so small tensors already use every thread.
constexpr int64_t kGrain = 512;

template <typename Op>
at::Tensor cpu_ternary(const char* op, const char* na, const at::Tensor& a, const char* nb, const at::Tensor& b,
                       const char* nc, const at::Tensor& c) {
  auto iter = ops::ternary_iter(op, na, a, nb, b, nc, c);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.common_dtype(), "gradkern_ibeta", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    iter.for_each([](char** data, const int64_t* strides, int64_t n) {
      for (int64_t i = 0; i < n; ++i) {
        const acc_t x = static_cast<acc_t>(*reinterpret_cast<const scalar_t*>(data[1] + i * strides[1]));
        const acc_t y = static_cast<acc_t>(*reinterpret_cast<const scalar_t*>(data[2] + i * strides[2]));
        const acc_t z = static_cast<acc_t>(*reinterpret_cast<const scalar_t*>(data[3] + i * strides[3]));
        *reinterpret_cast<scalar_t*>(data[0] + i * strides[0]) = static_cast<scalar_t>(Op{}(x, y, z));
      }
    }, kGrain);
  });
  return iter.output();
}

template <size_t... I>
auto outputs_of(at::TensorIterator& iter, std::index_sequence<I...>) {
  return std::make_tuple(iter.output(I)...);
}

// Op::outputs outputs from one evaluation, returned as a std::tuple of that many tensors.
template <typename Op>
auto cpu_ternary_multi(const char* op, const char* na, const at::Tensor& a, const char* nb, const at::Tensor& b,
                       const char* nc, const at::Tensor& c) {
  constexpr int N = Op::outputs;
  auto iter = ops::ternary_iter(op, na, a, nb, b, nc, c, N);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.common_dtype(), "gradkern_ibeta", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    iter.for_each([](char** data, const int64_t* strides, int64_t n) {
      for (int64_t i = 0; i < n; ++i) {
        const acc_t x = static_cast<acc_t>(*reinterpret_cast<const scalar_t*>(data[N] + i * strides[N]));
        const acc_t y = static_cast<acc_t>(*reinterpret_cast<const scalar_t*>(data[N + 1] + i * strides[N + 1]));
        const acc_t z = static_cast<acc_t>(*reinterpret_cast<const scalar_t*>(data[N + 2] + i * strides[N + 2]));
        acc_t o[N];
        Op{}(x, y, z, o);
        for (int j = 0; j < N; ++j) *reinterpret_cast<scalar_t*>(data[j] + i * strides[j]) = static_cast<scalar_t>(o[j]);
      }
    }, kGrain);
  });
  return outputs_of(iter, std::make_index_sequence<N>{});
}

#define GK_DEFINE_KERNEL(FN, OP, NA, NB, NC)                                          \
  at::Tensor FN(const at::Tensor& a, const at::Tensor& b, const at::Tensor& c) {      \
    return cpu_ternary<ops::OP>(#FN, NA, a, NB, b, NC, c);                            \
  }
GK_TERNARY_OPS(GK_DEFINE_KERNEL)
#undef GK_DEFINE_KERNEL
#define GK_DEFINE_KERNEL(FN, OP, NA, NB, NC)                                 \
  auto FN(const at::Tensor& a, const at::Tensor& b, const at::Tensor& c) {   \
    return cpu_ternary_multi<ops::OP>(#FN, NA, a, NB, b, NC, c);             \
  }
GK_TERNARY_MULTI_OPS(GK_DEFINE_KERNEL)
#undef GK_DEFINE_KERNEL

}  // namespace

TORCH_LIBRARY_IMPL(gradkern, CPU, m) {
#define GK_REGISTER_KERNEL(FN, OP, NA, NB, NC) m.impl(#FN, &FN);
  GK_TERNARY_OPS(GK_REGISTER_KERNEL)
  GK_TERNARY_MULTI_OPS(GK_REGISTER_KERNEL)
#undef GK_REGISTER_KERNEL
}

}  // namespace gradkern
