// CPU kernels for the ARMS copula ops (csrc/core/copula.h): the antithetic Dirichlet and Gaussian
// copula samplers and the elementwise correlation functions.
//
// Random numbers: one 64-bit seed is drawn from the torch.Generator under its mutex per call; copula
// column j (one Bernoulli dimension, n correlated uniforms) reads the counter-based Philox stream
// (seed, subsequence = j), so the result is the same for any number of threads and any grain size.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/native/cpu/Loops.h>
#include <torch/library.h>

#include "core/philox.h"
#include "cpu/host.h"
#include "ops/copula.h"

namespace gradkern {
namespace {

template <bool Gaussian>
at::Tensor cpu_copula(const char* op, const at::Tensor& like, int64_t n,
                      const std::optional<at::Generator>& generator) {
  TORCH_CHECK(!like.defined() || like.device().is_cpu(), "gradkern.", op, ": expected a CPU tensor, got ",
              like.device());
  at::Tensor out = ops::copula_output(op, like, n);
  const int64_t m = like.numel();
  if (m == 0) return out;
  const uint64_t seed = cpu::draw_seed(generator);
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

at::Tensor dirichlet_copula_rho(const at::Tensor& p, int64_t n, c10::string_view mode) {
  const auto m = ops::dirichlet_mode(mode);
  auto iter = ops::copula_rho_iter("dirichlet_copula_rho", p, n);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.common_dtype(), "dirichlet_copula_rho", [&] {
    const ops::DirichletRhoFn<scalar_t, at::opmath_type<scalar_t>> fn{n, m};
    at::native::cpu_kernel(iter, [fn](scalar_t x) -> scalar_t { return fn(x); });
  });
  return iter.output();
}

at::Tensor gaussian_copula_rho(const at::Tensor& p, int64_t n) {
  auto iter = ops::copula_rho_iter("gaussian_copula_rho", p, n);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.common_dtype(), "gaussian_copula_rho", [&] {
    const ops::GaussianRhoFn<scalar_t> fn{n};
    at::native::cpu_kernel(iter, [fn](scalar_t x) -> scalar_t { return fn(x); });
  });
  return iter.output();
}

at::Tensor bivariate_normal_cdf(const at::Tensor& h, const at::Tensor& k, const at::Tensor& r) {
  auto iter = ops::bvn_iter(h, k, r);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.common_dtype(), "bivariate_normal_cdf", [&] {
    const ops::BvnFn<scalar_t, at::opmath_type<scalar_t>> fn;
    at::native::cpu_kernel(iter, [fn](scalar_t a, scalar_t b, scalar_t c) -> scalar_t { return fn(a, b, c); });
  });
  return iter.output();
}

}  // namespace

TORCH_LIBRARY_IMPL(gradkern, CPU, m) {
#define GK_REGISTER(NAME) m.impl(#NAME, &NAME);
  GK_COPULA_OPS(GK_REGISTER)
#undef GK_REGISTER
}

}  // namespace gradkern
