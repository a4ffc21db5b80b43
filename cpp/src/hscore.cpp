// CPU kernels of the H-score streaming covariance engine (see tasklens/hscore.h).
//
// Determinism: every output element is produced by exactly one task that visits rows in increasing order;
// task boundaries (kRowBlock rows, kFeatureTile features, one target) depend only on the sizes.
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

constexpr index_t W = kFeatureTile;

// Class sums of the rows [0, rows) for the columns [f0, f0 + width) into a tile-major scratch
// acc[(t * classes + c) * width + j]: each row is read once and added to one accumulator per target.
template <index_t Width, class T>
inline void scatter_rows_fixed(const T* xc, index_t rows, index_t features, index_t f0, const std::int64_t* labels,
                               index_t targets, index_t classes, double* acc) {
  double v[Width];
  for (index_t r = 0; r < rows; ++r) {
    const T* row = xc + r * features + f0;
    for (index_t j = 0; j < Width; ++j) v[j] = static_cast<double>(row[j]);
    const std::int64_t* lab = labels + r * targets;
    for (index_t t = 0; t < targets; ++t) {
      double* out = acc + (t * classes + lab[t]) * Width;
      for (index_t j = 0; j < Width; ++j) out[j] += v[j];
    }
  }
}

template <class T>
inline void scatter_rows(const T* xc, index_t rows, index_t features, index_t f0, index_t width,
                         const std::int64_t* labels, index_t targets, index_t classes, double* acc) {
  switch (width) {
    case 8: return scatter_rows_fixed<8>(xc, rows, features, f0, labels, targets, classes, acc);
    case 16: return scatter_rows_fixed<16>(xc, rows, features, f0, labels, targets, classes, acc);
    case 32: return scatter_rows_fixed<32>(xc, rows, features, f0, labels, targets, classes, acc);
    case 64: return scatter_rows_fixed<64>(xc, rows, features, f0, labels, targets, classes, acc);
    default: break;
  }
  double v[W];
  for (index_t r = 0; r < rows; ++r) {
    const T* row = xc + r * features + f0;
    for (index_t j = 0; j < width; ++j) v[j] = static_cast<double>(row[j]);
    const std::int64_t* lab = labels + r * targets;
    for (index_t t = 0; t < targets; ++t) {
      double* out = acc + (t * classes + lab[t]) * width;
      for (index_t j = 0; j < width; ++j) out[j] += v[j];
    }
  }
}

#if defined(__GNUC__) && defined(__x86_64__)
// AVX2 version of scatter_rows_fixed (Width a multiple of 4): same additions in the same order, so the
// results are bit-identical to the portable loop; chosen at run time when the CPU supports AVX2.
template <index_t Width>
__attribute__((target("avx2"))) void scatter_rows_avx2(const float* xc, index_t rows, index_t features, index_t f0,
                                                       const std::int64_t* labels, index_t targets,
                                                       index_t classes, double* acc) {
  constexpr int V = static_cast<int>(Width / 4);
  for (index_t r = 0; r < rows; ++r) {
    const float* row = xc + r * features + f0;
    __m256d v[V];
    for (int k = 0; k < V; ++k) v[k] = _mm256_cvtps_pd(_mm_loadu_ps(row + 4 * k));
    const std::int64_t* lab = labels + r * targets;
    for (index_t t = 0; t < targets; ++t) {
      double* out = acc + (t * classes + lab[t]) * Width;
      for (int k = 0; k < V; ++k) _mm256_storeu_pd(out + 4 * k, _mm256_add_pd(_mm256_loadu_pd(out + 4 * k), v[k]));
    }
  }
}
template <index_t Width>
__attribute__((target("avx2"))) void scatter_rows_avx2(const double* xc, index_t rows, index_t features,
                                                       index_t f0, const std::int64_t* labels, index_t targets,
                                                       index_t classes, double* acc) {
  constexpr int V = static_cast<int>(Width / 4);
  for (index_t r = 0; r < rows; ++r) {
    const double* row = xc + r * features + f0;
    __m256d v[V];
    for (int k = 0; k < V; ++k) v[k] = _mm256_loadu_pd(row + 4 * k);
    const std::int64_t* lab = labels + r * targets;
    for (index_t t = 0; t < targets; ++t) {
      double* out = acc + (t * classes + lab[t]) * Width;
      for (int k = 0; k < V; ++k) _mm256_storeu_pd(out + 4 * k, _mm256_add_pd(_mm256_loadu_pd(out + 4 * k), v[k]));
    }
  }
}
inline bool have_avx2() {
  static const bool ok = __builtin_cpu_supports("avx2");
  return ok;
}
#define TL_HSCORE_AVX2 1
#endif

template <class T>
void scatter_rows_dispatch(const T* xc, index_t rows, index_t F, index_t f0, index_t w, const std::int64_t* labels,
                           index_t targets, index_t classes, double* acc) {
#ifdef TL_HSCORE_AVX2
  if (have_avx2()) {
    switch (w) {
      case 8: return scatter_rows_avx2<8>(xc, rows, F, f0, labels, targets, classes, acc);
      case 16: return scatter_rows_avx2<16>(xc, rows, F, f0, labels, targets, classes, acc);
      case 32: return scatter_rows_avx2<32>(xc, rows, F, f0, labels, targets, classes, acc);
      case 64: return scatter_rows_avx2<64>(xc, rows, F, f0, labels, targets, classes, acc);
      default: break;
    }
  }
#endif
  scatter_rows(xc, rows, F, f0, w, labels, targets, classes, acc);
}

