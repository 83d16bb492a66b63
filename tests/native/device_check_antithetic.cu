// Compile-only check that csrc/core/antithetic.h builds for the device (no GPU needed):
//   nvcc -std=c++17 -I csrc -c -o /tmp/device_check_antithetic.o tests/native/device_check_antithetic.cu
// Instantiates the reflections and the row body for float and double inside __global__ kernels, one row
// per thread (Block = 1), as csrc/cuda/antithetic.cu does.
#include "core/antithetic.h"

using namespace gradkern::core;

__global__ void antithetic_reflections(const double* x, double* out, ReflectTable tab, double a, double lgamma_a) {
  const int i = threadIdx.x;
  out[4 * i + 0] = gamma_reflect_direct(a, lgamma_a, x[i]);
  out[4 * i + 1] = gamma_reflect_tabulated(a, lgamma_a, x[i], tab, true);
  out[4 * i + 2] = gamma_reflect_tabulated(a, lgamma_a, x[i], tab, false);
  out[4 * i + 3] = hawkins_wixley_reflect(x[i], 2 * a);
}

template <typename T>
__global__ void antithetic_rows(const T* noise, T* out, int64_t k, int64_t rows, int method, int reflection,
                                ReflectTable tab, double lgamma_a) {
  const int64_t b = blockIdx.x * blockDim.x + threadIdx.x;
  if (b >= rows) return;
  antithetic_standardized_rows<T, 1>(noise + b, out + b, k, rows, 1, static_cast<AntitheticMethod>(method),
                                     static_cast<AntitheticReflection>(reflection), tab, lgamma_a);
}

template __global__ void antithetic_rows<float>(const float*, float*, int64_t, int64_t, int, int, ReflectTable,
                                                double);
template __global__ void antithetic_rows<double>(const double*, double*, int64_t, int64_t, int, int, ReflectTable,
                                                 double);
