// CPU kernels for the Gaussian-mixture ops: the reparameterised forward (the row body shared with CUDA,
// ops/mixture.h) and the fused transport-equation backward, a plain loop over samples around the
// per-sample core (csrc/core/mixture.h). Samples are split into contiguous ranges fixed by the sizes; each range sums
// into its own partial accumulators (no atomics), reduced at the end in a fixed order, so the result does
// not depend on the thread count.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <vector>

#include "ops/mixture.h"

namespace gradkern {
namespace {

namespace mx = ops::mixture;
namespace cm = core::mixture;

struct PlainAdd {
  template <typename T>
  void operator()(T* p, T v) const { *p += v; }
};

// Families with means: the terms that need a difference of Normal CDFs, the telescoping g . W^j of
// eqs. 49-50 (MixtureOfDiagNormals, one per component and coordinate) and the pairwise g . U^{jk} of
// eq. 15 (one per pair of components; none for MixtureOfDiagNormals' common-reference field), cost two erfc and one exp each, which dominate the backward when
// evaluated one at a time through libm. Here a chunk of samples first runs the per-sample core with
// those terms deferred; their erfc and exp arguments are collected (cm::telescoping_visit,
// cm::pairwise_args, core::split_ndtr_diff_scaled: the same arguments and branches as
// core::ndtr_diff_scaled) into flat buffers, evaluated by ATen's vectorised erfc_/exp_ kernels, and
// combined in the same order as the per-sample core. Terms on the log-space branch (deep tails, huge
// scales) are evaluated directly. Scratch: O(chunk (K D + K^2)) per thread (K D without pairs), independent of the number
// of samples.
template <typename T>
struct TermBuffers {
  T* e1;
  T* e2;
  T* ls;
  T* coef;
  uint8_t* kind;
  // Records coef * (Phi(a) - Phi(b)) exp(l_rest) at slot i; returns the value itself when it must be
  // evaluated directly (then the slot stays empty: coef 0).
  T put(int64_t i, T coef_i, T a, T b, T l_rest) {
    const int k = core::split_ndtr_diff_scaled(a, b, l_rest, &e1[i], &e2[i]);
    if (k == 0) {
      e1[i] = e2[i] = T(0);
      return coef_i * core::ndtr_diff_scaled(a, b, l_rest);
    }
    ls[i] = l_rest;
    coef[i] = coef_i;
    kind[i] = uint8_t(k);
    return T(0);
  }
  T value(int64_t i) const {  // after erfc_ on e1, e2 and exp_ on ls; empty slots give 0
    const T E1 = e1[i], E2 = e2[i], S = ls[i];
    const T v = kind[i] == 1 ? T(0.5) * (E1 - E2) * S : (T(1) - T(0.5) * (E1 + E2)) * S;
    return coef[i] * v;
  }
};

template <typename T>
struct TelescopingCollect {
  TermBuffers<T>* buf;
  int64_t base;
  T direct;
  void operator()(int i, T signed_g, T a, T b, T l_rest) { direct += buf->put(base + i, signed_g, a, b, l_rest); }
};

template <typename T>
void deferred_backward_range(const mx::Batch<T>& bv, const mx::GradBuffers<T>& gv, const T* zp, const T* gp,
                             int64_t part, int64_t lo, int64_t hi, int64_t B, int64_t K, int64_t D) {
  const bool tel = bv.family == cm::kDiagNormals;
  // The pairwise U^{jk} terms exist unless MixtureOfDiagNormals uses its common-reference field.
  const bool pairwise = bv.ref_loc == nullptr;
  const int64_t KD = tel ? K * D : 0, NP = pairwise ? K * (K - 1) / 2 : 0, per = KD + NP;
  const int64_t C = std::max<int64_t>(1, std::min<int64_t>(hi - lo, 16384 / per + 1));  // samples per chunk
  std::vector<T> e1(C * per), e2(C * per), ls(C * per), coef(C * per), log_q(C), direct(C * (K + NP));
  std::vector<uint8_t> kind(C * per);
  TermBuffers<T> buf{e1.data(), e2.data(), ls.data(), coef.data(), kind.data()};
  const auto opt = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  at::Tensor e1_t = at::from_blob(e1.data(), {C * per}, opt), e2_t = at::from_blob(e2.data(), {C * per}, opt),
             ls_t = at::from_blob(ls.data(), {C * per}, opt);
  for (int64_t c0 = lo; c0 < hi; c0 += C) {
    const int64_t nc = std::min(C, hi - c0), len = nc * per;
    std::fill(e1.begin(), e1.begin() + len, T(0));
    std::fill(e2.begin(), e2.begin() + len, T(0));
    std::fill(ls.begin(), ls.begin() + len, T(0));
    std::fill(coef.begin(), coef.begin() + len, T(0));
    std::fill(kind.begin(), kind.begin() + len, uint8_t(0));
    for (int64_t t = 0; t < nc; ++t) {
      const int64_t m = c0 + t, b = m % B;
      const cm::Params<T> p = bv.params(b);
      const T* z = zp + m * D;
      const T* g = gp + m * D;
      cm::backward_sample(p, z, g, gv.grads(part, b), PlainAdd{}, &log_q[t]);
      T* dir = &direct[t * (K + NP)];
      for (int64_t j = 0; j < KD / std::max<int64_t>(D, 1); ++j) {
        TelescopingCollect<T> col{&buf, t * per + j * D, T(0)};
        cm::telescoping_visit(p, int(j), z, g, log_q[t], col);
        dir[j] = col.direct;
      }
      int64_t q = 0;
      for (int64_t j = 0; pairwise && j < K; ++j) {
        for (int64_t k = j + 1; k < K; ++k, ++q) {
          T gu, a, bb, l_rest;
          dir[K + q] = cm::pairwise_args(p, int(j), int(k), z, g, log_q[t], &gu, &a, &bb, &l_rest)
                           ? buf.put(t * per + KD + q, gu, a, bb, l_rest)
                           : T(0);
        }
      }
    }
    e1_t.narrow(0, 0, len).erfc_();
    e2_t.narrow(0, 0, len).erfc_();
    ls_t.narrow(0, 0, len).exp_();
    for (int64_t t = 0; t < nc; ++t) {
      const int64_t b = (c0 + t) % B;
      const cm::Grads<T> out = gv.grads(part, b);
      const cm::Params<T> p = bv.params(b);
      const T* dir = &direct[t * (K + NP)];
      for (int64_t j = 0; j < KD / std::max<int64_t>(D, 1); ++j) {
        const int64_t o = t * per + j * D;
        T acc = T(0);
        for (int64_t i = 0; i < D; ++i) acc += buf.value(o + i);
        out.acc_w[j] += acc + dir[j];
      }
      int64_t q = 0;
      for (int64_t j = 0; pairwise && j < K; ++j) {
        const T pj = core::gk_exp(p.log_pi[j]);
        for (int64_t k = j + 1; k < K; ++k, ++q)
          cm::add_pairwise_logits(p, int(j), int(k), pj, buf.value(t * per + KD + q) + dir[K + q], out, PlainAdd{});
      }
    }
  }
}

std::vector<at::Tensor> cpu_backward(const char* op, const mx::Inputs& in, const at::Tensor& grad,
                                     const at::Tensor& z) {
  int64_t B, K, D;
  std::tie(B, K, D) = mx::check_params(op, in);
  mx::check_backward(op, in, grad, z, B, D);
  TORCH_CHECK(grad.is_cpu(), "gradkern.", op, ": expected CPU tensors, got ", grad.device());
  const mx::Prepared prep = mx::prepare(in);
  const int64_t n = z.size(0) * B;
  // The samples go in P contiguous ranges, each summed into its own partial accumulators and reduced
  // in a fixed order at the end. P depends on the sizes only, never on the thread count, so the
  // gradients are bit for bit the same whatever the number of threads: up to 32 ranges of at least
  // 1024 samples, and at most ~2^24 accumulator elements in all.
  const int64_t per_range = B * (K * D + 3 * K + D);
  const int64_t P = std::max<int64_t>(
      1, std::min<int64_t>({int64_t(32), n / 1024, (int64_t(1) << 24) / std::max<int64_t>(per_range, 1)}));
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
      // Deferred, batched erfc/exp for the CDF-difference terms (families with means and K >= 2).
      const bool batch_w = in.family != cm::kGaussianScale && K > 1;
      at::parallel_for(0, P, 1, [&](int64_t p0, int64_t p1) {
        for (int64_t part = p0; part < p1; ++part) {
          const int64_t lo = n * part / P, hi = n * (part + 1) / P;
          if (batch_w) {
            deferred_backward_range(bv, gv, zp, gp, part, lo, hi, B, K, D);
            continue;
          }
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

// The reparameterised forward: one pass writes each sample row (ops/mixture.h, Forward<T>::row, the
// core's sample_row), so the only (S, B, D) buffer besides the input noise is z itself.
at::Tensor cpu_rsample(const char* op, const mx::Inputs& in, const at::Tensor& noise, const at::Tensor& component) {
  TORCH_CHECK(noise.is_cpu(), "gradkern.", op, ": expected CPU tensors, got ", noise.device());
  const mx::ForwardInputs f = mx::prepare_forward(op, in, noise, component);
  if (f.n == 0) return f.z;
  // Out-of-range components are reported after the loop (no exceptions thrown from worker threads).
  std::atomic<bool> bad{false};
  AT_DISPATCH_FLOATING_TYPES(in.logits.scalar_type(), "gradkern_mixture_rsample", [&] {
    const mx::Forward<scalar_t> fw(f);
    at::parallel_for(0, f.n, std::max<int64_t>(1, 32768 / f.D), [&](int64_t lo, int64_t hi) {
      for (int64_t m = lo; m < hi; ++m) {
        if (!fw.row(m)) bad = true;
      }
    });
  });
  TORCH_CHECK(!bad, "gradkern.", op, ": component indices must be in [0, K) = [0, ", f.K, ")");
  return f.z;
}

struct CpuBackend {
  static at::Tensor rsample(const char* op, const mx::Inputs& in, const at::Tensor& noise,
                            const at::Tensor& component) {
    return cpu_rsample(op, in, noise, component);
  }
  static std::vector<at::Tensor> backward(const char* op, const mx::Inputs& in, const at::Tensor& grad,
                                          const at::Tensor& z) {
    return cpu_backward(op, in, grad, z);
  }
};

}  // namespace

TORCH_LIBRARY_IMPL(gradkern, CPU, m) {
  mx::EntryPoints<CpuBackend>::register_kernels(m);
}

}  // namespace gradkern
