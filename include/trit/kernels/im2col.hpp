#pragma once
// im2col / col2im: trit's one pair of image <-> column-matrix kernels for convolution.
//
// The geometry of a 2-d convolution (or pooling) window sweep over one image lives in
// ConvGeometry. im2col unrolls one image x[C, H, W] into the column matrix
//
//   col[C*KH*KW, OH*OW]       row r = (c*KH + kh)*KW + kw,   column p = oh*OW + ow
//   col[r][p] = x[c][oh*stride - padding + kh*dilation][ow*stride - padding + kw*dilation]
//               (0 where that position falls into the zero padding)
//
// so that a convolution is one GEMM: out[O, OH*OW] = weight[O, C*KH*KW] * col. The rows of a
// group g are the contiguous block [g*Cg*KH*KW, (g+1)*Cg*KH*KW), so one im2col over all C
// channels serves every group. The row stride `ld` of col is a parameter (>= OH*OW): ops/conv
// places the columns of several images side by side, col[C*KH*KW, B*OH*OW], image b starting
// at column b*OH*OW, which turns a whole batch chunk into one large GEMM (forward, grad input
// and grad weight alike).
//
// col2im is the adjoint: it adds every column entry back onto the pixel it was read from
// (pixels read by several windows receive the sum); x is overwritten, not accumulated into.
// Plain functions on raw pointers; no autograd, no allocation, single-threaded (callers
// parallelise over images).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace trit::kernels {

// One window sweep: input extent (C, H, W), window (KH, KW), and how it moves.
struct ConvGeometry {
  int64_t C = 1, H = 1, W = 1;  // channels, input height and width
  int64_t KH = 1, KW = 1;       // window height and width
  int64_t stride = 1, padding = 0, dilation = 1;

  // Output extent: PyTorch's floor((H + 2p - d*(K-1) - 1) / s) + 1 (may be <= 0 for a window
  // larger than the padded input; ops check that before calling a kernel).
  int64_t out_h() const { return out_size(H, KH); }
  int64_t out_w() const { return out_size(W, KW); }
  int64_t col_rows() const { return C * KH * KW; }

 private:
  int64_t out_size(int64_t in, int64_t k) const {
    int64_t span = in + 2 * padding - dilation * (k - 1) - 1;
    return span < 0 ? 0 : span / stride + 1;
  }
};

// The output positions o in [0, out) whose input position o*stride + offset lies inside
// [0, in) form one interval [lo, hi) (possibly empty, lo == hi). Window loops use it to split
// a row into padding | interior | padding with no bounds test inside the interior loop.
inline void valid_output_range(int64_t offset, int64_t stride, int64_t in, int64_t out,
                               int64_t& lo, int64_t& hi) {
  // smallest o with o*stride + offset >= 0
  lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  // smallest o with o*stride + offset >= in
  hi = in - offset <= 0 ? 0 : (in - offset + stride - 1) / stride;
  lo = std::min(lo, out);
  hi = std::clamp(hi, lo, out);
}

// Same-width sweeps (stride 1, OW == W: e.g. 3x3 with padding 1) have a faster form: row r of
// col is the whole input plane, read as one flat array, shifted by d = ih_off*W + w_off. One
// long copy per row (plus zeros where the window reads padding) replaces OH short ones.
inline bool same_width(const ConvGeometry& g) { return g.stride == 1 && g.out_w() == g.W; }

// For one tap (kh, kw) of a same-width sweep: the output rows [oh_lo, oh_hi) that read the
// image, the columns [ow_lo, ow_hi) that read it, and the flat shift d (input = output + d).
struct TapRange {
  int64_t oh_lo, oh_hi, ow_lo, ow_hi, d;
};
inline TapRange tap_range(const ConvGeometry& g, int64_t kh, int64_t kw) {
  TapRange t;
  const int64_t h_off = kh * g.dilation - g.padding, w_off = kw * g.dilation - g.padding;
  valid_output_range(h_off, 1, g.H, g.out_h(), t.oh_lo, t.oh_hi);
  valid_output_range(w_off, 1, g.W, g.W, t.ow_lo, t.ow_hi);
  t.d = h_off * g.W + w_off;
  return t;
}

