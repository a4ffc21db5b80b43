#pragma once

#include <string>

namespace tasklens {

struct CudaRuntimeInfo {
  int device_count = 0;
  std::string message;  // why device_count is 0 ("CUDA not compiled", the driver error, ...)
};

// Defined in cuda/runtime.cu when CUDA is compiled, else in cpp/src/no_cuda.cpp.
CudaRuntimeInfo cuda_runtime_info();

}  // namespace tasklens
