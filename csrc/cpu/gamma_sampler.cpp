// CPU kernels of the fused Gamma-family samplers (csrc/core/gamma_sampler.h via ops/gamma_sampler.h):
// log_standard_gamma and standard_beta, and on AVX2 / AVX-512 hosts standard_gamma (csrc/composite.cpp: torch's
// sampler elsewhere and on CUDA).
// TensorIterator brings broadcasting (standard_beta's two parameters), strides and threads; each element's
// Philox subsequence is its position in the contiguous output, recovered from the output pointer, so the
// bits do not depend on how the iterator splits or orders the work. Half and bfloat16 are sampled in float
// and rounded once. On AVX2 / AVX-512 hosts the draws run blocked (cpu/gamma_sampler_block.h: the same
// uniforms per element, lane-parallel passes; about 2x faster than the per-element loop), on
// others element by element through the core.
#include <algorithm>
#include <cstring>

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/ExpandUtils.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/TensorIterator.h>
#include <torch/library.h>

// No contraction of a * b + c into fused multiply-adds in this file: the blocked passes' loops run vectorized
// with a scalar remainder whose length depends on how many elements a range holds, and GCC contracts the two
// copies differently, so an element's draw would depend on its position in the range (on the thread count;
// tests/test_contracts.py test_thread_count_independent caught it). Uncontracted, each operation rounds once
// in both copies.
#pragma GCC optimize("fp-contract=off")
#include "cpu/gamma_sampler_block.h"
#include "cpu/host.h"
#include "cpu/vecmath.h"
#include "cpu/samplers.h"
#include "ops/gamma_sampler.h"
#include "ops/tensor_checks.h"

