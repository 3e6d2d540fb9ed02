#pragma once
// Activations, differentiable: relu, relu6, leaky_relu, sigmoid, tanh, softmax, log_softmax,
// dropout. Gradients at kinks follow PyTorch: relu'(0) = 0; relu6' = 0 at x <= 0 and x >= 6;
// leaky_relu'(0) = negative_slope.
#include <cmath>
#include <cstdint>
#include <vector>

#include "trit/autograd/function.hpp"
#include "trit/core/rng.hpp"
#include "trit/core/tensor.hpp"
#include "trit/ops/broadcast.hpp"
#include "trit/ops/elementwise.hpp"

namespace trit {

// max(x, 0).
template <class T>
Tensor<T> relu(const Tensor<T>& x) {
  Tensor<T> out = detail::map(x, [](const auto& in, auto& o) { o = in.max(T(0)); });
  return record("relu", out, {x}, [x_ = x.detach()](const Tensor<T>& g) {
    return std::vector<Tensor<T>>{detail::zip(g, x_, [](T a, T v) { return v > 0 ? a : T(0); })};
  });
}

// min(max(x, 0), 6).
template <class T>
Tensor<T> relu6(const Tensor<T>& x) {
  Tensor<T> out = detail::map(x, [](const auto& in, auto& o) { o = in.max(T(0)).min(T(6)); });
  return record("relu6", out, {x}, [x_ = x.detach()](const Tensor<T>& g) {
    return std::vector<Tensor<T>>{
        detail::zip(g, x_, [](T a, T v) { return v > 0 && v < 6 ? a : T(0); })};
  });
}

// x for x > 0, negative_slope * x otherwise.
template <class T>
Tensor<T> leaky_relu(const Tensor<T>& x, Scalar<T> negative_slope = Scalar<T>(0.01)) {
  const T s = negative_slope;
  Tensor<T> out = detail::map(x, [s](const auto& in, auto& o) { o = (in > T(0)).select(in, in * s); });
  return record("leaky_relu", out, {x}, [x_ = x.detach(), s](const Tensor<T>& g) {
    return std::vector<Tensor<T>>{detail::zip(g, x_, [s](T a, T v) { return v > 0 ? a : a * s; })};
  });
}

// 1 / (1 + e^-x).
template <class T>
Tensor<T> sigmoid(const Tensor<T>& x) {
  Tensor<T> out = detail::map(x, [](const auto& in, auto& o) { o = (T(1) + (-in).exp()).inverse(); });
  return record("sigmoid", out, {x}, [out_ = out.detach()](const Tensor<T>& g) {
    return std::vector<Tensor<T>>{detail::zip(g, out_, [](T a, T y) { return a * y * (1 - y); })};
  });
}

// Hyperbolic tangent.
template <class T>
Tensor<T> tanh(const Tensor<T>& x) {
  Tensor<T> out = detail::map(x, [](const auto& in, auto& o) { o = in.tanh(); });
  return record("tanh", out, {x}, [out_ = out.detach()](const Tensor<T>& g) {
    return std::vector<Tensor<T>>{detail::zip(g, out_, [](T a, T y) { return a * (1 - y * y); })};
  });
}

namespace detail {
// A tensor seen as [outer, C, inner] around `axis` (C = extent of axis): each of the `outer`
// blocks is a row-major C x inner matrix whose columns are the lines softmax normalises.
struct AxisBlocks {
  int64_t outer = 1, C = 1, inner = 1;
  AxisBlocks(const Shape& shape, int64_t axis, const char* op) {
    const int64_t rank = static_cast<int64_t>(shape.size());
    const int64_t a = normalize_axis(axis, rank, op);
    for (int64_t d = 0; d < a; ++d) outer *= shape[d];
    C = shape[a];
    for (int64_t d = a + 1; d < rank; ++d) inner *= shape[d];
  }
  // Calls fn(block) for block = 0..outer-1, in parallel when the tensor is large.
  template <class Fn>
  void for_each(Fn&& fn) const {
#pragma omp parallel for schedule(static) if (outer > 1 && outer * C * inner > kParallelThreshold)
    for (int64_t o = 0; o < outer; ++o) fn(o);
  }
};

template <class T>
using BlockArray = Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// softmax (or log_softmax when `log`) of x along `axis`, max-subtracted for stability.
template <class T>
Tensor<T> softmax_values(const Tensor<T>& x, const AxisBlocks& b, bool log) {
  Tensor<T> y = Tensor<T>::empty(x.shape());
  if (x.numel() == 0) return y;
  b.for_each([&](int64_t o) {
    Eigen::Map<const BlockArray<T>> in(x.data() + o * b.C * b.inner, b.C, b.inner);
    Eigen::Map<BlockArray<T>> out(y.data() + o * b.C * b.inner, b.C, b.inner);
    const Eigen::Array<T, 1, Eigen::Dynamic> max = in.colwise().maxCoeff();
    out = in.rowwise() - max;  // <= 0
    const Eigen::Array<T, 1, Eigen::Dynamic> total = out.exp().colwise().sum();
    if (log) {
      out.rowwise() -= total.log();
    } else {
      out = out.exp().rowwise() / total;
    }
  });
  return y;
}
}  // namespace detail

// e^x / sum(e^x) along `axis` (negative from the end).
template <class T>
Tensor<T> softmax(const Tensor<T>& x, int64_t axis = -1) {
  const detail::AxisBlocks b(x.shape(), axis, "softmax");
  Tensor<T> out = detail::softmax_values(x, b, false);
  return record("softmax", out, {x}, [y_ = out.detach(), b](const Tensor<T>& g) {
    // dx = y * (g - sum_c(g * y))
    Tensor<T> gx = Tensor<T>::empty(g.shape());
    b.for_each([&](int64_t o) {
      const int64_t at = o * b.C * b.inner;
      Eigen::Map<const detail::BlockArray<T>> go(g.data() + at, b.C, b.inner);
      Eigen::Map<const detail::BlockArray<T>> y(y_.data() + at, b.C, b.inner);
      Eigen::Map<detail::BlockArray<T>> dx(gx.data() + at, b.C, b.inner);
      const Eigen::Array<T, 1, Eigen::Dynamic> dot = (go * y).colwise().sum();
      dx = y * (go.rowwise() - dot);
    });
    return std::vector<Tensor<T>>{gx};
  });
}

// log(softmax(x)) along `axis`, computed as x - max - log(sum(e^(x - max))).
template <class T>
Tensor<T> log_softmax(const Tensor<T>& x, int64_t axis = -1) {
  const detail::AxisBlocks b(x.shape(), axis, "log_softmax");
  Tensor<T> out = detail::softmax_values(x, b, true);
  return record("log_softmax", out, {x}, [y_ = out.detach(), b](const Tensor<T>& g) {
    // dx = g - softmax * sum_c(g)
    Tensor<T> gx = Tensor<T>::empty(g.shape());
    b.for_each([&](int64_t o) {
      const int64_t at = o * b.C * b.inner;
      Eigen::Map<const detail::BlockArray<T>> go(g.data() + at, b.C, b.inner);
      Eigen::Map<const detail::BlockArray<T>> y(y_.data() + at, b.C, b.inner);
      Eigen::Map<detail::BlockArray<T>> dx(gx.data() + at, b.C, b.inner);
      const Eigen::Array<T, 1, Eigen::Dynamic> total = go.colwise().sum();
      dx = go - y.exp().rowwise() * total;
    });
    return std::vector<Tensor<T>>{gx};
  });
}

// Inverted dropout: in training, each element is zeroed with probability p (drawn from
// `gen`) and the survivors are scaled by 1/(1-p), so the expectation is unchanged. Returns x
// itself when !training or p == 0. p must lie in [0, 1).
template <class T>
Tensor<T> dropout(const Tensor<T>& x, double p, bool training, Generator& gen = global_generator()) {
  check(p >= 0.0 && p < 1.0, "dropout", "probability p = ", p, " is outside [0, 1)");
  if (!training || p == 0.0) return x;
  // mask[i] = 0 (dropped) or 1/(1-p) (kept); drawn in element order so runs reproduce.
  Tensor<T> mask = Tensor<T>::empty(x.shape());
  const T scale = T(1.0 / (1.0 - p));
  for (int64_t i = 0; i < mask.numel(); ++i) mask.data()[i] = gen.uniform() < p ? T(0) : scale;
  Tensor<T> out = detail::zip(x, mask, [](T v, T m) { return v * m; });
  return record("dropout", out, {x}, [mask](const Tensor<T>& g) {
    return std::vector<Tensor<T>>{detail::zip(g, mask, [](T a, T m) { return a * m; })};
  });
}

}  // namespace trit
