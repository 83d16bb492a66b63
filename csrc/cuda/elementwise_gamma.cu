// CUDA kernels of the incomplete-gamma elementwise ops (see cuda/elementwise.cuh): together about as
// long to compile as each von Mises file (ptxas about 100 s on one core, sm_90, -O3).
#include "cuda/elementwise.cuh"

GK_CUDA_ELEMENTWISE_KERNEL(gammainc)
GK_CUDA_ELEMENTWISE_KERNEL(gammaincc)
GK_CUDA_ELEMENTWISE_KERNEL(gammainc_grad_a)
GK_CUDA_ELEMENTWISE_KERNEL(standard_gamma_grad)
GK_CUDA_ELEMENTWISE_KERNEL(log_standard_gamma_grad)
GK_CUDA_ELEMENTWISE_KERNEL(gammaincinv)
GK_CUDA_ELEMENTWISE_KERNEL(gammainc_grad_aa)
GK_CUDA_ELEMENTWISE_KERNEL(standard_gamma_grad_dalpha)
GK_CUDA_ELEMENTWISE_KERNEL(log_standard_gamma_grad_dalpha)
