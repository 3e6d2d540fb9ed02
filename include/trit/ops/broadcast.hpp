#pragma once
// Elementwise loops and NumPy broadcasting: the machinery every elementwise, reduction and
// shape op shares, so there is one loop nest for "walk a shape with per-operand strides".
//
//   detail::StridedLoop         a loop nest over a shape, reading/writing operands with
//                               arbitrary strides (0 = broadcast), collapsed so the innermost
//                               loop is as long as possible: (N,C,H,W) op (1,C,1,1) becomes
//                               N*C rows of H*W contiguous elements with a per-row scalar.
//   detail::parallel_chunks     runs fn(begin, end) over [0, n) in chunks, OpenMP when n is large
//   detail::map(x, f)           y = f(x) with f on Eigen arrays (vectorised exp, log, ...)
//   detail::zip(a, b, f)        y[i] = f(a[i], b[i]) with a and b broadcast together
//   broadcast_to(x, shape)      differentiable expand of x to `shape` (backward: sum_to_shape)
//   sum_to_shape(x, shape)      differentiable sum of x over the dims that broadcasting
//                               `shape` to x's shape added or stretched (backward: broadcast_to).
//                               The one place gradients of broadcasting ops are reduced.
#include <algorithm>
#include <array>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "trit/autograd/function.hpp"
#include "trit/core/shape.hpp"
#include "trit/core/tensor.hpp"

namespace trit {

namespace detail {

// Elementwise work below this many elements stays on one thread.
inline constexpr int64_t kParallelThreshold = 32768;

// Calls fn(begin, end) on consecutive chunks covering [0, n); chunks run on OpenMP threads
// when n > kParallelThreshold. fn must only touch elements in its own range.
template <class Fn>
void parallel_chunks(int64_t n, Fn&& fn) {
  constexpr int64_t kChunk = 16384;
  if (n <= kParallelThreshold) {
    if (n > 0) fn(int64_t{0}, n);
    return;
  }
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) fn(c * kChunk, std::min(n, (c + 1) * kChunk));
}

// Strides of `shape` (aligned at its last dim) read inside `out_shape`: 0 where `shape` has
// extent 1 or lacks the dimension (broadcast), the contiguous stride otherwise.
inline Shape broadcast_strides(const Shape& shape, const Shape& out_shape) {
  Shape contiguous = contiguous_strides(shape);
  Shape strides(out_shape.size(), 0);
  const size_t lead = out_shape.size() - shape.size();
  for (size_t i = 0; i < shape.size(); ++i)
    strides[lead + i] = shape[i] == 1 ? 0 : contiguous[i];
  return strides;
}

// A loop nest over `shape` touching three operands (by convention 0 = output, 1 = a, 2 = b),
// operand k at element index (i0, i1, ...) sitting at sum_d i_d * strides[k][d].
// Dims of extent 1 are dropped, and neighbouring dims that every operand walks as one
// contiguous run are merged, so typical broadcasts become few long inner loops.
struct StridedLoop {
  static constexpr int kOperands = 3;
  Shape outer;                                // extents of the outer dims (after merging)
  std::array<Shape, kOperands> outer_strides;  // per operand, per outer dim
  int64_t inner = 0;                          // extent of the innermost dim (0: no elements)
  std::array<int64_t, kOperands> inner_stride{};
  int64_t rows = 0;                           // product of `outer`

  StridedLoop(const Shape& shape, const std::array<Shape, kOperands>& strides) {
    if (numel_of(shape) == 0) return;
    // Merged dims, innermost first.
    Shape extent;
    std::array<Shape, kOperands> stride;
    for (size_t d = shape.size(); d-- > 0;) {
      if (shape[d] == 1) continue;
      bool merge = !extent.empty();
      for (int k = 0; k < kOperands && merge; ++k)
        merge = strides[k][d] == stride[k].back() * extent.back();
      if (merge) {
        // Dim d is the outer part of the run: the run's stride stays that of its inner part.
        extent.back() *= shape[d];
      } else {
        extent.push_back(shape[d]);
        for (int k = 0; k < kOperands; ++k) stride[k].push_back(strides[k][d]);
      }
    }
    inner = 1;
    rows = 1;
    if (extent.empty()) return;  // a single element
    inner = extent.front();
    for (int k = 0; k < kOperands; ++k) inner_stride[k] = stride[k].front();
    for (size_t d = extent.size(); d-- > 1;) {
      outer.push_back(extent[d]);
      for (int k = 0; k < kOperands; ++k) outer_strides[k].push_back(stride[k][d]);
      rows *= extent[d];
    }
  }

