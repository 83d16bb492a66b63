// CPU kernels of the von Mises-Fisher ops (csrc/core/vmf.h): TensorIterator loops over the core for the
// gradient, CDF and moments (broadcasting, strides, threads; 1-2 us per element, so small grains), and the
// per-element Philox sampler (ops/vmf.h). half and bfloat16 are computed in float; the quadratures run
// in double for every dtype.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/TensorIterator.h>
#include <torch/library.h>

#include <algorithm>
#include <tuple>

#include "core/philox_normal.h"
#include "cpu/host.h"
#include "ops/tensor_checks.h"
#include "ops/vmf.h"

namespace gradkern {
namespace {

constexpr int64_t kGrain = 256;  // ~0.3-0.6 us per element (the gradient), more for the moments

// Which: 0 the gradient du/dkappa, 1 the CDF, 2 the gradient's kappa-derivative. One 1-D strided loop of
// TensorIterator (operands: out, concentration, u).
template <int Which, typename scalar_t>
inline void vmf_binary_loop(char** data, const int64_t* strides, int64_t n, int di) {
  using acc_t = at::opmath_type<scalar_t>;
  for (int64_t i = 0; i < n; ++i) {
    const acc_t k = static_cast<acc_t>(*reinterpret_cast<const scalar_t*>(data[1] + i * strides[1]));
    const acc_t x = static_cast<acc_t>(*reinterpret_cast<const scalar_t*>(data[2] + i * strides[2]));
    const acc_t r = Which == 1   ? core::vmf_cdf_u<acc_t>(k, x, di)
                    : Which == 2 ? core::vmf_grad_u_dkappa<acc_t>(k, x, di)
                                 : core::vmf_grad_u<acc_t>(k, x, di);
    *reinterpret_cast<scalar_t*>(data[0] + i * strides[0]) = static_cast<scalar_t>(r);
  }
}

// The quadrature panels (core/vmf.h) are loops over their nodes without calls or branches: compiled again
// for AVX2 and AVX-512 (cpu/host.h), one clone picked per process. Every element takes the same path, so a
// batch gives the results of single calls; FMA contraction may change the last bits between machines with
// different instruction sets (host.h).
using VmfLoopFn = void (*)(char**, const int64_t*, int64_t, int);
#ifdef GK_HAVE_ISA_CLONES
template <int Which, typename scalar_t>
GK_TARGET_AVX2 __attribute__((flatten)) void vmf_binary_avx2(char** d, const int64_t* s, int64_t n, int di) {
  vmf_binary_loop<Which, scalar_t>(d, s, n, di);
}
template <int Which, typename scalar_t>
GK_TARGET_AVX512 __attribute__((flatten)) void vmf_binary_avx512(char** d, const int64_t* s, int64_t n, int di) {
  vmf_binary_loop<Which, scalar_t>(d, s, n, di);
}
#endif
template <int Which, typename scalar_t> VmfLoopFn vmf_binary_fn() {
#ifdef GK_HAVE_ISA_CLONES
  return cpu::for_isa<VmfLoopFn>(&vmf_binary_avx512<Which, scalar_t>, &vmf_binary_avx2<Which, scalar_t>,
                                 &vmf_binary_loop<Which, scalar_t>);
#else
  return &vmf_binary_loop<Which, scalar_t>;
#endif
}

template <int Which>
at::Tensor vmf_binary(const char* op, const at::Tensor& concentration, const at::Tensor& u, int64_t d) {
  ops::check_vmf_dim(op, d);
  auto iter = ops::binary_iter(op, "concentration", concentration, "u", u);
  const int di = static_cast<int>(d);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.common_dtype(), "gradkern_vmf", [&] {
    const VmfLoopFn loop = vmf_binary_fn<Which, scalar_t>();
    iter.for_each([di, loop](char** data, const int64_t* strides, int64_t n) { loop(data, strides, n, di); }, kGrain);
  });
  return iter.output();
}

at::Tensor vmf_grad_u(const at::Tensor& concentration, const at::Tensor& u, int64_t d) {
  return vmf_binary<0>("vmf_grad_u", concentration, u, d);
}
at::Tensor vmf_cdf_u(const at::Tensor& u, const at::Tensor& concentration, int64_t d) {
  return vmf_binary<1>("vmf_cdf_u", concentration, u, d);
}
at::Tensor vmf_grad_u_dkappa(const at::Tensor& concentration, const at::Tensor& u, int64_t d) {
  return vmf_binary<2>("vmf_grad_u_dkappa", concentration, u, d);
}

// vmf_moments' loop (operands: the three outputs, concentration) and its ISA clones, as vmf_binary's.
template <typename scalar_t>
inline void vmf_moments_loop(char** data, const int64_t* strides, int64_t n, int di) {
  using acc_t = at::opmath_type<scalar_t>;
  for (int64_t i = 0; i < n; ++i) {
    const acc_t k = static_cast<acc_t>(*reinterpret_cast<const scalar_t*>(data[3] + i * strides[3]));
    acc_t lz, m, v;
    core::vmf_moments<acc_t>(k, di, lz, m, v);
    *reinterpret_cast<scalar_t*>(data[0] + i * strides[0]) = static_cast<scalar_t>(lz);
    *reinterpret_cast<scalar_t*>(data[1] + i * strides[1]) = static_cast<scalar_t>(m);
    *reinterpret_cast<scalar_t*>(data[2] + i * strides[2]) = static_cast<scalar_t>(v);
  }
}
#ifdef GK_HAVE_ISA_CLONES
template <typename scalar_t>
GK_TARGET_AVX2 __attribute__((flatten)) void vmf_moments_avx2(char** d, const int64_t* s, int64_t n, int di) {
  vmf_moments_loop<scalar_t>(d, s, n, di);
}
template <typename scalar_t>
GK_TARGET_AVX512 __attribute__((flatten)) void vmf_moments_avx512(char** d, const int64_t* s, int64_t n, int di) {
  vmf_moments_loop<scalar_t>(d, s, n, di);
}
#endif

std::tuple<at::Tensor, at::Tensor, at::Tensor> vmf_moments(const at::Tensor& concentration, int64_t d) {
  ops::check_floating("vmf_moments", "concentration", concentration);
  ops::check_vmf_dim("vmf_moments", d);
  auto iter = at::TensorIteratorConfig()
                  .add_owned_output(at::Tensor())
                  .add_owned_output(at::Tensor())
                  .add_owned_output(at::Tensor())
                  .add_const_input(concentration)
                  .build();
  const int di = static_cast<int>(d);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.common_dtype(), "vmf_moments", [&] {
#ifdef GK_HAVE_ISA_CLONES
    const VmfLoopFn loop = cpu::for_isa<VmfLoopFn>(&vmf_moments_avx512<scalar_t>, &vmf_moments_avx2<scalar_t>,
                                                   &vmf_moments_loop<scalar_t>);
#else
    const VmfLoopFn loop = &vmf_moments_loop<scalar_t>;
#endif
    iter.for_each([di, loop](char** data, const int64_t* strides, int64_t n) { loop(data, strides, n, di); }, kGrain);
  });
  return std::make_tuple(iter.output(0), iter.output(1), iter.output(2));
}

