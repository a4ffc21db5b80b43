// CUDA kernels of the domain distances: a tiled shared-memory kernel that fuses the pairwise distances of a
// 64 x 64 (target x source) tile with the segmented minimum (each target row's nearest row of every source
// dataset, via 64-bit atomicMin on (score bits, index)), and the exact float64 re-scoring of the winners with
// the same header math as the CPU (cpp/include/tasklens/distance_math.h).
//
// The GPU scores pairs in the difference form sum_k (x_k - y_k)^2 in float32 on rows that the caller centred and
// scaled (python/tasklens/domain/_cuda.py), which has no cancellation; the winner's exact distance is within about
// d * 2^-24 of the data's spread of the true minimum (the CPU path is exact; see domain/distance.py).
//
// Shared-memory layout: the staged columns are padded to kTile + 2 floats, so the staging stores (16 threads
// walking k at a fixed row) land in 32 distinct banks; each thread owns target rows tr*4 + p and source columns
// tc + 16 q (interleaved), so the reads of ys and the stores into scores are at most 2-way conflicted.
//
// Grids: blockIdx.y covers at most 65,535 row tiles per launch; the launcher loops over row chunks.
//
// The per-dataset means of the all-pairs matrix (segment_mean_kernel) are sums in row order, one thread per
// (target dataset, source dataset): the same additions as numpy's add.reduceat on the CPU, no atomics.
#include <cstdint>

#include "cuda_common.cuh"
#include "tasklens/distance.h"
#include "tasklens/distance_math.h"

namespace tasklens::distance {
namespace {

constexpr int kTile = 64;   // target rows and source rows per block
constexpr int kDepth = 16;  // feature columns staged in shared memory per step
constexpr int kThreads = 256;
constexpr int kPad = 2;             // shared row padding of the staged columns (see the file comment)
constexpr index_t kMaxGridY = 65535;  // gridDim.y limit

__device__ __forceinline__ unsigned long long pack(float score, std::int64_t j) {
  return (static_cast<unsigned long long>(__float_as_uint(score)) << 32) | static_cast<unsigned int>(j);
}

template <class T>
__global__ void segmin_kernel(const T* __restrict__ tgt, const T* __restrict__ src, index_t n_t, index_t n_s,
                              index_t d, const std::int32_t* __restrict__ seg_src, index_t n_seg,
                              index_t row_base, unsigned long long* __restrict__ packed) {
  __shared__ float xs[kDepth][kTile + kPad];
  __shared__ float ys[kDepth][kTile + kPad];
  __shared__ float scores[kTile][kTile + 1];
  const int tid = threadIdx.x;
  const int tr = tid / 16, tc = tid % 16;  // each thread owns rows tr*4 + p and columns tc + 16 q
  const index_t row0 = row_base + static_cast<index_t>(blockIdx.y) * kTile;
  const index_t col0 = static_cast<index_t>(blockIdx.x) * kTile;
  float acc[4][4] = {};
  for (index_t k0 = 0; k0 < d; k0 += kDepth) {
    for (int e = tid; e < kDepth * kTile; e += kThreads) {
      const int r = e / kDepth, k = e % kDepth;
      const index_t gi = row0 + r, gj = col0 + r, gk = k0 + k;
      xs[k][r] = (gi < n_t && gk < d) ? static_cast<float>(tgt[gi * d + gk]) : 0.0f;
      ys[k][r] = (gj < n_s && gk < d) ? static_cast<float>(src[gj * d + gk]) : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < kDepth; ++k) {
      float a[4], b[4];
#pragma unroll
      for (int p = 0; p < 4; ++p) a[p] = xs[k][tr * 4 + p];
#pragma unroll
      for (int q = 0; q < 4; ++q) b[q] = ys[k][tc + 16 * q];
#pragma unroll
      for (int p = 0; p < 4; ++p)
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          const float diff = a[p] - b[q];
          acc[p][q] = fmaf(diff, diff, acc[p][q]);
        }
    }
    __syncthreads();
  }
#pragma unroll
  for (int p = 0; p < 4; ++p)
#pragma unroll
    for (int q = 0; q < 4; ++q) scores[tr * 4 + p][tc + 16 * q] = acc[p][q];
  __syncthreads();
  // Segmented minimum: 4 threads per target row, 16 consecutive source columns each; a run of equal
  // dataset ids is folded locally and flushed with one atomicMin.
  const int r = tid / 4, c0 = (tid % 4) * 16;
  const index_t gi = row0 + r;
  if (gi >= n_t) return;
  unsigned long long run = ~0ull;
  int run_seg = -1;
  for (int c = c0; c < c0 + 16; ++c) {
    const index_t gj = col0 + c;
    if (gj >= n_s) break;
    const int g = seg_src[gj];
    if (g != run_seg) {
      if (run_seg >= 0) atomicMin(packed + gi * n_seg + run_seg, run);
      run_seg = g;
      run = ~0ull;
    }
    const unsigned long long key = pack(scores[r][c], gj);
    run = key < run ? key : run;
  }
  if (run_seg >= 0) atomicMin(packed + gi * n_seg + run_seg, run);
}

template <class T>
__global__ void finalize_kernel(const T* __restrict__ tgt, const double* __restrict__ inv_t,
                                const T* __restrict__ src, const double* __restrict__ inv_s,
                                const unsigned long long* __restrict__ packed, index_t n_t, index_t n_seg,
                                index_t d, int metric, double* __restrict__ dist, std::int64_t* __restrict__ idx) {
  const index_t e = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= n_t * n_seg) return;
  const index_t i = e / n_seg;
  const index_t j = static_cast<index_t>(packed[e] & 0xffffffffull);
  const double sx = inv_t ? inv_t[i] : 1.0, sy = inv_s ? inv_s[j] : 1.0;
  dist[e] = finish_distance(exact_sq_distance(tgt + i * d, src + j * d, d, sx, sy), metric);
  idx[e] = j;
}

