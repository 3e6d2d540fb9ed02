#pragma once
// Multiplication-free matrix products for quantized weights: ternary {-a, 0, +a} and
// power-of-two (or any few-level) codebooks.
//
// A weight matrix W[O, K] whose rows hold few distinct values is stored as SignedTerms: for
// each row o, one term per distinct magnitude m of its non-zero values, with the list of
// columns k where W[o, k] = +m and the list where W[o, k] = -m. Then
//
//   (W * col)[o, p] = sum over terms t of row o:  m_t * ( sum_{k in plus(t)}  col[k, p]
//                                                      - sum_{k in minus(t)} col[k, p] )
//
// so every weight costs one addition or subtraction of an activation row and nothing at all
// when it is zero: the work scales with the non-zeros, and each term (not each weight) costs
// one multiplication per output. A ternary row is one term (m = a); a power-of-two row one
// term per exponent (scaled accumulation). Exact in float up to the order of the additions.
//
// The product runs on a column matrix col[K, P] whose rows are found through a table of
// offsets, resolved per non-zero weight (nonzero_offsets) (the column matrix of kernels/im2col.hpp, the inputs of a linear layer transposed,
// or shifted views of a zero-padded image, which spares the im2col copy), and writes out[O, P] (row stride ldo) through an
// Epilogue: out = relu?( W * col + bias[o] + residual[o, p] ). Columns are processed in
// tiles of 64 or 16 held in registers (GCC vector types: AVX-512 zmm with -march=native,
// narrower SIMD otherwise), two independent partial sums per tile to hide the add latency.
// Plain functions; single-threaded (callers split rows or images over threads).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "trit/core/error.hpp"

namespace trit::kernels {

// One row of a zero-bordered image: dst[j] = src[j - before] for before <= j < before + n,
// 0 for the other j < width, written in whole 16-float vectors (masked loads, plain stores)
// with AVX-512, so it may write zeros up to dst[round_up(width, 16) - 1]: the caller owns
// that room (and writes rows in increasing order, so the overrun into the next row is
// rewritten). Masked-off lanes do not read src (no fault outside it).
inline void copy_bordered_row(float* __restrict dst, int64_t width, const float* __restrict src,
                              int64_t n, int64_t before) {
#if defined(__AVX512F__)
  for (int64_t j = 0; j < width; j += 16) {
    // lanes l with 0 <= j + l - before < n read src[j + l - before]
    const int64_t lo = std::max<int64_t>(0, before - j), hi = std::min<int64_t>(16, before + n - j);
    __mmask16 mask = 0;
    if (hi > lo) mask = __mmask16(((1u << (hi - lo)) - 1) << lo);
    const float* at = src + (j - before);  // lanes before lo are masked off
    _mm512_storeu_ps(dst + j, _mm512_maskz_loadu_ps(mask, at));
  }
#else
  for (int64_t j = 0; j < width; ++j)
    dst[j] = j >= before && j < before + n ? src[j - before] : 0.0f;
#endif
}

// One row of a stride-s phase of a zero-bordered image: dst[j] = src[s*j + first] for j < width
// where 0 <= s*j + first < n, else 0 (src: an image row of n floats; first may be negative).
// AVX-512 at stride 2: 32 consecutive floats in two masked loads, their even lanes picked by
// one permute; other strides, and the tail, one value at a time.
inline void copy_strided_row(float* __restrict dst, int64_t width, const float* __restrict src,
                             int64_t n, int64_t first, int64_t stride) {
  int64_t j = 0;
#if defined(__AVX512F__)
  if (stride == 2) {
  // lanes k of a 16-float load at src + at with 0 <= at + k < n
  auto inside = [n](int64_t at) {
    const int64_t lo = std::max<int64_t>(0, -at), hi = std::min<int64_t>(16, n - at);
    return hi > lo ? __mmask16(((1u << (hi - lo)) - 1) << lo) : __mmask16(0);
  };
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  for (; j < width; j += 16) {
    const int64_t at = 2 * j + first;
    const __m512 lo = _mm512_maskz_loadu_ps(inside(at), src + at);
    const __m512 hi = _mm512_maskz_loadu_ps(inside(at + 16), src + at + 16);
    const __mmask16 keep = __mmask16((1u << std::min<int64_t>(16, width - j)) - 1);
    _mm512_mask_storeu_ps(dst + j, keep, _mm512_permutex2var_ps(lo, even, hi));
  }
  }
#endif
  for (; j < width; ++j) {
    const int64_t w = stride * j + first;
    dst[j] = w >= 0 && w < n ? src[w] : 0.0f;
  }
}

// W[O, K] as per-row signed terms (see the header comment). Column indices are 16-bit, so
// K <= 65536: 2 bytes per non-zero weight, nothing per zero.
struct SignedTerms {
  int64_t rows = 0, cols = 0;        // O, K
  std::vector<uint32_t> row_terms;   // [O + 1]: row o's terms are [row_terms[o], row_terms[o+1])
  std::vector<float> magnitude;      // [T]: m_t > 0
  std::vector<uint32_t> first;       // [T + 1]: term t's columns are index[first[t] .. first[t+1])
  std::vector<uint32_t> split;       // [T]: of those, [first[t], split[t]) carry +m_t, the rest -m_t
  std::vector<uint16_t> index;       // column k of every non-zero weight

