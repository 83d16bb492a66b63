// CPU kernels of the fused samplers.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <mutex>

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
    // A rejection sampler costs ~100 ns per element: grain 2048 keeps the per-task overhead small.
    at::parallel_for(0, n, 2048, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        o[i] = static_cast<scalar_t>(
            ops::vonmises_sample_element<acc_t>(static_cast<acc_t>(k[i]), seed, static_cast<uint64_t>(i), 0));
      }
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(gradkern, CPU, m) {
  m.impl("vonmises_sample", &vonmises_sample);
}

}  // namespace gradkern
