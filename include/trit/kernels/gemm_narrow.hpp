#pragma once
// gemm_narrow: C[M x N] = A[M x K] * B[K x N] (+ bias[i] on row i) for a short, wide product:
// few rows M (a convolution weight with up to about 64 output channels), many columns N (the
// output pixels of an im2col column matrix). All row-major; C is written, never read.
//
// Why not kernels::gemm (Eigen): for a narrow conv the column matrix B is as large as the
// work it feeds (each of its entries meets only M weights), and Eigen copies ("packs") all of
// B into its own panel layout before multiplying: on ResNet-20's 16-channel layers that copy
// and the im2col before it cost about as much as the multiply. Here B is read in place: the
// micro-kernel takes a tile of MR rows x NR columns of C (NR = two SIMD vectors) and, for
// each k, loads NR consecutive values of row k of B (contiguous in row-major B), broadcasts
// MR values of A and does 2*MR fused multiply-adds into accumulators that stay in registers.
// A last panel of exactly one vector (N = 48 of 16-float vectors) runs a one-vector kernel.
// Only A, which is small, is packed once (pack_narrow_a) into blocks of MR rows stored
// k-major, so the MR values for one k are adjacent.
//
// Keep B's row stride ldb off multiples of 4 KiB (e.g. N + 16 floats for N = 1024): the K
// rows of one tile would otherwise all map to the same L1 cache set.
// Loop order: when all of B fits in kNarrowRowsOuterBytes (a short K: MobileNetV2's 16 to 24
// channel layers on 32x32 images), C is computed one block of MR rows at a time, left to
// right, so it is written as MR sequential streams while B stays in L2; otherwise one column
// panel at a time, top to bottom, so the panel is reused from L1 by every row block (C is then
// written as M short runs far apart: with M = 144 and K = 24 over 64 images of 1024 pixels,
// 2.8 ms against 1.5 ms for rows first on 2 threads).
// Single-threaded; callers parallelise over independent products (images).
#include <algorithm>
#include <cstdint>
#include <vector>

#include <Eigen/Core>

namespace trit::kernels {

// Tile sizes for element type T: NR = two SIMD vectors of columns; MR rows (8 where the ISA
// has 32 vector registers, AVX-512 or AArch64: 16 accumulators + 2 loads; else 4).
template <class T>
struct NarrowTile {
  using Packet = typename Eigen::internal::packet_traits<T>::type;
  static constexpr int64_t L = Eigen::internal::unpacket_traits<Packet>::size;
  static constexpr int64_t NR = 2 * L;
#if defined(__AVX512F__) || defined(__aarch64__)
  static constexpr int64_t MR = 8;
#else
  static constexpr int64_t MR = 4;
#endif
};

// Elements pack_narrow_a writes for an M x K matrix (M rounded up to a multiple of MR).
template <class T>
int64_t narrow_a_size(int64_t M, int64_t K) {
  constexpr int64_t MR = NarrowTile<T>::MR;
  return (M + MR - 1) / MR * MR * K;
}

// A[M x K] (row stride lda) -> Ap: block b holds rows b*MR .. b*MR+MR-1 as
// Ap[(b*K + k)*MR + i] = A[b*MR + i][k], rows past M as zeros. With trans, A is given
// transposed: A[row][k] is read at A[k*lda + row] (A^T stored K x M).
template <class T>
void pack_narrow_a(const T* A, int64_t lda, int64_t M, int64_t K, T* Ap, bool trans = false) {
  constexpr int64_t MR = NarrowTile<T>::MR;
  for (int64_t b = 0; b * MR < M; ++b)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t i = 0; i < MR; ++i) {
        const int64_t row = b * MR + i;
        Ap[(b * K + k) * MR + i] = row >= M ? T(0) : trans ? A[k * lda + row] : A[row * lda + k];
      }
}

// B sizes up to which gemm_narrow computes C row block by row block (see above).
inline constexpr int64_t kNarrowRowsOuterBytes = int64_t(128) << 10;

