// CUDA box kernels. The per-element math is shared with the CPU kernels (cpp/include/tasklens/boxes_math.h).
//
// Determinism: no atomics. The dense forward gives each output to one thread (tiles of a and b staged in
// shared memory); the dense backward gives each (row of a, dimension) and each (row of b, dimension) to one
// thread that sums over the other side in a fixed order; the paired backward walks each row's pairs in
// the stable order prepared by the caller. Sums are accumulated in double, as on the CPU.
//
// Shared tiles are padded by one element per row ([kTile][kDimChunk + 1], [rows][kPairTile + 1]): a row stride of
// 33 words (float) or 66 words (double) puts the 16 rows that a half-warp reads at one dimension in distinct banks
// (unpadded, all 16 fell into one bank). Grids: blockIdx.y is at most 65,535 per launch; the launchers loop over
// chunks of row tiles (dense forward) and of dimension chunks (dense backward).
#include <algorithm>
#include <stdexcept>
#include <string>

#include "cuda_common.cuh"
#include "tasklens/boxes.h"
#include "tasklens/boxes_math.h"

namespace tasklens::boxes::cuda {
namespace {

using tasklens::cuda::as_stream;
using tasklens::cuda::blocks_for;
using tasklens::cuda::check_launch;
using tasklens::cuda::DeviceGuard;

constexpr int kThreads = 256;
constexpr int kTile = 16;    // dense forward: kTile x kTile pairs per block
constexpr int kDimChunk = 32;  // dimensions staged in shared memory at a time
constexpr int kPairTile = 32;  // dense backward: columns (or rows) of the other side staged per step
constexpr int kPairStride = kPairTile + 1;  // padded row stride of the staged gradients
constexpr index_t kMaxGridY = 65535;       // gridDim.y limit

template <class F>
void with_dtype_mode(DType dtype, int mode, F&& f) {
  auto by_mode = [&](auto t) {
    using T = decltype(t);
    switch (mode) {
      case kHard: f(T(), std::integral_constant<int, kHard>()); break;
      case kSoft: f(T(), std::integral_constant<int, kSoft>()); break;
      case kGumbel: f(T(), std::integral_constant<int, kGumbel>()); break;
      default: throw std::invalid_argument("tasklens boxes CUDA: unknown mode " + std::to_string(mode));
    }
  };
  if (dtype == DType::float32) by_mode(float());
  else if (dtype == DType::float64) by_mode(double());
  else throw std::invalid_argument("tasklens boxes CUDA: unknown dtype code " + std::to_string(int(dtype)));
}

template <class T>
const T* cp(std::uintptr_t p) { return reinterpret_cast<const T*>(p); }
template <class T>
T* mp(std::uintptr_t p) { return reinterpret_cast<T*>(p); }

template <int VMODE, class T>
__device__ double row_log_volume(const T* lo, const T* hi, index_t k, const Params<T>& p) {
  double s = 0.0;
  for (index_t d = 0; d < k; ++d) s += double(log_width<VMODE>(hi[d] - lo[d], p, (T*)nullptr));
  return s;
}

// ------------------------------------------------------------------------------------------ elementwise

template <int VMODE, class T>
__global__ void log_volume_kernel(const T* lo, const T* hi, index_t n, index_t k, Params<T> p, T* out) {
  const index_t i = blockIdx.x * index_t(blockDim.x) + threadIdx.x;
  if (i < n) out[i] = T(row_log_volume<VMODE>(lo + i * k, hi + i * k, k, p));
}

template <int VMODE, class T>
__global__ void log_volume_backward_kernel(const T* lo, const T* hi, const T* grad, index_t n, index_t k,
                                           Params<T> p, T* g_lo, T* g_hi) {
  const index_t e = blockIdx.x * index_t(blockDim.x) + threadIdx.x;
  if (e >= n * k) return;
  T dw;
  log_width<VMODE>(hi[e] - lo[e], p, &dw);
  const double g = double(grad[e / k]) * double(dw);
  g_lo[e] = T(-g);
  g_hi[e] = T(g);
}

template <class T>
__global__ void intersection_kernel(const T* lo_a, const T* hi_a, const T* lo_b, const T* hi_b, index_t total,
                                    bool gumbel, bool clip, Params<T> p, T* lo, T* hi) {
  const index_t e = blockIdx.x * index_t(blockDim.x) + threadIdx.x;
  if (e >= total) return;
  if (gumbel) {
    intersect<true>(lo_a[e], hi_a[e], lo_b[e], hi_b[e], p, lo + e, hi + e);
    if (clip) {
      lo[e] = tl_max(lo[e], tl_max(lo_a[e], lo_b[e]));
      hi[e] = tl_min(hi[e], tl_min(hi_a[e], hi_b[e]));
    }
  } else {
    intersect<false>(lo_a[e], hi_a[e], lo_b[e], hi_b[e], p, lo + e, hi + e);
  }
}

template <class T>
__global__ void intersection_backward_kernel(const T* lo_a, const T* hi_a, const T* lo_b, const T* hi_b,
                                             const T* g_lo, const T* g_hi, index_t total, bool gumbel, bool clip,
                                             Params<T> p, T* g_lo_a, T* g_hi_a, T* g_lo_b, T* g_hi_b) {
  const index_t e = blockIdx.x * index_t(blockDim.x) + threadIdx.x;
  if (e >= total) return;
  T da, db;
  corner_grad(lo_a[e], lo_b[e], gumbel, clip, p, &da, &db);
  g_lo_a[e] = g_lo[e] * da;
  g_lo_b[e] = g_lo[e] * db;
  corner_grad(-hi_a[e], -hi_b[e], gumbel, clip, p, &da, &db);
  g_hi_a[e] = g_hi[e] * da;
  g_hi_b[e] = g_hi[e] * db;
}

// ------------------------------------------------------------------------------------ dense containment

// Block (kTile x kTile threads) computes out[i0:i0+kTile, j0:j0+kTile]; corners of its a rows and b rows are
// staged in shared memory kDimChunk dimensions at a time.
template <int MODE, class T>
__global__ void containment_kernel(const T* lo_a, const T* hi_a, index_t n, const T* lo_b, const T* hi_b,
                                   index_t m, index_t k, Params<T> p, bool log_out, index_t row_base, T* out) {
  __shared__ T s_la[kTile][kDimChunk + 1], s_ha[kTile][kDimChunk + 1], s_lb[kTile][kDimChunk + 1],
      s_hb[kTile][kDimChunk + 1];
  __shared__ double s_lva[kTile];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const index_t i0 = row_base + index_t(blockIdx.y) * kTile, j0 = index_t(blockIdx.x) * kTile;
  const index_t i = i0 + ty, j = j0 + tx;
  if (tx == 0) s_lva[ty] = i < n ? row_log_volume<MODE>(lo_a + i * k, hi_a + i * k, k, p) : 0.0;
  double s = 0.0;
  for (index_t d0 = 0; d0 < k; d0 += kDimChunk) {
    const int dc = int(k - d0 < kDimChunk ? k - d0 : kDimChunk);
    __syncthreads();
    for (int t = tx; t < dc; t += kTile) {  // row ty of each tile, dimensions d0 + t
      if (i0 + ty < n) {
        s_la[ty][t] = lo_a[(i0 + ty) * k + d0 + t];
        s_ha[ty][t] = hi_a[(i0 + ty) * k + d0 + t];
      }
      if (j0 + ty < m) {
        s_lb[ty][t] = lo_b[(j0 + ty) * k + d0 + t];
        s_hb[ty][t] = hi_b[(j0 + ty) * k + d0 + t];
      }
    }
    __syncthreads();
    if (i < n && j < m)
      for (int d = 0; d < dc; ++d) s += double(inter_log_width<MODE>(s_la[ty][d], s_ha[ty][d], s_lb[tx][d], s_hb[tx][d], p));
  }
  __syncthreads();
  if (i < n && j < m) {
    const double L = s - s_lva[ty];
    out[i * m + j] = T(log_out ? L : exp(L));
  }
}

// Gradients of one side. SIDE_A: thread (r, d) owns row i of a and dimension d and sums over all j of b;
// otherwise it owns row j of b and sums over all i of a. Both read g[i, j] = dLoss/dlog d(a_i, b_j) tiles
// staged in shared memory. rows_per_block x dims_per_block threads, dims_per_block = min(k, kDimChunk).
template <int MODE, bool SIDE_A, class T>
__global__ void containment_backward_kernel(const T* lo_a, const T* hi_a, index_t n, const T* lo_b, const T* hi_b,
                                            index_t m, index_t k, const T* out, const T* grad, Params<T> p,
                                            bool log_out, int rows_per_block, int dims_per_block, index_t dim_base,
                                            T* g_lo, T* g_hi) {
  extern __shared__ unsigned char smem[];
  double* s_g = reinterpret_cast<double*>(smem);                         // [rows_per_block][kPairStride]
  T* s_lo = reinterpret_cast<T*>(s_g + rows_per_block * kPairStride);   // [kPairTile][dims_per_block]
  T* s_hi = s_lo + kPairTile * dims_per_block;
  const int tid = threadIdx.x;
  const int r = tid / dims_per_block, dl = tid % dims_per_block;
  const index_t own = index_t(blockIdx.x) * rows_per_block + r;  // owned row (of a or of b)
  const index_t dim0 = dim_base + index_t(blockIdx.y) * dims_per_block;
  const index_t d = dim0 + dl;
  const index_t n_own = SIDE_A ? n : m, n_other = SIDE_A ? m : n;
  const bool active = r < rows_per_block && own < n_own && d < k;
  const T* own_lo = SIDE_A ? lo_a : lo_b;
  const T* own_hi = SIDE_A ? hi_a : hi_b;
  const T* oth_lo = SIDE_A ? lo_b : lo_a;
  const T* oth_hi = SIDE_A ? hi_b : hi_a;
  const T my_lo = active ? own_lo[own * k + d] : T(0);
  const T my_hi = active ? own_hi[own * k + d] : T(0);
  double acc_lo = 0.0, acc_hi = 0.0, total = 0.0;
  const int n_threads = blockDim.x;
  for (index_t t0 = 0; t0 < n_other; t0 += kPairTile) {
    const int tc = int(n_other - t0 < kPairTile ? n_other - t0 : kPairTile);
    __syncthreads();
    for (int e = tid; e < rows_per_block * kPairTile; e += n_threads) {
      const int rr = e / kPairTile, cc = e % kPairTile;
      const index_t o = index_t(blockIdx.x) * rows_per_block + rr;
      double g = 0.0;
      if (o < n_own && cc < tc) {
        const index_t ij = SIDE_A ? o * m + (t0 + cc) : (t0 + cc) * m + o;
        g = log_out ? double(grad[ij]) : double(grad[ij]) * double(out[ij]);
      }
      s_g[rr * kPairStride + cc] = g;
    }
    for (int e = tid; e < kPairTile * dims_per_block; e += n_threads) {
      const int cc = e / dims_per_block, dd = e % dims_per_block;
      const index_t dg = dim0 + dd;
      const bool ok = cc < tc && dg < k;
      s_lo[e] = ok ? oth_lo[(t0 + cc) * k + dg] : T(0);
      s_hi[e] = ok ? oth_hi[(t0 + cc) * k + dg] : T(0);
    }
    __syncthreads();
    if (active) {
      for (int c = 0; c < tc; ++c) {
        const double g = s_g[r * kPairStride + c];
        if (g == 0.0) continue;
        total += g;
        const T ol = s_lo[c * dims_per_block + dl], oh = s_hi[c * dims_per_block + dl];
        if (SIDE_A) {
          const auto c = inter_log_width_grad<MODE, T, double>(my_lo, my_hi, ol, oh, p, g);
          acc_lo += c.lo_a;
          acc_hi += c.hi_a;
        } else {
          const auto c = inter_log_width_grad<MODE, T, double>(ol, oh, my_lo, my_hi, p, g);
          acc_lo += c.lo_b;
          acc_hi += c.hi_b;
        }
      }
    }
  }
  if (!active) return;
  if (SIDE_A) {  // the -log vol(a_i) term
    T dw;
    log_width<MODE>(my_hi - my_lo, p, &dw);
    acc_lo += total * double(dw);
    acc_hi -= total * double(dw);
  }
  g_lo[own * k + d] = T(acc_lo);
  g_hi[own * k + d] = T(acc_hi);
}

// ------------------------------------------------------------------------------------ paired containment

template <int MODE, class T>
__global__ void pairs_kernel(const T* lo_a, const T* hi_a, const T* lo_b, const T* hi_b, index_t k,
                             const std::int64_t* idx_a, const std::int64_t* idx_b, index_t np, Params<T> p,
                             bool log_out, T* out) {
  const index_t q = blockIdx.x * index_t(blockDim.x) + threadIdx.x;
  if (q >= np) return;
  const index_t i = idx_a[q], j = idx_b[q];
  double s = 0.0;
  for (index_t d = 0; d < k; ++d)
    s += double(inter_log_width<MODE>(lo_a[i * k + d], hi_a[i * k + d], lo_b[j * k + d], hi_b[j * k + d], p));
  const double L = s - row_log_volume<MODE>(lo_a + i * k, hi_a + i * k, k, p);
  out[q] = T(log_out ? L : exp(L));
}

// Thread per (owned row, dimension): walks the row's pairs order[offsets[row]:offsets[row + 1]].
template <int MODE, bool SIDE_A, class T>
__global__ void pairs_backward_kernel(const T* lo_a, const T* hi_a, const T* lo_b, const T* hi_b, index_t rows,
                                      index_t k, const std::int64_t* idx_other, const std::int64_t* order,
                                      const std::int64_t* offsets, const T* out, const T* grad, Params<T> p,
                                      bool log_out, T* g_lo, T* g_hi) {
  const index_t e = blockIdx.x * index_t(blockDim.x) + threadIdx.x;
  if (e >= rows * k) return;
  const index_t row = e / k, d = e % k;
  const T my_lo = SIDE_A ? lo_a[e] : lo_b[e];
  const T my_hi = SIDE_A ? hi_a[e] : hi_b[e];
  const T* oth_lo = SIDE_A ? lo_b : lo_a;
  const T* oth_hi = SIDE_A ? hi_b : hi_a;
  double acc_lo = 0.0, acc_hi = 0.0, total = 0.0;
  for (std::int64_t t = offsets[row]; t < offsets[row + 1]; ++t) {
    const std::int64_t q = order[t];
    const double g = log_out ? double(grad[q]) : double(grad[q]) * double(out[q]);
    if (g == 0.0) continue;
    total += g;
    const index_t o = idx_other[q] * k + d;
    if (SIDE_A) {
      const auto c = inter_log_width_grad<MODE, T, double>(my_lo, my_hi, oth_lo[o], oth_hi[o], p, g);
      acc_lo += c.lo_a;
      acc_hi += c.hi_a;
    } else {
      const auto c = inter_log_width_grad<MODE, T, double>(oth_lo[o], oth_hi[o], my_lo, my_hi, p, g);
      acc_lo += c.lo_b;
      acc_hi += c.hi_b;
    }
  }
  if (SIDE_A) {
    T dw;
    log_width<MODE>(my_hi - my_lo, p, &dw);
    acc_lo += total * double(dw);
    acc_hi -= total * double(dw);
  }
  g_lo[e] = T(acc_lo);
  g_hi[e] = T(acc_hi);
}

}  // namespace

// ------------------------------------------------------------------------------------------- launchers

void log_volume(DType dtype, std::uintptr_t lo, std::uintptr_t hi, index_t n, index_t k, const Options& o,
                std::uintptr_t out, int device, std::uintptr_t stream) {
  if (n == 0) return;
  DeviceGuard guard(device);
  with_dtype_mode(dtype, o.mode, [&](auto t, auto M) {
    using T = decltype(t);
    const auto p = make_params<T>(o.mode, o.volume_temperature, o.intersection_temperature);
    log_volume_kernel<decltype(M)::value, T><<<blocks_for(n, kThreads), kThreads, 0, as_stream(stream)>>>(
        cp<T>(lo), cp<T>(hi), n, k, p, mp<T>(out));
  });
  check_launch();
}

void log_volume_backward(DType dtype, std::uintptr_t lo, std::uintptr_t hi, std::uintptr_t grad, index_t n,
                         index_t k, const Options& o, std::uintptr_t g_lo, std::uintptr_t g_hi, int device,
                         std::uintptr_t stream) {
  if (n * k == 0) return;
  DeviceGuard guard(device);
  with_dtype_mode(dtype, o.mode, [&](auto t, auto M) {
    using T = decltype(t);
    const auto p = make_params<T>(o.mode, o.volume_temperature, o.intersection_temperature);
    log_volume_backward_kernel<decltype(M)::value, T><<<blocks_for(n * k, kThreads), kThreads, 0,
                                                        as_stream(stream)>>>(cp<T>(lo), cp<T>(hi), cp<T>(grad), n, k,
                                                                             p, mp<T>(g_lo), mp<T>(g_hi));
  });
  check_launch();
}

void intersection(DType dtype, std::uintptr_t lo_a, std::uintptr_t hi_a, std::uintptr_t lo_b, std::uintptr_t hi_b,
                  index_t n, index_t k, const Options& o, std::uintptr_t lo, std::uintptr_t hi, int device,
                  std::uintptr_t stream) {
  if (n * k == 0) return;
  DeviceGuard guard(device);
  with_dtype_mode(dtype, o.mode, [&](auto t, auto) {
    using T = decltype(t);
    const auto p = make_params<T>(o.mode, o.volume_temperature, o.intersection_temperature);
    intersection_kernel<T><<<blocks_for(n * k, kThreads), kThreads, 0, as_stream(stream)>>>(
        cp<T>(lo_a), cp<T>(hi_a), cp<T>(lo_b), cp<T>(hi_b), n * k, o.mode == kGumbel, o.clip, p, mp<T>(lo),
        mp<T>(hi));
  });
  check_launch();
}

void intersection_backward(DType dtype, std::uintptr_t lo_a, std::uintptr_t hi_a, std::uintptr_t lo_b,
                           std::uintptr_t hi_b, std::uintptr_t g_lo, std::uintptr_t g_hi, index_t n, index_t k,
                           const Options& o, std::uintptr_t g_lo_a, std::uintptr_t g_hi_a, std::uintptr_t g_lo_b,
                           std::uintptr_t g_hi_b, int device, std::uintptr_t stream) {
  if (n * k == 0) return;
  DeviceGuard guard(device);
  with_dtype_mode(dtype, o.mode, [&](auto t, auto) {
    using T = decltype(t);
    const auto p = make_params<T>(o.mode, o.volume_temperature, o.intersection_temperature);
    intersection_backward_kernel<T><<<blocks_for(n * k, kThreads), kThreads, 0, as_stream(stream)>>>(
        cp<T>(lo_a), cp<T>(hi_a), cp<T>(lo_b), cp<T>(hi_b), cp<T>(g_lo), cp<T>(g_hi), n * k, o.mode == kGumbel,
        o.clip, p, mp<T>(g_lo_a), mp<T>(g_hi_a), mp<T>(g_lo_b), mp<T>(g_hi_b));
  });
  check_launch();
}

void containment(DType dtype, std::uintptr_t lo_a, std::uintptr_t hi_a, index_t n, std::uintptr_t lo_b,
                 std::uintptr_t hi_b, index_t m, index_t k, const Options& o, std::uintptr_t out, int device,
                 std::uintptr_t stream) {
  if (n == 0 || m == 0) return;
  DeviceGuard guard(device);
  const dim3 block(kTile, kTile);
  const index_t row_tiles = (n + kTile - 1) / kTile;
  with_dtype_mode(dtype, o.mode, [&](auto t, auto M) {
    using T = decltype(t);
    const auto p = make_params<T>(o.mode, o.volume_temperature, o.intersection_temperature);
    for (index_t t0 = 0; t0 < row_tiles; t0 += kMaxGridY) {  // gridDim.y <= 65535: chunks of row tiles
      const dim3 grid(blocks_for(m, kTile), unsigned(std::min(kMaxGridY, row_tiles - t0)));
      containment_kernel<decltype(M)::value, T><<<grid, block, 0, as_stream(stream)>>>(
          cp<T>(lo_a), cp<T>(hi_a), n, cp<T>(lo_b), cp<T>(hi_b), m, k, p, o.log, t0 * kTile, mp<T>(out));
      check_launch();
    }
  });
}

void containment_backward(DType dtype, std::uintptr_t lo_a, std::uintptr_t hi_a, index_t n, std::uintptr_t lo_b,
                          std::uintptr_t hi_b, index_t m, index_t k, std::uintptr_t out, std::uintptr_t grad,
                          const Options& o, std::uintptr_t g_lo_a, std::uintptr_t g_hi_a, std::uintptr_t g_lo_b,
                          std::uintptr_t g_hi_b, int device, std::uintptr_t stream) {
  if (k == 0) return;
  DeviceGuard guard(device);
  const int dims = int(std::min<index_t>(k, kDimChunk));
  const int rows = std::min(64, kThreads / dims);  // keeps shared memory under 24 KiB
  with_dtype_mode(dtype, o.mode, [&](auto t, auto M) {
    using T = decltype(t);
    constexpr int MODE = decltype(M)::value;
    const auto p = make_params<T>(o.mode, o.volume_temperature, o.intersection_temperature);
    const size_t smem = size_t(rows) * kPairStride * sizeof(double) + 2 * size_t(kPairTile) * dims * sizeof(T);
    const index_t dim_chunks = (k + dims - 1) / dims;
    for (index_t c0 = 0; c0 < dim_chunks; c0 += kMaxGridY) {  // gridDim.y <= 65535: chunks of dimension chunks
      const unsigned gy = unsigned(std::min(kMaxGridY, dim_chunks - c0));
      if (n > 0) {
        containment_backward_kernel<MODE, true, T><<<dim3(blocks_for(n, rows), gy), rows * dims, smem,
                                                     as_stream(stream)>>>(
            cp<T>(lo_a), cp<T>(hi_a), n, cp<T>(lo_b), cp<T>(hi_b), m, k, cp<T>(out), cp<T>(grad), p, o.log, rows,
            dims, c0 * dims, mp<T>(g_lo_a), mp<T>(g_hi_a));
        check_launch();
      }
      if (m > 0) {
        containment_backward_kernel<MODE, false, T><<<dim3(blocks_for(m, rows), gy), rows * dims, smem,
                                                      as_stream(stream)>>>(
            cp<T>(lo_a), cp<T>(hi_a), n, cp<T>(lo_b), cp<T>(hi_b), m, k, cp<T>(out), cp<T>(grad), p, o.log, rows,
            dims, c0 * dims, mp<T>(g_lo_b), mp<T>(g_hi_b));
        check_launch();
      }
    }
  });
}

void containment_pairs(DType dtype, std::uintptr_t lo_a, std::uintptr_t hi_a, index_t n, std::uintptr_t lo_b,
                       std::uintptr_t hi_b, index_t m, index_t k, std::uintptr_t idx_a, std::uintptr_t idx_b,
                       index_t p, const Options& o, std::uintptr_t out, int device, std::uintptr_t stream) {
  if (p == 0) return;
  DeviceGuard guard(device);
  with_dtype_mode(dtype, o.mode, [&](auto t, auto M) {
    using T = decltype(t);
    const auto prm = make_params<T>(o.mode, o.volume_temperature, o.intersection_temperature);
    pairs_kernel<decltype(M)::value, T><<<blocks_for(p, kThreads), kThreads, 0, as_stream(stream)>>>(
        cp<T>(lo_a), cp<T>(hi_a), cp<T>(lo_b), cp<T>(hi_b), k, cp<std::int64_t>(idx_a), cp<std::int64_t>(idx_b), p,
        prm, o.log, mp<T>(out));
  });
  check_launch();
}

void containment_pairs_backward(DType dtype, std::uintptr_t lo_a, std::uintptr_t hi_a, index_t n,
                                std::uintptr_t lo_b, std::uintptr_t hi_b, index_t m, index_t k,
                                std::uintptr_t idx_a, std::uintptr_t idx_b, index_t p, std::uintptr_t order_a,
                                std::uintptr_t offsets_a, std::uintptr_t order_b, std::uintptr_t offsets_b,
                                std::uintptr_t out, std::uintptr_t grad, const Options& o, std::uintptr_t g_lo_a,
                                std::uintptr_t g_hi_a, std::uintptr_t g_lo_b, std::uintptr_t g_hi_b, int device,
                                std::uintptr_t stream) {
  DeviceGuard guard(device);
  with_dtype_mode(dtype, o.mode, [&](auto t, auto M) {
    using T = decltype(t);
    constexpr int MODE = decltype(M)::value;
    const auto prm = make_params<T>(o.mode, o.volume_temperature, o.intersection_temperature);
    if (n * k > 0)
      pairs_backward_kernel<MODE, true, T><<<blocks_for(n * k, kThreads), kThreads, 0, as_stream(stream)>>>(
          cp<T>(lo_a), cp<T>(hi_a), cp<T>(lo_b), cp<T>(hi_b), n, k, cp<std::int64_t>(idx_b),
          cp<std::int64_t>(order_a), cp<std::int64_t>(offsets_a), cp<T>(out), cp<T>(grad), prm, o.log,
          mp<T>(g_lo_a), mp<T>(g_hi_a));
    if (m * k > 0)
      pairs_backward_kernel<MODE, false, T><<<blocks_for(m * k, kThreads), kThreads, 0, as_stream(stream)>>>(
          cp<T>(lo_a), cp<T>(hi_a), cp<T>(lo_b), cp<T>(hi_b), m, k, cp<std::int64_t>(idx_a),
          cp<std::int64_t>(order_b), cp<std::int64_t>(offsets_b), cp<T>(out), cp<T>(grad), prm, o.log,
          mp<T>(g_lo_b), mp<T>(g_hi_b));
  });
  check_launch();
}

}  // namespace tasklens::boxes::cuda
