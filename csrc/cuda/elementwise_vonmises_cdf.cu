// CUDA kernels of the von Mises CDF and the location shift (see cuda/elementwise.cuh). Each von Mises
// core function takes ptxas about 100 s (sm_90, -O3), hence one file each.
#include "cuda/elementwise.cuh"

GK_CUDA_ELEMENTWISE_KERNEL(vonmises_cdf)
GK_CUDA_ELEMENTWISE_KERNEL(vonmises_shift_wrap)
