// CPU kernels of the fused Gamma-family samplers (csrc/core/gamma_sampler.h via ops/gamma_sampler.h):
// log_standard_gamma and standard_beta (standard_gamma itself stays on torch's sampler, csrc/composite.cpp:
// in float64 torch's is faster than this scalar loop, 36 vs 58 ns per element on one thread). TensorIterator brings broadcasting (standard_beta's
// two parameters), strides and threads; each element's Philox subsequence is its position in the
// contiguous output, recovered from the output pointer, so the bits do not depend on how the iterator
// splits or orders the work. Half and bfloat16 are sampled in float and rounded once.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/ExpandUtils.h>
#include <ATen/OpMathType.h>
#include <ATen/TensorIterator.h>
#include <torch/library.h>

#include "cpu/host.h"
#include "ops/gamma_sampler.h"
#include "ops/tensor_checks.h"

namespace gradkern {
namespace {

// ~20-60 ns per element.
constexpr int64_t kGrain = 8192;

at::Tensor gamma_sampler(const char* op, const at::Tensor& alpha, std::optional<at::Generator> generator,
                         bool log_space) {
  ops::check_floating(op, "alpha", alpha);
  // The sample is the first and only allocation: an impossible request fails at once, peak 1x the output.
  auto out = at::empty(alpha.sizes(), alpha.options().memory_format(at::MemoryFormat::Contiguous));
  if (out.numel() == 0) return out;
  const uint64_t seed = cpu::draw_seed(generator);
  auto iter = at::TensorIteratorConfig().add_output(out).add_const_input(alpha).build();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, alpha.scalar_type(), "gradkern_gamma_sampler", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* base = out.const_data_ptr<scalar_t>();
    iter.for_each([&](char** data, const int64_t* strides, int64_t n) {
      for (int64_t i = 0; i < n; ++i) {
        scalar_t* o = reinterpret_cast<scalar_t*>(data[0] + i * strides[0]);
        const acc_t a = static_cast<acc_t>(*reinterpret_cast<const scalar_t*>(data[1] + i * strides[1]));
        *o = static_cast<scalar_t>(
            ops::gamma_sample_element<acc_t>(a, seed, static_cast<uint64_t>(o - base), 0, log_space));
      }
    }, kGrain);
  });
  return out;
}

at::Tensor log_standard_gamma(const at::Tensor& alpha, std::optional<at::Generator> generator) {
  return gamma_sampler("log_standard_gamma", alpha, generator, true);
}

at::Tensor standard_beta(const at::Tensor& a, const at::Tensor& b, std::optional<at::Generator> generator) {
  ops::check_beta_concentrations("standard_beta", a, b);
  auto out = at::empty(at::infer_size(a.sizes(), b.sizes()), a.options().memory_format(at::MemoryFormat::Contiguous));
  if (out.numel() == 0) return out;
  const uint64_t seed = cpu::draw_seed(generator);
  auto iter = at::TensorIteratorConfig().add_output(out).add_const_input(a).add_const_input(b).build();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, a.scalar_type(), "gradkern_beta_sampler", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const acc_t lo = static_cast<acc_t>(ops::unit_clamp<scalar_t>::lo);
    const acc_t hi = static_cast<acc_t>(ops::unit_clamp<scalar_t>::hi);
    const scalar_t* base = out.const_data_ptr<scalar_t>();
    iter.for_each([&](char** data, const int64_t* strides, int64_t n) {
      for (int64_t i = 0; i < n; ++i) {
        scalar_t* o = reinterpret_cast<scalar_t*>(data[0] + i * strides[0]);
        const acc_t x = static_cast<acc_t>(*reinterpret_cast<const scalar_t*>(data[1] + i * strides[1]));
        const acc_t y = static_cast<acc_t>(*reinterpret_cast<const scalar_t*>(data[2] + i * strides[2]));
        *o = static_cast<scalar_t>(ops::beta_sample_element<acc_t>(x, y, seed, static_cast<uint64_t>(o - base), 0, lo, hi));
      }
    }, kGrain);
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(gradkern, CPU, m) {
  m.impl("log_standard_gamma", &log_standard_gamma);
  m.impl("standard_beta", &standard_beta);
}

}  // namespace gradkern
