// Box kernels: log-volume, intersection, dense and paired containment, forward and backward.
// CPU kernels (cpp/src/boxes.cpp) take host pointers to C-contiguous row-major arrays; CUDA launchers
// (cuda/boxes.cu) take device pointers and a stream. Per-element math lives in boxes_math.h.
//
// Shapes: lo/hi (n, k); containment out (n, m); paired out (p,) with idx_a in [0, n), idx_b in [0, m).
// Accumulation: the k-sum of log-widths, the sums over pairs in the backward passes and the final exp
// are done in double for both element types. Results are bit-identical for any thread count.
#pragma once

#include <cstdint>

#include "tasklens/common.h"

namespace tasklens::boxes {

struct Options {
  int mode = 2;                              // kHard, kSoft, kGumbel (see boxes_math.h)
  double volume_temperature = 0.1;
  double intersection_temperature = 1e-4;
  bool clip = false;                         // intersection: clip Gumbel corners to the hard ones
  bool log = false;                          // containment: return log d instead of d
};

template <class T>
void log_volume_cpu(const T* lo, const T* hi, index_t n, index_t k, const Options& o, T* out);
template <class T>
void log_volume_backward_cpu(const T* lo, const T* hi, const T* grad, index_t n, index_t k, const Options& o,
                             T* g_lo, T* g_hi);

template <class T>
void intersection_cpu(const T* lo_a, const T* hi_a, const T* lo_b, const T* hi_b, index_t n, index_t k,
                      const Options& o, T* lo, T* hi);
template <class T>
void intersection_backward_cpu(const T* lo_a, const T* hi_a, const T* lo_b, const T* hi_b, const T* g_lo,
                               const T* g_hi, index_t n, index_t k, const Options& o, T* g_lo_a, T* g_hi_a,
                               T* g_lo_b, T* g_hi_b);

template <class T>
void containment_cpu(const T* lo_a, const T* hi_a, index_t n, const T* lo_b, const T* hi_b, index_t m,
                     index_t k, const Options& o, T* out);
// out: the forward result (reused, not recomputed); grad: dLoss/dout, shape (n, m).
template <class T>
void containment_backward_cpu(const T* lo_a, const T* hi_a, index_t n, const T* lo_b, const T* hi_b, index_t m,
                              index_t k, const T* out, const T* grad, const Options& o, T* g_lo_a, T* g_hi_a,
                              T* g_lo_b, T* g_hi_b);

template <class T>
void containment_pairs_cpu(const T* lo_a, const T* hi_a, index_t n, const T* lo_b, const T* hi_b, index_t m,
                           index_t k, const std::int64_t* idx_a, const std::int64_t* idx_b, index_t p,
                           const Options& o, T* out);
template <class T>
void containment_pairs_backward_cpu(const T* lo_a, const T* hi_a, index_t n, const T* lo_b, const T* hi_b,
                                    index_t m, index_t k, const std::int64_t* idx_a, const std::int64_t* idx_b,
                                    index_t p, const T* out, const T* grad, const Options& o, T* g_lo_a,
                                    T* g_hi_a, T* g_lo_b, T* g_hi_b);

#ifdef TASKLENS_WITH_CUDA
// CUDA launchers. All pointers are device pointers of element type float (DType::float32) or double (float64);
// outputs are preallocated by the caller; work is queued on `stream` and not synchronised.
// The paired backward takes the pairs grouped by row: order_a is a permutation of [0, p) sorted stably by
// idx_a, with offsets_a (n + 1) delimiting each row's pairs; likewise order_b/offsets_b for idx_b.
namespace cuda {
void log_volume(DType dtype, std::uintptr_t lo, std::uintptr_t hi, index_t n, index_t k, const Options& o,
                std::uintptr_t out, int device, std::uintptr_t stream);
void log_volume_backward(DType dtype, std::uintptr_t lo, std::uintptr_t hi, std::uintptr_t grad, index_t n,
                         index_t k, const Options& o, std::uintptr_t g_lo, std::uintptr_t g_hi, int device,
                         std::uintptr_t stream);
void intersection(DType dtype, std::uintptr_t lo_a, std::uintptr_t hi_a, std::uintptr_t lo_b, std::uintptr_t hi_b,
                  index_t n, index_t k, const Options& o, std::uintptr_t lo, std::uintptr_t hi, int device,
                  std::uintptr_t stream);
void intersection_backward(DType dtype, std::uintptr_t lo_a, std::uintptr_t hi_a, std::uintptr_t lo_b,
                           std::uintptr_t hi_b, std::uintptr_t g_lo, std::uintptr_t g_hi, index_t n, index_t k,
                           const Options& o, std::uintptr_t g_lo_a, std::uintptr_t g_hi_a, std::uintptr_t g_lo_b,
                           std::uintptr_t g_hi_b, int device, std::uintptr_t stream);
void containment(DType dtype, std::uintptr_t lo_a, std::uintptr_t hi_a, index_t n, std::uintptr_t lo_b,
                 std::uintptr_t hi_b, index_t m, index_t k, const Options& o, std::uintptr_t out, int device,
                 std::uintptr_t stream);
void containment_backward(DType dtype, std::uintptr_t lo_a, std::uintptr_t hi_a, index_t n, std::uintptr_t lo_b,
                          std::uintptr_t hi_b, index_t m, index_t k, std::uintptr_t out, std::uintptr_t grad,
                          const Options& o, std::uintptr_t g_lo_a, std::uintptr_t g_hi_a, std::uintptr_t g_lo_b,
                          std::uintptr_t g_hi_b, int device, std::uintptr_t stream);
void containment_pairs(DType dtype, std::uintptr_t lo_a, std::uintptr_t hi_a, index_t n, std::uintptr_t lo_b,
                       std::uintptr_t hi_b, index_t m, index_t k, std::uintptr_t idx_a, std::uintptr_t idx_b,
                       index_t p, const Options& o, std::uintptr_t out, int device, std::uintptr_t stream);
void containment_pairs_backward(DType dtype, std::uintptr_t lo_a, std::uintptr_t hi_a, index_t n,
                                std::uintptr_t lo_b, std::uintptr_t hi_b, index_t m, index_t k,
                                std::uintptr_t idx_a, std::uintptr_t idx_b, index_t p, std::uintptr_t order_a,
                                std::uintptr_t offsets_a, std::uintptr_t order_b, std::uintptr_t offsets_b,
                                std::uintptr_t out, std::uintptr_t grad, const Options& o, std::uintptr_t g_lo_a,
                                std::uintptr_t g_hi_a, std::uintptr_t g_lo_b, std::uintptr_t g_hi_b, int device,
                                std::uintptr_t stream);
}  // namespace cuda
#endif

}  // namespace tasklens::boxes
