// CPU kernels for the elementwise ops: thin TensorIterator loops over the numerical core.
// TensorIterator brings broadcasting, strides (non-contiguous inputs), empty tensors and
// multi-threading (at::parallel_for over all intra-op threads). Half and bfloat16 are computed in float.
//
// Float and double run our own 1-D loops, compiled three times: for the baseline x86-64 ISA and,
// selected at run time when the CPU has them, with AVX2 + FMA and (standard_gamma_grad only) AVX-512
// (`target` attribute on the loop functions only, so no inline function of torch or of the core is ever
// emitted in two ISAs under one symbol: everything these loops call is inlined into them by `flatten`).
// FMA shortens every Horner chain of the core. standard_gamma_grad goes by chunks whose elements are
// compacted by branch (cpu/gamma_block.h): the Gamma bulk path (csrc/core/igamma_bulk.h) on GNU vectors
// per tier, the series and continued-fraction lanes through lane-parallel copies of the scalar loops;
// the second-order standard_gamma_grad_dalpha and gammainc_grad_aa take the same driver for their bulk
// path and, below a = 10, for their series and continued fraction (in double, on 4-lane vectors). Each result is the scalar core's, bit for bit (tests/test_gamma_accuracy.py checks it for all three
// ops).
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/native/cpu/Loops.h>
#include <torch/library.h>

#include "cpu/gamma_block.h"
#include "cpu/host.h"
#include "ops/elementwise.h"
#include "ops/tensor_checks.h"

#ifdef GK_HAVE_ISA_CLONES
#define GK_ATTR_BASE __attribute__((flatten))
#define GK_ATTR_AVX2 GK_TARGET_AVX2 __attribute__((flatten))
#define GK_ATTR_AVX512 GK_TARGET_AVX512 __attribute__((flatten))
#else
#define GK_ATTR_BASE
#endif

namespace gradkern {
namespace {

// Loop bodies, instantiated once per ISA by GK_DEFINE_LOOPS. data = {out, a, b}, byte strides.
#define GK_DEFINE_LOOPS(SUFFIX, ATTR)                                                                     \
  template <typename Op, typename T>                                                                     \
  ATTR void binary_loop_##SUFFIX(char** data, const int64_t* strides, int64_t n) {                       \
    char *o = data[0], *a = data[1], *b = data[2];                                                        \
    for (int64_t i = 0; i < n; ++i, o += strides[0], a += strides[1], b += strides[2])                    \
      *reinterpret_cast<T*>(o) = Op{}(*reinterpret_cast<const T*>(a), *reinterpret_cast<const T*>(b));   \
  }                                                                                                      \
  /* The Gamma gradients: the chunked, class-compacted driver of cpu/gamma_block.h, force-inlined. */    \
  template <typename P, typename T>                                                                      \
  ATTR void gamma_loop_##SUFFIX(char** data, const int64_t* strides, int64_t n) {                        \
    cpu::strided_by_class<P, T>(data, strides, n);                                                       \
  }

#ifdef GK_HAVE_ISA_CLONES
// The second-order ops' bulk blocks, one AVX2 copy shared by standard_gamma_grad_dalpha and gammainc_grad_aa
// (noinline: `flatten` would otherwise inline the long unrolled polynomials into every loop, and the
// translation unit would take minutes longer to compile).
template <typename T>
GK_ATTR_AVX2 __attribute__((noinline)) void bulk_d_avx2(int tier, const T* v, const T* w, T* g, T* ga) {
  cpu::bulk_d_block_tier<T>(tier, v, w, g, ga);
}
struct BulkDAvx2 {
  template <typename T> static void run(int tier, const T* v, const T* w, T* g, T* ga) {
    bulk_d_avx2<T>(tier, v, w, g, ga);
  }
};
#endif

GK_DEFINE_LOOPS(base, GK_ATTR_BASE)
#ifdef GK_HAVE_ISA_CLONES
GK_DEFINE_LOOPS(avx2, GK_ATTR_AVX2)
GK_DEFINE_LOOPS(avx512, GK_ATTR_AVX512)
#endif
#undef GK_DEFINE_LOOPS

using loop1d_t = void (*)(char**, const int64_t*, int64_t);

