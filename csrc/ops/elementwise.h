// Scalar functors shared by the CPU and CUDA loops: each maps one element through the numerical core.
// They are the only place where an op name meets a core function, so CPU and CUDA cannot drift.
#pragma once

#include "core/ibeta.h"
#include "core/ibeta_d2.h"
#include "core/igamma.h"
#include "core/igamma_d2.h"
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
GK_BINARY_FUNCTOR(GammaincGradAA, core::gammainc_grad_aa(a, b))
GK_BINARY_FUNCTOR(StandardGammaGradDalpha, core::standard_gamma_grad_dalpha(a, b))
GK_BINARY_FUNCTOR(LogStandardGammaGradDalpha, core::log_standard_gamma_grad_dalpha(a, b))
// (x, kappa) argument order follows the op schemas.
GK_BINARY_FUNCTOR(VonmisesCdf, core::vonmises_cdf(a, b))
GK_BINARY_FUNCTOR(VonmisesCdfGradConcentration, core::vonmises_cdf_grad_concentration(a, b))
GK_BINARY_FUNCTOR(VonmisesGrad, core::vonmises_grad(a, b))
GK_BINARY_FUNCTOR(VonmisesShiftWrap, core::vonmises_shift_wrap(a, b))
GK_BINARY_FUNCTOR(VonmisesCdfGradKK, core::vonmises_cdf_grad_kk(a, b))
GK_BINARY_FUNCTOR(VonmisesGradDconcentration, core::vonmises_grad_dconcentration(a, b))

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
  X(gammainc_grad_aa, GammaincGradAA, "a", "x")                                         \
  X(standard_gamma_grad_dalpha, StandardGammaGradDalpha, "alpha", "x")                  \
  X(log_standard_gamma_grad_dalpha, LogStandardGammaGradDalpha, "alpha", "log_x")       \
  X(vonmises_cdf, VonmisesCdf, "x", "concentration")                                    \
  X(vonmises_cdf_grad_concentration, VonmisesCdfGradConcentration, "x", "concentration") \
  X(vonmises_grad, VonmisesGrad, "concentration", "x")                                  \
  X(vonmises_shift_wrap, VonmisesShiftWrap, "x", "loc")                                \
  X(vonmises_cdf_grad_kk, VonmisesCdfGradKK, "x", "concentration")                      \
  X(vonmises_grad_dconcentration, VonmisesGradDconcentration, "concentration", "x")

// --- three-argument ops (the incomplete beta family, csrc/core/ibeta.h) ------------------------------
#define GK_TERNARY_FUNCTOR(NAME, EXPR)                         \
  struct NAME {                                                \
    template <typename T>                                      \
    GK_HD T operator()(T a, T b, T c) const { return EXPR; }   \
  };
GK_TERNARY_FUNCTOR(Betainc, core::betainc(a, b, c))
GK_TERNARY_FUNCTOR(Betaincc, core::betaincc(a, b, c))
GK_TERNARY_FUNCTOR(Betaincinv, core::betaincinv(a, b, c))
// (x, alpha, total) argument order: torch._dirichlet_grad's.
GK_TERNARY_FUNCTOR(DirichletGrad, core::dirichlet_grad(a, b, c))
#undef GK_TERNARY_FUNCTOR

// Several outputs from one evaluation (the partials share the continued fraction): `outputs` of them,
// written to o[0..outputs).
#define GK_TERNARY_MULTI_FUNCTOR(NAME, N, BODY)                            \
  struct NAME {                                                            \
    static constexpr int outputs = N;                                      \
    template <typename T>                                                  \
    GK_HD void operator()(T a, T b, T c, T* o) const { BODY; }             \
  };
GK_TERNARY_MULTI_FUNCTOR(BetaincGrads, 2, core::betainc_grads(a, b, c, o[0], o[1]))
GK_TERNARY_MULTI_FUNCTOR(StandardBetaGrad, 2, core::standard_beta_grad(a, b, c, o[0], o[1]))
GK_TERNARY_MULTI_FUNCTOR(BetaincGrads2, 3, core::betainc_grads2(a, b, c, o))
GK_TERNARY_MULTI_FUNCTOR(StandardBetaGradD2, 4, core::standard_beta_grad_d2(a, b, c, o))
#undef GK_TERNARY_MULTI_FUNCTOR

// X(op name, functor, three argument names), expanded by csrc/cpu/ibeta.cpp and csrc/cuda/ibeta.cu.
#define GK_TERNARY_OPS(X)                                \
  X(betainc, Betainc, "a", "b", "x")                     \
  X(betaincc, Betaincc, "a", "b", "x")                   \
  X(betaincinv, Betaincinv, "a", "b", "p")               \
  X(dirichlet_grad, DirichletGrad, "x", "alpha", "total")
#define GK_TERNARY_MULTI_OPS(X)                                \
  X(betainc_grads, BetaincGrads, "a", "b", "x")                \
  X(standard_beta_grad, StandardBetaGrad, "a", "b", "x")       \
  X(betainc_grads2, BetaincGrads2, "a", "b", "x")              \
  X(standard_beta_grad_d2, StandardBetaGradD2, "a", "b", "x")

}  // namespace ops
}  // namespace gradkern
