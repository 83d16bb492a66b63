// Device-compile check for csrc/core/ibeta.h, ibeta_d2.h and csrc/core/gamma_sampler.h: instantiates every public function for float and double
// inside a __global__ kernel. Compile only (no GPU needed):
//   nvcc -std=c++17 -c tests/native/device_check_ibeta.cu -I csrc -o /tmp/dc.o
#include "core/ibeta.h"
#include "core/ibeta_d2.h"

namespace gk_device_check {
template <typename T> __global__ void ibeta_device_check(const T* a, const T* b, const T* x, T* out, int n) {
  using namespace gradkern::core;
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  T* o = out + 15 * i;
  o[0] = betainc(a[i], b[i], x[i]);
  o[1] = betaincc(a[i], b[i], x[i]);
  betainc_grads(a[i], b[i], x[i], o[2], o[3]);
  standard_beta_grad(a[i], b[i], x[i], o[4], o[5]);
  o[6] = dirichlet_grad(x[i], a[i], a[i] + b[i]);
  o[7] = betaincinv(a[i], b[i], x[i]);
  betainc_grads2(a[i], b[i], x[i], o + 8);
  standard_beta_grad_d2(a[i], b[i], x[i], o + 11);
}
}  // namespace gk_device_check

template __global__ void gk_device_check::ibeta_device_check<float>(const float*, const float*, const float*, float*, int);
template __global__ void gk_device_check::ibeta_device_check<double>(const double*, const double*, const double*, double*, int);

// The fused Gamma / Beta samplers (csrc/core/gamma_sampler.h), with the Philox stream of ops/gamma_sampler.h.
#include "ops/gamma_sampler.h"

namespace gk_device_check {
template <typename T> __global__ void gamma_sampler_device_check(const T* a, const T* b, T* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  out[3 * i] = gradkern::ops::gamma_sample_element<T>(a[i], 1, i, 0, false);
  out[3 * i + 1] = gradkern::ops::gamma_sample_element<T>(a[i], 1, i, 0, true);
  out[3 * i + 2] = gradkern::ops::beta_sample_element<T>(a[i], b[i], 1, i, 0, T(1e-30), T(0.99));
}
}  // namespace gk_device_check

template __global__ void gk_device_check::gamma_sampler_device_check<float>(const float*, const float*, float*, int);
template __global__ void gk_device_check::gamma_sampler_device_check<double>(const double*, const double*, double*, int);
