#include <cuda_runtime.h>

#include "tasklens/cuda_runtime_info.h"

namespace tasklens {

CudaRuntimeInfo cuda_runtime_info() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error so later calls start clean
    return {0, std::string("no usable CUDA device: ") + cudaGetErrorString(err)};
  }
  return {count, count > 0 ? "" : "no CUDA device visible"};
}

}  // namespace tasklens
