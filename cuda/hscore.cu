// CUDA kernels of the H-score streaming covariance engine (see tasklens/hscore.h). The per-element math is
// shared with the CPU kernels through tasklens/hscore_math.h.
//
// Determinism: every output element is summed by one thread in a fixed order (rows in order, or a fixed
// tree inside one block), and row segments are combined in segment order, so results do not depend on
// scheduling. No atomics.
//
// Grids: the class-sum kernel puts targets on gridDim.y (at most 65,535 per launch); the launcher loops over
// chunks of targets. Scratch: class_sum_segments_cuda bounds segments x targets x classes x features float64 of
// partial sums by kScratchBytes (fewer row segments for many classes; one segment at least).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "cuda_common.cuh"
#include "tasklens/hscore.h"
#include "tasklens/hscore_math.h"

namespace tasklens::hscore {
namespace {

constexpr int kThreads = 256;
constexpr index_t kMaxGridY = 65535;                  // gridDim.y limit
constexpr index_t kScratchBytes = index_t(256) << 20;  // bound of the class-sum partial sums (all segments)

template <class T>
__global__ void column_mean_kernel(const T* x, index_t rows, index_t features, double* mean) {
  const index_t f = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x;
  if (f >= features) return;
  double acc = 0.0;
  for (index_t r = 0; r < rows; ++r) acc += static_cast<double>(x[r * features + f]);
  mean[f] = rows > 0 ? acc / static_cast<double>(rows) : 0.0;
}

// Fixed-shape tree sum of one value per thread (blockDim.x == kThreads); result valid in thread 0.
__device__ double block_sum(double v, double* shared) {
  shared[threadIdx.x] = v;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) shared[threadIdx.x] += shared[threadIdx.x + s];
    __syncthreads();
  }
  return shared[0];
}

template <class T>
__global__ void centre_kernel(const T* x, index_t features, const double* mean, T* xc, double* norms) {
  __shared__ double shared[kThreads];
  const index_t r = blockIdx.x;
  double a = 0.0;
  for (index_t f = threadIdx.x; f < features; f += kThreads) {
    const double u = centred(x[r * features + f], mean[f]);
    xc[r * features + f] = static_cast<T>(u);
    a += u * u;
  }
  const double total = block_sum(a, shared);
  if (threadIdx.x == 0) norms[r] = total;
}

template <class T>
__global__ void v3_kernel(const T* xc, index_t rows, index_t features, const double* norms, double* v3) {
  const index_t f = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x;
  if (f >= features) return;
  double acc = 0.0;
  for (index_t r = 0; r < rows; ++r) acc += norms[r] * static_cast<double>(xc[r * features + f]);
  v3[f] = acc;
}

__global__ void q4_kernel(const double* norms, index_t rows, double* q4) {
  __shared__ double shared[kThreads];
  double acc = 0.0;
  for (index_t r = threadIdx.x; r < rows; r += kThreads) acc += norms[r] * norms[r];
  const double total = block_sum(acc, shared);
  if (threadIdx.x == 0) *q4 = total;
}

// Block counts per (target, class), one thread per target, rows in order.
__global__ void class_count_kernel(const std::int64_t* labels, index_t rows, index_t targets, index_t classes,
                                   double* block_counts, std::int64_t* counts) {
  const index_t t = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x;
  if (t >= targets) return;
  for (index_t r = 0; r < rows; ++r) block_counts[t * classes + labels[r * targets + t]] += 1.0;
  for (index_t c = 0; c < classes; ++c) counts[t * classes + c] += static_cast<std::int64_t>(block_counts[t * classes + c]);
}

// partial[seg][t][c][f] = sum over the segment's rows i with labels[i, t] == c of xc[i, f].
template <class T>
__global__ void class_partial_kernel(const T* xc, index_t rows, index_t features, const std::int64_t* labels,
                                     index_t targets, index_t classes, index_t seg_rows, index_t t0,
                                     double* partial) {
  const index_t f = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x;
  const index_t t = t0 + blockIdx.y, seg = blockIdx.z;
  if (f >= features) return;
  double* out = partial + (seg * targets + t) * classes * features;
  const index_t r1 = std::min(rows, (seg + 1) * seg_rows);
  for (index_t r = seg * seg_rows; r < r1; ++r) out[labels[r * targets + t] * features + f] += xc[r * features + f];
}

__global__ void class_reduce_kernel(const double* partial, index_t segments, index_t tcf, index_t features,
                                    const double* block_counts, const double* offset, double* sums) {
  const index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x;
  if (i >= tcf) return;
  const double n_c = block_counts[i / features];
  if (n_c == 0) return;
  double acc = 0.0;
  for (index_t s = 0; s < segments; ++s) acc += partial[s * tcf + i];
  sums[i] += shifted_class_sum(acc, n_c, offset[i % features]);
}

