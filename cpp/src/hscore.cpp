// CPU kernels of the H-score streaming covariance engine (see tasklens/hscore.h).
//
// Determinism: every output element is produced by one task in a fixed order of additions (row-block
// partials added in block order; class sums over a class's rows in increasing order); task boundaries
// (kRowBlock rows, kClassTile features, one target) depend only on the sizes, never on the thread count.
#include "tasklens/hscore.h"

#include <algorithm>
#include <cmath>
#include <vector>

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#endif

#include "tasklens/hscore_math.h"
#include "tasklens/parallel.h"

namespace tasklens::hscore {
namespace {

// Class sums, one feature tile of kClassTile columns at a time. The tile of the block is first copied into a
// contiguous rows x kClassTile buffer (L2 resident, in the input type); then, for each target in turn, the rows
// are counting-sorted by class and each class's rows are summed, in increasing row order, in float64 registers.
// Blocks longer than kClassRows are processed in passes of kClassRows rows, whose sums are added in order.
// The AVX2 and portable loops perform identical additions in the same order.
// Rows per class-sum pass: the float tile (kClassRows x kClassTile) stays in a 1 MiB slice of L2.
constexpr index_t kClassRows = 8192;
static_assert(kClassRows % kRowBlock == 0, "half_pass_cpu restarts row blocks at every class-sum pass");

template <class T>
inline void class_sum_rows(const T* tile, const std::int32_t* idx, index_t count, double* out) {
  double acc[kClassTile] = {0};
  for (index_t k = 0; k < count; ++k) {
    const T* a = tile + static_cast<index_t>(idx[k]) * kClassTile;
    for (index_t j = 0; j < kClassTile; ++j) acc[j] += static_cast<double>(a[j]);
  }
  for (index_t j = 0; j < kClassTile; ++j) out[j] = acc[j];
}

#if defined(__GNUC__) && defined(__x86_64__)
__attribute__((target("avx2"))) inline __m256d load4(const float* p) { return _mm256_cvtps_pd(_mm_loadu_ps(p)); }
__attribute__((target("avx2"))) inline __m256d load4(const double* p) { return _mm256_loadu_pd(p); }
__attribute__((target("avx2"))) inline void store4(float* p, __m256d v) { _mm_storeu_ps(p, _mm256_cvtpd_ps(v)); }
__attribute__((target("avx2"))) inline void store4(double* p, __m256d v) { _mm256_storeu_pd(p, v); }

template <class T>
__attribute__((target("avx2"))) void class_sum_rows_avx2(const T* tile, const std::int32_t* idx, index_t count,
                                                         double* out) {
  static_assert(kClassTile == 32, "the AVX2 class-sum loop holds 32 columns in 8 registers");
  __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  constexpr index_t ahead = 8;  // software prefetch: the class's row list is known in advance
  for (index_t k = 0; k < count; ++k) {
    if (k + ahead < count) {
      const char* p = reinterpret_cast<const char*>(tile + static_cast<index_t>(idx[k + ahead]) * kClassTile);
      _mm_prefetch(p, _MM_HINT_T0);
      _mm_prefetch(p + 64, _MM_HINT_T0);
    }
    const T* r = tile + static_cast<index_t>(idx[k]) * kClassTile;
    a0 = _mm256_add_pd(a0, load4(r));
    a1 = _mm256_add_pd(a1, load4(r + 4));
    a2 = _mm256_add_pd(a2, load4(r + 8));
    a3 = _mm256_add_pd(a3, load4(r + 12));
    a4 = _mm256_add_pd(a4, load4(r + 16));
    a5 = _mm256_add_pd(a5, load4(r + 20));
    a6 = _mm256_add_pd(a6, load4(r + 24));
    a7 = _mm256_add_pd(a7, load4(r + 28));
  }
  _mm256_storeu_pd(out, a0);
  _mm256_storeu_pd(out + 4, a1);
  _mm256_storeu_pd(out + 8, a2);
  _mm256_storeu_pd(out + 12, a3);
  _mm256_storeu_pd(out + 16, a4);
  _mm256_storeu_pd(out + 20, a5);
  _mm256_storeu_pd(out + 24, a6);
  _mm256_storeu_pd(out + 28, a7);
}

inline bool have_avx2() {
  static const bool ok = __builtin_cpu_supports("avx2");
  return ok;
}
#define TL_HSCORE_AVX2 1
#endif

template <class T>
inline void class_sum_rows_dispatch(const T* tile, const std::int32_t* idx, index_t count, double* out) {
#ifdef TL_HSCORE_AVX2
  if (have_avx2()) return class_sum_rows_avx2(tile, idx, count, out);
#endif
  class_sum_rows(tile, idx, count, out);
}

// Row kernels of block_moments. Each works on one row; the portable and the AVX2 versions perform the same
// float64 operations in the same order (lane k of the 4-lane accumulators takes the features f = k mod 4,
// in increasing f; lanes are added as (l0 + l1) + (l2 + l3)), so results are bit-identical across CPUs.

// part[f] += x[f] for one row.
template <class T>
inline void add_row(const T* x, index_t features, double* part) {
  for (index_t f = 0; f < features; ++f) part[f] += static_cast<double>(x[f]);
}

// xc = x - mean (stored in T); returns a = sum_f (x_f - mean_f)^2; then v3p[f] += a * xc[f].
template <class T>
inline double centre_row(const T* x, index_t features, const double* mean, T* xc, double* v3p) {
  double lane[4] = {0, 0, 0, 0};
  for (index_t f = 0; f < features; ++f) {
    const double u = centred(x[f], mean[f]);
    xc[f] = static_cast<T>(u);
    lane[f & 3] += u * u;
  }
  const double a = (lane[0] + lane[1]) + (lane[2] + lane[3]);
  for (index_t f = 0; f < features; ++f) v3p[f] += a * static_cast<double>(xc[f]);
  return a;
}


#ifdef TL_HSCORE_AVX2

template <class T>
__attribute__((target("avx2"))) void add_row_avx2(const T* x, index_t features, double* part) {
  const index_t f4 = features & ~index_t(3);
  for (index_t f = 0; f < f4; f += 4) _mm256_storeu_pd(part + f, _mm256_add_pd(_mm256_loadu_pd(part + f), load4(x + f)));
  for (index_t f = f4; f < features; ++f) part[f] += static_cast<double>(x[f]);
}

template <class T>
__attribute__((target("avx2"))) double centre_row_avx2(const T* x, index_t features, const double* mean, T* xc,
                                                       double* v3p) {
  const index_t f4 = features & ~index_t(3);
  __m256d acc = _mm256_setzero_pd();
  for (index_t f = 0; f < f4; f += 4) {
    const __m256d u = _mm256_sub_pd(load4(x + f), _mm256_loadu_pd(mean + f));
    store4(xc + f, u);
    acc = _mm256_add_pd(acc, _mm256_mul_pd(u, u));
  }
  double lane[4];
  _mm256_storeu_pd(lane, acc);
  for (index_t f = f4; f < features; ++f) {
    const double u = centred(x[f], mean[f]);
    xc[f] = static_cast<T>(u);
    lane[f & 3] += u * u;
  }
  const double a = (lane[0] + lane[1]) + (lane[2] + lane[3]);
  const __m256d av = _mm256_set1_pd(a);
  for (index_t f = 0; f < f4; f += 4)
    _mm256_storeu_pd(v3p + f, _mm256_add_pd(_mm256_loadu_pd(v3p + f), _mm256_mul_pd(av, load4(xc + f))));
  for (index_t f = f4; f < features; ++f) v3p[f] += a * static_cast<double>(xc[f]);
  return a;
}

#endif

template <class T>
inline void add_row_dispatch(const T* x, index_t features, double* part) {
#ifdef TL_HSCORE_AVX2
  if (have_avx2()) return add_row_avx2(x, features, part);
#endif
  add_row(x, features, part);
}

template <class T>
inline double centre_row_dispatch(const T* x, index_t features, const double* mean, T* xc, double* v3p) {
#ifdef TL_HSCORE_AVX2
  if (have_avx2()) return centre_row_avx2(x, features, mean, xc, v3p);
#endif
  return centre_row(x, features, mean, xc, v3p);
}

}  // namespace

template <class T>
double block_moments_shifted_cpu(const T* x, index_t rows, index_t features, const double* shift, T* xc,
                                 double* v3) {
  // One read of the block, about a fixed shift (the mean comes later from the class sums): row-block tasks of
  // kRowBlock rows keep partial v3 vectors, added in block order. Block boundaries depend only on `rows`.
  const index_t blocks = (rows + kRowBlock - 1) / kRowBlock;
  const size_t F = static_cast<size_t>(features);
  std::vector<double> part(static_cast<size_t>(blocks) * F, 0.0);
  std::vector<double> norms(static_cast<size_t>(rows));
  parallel_for(blocks, [&](index_t b) {
    const index_t r1 = std::min(rows, (b + 1) * kRowBlock);
    for (index_t r = b * kRowBlock; r < r1; ++r)
      norms[static_cast<size_t>(r)] =
          centre_row_dispatch(x + r * features, features, shift, xc + r * features, part.data() + b * F);
  });
  for (index_t f = 0; f < features; ++f) {
    double acc = 0.0;
    for (index_t b = 0; b < blocks; ++b) acc += part[b * F + f];
    v3[f] = acc;
  }
  double q4 = 0.0;
  for (double a : norms) q4 += a * a;
  return q4;
}

template <class T>
double half_pass_cpu(const T* x, index_t rows, index_t features, const double* shift, T* xc, double* v3,
                     const std::int64_t* labels, index_t targets, index_t classes, const double* offset,
                     double* sums, std::int64_t* counts, double* total) {
  const size_t F = static_cast<size_t>(features), TC = static_cast<size_t>(targets * classes);
  std::vector<double> part(F), acc(TC * F);
  std::vector<std::int64_t> n(TC);
  std::fill(v3, v3 + features, 0.0);
  double q4 = 0.0;
  for (index_t p0 = 0; p0 < rows; p0 += kClassRows) {  // the class-sum passes of class_sums_cpu
    const index_t p1 = std::min(rows, p0 + kClassRows);
    std::fill(acc.begin(), acc.end(), 0.0);
    std::fill(n.begin(), n.end(), 0);
    for (index_t b0 = p0; b0 < p1; b0 += kRowBlock) {  // the row blocks of block_moments_shifted_cpu
      // kClassRows is a multiple of kRowBlock, so row blocks restart at every pass as in the unfused kernel
      const index_t b1 = std::min(p1, b0 + kRowBlock);
      std::fill(part.begin(), part.end(), 0.0);
      for (index_t r = b0; r < b1; ++r) {
        const double a = centre_row_dispatch(x + r * features, features, shift, xc + r * features, part.data());
        q4 += a * a;
        for (index_t t = 0; t < targets; ++t) {
          const size_t slot = static_cast<size_t>(t * classes + labels[r * targets + t]);
          ++n[slot];
          add_row_dispatch(xc + r * features, features, acc.data() + slot * F);
        }
      }
      for (size_t f = 0; f < F; ++f) v3[f] += part[f];
    }
    for (index_t t = 0; t < targets; ++t)
      for (index_t c = 0; c < classes; ++c) {
        const size_t slot = static_cast<size_t>(t * classes + c);
        if (n[slot] == 0) continue;
        counts[slot] += n[slot];
        const double* a = acc.data() + slot * F;
        double* out = sums + slot * F;
        for (size_t f = 0; f < F; ++f) out[f] += shifted_class_sum(a[f], static_cast<double>(n[slot]), offset[f]);
        if (total != nullptr && t == 0)
          for (size_t f = 0; f < F; ++f) total[f] += a[f];
      }
  }
  return q4;
}

template <class T>
double block_moments_cpu(const T* x, index_t rows, index_t features, double* mean, T* xc, double* v3) {
  // Mean pass: row blocks of kRowBlock rows, each task sums its rows in order into its own partial vector;
  // partials are added in block order. Then the one-pass kernel centred on that mean.
  const index_t blocks = (rows + kRowBlock - 1) / kRowBlock;
  const size_t F = static_cast<size_t>(features);
  std::vector<double> part(static_cast<size_t>(blocks) * F, 0.0);
  parallel_for(blocks, [&](index_t b) {
    const index_t r1 = std::min(rows, (b + 1) * kRowBlock);
    for (index_t r = b * kRowBlock; r < r1; ++r) add_row_dispatch(x + r * features, features, part.data() + b * F);
  });
  for (index_t f = 0; f < features; ++f) {
    double acc = 0.0;
    for (index_t b = 0; b < blocks; ++b) acc += part[b * F + f];
    mean[f] = rows > 0 ? acc / static_cast<double>(rows) : 0.0;
  }
  return block_moments_shifted_cpu(x, rows, features, mean, xc, v3);
}

double recentre_moments_cpu(index_t features, double n, const double* d, double* gram, double* v3, double q4) {
  const index_t F = features;
  std::vector<double> gd(static_cast<size_t>(F));
  parallel_ranges(F, 16, [&](index_t i0, index_t i1) {
    for (index_t i = i0; i < i1; ++i) {
      double acc = 0;
      for (index_t j = 0; j < F; ++j) acc += gram[i * F + j] * d[j];
      gd[i] = acc;
    }
  });
  double tr = 0, d_sq = 0, dgd = 0, dv3 = 0;
  for (index_t i = 0; i < F; ++i) {
    tr += gram[i * F + i];
    d_sq += d[i] * d[i];
    dgd += d[i] * gd[i];
    dv3 += d[i] * v3[i];
  }
  const double q4_m = recentred_q4(q4, dgd, n, d_sq, dv3, tr);
  for (index_t i = 0; i < F; ++i) v3[i] = recentred_v3(v3[i], gd[i], tr, n, d_sq, d[i]);
  parallel_ranges(F, 16, [&](index_t i0, index_t i1) {
    for (index_t i = i0; i < i1; ++i)
      for (index_t j = 0; j < F; ++j) gram[i * F + j] = recentred_scatter(gram[i * F + j], n, d[i], d[j]);
  });
  return q4_m;
}

template <class T>
void class_sums_pass(const T* xc, index_t rows, index_t features, const std::int64_t* labels, index_t targets,
                     index_t classes, const double* offset, double* sums, std::int64_t* counts, double* total,
                     index_t t0, index_t t1, index_t f0, index_t f1) {
  // Per target: rows counting-sorted by class (stable) and the class boundaries; one task per target.
  const index_t nt = t1 - t0;
  std::vector<std::int32_t> order(static_cast<size_t>(nt * rows));
  std::vector<std::int64_t> start(static_cast<size_t>(nt * (classes + 1)), 0);
  parallel_for(nt, [&](index_t k) {
    const index_t t = t0 + k;
    std::int64_t* st = start.data() + k * (classes + 1);
    for (index_t r = 0; r < rows; ++r) ++st[labels[r * targets + t] + 1];
    for (index_t c = 0; c < classes; ++c) {
      if (f0 == 0) counts[t * classes + c] += st[c + 1];
      st[c + 1] += st[c];
    }
    std::vector<std::int64_t> fill(st, st + classes);
    std::int32_t* ord = order.data() + k * rows;
    for (index_t r = 0; r < rows; ++r) ord[fill[static_cast<size_t>(labels[r * targets + t])]++] = static_cast<std::int32_t>(r);
  });
  const index_t tiles = (f1 - f0 + kClassTile - 1) / kClassTile;
  parallel_for(tiles, [&](index_t tile_index) {
    const index_t fa = f0 + tile_index * kClassTile, w = std::min(kClassTile, f1 - fa);
    thread_local std::vector<T> tile;
    tile.assign(static_cast<size_t>(rows * kClassTile), T(0));
    for (index_t r = 0; r < rows; ++r)
      std::copy(xc + r * features + fa, xc + r * features + fa + w, tile.data() + r * kClassTile);
    double acc[kClassTile];
    for (index_t t = t0; t < t1; ++t) {
      const std::int64_t* st = start.data() + (t - t0) * (classes + 1);
      const std::int32_t* ord = order.data() + (t - t0) * rows;
      for (index_t c = 0; c < classes; ++c) {
        const index_t n_c = st[c + 1] - st[c];
        if (n_c == 0) continue;
        class_sum_rows_dispatch(tile.data(), ord + st[c], n_c, acc);
        double* out = sums + (t * classes + c) * features + fa;
        for (index_t j = 0; j < w; ++j) out[j] += shifted_class_sum(acc[j], static_cast<double>(n_c), offset[fa + j]);
        if (total != nullptr && t == 0)
          for (index_t j = 0; j < w; ++j) total[fa + j] += acc[j];
      }
    }
  });
}

template <class T>
void class_sums_cpu(const T* xc, index_t rows, index_t features, const std::int64_t* labels, index_t targets,
                    index_t classes, const double* offset, double* sums, std::int64_t* counts, double* total,
                    index_t t0, index_t t1, index_t f0, index_t f1) {
  if (t1 <= t0 || f1 <= f0) return;
  for (index_t r0 = 0; r0 < rows; r0 += kClassRows)
    class_sums_pass(xc + r0 * features, std::min(kClassRows, rows - r0), features, labels + r0 * targets, targets,
                    classes, offset, sums, counts, total, t0, t1, f0, f1);
}

double merge_moments_cpu(index_t features, double n_a, double* mean_a, double* scatter_a, double* v3_a,
                         double q4_a, double n_b, const double* mean_b, const double* scatter_b,
                         const double* v3_b, double q4_b) {
  const index_t F = features;
  if (n_b <= 0) return q4_a;
  std::vector<double> mean(static_cast<size_t>(F)), da(static_cast<size_t>(F)), db(static_cast<size_t>(F)),
      d(static_cast<size_t>(F)), sda(static_cast<size_t>(F)), sdb(static_cast<size_t>(F));
  double tra = 0, trb = 0, da_sq = 0, db_sq = 0;
  for (index_t i = 0; i < F; ++i) {
    mean[i] = merged_mean(mean_a[i], mean_b[i], n_a, n_b);
    da[i] = mean[i] - mean_a[i];
    db[i] = mean[i] - mean_b[i];
    d[i] = mean_b[i] - mean_a[i];
    tra += scatter_a[i * F + i];
    trb += scatter_b[i * F + i];
    da_sq += da[i] * da[i];
    db_sq += db[i] * db[i];
  }
  // S delta for both sides (rows in parallel, each row one task).
  parallel_ranges(F, 16, [&](index_t i0, index_t i1) {
    for (index_t i = i0; i < i1; ++i) {
      double sa = 0, sb = 0;
      for (index_t j = 0; j < F; ++j) {
        sa += scatter_a[i * F + j] * da[j];
        sb += scatter_b[i * F + j] * db[j];
      }
      sda[i] = sa;
      sdb[i] = sb;
    }
  });
  double dsd_a = 0, dsd_b = 0, dv3_a = 0, dv3_b = 0;
  for (index_t i = 0; i < F; ++i) {
    dsd_a += da[i] * sda[i];
    dsd_b += db[i] * sdb[i];
    dv3_a += da[i] * v3_a[i];
    dv3_b += db[i] * v3_b[i];
  }
  const double q4 = shifted_q4(q4_a, dsd_a, n_a, da_sq, dv3_a, tra) + shifted_q4(q4_b, dsd_b, n_b, db_sq, dv3_b, trb);
  for (index_t i = 0; i < F; ++i)
    v3_a[i] = shifted_v3(v3_a[i], sda[i], tra, n_a, da_sq, da[i]) + shifted_v3(v3_b[i], sdb[i], trb, n_b, db_sq, db[i]);
  const double w = chan_weight(n_a, n_b);
  parallel_ranges(F, 16, [&](index_t i0, index_t i1) {
    for (index_t i = i0; i < i1; ++i)
      for (index_t j = 0; j < F; ++j)
        scatter_a[i * F + j] = merged_scatter(scatter_a[i * F + j], scatter_b[i * F + j], d[i], d[j], w);
  });
  for (index_t i = 0; i < F; ++i) mean_a[i] = mean[i];
  return q4;
}

template double block_moments_cpu<float>(const float*, index_t, index_t, double*, float*, double*);
template double block_moments_cpu<double>(const double*, index_t, index_t, double*, double*, double*);
template double block_moments_shifted_cpu<float>(const float*, index_t, index_t, const double*, float*, double*);
template double block_moments_shifted_cpu<double>(const double*, index_t, index_t, const double*, double*, double*);
template double half_pass_cpu<float>(const float*, index_t, index_t, const double*, float*, double*,
                                     const std::int64_t*, index_t, index_t, const double*, double*, std::int64_t*,
                                     double*);
template double half_pass_cpu<double>(const double*, index_t, index_t, const double*, double*, double*,
                                      const std::int64_t*, index_t, index_t, const double*, double*,
                                      std::int64_t*, double*);
template void class_sums_cpu<float>(const float*, index_t, index_t, const std::int64_t*, index_t, index_t,
                                    const double*, double*, std::int64_t*, double*, index_t, index_t, index_t,
                                    index_t);
template void class_sums_cpu<double>(const double*, index_t, index_t, const std::int64_t*, index_t, index_t,
                                     const double*, double*, std::int64_t*, double*, index_t, index_t, index_t,
                                     index_t);

}  // namespace tasklens::hscore
