// CPU kernel of the fused von Mises sampler (csrc/core/vonmises_sampler.h via cpu/vonmises_block.h).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "cpu/host.h"
#include "cpu/vonmises_block.h"
#include "ops/vonmises.h"
#include "ops/tensor_checks.h"

namespace gradkern {
namespace {

// Instruction-set clones of the blocked von Mises loop (cpu/vonmises_block.h, force-inlined into each;
// see cpu/host.h for how one is picked).
template <typename T, typename S>
void vm_range_baseline(const S* k, S* o, int64_t b, int64_t e, uint64_t seed) {
  cpu::vm_sample_range<T, S>(k, o, b, e, seed);
}
#ifdef GK_HAVE_ISA_CLONES
template <typename T, typename S>
GK_TARGET_AVX2 void vm_range_avx2(const S* k, S* o, int64_t b, int64_t e, uint64_t seed) {
  cpu::vm_sample_range<T, S>(k, o, b, e, seed);
}
template <typename T, typename S>
GK_TARGET_AVX512 void vm_range_avx512(const S* k, S* o, int64_t b, int64_t e, uint64_t seed) {
  cpu::vm_sample_range<T, S>(k, o, b, e, seed);
}
#endif

template <typename T, typename S>
using VmRangeFn = void (*)(const S*, S*, int64_t, int64_t, uint64_t);

template <typename T, typename S> VmRangeFn<T, S> pick_vm_range() {
#ifdef GK_HAVE_ISA_CLONES
  return cpu::for_isa<VmRangeFn<T, S>>(&vm_range_avx512<T, S>, &vm_range_avx2<T, S>, &vm_range_baseline<T, S>);
#else
  return &vm_range_baseline<T, S>;
#endif
}

at::Tensor vonmises_sample(const at::Tensor& concentration, std::optional<at::Generator> generator) {
  ops::check_floating("vonmises_sample", "concentration", concentration);
  // Contiguous so that element i of the output is element i of the stream layout, whatever the strides.
  const auto kappa = concentration.contiguous();
  auto out = at::empty_like(kappa, at::MemoryFormat::Contiguous);
  const int64_t n = kappa.numel();
  if (n == 0) return out;
  const uint64_t seed = cpu::draw_seed(generator);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, kappa.scalar_type(), "vonmises_sample", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* k = kappa.const_data_ptr<scalar_t>();
    scalar_t* o = out.mutable_data_ptr<scalar_t>();
    static const VmRangeFn<acc_t, scalar_t> range = pick_vm_range<acc_t, scalar_t>();
    // ~10-20 ns per element: grain 16384 keeps the per-task overhead small. Element i's result depends
    // only on (seed, i), so the chunking does not matter (see cpu/vonmises_block.h).
    at::parallel_for(0, n, 16384, [&](int64_t begin, int64_t end) { range(k, o, begin, end, seed); });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(gradkern, CPU, m) {
  m.impl("vonmises_sample", &vonmises_sample);
}

}  // namespace gradkern
