// Host-side glue shared by the CPU and CUDA mixture kernels (csrc/cpu/mixture.cpp,
// csrc/cuda/mixture.cu): argument checks, the reparameterised forward, the per-mixture preparation
// (log pi, reference scales) and the final assembly of the logits gradient. The per-sample math is
// csrc/core/mixture.h; only the loop over samples differs between the backends.
//
// Op-level shapes (the Python layer broadcasts and flattens batch and sample dimensions):
//   noise, z, grad: (S, B, D)   component: (S, B) int64
//   locs: (B, K, D)   coord_scale: (B, D) or (B, K, D) for MixtureOfDiagNormals
//   component_logits: (B, K)   component_scale: (B, K)
#pragma once

#include <ATen/ATen.h>

#include <tuple>
#include <vector>

#include "core/mixture.h"
#include "ops/tensor_checks.h"

namespace gradkern {
namespace ops {
namespace mixture {

using core::mixture::Family;

inline bool has_locs(int family) { return family != core::mixture::kScaleMixture; }
inline bool has_lam(int family) {
  return family == core::mixture::kScaleMixture || family == core::mixture::kDiscreteScaleMixture;
}
inline bool per_component_scale(int family) { return family == core::mixture::kDiagNormals; }

struct Inputs {
  int family;
  at::Tensor locs;    // undefined for the zero-mean scale mixture
  at::Tensor coord;
  at::Tensor logits;
  at::Tensor lam;     // undefined unless has_lam(family)
  // kDiagNormals only: the logit velocity field. true: "reference", one common reference N(mu', s'),
  // O(K D) per sample; false: "pairwise", per-component references plus eq. 15, O(K^2 D).
  bool common_reference = false;
};

// The `velocity` argument of the mixture_diag_normals ops.
inline bool parse_velocity(const char* op, c10::string_view velocity) {
  if (velocity == "reference") return true;
  if (velocity == "pairwise") return false;
  TORCH_CHECK(false, "gradkern.", op, ": velocity must be \"reference\" or \"pairwise\", got \"",
              std::string(velocity), "\"");
}

inline void check_param(const char* op, const char* name, const at::Tensor& t, at::IntArrayRef shape,
                        const char* shape_text, const at::Tensor& like) {
  check_floating(op, name, t);
  TORCH_CHECK(t.sizes() == shape, "gradkern.", op, ": ", name, " must have shape ", shape_text, " = ",
              shape, ", got ", t.sizes());
  TORCH_CHECK(t.scalar_type() == like.scalar_type(), "gradkern.", op, ": ", name,
              " must have the same dtype as component_logits (", like.scalar_type(), "), got ",
              t.scalar_type());
  TORCH_CHECK(t.device() == like.device(), "gradkern.", op, ": ", name,
              " must be on the same device as component_logits (", like.device(), "), got ", t.device());
}

// Checks the parameters; returns (B, K, D).
inline std::tuple<int64_t, int64_t, int64_t> check_params(const char* op, const Inputs& in) {
  check_floating(op, "component_logits", in.logits);
  TORCH_CHECK(in.logits.dim() == 2, "gradkern.", op, ": component_logits must have shape (B, K), got ",
              in.logits.sizes());
  TORCH_CHECK(in.logits.scalar_type() == at::kFloat || in.logits.scalar_type() == at::kDouble,
              "gradkern.", op, ": component_logits must be float32 or float64, got ",
              in.logits.scalar_type());
  const int64_t B = in.logits.size(0), K = in.logits.size(1);
  TORCH_CHECK(K >= 1, "gradkern.", op, ": the number of components K must be >= 1, got ", K);
  int64_t D;
  if (per_component_scale(in.family)) {
    TORCH_CHECK(in.coord.dim() == 3, "gradkern.", op, ": coord_scale must have shape (B, K, D), got ",
                in.coord.sizes());
    D = in.coord.size(2);
    check_param(op, "coord_scale", in.coord, {B, K, D}, "(B, K, D)", in.logits);
  } else {
    TORCH_CHECK(in.coord.dim() == 2, "gradkern.", op, ": coord_scale must have shape (B, D), got ",
                in.coord.sizes());
    D = in.coord.size(1);
    check_param(op, "coord_scale", in.coord, {B, D}, "(B, D)", in.logits);
  }
  TORCH_CHECK(D >= 1, "gradkern.", op, ": the event dimension D must be >= 1, got ", D);
  TORCH_CHECK(K <= INT32_MAX && D <= INT32_MAX && K * D <= INT32_MAX, "gradkern.", op,
              ": K * D must fit in 32 bits, got K = ", K, ", D = ", D);
  if (has_locs(in.family)) check_param(op, "locs", in.locs, {B, K, D}, "(B, K, D)", in.logits);
  if (has_lam(in.family)) check_param(op, "component_scale", in.lam, {B, K}, "(B, K)", in.logits);
  return {B, K, D};
}

inline void check_samples(const char* op, const char* name, const at::Tensor& t, int64_t B, int64_t D,
                          const at::Tensor& like) {
  check_floating(op, name, t);
  TORCH_CHECK(t.dim() == 3 && t.size(1) == B && t.size(2) == D, "gradkern.", op, ": ", name,
              " must have shape (S, B, D) = (S, ", B, ", ", D, "), got ", t.sizes());
  TORCH_CHECK(t.scalar_type() == like.scalar_type(), "gradkern.", op, ": ", name,
              " must have the same dtype as component_logits (", like.scalar_type(), "), got ",
              t.scalar_type());
  TORCH_CHECK(t.device() == like.device(), "gradkern.", op, ": ", name,
              " must be on the same device as component_logits (", like.device(), "), got ", t.device());
}

// Argument checks of the *_rsample ops; returns (B, K, D).
inline std::tuple<int64_t, int64_t, int64_t> check_rsample(const char* op, const Inputs& in,
                                                           const at::Tensor& noise, const at::Tensor& component) {
  int64_t B, K, D;
  std::tie(B, K, D) = check_params(op, in);
  check_samples(op, "noise", noise, B, D, in.logits);
  TORCH_CHECK(component.scalar_type() == at::kLong, "gradkern.", op,
              ": component must be an int64 tensor, got ", component.scalar_type());
  TORCH_CHECK(component.dim() == 2 && component.size(0) == noise.size(0) && component.size(1) == B,
              "gradkern.", op, ": component must have shape (S, B) = (", noise.size(0), ", ", B, "), got ",
              component.sizes());
  TORCH_CHECK(component.device() == noise.device(), "gradkern.", op,
              ": component must be on the same device as noise, got ", component.device());
  return {B, K, D};
}

// z = mu_k + lambda_k c_k * noise for the drawn component k of every sample. Written with ATen's
// gather so that one definition serves both devices (the CUDA kernels use it; the CPU has a fused loop,
// cpu_rsample in csrc/cpu/mixture.cpp, that does not materialise the gathered rows).
inline at::Tensor rsample(const char* op, const Inputs& in, const at::Tensor& noise,
                          const at::Tensor& component) {
  int64_t B, K, D;
  std::tie(B, K, D) = check_rsample(op, in, noise, component);
  const int64_t S = noise.size(0);
  // Pick parameter rows per sample: (B, K, X) -> (S, B, X).
  auto pick = [&](const at::Tensor& t) {
    const int64_t X = t.size(2);
    return at::gather(t.unsqueeze(0).expand({S, B, K, X}), 2, component.view({S, B, 1, 1}).expand({S, B, 1, X}))
        .squeeze(2);
  };
  at::Tensor scale = per_component_scale(in.family) ? pick(in.coord) : in.coord.unsqueeze(0);
  if (has_lam(in.family)) scale = scale * pick(in.lam.unsqueeze(-1));
  at::Tensor z = scale * noise;
  if (has_locs(in.family)) z = z + pick(in.locs);
  return z.contiguous();
}

// Per-mixture quantities the per-sample core reads (core::mixture::Params): log pi, the component
// scales' inverses and log normalisers, the reference scale s' and lambda_0. O(B K D), formed once per
// call with ATen so that the per-sample loops need no logarithms or divisions.
struct Prepared {
  at::Tensor locs, coord, lam, log_pi, inv_scale, log_norm, log_scale, ref, inv_ref, log_ref, locs_ref,
      ref_loc, log_ref_sum, lam0;  // all contiguous
};

inline Prepared prepare(const Inputs& in) {
  Prepared p;
  const int64_t B = in.logits.size(0), K = in.logits.size(1);
  // .contiguous(): the core indexes raw rows; the Python layer passes broadcast (expanded) parameter
  // views, whose copies are only B x K x D.
  p.coord = in.coord.contiguous();
  p.locs = has_locs(in.family) ? in.locs.contiguous() : at::Tensor();
  p.lam = has_lam(in.family) ? in.lam.contiguous() : at::Tensor();
  p.log_pi = at::log_softmax(in.logits, -1).contiguous();
  const int64_t D = p.coord.size(-1);
  at::Tensor scale = per_component_scale(in.family) ? p.coord : p.coord.unsqueeze(1).expand({B, K, D});
  if (has_lam(in.family)) scale = scale * p.lam.unsqueeze(-1);
  const at::Tensor log_scale = scale.log();
  p.inv_scale = scale.reciprocal().contiguous();
  p.log_norm = (-log_scale.sum(-1) - double(D) * 0.918938533204672741780329736405617640).contiguous();
  if (per_component_scale(in.family)) {
    p.ref = std::get<0>(p.coord.min(1)).contiguous();  // eq. 52: s'_i = min_j s_ji
    p.lam0 = at::ones({B}, in.logits.options());
    p.log_scale = log_scale.contiguous();
  } else if (has_lam(in.family)) {
    p.lam0 = std::get<0>(p.lam.min(1)).contiguous();  // lambda_0 = min_j lambda_j
    p.ref = (p.coord * p.lam0.unsqueeze(-1)).contiguous();
  } else {
    p.ref = p.coord;
    p.lam0 = at::ones({B}, in.logits.options());
  }
  const at::Tensor log_ref = p.ref.log();
  p.inv_ref = p.ref.reciprocal().contiguous();
  p.log_ref_sum = log_ref.sum(-1).contiguous();
  if (per_component_scale(in.family)) p.log_ref = log_ref.contiguous();
  if (in.common_reference && per_component_scale(in.family)) {  // only MixtureOfDiagNormals has the choice
    // The reference field's common mean mu' = sum_k pi_k mu_k, the mixture mean: any common mean
    // gives a solution (see core/mixture.h). In the Fig. 1b/1c setups (K = 10, 20000 samples) its
    // logit-gradient variance was within a few percent of the unweighted mean's and the coordinate-wise
    // median's of the mu_k, and up to 15% below mu' = 0's (README, Gaussian mixtures).
    p.ref_loc = (p.log_pi.exp().unsqueeze(-1) * p.locs).sum(1).contiguous();
  } else if (has_locs(in.family)) {
    p.locs_ref = (p.locs * p.inv_ref.unsqueeze(1)).contiguous();  // only the pairwise U terms read it
  }
  return p;
}

template <typename T>
struct Batch {  // raw pointers to the prepared parameters, indexed per mixture by params(b)
  int K, D, family;
  const T *locs, *coord, *lam, *log_pi, *inv_scale, *log_norm, *log_scale, *ref, *inv_ref, *log_ref, *locs_ref,
      *ref_loc, *log_ref_sum, *lam0;
  GK_HD core::mixture::Params<T> params(int64_t b) const {
    core::mixture::Params<T> p;
    const int64_t kd = int64_t(K) * D;
    p.K = K;
    p.D = D;
    p.family = family;
    p.locs = locs ? locs + b * kd : nullptr;
    p.coord = coord + b * (family == core::mixture::kDiagNormals ? kd : D);
    p.lam = lam ? lam + b * K : nullptr;
    p.log_pi = log_pi + b * K;
    p.inv_scale = inv_scale + b * kd;
    p.log_norm = log_norm + b * K;
    p.log_scale = log_scale ? log_scale + b * kd : nullptr;
    p.ref = ref + b * D;
    p.inv_ref = inv_ref + b * D;
    p.log_ref = log_ref ? log_ref + b * D : nullptr;
    p.locs_ref = locs_ref ? locs_ref + b * kd : nullptr;
    p.ref_loc = ref_loc ? ref_loc + b * D : nullptr;
    p.log_ref_sum = log_ref_sum[b];
    p.lam0 = lam0[b];
    return p;
  }
};

// Accumulator tensors with a leading "partial" dimension P (per-thread partials on the CPU, P = 1
// with atomics on the GPU).
struct Accumulators {
  at::Tensor logits, acc_w, locs, coord, lam;
};

template <typename T>
struct GradBuffers {
  int K, D, family;
  int64_t B;
  T *logits, *acc_w, *locs, *coord, *lam;
  GK_HD core::mixture::Grads<T> grads(int64_t part, int64_t b) const {
    core::mixture::Grads<T> g;
    const int64_t m = part * B + b;
    const int64_t coord_n = family == core::mixture::kDiagNormals ? int64_t(K) * D : D;
    g.logits = logits + m * K;
    g.acc_w = acc_w + m * K;
    g.locs = locs ? locs + m * K * D : nullptr;
    g.coord = coord + m * coord_n;
    g.lam = lam ? lam + m * K : nullptr;
    return g;
  }
};

inline Accumulators make_accumulators(const Inputs& in, int64_t P, int64_t B, int64_t K, int64_t D) {
  Accumulators a;
  auto opt = in.logits.options();
  a.logits = at::zeros({P, B, K}, opt);
  a.acc_w = at::zeros({P, B, K}, opt);
  if (has_locs(in.family)) a.locs = at::zeros({P, B, K, D}, opt);
  a.coord = per_component_scale(in.family) ? at::zeros({P, B, K, D}, opt) : at::zeros({P, B, D}, opt);
  if (has_lam(in.family)) a.lam = at::zeros({P, B, K}, opt);
  return a;
}

template <typename T>
const T* ptr_or_null(const at::Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}

template <typename T>
Batch<T> batch_view(const Inputs& in, const Prepared& p, int64_t K, int64_t D) {
  return Batch<T>{int(K), int(D), in.family, ptr_or_null<T>(p.locs), p.coord.data_ptr<T>(),
                  ptr_or_null<T>(p.lam), p.log_pi.data_ptr<T>(), p.inv_scale.data_ptr<T>(),
                  p.log_norm.data_ptr<T>(), ptr_or_null<T>(p.log_scale), p.ref.data_ptr<T>(),
                  p.inv_ref.data_ptr<T>(), ptr_or_null<T>(p.log_ref), ptr_or_null<T>(p.locs_ref), ptr_or_null<T>(p.ref_loc),
                  p.log_ref_sum.data_ptr<T>(), p.lam0.data_ptr<T>()};
}

template <typename T>
GradBuffers<T> grad_view(const Inputs& in, const Accumulators& a, int64_t B, int64_t K, int64_t D) {
  return GradBuffers<T>{int(K), int(D), in.family, B, a.logits.data_ptr<T>(), a.acc_w.data_ptr<T>(),
                        a.locs.defined() ? a.locs.data_ptr<T>() : nullptr, a.coord.data_ptr<T>(),
                        a.lam.defined() ? a.lam.data_ptr<T>() : nullptr};
}

// Sums the partials and forms grad_logits_j = pi_j (acc_w_j - sum_k pi_k acc_w_k) + (U terms).
// Returns the gradients in the order of the op's parameters: [locs,] coord_scale, logits[, lam].
inline std::vector<at::Tensor> finish(const Inputs& in, const Prepared& p, const Accumulators& a) {
  const at::Tensor pi = p.log_pi.exp();
  const at::Tensor acc_w = a.acc_w.sum(0);
  at::Tensor logits = a.logits.sum(0) + pi * (acc_w - (pi * acc_w).sum(-1, true));
  std::vector<at::Tensor> out;
  if (has_locs(in.family)) out.push_back(a.locs.sum(0));
  out.push_back(a.coord.sum(0));
  out.push_back(logits);
  if (has_lam(in.family)) out.push_back(a.lam.sum(0));
  return out;
}

inline void check_backward(const char* op, const Inputs& in, const at::Tensor& grad, const at::Tensor& z,
                           int64_t B, int64_t D) {
  check_samples(op, "grad", grad, B, D, in.logits);
  check_samples(op, "z", z, B, D, in.logits);
  TORCH_CHECK(grad.size(0) == z.size(0), "gradkern.", op, ": grad and z must have the same shape, got ",
              grad.sizes(), " and ", z.sizes());
}

// The op entry points (schema argument order -> Inputs) for both backends. Backend provides
//   static at::Tensor rsample(const char* op, const Inputs&, const at::Tensor& noise, const at::Tensor& component)
//   static std::vector<at::Tensor> backward(const char* op, const Inputs&, const at::Tensor& grad, const at::Tensor& z)
// so the CPU and CUDA files hold only their loops and cannot disagree on argument order.
template <typename Backend>
struct EntryPoints {
  using T = at::Tensor;
  static std::tuple<T, T, T> three(const std::vector<T>& g) { return {g[0], g[1], g[2]}; }

