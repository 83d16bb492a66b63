// The per-element von Mises-Fisher bodies shared by the CPU and CUDA kernels (csrc/core/vmf.h): the sampler of
// u = 1 - mu^T z on the element's own Philox stream (key = seed, subsequence = element index), so results
// depend only on the seed and the element's position, never on the thread count or launch configuration.
#pragma once

#include <ATen/ATen.h>
#include <ATen/ExpandUtils.h>

#include <vector>

#include "core/philox.h"
#include "core/vmf.h"

namespace gradkern {
namespace ops {

// 32-bit words one element may consume (two per uniform in double): d >= 4, three uniforms per proposal
// (Ulrich's two and the acceptance test's); d = 2, the von Mises sampler's (ops/vonmises.h: four words per
// proposal); d = 3, one uniform. The CUDA kernel advances the generator's offset by this much per launch.
constexpr uint64_t kVmfWordsPerElement = 6ull * core::kVmfMaxProposals > 4ull * core::kVonMisesMaxProposals
                                             ? 6ull * core::kVmfMaxProposals
                                             : 4ull * core::kVonMisesMaxProposals;

template <typename acc_t>
GK_HD acc_t vmf_sample_element(acc_t kappa, int d, uint64_t seed, uint64_t index, uint64_t offset) {
  core::Philox rng(seed, index, offset);
  core::PhiloxUniform<acc_t> uniform(rng);
  return core::vmf_sample_u<acc_t>(kappa, d, uniform, core::kVmfMaxProposals);
}

// loc (..., d), u (..., 1) and noise (..., d - 1), broadcast over the leading dimensions; returns the
// output shape (..., d) and checks dtypes and devices.
inline std::vector<int64_t> vmf_direction_shape(const at::Tensor& loc, const at::Tensor& u, const at::Tensor& noise) {
  TORCH_CHECK(loc.scalar_type() == at::kFloat || loc.scalar_type() == at::kDouble, "gradkern.vmf_direction: loc "
              "must be float32 or float64, got ", loc.scalar_type());
  TORCH_CHECK(u.scalar_type() == loc.scalar_type(), "gradkern.vmf_direction: u and loc must have the same dtype, got ",
              u.scalar_type(), " and ", loc.scalar_type());
  TORCH_CHECK(u.device() == loc.device(), "gradkern.vmf_direction: u and loc must be on the same device, got ",
              u.device(), " and ", loc.device());
  TORCH_CHECK(loc.dim() >= 1 && loc.size(-1) >= 2, "gradkern.vmf_direction: loc must have a last dimension d >= 2, "
              "got shape ", loc.sizes());
  TORCH_CHECK(u.dim() >= 1 && u.size(-1) == 1, "gradkern.vmf_direction: u must have a last dimension of size 1 "
              "(one u per row of loc), got shape ", u.sizes());
  TORCH_CHECK(noise.scalar_type() == loc.scalar_type() && noise.device() == loc.device(), "gradkern.vmf_direction: "
              "noise must have loc's dtype and device, got ", noise.scalar_type(), " on ", noise.device());
  TORCH_CHECK(noise.dim() >= 1 && noise.size(-1) == loc.size(-1) - 1, "gradkern.vmf_direction: noise must have a "
              "last dimension d - 1 = ", loc.size(-1) - 1, ", got shape ", noise.sizes());
  auto batch = at::infer_size(at::infer_size(loc.sizes().slice(0, loc.dim() - 1), u.sizes().slice(0, u.dim() - 1)),
                              noise.sizes().slice(0, noise.dim() - 1));
  batch.push_back(loc.size(-1));
  return batch;
}

// d is the sphere's ambient dimension (S^(d-1) in R^d).
inline void check_vmf_dim(const char* op, int64_t d) {
  TORCH_CHECK(d >= 2 && d <= (int64_t(1) << 30), "gradkern.", op, ": d (the dimension of the space the sphere "
              "lies in) must be an integer >= 2, got ", d);
}

// vmf_noise(like, d): like float32 or float64 (it gives the shape, dtype and device of the normals).
inline void check_vmf_noise(const char* op, const at::Tensor& like, int64_t d) {
  check_vmf_dim(op, d);
  TORCH_CHECK(like.scalar_type() == at::kFloat || like.scalar_type() == at::kDouble, "gradkern.", op,
              ": like must be float32 or float64, got ", like.scalar_type());
}

// vmf_direction's inputs expanded to the output's leading shape and made contiguous (row r of each is the
// r-th row of the output), shared by both backends' forward and backward kernels.
struct VmfDirectionInputs {
  std::vector<int64_t> shape;  // the output's, (..., d)
  int64_t d, rows;
  at::Tensor loc, u, noise;     // (rows, d), (rows, 1), (rows, d - 1) in memory
};
inline VmfDirectionInputs vmf_direction_inputs(const at::Tensor& loc, const at::Tensor& u, const at::Tensor& noise) {
  VmfDirectionInputs in;
  in.shape = vmf_direction_shape(loc, u, noise);
  in.d = in.shape.back();
  auto expanded = [&](const at::Tensor& t, int64_t last) {
    auto s = in.shape;
    s.back() = last;
    return t.expand(s).contiguous();
  };
  in.loc = expanded(loc, in.d);
  in.u = expanded(u, 1);
  in.noise = expanded(noise, in.d - 1);
  in.rows = in.loc.numel() / in.d;
  return in;
}

inline void check_vmf_moment_order(const char* op, int64_t k) {
  TORCH_CHECK(k >= 2 && k <= core::vmf_detail::kVmfMaxMoment, "gradkern.", op, ": k (the order of the central "
              "moment) must be in [2, ", core::vmf_detail::kVmfMaxMoment, "], got ", k);
}

}  // namespace ops
}  // namespace gradkern
