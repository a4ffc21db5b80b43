// CPU kernels of the domain distances: fused segmented min reductions over float32 score tiles, the exact
// float64 re-scoring of the surviving candidates, and a cache-blocked AVX2/FMA tile product.
//
// The Python layer (python/tasklens/domain/_kernels.py) walks fixed tiles of target and source rows, forms
// each tile's dot products (BLAS sgemm, or distance_tile_dot below), and hands the tile to reduce_rows (each
// target row against every source dataset in the tile) and, for the all-pairs matrix, reduce_cols (each
// source row, acting as a target, against every dataset whose rows index the tile's rows). The n_t x n_s
// distance matrix never exists: only one tile and the per-(row, dataset) candidate state do.
#include "tasklens/distance.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define TL_X86 1
#endif

#include "tasklens/distance_math.h"
#include "tasklens/parallel.h"

namespace tasklens::distance {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// ---- minimum of norm[j] - 2 * c[j] over a run (the hot loop of reduce_rows) ----------------------------

float min_scores_scalar(const float* c, const float* nrm, index_t n) {
  float m = kInf;
  for (index_t j = 0; j < n; ++j) {
    const float v = score_from_dot(nrm[j], c[j]);
    m = v < m ? v : m;
  }
  return m;
}

#ifdef TL_X86
__attribute__((target("avx2,fma"))) float min_scores_avx2(const float* c, const float* nrm, index_t n) {
  __m256 m0 = _mm256_set1_ps(kInf), m1 = m0;
  const __m256 two = _mm256_set1_ps(2.0f);
  index_t j = 0;
  for (; j + 16 <= n; j += 16) {
    // norm - 2c with one rounding, as in score_from_dot (2c is exact, so no FMA is needed or used).
    m0 = _mm256_min_ps(m0, _mm256_sub_ps(_mm256_loadu_ps(nrm + j), _mm256_mul_ps(two, _mm256_loadu_ps(c + j))));
    m1 = _mm256_min_ps(m1, _mm256_sub_ps(_mm256_loadu_ps(nrm + j + 8),
                                         _mm256_mul_ps(two, _mm256_loadu_ps(c + j + 8))));
  }
  m0 = _mm256_min_ps(m0, m1);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, m0);
  float m = lanes[0];
  for (int k = 1; k < 8; ++k) m = lanes[k] < m ? lanes[k] : m;
  const float tail = min_scores_scalar(c + j, nrm + j, n - j);
  return tail < m ? tail : m;
}

bool has_avx2_fma() {
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
}
#endif

float min_scores(const float* c, const float* nrm, index_t n) {
#ifdef TL_X86
  if (has_avx2_fma()) return min_scores_avx2(c, nrm, n);
#endif
  return min_scores_scalar(c, nrm, n);
}

// ---- candidate bookkeeping for one (target row, source dataset) --------------------------------------

struct Slot {
  float* best;
  float eps2;
  std::int8_t* cnt;  // number of candidates, or -1 once more than kCandidates were within the guard
  std::int32_t* idx;
  float* val;
};

Slot slot(const State& s, index_t row, index_t seg) {
  const index_t k = row * s.n_seg + seg;
  return {s.best + k, s.eps2[k], s.cnt + k, s.idx + k * kCandidates, s.val + k * kCandidates};
}

// Lowers the slot's best score to m (when smaller) and drops candidates that left the guard band.
void lower_best(Slot& q, float m) {
  if (!(m < *q.best)) return;
  *q.best = m;
  if (*q.cnt <= 0) return;
  const float thr = m + q.eps2;
  int keep = 0;
  for (int k = 0; k < *q.cnt; ++k) {
    if (q.val[k] <= thr) {
      q.val[keep] = q.val[k];
      q.idx[keep] = q.idx[k];
      ++keep;
    }
  }
  *q.cnt = static_cast<std::int8_t>(keep);
}

void offer(Slot& q, float v, index_t j) {
  if (*q.cnt < 0) return;
  if (*q.cnt == kCandidates) {
    *q.cnt = -1;  // too many near-ties: finalize() scans the whole dataset exactly
    return;
  }
  q.val[*q.cnt] = v;
  q.idx[*q.cnt] = static_cast<std::int32_t>(j);
  ++*q.cnt;
}

index_t segment_end(const std::int64_t* offsets, const std::int32_t* seg_of, index_t global) {
  return offsets[seg_of[global] + 1];
}

}  // namespace

