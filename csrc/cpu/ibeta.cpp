// CPU kernels of the incomplete beta ops (csrc/core/ibeta.h): TensorIterator loops over the core
// functors of ops/elementwise.h (broadcasting, strides, type checks, multi-threading), as plain strided
// loops: the math costs 0.1-2 us per element, so ATen's vectorized cpu_kernel variants would only add
// compile time. half and bfloat16 are computed in float (and the core works in double for both float and
// double). standard_beta_grad and dirichlet_grad (the Beta and Dirichlet backward passes) run their continued
// fractions on lanes on AVX2 / AVX-512 hosts (cpu/ibeta_block.h), with the same results bit for bit.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/TensorIterator.h>
#include <torch/library.h>

#include <tuple>
#include <type_traits>
#include <utility>

// No contraction of a * b + c into fused multiply-adds in this file: the lane loops of the ISA clones must
// round every operation as the baseline (SSE2, no FMA) scalar loop does, so that an element's gradient does not
// depend on the CPU or on whether its chunk was long enough for the lanes.
#pragma GCC optimize("fp-contract=off")
#include "cpu/host.h"
#include "cpu/ibeta_block.h"
#include "ops/elementwise.h"
#include "ops/tensor_checks.h"

namespace gradkern {
namespace {

// Grain: 0.1-2 us per element (the continued fraction), so small tensors already use every thread.
constexpr int64_t kGrain = 512;

// The lane loops of cpu/ibeta_block.h for the ops that have one (LaneLoop<Op, T, S>::get(): this CPU's clone,
// or nullptr where there is none: no AVX2, or another op).
// They take TensorIterator's 2-D loop (rows of size0 elements; broadcast operands such as the Dirichlet
// backward's total make short rows).
using LaneFn = void (*)(char* const*, const int64_t*, int64_t, int64_t);

#ifdef GK_HAVE_ISA_CLONES
#define GK_IBETA_CLONES(NAME)                                                                          \
  template <typename T, typename S>                                                                   \
  GK_TARGET_AVX2 __attribute__((flatten)) void NAME##_avx2(char* const* d, const int64_t* s, int64_t n0,  \
                                                             int64_t n1) {                            \
    cpu::NAME##_lanes<T, S>(d, s, n0, n1);                                                            \
  }                                                                                                   \
  template <typename T, typename S>                                                                   \
  GK_TARGET_AVX512 __attribute__((flatten)) void NAME##_avx512(char* const* d, const int64_t* s, int64_t n0, \
                                                               int64_t n1) {                          \
    cpu::NAME##_lanes<T, S>(d, s, n0, n1);                                                            \
  }
GK_IBETA_CLONES(standard_beta_grad)
GK_IBETA_CLONES(dirichlet_grad)
#undef GK_IBETA_CLONES
#endif

template <typename Op, typename T, typename S> struct LaneLoop {
  static LaneFn get() { return nullptr; }
};
#ifdef GK_HAVE_ISA_CLONES
template <typename T, typename S> struct LaneLoop<ops::StandardBetaGrad, T, S> {
  static LaneFn get() {
    return cpu::for_isa<LaneFn>(&standard_beta_grad_avx512<T, S>, &standard_beta_grad_avx2<T, S>, nullptr);
  }
};
template <typename T, typename S> struct LaneLoop<ops::DirichletGrad, T, S> {
  static LaneFn get() {
    return cpu::for_isa<LaneFn>(&dirichlet_grad_avx512<T, S>, &dirichlet_grad_avx2<T, S>, nullptr);
  }
};
#endif

// TensorIterator's 2-D loop over NT operands: the lane loop where the op has one and the range holds enough
// elements, else the 1-D loop `body` row by row.
template <int NT, typename Body> auto loop_2d(LaneFn lanes, Body body) {
  return [lanes, body](char** data, const int64_t* strides, int64_t size0, int64_t size1) {
    if (lanes && size0 * size1 >= cpu::kIbetaMinLanes) return lanes(data, strides, size0, size1);
    char* row[NT];
    for (int64_t j = 0; j < size1; ++j) {
      for (int k = 0; k < NT; ++k) row[k] = data[k] + j * strides[NT + k];
      body(row, strides, size0);
    }
  };
}

template <typename Op>
at::Tensor cpu_ternary(const char* op, const char* na, const at::Tensor& a, const char* nb, const at::Tensor& b,
                       const char* nc, const at::Tensor& c) {
  auto iter = ops::ternary_iter(op, na, a, nb, b, nc, c);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.common_dtype(), "gradkern_ibeta", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const LaneFn lanes = LaneLoop<Op, acc_t, scalar_t>::get();
    iter.for_each(loop_2d<4>(lanes, [](char** data, const int64_t* strides, int64_t n) {
      for (int64_t i = 0; i < n; ++i) {
        const acc_t x = static_cast<acc_t>(*reinterpret_cast<const scalar_t*>(data[1] + i * strides[1]));
        const acc_t y = static_cast<acc_t>(*reinterpret_cast<const scalar_t*>(data[2] + i * strides[2]));
        const acc_t z = static_cast<acc_t>(*reinterpret_cast<const scalar_t*>(data[3] + i * strides[3]));
        *reinterpret_cast<scalar_t*>(data[0] + i * strides[0]) = static_cast<scalar_t>(Op{}(x, y, z));
      }
    }), kGrain);
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
    const LaneFn lanes = LaneLoop<Op, acc_t, scalar_t>::get();
    iter.for_each(loop_2d<N + 3>(lanes, [=](char** data, const int64_t* strides, int64_t n) {
      for (int64_t i = 0; i < n; ++i) {
        const acc_t x = static_cast<acc_t>(*reinterpret_cast<const scalar_t*>(data[N] + i * strides[N]));
        const acc_t y = static_cast<acc_t>(*reinterpret_cast<const scalar_t*>(data[N + 1] + i * strides[N + 1]));
        const acc_t z = static_cast<acc_t>(*reinterpret_cast<const scalar_t*>(data[N + 2] + i * strides[N + 2]));
        acc_t o[N];
        Op{}(x, y, z, o);
        for (int j = 0; j < N; ++j) *reinterpret_cast<scalar_t*>(data[j] + i * strides[j]) = static_cast<scalar_t>(o[j]);
      }
    }), kGrain);
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
