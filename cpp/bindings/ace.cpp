// Bindings of the ACE kernels: ace_fit (CPU), ace_joint_counts (CPU), ace_fit_cuda (CUDA builds).
#include <cstdint>
#include <limits>

#include "buffers.h"
#include "tasklens/ace.h"

namespace tasklens::bind {

namespace {

void check_sizes(const carray<std::int64_t>& a, const carray<std::int64_t>& s, index_t na, index_t ns) {
  require(a.ndim() == 1 && s.ndim() == 1 && a.shape(0) == s.shape(0), "ace: codes must be 1-D of equal length");
  require(na >= 1 && ns >= 1, "ace: alphabet sizes must be >= 1");
  const index_t lim = std::numeric_limits<std::int32_t>::max();
  require(na <= lim && ns <= lim, "ace: alphabet sizes must be < 2^31");
}

template <class T>
carray<T> to_array(const std::vector<T>& v, std::vector<py::ssize_t> shape) {
  auto out = empty<T>(shape);
  std::copy(v.begin(), v.end(), mutable_data(out));
  return out;
}

}  // namespace

void bind_ace(py::module_& m) {
  m.def("ace_fit",
        [](const carray<std::int64_t>& a, const carray<std::int64_t>& s, index_t na, index_t ns, int k, int b,
           int max_iter, double tol, std::uint64_t seed, int mode) {
          check_sizes(a, s, na, ns);
          ace::Result r;
          {
            py::gil_scoped_release release;
            r = ace::fit(data(a), data(s), a.shape(0), na, ns, k, b, max_iter, tol, seed, mode);
          }
          return py::make_tuple(to_array(r.fa, {na, k}), to_array(r.fs, {ns, k}), to_array(r.corr, {k}),
                                r.iterations, r.converged, r.mode);
        },
        py::arg("a"), py::arg("s"), py::arg("na"), py::arg("ns"), py::arg("k"), py::arg("b"), py::arg("max_iter"),
        py::arg("tol"), py::arg("seed"), py::arg("mode"),
        "ACE on codes a (computed side) and s (iterated side): (fa, fs, correlations, iterations, converged, mode).");
  m.def("ace_joint_counts",
        [](const carray<std::int64_t>& a, const carray<std::int64_t>& s, index_t na, index_t ns) {
          check_sizes(a, s, na, ns);
          ace::Csr c;
          {
            py::gil_scoped_release release;
            c = ace::build_csr(data(a), data(s), a.shape(0), na, ns);
          }
          const auto nnz = static_cast<py::ssize_t>(c.cols.size());
          return py::make_tuple(to_array(c.ptr, {na + 1}), to_array(c.cols, {nnz}), to_array(c.vals, {nnz}));
        },
        py::arg("a"), py::arg("s"), py::arg("na"), py::arg("ns"),
        "Joint counts as CSR over a: (indptr, indices, counts), columns sorted within rows.");
#ifdef TASKLENS_WITH_CUDA
  m.def("ace_fit_cuda",
        [](std::uintptr_t a, std::uintptr_t s, index_t n, index_t na, index_t ns, int k, int b, int max_iter,
           double tol, std::uint64_t seed, std::uintptr_t fa, std::uintptr_t fs, std::uintptr_t corr, int device,
           std::uintptr_t stream) {
          require(n >= 1 && na >= 1 && ns >= 1, "ace: empty input");
          std::pair<int, bool> r;
          {
            py::gil_scoped_release release;
            r = ace::fit_cuda(device_ptr<const std::int64_t>(a), device_ptr<const std::int64_t>(s), n, na, ns, k, b,
                              max_iter, tol, seed, device_ptr<double>(fa), device_ptr<double>(fs),
                              device_ptr<double>(corr), device, stream);
          }
          return py::make_tuple(r.first, r.second);
        },
        py::arg("a"), py::arg("s"), py::arg("n"), py::arg("na"), py::arg("ns"), py::arg("k"), py::arg("b"),
        py::arg("max_iter"), py::arg("tol"), py::arg("seed"), py::arg("fa"), py::arg("fs"), py::arg("corr"),
        py::arg("device"), py::arg("stream"),
        "ACE on device codes (alternating sparse products); writes fa, fs, corr; returns (iterations, converged).");
#endif
}

}  // namespace tasklens::bind
