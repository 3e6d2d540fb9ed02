#pragma once
// Direct depthwise convolution: groups == C == O (channel multiplier 1), so output channel c
// reads input channel c only, through its own KH x KW filter. There is nothing to share
// between channels, so im2col + GEMM would be a waste: these loops slide the filter over each
// contiguous (H, W) plane directly.
//
//   x[N, C, H, W], w[C, KH, KW] (the [C, 1, KH, KW] weight), bias[C] or nullptr,
//   y[N, C, OH, OW] with the geometry of ConvGeometry (g.C = C).
//
// Loop order: for each filter tap (kh, kw) the rows and columns of the output plane whose
// input lies inside the image are one rectangle (valid_output_range, computed once per tap),
// so the inner loop over output columns ow has no branches and vectorises; the plane stays
// in L1 across the KH*KW sweeps. The outer loops run in parallel over N*C planes (over C for
// the weight gradient, whose planes all add into one filter).
#include <cstdint>
#include <vector>

#include "trit/kernels/im2col.hpp"

namespace trit::kernels {

// y = depthwise_conv(x, w) + bias.
template <class T>
void depthwise_forward(const T* x, const T* w, const T* bias, int64_t N, const ConvGeometry& g,
                       T* y) {
  const int64_t C = g.C, OH = g.out_h(), OW = g.out_w(), s = g.stride;
#pragma omp parallel for schedule(static)
  for (int64_t nc = 0; nc < N * C; ++nc) {
    const int64_t c = nc % C;
    const T* in_plane = x + nc * g.H * g.W;
    const T* filter = w + c * g.KH * g.KW;
    T* out_plane = y + nc * OH * OW;
    const T b = bias ? bias[c] : T(0);
    for (int64_t i = 0; i < OH * OW; ++i) out_plane[i] = b;
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      const int64_t h_off = kh * g.dilation - g.padding;  // ih = oh*s + h_off
      int64_t oh_lo, oh_hi;
      valid_output_range(h_off, s, g.H, OH, oh_lo, oh_hi);
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const int64_t w_off = kw * g.dilation - g.padding;  // iw = ow*s + w_off
        int64_t lo, hi;
        valid_output_range(w_off, s, g.W, OW, lo, hi);
        const T wv = filter[kh * g.KW + kw];
        for (int64_t oh = oh_lo; oh < oh_hi; ++oh) {
          const T* in = in_plane + (oh * s + h_off) * g.W;
          T* out = out_plane + oh * OW;
          if (s == 1) {
            for (int64_t ow = lo; ow < hi; ++ow) out[ow] += wv * in[ow + w_off];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) out[ow] += wv * in[ow * s + w_off];
          }
        }
      }
    }
  }
}

// gx = dL/dx given gy = dL/dy (gx overwritten).
template <class T>
void depthwise_backward_input(const T* gy, const T* w, int64_t N, const ConvGeometry& g, T* gx) {
  const int64_t C = g.C, OH = g.out_h(), OW = g.out_w(), s = g.stride;
#pragma omp parallel for schedule(static)
  for (int64_t nc = 0; nc < N * C; ++nc) {
    const int64_t c = nc % C;
    const T* filter = w + c * g.KH * g.KW;
    const T* gy_plane = gy + nc * OH * OW;
    T* gx_plane = gx + nc * g.H * g.W;
    for (int64_t i = 0; i < g.H * g.W; ++i) gx_plane[i] = T(0);
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      const int64_t h_off = kh * g.dilation - g.padding;
      int64_t oh_lo, oh_hi;
      valid_output_range(h_off, s, g.H, OH, oh_lo, oh_hi);
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const int64_t w_off = kw * g.dilation - g.padding;
        int64_t lo, hi;
        valid_output_range(w_off, s, g.W, OW, lo, hi);
        const T wv = filter[kh * g.KW + kw];
        for (int64_t oh = oh_lo; oh < oh_hi; ++oh) {
          const T* grad = gy_plane + oh * OW;
          T* dst = gx_plane + (oh * s + h_off) * g.W;  // the input row this tap read
          if (s == 1) {
            for (int64_t ow = lo; ow < hi; ++ow) dst[ow + w_off] += wv * grad[ow];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) dst[ow * s + w_off] += wv * grad[ow];
          }
        }
      }
    }
  }
}

// gw[C, KH, KW] = dL/dw given gy and the forward input x (gw overwritten). Each channel's
// filter gradient sums over all N planes of that channel, so threads split the channels.
// Per tap, products accumulate elementwise into a row of OW partial sums (vectorised, no
// horizontal reduction per row) that is summed once at the end.
template <class T>
void depthwise_backward_weight(const T* gy, const T* x, int64_t N, const ConvGeometry& g,
                               T* gw) {
  const int64_t C = g.C, OH = g.out_h(), OW = g.out_w(), s = g.stride;
#pragma omp parallel
  {
    std::vector<T> partial(static_cast<size_t>(OW));  // this thread's row of partial sums
    T* acc = partial.data();
#pragma omp for schedule(static)
    for (int64_t c = 0; c < C; ++c) {
      for (int64_t kh = 0; kh < g.KH; ++kh) {
        const int64_t h_off = kh * g.dilation - g.padding;
        int64_t oh_lo, oh_hi;
        valid_output_range(h_off, s, g.H, OH, oh_lo, oh_hi);
        for (int64_t kw = 0; kw < g.KW; ++kw) {
          const int64_t w_off = kw * g.dilation - g.padding;
          int64_t lo, hi;
          valid_output_range(w_off, s, g.W, OW, lo, hi);
          for (int64_t ow = 0; ow < OW; ++ow) acc[ow] = T(0);
          for (int64_t n = 0; n < N; ++n) {
            const T* in_plane = x + (n * C + c) * g.H * g.W;
            const T* gy_plane = gy + (n * C + c) * OH * OW;
            for (int64_t oh = oh_lo; oh < oh_hi; ++oh) {
              const T* in = in_plane + (oh * s + h_off) * g.W;
              const T* grad = gy_plane + oh * OW;
              if (s == 1) {
                for (int64_t ow = lo; ow < hi; ++ow) acc[ow] += grad[ow] * in[ow + w_off];
              } else {
                for (int64_t ow = lo; ow < hi; ++ow) acc[ow] += grad[ow] * in[ow * s + w_off];
              }
            }
          }
          T sum = 0;
          for (int64_t ow = 0; ow < OW; ++ow) sum += acc[ow];
          gw[(c * g.KH + kh) * g.KW + kw] = sum;
        }
      }
    }
  }
}

}  // namespace trit::kernels