// The class-compacting driver's policy for an op, or void for the plain loop. The second-order ops take it
// with AVX2 only (without, the scalar core per element: a baseline build of their blocks would double the
// translation unit's compile time for machines that are rare).
template <typename Op, typename T> struct gamma_policy { using type = void; };
template <typename T> struct gamma_policy<ops::StandardGammaGrad, T> { using type = cpu::gamma_grad_policy<T>; };
template <typename T> struct gamma_policy<ops::LogStandardGammaGrad, T> { using type = cpu::log_gamma_grad_policy<T>; };
#ifdef GK_HAVE_ISA_CLONES
template <typename T> struct gamma_policy<ops::StandardGammaGradDalpha, T> {
  using type = cpu::gamma_d2_policy<T, false, BulkDAvx2>;
};
template <typename T> struct gamma_policy<ops::GammaincGradAA, T> {
  using type = cpu::gamma_d2_policy<T, true, BulkDAvx2>;
};
#endif

template <typename Op, typename T> loop1d_t pick_loop() {
  using P = typename gamma_policy<Op, T>::type;
  if constexpr (std::is_same_v<Op, ops::StandardGammaGrad> || std::is_same_v<Op, ops::LogStandardGammaGrad>) {
#ifdef GK_HAVE_ISA_CLONES
    // AVX-512 only for this loop: its vectorized bulk polynomial is where the wider registers pay.
    if (cpu::best_isa() == cpu::Isa::avx512) return &gamma_loop_avx512<P, T>;
    if (cpu::best_isa() == cpu::Isa::avx2) return &gamma_loop_avx2<P, T>;
#endif
    return &gamma_loop_base<P, T>;
  } else if constexpr (!std::is_void_v<P>) {
#ifdef GK_HAVE_ISA_CLONES
    if (cpu::best_isa() != cpu::Isa::baseline) return &gamma_loop_avx2<P, T>;
#endif
    return &binary_loop_base<Op, T>;
  } else {
#ifdef GK_HAVE_ISA_CLONES
    if (cpu::best_isa() != cpu::Isa::baseline) return &binary_loop_avx2<Op, T>;
#endif
    return &binary_loop_base<Op, T>;
  }
}

// Operands of one shape, contiguous, float or double, at most this many elements: the loop without
// TensorIterator, whose construction is about a third of a 10-element call (issue 21). TensorIterator would
// give the same result: a contiguous output of that shape, and one thread (below its grain of 4096).
constexpr int64_t kDirectMax = 2048;

template <typename Op>
at::Tensor cpu_binary(const char* op, const char* name_a, const at::Tensor& a, const char* name_b,
                      const at::Tensor& b) {
  const auto st = a.scalar_type();
  if ((st == at::kFloat || st == at::kDouble) && b.scalar_type() == st && a.numel() <= kDirectMax &&
      a.sizes().equals(b.sizes()) && a.is_contiguous() && b.is_contiguous() && a.is_cpu() && b.is_cpu() &&
      !a.is_neg() && !b.is_neg()) {
    at::Tensor out = at::empty(a.sizes(), a.options());
    AT_DISPATCH_FLOATING_TYPES(st, "gradkern_elementwise", [&] {
      char* data[3] = {static_cast<char*>(out.data_ptr()), static_cast<char*>(const_cast<void*>(a.const_data_ptr())),
                       static_cast<char*>(const_cast<void*>(b.const_data_ptr()))};
      const int64_t strides[3] = {sizeof(scalar_t), sizeof(scalar_t), sizeof(scalar_t)};
      pick_loop<Op, scalar_t>()(data, strides, a.numel());
    });
    return out;
  }
  auto iter = ops::binary_iter(op, name_a, a, name_b, b);
  const auto dtype = iter.common_dtype();
  if (dtype == at::kFloat || dtype == at::kDouble) {
    AT_DISPATCH_FLOATING_TYPES(dtype, "gradkern_elementwise", [&] {
      const loop1d_t loop = pick_loop<Op, scalar_t>();
      // Grain: these ops cost 10-200 ns per element, so a smaller grain than TensorIterator's
      // default (32768) lets medium-sized tensors use every thread.
      iter.for_each([loop](char** data, const int64_t* strides, int64_t n) { loop(data, strides, n); }, 4096);
    });
    return iter.output();
  }
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "gradkern_elementwise", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    at::native::cpu_kernel(iter, [](scalar_t x, scalar_t y) -> scalar_t {
      return static_cast<scalar_t>(Op{}(static_cast<acc_t>(x), static_cast<acc_t>(y)));
    });
  });
  return iter.output();
}

#define GK_DEFINE_KERNEL(FN, OP, NAME_A, NAME_B)                \
  at::Tensor FN(const at::Tensor& a, const at::Tensor& b) {     \
    return cpu_binary<ops::OP>(#FN, NAME_A, a, NAME_B, b);      \
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
