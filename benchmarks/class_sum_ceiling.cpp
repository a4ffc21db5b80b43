// Ceiling of the exact multi-target class sums on this CPU: the fastest the inner loop of
// cpp/src/hscore.cpp (rows of a class gathered by index, float32 converted to float64 and added) can run,
// against the same loop with float32 accumulation (not exact; for comparison only).
//
// Build and run:  g++ -O3 benchmarks/class_sum_ceiling.cpp -o /tmp/class_sum_ceiling && /tmp/class_sum_ceiling
//
// A tile of `rows` x 32 float32 columns (the native kernel's tile) is summed row by row in sequential and in
// random row order, holding 32 accumulators in registers. Small tiles sit in L1, the native kernel's 8192-row
// tile (1 MiB) in L2. Prints billions of element additions per second on one core.
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <random>
#include <vector>

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

__attribute__((target("avx2"), noinline)) double sum_f64(const float* tile, const std::int32_t* order, int n,
                                                         int reps) {
  __m256d a[8];
  for (auto& v : a) v = _mm256_setzero_pd();
  for (int q = 0; q < reps; ++q)
    for (int k = 0; k < n; ++k) {
      const float* r = tile + static_cast<long>(order[k]) * 32;
      for (int j = 0; j < 8; ++j) a[j] = _mm256_add_pd(a[j], _mm256_cvtps_pd(_mm_loadu_ps(r + 4 * j)));
    }
  double out[4], s = 0;
  for (auto& v : a) {
    _mm256_storeu_pd(out, v);
    s += out[0] + out[1] + out[2] + out[3];
  }
  return s;
}

__attribute__((target("avx2"), noinline)) double sum_f32(const float* tile, const std::int32_t* order, int n,
                                                         int reps) {
  __m256 a[4];
  for (auto& v : a) v = _mm256_setzero_ps();
  for (int q = 0; q < reps; ++q)
    for (int k = 0; k < n; ++k) {
      const float* r = tile + static_cast<long>(order[k]) * 32;
      for (int j = 0; j < 4; ++j) a[j] = _mm256_add_ps(a[j], _mm256_loadu_ps(r + 8 * j));
    }
  float out[8];
  double s = 0;
  for (auto& v : a) {
    _mm256_storeu_ps(out, v);
    for (float e : out) s += e;
  }
  return s;
}

}  // namespace

int main() {
  std::printf("rows    tile KiB  order       exact f64 adds   f32 adds (inexact)   [Gelem/s, one core]\n");
  for (int rows : {256, 1024, 4096, 8192, 16384}) {
    std::vector<float> tile(static_cast<size_t>(rows) * 32, 1.0f);
    std::vector<std::int32_t> seq(rows), rnd(rows);
    std::iota(seq.begin(), seq.end(), 0);
    rnd = seq;
    std::shuffle(rnd.begin(), rnd.end(), std::mt19937(1));
    const int reps = std::max(1, 400000000 / (rows * 32));
    for (const auto* order : {&seq, &rnd}) {
      double best64 = 1e30, best32 = 1e30, sink = 0;
      for (int i = 0; i < 3; ++i) {
        double t0 = now();
        sink += sum_f64(tile.data(), order->data(), rows, reps);
        best64 = std::min(best64, now() - t0);
        t0 = now();
        sink += sum_f32(tile.data(), order->data(), rows, reps);
        best32 = std::min(best32, now() - t0);
      }
      const double elems = static_cast<double>(reps) * rows * 32;
      std::printf("%6d  %8zu  %-10s  %14.2f   %18.2f   (%g)\n", rows, tile.size() * 4 / 1024,
                  order == &seq ? "sequential" : "random", elems / best64 / 1e9, elems / best32 / 1e9, sink);
    }
  }
  return 0;
}
