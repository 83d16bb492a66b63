// Compile-only check that csrc/core/vonmises_cdf.h, vonmises_sampler.h and csrc/core/philox.h build for the device:
//   nvcc -std=c++17 -c tests/native/device_check_vonmises.cu -I csrc -o /tmp/dcv.o
// Instantiates every public function for float and double in a __global__ kernel (per-element
// Philox stream: seed, subsequence = element index, offset 0).
#include "core/philox.h"
#include "core/vonmises_cdf.h"
#include "core/vonmises_sampler.h"

using namespace gradkern::core;

template <typename T>
__global__ void vonmises_device_check(const T* x, const T* kappa, T* out, int n, unsigned long long seed) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  T F, g;
  vonmises_cdf_and_grad(x[i], kappa[i], F, g);
  Philox gen(seed, static_cast<uint64_t>(i), 0);
  PhiloxUniform<T> u(gen);
  bool exhausted = false;
  const T s = vonmises_sample<T>(kappa[i], u, kVonMisesMaxProposals, &exhausted);
  out[6 * i + 0] = vonmises_cdf(x[i], kappa[i]) + F;
  out[6 * i + 1] = vonmises_cdf_grad_concentration(x[i], kappa[i]);
  out[6 * i + 2] = vonmises_grad(kappa[i], x[i]) + g;
  out[6 * i + 3] = vonmises_log_pdf(x[i], kappa[i]) + vonmises_cdf_grad_kk(x[i], kappa[i]) +
                   vonmises_grad_dconcentration(kappa[i], x[i]);
  out[6 * i + 4] = exhausted ? T(NAN) : s;
  out[6 * i + 5] = static_cast<T>(gen.next_uint32()) + gen.uniform_float() + T(gen.uniform_double());
}

template __global__ void vonmises_device_check<float>(const float*, const float*, float*, int, unsigned long long);
template __global__ void vonmises_device_check<double>(const double*, const double*, double*, int, unsigned long long);
