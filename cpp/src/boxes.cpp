// CPU box kernels. Work is split into blocks whose boundaries depend only on the problem size; every output
// element (and every gradient row) is produced by exactly one block, and partial sums across blocks are
// reduced in block order, so results are bit-identical for any thread count.
// Lets GCC if-convert the selects of the branch-free element math (FP exceptions are never inspected here);
// it changes no result. Must precede the includes so that the inline math in boxes_math.h gets it too.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif
#include "tasklens/boxes.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "tasklens/boxes_math.h"
#include "tasklens/parallel.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#define TL_BOXES_MXCSR 1
#endif

namespace tasklens::boxes {
namespace {

constexpr index_t kRowBlock = 16;      // rows of a per task in the dense kernels
constexpr index_t kMaxPartials = 32;   // at most this many column-gradient partial buffers (dense backward)
constexpr index_t kElemBlock = 4096;   // elements per task in elementwise kernels

// Denormal intermediates (exp of very negative numbers, squares of tiny numbers) would cost x86 CPUs a
// micro-code assist each; every block of every box kernel therefore runs with denormals flushed to zero
// (MXCSR FTZ + DAZ, restored afterwards). Such values are below 1e-38 (float32) / 1e-308 (float64) and
// contribute nothing at the precision of any result; all threads flush, so results stay thread-independent.
class FlushDenormals {
 public:
#ifdef TL_BOXES_MXCSR
  FlushDenormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | 0x8040u); }
  ~FlushDenormals() { _mm_setcsr(saved_); }

 private:
  unsigned saved_;
#endif
};

template <class F>
void run_blocks(index_t n, index_t block, F&& fn) {
  parallel_ranges(n, block, [&](index_t b0, index_t b1) {
    FlushDenormals flush;
    fn(b0, b1);
  });
}

template <class F>
void run_each_block(index_t n_blocks, F&& fn) {
  parallel_for(n_blocks, [&](index_t b) {
    FlushDenormals flush;
    fn(b);
  });
}

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
  run_blocks(n, kElemBlock / std::max<index_t>(k, 1) + 1, [&](index_t i0, index_t i1) {
    for (index_t i = i0; i < i1; ++i) out[i] = row_log_volume<VMODE>(lo + i * k, hi + i * k, k, p, (T*)nullptr);
  });
  return out;
}