  int64_t nonzeros() const { return static_cast<int64_t>(index.size()); }
  int64_t terms() const { return static_cast<int64_t>(magnitude.size()); }
  // Bytes held in memory by the weights (indices, term tables).
  int64_t bytes() const {
    return int64_t(index.size() * sizeof(uint16_t) + magnitude.size() * sizeof(float) +
                   (first.size() + split.size() + row_terms.size()) * sizeof(uint32_t));
  }
  // The dense W[O, K], row-major (tests, the dense twin).
  std::vector<float> expand() const {
    std::vector<float> w(size_t(rows * cols), 0.0f);
    for (int64_t o = 0; o < rows; ++o)
      for (uint32_t t = row_terms[o]; t < row_terms[o + 1]; ++t)
        for (uint32_t i = first[t]; i < first[t + 1]; ++i)
          w[size_t(o * cols + index[i])] = i < split[t] ? magnitude[t] : -magnitude[t];
    return w;
  }
};

// Packs W[O, K] given as codes[O*K] (row-major, uint8) and codebooks: row o reads
// books[o / (O / books.size())], so one codebook for all rows or one per row. Code 0 and
// any code whose value is 0 are dropped. Throws when a code has no codebook entry.
inline SignedTerms pack_signed_terms(int64_t O, int64_t K, const uint8_t* codes,
                                     const std::vector<std::vector<float>>& books) {
  const char* op = "pack_signed_terms";
  check(O >= 0 && K >= 0 && K <= 65536, op, "need 0 <= K <= 65536 columns, got O ", O, ", K ", K);
  check(!books.empty() && O % int64_t(books.size()) == 0, op, books.size(),
        " codebooks do not split ", O, " rows");
  SignedTerms w;
  w.rows = O, w.cols = K;
  w.row_terms.push_back(0);
  w.first.push_back(0);
  const int64_t rows_per_book = O / int64_t(books.size());
  for (int64_t o = 0; o < O; ++o) {
    const std::vector<float>& book = books[size_t(o / rows_per_book)];
    const uint8_t* row = codes + o * K;
    for (int64_t k = 0; k < K; ++k)
      check(row[k] < book.size(), op, "code ", int(row[k]), " at row ", o, " column ", k,
            " has no entry in a codebook of ", book.size(), " values");
    // One term per distinct magnitude, in codebook order.
    std::vector<float> seen;
    for (float v : book) {
      const float m = std::fabs(v);
      if (m == 0.0f || std::find(seen.begin(), seen.end(), m) != seen.end()) continue;
      seen.push_back(m);
      for (int sign = 0; sign < 2; ++sign) {
        const float want = sign == 0 ? m : -m;
        if (sign == 1) w.split.push_back(uint32_t(w.index.size()));
        for (int64_t k = 0; k < K; ++k)
          if (book[row[k]] == want) w.index.push_back(uint16_t(k));
      }
      w.magnitude.push_back(m);
      w.first.push_back(uint32_t(w.index.size()));
    }
    w.row_terms.push_back(uint32_t(w.magnitude.size()));
  }
  return w;
}

// What happens to W * col before it is stored:
//   out = act(W*col + bias[o] + residual[o, p]),  act(v) = min(max(v, 0), relu_cap) when relu
// (relu_cap = 6: ReLU6), else v. bias [O] and residual [O, P] (row stride ld_residual) may be
// null.
//
// Padded-row output (row_width > 0): the product's columns are the pixels of an image whose
// rows were computed row_width wide but are out_width wide (the zero-bordered-image conv of
// infer/layers.hpp computes junk columns past the image's right edge). Column p is pixel
// (p / row_width, p % row_width); it is stored at out[(p / row_width) * out_width + p %
// row_width] (the residual is read at the same place) when p % row_width < out_width and
// dropped otherwise. This writes the final [O, OH*OW] image directly, with no compaction pass.
struct Epilogue {
  const float* bias = nullptr;
  const float* residual = nullptr;
  int64_t ld_residual = 0;
  bool relu = false;
  float relu_cap = INFINITY;
  int64_t row_width = 0, out_width = 0;
};

namespace detail {

// The vector helpers are always inlined; without AVX-512 GCC notes that their (never
// materialised) by-value ABI differs, which is irrelevant here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"

typedef float f32x16 __attribute__((vector_size(64)));

inline f32x16 load16(const float* p) {
  f32x16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store16(float* p, f32x16 v) { std::memcpy(p, &v, sizeof v); }

// act(v) of the Epilogue on 16 lanes.
inline void activate(f32x16& v, const Epilogue& e) {
  if (!e.relu) return;
  v = v > 0.0f ? v : 0.0f;
  v = v < e.relu_cap ? v : e.relu_cap;
}
inline float activate(float v, const Epilogue& e) {
  return e.relu ? std::min(v > 0.0f ? v : 0.0f, e.relu_cap) : v;
}

// Stores the results total[V] (bias included) of one row for the columns [p0, p0 + 16V), of
// which only the first `valid` are kept, through the epilogue (residual, activation, padded-
// row mapping). out_row and res_row point at the row's column 0 (res_row may be null).
template <int V>
inline void store_tile(const f32x16 (&total)[V], float* out_row, const float* res_row,
                       const Epilogue& e, int64_t p0, int64_t valid) {
  if (e.row_width == 0 && valid == 16 * V) {  // plain layout, a whole tile: vector stores
    for (int v = 0; v < V; ++v) {
      f32x16 y = total[v];
      if (res_row) y += load16(res_row + p0 + 16 * v);
      activate(y, e);
      store16(out_row + p0 + 16 * v, y);
    }
    return;
  }
#if defined(__AVX512F__)
  if (e.row_width % 16 == 0) {
    // Every 16 lanes lie in one image row (or the plain layout): one masked store of the
    // lanes left of out_width and of `valid`.
    // (oh, ow): the pixel of column p0 + 16v, one division per tile (a 64-bit division per
    // vector was a tenth of a batch-1 ResNet-20)
    int64_t oh = 0, ow = 0;
    if (e.row_width > 0) oh = int64_t(uint32_t(p0) / uint32_t(e.row_width)), ow = p0 - oh * e.row_width;
    for (int v = 0; v < V && 16 * v < valid; ++v, ow += 16) {
      if (ow == e.row_width) ow = 0, ++oh;
      int64_t at = p0 + 16 * v, n = std::min<int64_t>(16, valid - 16 * v);
      if (e.row_width > 0) {
        n = std::min(n, e.out_width - ow);
        at = oh * e.out_width + ow;
      }
      if (n <= 0) continue;
      const __mmask16 mask = __mmask16((1u << n) - 1);
      __m512 y;
      std::memcpy(&y, &total[v], sizeof y);
      if (res_row) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(mask, res_row + at));
      f32x16 a;
      std::memcpy(&a, &y, sizeof a);
      activate(a, e);
      std::memcpy(&y, &a, sizeof y);
      _mm512_mask_storeu_ps(out_row + at, mask, y);
    }
    return;
  }
  if (e.row_width > 0) {
    // Rows of any width: each run of the tile's columns inside one image row is stored with
    // masked vectors (its first out_width - ow columns kept).
    float tile[16 * V];
    for (int v = 0; v < V; ++v) store16(tile + 16 * v, total[v]);
    int64_t oh = int64_t(uint32_t(p0) / uint32_t(e.row_width)), ow = p0 - oh * e.row_width;
    for (int64_t i = 0; i < valid; ow = 0, ++oh) {
      const int64_t run = std::min(valid - i, e.row_width - ow);  // tile columns in row oh
      const int64_t keep = std::min(run, e.out_width - ow), at = oh * e.out_width + ow;
      for (int64_t k = 0; k < keep; k += 16) {
        const __mmask16 mask = __mmask16((1u << std::min<int64_t>(16, keep - k)) - 1);
        __m512 y = _mm512_maskz_loadu_ps(mask, tile + i + k);
        if (res_row) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(mask, res_row + at + k));
        f32x16 a;
        std::memcpy(&a, &y, sizeof a);
        activate(a, e);
        std::memcpy(&y, &a, sizeof y);
        _mm512_mask_storeu_ps(out_row + at + k, mask, y);
      }
      i += run;
    }
    return;
  }
#endif
  // General case, one column at a time; (oh, ow) the pixel of column p0 + i in padded rows.
  float tile[16 * V];
  for (int v = 0; v < V; ++v) store16(tile + 16 * v, total[v]);
  if (e.row_width == 0) {
    for (int64_t i = 0; i < valid; ++i)
      out_row[p0 + i] = activate(tile[i] + (res_row ? res_row[p0 + i] : 0.0f), e);
    return;
  }
  int64_t oh = p0 / e.row_width, ow = p0 % e.row_width;
  for (int64_t i = 0; i < valid; ++i) {
    if (ow < e.out_width) {
      const int64_t at = oh * e.out_width + ow;
      out_row[at] = activate(tile[i] + (res_row ? res_row[at] : 0.0f), e);
    }
    if (++ow == e.row_width) ow = 0, ++oh;
  }
}

// Row o over the 16*V + 8*H columns of one tile starting at column p0 (col points at column
// p0; out_row at the row's column 0): V vectors of 16 floats, and with H = 1 one more of 8 (a
// tail of 49..56 columns, the 7x7 images of a ResNet: half a vector's loads and adds less than
// a fourth whole one). Only the first `valid` columns are stored (a tail tile; its other
// columns are read from col but their results dropped). Non-zero i of W reads the row of col
// at offset[i] (see nonzero_offsets).
template <int V, int H = 0>
inline void signed_terms_tile(const SignedTerms& w, int64_t o, const float* col,
                              const int32_t* offset, float* out_row, const Epilogue& e,
                              int64_t p0, int64_t valid) {
  typedef float f32x8 __attribute__((vector_size(32)));
  f32x16 total[V + H];
  const float b = e.bias ? e.bias[o] : 0.0f;
  for (int v = 0; v < V + H; ++v) total[v] = f32x16{} + b;
  constexpr int U = 8 / V;  // independent partial sums: 8 vector chains hide the add latency
  for (uint32_t t = w.row_terms[o]; t < w.row_terms[o + 1]; ++t) {
    f32x16 s[U][V];
    f32x8 half[U];  // the 8-float vector (H = 1)
    for (int u = 0; u < U; ++u) {
      for (int v = 0; v < V; ++v) s[u][v] = f32x16{};
      half[u] = f32x8{};
    }
    // s[u] += sign * the tile's columns of the row at col + offset[i]
    auto add = [&](int u, uint32_t i, float sign) __attribute__((always_inline)) {
      const float* r = col + offset[i];
      for (int v = 0; v < V; ++v) {
        if (sign > 0) s[u][v] += load16(r + 16 * v);
        else s[u][v] -= load16(r + 16 * v);
      }
      if (H) {
        f32x8 x;
        std::memcpy(&x, r + 16 * V, sizeof x);
        if (sign > 0) half[u] += x;
        else half[u] -= x;
      }
    };
    uint32_t i = w.first[t];
    const uint32_t mid = w.split[t], end = w.first[t + 1];
    for (; i + U <= mid; i += U)  // + m, U columns at a time
      for (int u = 0; u < U; ++u) add(u, i + u, 1.0f);
    for (; i < mid; ++i) add(0, i, 1.0f);
    for (; i + U <= end; i += U)  // - m
      for (int u = 0; u < U; ++u) add(u, i + u, -1.0f);
    for (; i < end; ++i) add(0, i, -1.0f);
    for (int u = 1; u < U; ++u) {
      for (int v = 0; v < V; ++v) s[0][v] += s[u][v];
      half[0] += half[u];
    }
    const float m = w.magnitude[t];
    for (int v = 0; v < V; ++v) total[v] += m * s[0][v];
    if (H)
      for (int l = 0; l < 8; ++l) total[V + H - 1][l] += m * half[0][l];
  }
  store_tile<V + H>(total, out_row, e.residual ? e.residual + o * e.ld_residual : nullptr, e,
                    p0, valid);
}

// Row o, one column (a linear layer on a batch of a few images).
inline void signed_terms_column(const SignedTerms& w, int64_t o, const float* col,
                                const int32_t* offset, float* out, const Epilogue& e, int64_t p) {
  float total = e.bias ? e.bias[o] : 0.0f;
  for (uint32_t t = w.row_terms[o]; t < w.row_terms[o + 1]; ++t) {
    float s0 = 0, s1 = 0;
    uint32_t i = w.first[t];
    for (; i < w.split[t]; ++i) s0 += col[offset[i]];
    for (; i < w.first[t + 1]; ++i) s1 += col[offset[i]];
    total += w.magnitude[t] * (s0 - s1);
  }
  if (e.residual) total += e.residual[o * e.ld_residual + p];
  *out = activate(total, e);
}

#pragma GCC diagnostic pop

}  // namespace detail