// Merge, step 1: merged mean and the shifts of both sides (work: mean, da, db, d).
__global__ void merge_means_kernel(index_t F, double n_a, const double* mean_a, double n_b, const double* mean_b,
                                   double* work) {
  const index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x;
  if (i >= F) return;
  const double m = merged_mean(mean_a[i], mean_b[i], n_a, n_b);
  work[i] = m;
  work[F + i] = m - mean_a[i];
  work[2 * F + i] = m - mean_b[i];
  work[3 * F + i] = mean_b[i] - mean_a[i];
}

// Merge, step 2: S_a da and S_b db (work: sda at 4F, sdb at 5F).
__global__ void merge_matvec_kernel(index_t F, const double* scatter_a, const double* scatter_b, double* work) {
  const index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x;
  if (i >= F) return;
  double sa = 0.0, sb = 0.0;
  for (index_t j = 0; j < F; ++j) {
    sa += scatter_a[i * F + j] * work[F + j];
    sb += scatter_b[i * F + j] * work[2 * F + j];
  }
  work[4 * F + i] = sa;
  work[5 * F + i] = sb;
}

// Merge, step 3 (one block): the scalars tr S, |delta|^2, delta S delta, delta.v3 for both sides; q4.
__global__ void merge_scalars_kernel(index_t F, double n_a, const double* scatter_a, const double* v3_a,
                                     double* q4_a, double n_b, const double* scatter_b, const double* v3_b,
                                     const double* q4_b, double* work) {
  __shared__ double shared[kThreads];
  double v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (index_t i = threadIdx.x; i < F; i += kThreads) {
    const double da = work[F + i], db = work[2 * F + i];
    v[0] += scatter_a[i * F + i];
    v[1] += scatter_b[i * F + i];
    v[2] += da * da;
    v[3] += db * db;
    v[4] += da * work[4 * F + i];
    v[5] += db * work[5 * F + i];
    v[6] += da * v3_a[i];
    v[7] += db * v3_b[i];
  }
  double* scalars = work + 6 * F;
  for (int k = 0; k < 8; ++k) {
    const double s = block_sum(v[k], shared);
    if (threadIdx.x == 0) scalars[k] = s;
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    *q4_a = shifted_q4(*q4_a, scalars[4], n_a, scalars[2], scalars[6], scalars[0]) +
            shifted_q4(*q4_b, scalars[5], n_b, scalars[3], scalars[7], scalars[1]);
  }
}

// Merge, step 4: v3, mean (per feature) and the scatter (per element).
__global__ void merge_vectors_kernel(index_t F, double n_a, double* mean_a, double* v3_a, double n_b,
                                     const double* v3_b, const double* work) {
  const index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x;
  if (i >= F) return;
  const double* s = work + 6 * F;
  v3_a[i] = shifted_v3(v3_a[i], work[4 * F + i], s[0], n_a, s[2], work[F + i]) +
            shifted_v3(v3_b[i], work[5 * F + i], s[1], n_b, s[3], work[2 * F + i]);
  mean_a[i] = work[i];
}

__global__ void merge_scatter_kernel(index_t F, double w, double* scatter_a, const double* scatter_b,
                                     const double* work) {
  const index_t k = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x;
  if (k >= F * F) return;
  const index_t i = k / F, j = k % F;
  scatter_a[k] = merged_scatter(scatter_a[k], scatter_b[k], work[3 * F + i], work[3 * F + j], w);
}

}  // namespace

index_t class_sum_segments_cuda(index_t rows, index_t features, index_t targets, index_t classes) {
  // Enough blocks to fill a large GPU (about 1024 blocks of 256 threads), at most 64 segments, and no more than
  // kScratchBytes of partial sums (segments * targets * classes * features float64); at least one segment.
  const index_t blocks = ((features + kThreads - 1) / kThreads) * std::max<index_t>(targets, 1);
  index_t seg = std::max<index_t>(1, std::min<index_t>(64, 1024 / std::max<index_t>(blocks, 1)));
  const index_t per_segment = std::max<index_t>(1, targets) * std::max<index_t>(1, classes) *
                              std::max<index_t>(1, features) * static_cast<index_t>(sizeof(double));
  seg = std::min(seg, std::max<index_t>(1, kScratchBytes / per_segment));
  return std::max<index_t>(1, std::min(seg, rows));
}

