// CPU box kernels. Work is split into blocks whose boundaries depend only on the problem size; every output
// element (and every gradient row) is produced by exactly one block, and partial sums across blocks are
// reduced in block order, so results are bit-identical for any thread count.
#include "tasklens/boxes.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "tasklens/boxes_math.h"
#include "tasklens/parallel.h"

namespace tasklens::boxes {
namespace {

constexpr index_t kRowBlock = 16;      // rows of a per task in the dense kernels
constexpr index_t kColTile = 512;      // columns of b per cache tile in the dense forward
constexpr index_t kMaxPartials = 32;   // at most this many column-gradient partial buffers (dense backward)
constexpr index_t kElemBlock = 4096;   // elements per task in elementwise kernels

// Calls f.template operator()<MODE>() with MODE a compile-time constant.
template <class F>
void with_mode(int mode, F&& f) {
  switch (mode) {
    case kHard: f(std::integral_constant<int, kHard>()); break;
    case kSoft: f(std::integral_constant<int, kSoft>()); break;
    case kGumbel: f(std::integral_constant<int, kGumbel>()); break;
    default: throw std::invalid_argument("tasklens._C boxes: unknown mode " + std::to_string(mode));
  }
}

// Log-volume (double) of row i; optionally the per-dimension derivatives d/dw into dw[0..k).
template <int VMODE, class T>
double row_log_volume(const T* lo, const T* hi, index_t k, const Params<T>& p, T* dw) {
  double s = 0.0;
  for (index_t d = 0; d < k; ++d) s += double(log_width<VMODE>(hi[d] - lo[d], p, dw ? dw + d : nullptr));
  return s;
}

template <int VMODE, class T>
std::vector<double> log_volumes(const T* lo, const T* hi, index_t n, index_t k, const Params<T>& p) {
  std::vector<double> out(static_cast<size_t>(n));
  parallel_ranges(n, kElemBlock / std::max<index_t>(k, 1) + 1, [&](index_t i0, index_t i1) {
    for (index_t i = i0; i < i1; ++i) out[i] = row_log_volume<VMODE>(lo + i * k, hi + i * k, k, p, (T*)nullptr);
  });
  return out;
}

template <class T>
T finish(double log_ratio, bool log_out) {
  return T(log_out ? log_ratio : std::exp(log_ratio));
}

// Counting sort of pair indices by row: order lists the pairs of row r at order[offsets[r]:offsets[r+1]],
// in increasing pair number (stable).
void group_by_row(const std::int64_t* idx, index_t p, index_t rows, std::vector<index_t>& order,
                  std::vector<index_t>& offsets) {
  offsets.assign(static_cast<size_t>(rows + 1), 0);
  for (index_t q = 0; q < p; ++q) ++offsets[idx[q] + 1];
  for (index_t r = 0; r < rows; ++r) offsets[r + 1] += offsets[r];
  order.resize(static_cast<size_t>(p));
  std::vector<index_t> fill(offsets.begin(), offsets.end() - 1);
  for (index_t q = 0; q < p; ++q) order[fill[idx[q]]++] = q;
}

}  // namespace

// ---------------------------------------------------------------------------------------------- log-volume

template <class T>
void log_volume_cpu(const T* lo, const T* hi, index_t n, index_t k, const Options& o, T* out) {
  const auto p = make_params<T>(o.mode, o.volume_temperature, o.intersection_temperature);
  with_mode(o.mode, [&](auto M) {
    parallel_ranges(n, kElemBlock / std::max<index_t>(k, 1) + 1, [&](index_t i0, index_t i1) {
      for (index_t i = i0; i < i1; ++i)
        out[i] = T(row_log_volume<decltype(M)::value>(lo + i * k, hi + i * k, k, p, (T*)nullptr));
    });
  });
}

template <class T>
void log_volume_backward_cpu(const T* lo, const T* hi, const T* grad, index_t n, index_t k, const Options& o,
                             T* g_lo, T* g_hi) {
  const auto p = make_params<T>(o.mode, o.volume_temperature, o.intersection_temperature);
  with_mode(o.mode, [&](auto M) {
    parallel_ranges(n * k, kElemBlock, [&](index_t e0, index_t e1) {
      for (index_t e = e0; e < e1; ++e) {
        T dw;
        log_width<decltype(M)::value>(hi[e] - lo[e], p, &dw);
        const double g = double(grad[e / k]) * double(dw);
        g_lo[e] = T(-g);
        g_hi[e] = T(g);
      }
    });
  });
}

// -------------------------------------------------------------------------------------------- intersection

template <class T>
void intersection_cpu(const T* lo_a, const T* hi_a, const T* lo_b, const T* hi_b, index_t n, index_t k,
                      const Options& o, T* lo, T* hi) {
  const auto p = make_params<T>(o.mode, o.volume_temperature, o.intersection_temperature);
  const bool gumbel = o.mode == kGumbel;
  parallel_ranges(n * k, kElemBlock, [&](index_t e0, index_t e1) {
    for (index_t e = e0; e < e1; ++e) {
      if (gumbel) {
        intersect<true>(lo_a[e], hi_a[e], lo_b[e], hi_b[e], p, lo + e, hi + e);
        if (o.clip) {
          lo[e] = tl_max(lo[e], tl_max(lo_a[e], lo_b[e]));
          hi[e] = tl_min(hi[e], tl_min(hi_a[e], hi_b[e]));
        }
      } else {
        intersect<false>(lo_a[e], hi_a[e], lo_b[e], hi_b[e], p, lo + e, hi + e);
      }
    }
  });
}

// Derivatives of one intersection corner c = smax(x, y) (or -smax(-x, -y)) with optional clipping
// c' = max(c, max(x, y)) (torch.max semantics: a tie between c and the hard corner splits the gradient).
template <class T>
void corner_grad(T x, T y, bool gumbel, bool clip, const Params<T>& p, T* dx, T* dy) {
  if (!gumbel) {
    smooth_max<false>(x, y, p, dx, dy);
    return;
  }
  const T c = smooth_max<true>(x, y, p, dx, dy);
  if (!clip) return;
  const T h = tl_max(x, y);
  if (c > h) return;
  T hx, hy;
  smooth_max<false>(x, y, p, &hx, &hy);
  if (c < h) {
    *dx = hx;
    *dy = hy;
  } else {
    *dx = T(0.5) * (*dx + hx);
    *dy = T(0.5) * (*dy + hy);
  }
}

template <class T>
void intersection_backward_cpu(const T* lo_a, const T* hi_a, const T* lo_b, const T* hi_b, const T* g_lo,
                               const T* g_hi, index_t n, index_t k, const Options& o, T* g_lo_a, T* g_hi_a,
                               T* g_lo_b, T* g_hi_b) {
  const auto p = make_params<T>(o.mode, o.volume_temperature, o.intersection_temperature);
  const bool gumbel = o.mode == kGumbel;
  parallel_ranges(n * k, kElemBlock, [&](index_t e0, index_t e1) {
    for (index_t e = e0; e < e1; ++e) {
      T da, db;
      corner_grad(lo_a[e], lo_b[e], gumbel, o.clip, p, &da, &db);
      g_lo_a[e] = g_lo[e] * da;
      g_lo_b[e] = g_lo[e] * db;
      corner_grad(-hi_a[e], -hi_b[e], gumbel, o.clip, p, &da, &db);
      g_hi_a[e] = g_hi[e] * da;
      g_hi_b[e] = g_hi[e] * db;
    }
  });
}

// ------------------------------------------------------------------------------------- dense containment

template <int MODE, class T>
void containment_dense(const T* lo_a, const T* hi_a, index_t n, const T* lo_b, const T* hi_b, index_t m,
                       index_t k, const Params<T>& p, bool log_out, T* out) {
  const std::vector<double> lva = log_volumes<MODE>(lo_a, hi_a, n, k, p);
  parallel_ranges(n, kRowBlock, [&](index_t i0, index_t i1) {
    for (index_t j0 = 0; j0 < m; j0 += kColTile) {
      const index_t j1 = std::min(m, j0 + kColTile);
      for (index_t i = i0; i < i1; ++i) {
        const T* la = lo_a + i * k;
        const T* ha = hi_a + i * k;
        T* row = out + i * m;
        for (index_t j = j0; j < j1; ++j) {
          const T* lb = lo_b + j * k;
          const T* hb = hi_b + j * k;
          double s = 0.0;
          for (index_t d = 0; d < k; ++d) s += double(inter_log_width<MODE>(la[d], ha[d], lb[d], hb[d], p));
          row[j] = finish<T>(s - lva[i], log_out);
        }
      }
    }
  });
}

template <class T>
void containment_cpu(const T* lo_a, const T* hi_a, index_t n, const T* lo_b, const T* hi_b, index_t m,
                     index_t k, const Options& o, T* out) {
  const auto p = make_params<T>(o.mode, o.volume_temperature, o.intersection_temperature);
  with_mode(o.mode, [&](auto M) {
    containment_dense<decltype(M)::value>(lo_a, hi_a, n, lo_b, hi_b, m, k, p, o.log, out);
  });
}

// Backward of the dense containment in one pass over the pairs. Row blocks own the gradients of their a
// rows; each block also sums its contributions to every b row into its own partial buffer, and the
// partials are added in block order afterwards. The block size depends only on n.
template <int MODE, class T>
void containment_dense_backward(const T* lo_a, const T* hi_a, index_t n, const T* lo_b, const T* hi_b, index_t m,
                                index_t k, const T* out, const T* grad, const Params<T>& p, bool log_out,
                                T* g_lo_a, T* g_hi_a, T* g_lo_b, T* g_hi_b) {
  const index_t rows = std::max<index_t>(kRowBlock, (n + kMaxPartials - 1) / kMaxPartials);
  const index_t blocks = (n + rows - 1) / rows;
  const index_t width = 2 * k;  // partial layout per b row: [lo grads (k), hi grads (k)]
  std::vector<double> partial(static_cast<size_t>(blocks * m * width));
  parallel_for(blocks, [&](index_t b) {
    double* part = partial.data() + b * m * width;
    std::fill(part, part + m * width, 0.0);
    std::vector<double> acc(static_cast<size_t>(width));
    std::vector<T> dw(static_cast<size_t>(k));
    const index_t i1 = std::min(n, (b + 1) * rows);
    for (index_t i = b * rows; i < i1; ++i) {
      const T* la = lo_a + i * k;
      const T* ha = hi_a + i * k;
      std::fill(acc.begin(), acc.end(), 0.0);
      double total = 0.0;  // sum of g over the row: the gradient of -log vol(a_i)
      for (index_t j = 0; j < m; ++j) {
        const double g = log_out ? double(grad[i * m + j]) : double(grad[i * m + j]) * double(out[i * m + j]);
        if (g == 0.0) continue;
        total += g;
        const T* lb = lo_b + j * k;
        const T* hb = hi_b + j * k;
        double* pj = part + j * width;
        for (index_t d = 0; d < k; ++d)
          inter_log_width_grad<MODE>(la[d], ha[d], lb[d], hb[d], p, g, &acc[d], &acc[k + d], &pj[d], &pj[k + d]);
      }
      row_log_volume<MODE>(la, ha, k, p, dw.data());
      for (index_t d = 0; d < k; ++d) {
        g_lo_a[i * k + d] = T(acc[d] + total * double(dw[d]));
        g_hi_a[i * k + d] = T(acc[k + d] - total * double(dw[d]));
      }
    }
  });
  parallel_ranges(m, 64, [&](index_t j0, index_t j1) {
    for (index_t j = j0; j < j1; ++j) {
      for (index_t c = 0; c < width; ++c) {
        double s = 0.0;
        for (index_t b = 0; b < blocks; ++b) s += partial[(b * m + j) * width + c];
        if (c < k) g_lo_b[j * k + c] = T(s);
        else g_hi_b[j * k + c - k] = T(s);
      }
    }
  });
}

template <class T>
void containment_backward_cpu(const T* lo_a, const T* hi_a, index_t n, const T* lo_b, const T* hi_b, index_t m,
                              index_t k, const T* out, const T* grad, const Options& o, T* g_lo_a, T* g_hi_a,
                              T* g_lo_b, T* g_hi_b) {
  const auto p = make_params<T>(o.mode, o.volume_temperature, o.intersection_temperature);
  with_mode(o.mode, [&](auto M) {
    containment_dense_backward<decltype(M)::value>(lo_a, hi_a, n, lo_b, hi_b, m, k, out, grad, p, o.log, g_lo_a,
                                                   g_hi_a, g_lo_b, g_hi_b);
  });
}

// ------------------------------------------------------------------------------------ paired containment

template <class T>
void containment_pairs_cpu(const T* lo_a, const T* hi_a, index_t n, const T* lo_b, const T* hi_b, index_t m,
                           index_t k, const std::int64_t* idx_a, const std::int64_t* idx_b, index_t p,
                           const Options& o, T* out) {
  const auto prm = make_params<T>(o.mode, o.volume_temperature, o.intersection_temperature);
  with_mode(o.mode, [&](auto M) {
    constexpr int MODE = decltype(M)::value;
    const std::vector<double> lva = log_volumes<MODE>(lo_a, hi_a, n, k, prm);
    parallel_ranges(p, kElemBlock / std::max<index_t>(k, 1) + 1, [&](index_t q0, index_t q1) {
      for (index_t q = q0; q < q1; ++q) {
        const index_t i = idx_a[q], j = idx_b[q];
        double s = 0.0;
        for (index_t d = 0; d < k; ++d)
          s += double(inter_log_width<MODE>(lo_a[i * k + d], hi_a[i * k + d], lo_b[j * k + d], hi_b[j * k + d], prm));
        out[q] = finish<T>(s - lva[i], o.log);
      }
    });
  });
}

// Backward of the paired containment: pairs are grouped by their a row (then by their b row) with a stable
// counting sort; each row's gradient is summed over its pairs in increasing pair order by one task.
template <class T>
void containment_pairs_backward_cpu(const T* lo_a, const T* hi_a, index_t n, const T* lo_b, const T* hi_b,
                                    index_t m, index_t k, const std::int64_t* idx_a, const std::int64_t* idx_b,
                                    index_t p, const T* out, const T* grad, const Options& o, T* g_lo_a,
                                    T* g_hi_a, T* g_lo_b, T* g_hi_b) {
  const auto prm = make_params<T>(o.mode, o.volume_temperature, o.intersection_temperature);
  auto pair_g = [&](index_t q) { return o.log ? double(grad[q]) : double(grad[q]) * double(out[q]); };
  with_mode(o.mode, [&](auto M) {
    constexpr int MODE = decltype(M)::value;
    std::vector<index_t> order, offsets;
    // Gradients of the a rows (intersection terms and -log vol(a_i)).
    group_by_row(idx_a, p, n, order, offsets);
    parallel_ranges(n, kRowBlock, [&](index_t i0, index_t i1) {
      std::vector<double> acc(static_cast<size_t>(2 * k));
      std::vector<T> dw(static_cast<size_t>(k));
      for (index_t i = i0; i < i1; ++i) {
        const T* la = lo_a + i * k;
        const T* ha = hi_a + i * k;
        std::fill(acc.begin(), acc.end(), 0.0);
        double total = 0.0;
        for (index_t t = offsets[i]; t < offsets[i + 1]; ++t) {
          const index_t q = order[t];
          const double g = pair_g(q);
          if (g == 0.0) continue;
          total += g;
          const T* lb = lo_b + idx_b[q] * k;
          const T* hb = hi_b + idx_b[q] * k;
          for (index_t d = 0; d < k; ++d)
            inter_log_width_grad<MODE, T, double>(la[d], ha[d], lb[d], hb[d], prm, g, &acc[d], &acc[k + d],
                                                  nullptr, nullptr);
        }
        row_log_volume<MODE>(la, ha, k, prm, dw.data());
        for (index_t d = 0; d < k; ++d) {
          g_lo_a[i * k + d] = T(acc[d] + total * double(dw[d]));
          g_hi_a[i * k + d] = T(acc[k + d] - total * double(dw[d]));
        }
      }
    });
    // Gradients of the b rows.
    group_by_row(idx_b, p, m, order, offsets);
    parallel_ranges(m, kRowBlock, [&](index_t j0, index_t j1) {
      std::vector<double> acc(static_cast<size_t>(2 * k));
      for (index_t j = j0; j < j1; ++j) {
        const T* lb = lo_b + j * k;
        const T* hb = hi_b + j * k;
        std::fill(acc.begin(), acc.end(), 0.0);
        for (index_t t = offsets[j]; t < offsets[j + 1]; ++t) {
          const index_t q = order[t];
          const double g = pair_g(q);
          if (g == 0.0) continue;
          const T* la = lo_a + idx_a[q] * k;
          const T* ha = hi_a + idx_a[q] * k;
          for (index_t d = 0; d < k; ++d)
            inter_log_width_grad<MODE, T, double>(la[d], ha[d], lb[d], hb[d], prm, g, nullptr, nullptr, &acc[d],
                                                  &acc[k + d]);
        }
        for (index_t d = 0; d < k; ++d) {
          g_lo_b[j * k + d] = T(acc[d]);
          g_hi_b[j * k + d] = T(acc[k + d]);
        }
      }
    });
  });
}

#define TL_BOXES_INSTANTIATE(T)                                                                              \
  template void log_volume_cpu<T>(const T*, const T*, index_t, index_t, const Options&, T*);                \
  template void log_volume_backward_cpu<T>(const T*, const T*, const T*, index_t, index_t, const Options&,  \
                                           T*, T*);                                                         \
  template void intersection_cpu<T>(const T*, const T*, const T*, const T*, index_t, index_t, const Options&, \
                                    T*, T*);                                                                \
  template void intersection_backward_cpu<T>(const T*, const T*, const T*, const T*, const T*, const T*,    \
                                             index_t, index_t, const Options&, T*, T*, T*, T*);             \
  template void containment_cpu<T>(const T*, const T*, index_t, const T*, const T*, index_t, index_t,       \
                                   const Options&, T*);                                                     \
  template void containment_backward_cpu<T>(const T*, const T*, index_t, const T*, const T*, index_t,       \
                                            index_t, const T*, const T*, const Options&, T*, T*, T*, T*);   \
  template void containment_pairs_cpu<T>(const T*, const T*, index_t, const T*, const T*, index_t, index_t, \
                                         const std::int64_t*, const std::int64_t*, index_t, const Options&, \
                                         T*);                                                               \
  template void containment_pairs_backward_cpu<T>(const T*, const T*, index_t, const T*, const T*, index_t, \
                                                  index_t, const std::int64_t*, const std::int64_t*,        \
                                                  index_t, const T*, const T*, const Options&, T*, T*, T*,  \
                                                  T*);

TL_BOXES_INSTANTIATE(float)
TL_BOXES_INSTANTIATE(double)

}  // namespace tasklens::boxes
