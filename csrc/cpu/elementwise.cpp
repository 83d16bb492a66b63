// CPU kernels for the elementwise ops: thin TensorIterator loops over the numerical core.
// TensorIterator brings broadcasting, strides (non-contiguous inputs), empty tensors and
// multi-threading (at::parallel_for over all intra-op threads). Half and bfloat16 are computed in float.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/native/cpu/Loops.h>
#include <torch/library.h>

#include "ops/elementwise.h"
#include "ops/tensor_checks.h"

namespace gradkern {
namespace {

template <typename Op>
at::Tensor cpu_binary(const char* op, const char* name_a, const at::Tensor& a, const char* name_b,
                      const at::Tensor& b) {
  auto iter = ops::binary_iter(op, name_a, a, name_b, b);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.common_dtype(), "gradkern_elementwise", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    at::native::cpu_kernel(iter, [](scalar_t x, scalar_t y) -> scalar_t {
      return static_cast<scalar_t>(Op{}(static_cast<acc_t>(x), static_cast<acc_t>(y)));
    });
  });
  return iter.output();
}

#define GK_DEFINE_KERNEL(FN, OP, NAME_A, NAME_B)                \
  at::Tensor FN(const at::Tensor& a, const at::Tensor& b) {     \
    return cpu_binary<ops::OP>(#FN, NAME_A, a, NAME_B, b);           \
  }
GK_ELEMENTWISE_OPS(GK_DEFINE_KERNEL)
#undef GK_DEFINE_KERNEL

}  // namespace

TORCH_LIBRARY_IMPL(gradkern, CPU, m) {
#define GK_REGISTER_KERNEL(FN, OP, NAME_A, NAME_B) m.impl(#FN, &FN);
  GK_ELEMENTWISE_OPS(GK_REGISTER_KERNEL)
#undef GK_REGISTER_KERNEL
}

}  // namespace gradkern