void reduce_rows(const float* tile, index_t bi, index_t bj, index_t ldc, index_t i0, index_t j0,
                 const float* norm_src, const std::int32_t* seg_src, const std::int64_t* off_src,
                 const State& st) {
  parallel_ranges(bi, 16, [&](index_t r0, index_t r1) {
    for (index_t r = r0; r < r1; ++r) {
      const float* c = tile + r * ldc;
      const index_t i = i0 + r;
      index_t j = 0;
      while (j < bj) {
        const index_t g = seg_src[j0 + j];
        const index_t end = std::min<index_t>(bj, segment_end(off_src, seg_src, j0 + j) - j0);
        Slot q = slot(st, i, g);
        const float m = min_scores(c + j, norm_src + j0 + j, end - j);
        if (m <= *q.best + q.eps2) {
          lower_best(q, m);
          const float thr = *q.best + q.eps2;
          for (index_t jj = j; jj < end; ++jj) {
            const float v = score_from_dot(norm_src[j0 + jj], c[jj]);
            if (v <= thr) offer(q, v, j0 + jj);
          }
        }
        j = end;
      }
    }
  });
}

void reduce_cols(const float* tile, index_t bi, index_t bj, index_t ldc, index_t i0, index_t j0,
                 const float* norm_rows, const std::int32_t* seg_rows, const std::int64_t* off_rows,
                 const State& st) {
  constexpr index_t kChunk = 64;
  parallel_ranges(bj, kChunk, [&](index_t c0, index_t c1) {
    float colmin[kChunk];
    const index_t w = c1 - c0;
    index_t r = 0;
    while (r < bi) {
      const index_t g = seg_rows[i0 + r];
      const index_t end = std::min<index_t>(bi, segment_end(off_rows, seg_rows, i0 + r) - i0);
      std::fill(colmin, colmin + w, kInf);
      for (index_t rr = r; rr < end; ++rr) {
        const float n = norm_rows[i0 + rr];
        const float* c = tile + rr * ldc + c0;
        for (index_t k = 0; k < w; ++k) {
          const float v = score_from_dot(n, c[k]);
          colmin[k] = v < colmin[k] ? v : colmin[k];
        }
      }
      // Columns whose minimum reaches their guard band collect candidates in a second row-major pass.
      float thr[kChunk];
      bool any = false;
      for (index_t k = 0; k < w; ++k) {
        Slot q = slot(st, j0 + c0 + k, g);
        thr[k] = -kInf;
        if (!(colmin[k] <= *q.best + q.eps2)) continue;
        lower_best(q, colmin[k]);
        thr[k] = *q.best + q.eps2;
        any = true;
      }
      if (any) {
        for (index_t rr = r; rr < end; ++rr) {
          const float n = norm_rows[i0 + rr];
          const float* c = tile + rr * ldc + c0;
          for (index_t k = 0; k < w; ++k) {
            const float v = score_from_dot(n, c[k]);
            if (v <= thr[k]) {
              Slot q = slot(st, j0 + c0 + k, g);
              offer(q, v, i0 + rr);
            }
          }
        }
      }
      r = end;
    }
  });
}

template <class T>
void finalize(const State& st, const T* tgt, const double* inv_tgt, const T* src, const double* inv_src,
              const std::int64_t* off_src, index_t n_tgt, index_t d, int metric, double* dist,
              std::int64_t* index) {
  parallel_ranges(n_tgt, 64, [&](index_t r0, index_t r1) {
    for (index_t i = r0; i < r1; ++i) {
      const T* x = tgt + i * d;
      const double sx = inv_tgt ? inv_tgt[i] : 1.0;
      for (index_t g = 0; g < st.n_seg; ++g) {
        Slot q = slot(st, i, g);
        double best_s = std::numeric_limits<double>::infinity();
        index_t best_j = -1;
        auto consider = [&](index_t j) {
          const double s = exact_sq_distance(x, src + j * d, d, sx, inv_src ? inv_src[j] : 1.0);
          if (better(s, j, best_s, best_j)) {
            best_s = s;
            best_j = j;
          }
        };
        if (*q.cnt < 0 || (*q.cnt == 0 && off_src[g + 1] > off_src[g])) {
          for (index_t j = off_src[g]; j < off_src[g + 1]; ++j) consider(j);
        } else {
          for (int k = 0; k < *q.cnt; ++k) consider(q.idx[k]);
        }
        dist[i * st.n_seg + g] = best_j < 0 ? std::numeric_limits<double>::quiet_NaN()
                                             : finish_distance(best_s, metric);
        index[i * st.n_seg + g] = best_j;
      }
    }
  });
}

