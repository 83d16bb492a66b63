// Host-side helpers shared by the CPU kernels: the seed a random op takes from a torch.Generator, and
// the run-time choice of an instruction-set clone. Host only; nothing here is numerics (csrc/core/).
#pragma once

#include <ATen/CPUGeneratorImpl.h>

#include <cstdint>
#include <mutex>
#include <optional>

namespace gradkern {
namespace cpu {

// One 64-bit seed per call, drawn from the torch.Generator (or the default CPU generator) under its
// mutex. The kernels key counter-based Philox streams by (seed, element), so seeded runs reproduce bit
// for bit whatever the thread count, and successive calls get independent streams.
inline uint64_t draw_seed(const std::optional<at::Generator>& generator) {
  auto* gen = at::get_generator_or_default<at::CPUGeneratorImpl>(generator, at::detail::getDefaultCPUGenerator());
  std::lock_guard<std::mutex> lock(gen->mutex_);
  return gen->random64();
}

// Instruction-set clones. The baseline x86-64 build has SSE2 only; the CPU loops that vectorize are
// compiled again under these target attributes and one clone is picked per process from cpuid. A clone
// computes the same formulas, but with FMA available GCC contracts a * b + c into one rounding, so
// results may differ in the last bit between machines with different instruction sets (never between
// runs, thread counts or chunkings on one machine).
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define GK_HAVE_ISA_CLONES 1
#define GK_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define GK_TARGET_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")))
#endif

enum class Isa { baseline, avx2, avx512 };

// The widest clone this CPU runs: AVX-512 needs exactly the features GK_TARGET_AVX512 enables.
inline Isa best_isa() {
#ifdef GK_HAVE_ISA_CLONES
  static const Isa isa = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("fma"))
      return Isa::avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::avx2;
    return Isa::baseline;
  }();
  return isa;
#else
  return Isa::baseline;
#endif
}

// The function of this CPU's clone among an AVX-512, an AVX2 and a baseline one (any may be nullptr: no
// clone for that ISA). Callers name the clones only under GK_HAVE_ISA_CLONES.
template <typename F> F for_isa(F avx512, F avx2, F baseline) {
  switch (best_isa()) {
    case Isa::avx512: return avx512;
    case Isa::avx2: return avx2;
    default: return baseline;
  }
}

}  // namespace cpu
}  // namespace gradkern
