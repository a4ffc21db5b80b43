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

// The one floating dtype tag of every native op that takes raw pointers (tasklens._C.DType in Python).
enum class DType : int { float32 = 0, float64 = 1 };
}  // namespace tasklens
