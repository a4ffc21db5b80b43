// CPU ACE kernel (Algorithm 1): sparse joint counts, alternating conditional expectations, whitening.
//
// Determinism: counts are integers (atomic increments give the same totals in any order, and rows are sorted
// before they are read); every floating reduction runs over blocks whose boundaries depend only on the problem
// size and is summed in block order. Results are bit-identical for any thread count.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>

#include "tasklens/ace.h"
#include "tasklens/ace_math.h"
#include "tasklens/parallel.h"

namespace tasklens::ace {

namespace {

constexpr index_t kSampleBlock = index_t(1) << 18;
constexpr index_t kRowBlock = 1024;

inline void atomic_inc(index_t* p) { __atomic_fetch_add(p, index_t(1), __ATOMIC_RELAXED); }
inline index_t atomic_next(index_t* p) { return __atomic_fetch_add(p, index_t(1), __ATOMIC_RELAXED); }

// h = E[in | row] for every row of m (all b columns), in parallel over fixed row blocks.
void cond_expect_all(const Csr& m, const double* in, int b, double* out) {
  const index_t nrows = static_cast<index_t>(m.row_count.size());
  parallel_ranges(nrows, kRowBlock, [&](index_t r0, index_t r1) {
    for (index_t r = r0; r < r1; ++r)
      cond_expect(m.ptr.data(), m.cols.data(), m.vals.data(), m.row_count.data(), r, in, b, 0, b, out + r * b);
  });
}

// E[v v^T] under the weights w: partials over fixed blocks of kGramRows rows, summed in block order.
std::vector<double> weighted_gram(const double* v, const double* w, index_t n, int b) {
  const index_t n_blocks = std::max<index_t>(1, (n + kGramRows - 1) / kGramRows);
  std::vector<double> partial(static_cast<size_t>(n_blocks) * b * b, 0.0);
  parallel_for(n_blocks, [&](index_t blk) {
    const index_t r0 = blk * kGramRows, r1 = std::min(n, r0 + kGramRows);
    double* out = partial.data() + blk * b * b;
    for (int i = 0; i < b; ++i)
      for (int j = i; j < b; ++j) out[i * b + j] = out[j * b + i] = gram_entry(v, w, b, r0, r1, i, j);
  });
  std::vector<double> H(static_cast<size_t>(b) * b, 0.0);
  for (index_t blk = 0; blk < n_blocks; ++blk)
    for (int t = 0; t < b * b; ++t) H[t] += partial[blk * b * b + t];
  return H;
}

// G = sum_a (1 / c_a) C(a, :)^T C(a, :) (|S| x |S|, counts), the composed operator E[E[. | A] | S] up to
// the 1 / c_s row scaling. Upper-triangle partials over a fixed number of row blocks, summed in block order.
std::vector<double> composed_gram(const Csr& m, index_t ns) {
  const index_t na = static_cast<index_t>(m.row_count.size());
  const index_t cap = std::max<index_t>(1, (index_t(1) << 24) / std::max<index_t>(1, ns * ns));
  const index_t n_blocks = std::max<index_t>(1, std::min<index_t>({64, (na + 255) / 256, cap}));
  const index_t rows = (na + n_blocks - 1) / n_blocks;
  std::vector<double> partial(static_cast<size_t>(n_blocks) * ns * ns, 0.0);
  parallel_for(n_blocks, [&](index_t blk) {
    double* G = partial.data() + blk * ns * ns;
    const index_t r1 = std::min(na, (blk + 1) * rows);
    for (index_t a = blk * rows; a < r1; ++a) {
      if (!(m.row_count[a] > 0.0)) continue;
      const double inv = 1.0 / m.row_count[a];
      for (index_t e1 = m.ptr[a]; e1 < m.ptr[a + 1]; ++e1) {
        const double v1 = m.vals[e1] * inv;
        double* Grow = G + static_cast<index_t>(m.cols[e1]) * ns;
        for (index_t e2 = e1; e2 < m.ptr[a + 1]; ++e2) Grow[m.cols[e2]] += v1 * m.vals[e2];
      }
    }
  });
  std::vector<double> G(static_cast<size_t>(ns) * ns, 0.0);
  for (index_t blk = 0; blk < n_blocks; ++blk) {
    const double* P = partial.data() + blk * ns * ns;
    for (index_t t = 0; t < ns * ns; ++t) G[t] += P[t];
  }
  for (index_t i = 0; i < ns; ++i)
    for (index_t j = 0; j < i; ++j) G[i * ns + j] = G[j * ns + i];
  return G;
}

}  // namespace

namespace {

// Row pointers from the number of entries of each row, and storage for the entries.
void allocate_rows(Csr& m, const std::vector<index_t>& entries) {
  const index_t nrows = static_cast<index_t>(entries.size());
  m.ptr.assign(nrows + 1, 0);
  for (index_t r = 0; r < nrows; ++r) m.ptr[r + 1] = m.ptr[r] + entries[r];
  m.cols.resize(m.ptr[nrows]);
  m.vals.resize(m.ptr[nrows]);
}

// Small code spaces: count into a dense nrows x ncols table, then compress. The samples are first partitioned
// by row range (a stable counting sort over fixed sample blocks), so each partition's slice of the table is
// counted by one thread with plain increments that stay in cache (no atomics, no false sharing).
Csr build_csr_dense(const std::int64_t* row_codes, const std::int64_t* col_codes, index_t n, index_t nrows,
                    index_t ncols) {
  int shift = 0;  // partitions of 2^shift rows (a shift, not a division, per sample), at most 64 of them
  while ((nrows >> shift) >= 64) ++shift;
  const index_t rows_per = index_t(1) << shift;
  const index_t parts = (nrows + rows_per - 1) / rows_per;
  const index_t n_blocks = (n + kSampleBlock - 1) / kSampleBlock;
  std::vector<index_t> offset(static_cast<size_t>(n_blocks) * parts, 0);
  parallel_for(n_blocks, [&](index_t blk) {
    index_t* h = offset.data() + blk * parts;
    for (index_t i = blk * kSampleBlock, e = std::min(n, i + kSampleBlock); i < e; ++i) ++h[row_codes[i] >> shift];
  });
  std::vector<index_t> part_start(parts + 1, 0);
  index_t run = 0;
  for (index_t p = 0; p < parts; ++p) {
    part_start[p] = run;
    for (index_t blk = 0; blk < n_blocks; ++blk) {
      const index_t c = offset[blk * parts + p];
      offset[blk * parts + p] = run;
      run += c;
    }
  }
  part_start[parts] = run;
  std::vector<std::uint32_t> local(n);  // key within the partition's slice of the table
  parallel_for(n_blocks, [&](index_t blk) {
    index_t* o = offset.data() + blk * parts;
    for (index_t i = blk * kSampleBlock, e = std::min(n, i + kSampleBlock); i < e; ++i) {
      const index_t p = row_codes[i] >> shift;
      local[o[p]++] = static_cast<std::uint32_t>((row_codes[i] - p * rows_per) * ncols + col_codes[i]);
    }
  });
  std::vector<std::uint32_t> table(static_cast<size_t>(nrows) * ncols, 0u);
  parallel_for(parts, [&](index_t p) {
    std::uint32_t* slice = table.data() + p * rows_per * ncols;
    for (index_t i = part_start[p]; i < part_start[p + 1]; ++i) ++slice[local[i]];
  });
  Csr m;
  std::vector<index_t> uniq(nrows, 0);
  m.row_count.assign(nrows, 0.0);
  parallel_ranges(nrows, kRowBlock, [&](index_t r0, index_t r1) {
    for (index_t r = r0; r < r1; ++r) {
      const std::uint32_t* row = table.data() + r * ncols;
      index_t u = 0, total = 0;
      for (index_t c = 0; c < ncols; ++c) u += row[c] != 0, total += row[c];
      uniq[r] = u;
      m.row_count[r] = static_cast<double>(total);
    }
  });
  allocate_rows(m, uniq);
  parallel_ranges(nrows, kRowBlock, [&](index_t r0, index_t r1) {
    for (index_t r = r0; r < r1; ++r) {
      const std::uint32_t* row = table.data() + r * ncols;
      index_t out = m.ptr[r];
      for (index_t c = 0; c < ncols; ++c)
        if (row[c]) m.cols[out] = static_cast<std::int32_t>(c), m.vals[out++] = row[c];
    }
  });
  return m;
}

}  // namespace

Csr build_csr(const std::int64_t* row_codes, const std::int64_t* col_codes, index_t n, index_t nrows,
              index_t ncols) {
  // The dense table costs 4 |rows| |cols| bytes: used while that is at most ~the size of the codes (16 n bytes).
  const double cells = static_cast<double>(nrows) * static_cast<double>(ncols);
  if (n < (index_t(1) << 32) && cells <= std::max(4.0 * static_cast<double>(n), 16777216.0))
    return build_csr_dense(row_codes, col_codes, n, nrows, ncols);
  Csr m;
  std::vector<index_t> len(nrows, 0);
  parallel_ranges(n, kSampleBlock, [&](index_t i0, index_t i1) {
    for (index_t i = i0; i < i1; ++i) atomic_inc(&len[row_codes[i]]);
  });
  std::vector<index_t> start(nrows + 1, 0);
  for (index_t r = 0; r < nrows; ++r) start[r + 1] = start[r] + len[r];
  m.row_count.resize(nrows);
  for (index_t r = 0; r < nrows; ++r) m.row_count[r] = static_cast<double>(len[r]);
  // Scatter column codes into their row segments (order within a row is arbitrary until sorted below).
  std::vector<std::int32_t> buf(n);
  std::vector<index_t> cursor(start.begin(), start.end() - 1);
  parallel_ranges(n, kSampleBlock, [&](index_t i0, index_t i1) {
    for (index_t i = i0; i < i1; ++i) buf[atomic_next(&cursor[row_codes[i]])] = static_cast<std::int32_t>(col_codes[i]);
  });
  std::vector<index_t> uniq(nrows, 0);
  parallel_ranges(nrows, kRowBlock, [&](index_t r0, index_t r1) {
    for (index_t r = r0; r < r1; ++r) {
      auto* b = buf.data() + start[r];
      auto* e = buf.data() + start[r + 1];
      std::sort(b, e);
      index_t u = 0;
      for (auto* p = b; p < e; ++p) u += (p == b || *p != p[-1]);
      uniq[r] = u;
    }
  });
  allocate_rows(m, uniq);
  parallel_ranges(nrows, kRowBlock, [&](index_t r0, index_t r1) {
    for (index_t r = r0; r < r1; ++r) {
      index_t out = m.ptr[r] - 1;
      for (index_t i = start[r]; i < start[r + 1]; ++i) {
        if (i == start[r] || buf[i] != buf[i - 1]) {
          ++out;
          m.cols[out] = buf[i];
          m.vals[out] = 0.0;
        }
        m.vals[out] += 1.0;
      }
    }
  });
  return m;
}

Csr transpose(const Csr& m, index_t ncols) {
  const index_t nrows = static_cast<index_t>(m.row_count.size());
  Csr t;
  t.ptr.assign(ncols + 1, 0);
  t.row_count.assign(ncols, 0.0);
  for (index_t e = 0; e < m.ptr[nrows]; ++e) {
    ++t.ptr[m.cols[e] + 1];
    t.row_count[m.cols[e]] += m.vals[e];
  }
  for (index_t c = 0; c < ncols; ++c) t.ptr[c + 1] += t.ptr[c];
  t.cols.resize(m.ptr[nrows]);
  t.vals.resize(m.ptr[nrows]);
  std::vector<index_t> cursor(t.ptr.begin(), t.ptr.end() - 1);
  for (index_t r = 0; r < nrows; ++r) {
    for (index_t e = m.ptr[r]; e < m.ptr[r + 1]; ++e) {
      const index_t pos = cursor[m.cols[e]]++;
      t.cols[pos] = static_cast<std::int32_t>(r);
      t.vals[pos] = m.vals[e];
    }
  }
  return t;
}

Result fit(const std::int64_t* a_codes, const std::int64_t* s_codes, index_t n, index_t na, index_t ns, int k,
           int b, int max_iter, double tol, std::uint64_t seed, int mode) {
  if (k < 1 || b < k || n < 1) throw std::invalid_argument("ace: need n >= 1 and 1 <= k <= b");
  const Csr A = build_csr(a_codes, s_codes, n, na, ns);
  const Csr S = transpose(A, ns);
  const double N = static_cast<double>(n);
  std::vector<double> wa(na), ws(ns);
  for (index_t r = 0; r < na; ++r) wa[r] = A.row_count[r] / N;
  for (index_t r = 0; r < ns; ++r) ws[r] = S.row_count[r] / N;

  const index_t nnz = A.ptr[na];
  if (mode == 0) {
    double sq = 0.0;
    for (index_t r = 0; r < na; ++r) sq += std::pow(static_cast<double>(A.ptr[r + 1] - A.ptr[r]), 2);
    mode = (ns <= 1024 && sq <= 12.0 * static_cast<double>(nnz) * b) ? 2 : 1;
  }
  if (mode == 2 && ns > 4096) throw std::invalid_argument("ace: the composed mode needs the smaller alphabet <= 4096");
  std::vector<double> G;
  if (mode == 2) G = composed_gram(A, ns);

  SplitMix64 rng(seed);
  std::vector<double> g(static_cast<size_t>(ns) * b), h(static_cast<size_t>(na) * b), u(static_cast<size_t>(ns) * b);
  for (index_t r = 0; r < ns; ++r)
    for (int j = 0; j < b; ++j) g[r * b + j] = rng.uniform_pm1();
  if (!orthonormalize(g.data(), ws.data(), ns, b, 0, rng))
    throw std::invalid_argument("ace: too few distinct codes for " + std::to_string(b) + " modes");

  std::vector<double> lambda, V, inv_lambda, sigma, H;
  Result res;
  res.mode = mode;
  double prev = -1.0;
  for (int it = 1; it <= max_iter; ++it) {
    res.iterations = it;
    if (mode == 2) {  // u_raw = G g (stored in u), H = g^T G g / N
      parallel_ranges(ns, 64, [&](index_t r0, index_t r1) {
        for (index_t r = r0; r < r1; ++r)
          for (int j = 0; j < b; ++j) {
            double acc = 0.0;
            for (index_t t = 0; t < ns; ++t) acc += G[r * ns + t] * g[t * b + j];
            u[r * b + j] = acc;
          }
      });
      H.assign(static_cast<size_t>(b) * b, 0.0);
      for (int i = 0; i < b; ++i)
        for (int j = i; j < b; ++j) {
          double acc = 0.0;
          for (index_t r = 0; r < ns; ++r) acc += g[r * b + i] * u[r * b + j];
          H[i * b + j] = H[j * b + i] = acc / N;
        }
    } else {
      cond_expect_all(A, g.data(), b, h.data());
      H = weighted_gram(h.data(), wa.data(), na, b);
    }
    const double sum = ritz(H, b, k, lambda, V, inv_lambda, sigma);
    if (it > 1 && std::fabs(sum - prev) <= tol) {
      res.converged = true;
      break;
    }
    prev = sum;
    if (it == max_iter) break;
    if (mode == 2) {
      for (index_t r = 0; r < ns; ++r) {
        const double inv = ws[r] > 0.0 ? 1.0 / S.row_count[r] : 0.0;
        for (int j = 0; j < b; ++j) u[r * b + j] *= inv;
      }
    } else {
      cond_expect_all(S, h.data(), b, u.data());
    }
    for (index_t r = 0; r < ns; ++r) rotate_row(u.data() + r * b, V.data(), inv_lambda.data(), b, g.data() + r * b);
    if (!orthonormalize(g.data(), ws.data(), ns, b, 0, rng))
      throw std::runtime_error("ace: orthonormalisation failed (too few distinct codes for the modes)");
  }

  // Final functions from the last orthonormal g and its Rayleigh-Ritz rotation V.
  if (mode == 2) cond_expect_all(A, g.data(), b, h.data());
  std::vector<double> fa(static_cast<size_t>(na) * b), fs(static_cast<size_t>(ns) * b), fscale(b, 0.0);
  int nonzero = 0;
  for (int j = 0; j < b; ++j) {
    if (lambda[j] > kZeroLambda) {
      fscale[j] = 1.0 / sigma[j];
      ++nonzero;
    }
  }
  parallel_ranges(na, kRowBlock, [&](index_t r0, index_t r1) {
    for (index_t r = r0; r < r1; ++r) rotate_row(h.data() + r * b, V.data(), fscale.data(), b, fa.data() + r * b);
  });
  for (index_t r = 0; r < ns; ++r) rotate_row(g.data() + r * b, V.data(), nullptr, b, fs.data() + r * b);
  if (nonzero < b && !orthonormalize(fa.data(), wa.data(), na, b, nonzero, rng))
    throw std::runtime_error("ace: could not complete the zero-correlation modes");
  fix_signs(fa.data(), na, fs.data(), ns, b, k);

  res.fa.resize(static_cast<size_t>(na) * k);
  res.fs.resize(static_cast<size_t>(ns) * k);
  for (index_t r = 0; r < na; ++r)
    for (int j = 0; j < k; ++j) res.fa[r * k + j] = fa[r * b + j];
  for (index_t r = 0; r < ns; ++r)
    for (int j = 0; j < k; ++j) res.fs[r * k + j] = fs[r * b + j];
  res.corr.assign(sigma.begin(), sigma.begin() + k);
  return res;
}

}  // namespace tasklens::ace