// x[C, H, W] -> col[C*KH*KW, OH*OW] with row stride ld (see the header comment).
template <class T>
void im2col(const T* __restrict x, const ConvGeometry& g, T* __restrict col, int64_t ld) {
  const int64_t OH = g.out_h(), OW = g.out_w();
  if (same_width(g)) {
    const int64_t HW = g.H * g.W;
    for (int64_t c = 0; c < g.C; ++c) {
      const T* plane = x + c * HW;
      for (int64_t kh = 0; kh < g.KH; ++kh) {
        for (int64_t kw = 0; kw < g.KW; ++kw) {
          T* row = col + ((c * g.KH + kh) * g.KW + kw) * ld;
          const TapRange t = tap_range(g, kh, kw);
          // rows reading the padding above / below the image
          std::fill(row, row + t.oh_lo * OW, T(0));
          std::fill(row + t.oh_hi * OW, row + OH * OW, T(0));
          // one flat copy of the rows inside; q + d stays inside the plane
          const int64_t q0 = std::max(t.oh_lo * OW, -t.d);
          const int64_t q1 = std::min(t.oh_hi * OW, HW - t.d);
          const T* src = plane + t.d;
          for (int64_t q = q0; q < q1; ++q) row[q] = src[q];
          // the columns reading the padding left / right (the copy wrapped round there)
          for (int64_t oh = t.oh_lo; oh < t.oh_hi; ++oh) {
            T* r = row + oh * OW;
            for (int64_t ow = 0; ow < t.ow_lo; ++ow) r[ow] = T(0);
            for (int64_t ow = t.ow_hi; ow < OW; ++ow) r[ow] = T(0);
          }
        }
      }
    }
    return;
  }
  for (int64_t c = 0; c < g.C; ++c) {
    const T* plane = x + c * g.H * g.W;
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        T* row = col + ((c * g.KH + kh) * g.KW + kw) * ld;
        // this row reads input column iw = ow*stride + w_off
        const int64_t w_off = kw * g.dilation - g.padding;
        int64_t ow_lo, ow_hi;
        valid_output_range(w_off, g.stride, g.W, OW, ow_lo, ow_hi);
        for (int64_t oh = 0; oh < OH; ++oh) {
          T* dst = row + oh * OW;
          const int64_t ih = oh * g.stride - g.padding + kh * g.dilation;
          if (ih < 0 || ih >= g.H) {  // the whole output row reads zero padding
            std::fill(dst, dst + OW, T(0));
            continue;
          }
          const T* src = plane + ih * g.W;  // input row ih
          for (int64_t ow = 0; ow < ow_lo; ++ow) dst[ow] = T(0);
          if (g.stride == 1) {
            for (int64_t ow = ow_lo; ow < ow_hi; ++ow) dst[ow] = src[ow + w_off];
          } else {
            for (int64_t ow = ow_lo; ow < ow_hi; ++ow) dst[ow] = src[ow * g.stride + w_off];
          }
          for (int64_t ow = ow_hi; ow < OW; ++ow) dst[ow] = T(0);
        }
      }
    }
  }
}

namespace detail {

// dst[j * ld_dst + i] = src[i * ld_src + j] for i < 8, j < 8: one 8x8 float block transposed
// in registers (three rounds of shuffles on GCC vector types, which compile to AVX shuffles
// with -march=native and to pairs of SSE shuffles without).
inline void transpose_8x8(const float* src, int64_t ld_src, float* dst, int64_t ld_dst) {
  using V = float __attribute__((vector_size(32)));
  using I = int __attribute__((vector_size(32)));
  V r[8], t[8];
  for (int i = 0; i < 8; ++i) std::memcpy(&r[i], src + i * ld_src, sizeof(V));
  // round 1: interleave row pairs within 128-bit halves (unpacklo / unpackhi)
  const I lo{0, 8, 1, 9, 4, 12, 5, 13}, hi{2, 10, 3, 11, 6, 14, 7, 15};
  for (int i = 0; i < 8; i += 2) {
    t[i] = __builtin_shuffle(r[i], r[i + 1], lo);
    t[i + 1] = __builtin_shuffle(r[i], r[i + 1], hi);
  }
  // round 2: pairs of pairs (shuffle_ps 1,0,1,0 and 3,2,3,2)
  const I even{0, 1, 8, 9, 4, 5, 12, 13}, odd{2, 3, 10, 11, 6, 7, 14, 15};
  for (int i = 0; i < 8; i += 4) {
    r[i] = __builtin_shuffle(t[i], t[i + 2], even);
    r[i + 1] = __builtin_shuffle(t[i], t[i + 2], odd);
    r[i + 2] = __builtin_shuffle(t[i + 1], t[i + 3], even);
    r[i + 3] = __builtin_shuffle(t[i + 1], t[i + 3], odd);
  }
  // round 3: the 128-bit halves of rows i and i + 4 (permute2f128 0x20 / 0x31)
  const I low_halves{0, 1, 2, 3, 8, 9, 10, 11}, high_halves{4, 5, 6, 7, 12, 13, 14, 15};
  for (int i = 0; i < 4; ++i) {
    t[i] = __builtin_shuffle(r[i], r[i + 4], low_halves);
    t[i + 4] = __builtin_shuffle(r[i], r[i + 4], high_halves);
  }
  for (int j = 0; j < 8; ++j) std::memcpy(dst + j * ld_dst, &t[j], sizeof(V));
}

// dst[j * ld_dst + i] = src[i * ld_src + j] for i < rows, j < cols (a strided transpose): 8x8
// register blocks for float, plain loops for the edges and for other types.
template <class T>
void transpose(const T* src, int64_t ld_src, int64_t rows, int64_t cols, T* dst, int64_t ld_dst) {
  int64_t i0 = 0;
  if constexpr (std::is_same_v<T, float>) {
    for (; i0 + 8 <= rows; i0 += 8) {
      int64_t j = 0;
      for (; j + 8 <= cols; j += 8)
        transpose_8x8(src + i0 * ld_src + j, ld_src, dst + j * ld_dst + i0, ld_dst);
      for (; j < cols; ++j)
        for (int64_t i = i0; i < i0 + 8; ++i) dst[j * ld_dst + i] = src[i * ld_src + j];
    }
  }
  for (int64_t i = i0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) dst[j * ld_dst + i] = src[i * ld_src + j];
}

}  // namespace detail

