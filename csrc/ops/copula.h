// What the CPU and CUDA copula kernels (csrc/cpu/copula.cpp, csrc/cuda/copula.cu) share: argument
// checks, output allocation, the TensorIterators of the elementwise ops, their scalar functors over the
// core (csrc/core/copula.h), and the list of ops each backend registers. Only the sampling loops and
// the random-number plumbing differ between the backends.
#pragma once

#include <vector>

#include "core/copula.h"
#include "ops/tensor_checks.h"

namespace gradkern {
namespace ops {

inline void check_copula_n(const char* op, int64_t n) {
  TORCH_CHECK(n >= 2, "gradkern.", op, ": n (the number of antithetic samples) must be >= 2, got ", n);
}

// The (n, *like.shape) output of a copula sampler; `like` sets dtype (float32/float64) and device.
inline at::Tensor copula_output(const char* op, const at::Tensor& like, int64_t n) {
  check_copula_n(op, n);
  TORCH_CHECK(like.defined(), "gradkern.", op, ": like is undefined");
  TORCH_CHECK(like.scalar_type() == at::kFloat || like.scalar_type() == at::kDouble, "gradkern.", op,
              ": like must be a float32 or float64 tensor (it sets the output dtype), got ", like.scalar_type());
  std::vector<int64_t> shape{n};
  shape.insert(shape.end(), like.sizes().begin(), like.sizes().end());
  return at::empty(shape, like.options().memory_format(at::MemoryFormat::Contiguous));
}

// Elementwise rho(p; n).
inline at::TensorIterator copula_rho_iter(const char* op, const at::Tensor& p, int64_t n) {
  check_copula_n(op, n);
  check_floating(op, "p", p);
  return at::TensorIteratorConfig().add_owned_output(at::Tensor()).add_const_input(p).build();
}

// The orientation of the Dirichlet copula (core::DirichletMode, in its order).
inline core::DirichletMode dirichlet_mode(c10::string_view mode) {
  return static_cast<core::DirichletMode>(
      choice_index("dirichlet_copula_rho", "mode", mode, {"oriented", "direct", "reflected"}));
}

inline at::TensorIterator bvn_iter(const at::Tensor& h, const at::Tensor& k, const at::Tensor& r) {
  const char* op = "bivariate_normal_cdf";
  check_floating(op, "h", h);
  check_floating(op, "k", k);
  check_floating(op, "r", r);
  TORCH_CHECK(h.scalar_type() == k.scalar_type() && h.scalar_type() == r.scalar_type(), "gradkern.", op,
              ": h, k and r must have the same dtype, got ", h.scalar_type(), ", ", k.scalar_type(), " and ",
              r.scalar_type());
  return at::TensorIteratorConfig()
      .add_owned_output(at::Tensor())
      .add_const_input(h)
      .add_const_input(k)
      .add_const_input(r)
      .build();
}

// Scalar functors (half/bfloat16 computed in float, as opmath_type gives).
template <typename scalar_t, typename acc_t>
struct DirichletRhoFn {
  int64_t n;
  core::DirichletMode mode;
  GK_HD scalar_t operator()(scalar_t p) const {
    return static_cast<scalar_t>(core::dirichlet_copula_rho<acc_t>(static_cast<acc_t>(p), n, mode));
  }
};

// Gaussian: every dtype is evaluated in double (Phi^-1 feeds an exponent, whose error is amplified by
// 2 h^2) and rounded once.
template <typename scalar_t>
struct GaussianRhoFn {
  int64_t n;
  GK_HD scalar_t operator()(scalar_t p) const {
    return static_cast<scalar_t>(core::gaussian_copula_rho<double>(static_cast<double>(p), n));
  }
};

template <typename scalar_t, typename acc_t>
struct BvnFn {
  GK_HD scalar_t operator()(scalar_t h, scalar_t k, scalar_t r) const {
    return static_cast<scalar_t>(core::bvn_cdf<acc_t>(static_cast<acc_t>(h), static_cast<acc_t>(k),
                                                      static_cast<acc_t>(r)));
  }
};

// The ops both backends register (csrc/schemas.cpp declares them).
#define GK_COPULA_OPS(X) \
  X(dirichlet_copula)    \
  X(gaussian_copula)     \
  X(dirichlet_copula_rho) \
  X(gaussian_copula_rho) \
  X(bivariate_normal_cdf)

}  // namespace ops
}  // namespace gradkern
