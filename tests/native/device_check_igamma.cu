// Device-compile check for csrc/core/igamma.h, igamma_d2.h and special.h: instantiates every public function for
// float and double inside a __global__ kernel. Compile only (no GPU needed):
//   nvcc -std=c++17 -c tests/native/device_check_igamma.cu -I csrc -o /tmp/dc.o
#include "core/igamma.h"
#include "core/igamma_d2.h"

namespace gk_device_check {
template <typename T> __global__ void igamma_device_check(const T* a, const T* x, T* out, int n) {
  using namespace gradkern::core;
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  T* o = out + 16 * i;
  o[0] = gammainc_p(a[i], x[i]);
  o[1] = gammainc_q(a[i], x[i]);
  o[2] = gammainc_grad_a(a[i], x[i]);
  o[3] = standard_gamma_grad(a[i], x[i]);
  o[4] = log_standard_gamma_grad(a[i], x[i]);
  o[5] = digamma(a[i]);
  o[6] = log1pmx(x[i]);
  o[7] = gamma_star(a[i]);
  o[8] = inv_gamma_star(a[i]);
  o[9] = lgamma1p(a[i]);

  o[10] = gammaincinv(a[i], x[i]);
  o[11] = gammaincinv_dp(a[i], x[i]);
  o[12] = gammainc_grad_aa(a[i], x[i]);
  o[13] = standard_gamma_grad_dalpha(a[i], x[i]);
  o[14] = log_standard_gamma_grad_dalpha(a[i], x[i]);
  o[15] = trigamma(a[i]);

}
}  // namespace gk_device_check

template __global__ void gk_device_check::igamma_device_check<float>(const float*, const float*, float*, int);
template __global__ void gk_device_check::igamma_device_check<double>(const double*, const double*, double*, int);
