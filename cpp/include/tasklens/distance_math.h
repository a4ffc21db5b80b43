// Per-element math of the domain distances (Factors of Influence, Sect. 3.2 Eq. 1 and Table 8),
// shared by the CPU kernels (cpp/src/distance.cpp) and the CUDA kernels (cuda/distance.cu).
//
// Candidate search works on *scores* v_ij = |y_j|^2 - 2 x_i.y_j of centred float32 rows (the squared
// Euclidean distance minus the row's own constant |x_i|^2). Scores from a float32 GEMM carry a rounding
// error bounded by score_error_bound(); every candidate whose approximate score lies within twice that
// bound of the row's best approximate score is re-scored exactly in float64 from the original rows, so the
// winner and its distance do not depend on the GEMM's summation order, the tile size or the thread count.
#pragma once

#include <cmath>

#include "tasklens/common.h"

namespace tasklens::distance {

enum Metric : int { kEuclidean = 0, kSqEuclidean = 1, kCosine = 2 };

// Candidates remembered per (target row, source dataset) before falling back to a full exact scan.
constexpr int kCandidates = 4;

// Score of one pair from its dot product and the source row's squared norm (float32, single rounding:
// 2*dot is exact, so the CPU SIMD, CPU scalar and CUDA paths give bit-identical scores).
template <class T>
TL_HD T score_from_dot(T norm_y, T dot) {
  return norm_y - T(2) * dot;
}

// Upper bound on |approximate score - exact squared distance shift| for one target row of centred norm
// `a` against any source row of centred norm <= `r`, in dimension d, with unit roundoff u (2^-24 for float32).
// Terms: the float32 dot product (gamma_d * a * r, doubled), the rounded squared norm and subtraction
// (u * (2 r^2 + 2 a r)), and the rounding of the centring x' = fl(x - c) (4 u (a + r)^2).
TL_HD double score_error_bound(double a, double r, index_t d, double u) {
  const double gamma = (double(d) * u) / (1.0 - double(d) * u);
  return 1.01 * (2.0 * gamma * a * r + u * (2.0 * r * r + 2.0 * a * r) + 4.0 * u * (a + r) * (a + r)) + 1e-30;
}

// Exact squared Euclidean distance in float64, summed in index order (deterministic). For the cosine
// metric the rows are scaled by their inverse norms first (sx = 1/|x|, sy = 1/|y|), else sx = sy = 1.
template <class T>
TL_HD double exact_sq_distance(const T* x, const T* y, index_t d, double sx, double sy) {
  double s = 0.0;
  for (index_t k = 0; k < d; ++k) {
    const double diff = double(x[k]) * sx - double(y[k]) * sy;
    s += diff * diff;
  }
  return s;
}

// The reported distance from an exact squared Euclidean distance of (normalised, for cosine) rows.
// cosine distance 1 - cos(x, y) = |x/|x| - y/|y||^2 / 2, which has no cancellation near 0.
TL_HD double finish_distance(double sq, int metric) {
  if (metric == kEuclidean) return std::sqrt(sq);
  if (metric == kCosine) return 0.5 * sq;
  return sq;
}

// Deterministic winner rule: the smaller exact distance; on an exact tie, the smaller source index.
TL_HD bool better(double s, index_t j, double best_s, index_t best_j) {
  return s < best_s || (s == best_s && j < best_j);
}

}  // namespace tasklens::distance
