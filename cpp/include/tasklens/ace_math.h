// Math of the ACE algorithm (Algorithm 1 of the H-score paper), shared by cpp/src/ace.cpp and cuda/ace.cu.
//
// Notation. The two discrete variables are called A (the side whose functions are only computed from the
// other, |A| = na) and S (the side that is iterated and orthonormalised, |S| = ns; the smaller alphabet).
// Joint counts C(a, s) are stored twice in CSR form: rows over A with (s, count) entries sorted by s, and
// rows over S with (a, count) entries sorted by a. Marginal counts are c_a, c_s and the sample count N.
//
// One ACE step (lines 4-7 of Algorithm 1, with a Rayleigh-Ritz rotation):
//   h(a)  = E[g(S) | A = a]         = sum_s C(a, s) g(s) / c_a          (cond_expect, rows over A)
//   H     = E[h(A) h(A)^T]          = sum_a (c_a / N) h(a) h(a)^T       (gram_entry, fixed row blocks)
//   H     = V diag(lambda) V^T,  sigma_i = sqrt(lambda_i)               (jacobi_eigh)
//   f     = h V diag(lambda)^(-1/2)  (whitened: E[f f^T] = I)
//   g_new = E[f(A) | S = s]          = sum_a C(a, s) f(a) / c_s          (cond_expect, rows over S)
//   g_new <- centred and orthonormalised under P_S (orthonormalize, Gram-Schmidt in the P_S inner product)
// At the fixed point E[f(A) g(S)^T] = diag(sigma): the sigma_i are the HGR maximal correlations, i.e. the
// nontrivial singular values of the DTM (Def. 1).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "tasklens/common.h"

