#pragma once
// Losses, differentiable, each returning a scalar (shape {}) averaged over the batch.
//
// cross_entropy(logits [N,C], targets (N class indices), label_smoothing = eps) is PyTorch's
// F.cross_entropy: with p = softmax(logits) and q = (1 - eps) * onehot(target) + eps / C,
//   loss = mean_n  -sum_c q[n,c] * log p[n,c],      dloss/dlogits = (p - q) / N.
// It is fused (one pass computes log p and keeps p for the backward) instead of being
// composed from log_softmax, gather and mean.
#include <cmath>
#include <cstdint>
#include <vector>

#include "trit/autograd/function.hpp"
#include "trit/core/tensor.hpp"
#include "trit/ops/broadcast.hpp"

namespace trit {

// Mean over the batch of the (label-smoothed) negative log-likelihood of `targets` under
// softmax(logits). logits [N,C]; targets: N indices in [0, C); label_smoothing in [0, 1].
template <class T>
Tensor<T> cross_entropy(const Tensor<T>& logits, const std::vector<int64_t>& targets,
                        double label_smoothing = 0.0) {
  check(logits.dim() == 2 && logits.size(0) > 0 && logits.size(1) > 0, "cross_entropy",
        "logits must be [N, C] with N, C > 0, got ", to_string(logits.shape()));
  const int64_t N = logits.size(0), C = logits.size(1);
  check(static_cast<int64_t>(targets.size()) == N, "cross_entropy", targets.size(),
        " targets for logits of shape ", to_string(logits.shape()));
  for (int64_t n = 0; n < N; ++n)
    check(targets[n] >= 0 && targets[n] < C, "cross_entropy", "target ", targets[n], " at ", n,
          " is outside [0, ", C, ") for logits of shape ", to_string(logits.shape()));
  check(label_smoothing >= 0.0 && label_smoothing <= 1.0, "cross_entropy", "label_smoothing ",
        label_smoothing, " is outside [0, 1]");

  const double eps = label_smoothing;
  Tensor<T> probs = Tensor<T>::empty(logits.shape());  // softmax, kept for the backward
  std::vector<double> row_loss(N);
#pragma omp parallel for schedule(static) if (N * C > detail::kParallelThreshold)
  for (int64_t n = 0; n < N; ++n) {
    const T* x = logits.data() + n * C;
    T* p = probs.data() + n * C;
    T max = x[0];
    for (int64_t c = 1; c < C; ++c) max = std::max(max, x[c]);
    double total = 0, sum_x = 0;  // sum of e^(x - max) and of x
    for (int64_t c = 0; c < C; ++c) {
      p[c] = std::exp(x[c] - max);
      total += p[c];
      sum_x += x[c];
    }
    const double log_total = std::log(total) + max;  // log sum_c e^x
    for (int64_t c = 0; c < C; ++c) p[c] = T(p[c] / total);
    // -sum_c q_c log p_c with log p_c = x_c - log_total
    const double nll = log_total - x[targets[n]];
    const double smooth = log_total - sum_x / C;
    row_loss[n] = (1 - eps) * nll + eps * smooth;
  }
  double loss = 0;
  for (double l : row_loss) loss += l;
  Tensor<T> out = Tensor<T>::scalar(T(loss / N));

  return record("cross_entropy", out, {logits}, [probs, targets, eps, N, C](const Tensor<T>& g) {
    const T scale = g.item() / T(N);
    const T off = T(eps / C);  // q off the target
    Tensor<T> gx = Tensor<T>::empty(probs.shape());
    detail::parallel_chunks(N * C, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) gx.data()[i] = (probs.data()[i] - off) * scale;
    });
    for (int64_t n = 0; n < N; ++n) gx.data()[n * C + targets[n]] -= T(1 - eps) * scale;
    return std::vector<Tensor<T>>{gx};
  });
}

// mean((a - b)^2) over all elements; a and b must have the same shape.
template <class T>
Tensor<T> mse_loss(const Tensor<T>& a, const Tensor<T>& b) {
  check(a.shape() == b.shape(), "mse_loss", "shapes ", to_string(a.shape()), " and ",
        to_string(b.shape()), " differ");
  check(a.numel() > 0, "mse_loss", "empty input of shape ", to_string(a.shape()));
  Tensor<T> diff = detail::zip(a, b, [](T x, T y) { return x - y; });
  Tensor<T> out = Tensor<T>::scalar(diff.array().square().sum() / T(a.numel()));
  return record("mse_loss", out, {a, b},
                [diff, need_b = b.requires_grad()](const Tensor<T>& g) {
                  const T scale = 2 * g.item() / T(diff.numel());
                  Tensor<T> ga = detail::map(diff, [scale](const auto& in, auto& o) { o = in * scale; });
                  Tensor<T> gb;
                  if (need_b) gb = detail::map(ga, [](const auto& in, auto& o) { o = -in; });
                  return std::vector<Tensor<T>>{ga, gb};
                });
}

}  // namespace trit
