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

// ---- the candidate scan: every element of a run whose score is <= thr, in index order ---------------------
//
// Writes the first `cap` hits (positions in the run and their scores) and returns the number of hits.
// Vectorised, so that the second look at a run (which is in L1 after min_scores) costs a compare per
// 8 elements instead of a scalar pass.

int scan_le_scalar(const float* c, const float* nrm, index_t n, float thr, index_t* hj, float* hv, int cap) {
  int h = 0;
  for (index_t j = 0; j < n; ++j) {
    const float v = score_from_dot(nrm[j], c[j]);
    if (v <= thr) {
      if (h < cap) {
        hj[h] = j;
        hv[h] = v;
      }
      ++h;
    }
  }
  return h;
}

#ifdef TL_X86
__attribute__((target("avx2,fma"))) int scan_le_avx2(const float* c, const float* nrm, index_t n, float thr,
                                                     index_t* hj, float* hv, int cap) {
  const __m256 two = _mm256_set1_ps(2.0f);
  const __m256 t = _mm256_set1_ps(thr);
  int h = 0;
  index_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 v = _mm256_sub_ps(_mm256_loadu_ps(nrm + j), _mm256_mul_ps(two, _mm256_loadu_ps(c + j)));
    int mask = _mm256_movemask_ps(_mm256_cmp_ps(v, t, _CMP_LE_OQ));
    if (!mask) continue;
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, v);
    while (mask) {
      const int b = __builtin_ctz(static_cast<unsigned>(mask));
      mask &= mask - 1;
      if (h < cap) {
        hj[h] = j + b;
        hv[h] = lanes[b];
      }
      ++h;
    }
  }
  const int rest = scan_le_scalar(c + j, nrm + j, n - j, thr, hj + std::min(h, cap), hv + std::min(h, cap),
                                  cap - std::min(h, cap));
  for (int k = std::min(h, cap); k < std::min(h + rest, cap); ++k) hj[k] += j;
  return h + rest;
}
#endif

int scan_le(const float* c, const float* nrm, index_t n, float thr, index_t* hj, float* hv, int cap) {
#ifdef TL_X86
  if (has_avx2_fma()) return scan_le_avx2(c, nrm, n, thr, hj, hv, cap);
#endif
  return scan_le_scalar(c, nrm, n, thr, hj, hv, cap);
}

// ---- the column reduction of one run of rows (reduce_cols) ---------------------------------------------
//
// colmin[k] = min over rows rr in [r, end) of score(nrm[rr], tile[rr * ldc + k]) for the w <= 64 columns
// starting at `tile`, and the hits: (row, column, score) of every element with score <= thr[column].

void col_min_scalar(const float* tile, index_t ldc, const float* nrm, index_t r, index_t end, index_t k0,
                    index_t w, float* colmin) {
  for (index_t k = k0; k < w; ++k) colmin[k] = kInf;
  for (index_t rr = r; rr < end; ++rr) {
    const float n = nrm[rr];
    const float* c = tile + rr * ldc;
    for (index_t k = k0; k < w; ++k) {
      const float v = score_from_dot(n, c[k]);
      colmin[k] = v < colmin[k] ? v : colmin[k];
    }
  }
}

template <class Hit>
void col_scan_scalar(const float* tile, index_t ldc, const float* nrm, index_t r, index_t end, index_t k0,
                     index_t w, const float* thr, Hit&& hit) {
  for (index_t rr = r; rr < end; ++rr) {
    const float n = nrm[rr];
    const float* c = tile + rr * ldc;
    for (index_t k = k0; k < w; ++k) {
      const float v = score_from_dot(n, c[k]);
      if (v <= thr[k]) hit(rr, k, v);
    }
  }
}

#ifdef TL_X86
__attribute__((target("avx2,fma"))) void col_min_avx2(const float* tile, index_t ldc, const float* nrm, index_t r,
                                                      index_t end, index_t w, float* colmin) {
  const index_t nv = w / 8;
  __m256 acc[8];
  for (index_t v = 0; v < nv; ++v) acc[v] = _mm256_set1_ps(kInf);
  const __m256 two = _mm256_set1_ps(2.0f);
  for (index_t rr = r; rr < end; ++rr) {
    const __m256 n = _mm256_set1_ps(nrm[rr]);
    const float* c = tile + rr * ldc;
    for (index_t v = 0; v < nv; ++v)  // v < acc ? v : acc, as the scalar loop
      acc[v] = _mm256_min_ps(_mm256_sub_ps(n, _mm256_mul_ps(two, _mm256_loadu_ps(c + 8 * v))), acc[v]);
  }
  for (index_t v = 0; v < nv; ++v) _mm256_storeu_ps(colmin + 8 * v, acc[v]);
  col_min_scalar(tile, ldc, nrm, r, end, 8 * nv, w, colmin);
}

