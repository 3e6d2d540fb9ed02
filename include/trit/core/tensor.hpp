#pragma once
// Tensor<T>: an N-dimensional, row-major, contiguous array of T (float or double), the value
// every trit op reads and writes. Images are NCHW.
//
// Ownership: a Tensor is a handle. Copying a Tensor copies the handle, not the elements (as in
// PyTorch); both handles see the same storage. `clone()` copies the elements. A reshaped view
// (`with_shape`) shares the storage too.
//
// Autograd: a tensor may require a gradient. Ops that read such tensors record a graph node
// (grad_fn) on their result; `loss.backward()` walks that graph once and accumulates dL/dx
// into `x.grad()` for every leaf x that requires a gradient. See trit/autograd/.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "trit/core/allocator.hpp"
#include "trit/core/error.hpp"
#include "trit/core/rng.hpp"
#include "trit/core/shape.hpp"

namespace trit {

template <class T>
struct Node;  // trit/autograd/node.hpp: the op that produced a tensor

// What a Tensor handle points at. Users go through Tensor; ops and the autograd engine read it.
template <class T>
struct TensorImpl {
  std::shared_ptr<T> storage;  // 64-byte aligned; shared by views and copies of the handle
  int64_t offset = 0;          // first element of this tensor inside storage
  Shape shape;
  bool requires_grad = false;
  std::shared_ptr<TensorImpl<T>> grad;  // accumulated dL/d(this), leaves only
  std::shared_ptr<Node<T>> grad_fn;     // op that produced this tensor; null for leaves
};

namespace detail {
// Uninitialised storage for n elements, aligned for SIMD loads, from the caching allocator
// (core/allocator.hpp): large blocks freed by earlier tensors of the same size are reused.
template <class T>
std::shared_ptr<T> allocate_storage(int64_t n) {
  const size_t bytes = static_cast<size_t>(std::max<int64_t>(n, 1)) * sizeof(T);
  void* p = CachingAllocator::instance().allocate(bytes);
  return std::shared_ptr<T>(static_cast<T*>(p), [bytes](T* q) {
    CachingAllocator::instance().release(q, bytes);
  });
}
}  // namespace detail

template <class T = float>
class Tensor {
  static_assert(std::is_floating_point_v<T>, "Tensor<T> holds float or double");

 public:
  using value_type = T;
  using Array = Eigen::Array<T, Eigen::Dynamic, 1>;
  using RowMajorMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

  // An undefined tensor (no storage): what grad() returns before any backward().
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl<T>> impl) : impl_(std::move(impl)) {}

  // ---- construction -------------------------------------------------------------------
  // Elements left uninitialised: for outputs an op is about to overwrite.
  static Tensor empty(const Shape& shape) {
    for (int64_t d : shape) check(d >= 0, "Tensor", "negative extent in shape ", to_string(shape));
    auto impl = std::make_shared<TensorImpl<T>>();
    impl->storage = detail::allocate_storage<T>(numel_of(shape));
    impl->shape = shape;
    return Tensor(std::move(impl));
  }
  static Tensor full(const Shape& shape, T value) {
    Tensor t = empty(shape);
    std::fill_n(t.data(), t.numel(), value);
    return t;
  }
  static Tensor zeros(const Shape& shape) { return full(shape, T(0)); }
  static Tensor ones(const Shape& shape) { return full(shape, T(1)); }
  static Tensor scalar(T value) { return full({}, value); }
  // Copies `values` (row-major) into a tensor of `shape`; their counts must agree.
  static Tensor from_vector(const Shape& shape, const std::vector<T>& values) {
    check(static_cast<int64_t>(values.size()) == numel_of(shape), "Tensor::from_vector", "got ",
          values.size(), " values for shape ", to_string(shape));
    Tensor t = empty(shape);
    std::copy(values.begin(), values.end(), t.data());
    return t;
  }
  static Tensor from_vector(const Shape& shape, std::initializer_list<T> values) {
    return from_vector(shape, std::vector<T>(values));
  }
  // 0, 1, ..., n-1 as a 1-d tensor.
  static Tensor arange(int64_t n) {
    Tensor t = empty({n});
    for (int64_t i = 0; i < n; ++i) t.data()[i] = T(i);
    return t;
  }
  // Uniform in [low, high) / normal(mean, stddev), drawn in element order from `gen`.
  static Tensor uniform(const Shape& shape, T low, T high, Generator& gen = global_generator()) {
    Tensor t = empty(shape);
    for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = T(gen.uniform(low, high));
    return t;
  }
  static Tensor randn(const Shape& shape, Generator& gen = global_generator()) {
    Tensor t = empty(shape);
    for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = T(gen.normal());
    return t;
  }

