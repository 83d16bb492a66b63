// Compile-only check that csrc/core/truncnorm.h builds for the device (no GPU needed):
//   nvcc -std=c++17 -I csrc -c -o /tmp/device_check_truncnorm.o tests/native/device_check_truncnorm.cu
// Instantiates the quantile kernel and the backward for float and double (and a double probability with
// float parameters) inside __global__ kernels, as csrc/cuda/truncnorm.cu does.
#include "core/truncnorm.h"

using namespace gradkern::core;

template <typename T, typename P>
__global__ void truncnorm_functions(const P* p, const T* prm, T* out, int64_t n) {
  const int64_t i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const T z = truncated_normal_icdf(p[i], prm[0], prm[1], prm[2], prm[3]);
  T g[4];
  truncated_normal_backward(T(1), z, p[i], prm[0], prm[1], prm[2], prm[3], g);
  out[5 * i] = z;
  for (int j = 0; j < 4; ++j) out[5 * i + 1 + j] = g[j];
}

template __global__ void truncnorm_functions<float, float>(const float*, const float*, float*, int64_t);
template __global__ void truncnorm_functions<float, double>(const double*, const float*, float*, int64_t);
template __global__ void truncnorm_functions<double, double>(const double*, const double*, double*, int64_t);