__global__ void segment_mean_kernel(const double* __restrict__ dist, index_t n_cols,
                                    const std::int64_t* __restrict__ offsets, index_t n_seg, double* __restrict__ out) {
  const index_t e = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= n_seg * n_cols) return;
  const index_t g = e / n_cols, c = e % n_cols;
  const index_t r0 = offsets[g], r1 = offsets[g + 1];
  double acc = dist[r0 * n_cols + c];  // numpy's reduceat starts from the first row, then adds in row order
  for (index_t r = r0 + 1; r < r1; ++r) acc += dist[r * n_cols + c];
  out[e] = acc / static_cast<double>(r1 - r0);
}

}  // namespace

void segmin_cuda(const void* tgt, const void* src, index_t n_t, index_t n_s, index_t d,
                 const std::int32_t* seg_src, index_t n_seg, unsigned long long* packed, DType dtype,
                 int device, std::uintptr_t stream) {
  cuda::DeviceGuard guard(device);
  if (n_t == 0 || n_s == 0) return;
  const index_t row_tiles = (n_t + kTile - 1) / kTile;
  for (index_t t0 = 0; t0 < row_tiles; t0 += kMaxGridY) {  // gridDim.y <= 65535: chunks of row tiles
    const index_t tiles = row_tiles - t0 < kMaxGridY ? row_tiles - t0 : kMaxGridY;
    const dim3 grid(static_cast<unsigned>((n_s + kTile - 1) / kTile), static_cast<unsigned>(tiles));
    const index_t row_base = t0 * kTile;
    if (dtype == DType::float64)
      segmin_kernel<double><<<grid, kThreads, 0, cuda::as_stream(stream)>>>(
          static_cast<const double*>(tgt), static_cast<const double*>(src), n_t, n_s, d, seg_src, n_seg, row_base,
          packed);
    else
      segmin_kernel<float><<<grid, kThreads, 0, cuda::as_stream(stream)>>>(
          static_cast<const float*>(tgt), static_cast<const float*>(src), n_t, n_s, d, seg_src, n_seg, row_base,
          packed);
    cuda::check_launch();
  }
}

void finalize_cuda(const void* tgt, const double* inv_t, const void* src, const double* inv_s,
                   const unsigned long long* packed, index_t n_t, index_t n_seg, index_t d, int metric,
                   double* dist, std::int64_t* idx, DType dtype, int device, std::uintptr_t stream) {
  cuda::DeviceGuard guard(device);
  const index_t n = n_t * n_seg;
  if (n == 0) return;
  const int threads = 256;
  if (dtype == DType::float64)
    finalize_kernel<double><<<cuda::blocks_for(n, threads), threads, 0, cuda::as_stream(stream)>>>(
        static_cast<const double*>(tgt), inv_t, static_cast<const double*>(src), inv_s, packed, n_t, n_seg, d,
        metric, dist, idx);
  else
    finalize_kernel<float><<<cuda::blocks_for(n, threads), threads, 0, cuda::as_stream(stream)>>>(
        static_cast<const float*>(tgt), inv_t, static_cast<const float*>(src), inv_s, packed, n_t, n_seg, d,
        metric, dist, idx);
  cuda::check_launch();
}

void segment_mean_cuda(const double* dist, index_t n_cols, const std::int64_t* offsets, index_t n_seg,
                       double* out, int device, std::uintptr_t stream) {
  cuda::DeviceGuard guard(device);
  const index_t n = n_seg * n_cols;
  if (n == 0) return;
  const int threads = 256;
  segment_mean_kernel<<<cuda::blocks_for(n, threads), threads, 0, cuda::as_stream(stream)>>>(dist, n_cols, offsets,
                                                                                           n_seg, out);
  cuda::check_launch();
}

}  // namespace tasklens::distance