// Feature tile width of the class-sum kernel: the widest of 64, 32, 16, 8 whose accumulators
// (targets x classes x width doubles) fit in about 8 MiB (measured: wider tiles win while the scratch stays in L2/L3). Depends on the sizes only.
inline index_t class_tile_width(index_t targets, index_t classes) {
  index_t w = W;
  while (w > 8 && targets * classes * w * static_cast<index_t>(sizeof(double)) > (index_t(1) << 23)) w /= 2;
  return w;
}

// Column sums of a row range (fixed row order) for the columns [f0, f0 + width).
template <class T>
void column_sums(const T* x, index_t rows, index_t features, index_t f0, index_t width,
                                  double* acc) {
  for (index_t r = 0; r < rows; ++r) {
    const T* row = x + r * features + f0;
    for (index_t j = 0; j < width; ++j) acc[j] += static_cast<double>(row[j]);
  }
}

}  // namespace

template <class T>
double block_moments_cpu(const T* x, index_t rows, index_t features, double* mean, T* xc, double* v3) {
  const index_t tiles = (features + W - 1) / W;
  // Column means: one task per feature tile, rows in order.
  parallel_for(tiles, [&](index_t t) {
    const index_t f0 = t * W, width = std::min(W, features - f0);
    double acc[W] = {0};
    column_sums(x, rows, features, f0, width, acc);
    for (index_t j = 0; j < width; ++j) mean[f0 + j] = rows > 0 ? acc[j] / static_cast<double>(rows) : 0.0;
  });
  // Centred copy and squared row norms.
  std::vector<double> norms(static_cast<size_t>(rows));
  parallel_ranges(rows, kRowBlock, [&](index_t r0, index_t r1) {
    for (index_t r = r0; r < r1; ++r) {
      const T* in = x + r * features;
      T* out = xc + r * features;
      double a = 0.0;
      for (index_t f = 0; f < features; ++f) {
        const double u = centred(in[f], mean[f]);
        out[f] = static_cast<T>(u);
        a += u * u;
      }
      norms[static_cast<size_t>(r)] = a;
    }
  });
  // v3 = sum_i a_i xc_i: one task per feature tile.
  parallel_for(tiles, [&](index_t t) {
    const index_t f0 = t * W, width = std::min(W, features - f0);
    double acc[W] = {0};
    for (index_t r = 0; r < rows; ++r) {
      const T* row = xc + r * features + f0;
      const double a = norms[static_cast<size_t>(r)];
      for (index_t j = 0; j < width; ++j) acc[j] += a * static_cast<double>(row[j]);
    }
    for (index_t j = 0; j < width; ++j) v3[f0 + j] = acc[j];
  });
  double q4 = 0.0;
  for (double a : norms) q4 += a * a;
  return q4;
}

template <class T>
void class_sums_cpu(const T* xc, index_t rows, index_t features, const std::int64_t* labels, index_t targets,
                    index_t classes, const double* offset, double* sums, std::int64_t* counts) {
  // Counts: one task per target.
  parallel_for(targets, [&](index_t t) {
    for (index_t r = 0; r < rows; ++r) ++counts[t * classes + labels[r * targets + t]];
  });
  std::vector<std::int64_t> block_counts(static_cast<size_t>(targets * classes), 0);
  for (index_t r = 0; r < rows; ++r)
    for (index_t t = 0; t < targets; ++t) ++block_counts[static_cast<size_t>(t * classes + labels[r * targets + t])];
  // Sums: one task per feature tile, rows in order, into a per-thread scratch that is then added to `sums`.
  const index_t width = class_tile_width(targets, classes);
  const index_t tiles = (features + width - 1) / width;
  parallel_for(tiles, [&](index_t tile) {
    const index_t f0 = tile * width, w = std::min(width, features - f0);
    thread_local std::vector<double> scratch;
    scratch.assign(static_cast<size_t>(targets * classes * w), 0.0);
    scatter_rows_dispatch(xc, rows, features, f0, w, labels, targets, classes, scratch.data());
    for (index_t tc = 0; tc < targets * classes; ++tc) {
      const double n_c = static_cast<double>(block_counts[static_cast<size_t>(tc)]);
      if (n_c == 0) continue;
      double* out = sums + tc * features + f0;
      const double* acc = scratch.data() + tc * w;
      for (index_t j = 0; j < w; ++j) out[j] += shifted_class_sum(acc[j], n_c, offset[f0 + j]);
    }
  });
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
template void class_sums_cpu<float>(const float*, index_t, index_t, const std::int64_t*, index_t, index_t,
                                    const double*, double*, std::int64_t*);
template void class_sums_cpu<double>(const double*, index_t, index_t, const std::int64_t*, index_t, index_t,
                                     const double*, double*, std::int64_t*);

}  // namespace tasklens::hscore
