// CUDA kernels of the von Mises second-order ops (issue 15; see cuda/elementwise.cuh): d2F/dkappa2 and the
// kappa-derivative of the implicit gradient, both through vm_core<double, true, true>, one file of their own
// (each von Mises core instantiation takes ptxas about 100 s at sm_90, -O3).
#include "cuda/elementwise.cuh"

GK_CUDA_ELEMENTWISE_KERNEL(vonmises_cdf_grad_kk)
GK_CUDA_ELEMENTWISE_KERNEL(vonmises_grad_dconcentration)
