// CUDA ACE kernel (Algorithm 1): joint counts by radix sort + run-length encoding (CSR over both variables),
// conditional expectations as CSR sparse-dense products (one thread per row and mode), and the Gram
// reduction in fixed row blocks summed on the host in block order. The small b x b algebra (Rayleigh-Ritz,
// Gram-Schmidt on the iterated side) runs on the host with the same functions as the CPU kernel
// (tasklens/ace_math.h), so the two paths follow the same arithmetic and are deterministic.
#include <cub/cub.cuh>

#include <algorithm>
#include <climits>
#include <stdexcept>
#include <vector>

#include "cuda_common.cuh"
#include "tasklens/ace.h"
#include "tasklens/ace_math.h"

namespace tasklens::ace {

namespace {

using tasklens::cuda::blocks_for;
using tasklens::cuda::check_launch;

template <class T>
struct DeviceBuffer {
  T* ptr = nullptr;
  cudaStream_t stream;
  DeviceBuffer(size_t n, cudaStream_t s) : stream(s) {
    if (n) TL_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&ptr), n * sizeof(T), s));
  }
  ~DeviceBuffer() {
    if (ptr) cudaFreeAsync(ptr, stream);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

__global__ void pair_keys(const std::int64_t* a, const std::int64_t* s, index_t n, index_t ns, std::int64_t* keys) {
  const index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x;
  if (i < n) keys[i] = a[i] * ns + s[i];
}

// Unique sorted keys row * ncols + col with their counts -> CSR (ptr over nrows, cols, vals) and row totals.
__global__ void csr_from_sorted(const std::int64_t* keys, const int* counts, const index_t* nnz_ptr, index_t ncols,
                                index_t nrows, index_t* ptr, std::int32_t* cols, double* vals) {
  const index_t nnz = *nnz_ptr;
  const index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x;
  if (i >= nnz) return;
  const index_t row = keys[i] / ncols;
  cols[i] = static_cast<std::int32_t>(keys[i] % ncols);
  vals[i] = static_cast<double>(counts[i]);
  const index_t prev = i == 0 ? -1 : keys[i - 1] / ncols;
  for (index_t r = prev + 1; r <= row; ++r) ptr[r] = i;
  if (i == nnz - 1)
    for (index_t r = row + 1; r <= nrows; ++r) ptr[r] = nnz;
}

// Swapped keys (col * nrows + row) of the unique pairs, for the CSR over the other variable.
__global__ void swapped_keys(const std::int64_t* keys, const index_t* nnz_ptr, index_t ncols, index_t nrows,
                             std::int64_t* out) {
  const index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x;
  if (i < *nnz_ptr) out[i] = (keys[i] % ncols) * nrows + keys[i] / ncols;
}

__global__ void row_totals(const index_t* ptr, const double* vals, index_t nrows, double n, double* count,
                           double* prob) {
  const index_t r = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x;
  if (r >= nrows) return;
  double c = 0.0;
  for (index_t e = ptr[r]; e < ptr[r + 1]; ++e) c += vals[e];
  count[r] = c;
  prob[r] = c / n;
}

__global__ void spmm(const index_t* ptr, const std::int32_t* cols, const double* vals, const double* row_count,
                     index_t nrows, const double* in, int b, double* out) {
  const index_t t = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x;
  if (t >= nrows * b) return;
  const index_t row = t / b;
  const int j = static_cast<int>(t % b);
  cond_expect(ptr, cols, vals, row_count, row, in, b, j, j + 1, out + t);
}

__global__ void gram_partials(const double* v, const double* w, index_t n, int b, double* partial) {
  const index_t blk = blockIdx.x;
  const index_t r0 = blk * kGramRows, r1 = min(n, r0 + kGramRows);
  for (int t = threadIdx.x; t < b * b; t += blockDim.x) {
    const int i = t / b, j = t % b;
    partial[blk * b * b + t] = i <= j ? gram_entry(v, w, b, r0, r1, i, j) : 0.0;
  }
}

__global__ void rotate_rows(const double* in, const double* M, const double* scale, index_t n, int b, double* out) {
  const index_t r = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x;
  if (r < n) rotate_row(in + r * b, M, scale, b, out + r * b);
}

__global__ void take_columns(const double* in, index_t n, int b, int k, double* out) {
  const index_t t = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x;
  if (t < n * k) out[t] = in[(t / k) * b + t % k];
}

// Joint counts CSR over `rows` from sorted unique keys; returns nnz.
struct DeviceCsr {
  DeviceBuffer<index_t> ptr;
  DeviceBuffer<std::int32_t> cols;
  DeviceBuffer<double> vals, count, prob;
  DeviceCsr(index_t nrows, index_t nnz_cap, cudaStream_t s)
      : ptr(nrows + 1, s), cols(nnz_cap, s), vals(nnz_cap, s), count(nrows, s), prob(nrows, s) {}
};

void sort_keys(std::int64_t* in, std::int64_t* out, index_t n, int end_bit, cudaStream_t s) {
  size_t bytes = 0;
  TL_CUDA_CHECK(cub::DeviceRadixSort::SortKeys(nullptr, bytes, in, out, static_cast<int>(n), 0, end_bit, s));
  DeviceBuffer<unsigned char> tmp(bytes, s);
  TL_CUDA_CHECK(cub::DeviceRadixSort::SortKeys(tmp.ptr, bytes, in, out, static_cast<int>(n), 0, end_bit, s));
}

void sort_pairs(std::int64_t* kin, std::int64_t* kout, int* vin, int* vout, index_t n, int end_bit, cudaStream_t s) {
  size_t bytes = 0;
  TL_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, bytes, kin, kout, vin, vout, static_cast<int>(n), 0, end_bit, s));
  DeviceBuffer<unsigned char> tmp(bytes, s);
  TL_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(tmp.ptr, bytes, kin, kout, vin, vout, static_cast<int>(n), 0, end_bit, s));
}