template void finalize<float>(const State&, const float*, const double*, const float*, const double*,
                              const std::int64_t*, index_t, index_t, int, double*, std::int64_t*);
template void finalize<double>(const State&, const double*, const double*, const double*, const double*,
                               const std::int64_t*, index_t, index_t, int, double*, std::int64_t*);

// ---- tile dot products C = A B^T without BLAS ----------------------------------------------------------

namespace {

void tile_dot_scalar(const float* a, const float* b, index_t bi, index_t bj, index_t d, float* c, index_t ldc,
                     index_t r0, index_t r1) {
  for (index_t i = r0; i < r1; ++i)
    for (index_t j = 0; j < bj; ++j) {
      float s = 0.0f;
      for (index_t k = 0; k < d; ++k) s += a[i * d + k] * b[j * d + k];
      c[i * ldc + j] = s;
    }
}

#ifdef TL_X86
__attribute__((target("avx2,fma"))) inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Register-blocked 3 x 4 dot-product micro-kernel (12 accumulators + 4 operands = 16 ymm registers),
// source rows walked in panels of 64 so that a panel (64 x d floats) stays in L2 while target rows stream.
__attribute__((target("avx2,fma"))) void tile_dot_avx2(const float* a, const float* b, index_t bi, index_t bj,
                                                       index_t d, float* c, index_t ldc, index_t r0,
                                                       index_t r1) {
  const index_t d8 = d - d % 8;
  constexpr index_t kPanel = 64;
  for (index_t p0 = 0; p0 < bj; p0 += kPanel) {
    const index_t p1 = std::min(bj, p0 + kPanel);
    index_t i = r0;
    for (; i + 3 <= r1; i += 3) {
      index_t j = p0;
      for (; j + 4 <= p1; j += 4) {
        __m256 acc[3][4];
        for (auto& row : acc)
          for (auto& v : row) v = _mm256_setzero_ps();
        for (index_t k = 0; k < d8; k += 8) {
          const __m256 x0 = _mm256_loadu_ps(a + (i + 0) * d + k);
          const __m256 x1 = _mm256_loadu_ps(a + (i + 1) * d + k);
          const __m256 x2 = _mm256_loadu_ps(a + (i + 2) * d + k);
          for (int q = 0; q < 4; ++q) {
            const __m256 y = _mm256_loadu_ps(b + (j + q) * d + k);
            acc[0][q] = _mm256_fmadd_ps(x0, y, acc[0][q]);
            acc[1][q] = _mm256_fmadd_ps(x1, y, acc[1][q]);
            acc[2][q] = _mm256_fmadd_ps(x2, y, acc[2][q]);
          }
        }
        for (int p = 0; p < 3; ++p)
          for (int q = 0; q < 4; ++q) {
            float s = hsum(acc[p][q]);
            for (index_t k = d8; k < d; ++k) s += a[(i + p) * d + k] * b[(j + q) * d + k];
            c[(i + p) * ldc + j + q] = s;
          }
      }
      for (; j < p1; ++j)
        for (int p = 0; p < 3; ++p) {
          float s = 0.0f;
          for (index_t k = 0; k < d; ++k) s += a[(i + p) * d + k] * b[j * d + k];
          c[(i + p) * ldc + j] = s;
        }
    }
    for (; i < r1; ++i)
      for (index_t j = p0; j < p1; ++j) {
        float s = 0.0f;
        for (index_t k = 0; k < d; ++k) s += a[i * d + k] * b[j * d + k];
        c[i * ldc + j] = s;
      }
  }
}
#endif

}  // namespace

void tile_dot(const float* a, const float* b, index_t bi, index_t bj, index_t d, float* c, index_t ldc) {
  parallel_ranges(bi, 48, [&](index_t r0, index_t r1) {
#ifdef TL_X86
    if (has_avx2_fma()) return tile_dot_avx2(a, b, bi, bj, d, c, ldc, r0, r1);
#endif
    tile_dot_scalar(a, b, bi, bj, d, c, ldc, r0, r1);
  });
}

}  // namespace tasklens::distance
