// Device-agnostic kernels composed of ATen calls and gradkern ops (registered for
// CompositeExplicitAutograd, so they run on CPU and CUDA alike; their autograd formulas are registered in
// Python, gradkern/_gamma.py and _beta.py): standard_gamma (torch's sampler), the Dirichlet sampler
// (softmax of the fused log-space Gamma draws) and sigmoid_difference. The log-space Gamma and the Beta
// samplers are fused kernels (csrc/cpu/gamma_sampler.cpp, csrc/cuda/gamma_sampler.cu).
//
// Conventions shared with the fused kernels: an invalid concentration (alpha <= 0 or NaN) gives a NaN
// sample, as torch's special functions do for out-of-domain arguments (torch's own Gamma sampler
// returns a finite number there); half and bfloat16 are sampled in float32 and rounded once, as the
// elementwise ops compute them.
#include <ATen/ATen.h>
#include <ATen/OpMathType.h>
#include <torch/library.h>

#include <ATen/Dispatch.h>
#include <ATen/ExpandUtils.h>
#include <ATen/TensorIterator.h>

#include <limits>

#include "cpu/samplers.h"
#include "ops/tensor_checks.h"

namespace gradkern {
namespace {

bool reduced_precision(const at::Tensor& t) {
  return t.scalar_type() == at::kHalf || t.scalar_type() == at::kBFloat16;
}

// NaN where alpha is not a valid concentration (alpha > 0 fails for NaN too). On the CPU, for the
// contiguous same-shape float / double case (the sampler's own output), one pass over the two buffers:
// the three-op masked form costs ~3.5 microseconds per call on small tensors (issue 21).
at::Tensor nan_where_invalid(at::Tensor out, const at::Tensor& alpha) {
  if (out.is_cpu() && alpha.is_cpu() && out.is_contiguous() && alpha.is_contiguous() &&
      out.sizes().equals(alpha.sizes()) && out.scalar_type() == alpha.scalar_type() &&
      (out.scalar_type() == at::kFloat || out.scalar_type() == at::kDouble)) {
    AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "gradkern_nan_where_invalid", [&] {
      scalar_t* o = out.data_ptr<scalar_t>();
      const scalar_t* a = alpha.const_data_ptr<scalar_t>();
      const int64_t n = out.numel();
      for (int64_t i = 0; i < n; ++i)
        if (!(a[i] > 0)) o[i] = std::numeric_limits<scalar_t>::quiet_NaN();
    });
    return out;
  }
  return out.masked_fill_(alpha.le(0).logical_or_(alpha.isnan()), std::numeric_limits<double>::quiet_NaN());
}

// Gamma(alpha, 1) samples, NaN for an invalid alpha: on CPUs with AVX2 the blocked Marsaglia-Tsang sampler
// of log_standard_gamma and standard_beta (cpu/gamma_sampler_block.h, 2-3x faster than torch's there); on other
// CPUs and on CUDA torch's sampler (faster than the fused per-element loop those run).
at::Tensor standard_gamma(const at::Tensor& alpha, std::optional<at::Generator> generator) {
  ops::check_floating("standard_gamma", "alpha", alpha);
  if (alpha.device().is_cpu() && cpu::blocked_gamma_sampler()) return cpu::standard_gamma_blocked(alpha, generator);
  // The sample is the first allocation (an impossible request fails at once); peak ~1.25x the output.
  if (reduced_precision(alpha)) return standard_gamma(alpha.to(at::kFloat), generator).to(alpha.scalar_type());
  return nan_where_invalid(at::_standard_gamma(alpha, generator), alpha);
}

// The fused log-space Gamma sampler (csrc/cpu/gamma_sampler.cpp, csrc/cuda/gamma_sampler.cu), through the
// dispatcher: its CPU or CUDA kernel, whichever the tensor needs.
at::Tensor log_standard_gamma(const at::Tensor& alpha, std::optional<at::Generator> generator) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("gradkern::log_standard_gamma", "")
                             .typed<at::Tensor(const at::Tensor&, std::optional<at::Generator>)>();
  return op.call(alpha, generator);
}

