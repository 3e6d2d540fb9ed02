#pragma once
// Direct depthwise convolution: groups == C == O (channel multiplier 1), so output channel c
// reads input channel c only, through its own KH x KW filter. There is nothing to share
// between channels, so im2col + GEMM would be a waste: these loops slide the filter over each
// contiguous (H, W) plane directly.
//
//   x[N, C, H, W], w[C, KH, KW] (the [C, 1, KH, KW] weight), bias[C] or nullptr,
//   y[N, C, OH, OW] with the geometry of ConvGeometry (g.C = C).
//
// Two loop forms:
// - Fast path (3x3 filters, stride 1, padding <= 2*dilation: MobileNetV2's depthwise layers;
//   the forward also at stride 2): the plane is first copied into a zero-bordered scratch plane
//   (per thread, in L1/L2), so every output pixel reads all 9 taps with no bounds tests; the
//   loop over output columns ow is vectorised with the 9 products summed in registers and
//   one store per output. The input gradient is the same loop on the padded output gradient
//   with the filter flipped (a stride-1 convolution's transpose), and the weight gradient
//   sums the 9 tap products of gy and the padded x in 9 vector accumulators per plane.
// - General path (other sizes, strides, dilations): for each filter tap (kh, kw) the output
//   rows and columns whose input lies inside the image are one rectangle
//   (valid_output_range), so the inner loop over ow has no branches and vectorises; the plane
//   stays in L1 across the KH*KW sweeps.
// Loops run in parallel over N*C planes (over C for the weight gradient, whose planes all add
// into one filter).
#include <algorithm>
#include <cstdint>
#include <vector>

#include <Eigen/Core>
#include <omp.h>

#include "trit/kernels/im2col.hpp"

