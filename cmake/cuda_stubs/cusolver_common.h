// Compile-check stub (see CMakeLists.txt): the CUDA toolkit on the CI machines ships no
// cusolver_common.h, but torch's ATen/cuda headers include it for names that gradkern's kernels never
// use. Only the declarations those headers name are provided; nothing here is ever linked or called.
#pragma once
typedef enum { CUSOLVER_STATUS_SUCCESS = 0, CUSOLVER_STATUS_INVALID_VALUE = 3 } cusolverStatus_t;