template <class Hit>
__attribute__((target("avx2,fma"))) void col_scan_avx2(const float* tile, index_t ldc, const float* nrm, index_t r,
                                                       index_t end, index_t w, const float* thr, Hit&& hit) {
  const index_t nv = w / 8;
  const __m256 two = _mm256_set1_ps(2.0f);
  for (index_t rr = r; rr < end; ++rr) {
    const __m256 n = _mm256_set1_ps(nrm[rr]);
    const float* c = tile + rr * ldc;
    for (index_t v = 0; v < nv; ++v) {
      const __m256 s = _mm256_sub_ps(n, _mm256_mul_ps(two, _mm256_loadu_ps(c + 8 * v)));
      int mask = _mm256_movemask_ps(_mm256_cmp_ps(s, _mm256_loadu_ps(thr + 8 * v), _CMP_LE_OQ));
      if (!mask) continue;
      alignas(32) float lanes[8];
      _mm256_store_ps(lanes, s);
      while (mask) {
        const int b = __builtin_ctz(static_cast<unsigned>(mask));
        mask &= mask - 1;
        hit(rr, 8 * v + b, lanes[b]);
      }
    }
    for (index_t k = 8 * nv; k < w; ++k) {
      const float v = score_from_dot(nrm[rr], c[k]);
      if (v <= thr[k]) hit(rr, k, v);
    }
  }
}
#endif

void col_min(const float* tile, index_t ldc, const float* nrm, index_t r, index_t end, index_t w, float* colmin) {
#ifdef TL_X86
  if (has_avx2_fma()) return col_min_avx2(tile, ldc, nrm, r, end, w, colmin);
#endif
  col_min_scalar(tile, ldc, nrm, r, end, 0, w, colmin);
}

template <class Hit>
void col_scan(const float* tile, index_t ldc, const float* nrm, index_t r, index_t end, index_t w, const float* thr,
              Hit&& hit) {
#ifdef TL_X86
  if (has_avx2_fma()) return col_scan_avx2(tile, ldc, nrm, r, end, w, thr, hit);
#endif
  col_scan_scalar(tile, ldc, nrm, r, end, 0, w, thr, hit);
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
          // at most kCandidates + 1 hits matter: one more than fits makes offer() mark the overflow
          index_t hj[kCandidates + 1];
          float hv[kCandidates + 1];
          const int h = std::min(scan_le(c + j, norm_src + j0 + j, end - j, thr, hj, hv, kCandidates + 1),
                                 kCandidates + 1);
          for (int k = 0; k < h; ++k) offer(q, hv[k], j0 + j + hj[k]);
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
      const float* base = tile + c0;
      col_min(base, ldc, norm_rows + i0, r, end, w, colmin);
      // Columns whose minimum reaches their guard band collect candidates in a second (vectorised) pass.
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
        col_scan(base, ldc, norm_rows + i0, r, end, w, thr, [&](index_t rr, index_t k, float v) {
          Slot q = slot(st, j0 + c0 + k, g);
          offer(q, v, i0 + rr);
        });
      }
      r = end;
    }
  });
}