namespace gradkern {
namespace {

// ~20-60 ns per element.
constexpr int64_t kGrain = 8192;

// One TensorIterator inner loop of the blocked samplers: data = {out, a} (gamma) or {out, a, b} (beta), byte
// strides; `base` the contiguous output's start (element i's stream is its position there).
template <typename T, typename S>
GK_HD_FORCE void gamma_loop_blocked(char** data, const int64_t* strides, int64_t n, const S* base, uint64_t seed,
                                    bool log_space, bool beta, T lo, T hi) {
  T a[cpu::kGbBlock], b[cpu::kGbBlock], la[cpu::kGbBlock], lb[cpu::kGbBlock];
  uint32_t ilo[cpu::kGbBlock], ihi[cpu::kGbBlock], s[cpu::kGbBlock];
  for (int64_t i0 = 0; i0 < n; i0 += cpu::kGbBlock) {
    const int m = static_cast<int>(std::min<int64_t>(cpu::kGbBlock, n - i0));
    for (int e = 0; e < m; ++e) {
      const int64_t i = i0 + e;
      const S* o = reinterpret_cast<const S*>(data[0] + i * strides[0]);
      const uint64_t idx = static_cast<uint64_t>(o - base);
      ilo[e] = static_cast<uint32_t>(idx);
      ihi[e] = static_cast<uint32_t>(idx >> 32);
      s[e] = 0u;
      a[e] = static_cast<T>(*reinterpret_cast<const S*>(data[1] + i * strides[1]));
      if (beta) b[e] = static_cast<T>(*reinterpret_cast<const S*>(data[2] + i * strides[2]));
    }
    cpu::gb_draw<T>(m, seed, a, ilo, ihi, s, beta || log_space, la);
    if (beta) cpu::gb_draw<T>(m, seed, b, ilo, ihi, s, true, lb);
    for (int e = 0; e < m; ++e) {
      T r = la[e];
      if (beta) {  // core::beta_draw from the two log-space draws
        const T x = T(1) / (T(1) + core::gk_exp(lb[e] - la[e]));
        r = x < lo ? lo : (x > hi ? hi : x);
      }
      *reinterpret_cast<S*>(data[0] + (i0 + e) * strides[0]) = static_cast<S>(r);
    }
  }
}

#ifdef GK_HAVE_ISA_CLONES
template <typename T, typename S>
GK_TARGET_AVX2 void gamma_loop_avx2(char** d, const int64_t* st, int64_t n, const S* base, uint64_t seed, bool ls,
                                    bool beta, T lo, T hi) {
  gamma_loop_blocked<T, S>(d, st, n, base, seed, ls, beta, lo, hi);
}
template <typename T, typename S>
GK_TARGET_AVX512 void gamma_loop_avx512(char** d, const int64_t* st, int64_t n, const S* base, uint64_t seed,
                                        bool ls, bool beta, T lo, T hi) {
  gamma_loop_blocked<T, S>(d, st, n, base, seed, ls, beta, lo, hi);
}
#endif

// standard_dirichlet's normalisation of rows of K log-Gamma draws, in place: x - max of the row, e^x on
// 4-lane vectors (cpu/vecmath.h exp_split, within about an ulp; 0 below e^-708, where the clamp takes over),
// divided by the row's sum, clamped into [lo, hi]. A NaN anywhere in a row makes the row NaN (its sum), as
// ATen's softmax does.
template <typename S>
GK_HD_FORCE void softmax_rows(S* x, int64_t rows, int64_t K, double lo, double hi) {
  namespace v = cpu::vm4;
  constexpr int64_t kBuf = 2048;  // elements per group of whole rows
  double buf[kBuf + v::L];
  if (K > kBuf) {  // rows longer than the buffer: one row at a time, libm's exp
    for (int64_t r = 0; r < rows; ++r) {
      S* p = x + r * K;
      double m = -core::infinity<double>(), sum = 0.0;
      for (int64_t i = 0; i < K; ++i) m = double(p[i]) > m ? double(p[i]) : m;
      for (int64_t i = 0; i < K; ++i) sum += core::gk_exp(double(p[i]) - m);
      for (int64_t i = 0; i < K; ++i) {
        const double y = core::gk_exp(double(p[i]) - m) / sum;
        p[i] = static_cast<S>(y < lo ? lo : (y > hi ? hi : y));
      }
    }
    return;
  }
  const int64_t R = kBuf / K;  // rows per group
  for (int64_t r0 = 0; r0 < rows; r0 += R) {
    const int64_t nr = std::min(R, rows - r0), n = nr * K;
    S* p = x + r0 * K;
    for (int64_t r = 0; r < nr; ++r) {
      double m = -core::infinity<double>();
      for (int64_t i = 0; i < K; ++i) m = double(p[r * K + i]) > m ? double(p[r * K + i]) : m;
      for (int64_t i = 0; i < K; ++i) buf[r * K + i] = double(p[r * K + i]) - m;
    }
    for (int64_t i = n; i < n + v::L; ++i) buf[i] = 0.0;
    for (int64_t i = 0; i < n; i += v::L) {
      v::vd y;
      std::memcpy(&y, buf + i, sizeof(y));
      const v::vd e = v::exp_split(y, v::splat(0.0));
      std::memcpy(buf + i, &e, sizeof(e));
    }
    for (int64_t r = 0; r < nr; ++r) {
      double sum = 0.0;
      for (int64_t i = 0; i < K; ++i) sum += buf[r * K + i];
      const double inv = 1.0 / sum;
      for (int64_t i = 0; i < K; ++i) {
        const double y = buf[r * K + i] * inv;
        p[r * K + i] = static_cast<S>(y < lo ? lo : (y > hi ? hi : y));
      }
    }
  }
}

#ifdef GK_HAVE_ISA_CLONES
template <typename S>
GK_TARGET_AVX2 __attribute__((flatten)) void softmax_rows_avx2(S* x, int64_t rows, int64_t K, double lo, double hi) {
  softmax_rows<S>(x, rows, K, lo, hi);
}
template <typename S>
GK_TARGET_AVX512 __attribute__((flatten)) void softmax_rows_avx512(S* x, int64_t rows, int64_t K, double lo, double hi) {
  softmax_rows<S>(x, rows, K, lo, hi);
}
#endif

template <typename T, typename S>
using GammaLoopFn = void (*)(char**, const int64_t*, int64_t, const S*, uint64_t, bool, bool, T, T);

// The blocked loop for this CPU, or nullptr (no AVX2: the per-element loop, which the SSE2 build of the
// blocked passes would not beat).
template <typename T, typename S> GammaLoopFn<T, S> pick_gamma_loop() {
#ifdef GK_HAVE_ISA_CLONES
  return cpu::for_isa<GammaLoopFn<T, S>>(&gamma_loop_avx512<T, S>, &gamma_loop_avx2<T, S>, nullptr);
#else
  return nullptr;
#endif
}

at::Tensor gamma_sampler(const char* op, const at::Tensor& alpha, std::optional<at::Generator> generator,
                         bool log_space) {
  ops::check_floating(op, "alpha", alpha);
  // The sample is the first and only allocation: an impossible request fails at once, peak 1x the output.
  auto out = at::empty(alpha.sizes(), alpha.options().memory_format(at::MemoryFormat::Contiguous));
  if (out.numel() == 0) return out;
  const uint64_t seed = cpu::draw_seed(generator);
  auto iter = at::TensorIteratorConfig().add_output(out).add_const_input(alpha).build();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, alpha.scalar_type(), "gradkern_gamma_sampler", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* base = out.const_data_ptr<scalar_t>();
    static const GammaLoopFn<acc_t, scalar_t> blocked = pick_gamma_loop<acc_t, scalar_t>();
    iter.for_each([&](char** data, const int64_t* strides, int64_t n) {
      if (blocked) return blocked(data, strides, n, base, seed, log_space, false, acc_t(0), acc_t(0));
      for (int64_t i = 0; i < n; ++i) {
        scalar_t* o = reinterpret_cast<scalar_t*>(data[0] + i * strides[0]);
        const acc_t a = static_cast<acc_t>(*reinterpret_cast<const scalar_t*>(data[1] + i * strides[1]));
        *o = static_cast<scalar_t>(
            ops::gamma_sample_element<acc_t>(a, seed, static_cast<uint64_t>(o - base), 0, log_space));
      }
    }, kGrain);
  });
  return out;
}

