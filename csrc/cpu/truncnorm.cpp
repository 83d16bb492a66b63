// CPU kernels of the truncated Normal's ops (csrc/core/truncnorm.h through ops/truncnorm.h): strided
// TensorIterator loops (broadcasting, type checks, threads). The core works in double for float and double;
// half and bfloat16 go through float.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/TensorIterator.h>
#include <torch/library.h>

#include <cmath>
#include <tuple>

#include "ops/tensor_checks.h"
#include "ops/truncnorm.h"

namespace gradkern {
namespace {

// Grain: 20-100 ns per element (erfc, exp and a polynomial in double).
constexpr int64_t kGrain = 2048;

template <typename S, typename A>
inline A load(char* const* data, const int64_t* strides, int k, int64_t i) {
  return static_cast<A>(*reinterpret_cast<const S*>(data[k] + i * strides[k]));
}

// p (the probabilities) may be float64 while the parameters are float32 (ops/tensor_checks.h nary_iter's
// `wide` input): read as double either way.
template <typename S>
inline double load_p(char* const* data, const int64_t* strides, int k, int64_t i, bool wide) {
  return wide ? *reinterpret_cast<const double*>(data[k] + i * strides[k]) : load<S, double>(data, strides, k, i);
}

at::Tensor truncated_normal_icdf(const at::Tensor& p, const at::Tensor& loc, const at::Tensor& scale,
                                 const at::Tensor& low, const at::Tensor& high) {
  using Op = ops::TruncatedNormalIcdf;
  const at::Tensor* ts[5] = {&p, &loc, &scale, &low, &high};
  auto iter = ops::nary_iter("truncated_normal_icdf", 5, Op::names, ts, 1, /*wide=*/0);
  const bool wide = ops::wide_input(iter, 0);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.dtype(0), "truncated_normal_icdf", [&] {
    // A double result is polished to full precision; narrower ones take the fitted quantile alone
    // (relative error <= 2.4e-8, below float's half ulp; csrc/core/normal.h std_normal_icdf_lower).
    constexpr bool polish = sizeof(scalar_t) >= 8;
    iter.for_each([wide](char** data, const int64_t* strides, int64_t n) {
      // The window's masses (two erfc) are reused while the parameters repeat: samples of one
      // distribution with broadcast (e.g. scalar) parameters. Same results either way.
      double key[4] = {NAN, NAN, NAN, NAN};
      core::TnState st{};
      for (int64_t i = 0; i < n; ++i) {
        const double prm[4] = {load<scalar_t, double>(data, strides, 2, i), load<scalar_t, double>(data, strides, 3, i),
                               load<scalar_t, double>(data, strides, 4, i), load<scalar_t, double>(data, strides, 5, i)};
        if (!(prm[0] == key[0] && prm[1] == key[1] && prm[2] == key[2] && prm[3] == key[3])) {
          st = core::tn_prepare(prm[0], prm[1], prm[2], prm[3]);
          for (int k = 0; k < 4; ++k) key[k] = prm[k];
        }
        const double z = core::tn_icdf_from(st, load_p<scalar_t>(data, strides, 1, i, wide), prm[0], prm[1], prm[2],
                                            prm[3], polish);
        *reinterpret_cast<scalar_t*>(data[0] + i * strides[0]) = static_cast<scalar_t>(z);
      }
    }, kGrain);
  });
  return iter.output();
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> truncated_normal_backward(
    const at::Tensor& grad, const at::Tensor& z, const at::Tensor& p, const at::Tensor& loc, const at::Tensor& scale,
    const at::Tensor& low, const at::Tensor& high) {
  using Op = ops::TruncatedNormalBackward;
  const at::Tensor* ts[7] = {&grad, &z, &p, &loc, &scale, &low, &high};
  auto iter = ops::nary_iter("truncated_normal_backward", 7, Op::names, ts, 4, /*wide=*/2);
  const bool wide = ops::wide_input(iter, 2);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.dtype(0), "truncated_normal_backward", [&] {
    iter.for_each([wide](char** data, const int64_t* strides, int64_t n) {
      for (int64_t i = 0; i < n; ++i) {
        double in[7], o[4];
        for (int k = 0; k < 7; ++k)
          in[k] = k == 2 ? load_p<scalar_t>(data, strides, 6, i, wide) : load<scalar_t, double>(data, strides, 4 + k, i);
        Op{}(in[0], in[1], in[2], in[3], in[4], in[5], in[6], o);
        for (int j = 0; j < 4; ++j) *reinterpret_cast<scalar_t*>(data[j] + i * strides[j]) = static_cast<scalar_t>(o[j]);
      }
    }, kGrain);
  });
  return std::make_tuple(iter.output(0), iter.output(1), iter.output(2), iter.output(3));
}

}  // namespace

TORCH_LIBRARY_IMPL(gradkern, CPU, m) {
  m.impl("truncated_normal_icdf", &truncated_normal_icdf);
  m.impl("truncated_normal_backward", &truncated_normal_backward);
}

}  // namespace gradkern