// Columns a column matrix must have room for: P rounded up to whole 64-column tiles.
inline int64_t padded_columns(int64_t P) { return (P + 63) / 64 * 64; }

// The row offsets of a plain column matrix with row stride ld: rows[k] = k * ld.
inline std::vector<int32_t> strided_rows(int64_t K, int64_t ld) {
  check(K * ld < (int64_t(1) << 31), "strided_rows", "column matrix of ", K, " x ", ld,
        " is too large for 32-bit offsets");
  std::vector<int32_t> rows(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k) rows[size_t(k)] = int32_t(k * ld);
  return rows;
}

// Where each non-zero weight reads the column matrix: offset[i] = rows[g * K + index[i]] for
// the non-zero i of row o in group g = o / (O / groups), where row k of the column matrix
// starts at col + rows[k] (rows[k] = k * ldc for a plain matrix, see strided_rows; other
// tables let W read shifted views of an image, as infer::ConvLayer does). Resolved once per
// layer and input size, so the product's inner loop does one load per weight, not two
// dependent ones.
// Writes into `offset` (resized; its capacity is reused).
inline void nonzero_offsets(const SignedTerms& w, const int32_t* rows, int64_t groups,
                            std::vector<int32_t>& offset) {
  check(groups >= 1 && w.rows % groups == 0, "nonzero_offsets", groups, " groups do not split ",
        w.rows, " rows");
  offset.resize(w.index.size());
  const int64_t per_group = w.rows / groups;
  for (int64_t o = 0; o < w.rows; ++o) {
    const int32_t* group_rows = rows + (o / per_group) * w.cols;
    for (uint32_t i = w.first[w.row_terms[o]]; i < w.first[w.row_terms[o + 1]]; ++i)
      offset[i] = group_rows[w.index[i]];
  }
}
inline std::vector<int32_t> nonzero_offsets(const SignedTerms& w, const int32_t* rows,
                                            int64_t groups = 1) {
  std::vector<int32_t> offset;
  nonzero_offsets(w, rows, groups, offset);
  return offset;
}

