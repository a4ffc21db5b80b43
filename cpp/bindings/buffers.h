// Helpers shared by the pybind11 binding files.
//
// CPU kernels receive C-contiguous numpy arrays that the Python layer has already validated
// (python/tasklens/_validation.py) and return freshly allocated numpy arrays.
// CUDA kernels receive raw device pointers (std::uintptr_t), sizes, the device index and the
// caller's cudaStream_t (as an integer); outputs are preallocated by the Python layer.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "tasklens/common.h"

namespace tasklens::bind {

namespace py = pybind11;

template <class T>
using carray = py::array_t<T, py::array::c_style>;

template <class T>
const T* data(const carray<T>& a) {
  return a.data();
}

template <class T>
T* mutable_data(carray<T>& a) {
  return a.mutable_data();
}

template <class T>
carray<T> empty(std::vector<py::ssize_t> shape) {
  return carray<T>(shape);
}

// Checks a dimension that the Python layer should already have validated; a failure here is a bug.
inline void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("tasklens._C: " + what);
}

template <class T>
T* device_ptr(std::uintptr_t p) {
  return reinterpret_cast<T*>(p);
}

}  // namespace tasklens::bind
