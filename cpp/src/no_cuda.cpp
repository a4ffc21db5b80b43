#include "tasklens/cuda_runtime_info.h"

#ifndef TASKLENS_WITH_CUDA
namespace tasklens {
CudaRuntimeInfo cuda_runtime_info() { return {0, "tasklens was built without CUDA"}; }
}  // namespace tasklens
#endif
