// Host-side glue shared by the CPU and CUDA antithetic kernels (csrc/cpu/antithetic.cpp,
// csrc/cuda/antithetic.cu): argument checks, output allocation and the reflection table view. The
// per-row math is csrc/core/antithetic.h; only the loop over rows differs between the backends.
//
// Op-level shapes: noise (2k - 1, *batch), rows along the trailing dims; out (2k, *batch). table: the
// (n_int, 4) float64 cubic Hermite coefficients of gradkern/antithetic.py's _reflection_table on the
// device of noise (ignored, and may be empty, for reflection = hawkins-wixley).
#pragma once

#include <ATen/ATen.h>

#include <cmath>
#include <vector>

#include "core/antithetic.h"
#include "ops/tensor_checks.h"

namespace gradkern {
namespace ops {
namespace antithetic {

struct Prepared {
  at::Tensor noise;  // contiguous
  at::Tensor out;    // (2k, *batch), contiguous
  at::Tensor table;  // contiguous float64, or undefined
  int64_t k, rows;
  core::AntitheticMethod method;
  core::AntitheticReflection reflection;
  double lgamma_a;
};

inline Prepared prepare(const at::Tensor& noise, const at::Tensor& table, double u_lo, double u_hi, int64_t method,
                        int64_t reflection) {
  const char* op = "antithetic_normal_standardized";
  check_floating(op, "noise", noise);
  TORCH_CHECK(noise.scalar_type() == at::kFloat || noise.scalar_type() == at::kDouble, "gradkern.", op,
              ": noise must be float32 or float64, got ", noise.scalar_type());
  TORCH_CHECK(noise.dim() >= 1 && noise.size(0) >= 3 && noise.size(0) % 2 == 1, "gradkern.", op,
              ": noise must have shape (2k - 1, *batch) with k >= 2, got ", noise.sizes());
  TORCH_CHECK(method == 0 || method == 1, "gradkern.", op, ": method must be 0 (marsaglia) or 1 (cheng), got ",
              method);
  TORCH_CHECK(reflection == 0 || reflection == 1, "gradkern.", op,
              ": reflection must be 0 (exact) or 1 (hawkins-wixley), got ", reflection);
  Prepared p;
  p.k = (noise.size(0) + 1) / 2;
  p.method = static_cast<core::AntitheticMethod>(method);
  p.reflection = static_cast<core::AntitheticReflection>(reflection);
  p.lgamma_a = std::lgamma(0.5 * static_cast<double>(p.k - 1));
  if (p.reflection == core::AntitheticReflection::exact) {
    TORCH_CHECK(table.defined() && table.scalar_type() == at::kDouble && table.dim() == 2 && table.size(0) >= 1 &&
                    table.size(1) == 4,
                "gradkern.", op, ": table must be a float64 tensor of shape (n, 4), got ",
                table.defined() ? table.sizes() : at::IntArrayRef{});
    TORCH_CHECK(table.device() == noise.device(), "gradkern.", op, ": table must be on the device of noise (",
                noise.device(), "), got ", table.device());
    TORCH_CHECK(std::isfinite(u_lo) && std::isfinite(u_hi) && u_hi > u_lo, "gradkern.", op,
                ": the table range must satisfy u_lo < u_hi, got ", u_lo, ", ", u_hi);
    p.table = table.contiguous();
  }
  p.noise = noise.contiguous();
  std::vector<int64_t> shape(noise.sizes().begin(), noise.sizes().end());
  shape[0] = 2 * p.k;
  p.out = at::empty(shape, noise.options().memory_format(at::MemoryFormat::Contiguous));
  p.rows = p.k > 0 ? noise.numel() / noise.size(0) : 0;
  return p;
}

inline core::ReflectTable table_view(const Prepared& p, double u_lo, double u_hi) {
  core::ReflectTable t{nullptr, 1, u_lo, u_hi, 1.0};
  if (p.table.defined()) {
    t.coef = p.table.const_data_ptr<double>();
    t.n_int = p.table.size(0);
    t.inv_h = static_cast<double>(t.n_int) / (u_hi - u_lo);
  }
  return t;
}

}  // namespace antithetic
}  // namespace ops
}  // namespace gradkern
