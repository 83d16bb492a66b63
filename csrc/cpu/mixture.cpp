// CPU kernels for the Gaussian-mixture ops: the reparameterised forward (shared with CUDA, ATen gather)
// and the fused transport-equation backward, a plain loop over samples around the per-sample core
// (csrc/core/mixture.h). Samples are split into one contiguous range per thread; each range sums into
// its own partial accumulators (no atomics, deterministic for a fixed thread count), reduced at the end.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "ops/mixture.h"

namespace gradkern {
namespace {

namespace mx = ops::mixture;
namespace cm = core::mixture;

struct PlainAdd {
  template <typename T>
  void operator()(T* p, T v) const { *p += v; }
};

std::vector<at::Tensor> cpu_backward(const char* op, const mx::Inputs& in, const at::Tensor& grad,
                                     const at::Tensor& z) {
  int64_t B, K, D;
  std::tie(B, K, D) = mx::check_params(op, in);
  mx::check_backward(op, in, grad, z, B, D);
  TORCH_CHECK(grad.is_cpu(), "gradkern.", op, ": expected CPU tensors, got ", grad.device());
  const mx::Prepared prep = mx::prepare(in);
  const int64_t n = z.size(0) * B;
  const int64_t P = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), n));
  mx::Accumulators acc = mx::make_accumulators(in, P, B, K, D);
  if (n > 0) {
    // .contiguous(): the core reads each sample's D values as one row; grad is usually contiguous
    // already (then no copy), z is the forward's own contiguous output.
    const at::Tensor zc = z.contiguous(), gc = grad.contiguous();
    AT_DISPATCH_FLOATING_TYPES(in.logits.scalar_type(), "gradkern_mixture_backward", [&] {
      const auto bv = mx::batch_view<scalar_t>(in, prep, K, D);
      const auto gv = mx::grad_view<scalar_t>(in, acc, B, K, D);
      const scalar_t* zp = zc.data_ptr<scalar_t>();
      const scalar_t* gp = gc.data_ptr<scalar_t>();
      at::parallel_for(0, P, 1, [&](int64_t p0, int64_t p1) {
        for (int64_t part = p0; part < p1; ++part) {
          const int64_t lo = n * part / P, hi = n * (part + 1) / P;
          for (int64_t m = lo; m < hi; ++m) {
            const int64_t b = m % B;
            cm::backward_sample(bv.params(b), zp + m * D, gp + m * D, gv.grads(part, b), PlainAdd{});
          }
        }
      });
    });
  }
  return mx::finish(in, prep, acc);
}

mx::Inputs inputs(int family, const at::Tensor& locs, const at::Tensor& coord, const at::Tensor& logits,
                  const at::Tensor& lam) {
  return mx::Inputs{family, locs, coord, logits, lam};
}

// --- MixtureOfDiagNormalsSharedCovariance ---
at::Tensor shared_cov_rsample(const at::Tensor& noise, const at::Tensor& component, const at::Tensor& locs,
                              const at::Tensor& coord_scale, const at::Tensor& component_logits) {
  return mx::rsample("mixture_shared_cov_rsample",
                     inputs(cm::kSharedCovariance, locs, coord_scale, component_logits, at::Tensor()), noise,
                     component);
}
std::tuple<at::Tensor, at::Tensor, at::Tensor> shared_cov_backward(
    const at::Tensor& grad, const at::Tensor& z, const at::Tensor& locs, const at::Tensor& coord_scale,
    const at::Tensor& component_logits) {
  auto g = cpu_backward("mixture_shared_cov_backward",
                        inputs(cm::kSharedCovariance, locs, coord_scale, component_logits, at::Tensor()), grad, z);
  return {g[0], g[1], g[2]};
}

// --- MixtureOfDiagNormals ---
at::Tensor diag_rsample(const at::Tensor& noise, const at::Tensor& component, const at::Tensor& locs,
                        const at::Tensor& coord_scale, const at::Tensor& component_logits) {
  return mx::rsample("mixture_diag_normals_rsample",
                     inputs(cm::kDiagNormals, locs, coord_scale, component_logits, at::Tensor()), noise, component);
}
std::tuple<at::Tensor, at::Tensor, at::Tensor> diag_backward(const at::Tensor& grad, const at::Tensor& z,
                                                             const at::Tensor& locs, const at::Tensor& coord_scale,
                                                             const at::Tensor& component_logits) {
  auto g = cpu_backward("mixture_diag_normals_backward",
                        inputs(cm::kDiagNormals, locs, coord_scale, component_logits, at::Tensor()), grad, z);
  return {g[0], g[1], g[2]};
}

// --- GaussianScaleMixture (zero mean) ---
at::Tensor gsm_rsample(const at::Tensor& noise, const at::Tensor& component, const at::Tensor& coord_scale,
                       const at::Tensor& component_logits, const at::Tensor& component_scale) {
  return mx::rsample("mixture_gsm_rsample",
                     inputs(cm::kScaleMixture, at::Tensor(), coord_scale, component_logits, component_scale),
                     noise, component);
}
std::tuple<at::Tensor, at::Tensor, at::Tensor> gsm_backward(const at::Tensor& grad, const at::Tensor& z,
                                                            const at::Tensor& coord_scale,
                                                            const at::Tensor& component_logits,
                                                            const at::Tensor& component_scale) {
  auto g = cpu_backward("mixture_gsm_backward",
                        inputs(cm::kScaleMixture, at::Tensor(), coord_scale, component_logits, component_scale),
                        grad, z);
  return {g[0], g[1], g[2]};
}

// --- DiscreteGaussianScaleMixture ---
at::Tensor dgsm_rsample(const at::Tensor& noise, const at::Tensor& component, const at::Tensor& locs,
                        const at::Tensor& coord_scale, const at::Tensor& component_logits,
                        const at::Tensor& component_scale) {
  return mx::rsample("mixture_discrete_gsm_rsample",
                     inputs(cm::kDiscreteScaleMixture, locs, coord_scale, component_logits, component_scale),
                     noise, component);
}
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> dgsm_backward(
    const at::Tensor& grad, const at::Tensor& z, const at::Tensor& locs, const at::Tensor& coord_scale,
    const at::Tensor& component_logits, const at::Tensor& component_scale) {
  auto g = cpu_backward("mixture_discrete_gsm_backward",
                        inputs(cm::kDiscreteScaleMixture, locs, coord_scale, component_logits, component_scale),
                        grad, z);
  return {g[0], g[1], g[2], g[3]};
}

}  // namespace

TORCH_LIBRARY_IMPL(gradkern, CPU, m) {
  m.impl("mixture_shared_cov_rsample", &shared_cov_rsample);
  m.impl("mixture_shared_cov_backward", &shared_cov_backward);
  m.impl("mixture_diag_normals_rsample", &diag_rsample);
  m.impl("mixture_diag_normals_backward", &diag_backward);
  m.impl("mixture_gsm_rsample", &gsm_rsample);
  m.impl("mixture_gsm_backward", &gsm_backward);
  m.impl("mixture_discrete_gsm_rsample", &dgsm_rsample);
  m.impl("mixture_discrete_gsm_backward", &dgsm_backward);
}

}  // namespace gradkern
