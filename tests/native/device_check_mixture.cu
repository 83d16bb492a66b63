// Device-compile check for csrc/core/mixture.h: instantiates the per-sample backward, the log density
// and the special-function helpers for float and double inside __global__ kernels. Compile only:
//   nvcc -std=c++17 -c tests/native/device_check_mixture.cu -I csrc -o /tmp/dc_mixture.o
#include "core/mixture.h"

namespace gk_device_check {
struct AtomicAdd {
  template <typename T>
  __device__ void operator()(T* p, T v) const { atomicAdd(p, v); }
};

template <typename T>
__global__ void mixture_device_check(gradkern::core::mixture::Params<T> p,
                                     gradkern::core::mixture::Grads<T> g, const T* z, const T* grad, T* out,
                                     int n) {
  using namespace gradkern::core;
  using namespace gradkern::core::mixture;
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  backward_sample(p, z + i * p.D, grad + i * p.D, g, AtomicAdd{});
  out[4 * i] = log_density(p, z + i * p.D);
  out[4 * i + 1] = log_ndtr_diff(z[i], z[i] - T(1));
  T lp, lq;
  log_gamma_pq_half(p.D, z[i] * z[i], &lp, &lq);
  out[4 * i + 2] = lp;
  // The forward row (z = mu + c lambda eps) into out's last slot, with D = 1.
  sample_row(p.coord_scale, p.component_scale, p.locs, z + i, out + 4 * i + 3, 1);
}
}  // namespace gk_device_check

template __global__ void gk_device_check::mixture_device_check<float>(
    gradkern::core::mixture::Params<float>, gradkern::core::mixture::Grads<float>, const float*, const float*,
    float*, int);
template __global__ void gk_device_check::mixture_device_check<double>(
    gradkern::core::mixture::Params<double>, gradkern::core::mixture::Grads<double>, const double*,
    const double*, double*, int);
