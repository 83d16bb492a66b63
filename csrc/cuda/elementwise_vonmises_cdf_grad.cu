// CUDA kernel of dF/dkappa of the von Mises CDF (see cuda/elementwise.cuh and elementwise_vonmises_cdf.cu).
#include "cuda/elementwise.cuh"

GK_CUDA_ELEMENTWISE_KERNEL(vonmises_cdf_grad_concentration)
