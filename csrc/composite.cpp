// Device-agnostic kernels composed of ATen calls (registered for CompositeExplicitAutograd, so they run
// on CPU and CUDA alike; their autograd formulas are registered in Python, gradkern/_gamma.py).
//
// Conventions shared with the fused kernels: an invalid concentration (alpha <= 0 or NaN) gives a NaN
// sample, as torch's special functions do for out-of-domain arguments (torch's own Gamma sampler
// returns a finite number there); half and bfloat16 are sampled in float32 and rounded once, as the
// elementwise ops compute them.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <limits>

#include "ops/tensor_checks.h"

namespace gradkern {
namespace {

bool reduced_precision(const at::Tensor& t) {
  return t.scalar_type() == at::kHalf || t.scalar_type() == at::kBFloat16;
}

// NaN where alpha is not a valid concentration (alpha > 0 fails for NaN too).
at::Tensor nan_where_invalid(at::Tensor out, const at::Tensor& alpha) {
  return out.masked_fill_(alpha.le(0).logical_or_(alpha.isnan()), std::numeric_limits<double>::quiet_NaN());
}

at::Tensor standard_gamma(const at::Tensor& alpha, std::optional<at::Generator> generator) {
  ops::check_floating("standard_gamma", "alpha", alpha);
  // The sample is the first allocation (an impossible request fails at once); peak ~1.25x the output.
  if (reduced_precision(alpha)) return standard_gamma(alpha.to(at::kFloat), generator).to(alpha.scalar_type());
  return nan_where_invalid(at::_standard_gamma(alpha, generator), alpha);
}

at::Tensor log_standard_gamma(const at::Tensor& alpha, std::optional<at::Generator> generator) {
  ops::check_floating("log_standard_gamma", "alpha", alpha);
  if (reduced_precision(alpha)) return log_standard_gamma(alpha.to(at::kFloat), generator).to(alpha.scalar_type());
  // Gamma(a) = Gamma(a + 1) * U^(1/a) in distribution. For a < 1, U^(1/a) underflows (a = 1e-4 already
  // gives 0 for u < 0.9 in float32), so the product is formed as a sum of logs. For a >= 1 the sample
  // itself is safe and one uniform per element is the only overhead.
  // Memory: peak ~2.25x the output (float32: the shape buffer and its mask, then the sample with the
  // uniforms, everything else in place). An impossible request fails at once: an output-sized block is
  // reserved first and released untouched, so the allocator refuses it before any pass writes memory.
  (void)at::empty_like(alpha, at::MemoryFormat::Contiguous);
  at::Tensor out;
  {
    const at::Tensor shape = alpha + (alpha < 1);  // alpha + 1 where alpha < 1, exactly; one buffer
    out = at::_standard_gamma(shape, generator);
  }
  out.log_();
  // log(1 - U) with U in [0, 1): uniform_ can return exactly 0, whose log would be -inf.
  at::Tensor u = at::empty_like(out).uniform_(0, 1, generator).neg_().log1p_().div_(alpha);
  u.masked_fill_(alpha >= 1, 0);
  out.add_(u);
  u.reset();  // before the validity masks
  return nan_where_invalid(out, alpha);
}

}  // namespace

TORCH_LIBRARY_IMPL(gradkern, CompositeExplicitAutograd, m) {
  m.impl("standard_gamma", &standard_gamma);
  m.impl("log_standard_gamma", &log_standard_gamma);
}

}  // namespace gradkern
