// Helpers shared by the CUDA launchers.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#define TL_CUDA_CHECK(expr)                                                                      \
  do {                                                                                           \
    const cudaError_t tl_err_ = (expr);                                                          \
    if (tl_err_ != cudaSuccess)                                                                  \
      throw std::runtime_error(std::string("tasklens CUDA error: ") + cudaGetErrorString(tl_err_) \
                               + " at " + __FILE__ + ":" + std::to_string(__LINE__));            \
  } while (0)

namespace tasklens::cuda {

// Makes `device` current for the lifetime of the guard and restores the caller's device after.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    TL_CUDA_CHECK(cudaGetDevice(&previous_));
    if (device != previous_) TL_CUDA_CHECK(cudaSetDevice(device));
  }
  ~DeviceGuard() { cudaSetDevice(previous_); }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
};

inline cudaStream_t as_stream(std::uintptr_t s) { return reinterpret_cast<cudaStream_t>(s); }

inline unsigned int blocks_for(std::int64_t n, int threads) {
  return static_cast<unsigned int>((n + threads - 1) / threads);
}

// Checks the launch and, unlike a synchronising check, leaves the stream running.
inline void check_launch() { TL_CUDA_CHECK(cudaGetLastError()); }

}  // namespace tasklens::cuda
