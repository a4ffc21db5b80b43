// H-score streaming covariance engine: kernel declarations (CPU in cpp/src/hscore.cpp, CUDA in cuda/hscore.cu).
#pragma once

#include <cstdint>

#include "tasklens/common.h"

namespace tasklens::hscore {

// Rows per parallel task of the CPU moment kernel; fixed so results never depend on the thread count.
constexpr index_t kRowBlock = 256;

// Block moments of x (rows x features): mean (F), xc = x - mean (rows x F, same type as x),
// v3 = sum_i |xc_i|^2 xc_i (F) and returns q4 = sum_i |xc_i|^4. All sums in float64, fixed order.
template <class T>
double block_moments_cpu(const T* x, index_t rows, index_t features, double* mean, T* xc, double* v3);

// One-pass block moments about a fixed shift s (F): xc = x - s (rows x F, same type as x),
// v3 = sum_i |x_i - s|^2 (x_i - s) (F); returns sum_i |x_i - s|^4. The block mean s + d follows from the class
// sums of xc; recentre_moments_cpu re-expresses the moments about it once the Gram of xc is known.
template <class T>
double block_moments_shifted_cpu(const T* x, index_t rows, index_t features, const double* shift, T* xc,
                                 double* v3);

// block_moments_shifted_cpu and class_sums_cpu (all targets and columns) fused into one serial read of x: each
// centred row, as stored in xc, is added to its class's float64 sum for every target while it is in cache. The
// additions are those of the two separate kernels in the same order, so results are identical bits. Meant for
// small class-sum states (targets x classes x features float64 kept in cache); runs on the calling thread only.
template <class T>
double half_pass_cpu(const T* x, index_t rows, index_t features, const double* shift, T* xc, double* v3,
                     const std::int64_t* labels, index_t targets, index_t classes, const double* offset,
                     double* sums, std::int64_t* counts, double* total);

// Turns moments about s (Gram G = sum u u^T of u = x - s, v3, q4) of n rows with mean s + d into moments about
// the mean, in place: G becomes the scatter, v3 the centred v3; returns the centred q4.
double recentre_moments_cpu(index_t features, double n, const double* d, double* gram, double* v3, double q4);

// Adds per-class counts and shifted sums of one block for `targets` label vectors sharing the rows:
// labels is rows x targets (int64, values in [0, classes)); sums is targets x classes x features (float64),
// counts is targets x classes; offset (F) = block centre - accumulator shift, added n_c times per class.
// total (F, may be null) is added sum_i xc_i, class by class over target 0 in a fixed order.
// Only targets [t0, t1) and feature columns [f0, f1) are processed (f0 a multiple of kClassTile, f1 one or
// `features`): each output element is computed the same way whatever the split, so callers may divide the
// work into any such parts; counts are added by the part with f0 == 0, total by the part holding target 0.
constexpr index_t kClassTile = 32;
template <class T>
void class_sums_cpu(const T* xc, index_t rows, index_t features, const std::int64_t* labels, index_t targets,
                    index_t classes, const double* offset, double* sums, std::int64_t* counts, double* total,
                    index_t t0, index_t t1, index_t f0, index_t f1);

// Chan merge of summary b into summary a (in place on a): mean, scatter (F x F), v3 and q4.
// Returns the merged q4.
double merge_moments_cpu(index_t features, double n_a, double* mean_a, double* scatter_a, double* v3_a,
                         double q4_a, double n_b, const double* mean_b, const double* scatter_b,
                         const double* v3_b, double q4_b);

#ifdef TASKLENS_WITH_CUDA
// CUDA launchers: raw device pointers, asynchronous on `stream`. Same contracts as the CPU kernels, except
// that block_moments writes q4 to a device scalar and class_sums accumulates into device arrays.
template <class T>
void block_moments_cuda(const T* x, index_t rows, index_t features, double* mean, T* xc, double* v3,
                        double* q4, double* row_norms, int device, std::uintptr_t stream);
template <class T>
void class_sums_cuda(const T* xc, index_t rows, index_t features, const std::int64_t* labels, index_t targets,
                     index_t classes, const double* offset, double* sums, std::int64_t* counts,
                     double* partial, index_t segments, int device, std::uintptr_t stream);
void merge_moments_cuda(index_t features, double n_a, double* mean_a, double* scatter_a, double* v3_a,
                        double* q4_a, double n_b, const double* mean_b, const double* scatter_b,
                        const double* v3_b, const double* q4_b, double* work, int device, std::uintptr_t stream);
// Number of row segments the CUDA class-sum kernel splits a block into (depends on sizes only). The caller
// allocates segments * targets * classes * features + targets * classes float64 of scratch (`partial`); the
// segments are chosen so that the partial sums stay under 256 MiB when that is possible with one segment.
// The scratch of one segment (targets * classes * features float64) is the caller's to bound, by chunking
// classes or targets.
index_t class_sum_segments_cuda(index_t rows, index_t features, index_t targets, index_t classes);
#endif

}  // namespace tasklens::hscore