  static T shared_cov_rsample(const T& noise, const T& component, const T& locs, const T& coord_scale,
                              const T& logits) {
    return Backend::rsample("mixture_shared_cov_rsample",
                            Inputs{core::mixture::kSharedCovariance, locs, coord_scale, logits, T()}, noise, component);
  }
  static std::tuple<T, T, T> shared_cov_backward(const T& grad, const T& z, const T& locs, const T& coord_scale,
                                                 const T& logits) {
    return three(Backend::backward("mixture_shared_cov_backward",
                                   Inputs{core::mixture::kSharedCovariance, locs, coord_scale, logits, T()}, grad, z));
  }
  // `velocity` selects the logit field (parse_velocity); the forward is the same for both, but the
  // argument is checked there too so that a bad value fails at sampling time, not in backward.
  static T diag_rsample(const T& noise, const T& component, const T& locs, const T& coord_scale, const T& logits,
                        c10::string_view velocity) {
    const char* op = "mixture_diag_normals_rsample";
    return Backend::rsample(
        op, Inputs{core::mixture::kDiagNormals, locs, coord_scale, logits, T(), parse_velocity(op, velocity)}, noise,
        component);
  }
  static std::tuple<T, T, T> diag_backward(const T& grad, const T& z, const T& locs, const T& coord_scale,
                                           const T& logits, c10::string_view velocity) {
    const char* op = "mixture_diag_normals_backward";
    return three(Backend::backward(
        op, Inputs{core::mixture::kDiagNormals, locs, coord_scale, logits, T(), parse_velocity(op, velocity)}, grad,
        z));
  }
  static T gsm_rsample(const T& noise, const T& component, const T& coord_scale, const T& logits, const T& lam) {
    return Backend::rsample("mixture_gsm_rsample",
                            Inputs{core::mixture::kScaleMixture, T(), coord_scale, logits, lam}, noise, component);
  }
  static std::tuple<T, T, T> gsm_backward(const T& grad, const T& z, const T& coord_scale, const T& logits,
                                          const T& lam) {
    return three(Backend::backward("mixture_gsm_backward",
                                   Inputs{core::mixture::kScaleMixture, T(), coord_scale, logits, lam}, grad, z));
  }
  static T dgsm_rsample(const T& noise, const T& component, const T& locs, const T& coord_scale, const T& logits,
                        const T& lam) {
    return Backend::rsample("mixture_discrete_gsm_rsample",
                            Inputs{core::mixture::kDiscreteScaleMixture, locs, coord_scale, logits, lam}, noise,
                            component);
  }
  static std::tuple<T, T, T, T> dgsm_backward(const T& grad, const T& z, const T& locs, const T& coord_scale,
                                              const T& logits, const T& lam) {
    auto g = Backend::backward("mixture_discrete_gsm_backward",
                               Inputs{core::mixture::kDiscreteScaleMixture, locs, coord_scale, logits, lam}, grad, z);
    return {g[0], g[1], g[2], g[3]};
  }

  template <typename Library>
  static void register_kernels(Library& m) {
    m.impl("mixture_shared_cov_rsample", &shared_cov_rsample);
    m.impl("mixture_shared_cov_backward", &shared_cov_backward);
    m.impl("mixture_diag_normals_rsample", &diag_rsample);
    m.impl("mixture_diag_normals_backward", &diag_backward);
    m.impl("mixture_gsm_rsample", &gsm_rsample);
    m.impl("mixture_gsm_backward", &gsm_backward);
    m.impl("mixture_discrete_gsm_rsample", &dgsm_rsample);
    m.impl("mixture_discrete_gsm_backward", &dgsm_backward);
  }
};

}  // namespace mixture
}  // namespace ops
}  // namespace gradkern