template <class T>
T finish(double log_ratio, bool log_out) {
  const double ratio = tl_exp(log_ratio);  // computed in both cases: keeps the select branch-free
  return T(log_out ? log_ratio : ratio);
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
    run_blocks(n, kElemBlock / std::max<index_t>(k, 1) + 1, [&](index_t i0, index_t i1) {
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
    run_blocks(n * k, kElemBlock, [&](index_t e0, index_t e1) {
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
  run_blocks(n * k, kElemBlock, [&](index_t e0, index_t e1) {
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

template <class T>
void intersection_backward_cpu(const T* lo_a, const T* hi_a, const T* lo_b, const T* hi_b, const T* g_lo,
                               const T* g_hi, index_t n, index_t k, const Options& o, T* g_lo_a, T* g_hi_a,
                               T* g_lo_b, T* g_hi_b) {
  const auto p = make_params<T>(o.mode, o.volume_temperature, o.intersection_temperature);
  const bool gumbel = o.mode == kGumbel;
  run_blocks(n * k, kElemBlock, [&](index_t e0, index_t e1) {
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
//
// The dense kernels read b as structure-of-arrays (b_lo[d * m + j]) so that the innermost loop runs over
// kColTile consecutive columns j with one dimension d fixed; it is branch-free and the compiler vectorises it
// (the host elementary functions in boxes_math.h are inline polynomials). Per-lane accumulators are summed in
// a fixed order, so vector width never changes a result.

constexpr index_t kLaneTile = 256;  // columns per inner loop (lane accumulators fit in L1)

template <class T>
void transpose_soa(const T* x, index_t m, index_t k, T* xt) {
  run_blocks(m, kElemBlock, [&](index_t j0, index_t j1) {
    for (index_t d = 0; d < k; ++d)
      for (index_t j = j0; j < j1; ++j) xt[d * m + j] = x[j * k + d];
  });
}

#if defined(__GNUC__) && !defined(__clang__) && (defined(__x86_64__) || defined(__i386__))
#define TL_BOXES_X86_DISPATCH 1
#define TL_ALWAYS_INLINE __attribute__((always_inline)) inline
#else
#define TL_ALWAYS_INLINE inline
#endif

template <int MODE, class T>
TL_ALWAYS_INLINE void dense_forward_rows(const T* __restrict la_all, const T* __restrict ha_all, index_t i0, index_t i1,
                        const T* __restrict blo, const T* __restrict bhi, index_t m, index_t k, const Params<T>& p,
                        const double* __restrict lva, bool log_out, T* __restrict out) {
  double acc[kLaneTile];
  for (index_t j0 = 0; j0 < m; j0 += kLaneTile) {
    const index_t tc = std::min(kLaneTile, m - j0);
    for (index_t i = i0; i < i1; ++i) {
      for (index_t t = 0; t < tc; ++t) acc[t] = 0.0;
      for (index_t d = 0; d < k; ++d) {
        const T la = la_all[i * k + d], ha = ha_all[i * k + d];
        const T* __restrict bl = blo + d * m + j0;
        const T* __restrict bh = bhi + d * m + j0;
#pragma GCC ivdep
        for (index_t t = 0; t < tc; ++t) acc[t] += double(inter_log_width<MODE>(la, ha, bl[t], bh[t], p));
      }
      T* __restrict row = out + i * m + j0;
      const double lv = lva[i];
#pragma GCC ivdep
      for (index_t t = 0; t < tc; ++t) row[t] = finish<T>(acc[t] - lv, log_out);
    }
  }
}

// Rows [i0, i1) of the backward: gradients of those a rows (written), and their contributions to every b row
// added into the block's partial buffers part_lo/part_hi (SoA, d * m + j).
template <int MODE, class T>
TL_ALWAYS_INLINE void dense_backward_rows(const T* __restrict lo_a, const T* __restrict hi_a, index_t i0, index_t i1,
                         const T* __restrict blo, const T* __restrict bhi, index_t m, index_t k,
                         const T* __restrict out, const T* __restrict grad, const Params<T>& p, bool log_out,
                         double* __restrict lanes, double* __restrict part_lo, double* __restrict part_hi,
                         T* __restrict g_lo_a, T* __restrict g_hi_a) {
  double g[kLaneTile];
  double* __restrict lane_lo = lanes;                // k x kLaneTile
  double* __restrict lane_hi = lanes + k * kLaneTile;  // k x kLaneTile
  for (index_t i = i0; i < i1; ++i) {
    for (index_t t = 0; t < 2 * k * kLaneTile; ++t) lanes[t] = 0.0;
    double total = 0.0;  // sum of g over the row: the gradient of -log vol(a_i)
    for (index_t j0 = 0; j0 < m; j0 += kLaneTile) {
      const index_t tc = std::min(kLaneTile, m - j0);
      const T* __restrict go = grad + i * m + j0;
      const T* __restrict oo = out + i * m + j0;
      for (index_t t = 0; t < tc; ++t) g[t] = log_out ? double(go[t]) : double(go[t]) * double(oo[t]);
      for (index_t t = 0; t < tc; ++t) total += g[t];
      for (index_t d = 0; d < k; ++d) {
        const T la = lo_a[i * k + d], ha = hi_a[i * k + d];
        const T* __restrict bl = blo + d * m + j0;
        const T* __restrict bh = bhi + d * m + j0;
        double* __restrict rl = lane_lo + d * kLaneTile;
        double* __restrict rh = lane_hi + d * kLaneTile;
        double* __restrict pl = part_lo + d * m + j0;
        double* __restrict ph = part_hi + d * m + j0;
#pragma GCC ivdep
        for (index_t t = 0; t < tc; ++t) {
          const auto c = inter_log_width_grad<MODE, T, double>(la, ha, bl[t], bh[t], p, g[t]);
          rl[t] += c.lo_a;
          rh[t] += c.hi_a;
          pl[t] += c.lo_b;
          ph[t] += c.hi_b;
        }
      }
    }
    for (index_t d = 0; d < k; ++d) {
      double sl = 0.0, sh = 0.0;
      for (index_t t = 0; t < kLaneTile; ++t) {
        sl += lane_lo[d * kLaneTile + t];
        sh += lane_hi[d * kLaneTile + t];
      }
      T dw;
      log_width<MODE>(hi_a[i * k + d] - lo_a[i * k + d], p, &dw);
      g_lo_a[i * k + d] = T(sl + total * double(dw));
      g_hi_a[i * k + d] = T(sh - total * double(dw));
    }
  }
}

// The tile loops compiled three times: for the baseline ISA and, on x86-64, for AVX2 + FMA and for AVX-512
// (the best one the CPU supports is chosen at run time).
// Both variants compute the same formulas; FMA contraction can change the last bits, so results are
// reproducible on one machine (any thread count) but not necessarily across CPU generations.
template <int MODE, class T>
void dense_forward_generic(const T* la, const T* ha, index_t i0, index_t i1, const T* blo, const T* bhi, index_t m,
                           index_t k, const Params<T>& p, const double* lva, bool log_out, T* out) {
  dense_forward_rows<MODE>(la, ha, i0, i1, blo, bhi, m, k, p, lva, log_out, out);
}
template <int MODE, class T>
void dense_backward_generic(const T* lo_a, const T* hi_a, index_t i0, index_t i1, const T* blo, const T* bhi,
                            index_t m, index_t k, const T* out, const T* grad, const Params<T>& p, bool log_out,
                            double* lanes, double* part_lo, double* part_hi, T* g_lo_a, T* g_hi_a) {
  dense_backward_rows<MODE>(lo_a, hi_a, i0, i1, blo, bhi, m, k, out, grad, p, log_out, lanes, part_lo, part_hi,
                            g_lo_a, g_hi_a);
}
#ifdef TL_BOXES_X86_DISPATCH
#define TL_BOXES_ISA_VARIANT(NAME, TARGET)                                                                   \
  template <int MODE, class T>                                                                             \
  __attribute__((target(TARGET))) void dense_forward_##NAME(const T* la, const T* ha, index_t i0, index_t i1, \
                                                            const T* blo, const T* bhi, index_t m, index_t k, \
                                                            const Params<T>& p, const double* lva,          \
                                                            bool log_out, T* out) {                         \
    dense_forward_rows<MODE>(la, ha, i0, i1, blo, bhi, m, k, p, lva, log_out, out);                        \
  }                                                                                                        \
  template <int MODE, class T>                                                                             \
  __attribute__((target(TARGET))) void dense_backward_##NAME(                                              \
      const T* lo_a, const T* hi_a, index_t i0, index_t i1, const T* blo, const T* bhi, index_t m, index_t k, \
      const T* out, const T* grad, const Params<T>& p, bool log_out, double* lanes, double* part_lo,       \
      double* part_hi, T* g_lo_a, T* g_hi_a) {                                                             \
    dense_backward_rows<MODE>(lo_a, hi_a, i0, i1, blo, bhi, m, k, out, grad, p, log_out, lanes, part_lo,    \
                              part_hi, g_lo_a, g_hi_a);                                                    \
  }
TL_BOXES_ISA_VARIANT(avx2, "avx2,fma")
TL_BOXES_ISA_VARIANT(avx512, "avx512f,avx512dq,avx512vl,avx512bw,avx2,fma,prefer-vector-width=512")
#undef TL_BOXES_ISA_VARIANT

enum class Isa { kBase, kAvx2, kAvx512 };
// The best variant the CPU supports; the environment variable TASKLENS_BOXES_ISA (baseline, avx2, avx512),
// read once, caps it (used by the tests to exercise every variant on one machine).
Isa detect_isa() {
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
  Isa best = avx512 ? Isa::kAvx512 : (avx2 ? Isa::kAvx2 : Isa::kBase);
  if (const char* cap = std::getenv("TASKLENS_BOXES_ISA")) {
    const std::string c(cap);
    if (c == "baseline") best = Isa::kBase;
    else if (c == "avx2" && best == Isa::kAvx512) best = Isa::kAvx2;
  }
  return best;
}
Isa cpu_isa() {
  static const Isa isa = detect_isa();
  return isa;
}
#endif

template <int MODE, class T>
void containment_dense(const T* lo_a, const T* hi_a, index_t n, const T* lo_b, const T* hi_b, index_t m,
                       index_t k, const Params<T>& p, bool log_out, T* out) {
  const std::vector<double> lva = log_volumes<MODE>(lo_a, hi_a, n, k, p);
  std::vector<T> bt(static_cast<size_t>(2 * k * m));
  transpose_soa(lo_b, m, k, bt.data());
  transpose_soa(hi_b, m, k, bt.data() + k * m);
  run_blocks(n, kRowBlock, [&](index_t i0, index_t i1) {
#ifdef TL_BOXES_X86_DISPATCH
    const Isa isa = cpu_isa();
    if (isa != Isa::kBase) {
      (isa == Isa::kAvx512 ? dense_forward_avx512<MODE, T> : dense_forward_avx2<MODE, T>)(
          lo_a, hi_a, i0, i1, bt.data(), bt.data() + k * m, m, k, p, lva.data(), log_out, out);
      return;
    }
#endif
    dense_forward_generic<MODE>(lo_a, hi_a, i0, i1, bt.data(), bt.data() + k * m, m, k, p, lva.data(), log_out, out);
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
// rows; each block also sums its contributions to every b row into its own partial buffers, which are
// added in block order afterwards. The block size depends only on n (at most kMaxPartials blocks).
template <int MODE, class T>
void containment_dense_backward(const T* lo_a, const T* hi_a, index_t n, const T* lo_b, const T* hi_b, index_t m,
                                index_t k, const T* out, const T* grad, const Params<T>& p, bool log_out,
                                T* g_lo_a, T* g_hi_a, T* g_lo_b, T* g_hi_b) {
  const index_t rows = std::max<index_t>(kRowBlock, (n + kMaxPartials - 1) / kMaxPartials);
  const index_t blocks = (n + rows - 1) / rows;
  std::vector<T> bt(static_cast<size_t>(2 * k * m));
  transpose_soa(lo_b, m, k, bt.data());
  transpose_soa(hi_b, m, k, bt.data() + k * m);
  std::vector<double> partial(static_cast<size_t>(blocks * 2 * k * m));  // per block: lo (k x m), hi (k x m)
  run_each_block(blocks, [&](index_t b) {
    double* part = partial.data() + b * 2 * k * m;
    std::fill(part, part + 2 * k * m, 0.0);
    std::vector<double> lanes(static_cast<size_t>(2 * k * kLaneTile));
    const index_t i0 = b * rows, i1 = std::min(n, (b + 1) * rows);
#ifdef TL_BOXES_X86_DISPATCH
    const Isa isa = cpu_isa();
    if (isa != Isa::kBase) {
      (isa == Isa::kAvx512 ? dense_backward_avx512<MODE, T> : dense_backward_avx2<MODE, T>)(
          lo_a, hi_a, i0, i1, bt.data(), bt.data() + k * m, m, k, out, grad, p, log_out, lanes.data(), part,
          part + k * m, g_lo_a, g_hi_a);
      return;
    }
#endif
    dense_backward_generic<MODE>(lo_a, hi_a, i0, i1, bt.data(), bt.data() + k * m, m, k, out, grad, p, log_out,
                                 lanes.data(), part, part + k * m, g_lo_a, g_hi_a);
  });
  // Reduction of the partials in block order; columns per task sized so that a task has ~64k additions.
  // (n == 0: no blocks, the b gradients are zeros; the divisor is kept >= 1.)
  run_blocks(m, std::max<index_t>(256, (index_t(1) << 16) / std::max<index_t>(1, blocks * 2 * k)),
             [&](index_t j0, index_t j1) {
    for (index_t j = j0; j < j1; ++j) {
      for (index_t d = 0; d < k; ++d) {
        double sl = 0.0, sh = 0.0;
        for (index_t b = 0; b < blocks; ++b) {
          sl += partial[(b * 2 * k + d) * m + j];
          sh += partial[(b * 2 * k + k + d) * m + j];
        }
        g_lo_b[j * k + d] = T(sl);
        g_hi_b[j * k + d] = T(sh);
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
    run_blocks(p, kElemBlock / std::max<index_t>(k, 1) + 1, [&](index_t q0, index_t q1) {
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

// Gradients of the rows of one side (SIDE_A: the a rows, including the -log vol(a_i) term; else the b rows)
// of the paired containment. order/offsets group the pairs by that side's row (stable counting sort); each
// row's gradient is summed over its pairs in increasing pair order by one task.
template <int MODE, bool SIDE_A, class T>
void pairs_backward_side(const T* lo_a, const T* hi_a, const T* lo_b, const T* hi_b, index_t rows, index_t k,
                         const std::int64_t* idx_other, const std::vector<index_t>& order,
                         const std::vector<index_t>& offsets, const T* out, const T* grad, const Params<T>& prm,
                         bool log_out, T* g_lo, T* g_hi) {
  const T* own_lo = SIDE_A ? lo_a : lo_b;
  const T* own_hi = SIDE_A ? hi_a : hi_b;
  const T* oth_lo = SIDE_A ? lo_b : lo_a;
  const T* oth_hi = SIDE_A ? hi_b : hi_a;
  run_blocks(rows, kRowBlock, [&](index_t r0, index_t r1) {
    std::vector<double> acc(static_cast<size_t>(2 * k));
    std::vector<T> dw(static_cast<size_t>(k));
    for (index_t r = r0; r < r1; ++r) {
      const T* ml = own_lo + r * k;
      const T* mh = own_hi + r * k;
      std::fill(acc.begin(), acc.end(), 0.0);
      double total = 0.0;
      for (index_t t = offsets[r]; t < offsets[r + 1]; ++t) {
        const index_t q = order[t];
        const double g = log_out ? double(grad[q]) : double(grad[q]) * double(out[q]);
        if (g == 0.0) continue;
        total += g;
        const T* ol = oth_lo + idx_other[q] * k;
        const T* oh = oth_hi + idx_other[q] * k;
        for (index_t d = 0; d < k; ++d) {
          if (SIDE_A) {
            const auto c = inter_log_width_grad<MODE, T, double>(ml[d], mh[d], ol[d], oh[d], prm, g);
            acc[d] += c.lo_a;
            acc[k + d] += c.hi_a;
          } else {
            const auto c = inter_log_width_grad<MODE, T, double>(ol[d], oh[d], ml[d], mh[d], prm, g);
            acc[d] += c.lo_b;
            acc[k + d] += c.hi_b;
          }
        }
      }
      if (SIDE_A) {
        row_log_volume<MODE>(ml, mh, k, prm, dw.data());
        for (index_t d = 0; d < k; ++d) {
          acc[d] += total * double(dw[d]);
          acc[k + d] -= total * double(dw[d]);
        }
      }
      for (index_t d = 0; d < k; ++d) {
        g_lo[r * k + d] = T(acc[d]);
        g_hi[r * k + d] = T(acc[k + d]);
      }
    }
  });
}

template <class T>
void containment_pairs_backward_cpu(const T* lo_a, const T* hi_a, index_t n, const T* lo_b, const T* hi_b,
                                    index_t m, index_t k, const std::int64_t* idx_a, const std::int64_t* idx_b,
                                    index_t p, const T* out, const T* grad, const Options& o, T* g_lo_a,
                                    T* g_hi_a, T* g_lo_b, T* g_hi_b) {
  const auto prm = make_params<T>(o.mode, o.volume_temperature, o.intersection_temperature);
  with_mode(o.mode, [&](auto M) {
    constexpr int MODE = decltype(M)::value;
    std::vector<index_t> order, offsets;
    group_by_row(idx_a, p, n, order, offsets);
    pairs_backward_side<MODE, true>(lo_a, hi_a, lo_b, hi_b, n, k, idx_b, order, offsets, out, grad, prm, o.log,
                                    g_lo_a, g_hi_a);
    group_by_row(idx_b, p, m, order, offsets);
    pairs_backward_side<MODE, false>(lo_a, hi_a, lo_b, hi_b, m, k, idx_a, order, offsets, out, grad, prm, o.log,
                                     g_lo_b, g_hi_b);
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
