// Declarations of the domain-distance kernels (CPU: cpp/src/distance.cpp; CUDA: cuda/distance.cu).
#pragma once

#include <cstdint>

#include "tasklens/common.h"

namespace tasklens::distance {

// Per-(target row, source dataset) candidate state, row-major (n_rows, n_seg[, kCandidates]).
struct State {
  index_t n_seg;
  float* best;          // best approximate score so far (+inf initially)
  const float* eps2;    // guard band: twice the score error bound of that row against that dataset
  std::int8_t* cnt;     // candidates held, -1 after overflow
  std::int32_t* idx;    // candidate source rows (global indices into the source stack)
  float* val;           // their approximate scores
};

// tile (bi x bj, leading dimension ldc) holds dot products of target rows i0.. with source rows j0..
void reduce_rows(const float* tile, index_t bi, index_t bj, index_t ldc, index_t i0, index_t j0,
                 const float* norm_src, const std::int32_t* seg_src, const std::int64_t* off_src,
                 const State& st);
// The transpose direction: the tile's columns act as targets, its rows as the source rows.
void reduce_cols(const float* tile, index_t bi, index_t bj, index_t ldc, index_t i0, index_t j0,
                 const float* norm_rows, const std::int32_t* seg_rows, const std::int64_t* off_rows,
                 const State& st);
// Exact float64 re-scoring of the candidates (or of the whole dataset after an overflow).
template <class T>
void finalize(const State& st, const T* tgt, const double* inv_tgt, const T* src, const double* inv_src,
              const std::int64_t* off_src, index_t n_tgt, index_t d, int metric, double* dist,
              std::int64_t* index);
// c[i * ldc + j] = a_i . b_j (float32, AVX2/FMA when the CPU has it).
void tile_dot(const float* a, const float* b, index_t bi, index_t bj, index_t d, float* c, index_t ldc);

}  // namespace tasklens::distance

#ifdef TASKLENS_WITH_CUDA
namespace tasklens::distance {
// packed (n_t x n_seg) must hold ~0 on entry; afterwards (score bits << 32 | source row) of each minimum.
void segmin_cuda(const void* tgt, const void* src, index_t n_t, index_t n_s, index_t d,
                 const std::int32_t* seg_src, index_t n_seg, unsigned long long* packed, DType dtype,
                 int device, std::uintptr_t stream);
void finalize_cuda(const void* tgt, const double* inv_t, const void* src, const double* inv_s,
                   const unsigned long long* packed, index_t n_t, index_t n_seg, index_t d, int metric,
                   double* dist, std::int64_t* idx, DType dtype, int device, std::uintptr_t stream);
// out[g, c] = mean of dist[offsets[g]:offsets[g + 1], c] (dist: rows x n_cols float64), summed in row order
// (the additions of numpy's add.reduceat); every segment must be non-empty.
void segment_mean_cuda(const double* dist, index_t n_cols, const std::int64_t* offsets, index_t n_seg,
                       double* out, int device, std::uintptr_t stream);
}  // namespace tasklens::distance
#endif
