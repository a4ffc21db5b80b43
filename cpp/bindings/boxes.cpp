// Bindings of the box kernels (boxes_*). Inputs are validated by python/tasklens/boxes/ops.py; the checks
// here only guard against internal misuse. Every function is registered for float32 and float64 arrays.
#include "tasklens/boxes.h"

#include "buffers.h"

namespace tasklens::bind {

namespace {

using boxes::Options;

Options make_options(int mode, double volume_temperature, double intersection_temperature, bool clip, bool log) {
  Options o;
  o.mode = mode;
  o.volume_temperature = volume_temperature;
  o.intersection_temperature = intersection_temperature;
  o.clip = clip;
  o.log = log;
  return o;
}

template <class T>
void require_boxes(const carray<T>& lo, const carray<T>& hi, const char* what) {
  require(lo.ndim() == 2 && hi.ndim() == 2 && lo.shape(0) == hi.shape(0) && lo.shape(1) == hi.shape(1),
          std::string(what) + ": lo and hi must be 2-D arrays of one shape");
}

template <class T>
void bind_dtype(py::module_& m) {
  m.def("boxes_log_volume", [](const carray<T>& lo, const carray<T>& hi, int mode, double vt, double it) {
    require_boxes(lo, hi, "boxes_log_volume");
    const index_t n = lo.shape(0), k = lo.shape(1);
    auto out = empty<T>({n});
    T* po = out.mutable_data();
    const Options o = make_options(mode, vt, it, false, false);
    {
      py::gil_scoped_release nogil;
      boxes::log_volume_cpu<T>(lo.data(), hi.data(), n, k, o, po);
    }
    return out;
  });
  m.def("boxes_log_volume_backward", [](const carray<T>& lo, const carray<T>& hi, const carray<T>& grad, int mode,
                                        double vt, double it) {
    require_boxes(lo, hi, "boxes_log_volume_backward");
    const index_t n = lo.shape(0), k = lo.shape(1);
    require(grad.ndim() == 1 && grad.shape(0) == n, "boxes_log_volume_backward: grad must have shape (n,)");
    auto g_lo = empty<T>({n, k});
    auto g_hi = empty<T>({n, k});
    T *pl = g_lo.mutable_data(), *ph = g_hi.mutable_data();
    const Options o = make_options(mode, vt, it, false, false);
    {
      py::gil_scoped_release nogil;
      boxes::log_volume_backward_cpu<T>(lo.data(), hi.data(), grad.data(), n, k, o, pl, ph);
    }
    return py::make_tuple(g_lo, g_hi);
  });
  m.def("boxes_intersection", [](const carray<T>& lo_a, const carray<T>& hi_a, const carray<T>& lo_b,
                                 const carray<T>& hi_b, int mode, double it, bool clip) {
    require_boxes(lo_a, hi_a, "boxes_intersection");
    require_boxes(lo_b, hi_b, "boxes_intersection");
    require(lo_a.shape(0) == lo_b.shape(0) && lo_a.shape(1) == lo_b.shape(1),
            "boxes_intersection: a and b must have one shape");
    const index_t n = lo_a.shape(0), k = lo_a.shape(1);
    auto lo = empty<T>({n, k});
    auto hi = empty<T>({n, k});
    T *pl = lo.mutable_data(), *ph = hi.mutable_data();
    const Options o = make_options(mode, 1.0, it, clip, false);
    {
      py::gil_scoped_release nogil;
      boxes::intersection_cpu<T>(lo_a.data(), hi_a.data(), lo_b.data(), hi_b.data(), n, k, o, pl, ph);
    }
    return py::make_tuple(lo, hi);
  });
  m.def("boxes_intersection_backward", [](const carray<T>& lo_a, const carray<T>& hi_a, const carray<T>& lo_b,
                                          const carray<T>& hi_b, const carray<T>& g_lo, const carray<T>& g_hi,
                                          int mode, double it, bool clip) {
    require_boxes(lo_a, hi_a, "boxes_intersection_backward");
    const index_t n = lo_a.shape(0), k = lo_a.shape(1);
    require(lo_b.size() == n * k && hi_b.size() == n * k && g_lo.size() == n * k && g_hi.size() == n * k,
            "boxes_intersection_backward: all arrays must have shape (n, k)");
    auto a_lo = empty<T>({n, k}), a_hi = empty<T>({n, k}), b_lo = empty<T>({n, k}), b_hi = empty<T>({n, k});
    T *p1 = a_lo.mutable_data(), *p2 = a_hi.mutable_data(), *p3 = b_lo.mutable_data(), *p4 = b_hi.mutable_data();
    const Options o = make_options(mode, 1.0, it, clip, false);
    {
      py::gil_scoped_release nogil;
      boxes::intersection_backward_cpu<T>(lo_a.data(), hi_a.data(), lo_b.data(), hi_b.data(), g_lo.data(),
                                          g_hi.data(), n, k, o, p1, p2, p3, p4);
    }
    return py::make_tuple(a_lo, a_hi, b_lo, b_hi);
  });
  m.def("boxes_containment", [](const carray<T>& lo_a, const carray<T>& hi_a, const carray<T>& lo_b,
                                const carray<T>& hi_b, int mode, double vt, double it, bool log) {
    require_boxes(lo_a, hi_a, "boxes_containment");
    require_boxes(lo_b, hi_b, "boxes_containment");
    require(lo_a.shape(1) == lo_b.shape(1), "boxes_containment: a and b must have one k");
    const index_t n = lo_a.shape(0), m_ = lo_b.shape(0), k = lo_a.shape(1);
    auto out = empty<T>({n, m_});
    T* po = out.mutable_data();
    const Options o = make_options(mode, vt, it, false, log);
    {
      py::gil_scoped_release nogil;
      boxes::containment_cpu<T>(lo_a.data(), hi_a.data(), n, lo_b.data(), hi_b.data(), m_, k, o, po);
    }
    return out;
  });
  m.def("boxes_containment_backward", [](const carray<T>& lo_a, const carray<T>& hi_a, const carray<T>& lo_b,
                                         const carray<T>& hi_b, const carray<T>& out, const carray<T>& grad,
                                         int mode, double vt, double it, bool log) {
    require_boxes(lo_a, hi_a, "boxes_containment_backward");
    require_boxes(lo_b, hi_b, "boxes_containment_backward");
    const index_t n = lo_a.shape(0), m_ = lo_b.shape(0), k = lo_a.shape(1);
    require(lo_b.shape(1) == k && out.size() == n * m_ && grad.size() == n * m_,
            "boxes_containment_backward: out and grad must have shape (n, m)");
    auto a_lo = empty<T>({n, k}), a_hi = empty<T>({n, k}), b_lo = empty<T>({m_, k}), b_hi = empty<T>({m_, k});
    T *p1 = a_lo.mutable_data(), *p2 = a_hi.mutable_data(), *p3 = b_lo.mutable_data(), *p4 = b_hi.mutable_data();
    const Options o = make_options(mode, vt, it, false, log);
    {
      py::gil_scoped_release nogil;
      boxes::containment_backward_cpu<T>(lo_a.data(), hi_a.data(), n, lo_b.data(), hi_b.data(), m_, k,
                                         out.data(), grad.data(), o, p1, p2, p3, p4);
    }
    return py::make_tuple(a_lo, a_hi, b_lo, b_hi);
  });
  m.def("boxes_containment_pairs", [](const carray<T>& lo_a, const carray<T>& hi_a, const carray<T>& lo_b,
                                      const carray<T>& hi_b, const carray<std::int64_t>& idx_a,
                                      const carray<std::int64_t>& idx_b, int mode, double vt, double it, bool log) {
    require_boxes(lo_a, hi_a, "boxes_containment_pairs");
    require_boxes(lo_b, hi_b, "boxes_containment_pairs");
    const index_t n = lo_a.shape(0), m_ = lo_b.shape(0), k = lo_a.shape(1), p = idx_a.size();
    require(lo_b.shape(1) == k && idx_b.size() == p, "boxes_containment_pairs: k or pair counts differ");
    auto out = empty<T>({p});
    T* po = out.mutable_data();
    const Options o = make_options(mode, vt, it, false, log);
    {
      py::gil_scoped_release nogil;
      boxes::containment_pairs_cpu<T>(lo_a.data(), hi_a.data(), n, lo_b.data(), hi_b.data(), m_, k, idx_a.data(),
                                      idx_b.data(), p, o, po);
    }
    return out;
  });
  m.def("boxes_containment_pairs_backward",
        [](const carray<T>& lo_a, const carray<T>& hi_a, const carray<T>& lo_b, const carray<T>& hi_b,
           const carray<std::int64_t>& idx_a, const carray<std::int64_t>& idx_b, const carray<T>& out,
           const carray<T>& grad, int mode, double vt, double it, bool log) {
          require_boxes(lo_a, hi_a, "boxes_containment_pairs_backward");
          require_boxes(lo_b, hi_b, "boxes_containment_pairs_backward");
          const index_t n = lo_a.shape(0), m_ = lo_b.shape(0), k = lo_a.shape(1), p = idx_a.size();
          require(lo_b.shape(1) == k && idx_b.size() == p && out.size() == p && grad.size() == p,
                  "boxes_containment_pairs_backward: k or pair counts differ");
          auto a_lo = empty<T>({n, k}), a_hi = empty<T>({n, k}), b_lo = empty<T>({m_, k}), b_hi = empty<T>({m_, k});
          T *p1 = a_lo.mutable_data(), *p2 = a_hi.mutable_data(), *p3 = b_lo.mutable_data(),
            *p4 = b_hi.mutable_data();
          const Options o = make_options(mode, vt, it, false, log);
          {
            py::gil_scoped_release nogil;
            boxes::containment_pairs_backward_cpu<T>(lo_a.data(), hi_a.data(), n, lo_b.data(), hi_b.data(), m_, k,
                                                     idx_a.data(), idx_b.data(), p, out.data(), grad.data(), o, p1,
                                                     p2, p3, p4);
          }
          return py::make_tuple(a_lo, a_hi, b_lo, b_hi);
        });
}

#ifdef TASKLENS_WITH_CUDA
void bind_cuda(py::module_& m) {
  using u = std::uintptr_t;
  namespace bc = boxes::cuda;
  m.def("boxes_log_volume_cuda", [](DType dt, u lo, u hi, index_t n, index_t k, int mode, double vt, double it, u out,
                                    int dev, u s) {
    bc::log_volume(dt, lo, hi, n, k, make_options(mode, vt, it, false, false), out, dev, s);
  });
  m.def("boxes_log_volume_backward_cuda", [](DType dt, u lo, u hi, u grad, index_t n, index_t k, int mode, double vt,
                                             double it, u g_lo, u g_hi, int dev, u s) {
    bc::log_volume_backward(dt, lo, hi, grad, n, k, make_options(mode, vt, it, false, false), g_lo, g_hi, dev, s);
  });
  m.def("boxes_intersection_cuda", [](DType dt, u la, u ha, u lb, u hb, index_t n, index_t k, int mode, double it,
                                      bool clip, u lo, u hi, int dev, u s) {
    bc::intersection(dt, la, ha, lb, hb, n, k, make_options(mode, 1.0, it, clip, false), lo, hi, dev, s);
  });
  m.def("boxes_intersection_backward_cuda", [](DType dt, u la, u ha, u lb, u hb, u glo, u ghi, index_t n, index_t k,
                                               int mode, double it, bool clip, u g1, u g2, u g3, u g4, int dev, u s) {
    bc::intersection_backward(dt, la, ha, lb, hb, glo, ghi, n, k, make_options(mode, 1.0, it, clip, false), g1, g2,
                              g3, g4, dev, s);
  });
  m.def("boxes_containment_cuda", [](DType dt, u la, u ha, index_t n, u lb, u hb, index_t m_, index_t k, int mode,
                                     double vt, double it, bool log, u out, int dev, u s) {
    bc::containment(dt, la, ha, n, lb, hb, m_, k, make_options(mode, vt, it, false, log), out, dev, s);
  });
  m.def("boxes_containment_backward_cuda", [](DType dt, u la, u ha, index_t n, u lb, u hb, index_t m_, index_t k,
                                              u out, u grad, int mode, double vt, double it, bool log, u g1, u g2,
                                              u g3, u g4, int dev, u s) {
    bc::containment_backward(dt, la, ha, n, lb, hb, m_, k, out, grad, make_options(mode, vt, it, false, log), g1,
                             g2, g3, g4, dev, s);
  });
  m.def("boxes_containment_pairs_cuda", [](DType dt, u la, u ha, index_t n, u lb, u hb, index_t m_, index_t k, u ia,
                                           u ib, index_t p, int mode, double vt, double it, bool log, u out, int dev,
                                           u s) {
    bc::containment_pairs(dt, la, ha, n, lb, hb, m_, k, ia, ib, p, make_options(mode, vt, it, false, log), out, dev,
                          s);
  });
  m.def("boxes_containment_pairs_backward_cuda",
        [](DType dt, u la, u ha, index_t n, u lb, u hb, index_t m_, index_t k, u ia, u ib, index_t p, u order_a,
           u offsets_a, u order_b, u offsets_b, u out, u grad, int mode, double vt, double it, bool log, u g1, u g2,
           u g3, u g4, int dev, u s) {
          bc::containment_pairs_backward(dt, la, ha, n, lb, hb, m_, k, ia, ib, p, order_a, offsets_a, order_b,
                                         offsets_b, out, grad, make_options(mode, vt, it, false, log), g1, g2, g3,
                                         g4, dev, s);
        });
}
#endif

}  // namespace

void bind_boxes(py::module_& m) {
  bind_dtype<float>(m);
  bind_dtype<double>(m);
#ifdef TASKLENS_WITH_CUDA
  bind_cuda(m);
#endif
}

}  // namespace tasklens::bind
