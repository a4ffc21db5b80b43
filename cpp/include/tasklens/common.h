// Shared definitions for CPU and CUDA code. No Python, no torch.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define TL_HD __host__ __device__ __forceinline__
#else
#define TL_HD inline
#endif

namespace tasklens {
using index_t = std::int64_t;
}  // namespace tasklens
