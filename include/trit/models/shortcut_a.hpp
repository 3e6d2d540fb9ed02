#pragma once
// Option-A shortcut of the CIFAR ResNets (He et al. 2016, section 4.2): a parameter-free
// identity that matches a block's output when it halves the resolution and widens channels.
//
//   subsample_pad_channels(x [N, C, H, W], out_channels O >= C, stride S)
//     -> y [N, O, ceil(H/S), ceil(W/S)]
//   y[n, P + c, h, w] = x[n, c, h*S, w*S] for c < C, with P = (O - C) / 2 zero channels
//   before the copied ones and O - C - P after; every other element of y is zero.
//
// This is x[:, :, ::S, ::S] zero-padded on the channel axis with (P, O - C - P), the layout
// of the widely used PyTorch CIFAR ResNet (akamaster/pytorch_resnet_cifar10), so its weights
// load unchanged. Differentiable: the gradient of x is that of y at the sampled pixels, zero
// elsewhere.
#include <cstdint>
#include <string>
#include <vector>

#include "trit/autograd/function.hpp"
#include "trit/core/tensor.hpp"
#include "trit/nn/module.hpp"

namespace trit {

namespace detail {
// Calls f(i, j) for every sampled element: i its flat index in x [N, C, H, W], j the flat index
// of its copy in y [N, O, ceil(H/S), ceil(W/S)] (channel c lands on channel pad + c).
template <class F>
void for_each_subsampled(int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t pad,
                         int64_t S, F&& f) {
  const int64_t Ho = (H + S - 1) / S, Wo = (W + S - 1) / S;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t x_plane = (n * C + c) * H * W, y_plane = (n * O + pad + c) * Ho * Wo;
      for (int64_t i = 0; i < Ho; ++i)
        for (int64_t j = 0; j < Wo; ++j) f(x_plane + i * S * W + j * S, y_plane + i * Wo + j);
    }
}
}  // namespace detail

template <class T>
Tensor<T> subsample_pad_channels(const Tensor<T>& x, int64_t out_channels, int64_t stride) {
  check(x.dim() == 4, "subsample_pad_channels", "expected x [N, C, H, W], got ",
        to_string(x.shape()));
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  check(out_channels >= C && stride >= 1, "subsample_pad_channels", "out_channels ", out_channels,
        " must be >= C and stride ", stride, " >= 1 for x ", to_string(x.shape()));
  const int64_t pad = (out_channels - C) / 2;
  Tensor<T> out =
      Tensor<T>::zeros({N, out_channels, (H + stride - 1) / stride, (W + stride - 1) / stride});
  const T* xp = x.data();
  T* yp = out.data();
  detail::for_each_subsampled(N, C, H, W, out_channels, pad, stride,
                              [&](int64_t i, int64_t j) { yp[j] = xp[i]; });
  return record("subsample_pad_channels", out, {x},
                [xs = x.shape(), out_channels, pad, stride](const Tensor<T>& g) {
                  Tensor<T> gx = Tensor<T>::zeros(xs);
                  const T* gp = g.data();
                  T* gxp = gx.data();
                  detail::for_each_subsampled(xs[0], xs[1], xs[2], xs[3], out_channels, pad, stride,
                                              [&](int64_t i, int64_t j) { gxp[i] = gp[j]; });
                  return std::vector<Tensor<T>>{gx};
                });
}

namespace models {

// The option-A shortcut as a module (no parameters): x [N, C, H, W] -> [N, O, H/S, W/S].
template <class T = float>
class ShortcutA : public nn::Module<T> {
 public:
  ShortcutA(int64_t in_channels, int64_t out_channels, int64_t stride)
      : in_(in_channels), out_(out_channels), stride_(stride) {
    check(in_channels > 0 && out_channels >= in_channels && stride >= 1, "ShortcutA",
          "need 0 < in_channels <= out_channels and stride >= 1, got ", in_channels, ", ",
          out_channels, ", ", stride);
  }
  Tensor<T> forward(const Tensor<T>& x) override {
    check(x.dim() == 4 && x.size(1) == in_, "ShortcutA", "expected ", in_,
          " input channels, got x ", to_string(x.shape()));
    return subsample_pad_channels(x, out_, stride_);
  }
  std::string describe() const override {
    return "ShortcutA(" + std::to_string(in_) + ", " + std::to_string(out_) +
           ", stride=" + std::to_string(stride_) + ")";
  }

 private:
  int64_t in_, out_, stride_;
};

}  // namespace models
}  // namespace trit