namespace detail {

// acc[MR x NV*L] = (packed MR-row block a) * B[0..K, 0..NV*L), row k of B starting at
// b + boff[k]; NV = 2 vectors of columns (a whole panel, NR) or 1 (a half panel at the end).
// Vector v of row k is read at b + boff[k] + v * vstride: the next L columns (vstride = L),
// or the same columns of the next image (gemm_narrow_image_pair).
template <class T, int NV>
inline void narrow_micro_kernel(int64_t K, const T* __restrict a, const T* __restrict b,
                                const int64_t* __restrict boff, T* __restrict acc,
                                int64_t vstride = NarrowTile<T>::L) {
  using Tile = NarrowTile<T>;
  using Packet = typename Tile::Packet;
  using namespace Eigen::internal;
  constexpr int64_t MR = Tile::MR, L = Tile::L;
  Packet c[NV][MR];
  for (int v = 0; v < NV; ++v)
    for (int64_t i = 0; i < MR; ++i) c[v][i] = pset1<Packet>(T(0));
  for (int64_t k = 0; k < K; ++k) {
    const T* bk = b + boff[k];
    Packet bv[NV];
    for (int v = 0; v < NV; ++v) bv[v] = ploadu<Packet>(bk + v * vstride);
#pragma GCC unroll 8
    for (int64_t i = 0; i < MR; ++i) {
      const Packet ai = pset1<Packet>(a[i]);
      for (int v = 0; v < NV; ++v) c[v][i] = pmadd(ai, bv[v], c[v][i]);
    }
    a += MR;
  }
  for (int64_t i = 0; i < MR; ++i)
    for (int v = 0; v < NV; ++v) pstoreu(acc + i * NV * L + v * L, c[v][i]);
}

// dst[q] = src[q] + add for q < n (or += with accumulate): one row of a finished tile.
template <class T>
inline void store_row(const T* src, int64_t n, T add, bool accumulate, T* dst) {
  if (accumulate)
    for (int64_t q = 0; q < n; ++q) dst[q] += src[q] + add;
  else
    for (int64_t q = 0; q < n; ++q) dst[q] = src[q] + add;
}

}  // namespace detail

// C[M x N] = A * B (+ bias[i] added to row i when bias is not null), A given packed by
// pack_narrow_a (Ap), C with row stride ldc. Row k of B[K x N] is the N contiguous values at
// B + boff[k]: boff[k] = k * ldb for an ordinary row-major matrix; a convolution passes the
// offsets of its kernel taps into a padded image instead (implicit im2col, ops/conv.hpp).
// Every B + boff[k] + j for j < N must be readable. With accumulate, C += A * B (+ bias)
// instead: a long product split into blocks of K (or a sum over images) adds up in C.
template <class T>
void gemm_narrow(int64_t M, int64_t N, int64_t K, const T* Ap, const T* B, const int64_t* boff,
                 const T* bias, T* C, int64_t ldc, bool accumulate = false) {
  constexpr int64_t MR = NarrowTile<T>::MR, NR = NarrowTile<T>::NR;
  alignas(64) T acc[MR * NR];
  constexpr int64_t L = NarrowTile<T>::L;
  // A last partial column panel that is not exactly one vector (rare) is read from a
  // zero-padded copy, made once; every other panel (a last one-vector panel included) is
  // read in place.
  const int64_t tail_j = N % NR == 0 || N % NR == L ? N : N - N % NR;
  std::vector<T> tail;            // that panel's copy, K x NR
  std::vector<int64_t> tail_off;  // its row offsets, k * NR
  if (tail_j < N) {
    tail.assign(static_cast<size_t>(K * NR), T(0));
    tail_off.resize(static_cast<size_t>(K));
    for (int64_t k = 0; k < K; ++k) {
      std::copy(B + boff[k] + tail_j, B + boff[k] + N, &tail[k * NR]);
      tail_off[k] = k * NR;
    }
  }
  // One MR x NR tile of C: rows i0.., columns j..
  auto tile = [&](int64_t i0, int64_t j) {
    const int64_t n = std::min(NR, N - j);
    const bool copied = j == tail_j, half = n == L;
    const T* panel = copied ? tail.data() : B + j;
    const int64_t* off = copied ? tail_off.data() : boff;
    if (half)
      detail::narrow_micro_kernel<T, 1>(K, Ap + i0 * K, panel, off, acc);
    else
      detail::narrow_micro_kernel<T, 2>(K, Ap + i0 * K, panel, off, acc);
    const int64_t m = std::min(MR, M - i0);
    for (int64_t i = 0; i < m; ++i) {
      const T add = bias ? bias[i0 + i] : T(0);
      detail::store_row(acc + i * (half ? L : NR), n, add, accumulate, C + (i0 + i) * ldc + j);
    }
  };
  if (K * N * int64_t(sizeof(T)) <= kNarrowRowsOuterBytes) {
    for (int64_t i0 = 0; i0 < M; i0 += MR)
      for (int64_t j = 0; j < N; j += NR) tile(i0, j);
  } else {
    for (int64_t j = 0; j < N; j += NR)
      for (int64_t i0 = 0; i0 < M; i0 += MR) tile(i0, j);
  }
}

