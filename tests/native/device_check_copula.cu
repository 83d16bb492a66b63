// Compile-only check that csrc/core/copula.h builds for the device (no GPU needed):
//   nvcc -std=c++17 -I csrc -c -o /tmp/device_check_copula.o tests/native/device_check_copula.cu
// Instantiates every core entry point for float and double inside __global__ kernels, with the Philox
// stream of csrc/core/philox.h as the uniform source, as csrc/cuda/copula.cu does.
#include "core/copula.h"
#include "core/philox.h"

using namespace gradkern::core;

template <typename T>
__global__ void copula_functions(const T* x, T* out, int64_t n) {
  const int i = threadIdx.x;
  out[6 * i + 0] = std_normal_cdf(x[i]) + std_normal_ccdf(x[i]);
  out[6 * i + 1] = std_normal_icdf(x[i]);
  out[6 * i + 2] = bvn_cdf(x[i], x[i + 1], T(-0.5));
  out[6 * i + 3] = dirichlet_copula_rho(x[i], n, DirichletMode::oriented);
  out[6 * i + 4] = dirichlet_copula_rho(x[i], n, DirichletMode::reflected);
  out[6 * i + 5] = gaussian_copula_rho(x[i], n);
}

template <typename T>
__global__ void copula_samplers(T* out, int64_t n, int64_t m, uint64_t seed, uint64_t offset) {
  const int64_t j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= m) return;
  Philox src(seed, static_cast<uint64_t>(j), offset);
  dirichlet_copula_sample<T>(n, src, out + j, m);
  gaussian_copula_sample<T>(n, src, out + j, m);
  out[j] += T(copula_draw_words<T>(n, true));
}

template __global__ void copula_functions<float>(const float*, float*, int64_t);
template __global__ void copula_functions<double>(const double*, double*, int64_t);
template __global__ void copula_samplers<float>(float*, int64_t, int64_t, uint64_t, uint64_t);
template __global__ void copula_samplers<double>(double*, int64_t, int64_t, uint64_t, uint64_t);