int bits_for(index_t v) {
  int bits = 1;
  while (bits < 63 && (index_t(1) << bits) <= v) ++bits;
  return bits;
}

template <class T>
void to_host(std::vector<T>& dst, const T* src, size_t n, cudaStream_t s) {
  dst.resize(n);
  TL_CUDA_CHECK(cudaMemcpyAsync(dst.data(), src, n * sizeof(T), cudaMemcpyDeviceToHost, s));
  TL_CUDA_CHECK(cudaStreamSynchronize(s));
}

template <class T>
void to_device(T* dst, const std::vector<T>& src, cudaStream_t s) {
  TL_CUDA_CHECK(cudaMemcpyAsync(dst, src.data(), src.size() * sizeof(T), cudaMemcpyHostToDevice, s));
}

}  // namespace

std::pair<int, bool> fit_cuda(const std::int64_t* a_codes, const std::int64_t* s_codes, index_t n, index_t na,
                              index_t ns, int k, int b, int max_iter, double tol, std::uint64_t seed, double* fa_out,
                              double* fs_out, double* corr_out, int device, std::uintptr_t stream_handle) {
  if (n > INT_MAX) throw std::invalid_argument("ace (CUDA): at most 2^31 - 1 samples per call");
  if (k < 1 || b < k) throw std::invalid_argument("ace: need 1 <= k <= b");
  tasklens::cuda::DeviceGuard guard(device);
  const cudaStream_t s = tasklens::cuda::as_stream(stream_handle);
  constexpr int T = 256;
  const int key_bits = bits_for(na * ns);

  // 1. Joint counts: sort the pair keys, run-length encode, CSR over A; then re-sort swapped keys for S.
  DeviceBuffer<std::int64_t> keys(n, s), sorted(n, s);
  pair_keys<<<blocks_for(n, T), T, 0, s>>>(a_codes, s_codes, n, ns, keys.ptr);
  check_launch();
  sort_keys(keys.ptr, sorted.ptr, n, key_bits, s);
  DeviceBuffer<int> counts(n, s), counts2(n, s);
  DeviceBuffer<index_t> d_nnz(1, s);
  {
    size_t bytes = 0;
    TL_CUDA_CHECK(cub::DeviceRunLengthEncode::Encode(nullptr, bytes, sorted.ptr, keys.ptr, counts.ptr, d_nnz.ptr,
                                                     static_cast<int>(n), s));
    DeviceBuffer<unsigned char> tmp(bytes, s);
    TL_CUDA_CHECK(cub::DeviceRunLengthEncode::Encode(tmp.ptr, bytes, sorted.ptr, keys.ptr, counts.ptr, d_nnz.ptr,
                                                     static_cast<int>(n), s));
  }
  std::vector<index_t> h_nnz;
  to_host(h_nnz, d_nnz.ptr, 1, s);
  const index_t nnz = h_nnz[0];
  DeviceCsr A(na, nnz, s), S(ns, nnz, s);
  const double N = static_cast<double>(n);
  csr_from_sorted<<<blocks_for(nnz, T), T, 0, s>>>(keys.ptr, counts.ptr, d_nnz.ptr, ns, na, A.ptr.ptr, A.cols.ptr,
                                                    A.vals.ptr);
  check_launch();
  swapped_keys<<<blocks_for(nnz, T), T, 0, s>>>(keys.ptr, d_nnz.ptr, ns, na, sorted.ptr);
  check_launch();
  sort_pairs(sorted.ptr, keys.ptr, counts.ptr, counts2.ptr, nnz, key_bits, s);
  csr_from_sorted<<<blocks_for(nnz, T), T, 0, s>>>(keys.ptr, counts2.ptr, d_nnz.ptr, na, ns, S.ptr.ptr, S.cols.ptr,
                                                    S.vals.ptr);
  check_launch();
  row_totals<<<blocks_for(na, T), T, 0, s>>>(A.ptr.ptr, A.vals.ptr, na, N, A.count.ptr, A.prob.ptr);
  row_totals<<<blocks_for(ns, T), T, 0, s>>>(S.ptr.ptr, S.vals.ptr, ns, N, S.count.ptr, S.prob.ptr);
  check_launch();
  std::vector<double> ws;
  to_host(ws, S.prob.ptr, ns, s);

  // 2. Iterate: g on the host (|S| x b), h and the sparse products on the device.
  SplitMix64 rng(seed);
  std::vector<double> g(static_cast<size_t>(ns) * b), u, partial, lambda, V, inv_lambda, sigma;
  for (auto& v : g) v = rng.uniform_pm1();
  if (!orthonormalize(g.data(), ws.data(), ns, b, 0, rng))
    throw std::invalid_argument("ace: too few distinct codes for the requested modes");
  const index_t gram_blocks = std::max<index_t>(1, (na + kGramRows - 1) / kGramRows);
  DeviceBuffer<double> d_g(static_cast<size_t>(ns) * b, s), d_h(static_cast<size_t>(na) * b, s),
      d_u(static_cast<size_t>(ns) * b, s), d_partial(static_cast<size_t>(gram_blocks) * b * b, s),
      d_V(static_cast<size_t>(b) * b, s), d_scale(b, s), d_fa(static_cast<size_t>(na) * b, s);
  int iterations = 0;
  bool converged = false;
  double prev = -1.0;
  for (int it = 1; it <= max_iter; ++it) {
    iterations = it;
    to_device(d_g.ptr, g, s);
    spmm<<<blocks_for(na * b, T), T, 0, s>>>(A.ptr.ptr, A.cols.ptr, A.vals.ptr, A.count.ptr, na, d_g.ptr, b, d_h.ptr);
    gram_partials<<<static_cast<unsigned>(gram_blocks), 128, 0, s>>>(d_h.ptr, A.prob.ptr, na, b, d_partial.ptr);
    check_launch();
    to_host(partial, d_partial.ptr, static_cast<size_t>(gram_blocks) * b * b, s);
    std::vector<double> H(static_cast<size_t>(b) * b, 0.0);
    for (index_t blk = 0; blk < gram_blocks; ++blk)
      for (int t = 0; t < b * b; ++t) H[t] += partial[blk * b * b + t];
    for (int i = 0; i < b; ++i)
      for (int j = 0; j < i; ++j) H[i * b + j] = H[j * b + i];
    const double sum = ritz(H, b, k, lambda, V, inv_lambda, sigma);
    if (it > 1 && std::fabs(sum - prev) <= tol) {
      converged = true;
      break;
    }
    prev = sum;
    if (it == max_iter) break;
    spmm<<<blocks_for(ns * b, T), T, 0, s>>>(S.ptr.ptr, S.cols.ptr, S.vals.ptr, S.count.ptr, ns, d_h.ptr, b, d_u.ptr);
    check_launch();
    to_host(u, d_u.ptr, static_cast<size_t>(ns) * b, s);
    for (index_t r = 0; r < ns; ++r) rotate_row(u.data() + r * b, V.data(), inv_lambda.data(), b, g.data() + r * b);
    if (!orthonormalize(g.data(), ws.data(), ns, b, 0, rng))
      throw std::runtime_error("ace: orthonormalisation failed (too few distinct codes for the modes)");
  }

  // 3. Final f = h V diag(1/sigma) on the device, g V on the host; complete zero modes; fix signs.
  std::vector<double> fscale(b, 0.0), fs(static_cast<size_t>(ns) * b);
  int nonzero = 0;
  for (int j = 0; j < b; ++j)
    if (lambda[j] > kZeroLambda) fscale[j] = 1.0 / sigma[j], ++nonzero;
  to_device(d_V.ptr, V, s);
  to_device(d_scale.ptr, fscale, s);
  rotate_rows<<<blocks_for(na, T), T, 0, s>>>(d_h.ptr, d_V.ptr, d_scale.ptr, na, b, d_fa.ptr);
  check_launch();
  for (index_t r = 0; r < ns; ++r) rotate_row(g.data() + r * b, V.data(), nullptr, b, fs.data() + r * b);
  std::vector<double> fa, wa;
  to_host(fa, d_fa.ptr, static_cast<size_t>(na) * b, s);
  if (nonzero < b) {
    to_host(wa, A.prob.ptr, na, s);
    if (!orthonormalize(fa.data(), wa.data(), na, b, nonzero, rng))
      throw std::runtime_error("ace: could not complete the zero-correlation modes");
  }
  fix_signs(fa.data(), na, fs.data(), ns, b, k);
  to_device(d_fa.ptr, fa, s);
  DeviceBuffer<double> d_fs(static_cast<size_t>(ns) * b, s);
  to_device(d_fs.ptr, fs, s);
  take_columns<<<blocks_for(na * k, T), T, 0, s>>>(d_fa.ptr, na, b, k, fa_out);
  take_columns<<<blocks_for(ns * k, T), T, 0, s>>>(d_fs.ptr, ns, b, k, fs_out);
  check_launch();
  std::vector<double> corr(sigma.begin(), sigma.begin() + k);
  to_device(corr_out, corr, s);
  TL_CUDA_CHECK(cudaStreamSynchronize(s));  // host vectors must outlive the asynchronous copies
  return {iterations, converged};
}

}  // namespace tasklens::ace
