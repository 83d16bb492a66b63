// CPU kernel of the fused antithetic Gaussian sampler (csrc/core/antithetic.h): one pass over the rows,
// each computing its mean, spread, exact chi-square reflection and antithetic construction.
//
// The noise comes in as a tensor (drawn by torch.randn with the caller's generator), so the result is a
// deterministic function of the noise: bit for bit reproducible for a seeded generator and independent of
// the thread count and grain size.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "ops/antithetic.h"

namespace gradkern {
namespace {

at::Tensor antithetic_normal_standardized(const at::Tensor& noise, const at::Tensor& table, double u_lo, double u_hi,
                                          int64_t method, int64_t reflection) {
  TORCH_CHECK(noise.device().is_cpu(), "gradkern.antithetic_normal_standardized: expected a CPU tensor, got ",
              noise.device());
  auto p = ops::antithetic::prepare(noise, table, u_lo, u_hi, method, reflection);
  if (p.rows == 0) return p.out;
  const core::ReflectTable tab = ops::antithetic::table_view(p, u_lo, u_hi);
  AT_DISPATCH_FLOATING_TYPES(p.out.scalar_type(), "antithetic_normal_standardized", [&] {
    const scalar_t* in = p.noise.const_data_ptr<scalar_t>();
    scalar_t* out = p.out.mutable_data_ptr<scalar_t>();
    const int64_t rows = p.rows, k = p.k;
    // Rows are columns of a (2k, rows) array: a task takes a contiguous run of rows and walks it in
    // blocks of kBlock, whose inner loops over rows are contiguous in memory (vectorized).
    constexpr int kBlock = 64;
    const int64_t grain = std::max<int64_t>(4 * kBlock, 32768 / k);
    at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; b += kBlock) {
        const int nb = static_cast<int>(std::min<int64_t>(kBlock, end - b));
        core::antithetic_standardized_rows<scalar_t, kBlock>(in + b, out + b, k, rows, nb, p.method, p.reflection,
                                                              tab, p.lgamma_a);
      }
    });
  });
  return p.out;
}

}  // namespace

TORCH_LIBRARY_IMPL(gradkern, CPU, m) {
  m.impl("antithetic_normal_standardized", &antithetic_normal_standardized);
}

}  // namespace gradkern