// gemm_narrow_sum: C[M x N] += sum over images n < count of A_n[M x P] * B_n[P x N], a
// convolution's pointwise weight gradient summed over a chunk of images. A_n is read in
// place, unpacked: row i of image n is the P contiguous values at A + n*a_image + i*lda, one
// broadcast per multiply-add row as in gemm_narrow's micro-kernel. B_n is row-major with row
// stride ldb at B + n*P*ldb; N must be a multiple of the SIMD width L (callers pad B's rows
// with zeros) and C's rows (stride ldc) must be writable up to column N. Each MR x NR tile of
// C is loaded once, accumulates over all count*P terms in registers, and is stored once.
// Single-threaded.
namespace detail {
template <class T, int NV>
inline void narrow_sum_tile(int64_t count, int64_t P, const T* a, int64_t lda, int64_t a_image,
                            int64_t m, const T* b, int64_t ldb, T* c, int64_t ldc) {
  using Tile = NarrowTile<T>;
  using Packet = typename Tile::Packet;
  using namespace Eigen::internal;
  constexpr int64_t MR = Tile::MR, L = Tile::L;
  Packet acc[NV][MR];
  const T* rows[MR];
  for (int64_t i = 0; i < MR; ++i) {
    rows[i] = a + std::min(i, m - 1) * lda;  // rows past m repeat the last; dropped below
    for (int v = 0; v < NV; ++v)
      acc[v][i] = i < m ? ploadu<Packet>(c + i * ldc + v * L) : pset1<Packet>(T(0));
  }
  for (int64_t n = 0; n < count; ++n) {
    const T* bn = b + n * P * ldb;
    const int64_t an = n * a_image;
    for (int64_t q = 0; q < P; ++q) {
      Packet bv[NV];
      for (int v = 0; v < NV; ++v) bv[v] = ploadu<Packet>(bn + q * ldb + v * L);
#pragma GCC unroll 8
      for (int64_t i = 0; i < MR; ++i) {
        const Packet ai = pset1<Packet>(rows[i][an + q]);
        for (int v = 0; v < NV; ++v) acc[v][i] = pmadd(ai, bv[v], acc[v][i]);
      }
    }
  }
  for (int64_t i = 0; i < m; ++i)
    for (int v = 0; v < NV; ++v) pstoreu(c + i * ldc + v * L, acc[v][i]);
}
}  // namespace detail

template <class T>
void gemm_narrow_sum(int64_t M, int64_t N, int64_t P, int64_t count, const T* A, int64_t lda,
                     int64_t a_image, const T* B, int64_t ldb, T* C, int64_t ldc) {
  constexpr int64_t MR = NarrowTile<T>::MR, NR = NarrowTile<T>::NR;
  for (int64_t i0 = 0; i0 < M; i0 += MR) {
    const int64_t m = std::min(MR, M - i0);
    for (int64_t j = 0; j < N; j += NR) {
      if (N - j >= NR)
        detail::narrow_sum_tile<T, 2>(count, P, A + i0 * lda, lda, a_image, m, B + j, ldb,
                                      C + i0 * ldc + j, ldc);
      else
        detail::narrow_sum_tile<T, 1>(count, P, A + i0 * lda, lda, a_image, m, B + j, ldb,
                                      C + i0 * ldc + j, ldc);
    }
  }
}

