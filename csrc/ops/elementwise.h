// Scalar functors shared by the CPU and CUDA loops: each maps one element through the numerical core.
// They are the only place where an op name meets a core function, so CPU and CUDA cannot drift.
#pragma once

#include "core/igamma.h"
#include "core/vonmises_cdf.h"

namespace gradkern {
namespace ops {

#define GK_BINARY_FUNCTOR(NAME, EXPR)                          \
  struct NAME {                                                \
    template <typename T>                                      \
    GK_HD T operator()(T a, T b) const { return EXPR; }        \
  };

GK_BINARY_FUNCTOR(GammaincP, core::gammainc_p(a, b))
GK_BINARY_FUNCTOR(GammaincQ, core::gammainc_q(a, b))
GK_BINARY_FUNCTOR(GammaincGradA, core::gammainc_grad_a(a, b))
GK_BINARY_FUNCTOR(StandardGammaGrad, core::standard_gamma_grad(a, b))
GK_BINARY_FUNCTOR(LogStandardGammaGrad, core::log_standard_gamma_grad(a, b))
GK_BINARY_FUNCTOR(Gammaincinv, core::gammaincinv(a, b))
// (x, kappa) argument order follows the op schemas.
GK_BINARY_FUNCTOR(VonmisesCdf, core::vonmises_cdf(a, b))
GK_BINARY_FUNCTOR(VonmisesCdfGradConcentration, core::vonmises_cdf_grad_concentration(a, b))
GK_BINARY_FUNCTOR(VonmisesGrad, core::vonmises_grad(a, b))
GK_BINARY_FUNCTOR(VonmisesShiftWrap, core::vonmises_shift_wrap(a, b))

#undef GK_BINARY_FUNCTOR

// The elementwise ops, listed once for both backends: X(op name, functor, first argument's name,
// second argument's name). csrc/cpu/elementwise.cpp and csrc/cuda/elementwise.cu expand it into their
// kernels and registrations, so a new op cannot be registered on one backend and forgotten on the other.
#define GK_ELEMENTWISE_OPS(X)                                                           \
  X(gammainc, GammaincP, "a", "x")                                                      \
  X(gammaincc, GammaincQ, "a", "x")                                                     \
  X(gammainc_grad_a, GammaincGradA, "a", "x")                                           \
  X(standard_gamma_grad, StandardGammaGrad, "alpha", "x")                               \
  X(log_standard_gamma_grad, LogStandardGammaGrad, "alpha", "log_x")                    \
  X(gammaincinv, Gammaincinv, "a", "p")                                                 \
  X(vonmises_cdf, VonmisesCdf, "x", "concentration")                                    \
  X(vonmises_cdf_grad_concentration, VonmisesCdfGradConcentration, "x", "concentration") \
  X(vonmises_grad, VonmisesGrad, "concentration", "x")                                  \
  X(vonmises_shift_wrap, VonmisesShiftWrap, "x", "loc")

}  // namespace ops
}  // namespace gradkern
