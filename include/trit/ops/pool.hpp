#pragma once
// Pooling ops on x[N, C, H, W], differentiable in x (kernels in kernels/pool.hpp).
//
//   max_pool2d(x, kernel, stride = kernel, padding = 0)     -> [N, C, OH, OW]
//   avg_pool2d(x, kernel, stride = kernel, padding = 0)     -> [N, C, OH, OW]
//       OH = floor((H + 2*padding - kernel) / stride) + 1 (PyTorch, ceil_mode=False); padding
//       must be at most kernel/2. Max pool ignores the padding; avg pool counts it as zeros
//       (count_include_pad=True). stride 0 means stride = kernel.
//   adaptive_avg_pool2d(x, out_h, out_w)                    -> [N, C, out_h, out_w]
//       PyTorch's bins; (1, 1) is global average pooling.
#include <cstdint>
#include <memory>
#include <vector>

#include "trit/autograd/function.hpp"
#include "trit/core/tensor.hpp"
#include "trit/kernels/pool.hpp"

namespace trit {

namespace detail {

// Validated window sweep of a square pooling window over x's planes (g.C unused).
inline kernels::ConvGeometry plan_pool2d(const char* op, const Shape& x, int64_t kernel,
                                         int64_t stride, int64_t padding) {
  check(x.size() == 4, op, "input must be (N, C, H, W), got shape ", to_string(x));
  if (stride == 0) stride = kernel;
  check(kernel >= 1 && stride >= 1 && padding >= 0, op, "need kernel >= 1, stride >= 0, ",
        "padding >= 0; got kernel ", kernel, ", stride ", stride, ", padding ", padding);
  check(2 * padding <= kernel, op, "padding ", padding, " must be at most half the kernel ",
        kernel);
  kernels::ConvGeometry g{x[1], x[2], x[3], kernel, kernel, stride, padding, 1};
  check(g.out_h() >= 1 && g.out_w() >= 1, op, "kernel ", kernel, " is larger than the padded ",
        "input ", x[2] + 2 * padding, "x", x[3] + 2 * padding, " (input ", to_string(x), ")");
  return g;
}

}  // namespace detail

template <class T>
Tensor<T> max_pool2d(const Tensor<T>& x, int64_t kernel, int64_t stride = 0,
                     int64_t padding = 0) {
  const auto g = detail::plan_pool2d("max_pool2d", x.shape(), kernel, stride, padding);
  const int64_t planes = x.size(0) * x.size(1);
  Tensor<T> y = Tensor<T>::empty({x.size(0), x.size(1), g.out_h(), g.out_w()});
  // flat index of each output cell's winner in its plane, read by the backward scatter
  auto argmax = std::make_shared<std::vector<int32_t>>(static_cast<size_t>(y.numel()));
  kernels::max_pool_forward(x.data(), planes, g, y.data(), argmax->data());
  if (!needs_graph<T>({x})) return y;
  return record("max_pool2d", y, {x}, [g, planes, argmax, shape = x.shape()](const Tensor<T>& gy) {
    Tensor<T> gx = Tensor<T>::empty(shape);
    kernels::max_pool_backward(gy.data(), argmax->data(), planes, g, gx.data());
    return std::vector<Tensor<T>>{gx};
  });
}

template <class T>
Tensor<T> avg_pool2d(const Tensor<T>& x, int64_t kernel, int64_t stride = 0,
                     int64_t padding = 0) {
  const auto g = detail::plan_pool2d("avg_pool2d", x.shape(), kernel, stride, padding);
  const int64_t planes = x.size(0) * x.size(1);
  Tensor<T> y = Tensor<T>::empty({x.size(0), x.size(1), g.out_h(), g.out_w()});
  kernels::avg_pool_forward(x.data(), planes, g, y.data());
  return record("avg_pool2d", y, {x}, [g, planes, shape = x.shape()](const Tensor<T>& gy) {
    Tensor<T> gx = Tensor<T>::empty(shape);
    kernels::avg_pool_backward(gy.data(), planes, g, gx.data());
    return std::vector<Tensor<T>>{gx};
  });
}

template <class T>
Tensor<T> adaptive_avg_pool2d(const Tensor<T>& x, int64_t out_h, int64_t out_w) {
  const char* op = "adaptive_avg_pool2d";
  check(x.dim() == 4, op, "input must be (N, C, H, W), got shape ", to_string(x.shape()));
  check(out_h >= 1 && out_w >= 1, op, "output size ", out_h, "x", out_w, " must be positive");
  check(x.size(2) >= 1 && x.size(3) >= 1, op, "empty input plane in ", to_string(x.shape()));
  const int64_t planes = x.size(0) * x.size(1), H = x.size(2), W = x.size(3);
  Tensor<T> y = Tensor<T>::empty({x.size(0), x.size(1), out_h, out_w});
  kernels::adaptive_avg_pool_forward(x.data(), planes, H, W, out_h, out_w, y.data());
  return record("adaptive_avg_pool2d", y, {x},
                [planes, H, W, out_h, out_w, shape = x.shape()](const Tensor<T>& gy) {
                  Tensor<T> gx = Tensor<T>::empty(shape);
                  kernels::adaptive_avg_pool_backward(gy.data(), planes, H, W, out_h, out_w,
                                                      gx.data());
                  return std::vector<Tensor<T>>{gx};
                });
}

}  // namespace trit
