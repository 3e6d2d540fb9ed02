#pragma once
// Pooling kernels on `planes` = N*C independent (H, W) planes, in parallel over planes.
//
// Max and average pooling slide a KH x KW window (ConvGeometry: g.C is ignored, dilation 1)
// over each plane; the output plane is (OH, OW) = (g.out_h(), g.out_w()).
//   - max pool: y = max over the window's in-image pixels (padding counts as -infinity);
//     argmax[OH*OW] per plane saves the winner's flat index ih*W + iw for the backward scatter.
//   - avg pool: y = sum over in-image pixels / (KH*KW): padding counts as zeros in the average
//     (PyTorch's count_include_pad=True default).
//   - adaptive average pool: output cell (i, j) averages rows [floor(i*H/OH), ceil((i+1)*H/OH))
//     and columns [floor(j*W/OW), ceil((j+1)*W/OW)) (PyTorch's bins); OH = OW = 1 is the
//     global average.
// Backward kernels overwrite gx[planes, H, W] with dL/dx given gy[planes, OH, OW].
#include <cmath>
#include <cstdint>
#include <limits>

#include "trit/kernels/im2col.hpp"

namespace trit::kernels {

template <class T>
void max_pool_forward(const T* x, int64_t planes, const ConvGeometry& g, T* y, int32_t* argmax) {
  const int64_t OH = g.out_h(), OW = g.out_w();
#pragma omp parallel for schedule(static)
  for (int64_t pl = 0; pl < planes; ++pl) {
    const T* in = x + pl * g.H * g.W;
    T* out = y + pl * OH * OW;
    int32_t* arg = argmax + pl * OH * OW;
    for (int64_t oh = 0; oh < OH; ++oh) {
      const int64_t h0 = std::max<int64_t>(oh * g.stride - g.padding, 0);
      const int64_t h1 = std::min<int64_t>(oh * g.stride - g.padding + g.KH, g.H);
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t w0 = std::max<int64_t>(ow * g.stride - g.padding, 0);
        const int64_t w1 = std::min<int64_t>(ow * g.stride - g.padding + g.KW, g.W);
        T best = -std::numeric_limits<T>::infinity();
        int64_t best_at = h0 * g.W + w0;
        for (int64_t ih = h0; ih < h1; ++ih) {
          for (int64_t iw = w0; iw < w1; ++iw) {
            const T v = in[ih * g.W + iw];
            if (v > best || std::isnan(v)) {  // NaN wins, as in PyTorch
              best = v;
              best_at = ih * g.W + iw;
              if (std::isnan(v)) break;
            }
          }
        }
        out[oh * OW + ow] = best;
        arg[oh * OW + ow] = static_cast<int32_t>(best_at);
      }
    }
  }
}

template <class T>
void max_pool_backward(const T* gy, const int32_t* argmax, int64_t planes, const ConvGeometry& g,
                       T* gx) {
  const int64_t OHW = g.out_h() * g.out_w();
#pragma omp parallel for schedule(static)
  for (int64_t pl = 0; pl < planes; ++pl) {
    T* dst = gx + pl * g.H * g.W;
    for (int64_t i = 0; i < g.H * g.W; ++i) dst[i] = T(0);
    const T* grad = gy + pl * OHW;
    const int32_t* arg = argmax + pl * OHW;
    for (int64_t o = 0; o < OHW; ++o) dst[arg[o]] += grad[o];  // scatter to each winner
  }
}

template <class T>
void avg_pool_forward(const T* x, int64_t planes, const ConvGeometry& g, T* y) {
  const int64_t OH = g.out_h(), OW = g.out_w();
  const T scale = T(1) / T(g.KH * g.KW);
#pragma omp parallel for schedule(static)
  for (int64_t pl = 0; pl < planes; ++pl) {
    const T* in = x + pl * g.H * g.W;
    T* out = y + pl * OH * OW;
    for (int64_t oh = 0; oh < OH; ++oh) {
      const int64_t h0 = std::max<int64_t>(oh * g.stride - g.padding, 0);
      const int64_t h1 = std::min<int64_t>(oh * g.stride - g.padding + g.KH, g.H);
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t w0 = std::max<int64_t>(ow * g.stride - g.padding, 0);
        const int64_t w1 = std::min<int64_t>(ow * g.stride - g.padding + g.KW, g.W);
        T sum = 0;
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) sum += in[ih * g.W + iw];
        out[oh * OW + ow] = sum * scale;
      }
    }
  }
}

