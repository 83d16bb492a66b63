// Host-side glue shared by the CPU and CUDA mixture kernels (csrc/cpu/mixture.cpp,
// csrc/cuda/mixture.cu): argument checks, the reparameterised forward's rows, the per-mixture preparation
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

inline bool has_locs(int family) { return family != core::mixture::kGaussianScale; }
inline bool has_component_scale(int family) {
  return family == core::mixture::kGaussianScale || family == core::mixture::kDiscreteGaussianScale;
}
inline bool per_component_scale(int family) { return family == core::mixture::kDiagNormals; }

struct Inputs {
  int family;
  at::Tensor locs;    // undefined for the zero-mean scale mixture
  at::Tensor coord_scale;
  at::Tensor logits;
  at::Tensor component_scale;  // undefined unless has_component_scale(family)
  // kDiagNormals only: the logit velocity field. true: "reference", one common reference N(mu', s'),
  // O(K D) per sample; false: "pairwise", per-component references plus eq. 15, O(K^2 D).
  bool common_reference = false;
};

// The `velocity` argument of the mixture_diag_normals ops.
inline bool parse_velocity(const char* op, c10::string_view velocity) {
  return choice_index(op, "velocity", velocity, {"reference", "pairwise"}) == 0;
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
    TORCH_CHECK(in.coord_scale.dim() == 3, "gradkern.", op, ": coord_scale must have shape (B, K, D), got ",
                in.coord_scale.sizes());
    D = in.coord_scale.size(2);
    check_param(op, "coord_scale", in.coord_scale, {B, K, D}, "(B, K, D)", in.logits);
  } else {
    TORCH_CHECK(in.coord_scale.dim() == 2, "gradkern.", op, ": coord_scale must have shape (B, D), got ",
                in.coord_scale.sizes());
    D = in.coord_scale.size(1);
    check_param(op, "coord_scale", in.coord_scale, {B, D}, "(B, D)", in.logits);
  }
  TORCH_CHECK(D >= 1, "gradkern.", op, ": the event dimension D must be >= 1, got ", D);
  TORCH_CHECK(K <= INT32_MAX && D <= INT32_MAX && K * D <= INT32_MAX, "gradkern.", op,
              ": K * D must fit in 32 bits, got K = ", K, ", D = ", D);
  if (has_locs(in.family)) check_param(op, "locs", in.locs, {B, K, D}, "(B, K, D)", in.logits);
  if (has_component_scale(in.family)) check_param(op, "component_scale", in.component_scale, {B, K}, "(B, K)", in.logits);
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

// The reparameterised forward, z = mu_k + lambda_k c_k * noise for the drawn component k of every
// sample (core::mixture::sample_row), shared by the CPU loop and the CUDA kernel: prepare_forward
// checks and allocates, Forward<T>::row(m) writes sample row m = s * B + b.
struct ForwardInputs {
  at::Tensor noise, component, coord_scale, locs, component_scale, z;  // contiguous; locs / component_scale undefined when absent
  int64_t B, K, D, n;                                 // n = S * B rows
  bool per_comp;
};

inline ForwardInputs prepare_forward(const char* op, const Inputs& in, const at::Tensor& noise,
                                     const at::Tensor& component) {
  ForwardInputs f;
  std::tie(f.B, f.K, f.D) = check_rsample(op, in, noise, component);
  f.noise = noise.contiguous();
  f.component = component.contiguous();
  f.coord_scale = in.coord_scale.contiguous();
  if (has_locs(in.family)) f.locs = in.locs.contiguous();
  if (has_component_scale(in.family)) f.component_scale = in.component_scale.contiguous();
  f.z = at::empty(f.noise.sizes(), f.noise.options());
  f.n = noise.size(0) * f.B;
  f.per_comp = per_component_scale(in.family);
  return f;
}

template <typename T>
struct Forward {
  const T *noise, *coord_scale, *locs, *component_scale;
  const int64_t* comp;
  T* z;
  int64_t B, K, D;
  bool per_comp;
  explicit Forward(const ForwardInputs& f)
      : noise(f.noise.const_data_ptr<T>()), coord_scale(f.coord_scale.const_data_ptr<T>()),
        locs(f.locs.defined() ? f.locs.const_data_ptr<T>() : nullptr),
        component_scale(f.component_scale.defined() ? f.component_scale.const_data_ptr<T>() : nullptr), comp(f.component.const_data_ptr<int64_t>()),
        z(f.z.mutable_data_ptr<T>()), B(f.B), K(f.K), D(f.D), per_comp(f.per_comp) {}
  // false (row left unwritten) for a component index outside [0, K).
  GK_HD bool row(int64_t m) const {
    const int64_t b = m % B, k = comp[m];
    if (k < 0 || k >= K) return false;
    core::mixture::sample_row(coord_scale + (per_comp ? (b * K + k) * D : b * D), component_scale ? component_scale + b * K + k : nullptr,
                              locs ? locs + (b * K + k) * D : nullptr, noise + m * D, z + m * D, int(D));
    return true;
  }
};

