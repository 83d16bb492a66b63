// Compile-only check that csrc/core/vmf.h builds for the device:
//   nvcc -std=c++17 -c tests/native/device_check_vmf.cu -I csrc -o /tmp/dcvmf.o
// Instantiates every public function for float and double in a __global__ kernel (per-element Philox
// stream: seed, subsequence = element index, offset 0).
#include "core/philox.h"
#include "core/vmf.h"

using namespace gradkern::core;

template <typename T>
__global__ void vmf_direction_device_check(const T* g, const T* loc, const T* u, const T* noise, T* z, T* gl, T* gu,
                                           T* gn, int rows, int d) {
  const int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  vmf_direction<T>(loc + r * d, u[r], noise + r * (d - 1), d, z + r * d);
  vmf_direction_backward<T>(g + r * d, loc + r * d, u[r], noise + r * (d - 1), d, gl + r * d, gu + r, gn + r * (d - 1));
}

template <typename T>
__global__ void vmf_device_check(const T* u, const T* kappa, T* out, int n, int d, unsigned long long seed) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  T lz, m, v;
  vmf_moments(kappa[i], d, lz, m, v);
  Philox gen(seed, static_cast<uint64_t>(i), 0);
  PhiloxUniform<T> uni(gen);
  bool exhausted = false;
  const T s = vmf_sample_u<T>(kappa[i], d, uni, kVmfMaxProposals, &exhausted);
  out[5 * i + 0] = vmf_grad_u(kappa[i], u[i], d) + vmf_grad_u_dkappa(kappa[i], u[i], d);
  out[5 * i + 1] = vmf_cdf_u(kappa[i], u[i], d);
  out[5 * i + 2] = lz + m + v;
  out[5 * i + 3] = vmf_central_moment(kappa[i], d, 3);
  out[5 * i + 4] = exhausted ? T(NAN) : s;
}

template __global__ void vmf_device_check<float>(const float*, const float*, float*, int, int, unsigned long long);
template __global__ void vmf_device_check<double>(const double*, const double*, double*, int, int, unsigned long long);
template __global__ void vmf_direction_device_check<float>(const float*, const float*, const float*, const float*, float*,
                                                            float*, float*, float*, int, int);
template __global__ void vmf_direction_device_check<double>(const double*, const double*, const double*, const double*,
                                                             double*, double*, double*, double*, int, int);
