#pragma once
// Reductions, differentiable: sum and mean over all elements or over chosen axes.
//
//   sum(x)                      -> scalar (shape {})
//   sum(x, {1, -1}, keepdim)    -> x's shape without axes 1 and rank-1 (or with them as 1)
// Axes may be negative (-1 = last); repeated axes are an error; an empty axis list reduces
// every axis, as in PyTorch.
#include <cstdint>
#include <vector>

#include "trit/autograd/function.hpp"
#include "trit/core/tensor.hpp"
#include "trit/ops/broadcast.hpp"

namespace trit {

namespace detail {
// x's shape with each reduced axis set to 1 (the keepdim shape) and the result's shape.
struct ReducedShapes {
  Shape kept;     // keepdim == true
  Shape dropped;  // keepdim == false
};
inline ReducedShapes reduced_shapes(const Shape& shape, const std::vector<int64_t>& axes,
                                    const char* op) {
  const int64_t rank = static_cast<int64_t>(shape.size());
  std::vector<bool> reduce(shape.size(), axes.empty());
  for (int64_t axis : axes) {
    const int64_t a = normalize_axis(axis, rank, op);
    check(!reduce[a], op, "axis ", axis, " is repeated for a tensor of shape ", to_string(shape));
    reduce[a] = true;
  }
  ReducedShapes out;
  for (int64_t d = 0; d < rank; ++d) {
    out.kept.push_back(reduce[d] ? 1 : shape[d]);
    if (!reduce[d]) out.dropped.push_back(shape[d]);
  }
  return out;
}
}  // namespace detail

// Sum of all elements, a scalar tensor (shape {}).
template <class T>
Tensor<T> sum(const Tensor<T>& x) {
  Tensor<T> out = Tensor<T>::scalar(x.array().sum());
  return record("sum", out, {x}, [shape = x.shape()](const Tensor<T>& g) {
    return std::vector<Tensor<T>>{Tensor<T>::full(shape, g.item())};
  });
}

// Sum over `axes`; the reduced axes are kept with extent 1 when `keepdim`, dropped otherwise.
template <class T>
Tensor<T> sum(const Tensor<T>& x, const std::vector<int64_t>& axes, bool keepdim = false) {
  const detail::ReducedShapes s = detail::reduced_shapes(x.shape(), axes, "sum");
  Tensor<T> out = detail::reduce_values(x, s.kept).with_shape(keepdim ? s.kept : s.dropped);
  return record("sum", out, {x}, [shape = x.shape(), kept = s.kept](const Tensor<T>& g) {
    return std::vector<Tensor<T>>{detail::expand_values(g.with_shape(kept), shape)};
  });
}

// Mean of all elements, a scalar tensor.
template <class T>
Tensor<T> mean(const Tensor<T>& x) {
  check(x.numel() > 0, "mean", "mean of an empty tensor of shape ", to_string(x.shape()));
  const T n = T(x.numel());
  Tensor<T> out = Tensor<T>::scalar(x.array().sum() / n);
  return record("mean", out, {x}, [shape = x.shape(), n](const Tensor<T>& g) {
    return std::vector<Tensor<T>>{Tensor<T>::full(shape, g.item() / n)};
  });
}

// Mean over `axes` (see sum).
template <class T>
Tensor<T> mean(const Tensor<T>& x, const std::vector<int64_t>& axes, bool keepdim = false) {
  const detail::ReducedShapes s = detail::reduced_shapes(x.shape(), axes, "mean");
  int64_t count = 1;  // elements averaged into each output
  for (size_t d = 0; d < s.kept.size(); ++d)
    if (s.kept[d] == 1) count *= x.shape()[d];
  check(count > 0, "mean", "mean over an empty axis of shape ", to_string(x.shape()));
  const T n = T(count);
  Tensor<T> out = detail::reduce_values(x, s.kept);
  out.array() /= n;
  out = out.with_shape(keepdim ? s.kept : s.dropped);
  return record("mean", out, {x}, [shape = x.shape(), kept = s.kept, n](const Tensor<T>& g) {
    Tensor<T> gx = detail::expand_values(g.with_shape(kept), shape);
    gx.array() /= n;
    return std::vector<Tensor<T>>{gx};
  });
}

}  // namespace trit
