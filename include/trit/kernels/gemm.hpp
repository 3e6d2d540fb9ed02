#pragma once
// gemm: trit's one matrix-multiply entry point. Every matmul, linear layer and im2col
// convolution goes through it, so tuning (or swapping the backend) happens here only.
//
//   C[M x N] = alpha * op(A) * op(B) + beta * C        all row-major
//
// op(A) is A (stored M x K, row stride lda) or, with trans_a, A^T (A stored K x M).
// op(B) is B (stored K x N, row stride ldb) or, with trans_b, B^T (B stored N x K).
// With beta == 0, C is written without being read (it may hold garbage). Eigen does the
// blocking, packing and SIMD; it runs on trit::set_num_threads() threads when called outside
// an OpenMP parallel region and single-threaded inside one.
#include <cstdint>

#include <Eigen/Core>

namespace trit::kernels {

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using ConstMap = Eigen::Map<const Matrix, 0, Eigen::OuterStride<>>;
  using Map = Eigen::Map<Matrix, 0, Eigen::OuterStride<>>;
  if (M == 0 || N == 0) return;
  Map c(C, M, N, Eigen::OuterStride<>(ldc));
  if (K == 0) {
    if (beta == T(0)) c.setZero(); else c *= beta;
    return;
  }
  auto run = [&](const auto& a, const auto& b) {
    if (beta == T(0)) {
      c.noalias() = alpha * a * b;
    } else {
      if (beta != T(1)) c *= beta;
      c.noalias() += alpha * a * b;
    }
  };
  ConstMap a(A, trans_a ? K : M, trans_a ? M : K, Eigen::OuterStride<>(lda));
  ConstMap b(B, trans_b ? N : K, trans_b ? K : N, Eigen::OuterStride<>(ldb));
  if (!trans_a && !trans_b) run(a, b);
  else if (!trans_a && trans_b) run(a, b.transpose());
  else if (trans_a && !trans_b) run(a.transpose(), b);
  else run(a.transpose(), b.transpose());
}

}  // namespace trit::kernels
