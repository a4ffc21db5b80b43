// Thread pool used by every CPU kernel.
//
// Determinism contract: work is split into blocks whose boundaries depend only on the problem size and
// the kernel's block size, never on the thread count; each block is processed by exactly one thread and
// writes only its own outputs. Reductions over blocks are done afterwards in block order. Results are
// therefore bit-identical for any number of threads.
#pragma once

#include <algorithm>
#include <functional>
#include <string>

#include "tasklens/common.h"

namespace tasklens {

// Largest thread count accepted from TASKLENS_NUM_THREADS or tasklens.set_num_threads.
constexpr int kMaxThreads = 4096;

// Number of threads CPU kernels use (>= 1). Defaults to TASKLENS_NUM_THREADS or the usable cores.
int num_threads();
void set_num_threads(int n);
// Why TASKLENS_NUM_THREADS was ignored ("" when it is unset or valid); the module warns with it on import.
const std::string& num_threads_env_problem();

// Runs fn(block) for every block in [0, n_blocks) on up to num_threads() threads.
// The first exception thrown by fn is rethrown in the calling thread after all workers finish.
void parallel_for(index_t n_blocks, const std::function<void(index_t)>& fn);

// While an instance is alive, parallel_for on the constructing thread runs every block itself, in order
// (for kernels called from a caller's own worker threads; results are unchanged by the determinism contract).
class SerialScope {
 public:
  explicit SerialScope(bool active = true);
  ~SerialScope();
  SerialScope(const SerialScope&) = delete;
  SerialScope& operator=(const SerialScope&) = delete;

 private:
  bool active_;
};

// Splits [0, n) into ceil(n / block) fixed ranges and runs fn(begin, end) on each in parallel.
template <class F>
void parallel_ranges(index_t n, index_t block, F&& fn) {
  if (n <= 0) return;
  block = std::max<index_t>(block, 1);
  const index_t n_blocks = (n + block - 1) / block;
  parallel_for(n_blocks, [&](index_t b) {
    const index_t begin = b * block;
    fn(begin, std::min(n, begin + block));
  });
}

}  // namespace tasklens