  // Offsets of the three operands at the start of row r (0 <= r < rows).
  std::array<int64_t, kOperands> row_offsets(int64_t r) const {
    std::array<int64_t, kOperands> offset{};
    for (size_t d = outer.size(); d-- > 0;) {
      const int64_t i = r % outer[d];
      r /= outer[d];
      for (int k = 0; k < kOperands; ++k) offset[k] += i * outer_strides[k][d];
    }
    return offset;
  }

  // Calls fn(offsets) for every row; rows run on OpenMP threads when `parallel` is set and
  // the loop is large (only when rows write disjoint output elements).
  template <class Fn>
  void for_each_row(bool parallel, Fn&& fn) const {
    const bool big = parallel && rows > 1 && rows * inner > kParallelThreshold;
#pragma omp parallel for schedule(static) if (big)
    for (int64_t r = 0; r < rows; ++r) fn(row_offsets(r));
  }
};

// Calls body(sa, sb) with each stride as std::integral_constant when it is 0 or 1 (so the
// compiler sees a contiguous or scalar operand and vectorises), as int64_t otherwise.
template <class Body>
void with_static_strides(int64_t sa, int64_t sb, Body&& body) {
  using Zero = std::integral_constant<int64_t, 0>;
  using One = std::integral_constant<int64_t, 1>;
  if (sa == 1 && sb == 1) body(One{}, One{});
  else if (sa == 1 && sb == 0) body(One{}, Zero{});
  else if (sa == 0 && sb == 1) body(Zero{}, One{});
  else body(sa, sb);
}

// y = f(x) elementwise, f(in, out) assigning Eigen array expressions on matching segments:
//   map(x, [](const auto& in, auto& out) { out = in.exp(); })
template <class T, class F>
Tensor<T> map(const Tensor<T>& x, F&& f) {
  using Array = typename Tensor<T>::Array;
  Tensor<T> y = Tensor<T>::empty(x.shape());
  const T* in = x.data();
  T* out = y.data();
  parallel_chunks(x.numel(), [&](int64_t begin, int64_t end) {
    Eigen::Map<const Array> in_segment(in + begin, end - begin);
    Eigen::Map<Array> out_segment(out + begin, end - begin);
    f(in_segment, out_segment);
  });
  return y;
}

// y[i] = f(a[i], b[i]) with NumPy broadcasting; y has shape broadcast_shapes(a, b). `op` names
// the caller in the error for incompatible shapes.
template <class T, class F>
Tensor<T> zip(const Tensor<T>& a, const Tensor<T>& b, F&& f, const char* op = "broadcast") {
  const Shape shape = a.shape() == b.shape() ? a.shape() : broadcast_shapes(a.shape(), b.shape(), op);
  Tensor<T> y = Tensor<T>::empty(shape);
  const T* pa = a.data();
  const T* pb = b.data();
  T* py = y.data();
  if (a.shape() == b.shape()) {  // the common case: one flat loop
    parallel_chunks(y.numel(), [&](int64_t begin, int64_t end) {
      const T* __restrict ra = pa;  // restrict: y is fresh, so the loop may vectorise at -O2
      const T* __restrict rb = pb;
      T* __restrict ry = py;
      for (int64_t i = begin; i < end; ++i) ry[i] = f(ra[i], rb[i]);
    });
    return y;
  }
  const StridedLoop loop(shape, {contiguous_strides(shape), broadcast_strides(a.shape(), shape),
                                 broadcast_strides(b.shape(), shape)});
  // The output is contiguous, so its inner stride is 1.
  with_static_strides(loop.inner_stride[1], loop.inner_stride[2], [&](auto sa, auto sb) {
    loop.for_each_row(true, [&](const std::array<int64_t, 3>& o) {
      T* __restrict row = py + o[0];
      const T* __restrict ra = pa + o[1];
      const T* __restrict rb = pb + o[2];
      for (int64_t j = 0; j < loop.inner; ++j) row[j] = f(ra[j * sa], rb[j * sb]);
    });
  });
  return y;
}

// Checks that `shape` broadcasts to `target` (broadcasting it changes nothing in `target`).
inline void check_broadcastable(const Shape& shape, const Shape& target, const char* op) {
  bool ok = shape.size() <= target.size();
  for (size_t i = 0; ok && i < shape.size(); ++i) {
    const int64_t d = shape[shape.size() - 1 - i];
    ok = d == 1 || d == target[target.size() - 1 - i];
  }
  check(ok, op, "shape ", to_string(shape), " cannot be broadcast to ", to_string(target));
}

// x broadcast to `target` (plain values, no graph).
template <class T>
Tensor<T> expand_values(const Tensor<T>& x, const Shape& target) {
  if (x.shape() == target) return x.clone();
  Tensor<T> y = Tensor<T>::empty(target);
  const StridedLoop loop(target, {contiguous_strides(target), broadcast_strides(x.shape(), target),
                                  Shape(target.size(), 0)});
  const T* px = x.data();
  T* py = y.data();
  with_static_strides(loop.inner_stride[1], 0, [&](auto sx, auto) {
    loop.for_each_row(true, [&](const std::array<int64_t, 3>& o) {
      for (int64_t j = 0; j < loop.inner; ++j) py[o[0] + j] = px[o[1] + j * sx];
    });
  });
  return y;
}

// x summed down to `target`, which must broadcast to x's shape (plain values, no graph).
template <class T>
Tensor<T> reduce_values(const Tensor<T>& x, const Shape& target) {
  if (x.shape() == target) return x.clone();
  Tensor<T> y = Tensor<T>::zeros(target);
  // Operand 0 is the (smaller) output, read with broadcast strides; operand 1 is x.
  const StridedLoop loop(x.shape(), {broadcast_strides(target, x.shape()),
                                     contiguous_strides(x.shape()), Shape(x.dim(), 0)});
  const T* px = x.data();
  T* py = y.data();
  // Rows may add into the same output elements, so this loop stays on one thread; each row
  // is a vectorised sum (inner dim reduced) or a vectorised add (inner dim kept).
  using Array = typename Tensor<T>::Array;
  loop.for_each_row(false, [&](const std::array<int64_t, 3>& o) {
    Eigen::Map<const Array> row(px + o[1], loop.inner);
    if (loop.inner_stride[0] == 0) {
      py[o[0]] += row.sum();
    } else {
      Eigen::Map<Array>(py + o[0], loop.inner) += row;
    }
  });
  return y;
}

}  // namespace detail