template <class T>
void avg_pool_backward(const T* gy, int64_t planes, const ConvGeometry& g, T* gx) {
  const int64_t OH = g.out_h(), OW = g.out_w();
  const T scale = T(1) / T(g.KH * g.KW);
#pragma omp parallel for schedule(static)
  for (int64_t pl = 0; pl < planes; ++pl) {
    T* dst = gx + pl * g.H * g.W;
    for (int64_t i = 0; i < g.H * g.W; ++i) dst[i] = T(0);
    const T* grad = gy + pl * OH * OW;
    for (int64_t oh = 0; oh < OH; ++oh) {
      const int64_t h0 = std::max<int64_t>(oh * g.stride - g.padding, 0);
      const int64_t h1 = std::min<int64_t>(oh * g.stride - g.padding + g.KH, g.H);
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t w0 = std::max<int64_t>(ow * g.stride - g.padding, 0);
        const int64_t w1 = std::min<int64_t>(ow * g.stride - g.padding + g.KW, g.W);
        const T share = grad[oh * OW + ow] * scale;  // every in-window pixel gets 1/(KH*KW)
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) dst[ih * g.W + iw] += share;
      }
    }
  }
}

// PyTorch's adaptive bin [start, end) of output cell i when `in` is split into `out` cells.
inline int64_t adaptive_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
inline int64_t adaptive_end(int64_t i, int64_t in, int64_t out) {
  return ((i + 1) * in + out - 1) / out;
}

template <class T>
void adaptive_avg_pool_forward(const T* x, int64_t planes, int64_t H, int64_t W, int64_t OH,
                               int64_t OW, T* y) {
  if (OH == 1 && OW == 1) {  // global average: one contiguous reduction per plane
    const int64_t HW = H * W;
#pragma omp parallel for schedule(static)
    for (int64_t pl = 0; pl < planes; ++pl) {
      const T* in = x + pl * HW;
      T sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int64_t i = 0; i < HW; ++i) sum += in[i];
      y[pl] = sum / T(HW);
    }
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t pl = 0; pl < planes; ++pl) {
    const T* in = x + pl * H * W;
    T* out = y + pl * OH * OW;
    for (int64_t oh = 0; oh < OH; ++oh) {
      const int64_t h0 = adaptive_start(oh, H, OH), h1 = adaptive_end(oh, H, OH);
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t w0 = adaptive_start(ow, W, OW), w1 = adaptive_end(ow, W, OW);
        T sum = 0;
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) sum += in[ih * W + iw];
        out[oh * OW + ow] = sum / T((h1 - h0) * (w1 - w0));
      }
    }
  }
}

template <class T>
void adaptive_avg_pool_backward(const T* gy, int64_t planes, int64_t H, int64_t W, int64_t OH,
                                int64_t OW, T* gx) {
  if (OH == 1 && OW == 1) {  // global average: every pixel gets gy / (H*W)
    const int64_t HW = H * W;
#pragma omp parallel for schedule(static)
    for (int64_t pl = 0; pl < planes; ++pl) {
      const T share = gy[pl] / T(HW);
      T* dst = gx + pl * HW;
      for (int64_t i = 0; i < HW; ++i) dst[i] = share;
    }
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t pl = 0; pl < planes; ++pl) {
    T* dst = gx + pl * H * W;
    for (int64_t i = 0; i < H * W; ++i) dst[i] = T(0);
    const T* grad = gy + pl * OH * OW;
    for (int64_t oh = 0; oh < OH; ++oh) {
      const int64_t h0 = adaptive_start(oh, H, OH), h1 = adaptive_end(oh, H, OH);
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t w0 = adaptive_start(ow, W, OW), w1 = adaptive_end(ow, W, OW);
        const T share = grad[oh * OW + ow] / T((h1 - h0) * (w1 - w0));
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) dst[ih * W + iw] += share;
      }
    }
  }
}

}  // namespace trit::kernels
