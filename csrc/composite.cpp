// Device-agnostic kernels composed of ATen calls (registered for CompositeExplicitAutograd, so they run
// on CPU and CUDA alike; their autograd formulas are registered in Python, gradkern/gamma.py).
#include <ATen/ATen.h>
#include <torch/library.h>

#include "ops/tensor_checks.h"

namespace gradkern {
namespace {

at::Tensor standard_gamma(const at::Tensor& alpha, std::optional<at::Generator> generator) {
  ops::check_floating("standard_gamma", "alpha", alpha);
  return at::_standard_gamma(alpha, generator);
}

at::Tensor log_standard_gamma(const at::Tensor& alpha, std::optional<at::Generator> generator) {
  ops::check_floating("log_standard_gamma", "alpha", alpha);
  // Gamma(a) = Gamma(a + 1) * U^(1/a) in distribution. For a < 1, U^(1/a) underflows (a = 1e-4 already
  // gives 0 for u < 0.9 in float32), so the product is formed as a sum of logs. For a >= 1 the sample
  // itself is safe and one uniform per element is the only overhead.
  const auto small = alpha < 1;
  const auto y = at::_standard_gamma(at::where(small, alpha + 1, alpha), generator);
  // 1 - U lies in (0, 1]: uniform_ can return exactly 0, whose log would be -inf.
  const auto u = at::empty_like(alpha, at::MemoryFormat::Contiguous).uniform_(0, 1, generator).neg_().add_(1);
  return at::where(small, at::log(y) + at::log(u) / alpha, at::log(y));
}

}  // namespace

TORCH_LIBRARY_IMPL(gradkern, CompositeExplicitAutograd, m) {
  m.impl("standard_gamma", &standard_gamma);
  m.impl("log_standard_gamma", &log_standard_gamma);
}

}  // namespace gradkern