at::Tensor vmf_central_moment(const at::Tensor& concentration, int64_t d, int64_t k) {
  ops::check_floating("vmf_central_moment", "concentration", concentration);
  ops::check_vmf_dim("vmf_central_moment", d);
  ops::check_vmf_moment_order("vmf_central_moment", k);
  auto iter = at::TensorIteratorConfig().add_owned_output(at::Tensor()).add_const_input(concentration).build();
  const int di = static_cast<int>(d), ki = static_cast<int>(k);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.common_dtype(), "vmf_central_moment", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    iter.for_each([di, ki](char** data, const int64_t* strides, int64_t n) {
      for (int64_t i = 0; i < n; ++i) {
        const acc_t kap = static_cast<acc_t>(*reinterpret_cast<const scalar_t*>(data[1] + i * strides[1]));
        *reinterpret_cast<scalar_t*>(data[0] + i * strides[0]) =
            static_cast<scalar_t>(core::vmf_central_moment<acc_t>(kap, di, ki));
      }
    }, kGrain);
  });
  return iter.output();
}

at::Tensor vmf_sample_u(const at::Tensor& concentration, int64_t d, std::optional<at::Generator> generator) {
  ops::check_floating("vmf_sample_u", "concentration", concentration);
  ops::check_vmf_dim("vmf_sample_u", d);
  // Contiguous so that element i of the output is element i of the stream layout, whatever the strides.
  const auto kappa = concentration.contiguous();
  auto out = at::empty_like(kappa, at::MemoryFormat::Contiguous);
  const int64_t n = kappa.numel();
  if (n == 0) return out;
  const uint64_t seed = cpu::draw_seed(generator);
  const int di = static_cast<int>(d);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, kappa.scalar_type(), "vmf_sample_u", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* k = kappa.const_data_ptr<scalar_t>();
    scalar_t* o = out.mutable_data_ptr<scalar_t>();
    // ~50-120 ns per element (three uniforms per proposal); element i depends only on (seed, i).
    at::parallel_for(0, n, 2048, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i)
        o[i] = static_cast<scalar_t>(
            ops::vmf_sample_element<acc_t>(static_cast<acc_t>(k[i]), di, seed, static_cast<uint64_t>(i), 0));
    });
  });
  return out;
}