// x[C, H, W] -> xh[Hp, Wp, C], Hp = H + 2*padding, Wp = W + 2*padding: the image channels-last
// inside a frame of `padding` zeros, xh[(hp*Wp + wp)*C + c] = x[c][hp - padding][wp - padding].
// It is the transposed column matrix without the copies: row (oh, ow) of col^T, the C*KH*KW
// taps of one output pixel, is read at xh + (oh*stride*Wp + ow*stride)*C + ((kh*Wp + kw)*
// dilation)*C + c, and with dilation 1 the KW*C taps (kw, c) of one kernel row kh are one
// contiguous run (ops/conv's weight gradient reads them so).
template <class T>
void pad_channels_last(const T* __restrict x, const ConvGeometry& g, T* __restrict xh) {
  const int64_t p = g.padding, C = g.C, Wp = g.W + 2 * p, Hp = g.H + 2 * p;
  std::fill(xh, xh + p * Wp * C, T(0));  // the rows of the top frame
  for (int64_t h = 0; h < g.H; ++h) {
    T* row = xh + (p + h) * Wp * C;
    std::fill(row, row + p * C, T(0));
    // the [C, W] slice of image row h (rows H*W apart) transposed into [W, C]
    detail::transpose(x + h * g.W, g.H * g.W, C, g.W, row + p * C, C);
    std::fill(row + (p + g.W) * C, row + Wp * C, T(0));
  }
  std::fill(xh + (p + g.H) * Wp * C, xh + Hp * Wp * C, T(0));  // the bottom frame
}

// col[C*KH*KW, OH*OW] (row stride ld) -> x[C, H, W]: x = sum of the column entries read from
// each pixel (the transpose of im2col). x is overwritten. In the same-width form the entries
// that read padding are set to zero in col first (col is the caller's scratch), so that one
// flat shifted add per row is exact.
template <class T>
void col2im(T* __restrict col, int64_t ld, const ConvGeometry& g, T* __restrict x) {
  const int64_t OH = g.out_h(), OW = g.out_w();
  std::fill(x, x + g.C * g.H * g.W, T(0));
  if (same_width(g)) {
    const int64_t HW = g.H * g.W;
    for (int64_t c = 0; c < g.C; ++c) {
      T* plane = x + c * HW;
      for (int64_t kh = 0; kh < g.KH; ++kh) {
        for (int64_t kw = 0; kw < g.KW; ++kw) {
          T* row = col + ((c * g.KH + kh) * g.KW + kw) * ld;
          const TapRange t = tap_range(g, kh, kw);
          for (int64_t oh = t.oh_lo; oh < t.oh_hi; ++oh) {
            T* r = row + oh * OW;
            for (int64_t ow = 0; ow < t.ow_lo; ++ow) r[ow] = T(0);
            for (int64_t ow = t.ow_hi; ow < OW; ++ow) r[ow] = T(0);
          }
          const int64_t q0 = std::max(t.oh_lo * OW, -t.d);
          const int64_t q1 = std::min(t.oh_hi * OW, HW - t.d);
          T* dst = plane + t.d;
          for (int64_t q = q0; q < q1; ++q) dst[q] += row[q];
        }
      }
    }
    return;
  }
  for (int64_t c = 0; c < g.C; ++c) {
    T* plane = x + c * g.H * g.W;
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const T* row = col + ((c * g.KH + kh) * g.KW + kw) * ld;
        const int64_t w_off = kw * g.dilation - g.padding;
        int64_t ow_lo, ow_hi;
        valid_output_range(w_off, g.stride, g.W, OW, ow_lo, ow_hi);
        for (int64_t oh = 0; oh < OH; ++oh) {
          const int64_t ih = oh * g.stride - g.padding + kh * g.dilation;
          if (ih < 0 || ih >= g.H) continue;  // read padding: nothing flows back
          const T* src = row + oh * OW;
          T* dst = plane + ih * g.W;  // input row ih
          if (g.stride == 1) {
            for (int64_t ow = ow_lo; ow < ow_hi; ++ow) dst[ow + w_off] += src[ow];
          } else {
            for (int64_t ow = ow_lo; ow < ow_hi; ++ow) dst[ow * g.stride + w_off] += src[ow];
          }
        }
      }
    }
  }
}

}  // namespace trit::kernels
