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

}  // namespace cpu
}  // namespace gradkern
