// CPU sampler entry points that other translation units call directly (csrc/composite.cpp's standard_gamma),
// defined in csrc/cpu/gamma_sampler.cpp.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/core/Generator.h>

#include <optional>

namespace gradkern {
namespace cpu {

// Whether this CPU runs the blocked Gamma sampler (AVX2 or AVX-512; cpu/gamma_sampler_block.h).
bool blocked_gamma_sampler();

// Gamma(alpha, 1) samples from the blocked sampler (a contiguous tensor of alpha's shape; NaN for alpha <= 0
// or NaN, inf for inf). Only where blocked_gamma_sampler() is true.
at::Tensor standard_gamma_blocked(const at::Tensor& alpha, std::optional<at::Generator> generator);

// In place over the last dimension of a contiguous float or double tensor of log-Gamma draws: softmax, then
// clamped into [lo, hi] (standard_dirichlet's normalisation). Returns false, touching nothing, where the blocked
// sampler is not available or the tensor is not contiguous float / double (the caller then uses ATen's softmax).
bool softmax_lastdim_clamp_(at::Tensor& x, double lo, double hi);

}  // namespace cpu
}  // namespace gradkern
