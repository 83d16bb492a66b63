// Compile-check stub (see CMakeLists.txt): the CUDA toolkit on the CI machines ships no cublas_v2.h, but
// torch's ATen/cuda headers include it for handle types that gradkern's kernels never use. Only the
// declarations those headers name are provided; nothing here is ever linked or called.
#pragma once
typedef struct cublasContext* cublasHandle_t;
typedef enum { CUBLAS_STATUS_SUCCESS = 0 } cublasStatus_t;
