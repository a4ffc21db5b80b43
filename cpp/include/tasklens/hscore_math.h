// H-score streaming-moment math shared by the CPU kernels (cpp/src/hscore.cpp) and the CUDA kernels
// (cuda/hscore.cu). No Python, no torch.
//
// A block of rows is summarised, in float64, by its count n, mean m, scatter S = sum_i (x_i - m)(x_i - m)^T,
// the fourth-order norm moments q4 = sum_i |x_i - m|^4 and v3 = sum_i |x_i - m|^2 (x_i - m) (used by the
// Ledoit-Wolf shrinkage), and per class c the count n_c and the shifted sum sum_{i in c} (x_i - shift).
// Two summaries merge exactly (Chan, Golub & LeVeque 1979, pairwise update) with the functions below.
#pragma once

#include "tasklens/common.h"

namespace tasklens::hscore {

// Mean of the union of two sets: m_a + (m_b - m_a) * n_b / n.
TL_HD double merged_mean(double mean_a, double mean_b, double n_a, double n_b) {
  const double n = n_a + n_b;
  return n > 0 ? mean_a + (mean_b - mean_a) * (n_b / n) : 0.0;
}

// One element of Chan's scatter merge: S_ij = Sa_ij + Sb_ij + (n_a n_b / n) d_i d_j with d = m_b - m_a.
TL_HD double merged_scatter(double sa, double sb, double d_i, double d_j, double w) {
  return sa + sb + w * d_i * d_j;
}

// Weight n_a n_b / n of the cross term in merged_scatter (0 when either side is empty).
TL_HD double chan_weight(double n_a, double n_b) {
  const double n = n_a + n_b;
  return (n_a > 0 && n_b > 0) ? n_a * n_b / n : 0.0;
}

// v3 of a set centred at its own mean, re-expressed about a point shifted by delta (new centre = m + delta):
// v3' = v3 - (tr S + n |delta|^2) delta - 2 S delta.
TL_HD double shifted_v3(double v3_i, double s_delta_i, double trace_s, double n, double delta_sq, double delta_i) {
  return v3_i - (trace_s + n * delta_sq) * delta_i - 2.0 * s_delta_i;
}

// q4 of a set centred at its own mean, about the shifted centre:
// q4' = q4 + 4 delta^T S delta + n |delta|^4 - 4 delta.v3 + 2 |delta|^2 tr S.
TL_HD double shifted_q4(double q4, double delta_s_delta, double n, double delta_sq, double delta_v3,
                        double trace_s) {
  return q4 + 4.0 * delta_s_delta + n * delta_sq * delta_sq - 4.0 * delta_v3 + 2.0 * delta_sq * trace_s;
}

// Class sum update: sum_{i in c} (x_i - shift) = sum_{i in c} (x_i - m_block) + n_c (m_block - shift).
TL_HD double shifted_class_sum(double acc_centred, double count, double offset) {
  return acc_centred + count * offset;
}

// Moments about a fixed shift s re-expressed about the block mean m = s + d (one-pass moments). With
// u_i = x_i - s, G = sum_i u_i u_i^T, v3_s = sum_i |u_i|^2 u_i and q4_s = sum_i |u_i|^4 (sum_i u_i = n d):
// v3_m = v3_s - tr(G) d - 2 G d + 2 n |d|^2 d,
// q4_m = q4_s + 4 d^T G d - 3 n |d|^4 - 4 d.v3_s + 2 |d|^2 tr(G),   S_m = G - n d d^T.
TL_HD double recentred_v3(double v3_i, double g_d_i, double trace_g, double n, double d_sq, double d_i) {
  return v3_i - trace_g * d_i - 2.0 * g_d_i + 2.0 * n * d_sq * d_i;
}
TL_HD double recentred_q4(double q4, double d_g_d, double n, double d_sq, double d_v3, double trace_g) {
  return q4 + 4.0 * d_g_d - 3.0 * n * d_sq * d_sq - 4.0 * d_v3 + 2.0 * d_sq * trace_g;
}
TL_HD double recentred_scatter(double g_ij, double n, double d_i, double d_j) { return g_ij - n * d_i * d_j; }

// Deviation of one element from the block mean, in float64.
template <class T>
TL_HD double centred(T x, double mean) {
  return static_cast<double>(x) - mean;
}

}  // namespace tasklens::hscore
