// Bindings of the H-score streaming covariance engine. Inputs are validated by python/tasklens/metrics/hscore.py;
// the checks here only guard against internal misuse.
#include <cstdint>
#include <string>
#include <utility>

#include "buffers.h"
#include "tasklens/hscore.h"
#include "tasklens/parallel.h"

namespace tasklens::bind {

namespace {

template <class T>
py::tuple block_moments(const carray<T>& x, bool serial) {
  require(x.ndim() == 2, "hscore_block_moments: x must be 2-D");
  const index_t rows = x.shape(0), features = x.shape(1);
  auto mean = empty<double>({features});
  auto v3 = empty<double>({features});
  auto xc = empty<T>({rows, features});
  double q4;
  {
    py::gil_scoped_release release;
    SerialScope scope(serial);
    q4 = hscore::block_moments_cpu<T>(data(x), rows, features, mutable_data(mean), mutable_data(xc),
                                      mutable_data(v3));
  }
  return py::make_tuple(mean, xc, v3, q4);
}

template <class T>
py::tuple block_moments_shifted(const carray<T>& x, const carray<double>& shift, bool serial) {
  require(x.ndim() == 2 && shift.ndim() == 1 && shift.shape(0) == x.shape(1),
          "hscore_block_moments_shifted: shapes disagree");
  const index_t rows = x.shape(0), features = x.shape(1);
  auto v3 = empty<double>({features});
  auto xc = empty<T>({rows, features});
  double q4;
  {
    py::gil_scoped_release release;
    SerialScope scope(serial);
    q4 = hscore::block_moments_shifted_cpu<T>(data(x), rows, features, data(shift), mutable_data(xc),
                                              mutable_data(v3));
  }
  return py::make_tuple(xc, v3, q4);
}

template <class T>
py::tuple half_pass(const carray<T>& x, const carray<double>& shift, const carray<std::int64_t>& labels,
                    const carray<double>& offset, carray<double>& sums, carray<std::int64_t>& counts,
                    carray<double>& total) {
  require(x.ndim() == 2 && labels.ndim() == 2 && sums.ndim() == 3 && counts.ndim() == 2 && total.ndim() == 1,
          "hscore_half_pass: bad ranks");
  const index_t rows = x.shape(0), features = x.shape(1), targets = labels.shape(1), classes = sums.shape(1);
  require(shift.shape(0) == features && offset.shape(0) == features && total.shape(0) == features &&
              labels.shape(0) == rows && sums.shape(0) == targets && sums.shape(2) == features &&
              counts.shape(0) == targets && counts.shape(1) == classes,
          "hscore_half_pass: shapes disagree");
  auto v3 = empty<double>({features});
  auto xc = empty<T>({rows, features});
  double q4;
  {
    py::gil_scoped_release release;
    q4 = hscore::half_pass_cpu<T>(data(x), rows, features, data(shift), mutable_data(xc), mutable_data(v3),
                                  data(labels), targets, classes, data(offset), mutable_data(sums),
                                  mutable_data(counts), mutable_data(total));
  }
  return py::make_tuple(xc, v3, q4);
}

// [begin, end) from an optional (begin, end) tuple; the whole range [0, n) when None.
std::pair<index_t, index_t> range_arg(const py::object& r, index_t n, const char* what) {
  if (r.is_none()) return {0, n};
  auto t = r.cast<std::pair<index_t, index_t>>();
  require(0 <= t.first && t.first <= t.second && t.second <= n, std::string("hscore_class_sums: bad ") + what);
  return t;
}

template <class T>
void class_sums(const carray<T>& xc, const carray<std::int64_t>& labels, const carray<double>& offset,
                carray<double>& sums, carray<std::int64_t>& counts, const py::object& total,
                const py::object& targets_range, const py::object& columns_range, bool serial) {
  require(xc.ndim() == 2 && labels.ndim() == 2 && sums.ndim() == 3 && counts.ndim() == 2,
          "hscore_class_sums: bad ranks");
  const index_t rows = xc.shape(0), features = xc.shape(1), targets = labels.shape(1), classes = sums.shape(1);
  require(labels.shape(0) == rows && sums.shape(0) == targets && sums.shape(2) == features &&
              counts.shape(0) == targets && counts.shape(1) == classes && offset.shape(0) == features,
          "hscore_class_sums: shapes disagree");
  const auto [t0, t1] = range_arg(targets_range, targets, "targets range");
  const auto [f0, f1] = range_arg(columns_range, features, "columns range");
  require(f0 % hscore::kClassTile == 0 && (f1 == features || f1 % hscore::kClassTile == 0),
          "hscore_class_sums: column range must be cut at multiples of the class-sum tile");
  double* total_ptr = nullptr;
  if (!total.is_none()) {
    auto tot = total.cast<carray<double>>();
    require(tot.ndim() == 1 && tot.shape(0) == features, "hscore_class_sums: total must have shape (F,)");
    total_ptr = mutable_data(tot);
  }
  py::gil_scoped_release release;
  SerialScope scope(serial);
  hscore::class_sums_cpu<T>(data(xc), rows, features, data(labels), targets, classes, data(offset),
                            mutable_data(sums), mutable_data(counts), total_ptr, t0, t1, f0, f1);
}

}  // namespace

void bind_hscore(py::module_& m) {
  m.attr("hscore_class_tile") = hscore::kClassTile;  // column ranges of hscore_class_sums are cut at multiples
  m.def("hscore_block_moments", &block_moments<float>, py::arg("x"), py::arg("serial") = false);
  m.def("hscore_block_moments", &block_moments<double>, py::arg("x"), py::arg("serial") = false,
        "(mean, x - mean, v3, q4) of a block of rows, float64 sums in a fixed order; serial: run on the "
        "calling thread only.");
  m.def("hscore_block_moments_shifted", &block_moments_shifted<float>, py::arg("x"), py::arg("shift"),
        py::arg("serial") = false);
  m.def("hscore_block_moments_shifted", &block_moments_shifted<double>, py::arg("x"), py::arg("shift"),
        py::arg("serial") = false,
        "(x - shift, v3, q4) about a fixed shift, one read of x (float64 sums in a fixed order).");
  m.def(
      "hscore_recentre_moments",
      [](double n, const carray<double>& d, carray<double>& gram, carray<double>& v3, double q4, bool serial) {
        const index_t F = d.shape(0);
        require(gram.size() == F * F && v3.shape(0) == F, "hscore_recentre_moments: shapes disagree");
        py::gil_scoped_release release;
        SerialScope scope(serial);
        return hscore::recentre_moments_cpu(F, n, data(d), mutable_data(gram), mutable_data(v3), q4);
      },
      py::arg("n"), py::arg("d"), py::arg("gram"), py::arg("v3"), py::arg("q4"), py::arg("serial") = false,
      "Moments about a shift -> about the mean (gram and v3 in place); returns the centred q4.");
  m.def("hscore_half_pass", &half_pass<float>, py::arg("x"), py::arg("shift"), py::arg("labels"),
        py::arg("offset"), py::arg("sums"), py::arg("counts"), py::arg("total"));
  m.def("hscore_half_pass", &half_pass<double>, py::arg("x"), py::arg("shift"), py::arg("labels"),
        py::arg("offset"), py::arg("sums"), py::arg("counts"), py::arg("total"),
        "hscore_block_moments_shifted and hscore_class_sums (every target and column, total added) fused in one "
        "serial read of x; same bits as the two calls. Returns (x - shift, v3, q4).");
  m.def("hscore_class_sums", &class_sums<float>, py::arg("xc"), py::arg("labels"), py::arg("offset"),
        py::arg("sums"), py::arg("counts"), py::arg("total") = py::none(), py::arg("targets") = py::none(),
        py::arg("columns") = py::none(), py::arg("serial") = false);
  m.def("hscore_class_sums", &class_sums<double>, py::arg("xc"), py::arg("labels"), py::arg("offset"),
        py::arg("sums"), py::arg("counts"), py::arg("total") = py::none(), py::arg("targets") = py::none(),
        py::arg("columns") = py::none(), py::arg("serial") = false,
        "Adds per-class counts and shifted sums (float64) of a centred block for T label vectors in place; "
        "sum_i xc_i is added to total (F,); targets / columns restrict the work to (begin, end) ranges.");
  m.def(
      "hscore_merge_moments",
      [](double n_a, carray<double>& mean_a, carray<double>& scatter_a, carray<double>& v3_a, double q4_a,
         double n_b, const carray<double>& mean_b, const carray<double>& scatter_b, const carray<double>& v3_b,
         double q4_b, bool serial) {
        const index_t F = mean_a.shape(0);
        require(scatter_a.size() == F * F && scatter_b.size() == F * F && mean_b.shape(0) == F &&
                    v3_a.shape(0) == F && v3_b.shape(0) == F,
                "hscore_merge_moments: shapes disagree");
        py::gil_scoped_release release;
        SerialScope scope(serial);
        return hscore::merge_moments_cpu(F, n_a, mutable_data(mean_a), mutable_data(scatter_a),
                                         mutable_data(v3_a), q4_a, n_b, data(mean_b), data(scatter_b),
                                         data(v3_b), q4_b);
      },
      py::arg("n_a"), py::arg("mean_a"), py::arg("scatter_a"), py::arg("v3_a"), py::arg("q4_a"), py::arg("n_b"),
      py::arg("mean_b"), py::arg("scatter_b"), py::arg("v3_b"), py::arg("q4_b"), py::arg("serial") = false,
      "Chan merge of summary b into a (in place); returns the merged q4.");

#ifdef TASKLENS_WITH_CUDA
  m.def(
      "hscore_block_moments_cuda",
      [](DType dtype, std::uintptr_t x, index_t rows, index_t features, std::uintptr_t mean, std::uintptr_t xc,
         std::uintptr_t v3, std::uintptr_t q4, std::uintptr_t norms, int device,
         std::uintptr_t stream) {
        py::gil_scoped_release release;
        if (dtype == DType::float64)
          hscore::block_moments_cuda<double>(device_ptr<const double>(x), rows, features, device_ptr<double>(mean),
                                             device_ptr<double>(xc), device_ptr<double>(v3),
                                             device_ptr<double>(q4), device_ptr<double>(norms), device, stream);
        else
          hscore::block_moments_cuda<float>(device_ptr<const float>(x), rows, features, device_ptr<double>(mean),
                                            device_ptr<float>(xc), device_ptr<double>(v3), device_ptr<double>(q4),
                                            device_ptr<double>(norms), device, stream);
      });
  m.def(
      "hscore_class_sums_cuda",
      [](DType dtype, std::uintptr_t xc, index_t rows, index_t features, std::uintptr_t labels, index_t targets,
         index_t classes, std::uintptr_t offset, std::uintptr_t sums, std::uintptr_t counts,
         std::uintptr_t partial, index_t segments, int device, std::uintptr_t stream) {
        py::gil_scoped_release release;
        if (dtype == DType::float64)
          hscore::class_sums_cuda<double>(device_ptr<const double>(xc), rows, features,
                                          device_ptr<const std::int64_t>(labels), targets, classes,
                                          device_ptr<const double>(offset), device_ptr<double>(sums),
                                          device_ptr<std::int64_t>(counts), device_ptr<double>(partial), segments,
                                          device, stream);
        else
          hscore::class_sums_cuda<float>(device_ptr<const float>(xc), rows, features,
                                         device_ptr<const std::int64_t>(labels), targets, classes,
                                         device_ptr<const double>(offset), device_ptr<double>(sums),
                                         device_ptr<std::int64_t>(counts), device_ptr<double>(partial), segments,
                                         device, stream);
      });
  m.def("hscore_class_sum_segments_cuda", &hscore::class_sum_segments_cuda, py::arg("rows"),
        py::arg("features"), py::arg("targets"), py::arg("classes") = 1,
        "Row segments of the CUDA class sums for a block; pass `classes` so that the scratch of "
        "segments * targets * classes * features float64 stays under 256 MiB (classes=1: the former count).");
  m.def(
      "hscore_merge_moments_cuda",
      [](index_t features, double n_a, std::uintptr_t mean_a, std::uintptr_t scatter_a, std::uintptr_t v3_a,
         std::uintptr_t q4_a, double n_b, std::uintptr_t mean_b, std::uintptr_t scatter_b, std::uintptr_t v3_b,
         std::uintptr_t q4_b, std::uintptr_t work, int device, std::uintptr_t stream) {
        py::gil_scoped_release release;
        hscore::merge_moments_cuda(features, n_a, device_ptr<double>(mean_a), device_ptr<double>(scatter_a),
                                   device_ptr<double>(v3_a), device_ptr<double>(q4_a), n_b,
                                   device_ptr<const double>(mean_b), device_ptr<const double>(scatter_b),
                                   device_ptr<const double>(v3_b), device_ptr<const double>(q4_b),
                                   device_ptr<double>(work), device, stream);
      });
#endif
}

}  // namespace tasklens::bind