// The open unit interval's ends in the sample's dtype: samples are clamped into [tiny, 1 - eps/2] as
// torch's Beta and Dirichlet clamp theirs (log_prob stays finite). The gradient ops evaluate the implicit
// gradient at the returned value, so a clamped sample keeps a finite, correct gradient (torch's clamp
// zeroes it).
double open_lo(at::ScalarType t) { return t == at::kFloat ? std::numeric_limits<float>::min() : std::numeric_limits<double>::min(); }
double open_hi(at::ScalarType t) {
  return t == at::kFloat ? 1.0 - std::numeric_limits<float>::epsilon() / 2 : 1.0 - std::numeric_limits<double>::epsilon() / 2;
}

// sigmoid(x - y) = 1 / (1 + exp(y - x)), full relative precision for either sign (the exp overflows to
// inf exactly where the result underflows to 0), written into `out` (which may be x). On the CPU a scalar
// loop: ATen's vectorized sigmoid takes a scalar path for the tail of each thread's range, whose last bit
// can differ from the vector path's, so the bits of a seeded draw would depend on the thread count.
void sigmoid_difference_into(at::Tensor& out, const at::Tensor& x, const at::Tensor& y) {
  if (!out.is_cpu()) {
    if (out.is_same(x)) out.sub_(y).sigmoid_();
    else at::sigmoid_out(out, x - y);
    return;
  }
  auto iter = at::TensorIteratorConfig().add_output(out).add_const_input(x).add_const_input(y).build();
  // A plain strided loop (not ATen's cpu_kernel, whose vectorized variants cost compile time for nothing).
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.common_dtype(), "gradkern_sigmoid_difference", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    iter.for_each([](char** data, const int64_t* strides, int64_t n) {
      for (int64_t i = 0; i < n; ++i) {
        const acc_t a = static_cast<acc_t>(*reinterpret_cast<const scalar_t*>(data[1] + i * strides[1]));
        const acc_t b = static_cast<acc_t>(*reinterpret_cast<const scalar_t*>(data[2] + i * strides[2]));
        *reinterpret_cast<scalar_t*>(data[0] + i * strides[0]) = static_cast<scalar_t>(acc_t(1) / (acc_t(1) + std::exp(b - a)));
      }
    });
  });
}

at::Tensor sigmoid_difference(const at::Tensor& x, const at::Tensor& y) {
  auto iter = ops::binary_iter("sigmoid_difference", "x", x, "y", y);  // checks, shape and dtype
  at::Tensor out = iter.output();
  sigmoid_difference_into(out, x, y);
  return out;
}

at::Tensor standard_dirichlet(const at::Tensor& alpha, std::optional<at::Generator> generator) {
  ops::check_floating("standard_dirichlet", "concentration", alpha);
  TORCH_CHECK(alpha.dim() >= 1, "gradkern.standard_dirichlet: concentration must have at least one dimension (K)");
  if (reduced_precision(alpha)) return standard_dirichlet(alpha.to(at::kFloat), generator).to(alpha.scalar_type());
  // Normalised in log space (softmax of log-Gamma draws), as standard_beta.
  at::Tensor out = log_standard_gamma(alpha, generator);
  // on CPUs with AVX2 one fused pass (softmax and clamp per row, cpu/samplers.h; ATen's softmax cost as much
  // as the sampling for K = 5), else ATen's
  if (out.device().is_cpu() && cpu::softmax_lastdim_clamp_(out, open_lo(out.scalar_type()), open_hi(out.scalar_type())))
    return out;
  out = at::softmax(out, -1);
  return out.clamp_(open_lo(out.scalar_type()), open_hi(out.scalar_type()));
}

}  // namespace

TORCH_LIBRARY_IMPL(gradkern, CompositeExplicitAutograd, m) {
  m.impl("standard_gamma", &standard_gamma);
  m.impl("sigmoid_difference", &sigmoid_difference);
  m.impl("standard_dirichlet", &standard_dirichlet);
}

}  // namespace gradkern
