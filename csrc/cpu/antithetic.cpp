// CPU kernels of the antithetic Gaussian ops (csrc/core/antithetic.h): the reflection table, the
// elementwise chi-square reflection, the construction alone and the fused sampler (one pass over the
// rows, each computing its mean, spread, exact chi-square reflection and antithetic construction).
//
// The noise comes in as a tensor (drawn by torch.randn with the caller's generator), so every result is
// a deterministic function of its inputs: bit for bit reproducible for a seeded generator and
// independent of the thread count and grain size.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/native/cpu/Loops.h>
#include <torch/library.h>

#include "ops/antithetic.h"

namespace gradkern {
namespace {

namespace an = ops::antithetic;

// Rows are columns of a (rows_in, rows) array: a task takes a contiguous run of rows and walks it in
// blocks of kBlock, whose inner loops over rows are contiguous in memory (vectorized).
constexpr int kBlock = 64;

template <typename Body>
void for_row_blocks(int64_t rows, int64_t k, const Body& body) {
  const int64_t grain = std::max<int64_t>(4 * kBlock, 32768 / k);
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; b += kBlock) body(b, static_cast<int>(std::min<int64_t>(kBlock, end - b)));
  });
}

at::Tensor antithetic_normal_standardized(const at::Tensor& noise, const at::Tensor& table, double u_lo, double u_hi,
                                          c10::string_view method, c10::string_view reflection) {
  TORCH_CHECK(noise.device().is_cpu(), "gradkern.antithetic_normal_standardized: expected a CPU tensor, got ",
              noise.device());
  auto p = an::prepare(noise, table, u_lo, u_hi, method, reflection);
  if (p.rows == 0) return p.out;
  AT_DISPATCH_FLOATING_TYPES(p.out.scalar_type(), "antithetic_normal_standardized", [&] {
    const scalar_t* in = p.noise.const_data_ptr<scalar_t>();
    scalar_t* out = p.out.mutable_data_ptr<scalar_t>();
    for_row_blocks(p.rows, p.k, [&](int64_t b, int nb) {
      core::antithetic_standardized_rows<scalar_t, kBlock>(in + b, out + b, p.k, p.rows, nb, p.method, p.reflection,
                                                            p.tab, p.lgamma_a);
    });
  });
  return p.out;
}

at::Tensor antithetic_construction(const at::Tensor& z, c10::string_view method) {
  TORCH_CHECK(z.device().is_cpu(), "gradkern.antithetic_construction: expected a CPU tensor, got ", z.device());
  auto p = an::prepare_construction(z, method);
  if (p.rows == 0) return p.out;
  AT_DISPATCH_FLOATING_TYPES(p.out.scalar_type(), "antithetic_construction", [&] {
    const scalar_t* in = p.noise.const_data_ptr<scalar_t>();
    scalar_t* out = p.out.mutable_data_ptr<scalar_t>();
    for_row_blocks(p.rows, p.k, [&](int64_t b, int nb) {
      core::antithetic_unit_rows<scalar_t, kBlock>(in + b, out + b, p.k, p.rows, nb, p.method);
    });
  });
  return p.out;
}

at::Tensor chi2_reflect(const at::Tensor& s, double df, const at::Tensor& table, double u_lo, double u_hi,
                        c10::string_view reflection) {
  TORCH_CHECK(s.device().is_cpu(), "gradkern.chi2_reflect: expected a CPU tensor, got ", s.device());
  auto r = an::prepare_reflect(s, df, table, u_lo, u_hi, reflection);
  AT_DISPATCH_FLOATING_TYPES(r.iter.common_dtype(), "chi2_reflect", [&] {
    const bool polish = std::is_same_v<scalar_t, double>;
    at::native::cpu_kernel(r.iter, [&](scalar_t x) -> scalar_t {
      return static_cast<scalar_t>(
          core::chi2_reflect_value(static_cast<double>(x), r.df, r.lgamma_a, r.reflection, r.tab, polish));
    });
  });
  return r.iter.output();
}

// Host-only (no tensor input): registered for CompositeExplicitAutograd, so it runs wherever it is
// called from; the caller moves the table to the device of its samples once and caches it.
std::tuple<at::Tensor, at::Tensor> antithetic_reflection_table(double a, int64_t nodes, double tail) {
  const char* op = "antithetic_reflection_table";
  TORCH_CHECK(std::isfinite(a) && a > 0, "gradkern.", op, ": a must be a positive number, got ", a);
  TORCH_CHECK(nodes >= 2 && nodes <= (int64_t(1) << 24), "gradkern.", op, ": nodes must be in [2, 2^24], got ", nodes);
  TORCH_CHECK(tail > 0 && tail < 0.5, "gradkern.", op, ": tail must be in (0, 1/2), got ", tail);
  const auto opt = at::TensorOptions().dtype(at::kDouble);
  at::Tensor coef = at::empty({nodes - 1, 4}, opt), range = at::empty({2}, opt);
  double* rg = range.mutable_data_ptr<double>();
  core::reflection_table_range(a, tail, rg, rg + 1);
  TORCH_CHECK(std::isfinite(rg[0]) && std::isfinite(rg[1]) && rg[1] > rg[0], "gradkern.", op,
              ": no finite table range for a = ", a);
  const double lgamma_a = std::lgamma(a);
  double* c = coef.mutable_data_ptr<double>();
  // Each node costs one direct reflection (~1 us); chunks of intervals fill in parallel, each
  // recomputing its first node (node positions are global: the table does not depend on the split).
  at::parallel_for(0, nodes - 1, 256, [&](int64_t begin, int64_t end) {
    core::reflection_table_fill(a, lgamma_a, rg[0], rg[1], nodes, begin, end, c);
  });
  return {coef, range};
}

}  // namespace

TORCH_LIBRARY_IMPL(gradkern, CPU, m) {
  m.impl("antithetic_normal_standardized", &antithetic_normal_standardized);
  m.impl("antithetic_construction", &antithetic_construction);
  m.impl("chi2_reflect", &chi2_reflect);
}

TORCH_LIBRARY_IMPL(gradkern, CompositeExplicitAutograd, m) {
  m.impl("antithetic_reflection_table", &antithetic_reflection_table);
}

}  // namespace gradkern
