// The truncated Normal's ops (csrc/core/truncnorm.h), listed once for both backends: the functors map one
// element through the core, and csrc/cpu/truncnorm.cpp and csrc/cuda/truncnorm.cu loop over them.
#pragma once

#include "core/truncnorm.h"

namespace gradkern {
namespace ops {

// truncated_normal_icdf(p, loc, scale, low, high) -> z (p may be float64 with float32 parameters)
struct TruncatedNormalIcdf {
  static constexpr const char* names[5] = {"p", "loc", "scale", "low", "high"};
  template <typename T, typename P>
  GK_HD T operator()(P p, T loc, T scale, T low, T high) const {
    return core::truncated_normal_icdf(p, loc, scale, low, high);
  }
};

// truncated_normal_backward(grad, z, p, loc, scale, low, high) -> (grad_loc, grad_scale, grad_low, grad_high)
struct TruncatedNormalBackward {
  static constexpr const char* names[7] = {"grad", "z", "p", "loc", "scale", "low", "high"};
  template <typename T, typename P>
  GK_HD void operator()(T g, T z, P p, T loc, T scale, T low, T high, T* o) const {
    core::truncated_normal_backward(g, z, p, loc, scale, low, high, o);
  }
};

}  // namespace ops
}  // namespace gradkern
