#pragma once
// Shape: the extent of each dimension of a tensor, outermost first (row-major, NCHW).
// Helpers for counting elements, printing and NumPy-style broadcasting.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "trit/core/error.hpp"

namespace trit {

using Shape = std::vector<int64_t>;

// Number of elements of a tensor with this shape (1 for a scalar, shape {}).
inline int64_t numel_of(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// "[2, 3, 4]"
inline std::string to_string(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

// Row-major strides, in elements: the last dimension has stride 1.
inline Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t stride = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= shape[i];
  }
  return strides;
}

// Maps a possibly negative axis (-1 = last) into [0, rank); throws naming `op` when out of range.
inline int64_t normalize_axis(int64_t axis, int64_t rank, std::string_view op) {
  int64_t a = axis < 0 ? axis + rank : axis;
  check(a >= 0 && a < rank, op, "axis ", axis, " is out of range for a tensor of rank ", rank);
  return a;
}

// NumPy broadcasting: shapes are aligned at their last dimension; each pair of extents must be
// equal or one of them 1. Throws naming `op` and both shapes otherwise.
inline Shape broadcast_shapes(const Shape& a, const Shape& b, std::string_view op) {
  size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    check(da == db || da == 1 || db == 1, op, "shapes ", to_string(a), " and ", to_string(b),
          " cannot be broadcast together");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

}  // namespace trit