namespace tasklens::ace {

// Rows per block of the Gram reduction. Fixed (never derived from the thread count) so that the CPU and
// the CUDA code sum the same partials in the same order.
constexpr index_t kGramRows = 2048;

// Columns [j0, j1) of the conditional expectation of row `row`:
//   out[j - j0] = (1 / c_row) * sum_{e in row} count_e * in[col_e, j]
// entries are summed in CSR order for every column, so the CPU (all columns at once) and the GPU (one column
// per thread) produce the same sums. Rows with c_row == 0 (codes that never occur) give 0.
template <class Col>
TL_HD void cond_expect(const index_t* ptr, const Col* cols, const double* vals, const double* row_count,
                       index_t row, const double* in, int b, int j0, int j1, double* out) {
  for (int j = j0; j < j1; ++j) out[j - j0] = 0.0;
  const double c = row_count[row];
  if (!(c > 0.0)) return;
  for (index_t e = ptr[row]; e < ptr[row + 1]; ++e) {
    const double v = vals[e];
    const double* src = in + static_cast<index_t>(cols[e]) * b;
    for (int j = j0; j < j1; ++j) out[j - j0] += v * src[j];
  }
  const double inv = 1.0 / c;
  for (int j = j0; j < j1; ++j) out[j - j0] *= inv;
}

// Entry (i, j) of the weighted Gram partial of rows [r0, r1): sum_r w[r] * v[r, i] * v[r, j], rows in order.
TL_HD double gram_entry(const double* v, const double* w, int b, index_t r0, index_t r1, int i, int j) {
  double acc = 0.0;
  for (index_t r = r0; r < r1; ++r) acc += w[r] * v[r * b + i] * v[r * b + j];
  return acc;
}

// Row r of out = in[r, :] * M (b x b, row-major), with an optional per-column scale applied after.
TL_HD void rotate_row(const double* in_row, const double* M, const double* col_scale, int b, double* out_row) {
  for (int j = 0; j < b; ++j) {
    double acc = 0.0;
    for (int i = 0; i < b; ++i) acc += in_row[i] * M[i * b + j];
    out_row[j] = col_scale ? acc * col_scale[j] : acc;
  }
}

// ----------------------------------------------------------------------------------------------------------
// Host-only helpers (small dense algebra on b x b matrices and on the iterated side).

// SplitMix64: a tiny, portable generator so that results depend only on the seed.
struct SplitMix64 {
  std::uint64_t state;
  explicit SplitMix64(std::uint64_t seed) : state(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  double uniform_pm1() { return static_cast<double>(next() >> 11) * (2.0 / 9007199254740992.0) - 1.0; }
};

// Eigen-decomposition of a symmetric b x b matrix by cyclic Jacobi rotations.
// On return `lambda` holds the eigenvalues in descending order and V (row-major) the eigenvectors as columns.
inline void jacobi_eigh(std::vector<double> A, int b, std::vector<double>& lambda, std::vector<double>& V) {
  V.assign(static_cast<size_t>(b) * b, 0.0);
  for (int i = 0; i < b; ++i) V[i * b + i] = 1.0;
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0.0, diag = 0.0;
    for (int i = 0; i < b; ++i) {
      diag += A[i * b + i] * A[i * b + i];
      for (int j = i + 1; j < b; ++j) off += A[i * b + j] * A[i * b + j];
    }
    if (off <= 1e-32 * diag || off == 0.0) break;
    for (int p = 0; p < b; ++p) {
      for (int q = p + 1; q < b; ++q) {
        const double apq = A[p * b + q];
        if (apq == 0.0) continue;
        const double theta = (A[q * b + q] - A[p * b + p]) / (2.0 * apq);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1.0));
        const double c = 1.0 / std::sqrt(t * t + 1.0), s = t * c;
        for (int k = 0; k < b; ++k) {  // A <- J^T A J
          const double akp = A[k * b + p], akq = A[k * b + q];
          A[k * b + p] = c * akp - s * akq;
          A[k * b + q] = s * akp + c * akq;
        }
        for (int k = 0; k < b; ++k) {
          const double apk = A[p * b + k], aqk = A[q * b + k];
          A[p * b + k] = c * apk - s * aqk;
          A[q * b + k] = s * apk + c * aqk;
        }
        for (int k = 0; k < b; ++k) {
          const double vkp = V[k * b + p], vkq = V[k * b + q];
          V[k * b + p] = c * vkp - s * vkq;
          V[k * b + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  std::vector<int> order(b);
  for (int i = 0; i < b; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return A[x * b + x] > A[y * b + y]; });
  lambda.assign(b, 0.0);
  std::vector<double> W(static_cast<size_t>(b) * b);
  for (int j = 0; j < b; ++j) {
    lambda[j] = A[order[j] * b + order[j]];
    for (int i = 0; i < b; ++i) W[i * b + j] = V[i * b + order[j]];
  }
  V.swap(W);
}

// Weighted inner product sum_r w[r] x[r, i] y[r, j] over all n rows (serial: fixed order).
inline double wdot(const double* M, const double* w, index_t n, int b, int i, int j) {
  double acc = 0.0;
  for (index_t r = 0; r < n; ++r) acc += w[r] * M[r * b + i] * M[r * b + j];
  return acc;
}

// Centres column j under the weights w (probabilities summing to 1); rows with w == 0 are set to 0.
inline void centre_column(double* M, const double* w, index_t n, int b, int j) {
  double mean = 0.0;
  for (index_t r = 0; r < n; ++r) mean += w[r] * M[r * b + j];
  for (index_t r = 0; r < n; ++r) M[r * b + j] = w[r] > 0.0 ? M[r * b + j] - mean : 0.0;
}

// Centres and orthonormalises columns [start, b) of M (n x b, row-major) in the inner product
// <u, v> = sum_r w[r] u[r] v[r] (w = P_S), against the constant function and the earlier columns, by modified
// Gram-Schmidt applied twice. A column that is (numerically) dependent is replaced by a centred random column
// drawn from `rng` and orthonormalised again, so zero singular values still give orthonormal functions.
// Returns false when no independent column could be found (the alphabet is too small for b modes).
inline bool orthonormalize(double* M, const double* w, index_t n, int b, int start, SplitMix64& rng) {
  for (int j = start; j < b; ++j) {
    bool done = false;
    for (int attempt = 0; attempt < 16 && !done; ++attempt) {
      if (attempt > 0) {
        for (index_t r = 0; r < n; ++r) M[r * b + j] = w[r] > 0.0 ? rng.uniform_pm1() : 0.0;
      }
      centre_column(M, w, n, b, j);
      const double before = std::sqrt(std::max(wdot(M, w, n, b, j, j), 0.0));
      for (int pass = 0; pass < 2; ++pass) {
        for (int i = 0; i < j; ++i) {
          const double d = wdot(M, w, n, b, i, j);
          for (index_t r = 0; r < n; ++r) M[r * b + j] -= d * M[r * b + i];
        }
      }
      const double after = std::sqrt(std::max(wdot(M, w, n, b, j, j), 0.0));
      if (after > 1e-10 * before && after > 1e-150) {
        const double inv = 1.0 / after;
        for (index_t r = 0; r < n; ++r) M[r * b + j] *= inv;
        done = true;
      }
    }
    if (!done) return false;
  }
  return true;
}

// Flips the sign of each column pair (fa[:, j], fs[:, j]) so that the entry of fs[:, j] with the largest
// magnitude (first one on ties) is positive: a deterministic sign convention.
inline void fix_signs(double* fa, index_t na, double* fs, index_t ns, int b, int k) {
  for (int j = 0; j < k; ++j) {
    double best = 0.0;
    for (index_t r = 0; r < ns; ++r) {
      if (std::fabs(fs[r * b + j]) > std::fabs(best) * (1.0 + 1e-9)) best = fs[r * b + j];
    }
    if (best < 0.0) {
      for (index_t r = 0; r < ns; ++r) fs[r * b + j] = -fs[r * b + j];
      for (index_t r = 0; r < na; ++r) fa[r * b + j] = -fa[r * b + j];
    }
  }
}

// Threshold below which an eigenvalue lambda = sigma^2 of H counts as zero (sigma <= 1e-12).
constexpr double kZeroLambda = 1e-24;

// Rayleigh-Ritz step on H = E[h h^T] (b x b): eigenvalues lambda (descending) and vectors V, the column
// scales 1/lambda used to renormalise the next g, and sigma. Returns E[f(A)^T g(S)] over the first k modes,
// i.e. sum_{i<k} sigma_i, the quantity whose convergence stops the iteration (Algorithm 1, line 8).
inline double ritz(const std::vector<double>& H, int b, int k, std::vector<double>& lambda, std::vector<double>& V,
                   std::vector<double>& inv_lambda, std::vector<double>& sigma) {
  std::vector<double> Hs(H);
  for (int i = 0; i < b; ++i)
    for (int j = 0; j < i; ++j) Hs[i * b + j] = Hs[j * b + i] = 0.5 * (H[i * b + j] + H[j * b + i]);
  jacobi_eigh(Hs, b, lambda, V);
  inv_lambda.assign(b, 0.0);
  sigma.assign(b, 0.0);
  double sum = 0.0;
  for (int j = 0; j < b; ++j) {
    sigma[j] = lambda[j] > 0.0 ? std::sqrt(lambda[j]) : 0.0;
    inv_lambda[j] = lambda[j] > kZeroLambda ? 1.0 / lambda[j] : 0.0;
    if (j < k) sum += sigma[j];
  }
  return sum;
}

}  // namespace tasklens::ace