// out[o, p] = epilogue((W * col)[o, p]) for rows o in [o_begin, o_end) and columns p in
// [0, P), where non-zero i of W reads the row of the column matrix at col + offset[i]
// (nonzero_offsets). Each row must be readable up to padded_columns(P) with finite floats
// past P (their results are dropped). out [O, P] with row stride ldo >= P (only [0, P) is
// written; with the epilogue's padded-row mapping, out is the [O, OH*OW] image instead).
// Tiles of 64 columns run over every row before the next tile, so a tile of col (K x 64
// floats) stays in cache while all rows read it.
inline void signed_terms_gemm(const SignedTerms& w, int64_t o_begin, int64_t o_end,
                              const float* col, const int32_t* offset, int64_t P, float* out,
                              int64_t ldo, const Epilogue& e = {}) {
  check(e.row_width == 0 || P >= 4, "signed_terms_gemm", "padded-row output needs P >= 4");
  if (P < 4) {  // a few columns: one at a time, no vector lanes wasted
    for (int64_t o = o_begin; o < o_end; ++o)
      for (int64_t p = 0; p < P; ++p)
        detail::signed_terms_column(w, o, col + p, offset, out + o * ldo + p, e, p);
    return;
  }
  int64_t p = 0;
  for (; p + 64 <= P; p += 64)
    for (int64_t o = o_begin; o < o_end; ++o)
      detail::signed_terms_tile<4>(w, o, col + p, offset, out + o * ldo, e, p, 64);
  if (P - p > 56)  // a tail of 57..63 columns: one 64-wide tile, the excess dropped
    for (int64_t o = o_begin; o < o_end; ++o)
      detail::signed_terms_tile<4>(w, o, col + p, offset, out + o * ldo, e, p, P - p);
  else if (P - p > 48)  // 49..56: 3 vectors and a half
    for (int64_t o = o_begin; o < o_end; ++o)
      detail::signed_terms_tile<3, 1>(w, o, col + p, offset, out + o * ldo, e, p, P - p);
  else if (P - p > 32)
    for (int64_t o = o_begin; o < o_end; ++o)
      detail::signed_terms_tile<3>(w, o, col + p, offset, out + o * ldo, e, p, P - p);
  else if (P - p > 16)
    for (int64_t o = o_begin; o < o_end; ++o)
      detail::signed_terms_tile<2>(w, o, col + p, offset, out + o * ldo, e, p, P - p);
  else if (P - p > 0)
    for (int64_t o = o_begin; o < o_end; ++o)
      detail::signed_terms_tile<1>(w, o, col + p, offset, out + o * ldo, e, p, P - p);
}

}  // namespace trit::kernels