namespace {

// out[p] = exact_sq_distance(x, src + js[p] * d, d, sx, sy_p) for p < n: the same float64 operations in the
// same order for every pair (so bit-identical to the scalar function), several pairs at once.
template <class T>
void exact_sq_batch_scalar(const T* x, const T* src, index_t d, double sx, const double* inv_src,
                           const index_t* js, index_t n, double* out) {
  for (index_t p = 0; p < n; ++p)
    out[p] = exact_sq_distance(x, src + js[p] * d, d, sx, inv_src ? inv_src[js[p]] : 1.0);
}

#ifdef TL_X86
// Four source rows' elements k..k+3, transposed: y[q] holds element k + q of the four rows, as float64.
__attribute__((target("avx2"))) inline void load4x4(const float* const* rows, index_t k, __m256d* y) {
  __m128 a = _mm_loadu_ps(rows[0] + k), b = _mm_loadu_ps(rows[1] + k);
  __m128 c = _mm_loadu_ps(rows[2] + k), e = _mm_loadu_ps(rows[3] + k);
  _MM_TRANSPOSE4_PS(a, b, c, e);
  y[0] = _mm256_cvtps_pd(a);
  y[1] = _mm256_cvtps_pd(b);
  y[2] = _mm256_cvtps_pd(c);
  y[3] = _mm256_cvtps_pd(e);
}

__attribute__((target("avx2"))) inline void load4x4(const double* const* rows, index_t k, __m256d* y) {
  const __m256d a = _mm256_loadu_pd(rows[0] + k), b = _mm256_loadu_pd(rows[1] + k);
  const __m256d c = _mm256_loadu_pd(rows[2] + k), e = _mm256_loadu_pd(rows[3] + k);
  const __m256d ab0 = _mm256_unpacklo_pd(a, b), ab1 = _mm256_unpackhi_pd(a, b);
  const __m256d ce0 = _mm256_unpacklo_pd(c, e), ce1 = _mm256_unpackhi_pd(c, e);
  y[0] = _mm256_permute2f128_pd(ab0, ce0, 0x20);
  y[1] = _mm256_permute2f128_pd(ab1, ce1, 0x20);
  y[2] = _mm256_permute2f128_pd(ab0, ce0, 0x31);
  y[3] = _mm256_permute2f128_pd(ab1, ce1, 0x31);
}

// Lanes are pairs, k runs in order: each lane performs diff = x_k sx - y_k sy; s += diff * diff exactly as
// exact_sq_distance (separate multiply, subtract, multiply, add: "avx2" without "fma", so nothing is fused).
// xs[k] = double(x[k]) * sx is formed once per target row. Two groups of four pairs run interleaved.
template <class T>
__attribute__((target("avx2"))) void exact_sq_batch_avx2(const double* xs, const T* src, index_t d,
                                                         const double* inv_src, const index_t* js, index_t n,
                                                         double* out) {
  const index_t d4 = d - d % 4;
  for (index_t p0 = 0; p0 < n; p0 += 8) {
    const T* rows[8];
    double sy[8];
    for (int q = 0; q < 8; ++q) {
      const index_t j = js[std::min<index_t>(p0 + q, n - 1)];  // lanes past n repeat the last pair
      rows[q] = src + j * d;
      sy[q] = inv_src ? inv_src[j] : 1.0;
    }
    const __m256d sy0 = _mm256_loadu_pd(sy), sy1 = _mm256_loadu_pd(sy + 4);
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    for (index_t k = 0; k < d4; k += 4) {
      __m256d y0[4], y1[4];
      load4x4(rows, k, y0);
      load4x4(rows + 4, k, y1);
      for (int q = 0; q < 4; ++q) {
        const __m256d xk = _mm256_set1_pd(xs[k + q]);
        const __m256d e0 = _mm256_sub_pd(xk, _mm256_mul_pd(y0[q], sy0));
        const __m256d e1 = _mm256_sub_pd(xk, _mm256_mul_pd(y1[q], sy1));
        s0 = _mm256_add_pd(s0, _mm256_mul_pd(e0, e0));
        s1 = _mm256_add_pd(s1, _mm256_mul_pd(e1, e1));
      }
    }
    alignas(32) double acc[8];
    _mm256_store_pd(acc, s0);
    _mm256_store_pd(acc + 4, s1);
    for (int q = 0; q < 8 && p0 + q < n; ++q) {
      double a = acc[q];
      for (index_t k = d4; k < d; ++k) {
        const double diff = xs[k] - double(rows[q][k]) * sy[q];
        a += diff * diff;
      }
      out[p0 + q] = a;
    }
  }
}
#endif

template <class T>
void exact_sq_batch(const T* x, const double* xs, const T* src, index_t d, double sx, const double* inv_src,
                    const index_t* js, index_t n, double* out) {
#ifdef TL_X86
  if (has_avx2_fma() && d >= 4) return exact_sq_batch_avx2(xs, src, d, inv_src, js, n, out);
#endif
  exact_sq_batch_scalar(x, src, d, sx, inv_src, js, n, out);
}

}  // namespace

template <class T>
void finalize(const State& st, const T* tgt, const double* inv_tgt, const T* src, const double* inv_src,
              const std::int64_t* off_src, index_t n_tgt, index_t d, int metric, double* dist,
              std::int64_t* index) {
  parallel_ranges(n_tgt, 64, [&](index_t r0, index_t r1) {
    // Per target row: every candidate source row of every dataset in one list (the whole dataset where the
    // candidates overflowed), re-scored in one batch, then the winner of each dataset in list order.
    std::vector<index_t> js;
    std::vector<double> sq, xs(static_cast<std::size_t>(d));
    std::vector<index_t> first(static_cast<std::size_t>(st.n_seg) + 1);
    for (index_t i = r0; i < r1; ++i) {
      const T* x = tgt + i * d;
      const double sx = inv_tgt ? inv_tgt[i] : 1.0;
      for (index_t k = 0; k < d; ++k) xs[k] = double(x[k]) * sx;
      js.clear();
      for (index_t g = 0; g < st.n_seg; ++g) {
        first[g] = static_cast<index_t>(js.size());
        Slot q = slot(st, i, g);
        if (*q.cnt < 0 || (*q.cnt == 0 && off_src[g + 1] > off_src[g])) {
          for (index_t j = off_src[g]; j < off_src[g + 1]; ++j) js.push_back(j);
        } else {
          for (int k = 0; k < *q.cnt; ++k) js.push_back(q.idx[k]);
        }
      }
      first[st.n_seg] = static_cast<index_t>(js.size());
      sq.resize(js.size());
      exact_sq_batch(x, xs.data(), src, d, sx, inv_src, js.data(), static_cast<index_t>(js.size()), sq.data());
      for (index_t g = 0; g < st.n_seg; ++g) {
        double best_s = std::numeric_limits<double>::infinity();
        index_t best_j = -1;
        for (index_t p = first[g]; p < first[g + 1]; ++p) {
          if (better(sq[p], js[p], best_s, best_j)) {
            best_s = sq[p];
            best_j = js[p];
          }
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
