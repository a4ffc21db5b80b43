#include "tasklens/parallel.h"

#include <atomic>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif

namespace tasklens {
namespace {

int usable_cores() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
#endif
  const unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

int initial_threads() {
  if (const char* env = std::getenv("TASKLENS_NUM_THREADS")) {
    const int n = std::atoi(env);
    if (n > 0) return n;
  }
  return usable_cores();
}

std::atomic<int> g_threads{initial_threads()};
thread_local int t_serial_depth = 0;

}  // namespace

int num_threads() { return g_threads.load(); }

void set_num_threads(int n) { g_threads.store(n > 0 ? n : usable_cores()); }

SerialScope::SerialScope(bool active) : active_(active) {
  if (active_) ++t_serial_depth;
}
SerialScope::~SerialScope() {
  if (active_) --t_serial_depth;
}

void parallel_for(index_t n_blocks, const std::function<void(index_t)>& fn) {
  if (n_blocks <= 0) return;
  const int workers = t_serial_depth > 0 ? 1 : static_cast<int>(std::min<index_t>(num_threads(), n_blocks));
  if (workers <= 1) {
    for (index_t b = 0; b < n_blocks; ++b) fn(b);
    return;
  }
  std::atomic<index_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto work = [&]() {
    for (index_t b = next.fetch_add(1); b < n_blocks && !failed.load(); b = next.fetch_add(1)) {
      try {
        fn(b);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        failed.store(true);
      }
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(workers - 1);
  for (int t = 1; t < workers; ++t) pool.emplace_back(work);
  work();
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace tasklens