template <class T>
void block_moments_cuda(const T* x, index_t rows, index_t features, double* mean, T* xc, double* v3, double* q4,
                        double* norms, int device, std::uintptr_t stream) {
  cuda::DeviceGuard guard(device);
  const cudaStream_t s = cuda::as_stream(stream);
  const unsigned fb = cuda::blocks_for(features, kThreads);
  column_mean_kernel<T><<<fb, kThreads, 0, s>>>(x, rows, features, mean);
  cuda::check_launch();
  if (rows > 0) {
    centre_kernel<T><<<static_cast<unsigned>(rows), kThreads, 0, s>>>(x, features, mean, xc, norms);
    cuda::check_launch();
  }
  v3_kernel<T><<<fb, kThreads, 0, s>>>(xc, rows, features, norms, v3);
  cuda::check_launch();
  q4_kernel<<<1, kThreads, 0, s>>>(norms, rows, q4);
  cuda::check_launch();
}

template <class T>
void class_sums_cuda(const T* xc, index_t rows, index_t features, const std::int64_t* labels, index_t targets,
                     index_t classes, const double* offset, double* sums, std::int64_t* counts, double* partial,
                     index_t segments, int device, std::uintptr_t stream) {
  cuda::DeviceGuard guard(device);
  const cudaStream_t s = cuda::as_stream(stream);
  const index_t tcf = targets * classes * features;
  double* block_counts = partial + segments * tcf;
  TL_CUDA_CHECK(cudaMemsetAsync(partial, 0, sizeof(double) * (segments * tcf + targets * classes), s));
  class_count_kernel<<<cuda::blocks_for(targets, kThreads), kThreads, 0, s>>>(labels, rows, targets, classes,
                                                                              block_counts, counts);
  cuda::check_launch();
  const index_t seg_rows = (rows + segments - 1) / segments;
  for (index_t t0 = 0; t0 < targets; t0 += kMaxGridY) {  // gridDim.y <= 65535: chunks of targets
    const dim3 grid(cuda::blocks_for(features, kThreads), static_cast<unsigned>(std::min(kMaxGridY, targets - t0)),
                    static_cast<unsigned>(segments));
    class_partial_kernel<T><<<grid, kThreads, 0, s>>>(xc, rows, features, labels, targets, classes, seg_rows, t0,
                                                      partial);
    cuda::check_launch();
  }
  class_reduce_kernel<<<cuda::blocks_for(tcf, kThreads), kThreads, 0, s>>>(partial, segments, tcf, features,
                                                                           block_counts, offset, sums);
  cuda::check_launch();
}

void merge_moments_cuda(index_t F, double n_a, double* mean_a, double* scatter_a, double* v3_a, double* q4_a,
                        double n_b, const double* mean_b, const double* scatter_b, const double* v3_b,
                        const double* q4_b, double* work, int device, std::uintptr_t stream) {
  if (n_b <= 0) return;
  cuda::DeviceGuard guard(device);
  const cudaStream_t s = cuda::as_stream(stream);
  const unsigned fb = cuda::blocks_for(F, kThreads);
  merge_means_kernel<<<fb, kThreads, 0, s>>>(F, n_a, mean_a, n_b, mean_b, work);
  cuda::check_launch();
  merge_matvec_kernel<<<fb, kThreads, 0, s>>>(F, scatter_a, scatter_b, work);
  cuda::check_launch();
  merge_scalars_kernel<<<1, kThreads, 0, s>>>(F, n_a, scatter_a, v3_a, q4_a, n_b, scatter_b, v3_b, q4_b, work);
  cuda::check_launch();
  merge_vectors_kernel<<<fb, kThreads, 0, s>>>(F, n_a, mean_a, v3_a, n_b, v3_b, work);
  cuda::check_launch();
  merge_scatter_kernel<<<cuda::blocks_for(F * F, kThreads), kThreads, 0, s>>>(F, chan_weight(n_a, n_b), scatter_a,
                                                                             scatter_b, work);
  cuda::check_launch();
}

template void block_moments_cuda<float>(const float*, index_t, index_t, double*, float*, double*, double*, double*,
                                        int, std::uintptr_t);
template void block_moments_cuda<double>(const double*, index_t, index_t, double*, double*, double*, double*,
                                         double*, int, std::uintptr_t);
template void class_sums_cuda<float>(const float*, index_t, index_t, const std::int64_t*, index_t, index_t,
                                     const double*, double*, std::int64_t*, double*, index_t, int, std::uintptr_t);
template void class_sums_cuda<double>(const double*, index_t, index_t, const std::int64_t*, index_t, index_t,
                                      const double*, double*, std::int64_t*, double*, index_t, int, std::uintptr_t);

}  // namespace tasklens::hscore
