#include "tasklens/parallel.h"

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <string>
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

// The problem with TASKLENS_NUM_THREADS ("" when it is unset or valid), reported once by the module's import.
std::string& env_problem() {
  static std::string problem;
  return problem;
}

// TASKLENS_NUM_THREADS as a whole number in [1, kMaxThreads] (surrounding blanks allowed); anything else
// (text, 2.5, 0, negative, too large) is reported and the usable cores are used.
int initial_threads() {
  const char* env = std::getenv("TASKLENS_NUM_THREADS");
  if (env == nullptr) return usable_cores();
  errno = 0;
  char* end = nullptr;
  const long long n = std::strtoll(env, &end, 10);
  while (end != nullptr && (*end == ' ' || *end == '\t' || *end == '\n')) ++end;
  const bool whole = end != env && end != nullptr && *end == '\0' && errno == 0;
  if (whole && n >= 1 && n <= kMaxThreads) return static_cast<int>(n);
  const int cores = usable_cores();
  env_problem() = "TASKLENS_NUM_THREADS='" + std::string(env) + "' is not a whole number of threads between 1 and " +
                  std::to_string(kMaxThreads) + "; using the " + std::to_string(cores) + " usable cores instead";
  return cores;
}

std::atomic<int> g_threads{initial_threads()};
thread_local int t_serial_depth = 0;

}  // namespace

int num_threads() { return g_threads.load(); }

const std::string& num_threads_env_problem() { return env_problem(); }

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
