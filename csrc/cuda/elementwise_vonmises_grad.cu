// CUDA kernel of the von Mises implicit gradient dx/dkappa (see cuda/elementwise.cuh and
// elementwise_vonmises_cdf.cu).
#include "cuda/elementwise.cuh"

GK_CUDA_ELEMENTWISE_KERNEL(vonmises_grad)