// gemm_narrow_image_pair: the product of gemm_narrow for two images at once whose rows are
// one SIMD vector each (a pointwise convolution on 4x4 float planes under AVX-512, N = L):
//   C_v[M x L] = A * B_v[K x L] (+ bias, or += with accumulate), v < count (1 or 2)
// with row k of B_v at B + v*b_image + boff[k] and row i of C_v at C + v*c_image + i*L. One
// image alone is a half panel (1 vector of B per k for MR multiply-adds, the loads as many
// as the multiply-adds); two side by side make a whole one, as gemm_narrow's wide panels.
template <class T>
void gemm_narrow_image_pair(int64_t M, int64_t K, const T* Ap, const T* B, const int64_t* boff,
                            int64_t b_image, int64_t count, const T* bias, T* C,
                            int64_t c_image, bool accumulate = false) {
  constexpr int64_t MR = NarrowTile<T>::MR, L = NarrowTile<T>::L;
  alignas(64) T acc[MR * 2 * L];
  for (int64_t i0 = 0; i0 < M; i0 += MR) {
    if (count == 2)
      detail::narrow_micro_kernel<T, 2>(K, Ap + i0 * K, B, boff, acc, b_image);
    else
      detail::narrow_micro_kernel<T, 1>(K, Ap + i0 * K, B, boff, acc);
    const int64_t m = std::min(MR, M - i0);
    for (int64_t i = 0; i < m; ++i) {
      const T add = bias ? bias[i0 + i] : T(0);
      for (int64_t v = 0; v < count; ++v)
        detail::store_row(acc + (i * count + v) * L, L, add, accumulate,
                          C + v * c_image + (i0 + i) * L);
    }
  }
}

// Row offsets k * ldb, k < K, of an ordinary row-major B for gemm_narrow.
inline std::vector<int64_t> row_offsets(int64_t K, int64_t ldb) {
  std::vector<int64_t> off(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k) off[k] = k * ldb;
  return off;
}

// gemm_dot: C[M x N] += A[M x Q] * B[N x Q]^T, every entry a dot product of two long rows:
// row i of A at A + i*lda, row j of B at B + boff[j] (as in gemm_narrow). Q must be a multiple
// of the SIMD width L (callers pad both operands with zeros). This is a convolution's weight
// gradient, gw[o, tap] += sum over output pixels q of gy[o, q] * x[tap's shift of q], with
// the reduction over an image's pixels inside the kernel: each tile of DM x DN entries of C
// keeps DM*DN vector accumulators in registers, loads DM + DN vectors per step of L pixels,
// and is summed across its lanes once at the end. Single-threaded.
template <class T>
struct DotTile {
#if defined(__AVX512F__) || defined(__aarch64__)
  static constexpr int64_t DM = 8, DN = 3;  // 24 accumulators + 8 + 1 loaded vectors
#else
  static constexpr int64_t DM = 2, DN = 4;
#endif
};

template <class T>
void gemm_dot(int64_t M, int64_t N, int64_t Q, const T* A, int64_t lda, const T* B,
              const int64_t* boff, T* C, int64_t ldc) {
  using Packet = typename NarrowTile<T>::Packet;
  using namespace Eigen::internal;
  constexpr int64_t L = NarrowTile<T>::L, DM = DotTile<T>::DM, DN = DotTile<T>::DN;
  for (int64_t i0 = 0; i0 < M; i0 += DM) {
    for (int64_t j0 = 0; j0 < N; j0 += DN) {
      // Edge tiles repeat the last valid row / column in the missing places (their sums are
      // computed and dropped), so one fully unrolled kernel serves every tile.
      const T* a[DM];
      const T* b[DN];
      for (int64_t i = 0; i < DM; ++i) a[i] = A + std::min(i0 + i, M - 1) * lda;
      for (int64_t j = 0; j < DN; ++j) b[j] = B + boff[std::min(j0 + j, N - 1)];
      Packet acc[DM][DN];
      for (int64_t i = 0; i < DM; ++i)
        for (int64_t j = 0; j < DN; ++j) acc[i][j] = pset1<Packet>(T(0));
      for (int64_t q = 0; q < Q; q += L) {
        Packet av[DM];
#pragma GCC unroll 8
        for (int64_t i = 0; i < DM; ++i) av[i] = ploadu<Packet>(a[i] + q);
#pragma GCC unroll 8
        for (int64_t j = 0; j < DN; ++j) {
          const Packet bv = ploadu<Packet>(b[j] + q);
#pragma GCC unroll 8
          for (int64_t i = 0; i < DM; ++i) acc[i][j] = pmadd(av[i], bv, acc[i][j]);
        }
      }
      for (int64_t i = 0; i < std::min(DM, M - i0); ++i)
        for (int64_t j = 0; j < std::min(DN, N - j0); ++j)
          C[(i0 + i) * ldc + j0 + j] += predux(acc[i][j]);
    }
  }
}

}  // namespace trit::kernels
