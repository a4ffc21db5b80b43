// Per-element math of the box kernels, shared by the CPU loops (cpp/src/boxes.cpp) and the CUDA kernels
// (cuda/boxes.cu). Templated on the element type T (float or double); every function is TL_HD.
//
// Boxes are axis-aligned, given by lower corners lo and upper corners hi. A "log-width term" is the
// contribution of one dimension to a log-volume; the volumes match box-embeddings 0.1.0:
//   hard:   log(max(w, eps))                                        (HardVolume, clamp_min(eps))
//   soft:   log(softplus_beta(w) + eps),            beta = 1 / volume_temperature   (SoftVolume)
//   gumbel: log(softplus_beta(w - 2 gamma t) + eps), t = intersection_temperature (BesselApproxVolume)
// with eps = 1e-13 (box_embeddings.common.utils.tiny_value_of_dtype) and gamma Euler's constant.
// Intersections (box-embeddings HardIntersection / GumbelIntersection with approximation_mode=None):
//   hard:   lo = max(lo_a, lo_b), hi = min(hi_a, hi_b)   (ties split the gradient in halves, as torch.max)
//   gumbel: lo = t logaddexp(lo_a / t, lo_b / t) = max + t log1p(exp(-|lo_a - lo_b| / t))
//           hi = -t logaddexp(-hi_a / t, -hi_b / t) = min - t log1p(exp(-|hi_a - hi_b| / t))
#pragma once

#include <math.h>

#include "tasklens/common.h"