at::Tensor log_standard_gamma(const at::Tensor& alpha, std::optional<at::Generator> generator) {
  return gamma_sampler("log_standard_gamma", alpha, generator, true);
}

at::Tensor standard_beta(const at::Tensor& a, const at::Tensor& b, std::optional<at::Generator> generator) {
  ops::check_beta_concentrations("standard_beta", a, b);
  auto out = at::empty(at::infer_size(a.sizes(), b.sizes()), a.options().memory_format(at::MemoryFormat::Contiguous));
  if (out.numel() == 0) return out;
  const uint64_t seed = cpu::draw_seed(generator);
  auto iter = at::TensorIteratorConfig().add_output(out).add_const_input(a).add_const_input(b).build();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, a.scalar_type(), "gradkern_beta_sampler", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const acc_t lo = static_cast<acc_t>(ops::unit_clamp<scalar_t>::lo);
    const acc_t hi = static_cast<acc_t>(ops::unit_clamp<scalar_t>::hi);
    const scalar_t* base = out.const_data_ptr<scalar_t>();
    static const GammaLoopFn<acc_t, scalar_t> blocked = pick_gamma_loop<acc_t, scalar_t>();
    iter.for_each([&](char** data, const int64_t* strides, int64_t n) {
      if (blocked) return blocked(data, strides, n, base, seed, true, true, lo, hi);
      for (int64_t i = 0; i < n; ++i) {
        scalar_t* o = reinterpret_cast<scalar_t*>(data[0] + i * strides[0]);
        const acc_t x = static_cast<acc_t>(*reinterpret_cast<const scalar_t*>(data[1] + i * strides[1]));
        const acc_t y = static_cast<acc_t>(*reinterpret_cast<const scalar_t*>(data[2] + i * strides[2]));
        *o = static_cast<scalar_t>(ops::beta_sample_element<acc_t>(x, y, seed, static_cast<uint64_t>(o - base), 0, lo, hi));
      }
    }, kGrain);
  });
  return out;
}

}  // namespace

namespace cpu {
bool blocked_gamma_sampler() { return pick_gamma_loop<double, double>() != nullptr; }
at::Tensor standard_gamma_blocked(const at::Tensor& alpha, std::optional<at::Generator> generator) {
  return gamma_sampler("standard_gamma", alpha, generator, false);
}
bool softmax_lastdim_clamp_(at::Tensor& x, double lo, double hi) {
#ifdef GK_HAVE_ISA_CLONES
  if (best_isa() == Isa::baseline || !x.is_contiguous() || x.dim() < 1 || x.numel() == 0) return false;
  if (x.scalar_type() != at::kFloat && x.scalar_type() != at::kDouble) return false;
  const int64_t K = x.size(-1), rows = x.numel() / K;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "gradkern_dirichlet_normalise", [&] {
    using Fn = void (*)(scalar_t*, int64_t, int64_t, double, double);
    const Fn fn = for_isa<Fn>(&softmax_rows_avx512<scalar_t>, &softmax_rows_avx2<scalar_t>, nullptr);
    scalar_t* p = x.mutable_data_ptr<scalar_t>();
    // rows are independent: split them over threads (each row's result is the same whatever the split)
    at::parallel_for(0, rows, 4096, [&](int64_t b, int64_t e) { fn(p + b * K, e - b, K, lo, hi); });
  });
  return true;
#else
  (void)x, (void)lo, (void)hi;
  return false;
#endif
}
}  // namespace cpu

TORCH_LIBRARY_IMPL(gradkern, CPU, m) {
  m.impl("log_standard_gamma", &log_standard_gamma);
  m.impl("standard_beta", &standard_beta);
}

}  // namespace gradkern