namespace trit::kernels {

namespace detail {

// Does the 3x3 stride-1 fast path apply (with a non-negative padding for the transpose)?
inline bool depthwise_fast(const ConvGeometry& g) {
  return g.KH == 3 && g.KW == 3 && g.stride == 1 && g.padding <= 2 * g.dilation;
}

// A thread's scratch plane (slot 0 or 1) of at least n elements, kept between calls.
template <class T>
T* depthwise_scratch(int64_t n, int slot = 0) {
  thread_local std::vector<T> buffers[2];
  auto& buffer = buffers[slot];
  if (static_cast<int64_t>(buffer.size()) < n) buffer.resize(static_cast<size_t>(n));
  return buffer.data();
}

// pad[(H + 2p) x (W + 2p)] = the plane in[H x W] with a border of p zeros.
template <class T>
void pad_plane(const T* __restrict in, int64_t H, int64_t W, int64_t p, T* __restrict pad) {
  const int64_t PW = W + 2 * p;
  std::fill(pad, pad + p * PW, T(0));
  for (int64_t h = 0; h < H; ++h) {
    T* row = pad + (p + h) * PW;
    for (int64_t i = 0; i < p; ++i) row[i] = T(0);
    std::copy(in + h * W, in + h * W + W, row + p);
    for (int64_t i = p + W; i < PW; ++i) row[i] = T(0);
  }
  std::fill(pad + (p + H) * PW, pad + (H + 2 * p) * PW, T(0));
}

// The forward sweep's fast path also takes stride 2 (MobileNetV2's downsampling layers).
inline bool depthwise_fast_forward(const ConvGeometry& g) {
  return g.KH == 3 && g.KW == 3 && (g.stride == 1 || g.stride == 2);
}

// out[OH x OW] = b + sum over the 3x3 taps of f[kh*3 + kw] * pad[oh*S + kh*d][ow*S + kw*d],
// pad a zero-bordered plane of row length PW, S the stride (1 or 2).
template <int S, class T>
void conv3x3_plane(const T* __restrict pad, int64_t PW, const T* f, int64_t d, T b,
                   T* __restrict out, int64_t OH, int64_t OW) {
  const T f0 = f[0], f1 = f[1], f2 = f[2], f3 = f[3], f4 = f[4], f5 = f[5], f6 = f[6],
          f7 = f[7], f8 = f[8];
  for (int64_t oh = 0; oh < OH; ++oh) {
    const T* r0 = pad + oh * S * PW;
    const T* r1 = r0 + d * PW;
    const T* r2 = r1 + d * PW;
    T* o = out + oh * OW;
#pragma omp simd
    for (int64_t ow = 0; ow < OW; ++ow) {
      const int64_t i = ow * S;
      T s = b;
      s += f0 * r0[i];
      s += f1 * r0[i + d];
      s += f2 * r0[i + 2 * d];
      s += f3 * r1[i];
      s += f4 * r1[i + d];
      s += f5 * r1[i + 2 * d];
      s += f6 * r2[i];
      s += f7 * r2[i + d];
      s += f8 * r2[i + 2 * d];
      o[ow] = s;
    }
  }
}

}  // namespace detail

// y = depthwise_conv(x, w) + bias.
template <class T>
void depthwise_forward(const T* x, const T* w, const T* bias, int64_t N, const ConvGeometry& g,
                       T* y) {
  const int64_t C = g.C, OH = g.out_h(), OW = g.out_w(), s = g.stride;
  if (detail::depthwise_fast_forward(g)) {
    const int64_t p = g.padding, PW = g.W + 2 * p;
#pragma omp parallel for schedule(dynamic, 32)
    for (int64_t nc = 0; nc < N * C; ++nc) {
      const int64_t c = nc % C;
      T* pad = detail::depthwise_scratch<T>((g.H + 2 * p) * PW);
      detail::pad_plane(x + nc * g.H * g.W, g.H, g.W, p, pad);
      const T b = bias ? bias[c] : T(0);
      if (s == 1)
        detail::conv3x3_plane<1>(pad, PW, w + c * 9, g.dilation, b, y + nc * OH * OW, OH, OW);
      else
        detail::conv3x3_plane<2>(pad, PW, w + c * 9, g.dilation, b, y + nc * OH * OW, OH, OW);
    }
    return;
  }
#pragma omp parallel for schedule(dynamic, 32)
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
  if (detail::depthwise_fast(g)) {
    // gx[ih][iw] = sum over taps of w[kh][kw] * gy[ih + p - kh*d][iw + p - kw*d]: the 3x3
    // sweep over gy padded by q = 2d - p with the filter flipped, whose output is H x W.
    const int64_t q = 2 * g.dilation - g.padding, PW = OW + 2 * q;
#pragma omp parallel for schedule(dynamic, 32)
    for (int64_t nc = 0; nc < N * C; ++nc) {
      const T* f = w + (nc % C) * 9;
      const T flipped[9] = {f[8], f[7], f[6], f[5], f[4], f[3], f[2], f[1], f[0]};
      T* pad = detail::depthwise_scratch<T>((OH + 2 * q) * PW);
      detail::pad_plane(gy + nc * OH * OW, OH, OW, q, pad);
      detail::conv3x3_plane<1>(pad, PW, flipped, g.dilation, T(0), gx + nc * g.H * g.W, g.H, g.W);
    }
    return;
  }
#pragma omp parallel for schedule(dynamic, 32)
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
  if (detail::depthwise_fast(g)) {
    // gw[c][kh][kw] = sum over n, oh, ow of gy[n][c][oh][ow] * pad_x[oh + kh*d][ow + kw*d].
    // gy's rows are copied into rows of the padded width PW (OW = PW - 2d values, then 2d
    // zeros), so that both planes are read with one flat index i = oh*PW + ow and each tap is
    // a fixed offset: per plane, 9 long dot products (Eigen's, vectorised) of L = OH*PW.
    const int64_t p = g.padding, PW = g.W + 2 * p, d = g.dilation;
    const int64_t PH = g.H + 2 * p, L = OH * PW;
    const int64_t offset[9] = {0,      d,      2 * d,  d * PW,          d * PW + d,
                               d * PW + 2 * d, 2 * d * PW, 2 * d * PW + d, 2 * d * PW + 2 * d};
    using Vec = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>;
    // Planes are visited in memory order (in parallel over N*C), each thread adding into its
    // own partial gw[C, 9] in double; the partials are added in thread order at the end.
    const int threads = omp_get_max_threads();
    std::vector<double> partials(static_cast<size_t>(threads) * C * 9, 0.0);
#pragma omp parallel
    {
      double* mine = partials.data() + static_cast<size_t>(omp_get_thread_num()) * C * 9;
      T* pad = detail::depthwise_scratch<T>(PH * PW + 2 * d, 0);  // + slack read as zeros
      T* gyp = detail::depthwise_scratch<T>(L, 1);
      std::fill(pad + PH * PW, pad + PH * PW + 2 * d, T(0));
#pragma omp for schedule(static)
      for (int64_t nc = 0; nc < N * C; ++nc) {
        detail::pad_plane(x + nc * g.H * g.W, g.H, g.W, p, pad);
        const T* gy_plane = gy + nc * OH * OW;
        for (int64_t oh = 0; oh < OH; ++oh) {
          std::copy(gy_plane + oh * OW, gy_plane + oh * OW + OW, gyp + oh * PW);
          for (int64_t i = OW; i < PW; ++i) gyp[oh * PW + i] = T(0);
        }
        const Vec v(gyp, L);
        double* acc = mine + (nc % C) * 9;
        for (int k = 0; k < 9; ++k) acc[k] += v.dot(Vec(pad + offset[k], L));
      }
    }
    for (int64_t i = 0; i < C * 9; ++i) {
      double sum = 0;
      for (int t = 0; t < threads; ++t) sum += partials[static_cast<size_t>(t) * C * 9 + i];
      gw[i] = T(sum);
    }
    return;
  }
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
