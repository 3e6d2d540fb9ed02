#pragma once
// Matrix products, differentiable: matmul (2-D and batched 3-D) and linear (a fully
// connected layer). Every product goes through trit::kernels::gemm.
#include <cstdint>
#include <vector>

#include "trit/autograd/function.hpp"
#include "trit/core/tensor.hpp"
#include "trit/kernels/gemm.hpp"

namespace trit {

// a [M,K] x b [K,N] -> [M,N], or batched a [B,M,K] x b [B,K,N] -> [B,M,N].
template <class T>
Tensor<T> matmul(const Tensor<T>& a, const Tensor<T>& b) {
  const bool ok = (a.dim() == 2 && b.dim() == 2 && a.size(1) == b.size(0)) ||
                  (a.dim() == 3 && b.dim() == 3 && a.size(0) == b.size(0) && a.size(2) == b.size(1));
  check(ok, "matmul", "expects [M,K] x [K,N] or [B,M,K] x [B,K,N], got ", to_string(a.shape()),
        " x ", to_string(b.shape()));
  const bool batched = a.dim() == 3;
  const int64_t B = batched ? a.size(0) : 1, M = a.size(-2), K = a.size(-1), N = b.size(-1);
  Tensor<T> out = Tensor<T>::empty(batched ? Shape{B, M, N} : Shape{M, N});
  for (int64_t i = 0; i < B; ++i)
    kernels::gemm<T>(false, false, M, N, K, T(1), a.data() + i * M * K, K, b.data() + i * K * N,
                     N, T(0), out.data() + i * M * N, N);
  return record("matmul", out, {a, b},
                [a_ = a.detach(), b_ = b.detach(), need_a = a.requires_grad(),
                 need_b = b.requires_grad(), B, M, K, N](const Tensor<T>& g) {
                  Tensor<T> ga, gb;
                  if (need_a) ga = Tensor<T>::empty(a_.shape());
                  if (need_b) gb = Tensor<T>::empty(b_.shape());
                  for (int64_t i = 0; i < B; ++i) {
                    const T* gi = g.data() + i * M * N;
                    if (need_a)  // dA = dY B^T
                      kernels::gemm<T>(false, true, M, K, N, T(1), gi, N, b_.data() + i * K * N,
                                       N, T(0), ga.data() + i * M * K, K);
                    if (need_b)  // dB = A^T dY
                      kernels::gemm<T>(true, false, K, N, M, T(1), a_.data() + i * M * K, K, gi,
                                       N, T(0), gb.data() + i * K * N, N);
                  }
                  return std::vector<Tensor<T>>{ga, gb};
                });
}

// y = x W^T + bias: x [N, in] (or any [..., in]), weight [out, in], bias [out] or an
// undefined Tensor<T>() for none -> [N, out] (or [..., out]).
template <class T>
Tensor<T> linear(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias = Tensor<T>()) {
  check(weight.dim() == 2, "linear", "weight must be [out, in], got ", to_string(weight.shape()));
  const int64_t out_features = weight.size(0), in_features = weight.size(1);
  check(x.dim() >= 1 && x.size(-1) == in_features, "linear", "input ", to_string(x.shape()),
        " does not end in in_features ", in_features, " of weight ", to_string(weight.shape()));
  const bool has_bias = bias.defined();
  if (has_bias)
    check(bias.shape() == Shape{out_features}, "linear", "bias ", to_string(bias.shape()),
          " does not match out_features ", out_features, " of weight ",
          to_string(weight.shape()));
  const int64_t rows = numel_of(Shape(x.shape().begin(), x.shape().end() - 1));
  Shape shape = x.shape();
  shape.back() = out_features;
  Tensor<T> y = Tensor<T>::empty(shape);
  if (has_bias) y.matrix(rows, out_features).rowwise() = bias.matrix(1, out_features).row(0);
  kernels::gemm<T>(false, true, rows, out_features, in_features, T(1), x.data(), in_features,
                   weight.data(), in_features, has_bias ? T(1) : T(0), y.data(), out_features);

  std::vector<Tensor<T>> inputs{x, weight};
  if (has_bias) inputs.push_back(bias);
  return record("linear", y, std::move(inputs),
                [x_ = x.detach(), w_ = weight.detach(), has_bias, rows, in_features, out_features,
                 need_x = x.requires_grad(), need_w = weight.requires_grad(),
                 need_b = has_bias && bias.requires_grad()](const Tensor<T>& g) {
                  std::vector<Tensor<T>> grads(has_bias ? 3 : 2);
                  if (need_x) {  // dX = dY W
                    grads[0] = Tensor<T>::empty(x_.shape());
                    kernels::gemm<T>(false, false, rows, in_features, out_features, T(1),
                                     g.data(), out_features, w_.data(), in_features, T(0),
                                     grads[0].data(), in_features);
                  }
                  if (need_w) {  // dW = dY^T X
                    grads[1] = Tensor<T>::empty(w_.shape());
                    kernels::gemm<T>(true, false, out_features, in_features, rows, T(1),
                                     g.data(), out_features, x_.data(), in_features, T(0),
                                     grads[1].data(), in_features);
                  }
                  if (need_b) {  // db = column sums of dY
                    grads[2] = Tensor<T>::empty({out_features});
                    grads[2].matrix(1, out_features) =
                        g.matrix(rows, out_features).colwise().sum();
                  }
                  return grads;
                });
}

}  // namespace trit
