// CUDA kernels for the Gaussian-mixture ops: the same per-sample core as the CPU
// (csrc/core/mixture.h), one thread per (sample, batch) pair, accumulating into the parameter
// gradients with atomics (the order of the float additions, hence the last bits, is not deterministic).
// The forward writes each sample row with the body shared with the CPU (ops/mixture.h, Forward<T>::row);
// a row with an out-of-range component index (possible only when the op is called directly) is NaN.
#include <ATen/Dispatch.h>
#include <ATen/cuda/Atomic.cuh>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "cuda/host.cuh"
#include "ops/mixture.h"

namespace gradkern {
namespace {

namespace mx = ops::mixture;
namespace cm = core::mixture;

struct AtomicAdd {
  template <typename T>
  __host__ __device__ void operator()(T* p, T v) const {
#ifdef __CUDA_ARCH__
    gpuAtomicAdd(p, v);
#else
    *p += v;  // never reached: the core is only instantiated in the kernel below
#endif
  }
};

template <typename T>
__global__ void mixture_backward_kernel(mx::Batch<T> bv, mx::GradBuffers<T> gv, const T* __restrict__ z,
                                        const T* __restrict__ g, int64_t n, int64_t B, int64_t D) {
  const int64_t m = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (m >= n) return;
  const int64_t b = m % B;
  cm::backward_sample(bv.params(b), z + m * D, g + m * D, gv.grads(0, b), AtomicAdd{});
}

template <typename T>
__global__ void mixture_rsample_kernel(mx::Forward<T> fw, int64_t n) {
  const int64_t step = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t m = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; m < n; m += step) {
    if (!fw.row(m)) {
      for (int64_t i = 0; i < fw.D; ++i) fw.z[m * fw.D + i] = T(NAN);
    }
  }
}

std::vector<at::Tensor> cuda_backward(const char* op, const mx::Inputs& in, const at::Tensor& grad,
                                      const at::Tensor& z) {
  int64_t B, K, D;
  std::tie(B, K, D) = mx::check_params(op, in);
  mx::check_backward(op, in, grad, z, B, D);
  TORCH_CHECK(grad.is_cuda(), "gradkern.", op, ": expected CUDA tensors, got ", grad.device());
  const c10::cuda::CUDAGuard guard(grad.device());
  const mx::Prepared prep = mx::prepare(in);
  mx::Accumulators acc = mx::make_accumulators(in, 1, B, K, D);
  const int64_t n = z.size(0) * B;
  if (n == 0) return mx::finish(in, prep, acc);
  // .contiguous(): one thread reads one sample's D values as a row (usually no copy).
  const at::Tensor zc = z.contiguous(), gc = grad.contiguous();
  constexpr int threads = 128;
  const int64_t blocks = (n + threads - 1) / threads;
  TORCH_CHECK(blocks <= INT32_MAX, "gradkern.", op, ": too many samples for one launch (", n, ")");
  AT_DISPATCH_FLOATING_TYPES(in.logits.scalar_type(), "gradkern_mixture_backward_cuda", [&] {
    mixture_backward_kernel<scalar_t><<<unsigned(blocks), threads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        mx::batch_view<scalar_t>(in, prep, K, D), mx::grad_view<scalar_t>(in, acc, B, K, D),
        zc.data_ptr<scalar_t>(), gc.data_ptr<scalar_t>(), n, B, D);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return mx::finish(in, prep, acc);
}

struct CudaBackend {
  static at::Tensor rsample(const char* op, const mx::Inputs& in, const at::Tensor& noise,
                            const at::Tensor& component) {
    TORCH_CHECK(noise.is_cuda(), "gradkern.", op, ": expected CUDA tensors, got ", noise.device());
    const c10::cuda::CUDAGuard guard(noise.device());
    const mx::ForwardInputs f = mx::prepare_forward(op, in, noise, component);
    if (f.n == 0) return f.z;
    constexpr int threads = 256;
    AT_DISPATCH_FLOATING_TYPES(in.logits.scalar_type(), "gradkern_mixture_rsample_cuda", [&] {
      mixture_rsample_kernel<scalar_t><<<cuda::grid_blocks(f.n, threads), threads, 0,
                                         c10::cuda::getCurrentCUDAStream()>>>(mx::Forward<scalar_t>(f), f.n);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
    return f.z;
  }
  static std::vector<at::Tensor> backward(const char* op, const mx::Inputs& in, const at::Tensor& grad,
                                          const at::Tensor& z) {
    return cuda_backward(op, in, grad, z);
  }
};

}  // namespace

TORCH_LIBRARY_IMPL(gradkern, CUDA, m) {
  mx::EntryPoints<CudaBackend>::register_kernels(m);
}

}  // namespace gradkern
