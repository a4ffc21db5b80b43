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

#include <cstdint>
#include <cstring>

#include "tasklens/common.h"

namespace tasklens::boxes {

constexpr double kEulerGamma = 0.57721566490153286060;
constexpr double kVolumeEps = 1e-13;

// Volume modes (log_volume) and containment modes. Containment combines an intersection and a volume:
// hard = hard intersection + hard volume, soft = hard intersection + soft volume,
// gumbel = Gumbel intersection + Bessel-approximate volume.
enum Mode : int { kHard = 0, kSoft = 1, kGumbel = 2 };

// Elementary functions overloaded on float/double. On the device they are CUDA's own; on the host they are
// branch-free polynomial evaluations (below) that the compiler vectorises inside the CPU tile loops.
#if defined(__CUDA_ARCH__)
TL_HD float tl_exp(float x) { return expf(x); }
TL_HD double tl_exp(double x) { return exp(x); }
TL_HD float tl_log(float x) { return logf(x); }
TL_HD double tl_log(double x) { return log(x); }
#else
namespace host_math {

inline double as_double(std::uint64_t b) { double d; std::memcpy(&d, &b, sizeof d); return d; }
inline std::uint64_t as_bits(double d) { std::uint64_t b; std::memcpy(&b, &d, sizeof b); return b; }
inline float as_float(std::uint32_t b) { float f; std::memcpy(&f, &b, sizeof f); return f; }
inline std::uint32_t as_bits(float f) { std::uint32_t b; std::memcpy(&b, &f, sizeof b); return b; }

// exp(x) for x <= 709 (double) / 88 (float); 0 below -708 / -87.3. Range reduction x = n ln2 + r,
// |r| <= ln2 / 2, with n found by the round-to-integer shifter 1.5 * 2^52 (2^23), and the Taylor series of
// exp(r) to degree 13 (7), whose truncation error is below 2^-56 (2^-27). Error ~1 ulp.
inline double exp(double x) {
  const double shifter = 6755399441055744.0;  // 1.5 * 2^52
  const double xc = x < -708.0 ? -708.0 : (x > 709.0 ? 709.0 : x);
  const double t = xc * 1.4426950408889634 + shifter;
  const double n = t - shifter;
  const double r = (xc - n * 6.93147180369123816490e-01) - n * 1.90821492927058770002e-10;
  double p = 1.0 / 6227020800.0;
  p = p * r + 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  const double res = p * as_double((as_bits(t) - as_bits(shifter) + 1023u) << 52);
  return x < -708.0 ? 0.0 : res;
}

inline float exp(float x) {
  const float shifter = 12582912.0f;  // 1.5 * 2^23
  const float xc = x < -87.3f ? -87.3f : (x > 88.0f ? 88.0f : x);
  const float t = xc * 1.44269504f + shifter;
  const float n = t - shifter;
  const float r = (xc - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const float res = p * as_float((as_bits(t) - as_bits(shifter) + 127u) << 23);
  return x < -87.3f ? 0.0f : res;
}

// log(x) for positive normal x: x = 2^e m with m in [sqrt(1/2), sqrt(2)), log m = 2 atanh(s),
// s = (m - 1) / (m + 1), |s| <= 0.1716, atanh series to s^23 (s^11). Error ~1 ulp.
inline double log(double x) {
  const std::uint64_t b = as_bits(x);
  double e = as_double((b >> 52) | 0x4330000000000000ull) - (4503599627370496.0 + 1023.0);
  double m = as_double((b & 0x000fffffffffffffull) | 0x3ff0000000000000ull);
  const bool big = m > 1.4142135623730951;
  const double mh = 0.5 * m, e1 = e + 1.0;  // both arms computed: the select stays branch-free
  m = big ? mh : m;
  e = big ? e1 : e;
  const double s = (m - 1.0) / (m + 1.0);
  const double s2 = s * s;
  double p = 1.0 / 23.0;
  p = p * s2 + 1.0 / 21.0;
  p = p * s2 + 1.0 / 19.0;
  p = p * s2 + 1.0 / 17.0;
  p = p * s2 + 1.0 / 15.0;
  p = p * s2 + 1.0 / 13.0;
  p = p * s2 + 1.0 / 11.0;
  p = p * s2 + 1.0 / 9.0;
  p = p * s2 + 1.0 / 7.0;
  p = p * s2 + 1.0 / 5.0;
  p = p * s2 + 1.0 / 3.0;
  return e * 6.93147180369123816490e-01 + (e * 1.90821492927058770002e-10 + (2.0 * s + 2.0 * s * s2 * p));
}

inline float log(float x) {
  const std::uint32_t b = as_bits(x);
  float e = float(std::int32_t(b >> 23) - 127);
  float m = as_float((b & 0x007fffffu) | 0x3f800000u);
  const bool big = m > 1.41421356f;
  const float mh = 0.5f * m, e1 = e + 1.0f;
  m = big ? mh : m;
  e = big ? e1 : e;
  const float s = (m - 1.0f) / (m + 1.0f);
  const float s2 = s * s;
  float p = 1.0f / 11.0f;
  p = p * s2 + 1.0f / 9.0f;
  p = p * s2 + 1.0f / 7.0f;
  p = p * s2 + 1.0f / 5.0f;
  p = p * s2 + 1.0f / 3.0f;
  return e * 0.693359375f + (e * -2.12194440e-4f + (2.0f * s + 2.0f * s * s2 * p));
}

}  // namespace host_math

TL_HD float tl_exp(float x) { return host_math::exp(x); }
TL_HD double tl_exp(double x) { return host_math::exp(x); }
TL_HD float tl_log(float x) { return host_math::log(x); }
TL_HD double tl_log(double x) { return host_math::log(x); }
#endif

// log(1 + x) for 0 <= x <= 1 (the only use: x = exp(-|z|)). Device: CUDA's log1p. Host: 2 atanh(s) with
// s = x / (2 + x) in [0, 1/3], odd series to s^33 (s^15): truncation below 2^-56 (2^-27), one division.
#if defined(__CUDA_ARCH__)
TL_HD float log1p_unit(float x) { return log1pf(x); }
TL_HD double log1p_unit(double x) { return log1p(x); }
#else
inline float log1p_unit(float x) {
  const float s = x / (2.0f + x), s2 = s * s;
  float p = 1.0f / 15.0f;
  p = p * s2 + 1.0f / 13.0f;
  p = p * s2 + 1.0f / 11.0f;
  p = p * s2 + 1.0f / 9.0f;
  p = p * s2 + 1.0f / 7.0f;
  p = p * s2 + 1.0f / 5.0f;
  p = p * s2 + 1.0f / 3.0f;
  return 2.0f * s + 2.0f * s * s2 * p;
}
inline double log1p_unit(double x) {
  const double s = x / (2.0 + x), s2 = s * s;
  double p = 1.0 / 33.0;
  for (int j = 31; j >= 3; j -= 2) p = p * s2 + 1.0 / j;
  return 2.0 * s + 2.0 * s * s2 * p;
}
#endif

TL_HD float tl_abs(float x) { return fabsf(x); }
TL_HD double tl_abs(double x) { return fabs(x); }
template <class T>
TL_HD T tl_max(T a, T b) { return a < b ? b : a; }
template <class T>
TL_HD T tl_min(T a, T b) { return b < a ? b : a; }

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
    const T inv = T(1) / (open ? w : T(1));
    if (dw) *dw = open ? inv : T(0);
    return tl_log(open ? w : eps);
  } else {
    // softplus_beta(x) = vtemp * (max(z, 0) + log1p(exp(-|z|))), z = beta x; derivative sigmoid(z).
    const T z = (w - p.shift) * p.beta;
    const T e = tl_exp(-tl_abs(z));
    const T sp = p.vtemp * (tl_max(z, T(0)) + log1p_unit(e)) + eps;
    if (dw) {
      const T s = T(1) / (T(1) + e), es = e * s;
      *dw = (z >= T(0) ? s : es) / sp;
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
  const T e = tl_exp(-tl_abs(d) * p.inv_itemp);
  if (da) {
    const T s = T(1) / (T(1) + e), es = e * s;  // weights of the larger and of the smaller argument
    *da = d >= T(0) ? s : es;
    *db = d >= T(0) ? es : s;
  }
  return m + p.itemp * log1p_unit(e);
}

// Intersection of one dimension: returns lo, hi of a ∩ b.
template <bool GUMBEL, class T>
TL_HD void intersect(T lo_a, T hi_a, T lo_b, T hi_b, const Params<T>& p, T* lo, T* hi) {
  *lo = smooth_max<GUMBEL>(lo_a, lo_b, p, (T*)nullptr, (T*)nullptr);
  *hi = -smooth_max<GUMBEL>(-hi_a, -hi_b, p, (T*)nullptr, (T*)nullptr);
}

// Derivatives of one intersection corner c = smax(x, y) (or -smax(-x, -y)) with optional clipping
// c' = max(c, max(x, y)) (torch.max semantics: a tie between c and the hard corner splits the gradient).
template <class T>
TL_HD void corner_grad(T x, T y, bool gumbel, bool clip, const Params<T>& p, T* dx, T* dy) {
  if (!gumbel) {
    smooth_max<false>(x, y, p, dx, dy);
    return;
  }
  const T c = smooth_max<true>(x, y, p, dx, dy);
  if (!clip) return;
  const T h = tl_max(x, y);
  if (c > h) return;
  T hx, hy;
  smooth_max<false>(x, y, p, &hx, &hy);
  if (c < h) {
    *dx = hx;
    *dy = hy;
  } else {
    *dx = T(0.5) * (*dx + hx);
    *dy = T(0.5) * (*dy + hy);
  }
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
// corners of a and b.
template <class Acc>
struct CornerGrads {
  Acc lo_a, hi_a, lo_b, hi_b;
};

template <int MODE, class T, class Acc>
TL_HD CornerGrads<Acc> inter_log_width_grad(T lo_a, T hi_a, T lo_b, T hi_b, const Params<T>& p, Acc g) {
  constexpr bool G = ContainmentMode<MODE>::gumbel_intersection;
  T dlo_a, dlo_b, dhi_a, dhi_b, dv;
  const T lo = smooth_max<G>(lo_a, lo_b, p, &dlo_a, &dlo_b);
  const T hi = -smooth_max<G>(-hi_a, -hi_b, p, &dhi_a, &dhi_b);
  log_width<ContainmentMode<MODE>::volume>(hi - lo, p, &dv);
  const Acc gw = g * Acc(dv);  // d/d(hi) = gw, d/d(lo) = -gw
  return {-gw * Acc(dlo_a), gw * Acc(dhi_a), -gw * Acc(dlo_b), gw * Acc(dhi_b)};
}

}  // namespace tasklens::boxes
