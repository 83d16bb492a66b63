// CPU kernels for the ARMS copula ops (csrc/core/copula.h): the antithetic Dirichlet and Gaussian
// copula samplers and the elementwise correlation functions.
//
// Random numbers: one 64-bit seed is drawn from the torch.Generator under its mutex per call; copula
// column j (one Bernoulli dimension, n correlated uniforms) reads the counter-based Philox stream
// (seed, subsequence = j), so the result is the same for any number of threads and any grain size.
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/native/cpu/Loops.h>
#include <torch/library.h>

#include <mutex>

#include "core/copula.h"
#include "core/philox.h"
#include "ops/tensor_checks.h"

namespace gradkern {
namespace {

uint64_t draw_seed(const std::optional<at::Generator>& generator) {
  auto* gen = at::get_generator_or_default<at::CPUGeneratorImpl>(generator, at::detail::getDefaultCPUGenerator());
  std::lock_guard<std::mutex> lock(gen->mutex_);
  return gen->random64();
}

at::Tensor empty_copula(const char* op, const at::Tensor& like, int64_t n) {
  TORCH_CHECK(n >= 2, "gradkern.", op, ": n (the number of antithetic samples) must be >= 2, got ", n);
  TORCH_CHECK(like.defined(), "gradkern.", op, ": like is undefined");
  TORCH_CHECK(like.scalar_type() == at::kFloat || like.scalar_type() == at::kDouble, "gradkern.", op,
              ": like must be a float32 or float64 tensor (it sets the output dtype), got ", like.scalar_type());
  std::vector<int64_t> shape{n};
  shape.insert(shape.end(), like.sizes().begin(), like.sizes().end());
  return at::empty(shape, like.options().memory_format(at::MemoryFormat::Contiguous));
}

template <bool Gaussian>
at::Tensor cpu_copula(const char* op, const at::Tensor& like, int64_t n,
                      const std::optional<at::Generator>& generator) {
  TORCH_CHECK(like.device().is_cpu(), "gradkern.", op, ": expected a CPU tensor, got ", like.device());
  at::Tensor out = empty_copula(op, like, n);
  const int64_t m = like.numel();
  if (m == 0) return out;
  const uint64_t seed = draw_seed(generator);
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "copula_sample", [&] {
    scalar_t* data = out.data_ptr<scalar_t>();
    // Column j holds one copula draw at stride m; ~n transcendental calls per column.
    const int64_t grain = std::max<int64_t>(1, 32768 / n);
    at::parallel_for(0, m, grain, [&](int64_t begin, int64_t end) {
      for (int64_t j = begin; j < end; ++j) {
        core::Philox src(seed, static_cast<uint64_t>(j), 0);
        if (Gaussian) {
          core::gaussian_copula_sample<scalar_t>(n, src, data + j, m);
        } else {
          core::dirichlet_copula_sample<scalar_t>(n, src, data + j, m);
        }
      }
    });
  });
  return out;
}

at::Tensor dirichlet_copula(const at::Tensor& like, int64_t n, std::optional<at::Generator> generator) {
  return cpu_copula<false>("dirichlet_copula", like, n, generator);
}

at::Tensor gaussian_copula(const at::Tensor& like, int64_t n, std::optional<at::Generator> generator) {
  return cpu_copula<true>("gaussian_copula", like, n, generator);
}

// Elementwise rho(p; n). Gaussian: float inputs are evaluated in double (Phi^-1 feeds an exponent, whose
// error is amplified by 2 h^2) and rounded once.

at::TensorIterator unary_iter(const char* op, const at::Tensor& p, int64_t n) {
  TORCH_CHECK(n >= 2, "gradkern.", op, ": n (the number of antithetic samples) must be >= 2, got ", n);
  ops::check_floating(op, "p", p);
  at::Tensor out;  // undefined: allocated by TensorIterator
  return at::TensorIteratorConfig().add_output(out).add_const_input(p).build();
}

at::Tensor dirichlet_copula_rho(const at::Tensor& p, int64_t n, int64_t mode) {
  TORCH_CHECK(mode >= 0 && mode <= 2, "gradkern.dirichlet_copula_rho: mode must be 0 (oriented), 1 (direct) "
              "or 2 (reflected), got ", mode);
  auto iter = unary_iter("dirichlet_copula_rho", p, n);
  const auto m = static_cast<core::DirichletMode>(mode);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.common_dtype(), "dirichlet_copula_rho", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    at::native::cpu_kernel(iter, [n, m](scalar_t x) -> scalar_t {
      return static_cast<scalar_t>(core::dirichlet_copula_rho<acc_t>(static_cast<acc_t>(x), n, m));
    });
  });
  return iter.output();
}

at::Tensor gaussian_copula_rho(const at::Tensor& p, int64_t n) {
  auto iter = unary_iter("gaussian_copula_rho", p, n);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.common_dtype(), "gaussian_copula_rho", [&] {
    at::native::cpu_kernel(iter, [n](scalar_t x) -> scalar_t {
      return static_cast<scalar_t>(core::gaussian_copula_rho<double>(static_cast<double>(x), n));
    });
  });
  return iter.output();
}

at::Tensor bivariate_normal_cdf(const at::Tensor& h, const at::Tensor& k, const at::Tensor& r) {
  const char* op = "bivariate_normal_cdf";
  ops::check_floating(op, "h", h);
  ops::check_floating(op, "k", k);
  ops::check_floating(op, "r", r);
  TORCH_CHECK(h.scalar_type() == k.scalar_type() && h.scalar_type() == r.scalar_type(), "gradkern.", op,
              ": h, k and r must have the same dtype, got ", h.scalar_type(), ", ", k.scalar_type(), " and ",
              r.scalar_type());
  at::Tensor out;  // undefined: allocated by TensorIterator
  auto iter = at::TensorIteratorConfig()
                  .add_output(out)
                  .add_const_input(h)
                  .add_const_input(k)
                  .add_const_input(r)
                  .build();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.common_dtype(), "bivariate_normal_cdf", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    at::native::cpu_kernel(iter, [](scalar_t a, scalar_t b, scalar_t c) -> scalar_t {
      return static_cast<scalar_t>(
          core::bvn_cdf<acc_t>(static_cast<acc_t>(a), static_cast<acc_t>(b), static_cast<acc_t>(c)));
    });
  });
  return iter.output();
}

}  // namespace

TORCH_LIBRARY_IMPL(gradkern, CPU, m) {
  m.impl("dirichlet_copula", &dirichlet_copula);
  m.impl("gaussian_copula", &gaussian_copula);
  m.impl("dirichlet_copula_rho", &dirichlet_copula_rho);
  m.impl("gaussian_copula_rho", &gaussian_copula_rho);
  m.impl("bivariate_normal_cdf", &bivariate_normal_cdf);
}

}  // namespace gradkern
