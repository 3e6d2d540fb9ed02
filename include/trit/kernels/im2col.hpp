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

// x[C, H, W] -> col[C*KH*KW, OH*OW] with row stride ld (see the header comment).
template <class T>
void im2col(const T* x, const ConvGeometry& g, T* col, int64_t ld) {
  const int64_t OH = g.out_h(), OW = g.out_w();
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
          std::fill(dst, dst + ow_lo, T(0));
          if (g.stride == 1) {
            for (int64_t ow = ow_lo; ow < ow_hi; ++ow) dst[ow] = src[ow + w_off];
          } else {
            for (int64_t ow = ow_lo; ow < ow_hi; ++ow) dst[ow] = src[ow * g.stride + w_off];
          }
          std::fill(dst + ow_hi, dst + OW, T(0));
        }
      }
    }
  }
}

// col[C*KH*KW, OH*OW] (row stride ld) -> x[C, H, W]: x = sum of the column entries read from
// each pixel (the transpose of im2col). x is overwritten.
template <class T>
void col2im(const T* col, int64_t ld, const ConvGeometry& g, T* x) {
  const int64_t OH = g.out_h(), OW = g.out_w();
  std::fill(x, x + g.C * g.H * g.W, T(0));
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