template <class T>
Tensor<T> sum_to_shape(const Tensor<T>& x, const Shape& shape);

// x broadcast (NumPy rules) to `shape`, a new contiguous tensor. Differentiable: the gradient
// is summed back over the broadcast dims.
template <class T>
Tensor<T> broadcast_to(const Tensor<T>& x, const Shape& shape) {
  detail::check_broadcastable(x.shape(), shape, "broadcast_to");
  return record("broadcast_to", detail::expand_values(x, shape), {x},
                [from = x.shape()](const Tensor<T>& g) {
                  return std::vector<Tensor<T>>{sum_to_shape(g, from)};
                });
}

// x summed over the dims that broadcasting `shape` to x.shape() would create or stretch, so
// the result has `shape`: sum_to_shape(g [N,C,H,W], {1,C,1,1}) sums over N, H, W. This is how
// every broadcasting op reduces its gradient to each input's shape. Returns x itself (no
// copy, no node) when the shapes already agree. Differentiable.
template <class T>
Tensor<T> sum_to_shape(const Tensor<T>& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  detail::check_broadcastable(shape, x.shape(), "sum_to_shape");
  return record("sum_to_shape", detail::reduce_values(x, shape), {x},
                [from = x.shape()](const Tensor<T>& g) {
                  return std::vector<Tensor<T>>{broadcast_to(g, from)};
                });
}

}  // namespace trit
