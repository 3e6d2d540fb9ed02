#pragma once
// Shape ops, differentiable: reshape, flatten, transpose, permute, concat.
//
// reshape and flatten share x's storage (a view, like with_shape, but recorded in the graph);
// transpose and permute copy, because trit tensors are always contiguous; concat copies.
#include <cstdint>
#include <numeric>
#include <vector>

#include "trit/autograd/function.hpp"
#include "trit/core/tensor.hpp"
#include "trit/ops/broadcast.hpp"

namespace trit {

// x read with `shape`, which may hold one -1 (inferred from the element count). Shares x's
// storage.
template <class T>
Tensor<T> reshape(const Tensor<T>& x, Shape shape) {
  int64_t known = 1, infer = -1;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == -1) {
      check(infer < 0, "reshape", "more than one -1 in ", to_string(shape));
      infer = static_cast<int64_t>(d);
    } else {
      check(shape[d] >= 0, "reshape", "negative extent in ", to_string(shape));
      known *= shape[d];
    }
  }
  if (infer >= 0) {
    check(known > 0 && x.numel() % known == 0, "reshape", "cannot reshape ",
          to_string(x.shape()), " to ", to_string(shape));
    shape[infer] = x.numel() / known;
  }
  check(numel_of(shape) == x.numel(), "reshape", "cannot reshape ", to_string(x.shape()), " (",
        x.numel(), " elements) to ", to_string(shape));
  return record("reshape", x.with_shape(shape), {x}, [from = x.shape()](const Tensor<T>& g) {
    return std::vector<Tensor<T>>{g.with_shape(from)};
  });
}

// Dims start_dim..end_dim (inclusive, negative from the end) merged into one:
// flatten([N,C,H,W]) -> [N, C*H*W]. A scalar becomes shape {1}.
template <class T>
Tensor<T> flatten(const Tensor<T>& x, int64_t start_dim = 1, int64_t end_dim = -1) {
  if (x.dim() == 0) return reshape(x, {1});
  const int64_t start = normalize_axis(start_dim, x.dim(), "flatten");
  const int64_t end = normalize_axis(end_dim, x.dim(), "flatten");
  check(start <= end, "flatten", "start_dim ", start_dim, " comes after end_dim ", end_dim,
        " for shape ", to_string(x.shape()));
  Shape shape(x.shape().begin(), x.shape().begin() + start);
  int64_t merged = 1;
  for (int64_t d = start; d <= end; ++d) merged *= x.shape()[d];
  shape.push_back(merged);
  shape.insert(shape.end(), x.shape().begin() + end + 1, x.shape().end());
  return reshape(x, shape);
}

namespace detail {
// y[i_0, ..., i_{r-1}] = x[i at positions dims^-1]: y's dim d is x's dim dims[d] (a copy).
template <class T>
Tensor<T> permute_values(const Tensor<T>& x, const std::vector<int64_t>& dims) {
  Shape shape(dims.size()), x_strides = x.strides(), strides(dims.size());
  for (size_t d = 0; d < dims.size(); ++d) {
    shape[d] = x.shape()[dims[d]];
    strides[d] = x_strides[dims[d]];
  }
  Tensor<T> y = Tensor<T>::empty(shape);
  const StridedLoop loop(shape, {contiguous_strides(shape), strides, Shape(shape.size(), 0)});
  const T* px = x.data();
  T* py = y.data();
  with_static_strides(loop.inner_stride[1], 0, [&](auto sx, auto) {
    loop.for_each_row(true, [&](const std::array<int64_t, 3>& o) {
      for (int64_t j = 0; j < loop.inner; ++j) py[o[0] + j] = px[o[1] + j * sx];
    });
  });
  return y;
}
}  // namespace detail

// x with its dims reordered: result dim d is x's dim dims[d] (negative dims allowed), as in
// torch.permute. Copies.
template <class T>
Tensor<T> permute(const Tensor<T>& x, std::vector<int64_t> dims) {
  check(static_cast<int64_t>(dims.size()) == x.dim(), "permute", dims.size(),
        " dims given for a tensor of shape ", to_string(x.shape()));
  std::vector<int64_t> inverse(dims.size(), -1);
  for (size_t d = 0; d < dims.size(); ++d) {
    dims[d] = normalize_axis(dims[d], x.dim(), "permute");
    check(inverse[dims[d]] < 0, "permute", "dim ", dims[d], " appears twice");
    inverse[dims[d]] = static_cast<int64_t>(d);
  }
  return record("permute", detail::permute_values(x, dims), {x},
                [inverse](const Tensor<T>& g) {
                  return std::vector<Tensor<T>>{detail::permute_values(g, inverse)};
                });
}

// x with dims d0 and d1 swapped (negative allowed). Copies.
template <class T>
Tensor<T> transpose(const Tensor<T>& x, int64_t d0, int64_t d1) {
  std::vector<int64_t> dims(x.dim());
  std::iota(dims.begin(), dims.end(), int64_t{0});
  std::swap(dims[normalize_axis(d0, x.dim(), "transpose")],
            dims[normalize_axis(d1, x.dim(), "transpose")]);
  return permute(x, dims);
}

// The tensors joined along `axis` (negative allowed); all other extents must agree.
template <class T>
Tensor<T> concat(const std::vector<Tensor<T>>& xs, int64_t axis) {
  check(!xs.empty(), "concat", "no tensors to concatenate");
  const Shape& first = xs[0].shape();
  const int64_t a = normalize_axis(axis, static_cast<int64_t>(first.size()), "concat");
  Shape shape = first;
  shape[a] = 0;
  for (const auto& x : xs) {
    bool ok = x.dim() == static_cast<int64_t>(first.size());
    for (int64_t d = 0; ok && d < x.dim(); ++d) ok = d == a || x.shape()[d] == first[d];
    check(ok, "concat", "shape ", to_string(x.shape()), " does not match ", to_string(first),
          " outside axis ", axis);
    shape[a] += x.shape()[a];
  }
  // Each input is `outer` blocks of extent(axis) * inner contiguous elements; the output
  // interleaves them block by block.
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < a; ++d) outer *= shape[d];
  for (size_t d = a + 1; d < shape.size(); ++d) inner *= shape[d];
  const int64_t out_block = shape[a] * inner;
  Tensor<T> out = Tensor<T>::empty(shape);
  std::vector<int64_t> offsets;  // start of each input inside an output block
  int64_t offset = 0;
  for (const auto& x : xs) {
    const int64_t block = x.shape()[a] * inner;
    for (int64_t o = 0; o < outer; ++o)
      std::copy_n(x.data() + o * block, block, out.data() + o * out_block + offset);
    offsets.push_back(offset);
    offset += block;
  }
  std::vector<bool> need(xs.size());
  for (size_t i = 0; i < xs.size(); ++i) need[i] = xs[i].requires_grad();
  std::vector<Shape> shapes;
  for (const auto& x : xs) shapes.push_back(x.shape());
  return record("concat", out, xs,
                [shapes, offsets, need, outer, inner, out_block, a](const Tensor<T>& g) {
                  std::vector<Tensor<T>> grads(shapes.size());
                  for (size_t i = 0; i < shapes.size(); ++i) {
                    if (!need[i]) continue;
                    grads[i] = Tensor<T>::empty(shapes[i]);
                    const int64_t block = shapes[i][a] * inner;
                    for (int64_t o = 0; o < outer; ++o)
                      std::copy_n(g.data() + o * out_block + offsets[i], block,
                                  grads[i].data() + o * block);
                  }
                  return grads;
                });
}

}  // namespace trit