namespace tasklens::boxes {

constexpr double kEulerGamma = 0.57721566490153286060;
constexpr double kVolumeEps = 1e-13;

// Volume modes (log_volume) and containment modes. Containment combines an intersection and a volume:
// hard = hard intersection + hard volume, soft = hard intersection + soft volume,
// gumbel = Gumbel intersection + Bessel-approximate volume.
enum Mode : int { kHard = 0, kSoft = 1, kGumbel = 2 };

// Elementary functions overloaded on float/double, valid on host and device.
TL_HD float tl_exp(float x) { return expf(x); }
TL_HD double tl_exp(double x) { return exp(x); }
TL_HD float tl_log(float x) { return logf(x); }
TL_HD double tl_log(double x) { return log(x); }
TL_HD float tl_log1p(float x) { return log1pf(x); }
TL_HD double tl_log1p(double x) { return log1p(x); }

template <class T>
TL_HD T tl_abs(T x) { return x < T(0) ? -x : x; }
template <class T>
TL_HD T tl_max(T a, T b) { return a < b ? b : a; }
template <class T>
TL_HD T tl_min(T a, T b) { return b < a ? b : a; }

// exp(-y) is exactly 0 in T beyond this y; skipping the exp there changes no bit of any result.
template <class T>
TL_HD T exp_underflow() { return sizeof(T) == 4 ? T(104) : T(746); }

// Parameters of one call, in the element type.
template <class T>
struct Params {
  T beta;      // 1 / volume_temperature (soft, gumbel)
  T vtemp;     // volume_temperature
  T shift;     // 2 gamma intersection_temperature for gumbel volumes, else 0
  T itemp;     // intersection_temperature (gumbel intersection)
  T inv_itemp;
};

template <class T>
TL_HD Params<T> make_params(int mode, double volume_temperature, double intersection_temperature) {
  Params<T> p;
  p.vtemp = T(volume_temperature);
  p.beta = T(1.0 / volume_temperature);
  p.shift = mode == kGumbel ? T(2.0 * kEulerGamma * intersection_temperature) : T(0);
  p.itemp = T(intersection_temperature);
  p.inv_itemp = T(1.0 / intersection_temperature);
  return p;
}

// Log-width term of one dimension of width w and its derivative d/dw.
// VMODE: kHard, kSoft or kGumbel (soft and gumbel differ only in p.shift).
template <int VMODE, class T>
TL_HD T log_width(T w, const Params<T>& p, T* dw) {
  const T eps = T(kVolumeEps);
  if (VMODE == kHard) {
    // torch's clamp_min passes the gradient where w >= eps.
    const bool open = !(w < eps);
    if (dw) *dw = open ? T(1) / w : T(0);
    return tl_log(open ? w : eps);
  } else {
    // softplus_beta(x) = vtemp * (max(z, 0) + log1p(exp(-|z|))), z = beta x; derivative sigmoid(z).
    const T z = (w - p.shift) * p.beta;
    const T e = tl_exp(-tl_abs(z));
    const T sp = p.vtemp * (tl_max(z, T(0)) + tl_log1p(e)) + eps;
    if (dw) {
      const T s = T(1) / (T(1) + e);
      *dw = (z >= T(0) ? s : e * s) / sp;
    }
    return tl_log(sp);
  }
}

// Soft maximum t logaddexp(a / t, b / t) (gumbel) or max(a, b) (hard), with its partial derivatives
// *da = d/da and *db = d/db (they sum to 1; each is computed without cancellation).
template <bool GUMBEL, class T>
TL_HD T smooth_max(T a, T b, const Params<T>& p, T* da, T* db) {
  const T d = a - b;
  const T m = d >= T(0) ? a : b;
  if (!GUMBEL) {
    if (da) {
      *da = d > T(0) ? T(1) : (d < T(0) ? T(0) : T(0.5));
      *db = T(1) - *da;
    }
    return m;
  }
  const T y = tl_abs(d) * p.inv_itemp;
  if (y >= exp_underflow<T>()) {
    if (da) {
      *da = d > T(0) ? T(1) : T(0);
      *db = T(1) - *da;
    }
    return m;
  }
  const T e = tl_exp(-y);
  if (da) {
    const T s = T(1) / (T(1) + e);  // weight of the larger argument; e * s is the smaller one's
    *da = d >= T(0) ? s : e * s;
    *db = d >= T(0) ? e * s : s;
  }
  return m + p.itemp * tl_log1p(e);
}

// Intersection of one dimension: returns lo, hi of a ∩ b.
template <bool GUMBEL, class T>
TL_HD void intersect(T lo_a, T hi_a, T lo_b, T hi_b, const Params<T>& p, T* lo, T* hi) {
  *lo = smooth_max<GUMBEL>(lo_a, lo_b, p, (T*)nullptr, (T*)nullptr);
  *hi = -smooth_max<GUMBEL>(-hi_a, -hi_b, p, (T*)nullptr, (T*)nullptr);
}

// Containment mode -> (Gumbel intersection?, volume mode).
template <int MODE>
struct ContainmentMode {
  static constexpr bool gumbel_intersection = MODE == kGumbel;
  static constexpr int volume = MODE;
};

// Log-width term of the intersection of one dimension of a and b.
template <int MODE, class T>
TL_HD T inter_log_width(T lo_a, T hi_a, T lo_b, T hi_b, const Params<T>& p) {
  T lo, hi;
  intersect<ContainmentMode<MODE>::gumbel_intersection>(lo_a, hi_a, lo_b, hi_b, p, &lo, &hi);
  return log_width<ContainmentMode<MODE>::volume>(hi - lo, p, (T*)nullptr);
}

// Gradient of the intersection log-width term of one dimension, scaled by g, with respect to the four
// corners: g_lo_a, g_hi_a, g_lo_b, g_hi_b (added to the four accumulators, any of which may be null).
template <int MODE, class T, class Acc>
TL_HD void inter_log_width_grad(T lo_a, T hi_a, T lo_b, T hi_b, const Params<T>& p, Acc g, Acc* g_lo_a,
                                Acc* g_hi_a, Acc* g_lo_b, Acc* g_hi_b) {
  constexpr bool G = ContainmentMode<MODE>::gumbel_intersection;
  T dlo_a, dlo_b, dhi_a, dhi_b, dv;
  const T lo = smooth_max<G>(lo_a, lo_b, p, &dlo_a, &dlo_b);
  const T hi = -smooth_max<G>(-hi_a, -hi_b, p, &dhi_a, &dhi_b);
  log_width<ContainmentMode<MODE>::volume>(hi - lo, p, &dv);
  const Acc gw = g * Acc(dv);  // d/d(hi) = gw, d/d(lo) = -gw
  if (g_lo_a) *g_lo_a -= gw * Acc(dlo_a);
  if (g_lo_b) *g_lo_b -= gw * Acc(dlo_b);
  if (g_hi_a) *g_hi_a += gw * Acc(dhi_a);
  if (g_hi_b) *g_hi_b += gw * Acc(dhi_b);
}

}  // namespace tasklens::boxes
