// CPU kernels of the fused samplers.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <mutex>

#include "cpu/vonmises_block.h"
#include "ops/samplers.h"
#include "ops/tensor_checks.h"

namespace gradkern {
namespace {

// One 64-bit seed per call, drawn from the torch.Generator under its lock: seeded runs reproduce bit for
// bit, and successive calls get independent streams.
uint64_t draw_seed(std::optional<at::Generator> generator) {
  auto* gen = at::get_generator_or_default<at::CPUGeneratorImpl>(generator, at::detail::getDefaultCPUGenerator());
  std::lock_guard<std::mutex> lock(gen->mutex_);
  return gen->random64();
}

// Instruction-set clones of the blocked von Mises loop (cpu/vonmises_block.h, force-inlined into each):
// the baseline x86-64 build has SSE2 only. Each clone is a separate internal function with its own
// target attribute; which one runs is decided once per process from the CPU (cpuid). The clones
// compute the same formulas, but where FMA is available GCC contracts a * b + c into one rounding, so
// samples may differ in the last bits between CPUs with different instruction sets (never between
// runs, thread counts or chunkings on one machine).
template <typename T, typename S>
void vm_range_baseline(const S* k, S* o, int64_t b, int64_t e, uint64_t seed) {
  cpu::vm_sample_range<T, S>(k, o, b, e, seed);
}
#if defined(__GNUC__) && defined(__x86_64__)
#define GK_VM_X86_CLONES 1
template <typename T, typename S>
__attribute__((target("avx2,fma"))) void vm_range_avx2(const S* k, S* o, int64_t b, int64_t e, uint64_t seed) {
  cpu::vm_sample_range<T, S>(k, o, b, e, seed);
}
template <typename T, typename S>
__attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma"))) void vm_range_avx512(
    const S* k, S* o, int64_t b, int64_t e, uint64_t seed) {
  cpu::vm_sample_range<T, S>(k, o, b, e, seed);
}
#endif

template <typename T, typename S>
using VmRangeFn = void (*)(const S*, S*, int64_t, int64_t, uint64_t);

template <typename T, typename S> VmRangeFn<T, S> pick_vm_range() {
#ifdef GK_VM_X86_CLONES
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("fma"))
    return &vm_range_avx512<T, S>;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return &vm_range_avx2<T, S>;
#endif
  return &vm_range_baseline<T, S>;
}

at::Tensor vonmises_sample(const at::Tensor& concentration, std::optional<at::Generator> generator) {
  ops::check_floating("vonmises_sample", "concentration", concentration);
  // Contiguous so that element i of the output is element i of the stream layout, whatever the strides.
  const auto kappa = concentration.contiguous();
  auto out = at::empty_like(kappa, at::MemoryFormat::Contiguous);
  const int64_t n = kappa.numel();
  if (n == 0) return out;
  const uint64_t seed = draw_seed(generator);
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