  // ---- shape ----------------------------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  int64_t dim() const { return static_cast<int64_t>(shape().size()); }
  // Extent of dimension d; negative d counts from the end.
  int64_t size(int64_t d) const { return shape()[normalize_axis(d, dim(), "Tensor::size")]; }
  int64_t numel() const { return numel_of(shape()); }
  Shape strides() const { return contiguous_strides(shape()); }

  // ---- elements -------------------------------------------------------------------------
  T* data() { return impl().storage.get() + impl().offset; }
  const T* data() const { return impl().storage.get() + impl().offset; }
  // Flat (row-major) element access.
  T& operator[](int64_t i) { return data()[checked_flat(i)]; }
  const T& operator[](int64_t i) const { return data()[checked_flat(i)]; }
  // Element at a multi-index, e.g. x(n, c, h, w). Bounds are checked unless NDEBUG.
  template <class... Index>
  T& operator()(Index... index) { return data()[offset_of({static_cast<int64_t>(index)...})]; }
  template <class... Index>
  const T& operator()(Index... index) const {
    return data()[offset_of({static_cast<int64_t>(index)...})];
  }
  // The single value of a one-element tensor.
  T item() const {
    check(numel() == 1, "Tensor::item", "tensor of shape ", to_string(shape()),
          " has ", numel(), " elements, not 1");
    return data()[0];
  }
  std::vector<T> to_vector() const { return std::vector<T>(data(), data() + numel()); }

  // Eigen views of the elements, for vectorised math: all elements as a column array, or the
  // tensor read as a rows x cols row-major matrix (rows * cols must equal numel()).
  Eigen::Map<Array> array() { return Eigen::Map<Array>(data(), numel()); }
  Eigen::Map<const Array> array() const { return Eigen::Map<const Array>(data(), numel()); }
  Eigen::Map<RowMajorMatrix> matrix(int64_t rows, int64_t cols) {
    check(rows * cols == numel(), "Tensor::matrix", rows, "x", cols, " does not cover ",
          to_string(shape()));
    return Eigen::Map<RowMajorMatrix>(data(), rows, cols);
  }
  Eigen::Map<const RowMajorMatrix> matrix(int64_t rows, int64_t cols) const {
    check(rows * cols == numel(), "Tensor::matrix", rows, "x", cols, " does not cover ",
          to_string(shape()));
    return Eigen::Map<const RowMajorMatrix>(data(), rows, cols);
  }

