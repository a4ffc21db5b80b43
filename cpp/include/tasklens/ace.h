// ACE kernels (Algorithm 1 of the H-score paper): declarations shared by the CPU code, the CUDA launcher
// and the bindings. See ace_math.h for the notation (A = computed side, S = iterated side).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "tasklens/common.h"

namespace tasklens::ace {

// Joint counts in CSR form: rows over one variable, (column code, count) entries sorted by column code.
struct Csr {
  std::vector<index_t> ptr;        // nrows + 1
  std::vector<std::int32_t> cols;  // nnz
  std::vector<double> vals;        // nnz, exact integer counts
  std::vector<double> row_count;   // nrows, samples per row code
};

// Builds the CSR of joint counts from n sample pairs (row code, column code); deterministic for any thread count.
// Small code spaces (|rows| |cols| <= max(4n, 2^24)) count into a dense uint32 table; larger ones scatter the
// column codes into row segments and sort each row.
Csr build_csr(const std::int64_t* row_codes, const std::int64_t* col_codes, index_t n, index_t nrows, index_t ncols);
// The same counts with rows and columns swapped (rows sorted by the old row code).
Csr transpose(const Csr& m, index_t ncols);

struct Result {
  std::vector<double> fa;    // na x k, row-major
  std::vector<double> fs;    // ns x k
  std::vector<double> corr;  // k, descending
  int iterations = 0;
  bool converged = false;
  int mode = 0;              // 1 alternating sparse products, 2 composed |S| x |S| operator
};

// mode: 0 auto, 1 alternating sparse products, 2 composed operator (|S| <= 4096 only).
Result fit(const std::int64_t* a_codes, const std::int64_t* s_codes, index_t n, index_t na, index_t ns, int k,
           int b, int max_iter, double tol, std::uint64_t seed, int mode);

#ifdef TASKLENS_WITH_CUDA
// CUDA version (alternating sparse products); codes and outputs are device pointers, the stream is the caller's.
// Writes fa (na x k), fs (ns x k), corr (k) in float64 and returns {iterations, converged}.
std::pair<int, bool> fit_cuda(const std::int64_t* a_codes, const std::int64_t* s_codes, index_t n, index_t na,
                              index_t ns, int k, int b, int max_iter, double tol, std::uint64_t seed, double* fa,
                              double* fs, double* corr, int device, std::uintptr_t stream);
#endif

}  // namespace tasklens::ace
