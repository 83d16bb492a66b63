// Host-side glue shared by the CPU and CUDA antithetic kernels (csrc/cpu/antithetic.cpp,
// csrc/cuda/antithetic.cu): argument checks, output allocation and the reflection table view. The
// per-row math is csrc/core/antithetic.h; only the loop over rows differs between the backends.
//
// Op-level shapes: noise (2k - 1, *batch), rows along the trailing dims; out (2k, *batch). table: the
// (n_int, 4) float64 cubic Hermite coefficients made by the op antithetic_reflection_table, on the
// device of noise (ignored, and may be empty, for reflection = "hawkins-wixley").
#pragma once

#include <ATen/ATen.h>

#include <cmath>
#include <vector>

#include "core/antithetic.h"
#include "ops/tensor_checks.h"

namespace gradkern {
namespace ops {
namespace antithetic {

inline core::AntitheticMethod parse_method(const char* op, c10::string_view method) {
  return static_cast<core::AntitheticMethod>(choice_index(op, "method", method, {"marsaglia", "cheng"}));
}

inline core::AntitheticReflection parse_reflection(const char* op, c10::string_view reflection) {
  return static_cast<core::AntitheticReflection>(
      choice_index(op, "reflection", reflection, {"exact", "hawkins-wixley"}));
}

// The table argument of the exact reflection, checked against the tensor `like` it is applied to.
inline at::Tensor check_table(const char* op, const at::Tensor& like, const at::Tensor& table, double u_lo,
                              double u_hi) {
  TORCH_CHECK(table.defined() && table.scalar_type() == at::kDouble && table.dim() == 2 && table.size(0) >= 1 &&
                  table.size(1) == 4,
              "gradkern.", op, ": table must be a float64 tensor of shape (n, 4), got ",
              table.defined() ? table.sizes() : at::IntArrayRef{});
  TORCH_CHECK(table.device() == like.device(), "gradkern.", op, ": table must be on the device of the samples (",
              like.device(), "), got ", table.device());
  TORCH_CHECK(std::isfinite(u_lo) && std::isfinite(u_hi) && u_hi > u_lo, "gradkern.", op,
              ": the table range must satisfy u_lo < u_hi, got ", u_lo, ", ", u_hi);
  return table.contiguous();
}

inline core::ReflectTable table_view(const at::Tensor& table, double u_lo, double u_hi) {
  core::ReflectTable t{nullptr, 1, u_lo, u_hi, 1.0};
  if (table.defined()) {
    t.coef = table.const_data_ptr<double>();
    t.n_int = table.size(0);
    t.inv_h = static_cast<double>(t.n_int) / (u_hi - u_lo);
  }
  return t;
}

inline void check_real(const char* op, const char* name, const at::Tensor& t) {
  check_floating(op, name, t);
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, "gradkern.", op, ": ", name,
              " must be float32 or float64, got ", t.scalar_type());
}

struct Prepared {
  at::Tensor noise;  // contiguous
  at::Tensor out;    // (2k, *batch) (fused sampler) or (k, *batch) (construction), contiguous
  at::Tensor table;  // contiguous float64, or undefined
  core::ReflectTable tab;
  int64_t k, rows;
  core::AntitheticMethod method;
  core::AntitheticReflection reflection;
  double lgamma_a;
};

// antithetic_normal_standardized
inline Prepared prepare(const at::Tensor& noise, const at::Tensor& table, double u_lo, double u_hi,
                        c10::string_view method, c10::string_view reflection) {
  const char* op = "antithetic_normal_standardized";
  check_real(op, "noise", noise);
  TORCH_CHECK(noise.dim() >= 1 && noise.size(0) >= 3 && noise.size(0) % 2 == 1, "gradkern.", op,
              ": noise must have shape (2k - 1, *batch) with k >= 2, got ", noise.sizes());
  Prepared p;
  p.method = parse_method(op, method);
  p.reflection = parse_reflection(op, reflection);
  p.k = (noise.size(0) + 1) / 2;
  p.lgamma_a = std::lgamma(0.5 * static_cast<double>(p.k - 1));
  if (p.reflection == core::AntitheticReflection::exact) p.table = check_table(op, noise, table, u_lo, u_hi);
  p.tab = table_view(p.table, u_lo, u_hi);
  p.noise = noise.contiguous();
  std::vector<int64_t> shape(noise.sizes().begin(), noise.sizes().end());
  shape[0] = 2 * p.k;
  p.out = at::empty(shape, noise.options().memory_format(at::MemoryFormat::Contiguous));
  p.rows = noise.numel() / noise.size(0);
  return p;
}

// antithetic_construction
inline Prepared prepare_construction(const at::Tensor& z, c10::string_view method) {
  const char* op = "antithetic_construction";
  check_real(op, "z", z);
  TORCH_CHECK(z.dim() >= 1 && z.size(0) >= 1, "gradkern.", op, ": z must have shape (k - 1, *batch) with k >= 2, got ",
              z.sizes());
  Prepared p;
  p.method = parse_method(op, method);
  p.reflection = core::AntitheticReflection::exact;
  p.k = z.size(0) + 1;
  p.lgamma_a = 0.0;
  p.tab = table_view(at::Tensor(), 0.0, 1.0);
  p.noise = z.contiguous();
  std::vector<int64_t> shape(z.sizes().begin(), z.sizes().end());
  shape[0] = p.k;
  p.out = at::empty(shape, z.options().memory_format(at::MemoryFormat::Contiguous));
  p.rows = z.numel() / z.size(0);
  return p;
}

// chi2_reflect: an elementwise iterator over s plus the reflection's constants.
struct Reflect {
  at::TensorIterator iter;
  at::Tensor table;
  core::ReflectTable tab;
  core::AntitheticReflection reflection;
  double df, lgamma_a;
};

inline Reflect prepare_reflect(const at::Tensor& s, double df, const at::Tensor& table, double u_lo, double u_hi,
                               c10::string_view reflection) {
  const char* op = "chi2_reflect";
  check_real(op, "s", s);
  TORCH_CHECK(std::isfinite(df) && df > 0, "gradkern.", op, ": df must be a positive number, got ", df);
  Reflect r{at::TensorIteratorConfig().add_owned_output(at::Tensor()).add_const_input(s).build(), at::Tensor(),
            table_view(at::Tensor(), 0.0, 1.0), parse_reflection(op, reflection), df, std::lgamma(0.5 * df)};
  if (r.reflection == core::AntitheticReflection::exact) {
    r.table = check_table(op, s, table, u_lo, u_hi);
    r.tab = table_view(r.table, u_lo, u_hi);
  }
  return r;
}

}  // namespace antithetic
}  // namespace ops
}  // namespace gradkern
