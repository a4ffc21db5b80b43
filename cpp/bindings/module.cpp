// The native module tasklens._C. Each op registers its functions from its own binding file.
#include <pybind11/pybind11.h>

#include "tasklens/common.h"
#include "tasklens/parallel.h"
#include "tasklens/cuda_runtime_info.h"

namespace py = pybind11;

namespace tasklens::bind {
void bind_boxes(py::module_& m);
void bind_hscore(py::module_& m);
void bind_ace(py::module_& m);
void bind_distance(py::module_& m);
}  // namespace tasklens::bind

PYBIND11_MODULE(_C, m) {
  m.doc() = "tasklens native kernels (C++ CPU kernels, optional CUDA kernels)";
  m.attr("build_type") = TASKLENS_BUILD_TYPE;
  m.attr("cxx_compiler") = TASKLENS_CXX_COMPILER;
#ifdef TASKLENS_WITH_CUDA
  m.attr("cuda_compiled") = true;
  m.attr("cuda_compiler") = TASKLENS_CUDA_COMPILER;
  m.attr("cuda_architectures") = TASKLENS_CUDA_ARCHS;
#else
  m.attr("cuda_compiled") = false;
  m.attr("cuda_compiler") = "";
  m.attr("cuda_architectures") = "";
#endif
  py::enum_<tasklens::DType>(m, "DType", "Floating dtype tag of the CUDA ops (first argument of every *_cuda op that takes one).")
      .value("float32", tasklens::DType::float32)
      .value("float64", tasklens::DType::float64);
  m.def("num_threads", &tasklens::num_threads, "Threads used by CPU kernels.");
  m.attr("max_threads") = tasklens::kMaxThreads;
  m.def("set_num_threads", &tasklens::set_num_threads, py::arg("n"),
        "Set the threads used by CPU kernels (n <= 0 restores the default).");
  m.def("cuda_device_count", []() {
    const auto info = tasklens::cuda_runtime_info();
    return py::make_tuple(info.device_count, info.message);
  }, "(number of visible CUDA devices, reason when 0). Always (0, ...) when CUDA was not compiled.");

  tasklens::bind::bind_boxes(m);
  tasklens::bind::bind_hscore(m);
  tasklens::bind::bind_ace(m);
  tasklens::bind::bind_distance(m);

  // A TASKLENS_NUM_THREADS that could not be used is reported when the module is first imported (the first use
  // of the native kernels); with warnings turned into errors the import fails with the same text.
  if (!tasklens::num_threads_env_problem().empty() &&
      PyErr_WarnEx(PyExc_RuntimeWarning, tasklens::num_threads_env_problem().c_str(), 1) < 0)
    throw py::error_already_set();
}