// The normals of Philox blocks [b0, b1) of vmf_noise's flat output of `total` values (core/philox_normal.h):
// whole blocks straight into out, a final partial block through a buffer. The block loop vectorizes (clones
// below).
template <typename T>
inline void vmf_noise_blocks(uint64_t seed, int64_t b0, int64_t b1, int64_t total, T* out) {
  constexpr int P = core::PhiloxNormal<T>::per_block;
  const int64_t whole = std::min<int64_t>(b1, total / P);
  for (int64_t b = b0; b < whole; ++b) core::philox_normal_block<T>(seed, 0, static_cast<uint64_t>(b), out + b * P);
  if (b1 > whole) {
    T buf[P];
    core::philox_normal_block<T>(seed, 0, static_cast<uint64_t>(whole), buf);
    for (int64_t g = whole * P; g < total; ++g) out[g] = buf[g - whole * P];
  }
}
template <typename T> using NoiseFn = void (*)(uint64_t, int64_t, int64_t, int64_t, T*);
#ifdef GK_HAVE_ISA_CLONES
template <typename T>
GK_TARGET_AVX2 __attribute__((flatten)) void vmf_noise_avx2(uint64_t s, int64_t b0, int64_t b1, int64_t n, T* o) {
  vmf_noise_blocks<T>(s, b0, b1, n, o);
}
template <typename T>
GK_TARGET_AVX512 __attribute__((flatten)) void vmf_noise_avx512(uint64_t s, int64_t b0, int64_t b1, int64_t n, T* o) {
  vmf_noise_blocks<T>(s, b0, b1, n, o);
}
#endif

// like.shape + (d - 1,) standard normals of like's dtype (the tangent directions of vmf_rsample; like gives
// the shape only), from Philox streams keyed by a seed drawn from the generator.
at::Tensor vmf_noise(const at::Tensor& like, int64_t d, std::optional<at::Generator> generator) {
  ops::check_vmf_noise("vmf_noise", like, d);
  auto shape = like.sizes().vec();
  shape.push_back(d - 1);
  auto out = at::empty(shape, like.options().memory_format(at::MemoryFormat::Contiguous));
  const int64_t total = out.numel();
  if (total == 0) return out;
  const uint64_t seed = cpu::draw_seed(generator);
  AT_DISPATCH_FLOATING_TYPES(like.scalar_type(), "vmf_noise", [&] {
    constexpr int P = core::PhiloxNormal<scalar_t>::per_block;
#ifdef GK_HAVE_ISA_CLONES
    const NoiseFn<scalar_t> fn = cpu::for_isa<NoiseFn<scalar_t>>(&vmf_noise_avx512<scalar_t>, &vmf_noise_avx2<scalar_t>,
                                                                &vmf_noise_blocks<scalar_t>);
#else
    const NoiseFn<scalar_t> fn = &vmf_noise_blocks<scalar_t>;
#endif
    scalar_t* o = out.mutable_data_ptr<scalar_t>();
    // ~1-2 ns per normal: 16384 normals per task
    at::parallel_for(0, (total + P - 1) / P, 16384 / P,
                     [&](int64_t b0, int64_t b1) { fn(seed, b0, b1, total, o); });
  });
  return out;
}