  // ---- copies and views -----------------------------------------------------------------
  // A new tensor with its own copy of the elements, detached from the graph.
  Tensor clone() const {
    Tensor t = empty(shape());
    std::copy_n(data(), numel(), t.data());
    return t;
  }
  // Same storage read with another shape of equal numel, detached from the graph (no
  // gradient flows through it). The differentiable reshape is trit::reshape in ops/.
  Tensor with_shape(const Shape& new_shape) const {
    check(numel_of(new_shape) == numel(), "Tensor::with_shape", "cannot view ",
          to_string(shape()), " as ", to_string(new_shape));
    auto v = std::make_shared<TensorImpl<T>>();
    v->storage = impl().storage;
    v->offset = impl().offset;
    v->shape = new_shape;
    return Tensor(std::move(v));
  }
  // Rows [begin, end) of the first dimension, sharing storage, detached (e.g. a sub-batch).
  Tensor slice_rows(int64_t begin, int64_t end) const {
    check(dim() >= 1 && 0 <= begin && begin <= end && end <= size(0), "Tensor::slice_rows",
          "rows [", begin, ", ", end, ") of a tensor of shape ", to_string(shape()));
    Tensor v = with_shape(shape());
    v.impl().offset += begin * (size(0) ? numel() / size(0) : 0);
    v.impl().shape[0] = end - begin;
    return v;
  }
  // Same storage and shape, no graph: stops gradients.
  Tensor detach() const { return with_shape(shape()); }
  // Copies the elements of `src` (same numel) into this tensor's storage.
  void copy_from(const Tensor& src) {
    check(src.numel() == numel(), "Tensor::copy_from", "source ", to_string(src.shape()),
          " vs destination ", to_string(shape()));
    std::copy_n(src.data(), numel(), data());
  }
  void fill(T value) { std::fill_n(data(), numel(), value); }
  // The same values in another precision (a new tensor, detached).
  template <class U>
  Tensor<U> to() const {
    Tensor<U> t = Tensor<U>::empty(shape());
    for (int64_t i = 0; i < numel(); ++i) t.data()[i] = static_cast<U>(data()[i]);
    return t;
  }

  // ---- autograd -------------------------------------------------------------------------
  bool requires_grad() const { return defined() && impl().requires_grad; }
  // Marks a leaf as a variable to differentiate with respect to. Returns *this for chaining.
  Tensor& set_requires_grad(bool on = true) {
    check(!impl().grad_fn || on, "Tensor::set_requires_grad",
          "cannot turn off gradients of a non-leaf tensor; use detach()");
    impl().requires_grad = on;
    return *this;
  }
  // Accumulated dL/d(this); undefined until a backward() reached this leaf.
  Tensor grad() const { return impl().grad ? Tensor(impl().grad) : Tensor(); }
  void set_grad(const Tensor& g) { impl().grad = g.impl_; }
  void zero_grad() { impl().grad.reset(); }
  bool is_leaf() const { return !impl().grad_fn; }
  const std::shared_ptr<Node<T>>& grad_fn() const { return impl().grad_fn; }

  // Back-propagates from this tensor: dL/dx accumulates into grad() of every leaf x that
  // requires a gradient. A one-element tensor seeds with 1; otherwise pass `grad_output` of
  // the same shape. The graph is freed afterwards. Defined in trit/autograd/engine.hpp.
  void backward(const Tensor& grad_output = Tensor()) const;

  // ---- internals for ops and the engine -------------------------------------------------
  TensorImpl<T>& impl() {
    check(impl_ != nullptr, "Tensor", "use of an undefined tensor");
    return *impl_;
  }
  const TensorImpl<T>& impl() const {
    check(impl_ != nullptr, "Tensor", "use of an undefined tensor");
    return *impl_;
  }
  const std::shared_ptr<TensorImpl<T>>& impl_ptr() const { return impl_; }
  bool same_as(const Tensor& other) const { return impl_ == other.impl_; }

 private:
  int64_t checked_flat(int64_t i) const {
#ifndef NDEBUG
    check(i >= 0 && i < numel(), "Tensor[]", "index ", i, " out of range for ", numel(),
          " elements");
#endif
    return i;
  }
  int64_t offset_of(std::initializer_list<int64_t> index) const {
    const Shape& s = shape();
#ifndef NDEBUG
    check(static_cast<int64_t>(index.size()) == dim(), "Tensor()", index.size(),
          " indices for a tensor of rank ", dim());
#endif
    int64_t flat = 0, d = 0;
    for (int64_t i : index) {
#ifndef NDEBUG
      check(i >= 0 && i < s[d], "Tensor()", "index ", i, " out of range for dimension ", d,
            " of shape ", to_string(s));
#endif
      flat = flat * s[d++] + i;
    }
    return flat;
  }

  std::shared_ptr<TensorImpl<T>> impl_;
};

}  // namespace trit

#include "trit/autograd/engine.hpp"
