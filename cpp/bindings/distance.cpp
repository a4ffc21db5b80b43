// Bindings of the domain-distance kernels (prefix distance_). Arrays arrive validated and C-contiguous
// from python/tasklens/domain/_kernels.py; the GIL is released around every loop.
#include <pybind11/stl.h>

#include <optional>

#include "buffers.h"
#include "tasklens/distance.h"
#include "tasklens/distance_math.h"
#include "tasklens/parallel.h"

namespace tasklens::bind {

namespace {

namespace dist = tasklens::distance;

struct StateArrays {
  carray<float> best;
  carray<float> eps2;
  carray<std::int8_t> cnt;
  carray<std::int32_t> idx;
  carray<float> val;

  dist::State view(index_t expect_rows = -1) {
    require(best.ndim() == 2, "state best must be 2-D");
    const index_t n = best.shape(0), m = best.shape(1);
    require(expect_rows < 0 || expect_rows <= n, "state has too few rows");
    require(eps2.ndim() == 2 && eps2.shape(0) == n && eps2.shape(1) == m, "state eps2 shape");
    require(cnt.ndim() == 2 && cnt.shape(0) == n && cnt.shape(1) == m, "state cnt shape");
    require(idx.size() == n * m * dist::kCandidates && val.size() == n * m * dist::kCandidates,
            "state candidate arrays shape");
    return {m, best.mutable_data(), eps2.data(), cnt.mutable_data(), idx.mutable_data(), val.mutable_data()};
  }
};

void check_tile(const carray<float>& tile, index_t i0, index_t j0, index_t n_rows_total, index_t n_cols_total) {
  require(tile.ndim() == 2, "tile must be 2-D");
  require(i0 >= 0 && i0 + tile.shape(0) <= n_rows_total, "tile rows out of range");
  require(j0 >= 0 && j0 + tile.shape(1) <= n_cols_total, "tile columns out of range");
}

template <class T>
py::tuple finalize(StateArrays st, const carray<T>& tgt, std::optional<carray<double>> inv_tgt,
                   const carray<T>& src, std::optional<carray<double>> inv_src, const carray<std::int64_t>& off,
                   int metric, bool serial) {
  require(tgt.ndim() == 2 && src.ndim() == 2 && tgt.shape(1) == src.shape(1), "finalize: row shapes");
  const index_t n = tgt.shape(0), d = tgt.shape(1);
  dist::State s = st.view();
  require(st.best.shape(0) == n && off.size() == s.n_seg + 1, "finalize: state/offset shapes");
  require(off.data()[s.n_seg] == src.shape(0), "finalize: offsets must end at the source row count");
  require(!inv_tgt || inv_tgt->size() == n, "finalize: inv_tgt length");
  require(!inv_src || inv_src->size() == src.shape(0), "finalize: inv_src length");
  auto out = empty<double>({n, s.n_seg});
  auto index = empty<std::int64_t>({n, s.n_seg});
  const double* it = inv_tgt ? inv_tgt->data() : nullptr;
  const double* is = inv_src ? inv_src->data() : nullptr;
  double* po = out.mutable_data();
  std::int64_t* pi = index.mutable_data();
  {
    py::gil_scoped_release release;
    SerialScope scope(serial);
    dist::finalize<T>(s, tgt.data(), it, src.data(), is, off.data(), n, d, metric, po, pi);
  }
  return py::make_tuple(out, index);
}

}  // namespace

void bind_distance(py::module_& m) {
  m.attr("distance_candidates") = dist::kCandidates;

  m.def("distance_reduce_rows",
        [](const carray<float>& tile, index_t i0, index_t j0, const carray<float>& norm_src,
           const carray<std::int32_t>& seg_src, const carray<std::int64_t>& off_src, StateArrays st, bool serial) {
          dist::State s = st.view();
          check_tile(tile, i0, j0, st.best.shape(0), norm_src.size());
          require(seg_src.size() == norm_src.size() && off_src.size() == s.n_seg + 1, "reduce_rows: segments");
          py::gil_scoped_release release;
          SerialScope scope(serial);
          dist::reduce_rows(tile.data(), tile.shape(0), tile.shape(1), tile.shape(1), i0, j0, norm_src.data(),
                            seg_src.data(), off_src.data(), s);
        },
        py::arg("tile"), py::arg("i0"), py::arg("j0"), py::arg("norm_src"), py::arg("seg_src"),
        py::arg("off_src"), py::arg("state"), py::arg("serial") = false,
        "Fold a tile of dot products (targets i0.. x sources j0..) into each target row's per-dataset candidates.");
  m.def("distance_reduce_cols",
        [](const carray<float>& tile, index_t i0, index_t j0, const carray<float>& norm_rows,
           const carray<std::int32_t>& seg_rows, const carray<std::int64_t>& off_rows, StateArrays st, bool serial) {
          dist::State s = st.view();
          check_tile(tile, i0, j0, norm_rows.size(), st.best.shape(0));
          require(seg_rows.size() == norm_rows.size() && off_rows.size() == s.n_seg + 1, "reduce_cols: segments");
          py::gil_scoped_release release;
          SerialScope scope(serial);
          dist::reduce_cols(tile.data(), tile.shape(0), tile.shape(1), tile.shape(1), i0, j0, norm_rows.data(),
                            seg_rows.data(), off_rows.data(), s);
        },
        py::arg("tile"), py::arg("i0"), py::arg("j0"), py::arg("norm_rows"), py::arg("seg_rows"),
        py::arg("off_rows"), py::arg("state"), py::arg("serial") = false,
        "The transposed reduction: the tile's columns are the targets, its rows the source rows.");
  m.def("distance_finalize", &finalize<float>, py::arg("state"), py::arg("tgt"), py::arg("inv_tgt"),
        py::arg("src"), py::arg("inv_src"), py::arg("off_src"), py::arg("metric"), py::arg("serial") = false);
  m.def("distance_finalize", &finalize<double>, py::arg("state"), py::arg("tgt"), py::arg("inv_tgt"),
        py::arg("src"), py::arg("inv_src"), py::arg("off_src"), py::arg("metric"), py::arg("serial") = false,
        "Exact float64 re-scoring of the candidates -> (distance (n, M) float64, index (n, M) int64); serial: "
        "run on the calling thread only.");
  m.def("distance_tile_dot",
        [](const carray<float>& a, const carray<float>& b, carray<float> out, bool serial) {
          require(a.ndim() == 2 && b.ndim() == 2 && a.shape(1) == b.shape(1), "tile_dot: shapes");
          require(out.ndim() == 2 && out.shape(0) == a.shape(0) && out.shape(1) == b.shape(0), "tile_dot: out");
          float* po = out.mutable_data();
          py::gil_scoped_release release;
          SerialScope scope(serial);
          dist::tile_dot(a.data(), b.data(), a.shape(0), b.shape(0), a.shape(1), po, out.shape(1));
        },
        py::arg("a"), py::arg("b"), py::arg("out"), py::arg("serial") = false, "out = a @ b.T in float32 (AVX2/FMA micro-kernel).");

#ifdef TASKLENS_WITH_CUDA
  m.def("distance_segmin_cuda",
        [](DType dtype, std::uintptr_t tgt, std::uintptr_t src, index_t n_t, index_t n_s, index_t d, std::uintptr_t seg,
           index_t n_seg, std::uintptr_t packed, int device, std::uintptr_t stream) {
          require(n_s < (index_t(1) << 32), "segmin_cuda: at most 2^32 source rows");
          py::gil_scoped_release release;
          dist::segmin_cuda(device_ptr<const void>(tgt), device_ptr<const void>(src), n_t, n_s, d,
                            device_ptr<const std::int32_t>(seg), n_seg, device_ptr<unsigned long long>(packed),
                            dtype, device, stream);
        },
        py::arg("dtype"), py::arg("tgt"), py::arg("src"), py::arg("n_t"), py::arg("n_s"), py::arg("d"), py::arg("seg"),
        py::arg("n_seg"), py::arg("packed"), py::arg("device"), py::arg("stream"),
        "Fused tiled distances + segmented min on the GPU (packed must be filled with ~0).");
  m.def("distance_finalize_cuda",
        [](DType dtype, std::uintptr_t tgt, std::uintptr_t inv_t, std::uintptr_t src, std::uintptr_t inv_s,
           std::uintptr_t packed, index_t n_t, index_t n_seg, index_t d, int metric, std::uintptr_t dist_out,
           std::uintptr_t idx_out, int device, std::uintptr_t stream) {
          py::gil_scoped_release release;
          dist::finalize_cuda(device_ptr<const void>(tgt), device_ptr<const double>(inv_t),
                              device_ptr<const void>(src), device_ptr<const double>(inv_s),
                              device_ptr<const unsigned long long>(packed), n_t, n_seg, d, metric,
                              device_ptr<double>(dist_out), device_ptr<std::int64_t>(idx_out), dtype, device, stream);
        },
        py::arg("dtype"), py::arg("tgt"), py::arg("inv_t"), py::arg("src"), py::arg("inv_s"), py::arg("packed"),
        py::arg("n_t"), py::arg("n_seg"), py::arg("d"), py::arg("metric"), py::arg("dist"), py::arg("idx"),
        py::arg("device"), py::arg("stream"), "Exact float64 re-scoring of the GPU winners (inv_* may be 0).");
  m.def("distance_segment_mean_cuda",
        [](std::uintptr_t dist_in, index_t n_cols, std::uintptr_t offsets, index_t n_seg, std::uintptr_t out,
           int device, std::uintptr_t stream) {
          py::gil_scoped_release release;
          dist::segment_mean_cuda(device_ptr<const double>(dist_in), n_cols, device_ptr<const std::int64_t>(offsets),
                                  n_seg, device_ptr<double>(out), device, stream);
        },
        py::arg("dist"), py::arg("n_cols"), py::arg("offsets"), py::arg("n_seg"), py::arg("out"), py::arg("device"),
        py::arg("stream"),
        "Per-segment column means of a float64 (rows, n_cols) matrix, summed in row order (offsets: int64, n_seg + 1).");
#endif

  py::class_<StateArrays>(m, "DistanceState")
      .def(py::init<carray<float>, carray<float>, carray<std::int8_t>, carray<std::int32_t>, carray<float>>(),
           py::arg("best"), py::arg("eps2"), py::arg("cnt"), py::arg("idx"), py::arg("val"));
}

}  // namespace tasklens::bind