// z (..., d) from loc (..., d), u (..., 1) and noise (..., d - 1), broadcast over the leading dimensions.
at::Tensor vmf_direction(const at::Tensor& loc, const at::Tensor& u, const at::Tensor& noise) {
  const auto in = ops::vmf_direction_inputs(loc, u, noise);
  const int64_t d = in.d, rows = in.rows;
  const at::Tensor &l = in.loc, &uu = in.u, &nz = in.noise;
  auto out = at::empty(in.shape, loc.options());
  if (rows == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(loc.scalar_type(), "vmf_direction", [&] {
    const scalar_t *lp = l.const_data_ptr<scalar_t>(), *up = uu.const_data_ptr<scalar_t>(),
                   *np = nz.const_data_ptr<scalar_t>();
    scalar_t* o = out.mutable_data_ptr<scalar_t>();
    const int di = static_cast<int>(d);
    at::parallel_for(0, rows, std::max<int64_t>(1, 16384 / d), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) core::vmf_direction<scalar_t>(lp + r * d, up[r], np + r * (d - 1), di, o + r * d);
    });
  });
  return out;
}

// (grad_loc, grad_u, grad_noise) of vmf_direction, each of the output's leading shape (rows), one fused pass.
std::tuple<at::Tensor, at::Tensor, at::Tensor> vmf_direction_backward(const at::Tensor& grad, const at::Tensor& loc,
                                                                      const at::Tensor& u, const at::Tensor& noise) {
  const auto in = ops::vmf_direction_inputs(loc, u, noise);
  TORCH_CHECK(grad.sizes().vec() == in.shape, "gradkern.vmf_direction_backward: grad must have the output's shape ",
              in.shape, ", got ", grad.sizes());
  const int64_t d = in.d, rows = in.rows;
  const at::Tensor g = grad.contiguous(), &l = in.loc, &uu = in.u, &nz = in.noise;
  auto gl = at::empty_like(l), gu = at::empty_like(uu), gn = at::empty_like(nz);
  if (rows == 0) return std::make_tuple(gl, gu, gn);
  AT_DISPATCH_FLOATING_TYPES(loc.scalar_type(), "vmf_direction_backward", [&] {
    const scalar_t *gp = g.const_data_ptr<scalar_t>(), *lp = l.const_data_ptr<scalar_t>(),
                   *up = uu.const_data_ptr<scalar_t>(), *np = nz.const_data_ptr<scalar_t>();
    scalar_t *glp = gl.mutable_data_ptr<scalar_t>(), *gup = gu.mutable_data_ptr<scalar_t>(),
             *gnp = gn.mutable_data_ptr<scalar_t>();
    const int di = static_cast<int>(d);
    at::parallel_for(0, rows, std::max<int64_t>(1, 16384 / d), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r)
        core::vmf_direction_backward<scalar_t>(gp + r * d, lp + r * d, up[r], np + r * (d - 1), di, glp + r * d,
                                               gup + r, gnp + r * (d - 1));
    });
  });
  return std::make_tuple(gl, gu, gn);
}

}  // namespace

TORCH_LIBRARY_IMPL(gradkern, CPU, m) {
  m.impl("vmf_direction_backward", &vmf_direction_backward);
  m.impl("vmf_direction", &vmf_direction);
  m.impl("vmf_sample_u", &vmf_sample_u);
  m.impl("vmf_noise", &vmf_noise);
  m.impl("vmf_grad_u", &vmf_grad_u);
  m.impl("vmf_grad_u_dkappa", &vmf_grad_u_dkappa);
  m.impl("vmf_cdf_u", &vmf_cdf_u);
  m.impl("vmf_moments", &vmf_moments);
  m.impl("vmf_central_moment", &vmf_central_moment);
}

}  // namespace gradkern
