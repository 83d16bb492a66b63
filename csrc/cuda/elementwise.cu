// Registration of the CUDA kernels of the elementwise ops (ops/elementwise.h lists them). The kernels
// themselves are defined in csrc/cuda/elementwise_*.cu, a few ops per file so that the files compile
// in parallel (see csrc/cuda/elementwise.cuh); an op of the list that none defines fails to link.
#include <torch/library.h>

#include "cuda/elementwise.cuh"

namespace gradkern {

TORCH_LIBRARY_IMPL(gradkern, CUDA, m) {
#define GK_REGISTER_KERNEL(FN, OP, NAME_A, NAME_B) m.impl(#FN, &cuda::elementwise::FN);
  GK_ELEMENTWISE_OPS(GK_REGISTER_KERNEL)
#undef GK_REGISTER_KERNEL
}

}  // namespace gradkern