// Per-mixture quantities the per-sample core reads (core::mixture::Params): log pi, the component
// scales' inverses and log normalisers, the reference scale s' and lambda_0. O(B K D), formed once per
// call with ATen so that the per-sample loops need no logarithms or divisions.
struct Prepared {
  at::Tensor locs, coord_scale, component_scale, log_pi, inv_scale, log_norm, log_scale, ref, inv_ref, log_ref, locs_ref,
      ref_loc, log_ref_sum, lam0;  // all contiguous
};

inline Prepared prepare(const Inputs& in) {
  Prepared p;
  const int64_t B = in.logits.size(0), K = in.logits.size(1);
  // .contiguous(): the core indexes raw rows; the Python layer passes broadcast (expanded) parameter
  // views, whose copies are only B x K x D.
  p.coord_scale = in.coord_scale.contiguous();
  p.locs = has_locs(in.family) ? in.locs.contiguous() : at::Tensor();
  p.component_scale = has_component_scale(in.family) ? in.component_scale.contiguous() : at::Tensor();
  p.log_pi = at::log_softmax(in.logits, -1).contiguous();
  const int64_t D = p.coord_scale.size(-1);
  at::Tensor scale = per_component_scale(in.family) ? p.coord_scale : p.coord_scale.unsqueeze(1).expand({B, K, D});
  if (has_component_scale(in.family)) scale = scale * p.component_scale.unsqueeze(-1);
  const at::Tensor log_scale = scale.log();
  p.inv_scale = scale.reciprocal().contiguous();
  p.log_norm = (-log_scale.sum(-1) - double(D) * core::consts<double>::log_sqrt_2pi).contiguous();
  if (per_component_scale(in.family)) {
    p.ref = std::get<0>(p.coord_scale.min(1)).contiguous();  // eq. 52: s'_i = min_j s_ji
    p.lam0 = at::ones({B}, in.logits.options());
    p.log_scale = log_scale.contiguous();
  } else if (has_component_scale(in.family)) {
    p.lam0 = std::get<0>(p.component_scale.min(1)).contiguous();  // lambda_0 = min_j lambda_j
    p.ref = (p.coord_scale * p.lam0.unsqueeze(-1)).contiguous();
  } else {
    p.ref = p.coord_scale;
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
  const T *locs, *coord_scale, *component_scale, *log_pi, *inv_scale, *log_norm, *log_scale, *ref, *inv_ref, *log_ref, *locs_ref,
      *ref_loc, *log_ref_sum, *lam0;
  GK_HD core::mixture::Params<T> params(int64_t b) const {
    core::mixture::Params<T> p;
    const int64_t kd = int64_t(K) * D;
    p.K = K;
    p.D = D;
    p.family = family;
    p.locs = locs ? locs + b * kd : nullptr;
    p.coord_scale = coord_scale + b * (family == core::mixture::kDiagNormals ? kd : D);
    p.component_scale = component_scale ? component_scale + b * K : nullptr;
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
  at::Tensor logits, acc_w, locs, coord_scale, component_scale;
};

template <typename T>
struct GradBuffers {
  int K, D, family;
  int64_t B;
  T *logits, *acc_w, *locs, *coord_scale, *component_scale;
  GK_HD core::mixture::Grads<T> grads(int64_t part, int64_t b) const {
    core::mixture::Grads<T> g;
    const int64_t m = part * B + b;
    const int64_t coord_n = family == core::mixture::kDiagNormals ? int64_t(K) * D : D;
    g.logits = logits + m * K;
    g.acc_w = acc_w + m * K;
    g.locs = locs ? locs + m * K * D : nullptr;
    g.coord_scale = coord_scale + m * coord_n;
    g.component_scale = component_scale ? component_scale + m * K : nullptr;
    return g;
  }
};

inline Accumulators make_accumulators(const Inputs& in, int64_t P, int64_t B, int64_t K, int64_t D) {
  Accumulators a;
  auto opt = in.logits.options();
  a.logits = at::zeros({P, B, K}, opt);
  a.acc_w = at::zeros({P, B, K}, opt);
  if (has_locs(in.family)) a.locs = at::zeros({P, B, K, D}, opt);
  a.coord_scale = per_component_scale(in.family) ? at::zeros({P, B, K, D}, opt) : at::zeros({P, B, D}, opt);
  if (has_component_scale(in.family)) a.component_scale = at::zeros({P, B, K}, opt);
  return a;
}

template <typename T>
const T* ptr_or_null(const at::Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}

template <typename T>
Batch<T> batch_view(const Inputs& in, const Prepared& p, int64_t K, int64_t D) {
  return Batch<T>{int(K), int(D), in.family, ptr_or_null<T>(p.locs), p.coord_scale.data_ptr<T>(),
                  ptr_or_null<T>(p.component_scale), p.log_pi.data_ptr<T>(), p.inv_scale.data_ptr<T>(),
                  p.log_norm.data_ptr<T>(), ptr_or_null<T>(p.log_scale), p.ref.data_ptr<T>(),
                  p.inv_ref.data_ptr<T>(), ptr_or_null<T>(p.log_ref), ptr_or_null<T>(p.locs_ref), ptr_or_null<T>(p.ref_loc),
                  p.log_ref_sum.data_ptr<T>(), p.lam0.data_ptr<T>()};
}

template <typename T>
GradBuffers<T> grad_view(const Inputs& in, const Accumulators& a, int64_t B, int64_t K, int64_t D) {
  return GradBuffers<T>{int(K), int(D), in.family, B, a.logits.data_ptr<T>(), a.acc_w.data_ptr<T>(),
                        a.locs.defined() ? a.locs.data_ptr<T>() : nullptr, a.coord_scale.data_ptr<T>(),
                        a.component_scale.defined() ? a.component_scale.data_ptr<T>() : nullptr};
}

// Sums the partials and forms grad_logits_j = pi_j (acc_w_j - sum_k pi_k acc_w_k) + (U terms).
// Returns the gradients in the order of the op's parameters: [locs,] coord_scale, logits[, component_scale].
inline std::vector<at::Tensor> finish(const Inputs& in, const Prepared& p, const Accumulators& a) {
  const at::Tensor pi = p.log_pi.exp();
  const at::Tensor acc_w = a.acc_w.sum(0);
  at::Tensor logits = a.logits.sum(0) + pi * (acc_w - (pi * acc_w).sum(-1, true));
  std::vector<at::Tensor> out;
  if (has_locs(in.family)) out.push_back(a.locs.sum(0));
  out.push_back(a.coord_scale.sum(0));
  out.push_back(logits);
  if (has_component_scale(in.family)) out.push_back(a.component_scale.sum(0));
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
  static T gaussian_scale_rsample(const T& noise, const T& component, const T& coord_scale, const T& logits, const T& component_scale) {
    return Backend::rsample("mixture_gaussian_scale_rsample",
                            Inputs{core::mixture::kGaussianScale, T(), coord_scale, logits, component_scale}, noise, component);
  }
  static std::tuple<T, T, T> gaussian_scale_backward(const T& grad, const T& z, const T& coord_scale, const T& logits,
                                          const T& component_scale) {
    return three(Backend::backward("mixture_gaussian_scale_backward",
                                   Inputs{core::mixture::kGaussianScale, T(), coord_scale, logits, component_scale}, grad, z));
  }
  static T discrete_gaussian_scale_rsample(const T& noise, const T& component, const T& locs, const T& coord_scale, const T& logits,
                        const T& component_scale) {
    return Backend::rsample("mixture_discrete_gaussian_scale_rsample",
                            Inputs{core::mixture::kDiscreteGaussianScale, locs, coord_scale, logits, component_scale}, noise,
                            component);
  }
  static std::tuple<T, T, T, T> discrete_gaussian_scale_backward(const T& grad, const T& z, const T& locs, const T& coord_scale,
                                              const T& logits, const T& component_scale) {
    auto g = Backend::backward("mixture_discrete_gaussian_scale_backward",
                               Inputs{core::mixture::kDiscreteGaussianScale, locs, coord_scale, logits, component_scale}, grad, z);
    return {g[0], g[1], g[2], g[3]};
  }

  template <typename Library>
  static void register_kernels(Library& m) {
    m.impl("mixture_shared_cov_rsample", &shared_cov_rsample);
    m.impl("mixture_shared_cov_backward", &shared_cov_backward);
    m.impl("mixture_diag_normals_rsample", &diag_rsample);
    m.impl("mixture_diag_normals_backward", &diag_backward);
    m.impl("mixture_gaussian_scale_rsample", &gaussian_scale_rsample);
    m.impl("mixture_gaussian_scale_backward", &gaussian_scale_backward);
    m.impl("mixture_discrete_gaussian_scale_rsample", &discrete_gaussian_scale_rsample);
    m.impl("mixture_discrete_gaussian_scale_backward", &discrete_gaussian_scale_backward);
  }
};

}  // namespace mixture
}  // namespace ops
}  // namespace gradkern
