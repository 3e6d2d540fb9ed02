#pragma once
// Elementwise arithmetic and math, differentiable.
//
// Binary ops (add, sub, mul, div and the operators + - * /) follow NumPy broadcasting:
// [2,3,4] + [3,1] -> [2,3,4]; each input's gradient is summed back to its own shape with
// sum_to_shape. A scalar operand (T) acts as a constant. Unary ops keep the shape.
// Gradients at kinks follow PyTorch: abs'(0) = 0, sign' = 0, clamp' = 1 on [low, high].
//
// Scalar parameters are declared std::type_identity_t<T> so that `x * 2.0` works for a
// Tensor<float> (T is deduced from the tensor only).
#include <cmath>
#include <type_traits>
#include <vector>

#include "trit/autograd/function.hpp"
#include "trit/core/tensor.hpp"
#include "trit/ops/broadcast.hpp"

namespace trit {

template <class T>
using Scalar = std::type_identity_t<T>;

// ---- tensor (op) tensor, broadcasting -----------------------------------------------------

// a + b, broadcast.
template <class T>
Tensor<T> add(const Tensor<T>& a, const Tensor<T>& b) {
  Tensor<T> out = detail::zip(a, b, [](T x, T y) { return x + y; }, "add");
  return record("add", out, {a, b},
                [sa = a.shape(), sb = b.shape(), need_a = a.requires_grad(),
                 need_b = b.requires_grad()](const Tensor<T>& g) {
                  Tensor<T> ga, gb;
                  if (need_a) ga = sum_to_shape(g, sa);
                  if (need_b) gb = sum_to_shape(g, sb);
                  return std::vector<Tensor<T>>{ga, gb};
                });
}

// a - b, broadcast.
template <class T>
Tensor<T> sub(const Tensor<T>& a, const Tensor<T>& b) {
  Tensor<T> out = detail::zip(a, b, [](T x, T y) { return x - y; }, "sub");
  return record("sub", out, {a, b},
                [sa = a.shape(), sb = b.shape(), need_a = a.requires_grad(),
                 need_b = b.requires_grad()](const Tensor<T>& g) {
                  Tensor<T> ga, gb;
                  if (need_a) ga = sum_to_shape(g, sa);
                  if (need_b) gb = detail::map(sum_to_shape(g, sb), [](const auto& in, auto& o) { o = -in; });
                  return std::vector<Tensor<T>>{ga, gb};
                });
}

// a * b, broadcast.
template <class T>
Tensor<T> mul(const Tensor<T>& a, const Tensor<T>& b) {
  Tensor<T> out = detail::zip(a, b, [](T x, T y) { return x * y; }, "mul");
  return record("mul", out, {a, b},
                [a_ = a.detach(), b_ = b.detach(), need_a = a.requires_grad(),
                 need_b = b.requires_grad()](const Tensor<T>& g) {
                  auto times = [](T x, T y) { return x * y; };
                  Tensor<T> ga, gb;
                  if (need_a) ga = sum_to_shape(detail::zip(g, b_, times), a_.shape());
                  if (need_b) gb = sum_to_shape(detail::zip(g, a_, times), b_.shape());
                  return std::vector<Tensor<T>>{ga, gb};
                });
}

// a / b, broadcast.
template <class T>
Tensor<T> div(const Tensor<T>& a, const Tensor<T>& b) {
  Tensor<T> out = detail::zip(a, b, [](T x, T y) { return x / y; }, "div");
  return record("div", out, {a, b},
                [out_ = out.detach(), b_ = b.detach(), sa = a.shape(), need_a = a.requires_grad(),
                 need_b = b.requires_grad()](const Tensor<T>& g) {
                  Tensor<T> ga, gb;
                  // d(a/b)/da = 1/b;  d(a/b)/db = -(a/b)/b
                  if (need_a) ga = sum_to_shape(detail::zip(g, b_, [](T x, T y) { return x / y; }), sa);
                  if (need_b) {
                    Tensor<T> g_out = detail::zip(g, out_, [](T x, T y) { return x * y; });
                    gb = sum_to_shape(detail::zip(g_out, b_, [](T x, T y) { return -x / y; }),
                                      b_.shape());
                  }
                  return std::vector<Tensor<T>>{ga, gb};
                });
}

// ---- unary ---------------------------------------------------------------------------------

// -x.
template <class T>
Tensor<T> neg(const Tensor<T>& x) {
  Tensor<T> out = detail::map(x, [](const auto& in, auto& o) { o = -in; });
  return record("neg", out, {x}, [](const Tensor<T>& g) {
    return std::vector<Tensor<T>>{detail::map(g, [](const auto& in, auto& o) { o = -in; })};
  });
}

// e^x.
template <class T>
Tensor<T> exp(const Tensor<T>& x) {
  Tensor<T> out = detail::map(x, [](const auto& in, auto& o) { o = in.exp(); });
  return record("exp", out, {x}, [out_ = out.detach()](const Tensor<T>& g) {
    return std::vector<Tensor<T>>{detail::zip(g, out_, [](T a, T y) { return a * y; })};
  });
}

// Natural logarithm (NaN below 0, -inf at 0).
template <class T>
Tensor<T> log(const Tensor<T>& x) {
  Tensor<T> out = detail::map(x, [](const auto& in, auto& o) { o = in.log(); });
  return record("log", out, {x}, [x_ = x.detach()](const Tensor<T>& g) {
    return std::vector<Tensor<T>>{detail::zip(g, x_, [](T a, T v) { return a / v; })};
  });
}

// Square root.
template <class T>
Tensor<T> sqrt(const Tensor<T>& x) {
  Tensor<T> out = detail::map(x, [](const auto& in, auto& o) { o = in.sqrt(); });
  return record("sqrt", out, {x}, [out_ = out.detach()](const Tensor<T>& g) {
    return std::vector<Tensor<T>>{detail::zip(g, out_, [](T a, T y) { return a / (2 * y); })};
  });
}

// x^exponent, elementwise.
template <class T>
Tensor<T> pow(const Tensor<T>& x, Scalar<T> exponent) {
  Tensor<T> out = detail::map(x, [exponent](const auto& in, auto& o) { o = in.pow(exponent); });
  return record("pow", out, {x}, [x_ = x.detach(), exponent](const Tensor<T>& g) {
    return std::vector<Tensor<T>>{detail::zip(g, x_, [exponent](T a, T v) {
      return exponent == T(0) ? T(0) : a * exponent * std::pow(v, exponent - 1);
    })};
  });
}

// |x|; the gradient is sign(x), 0 at x == 0.
template <class T>
Tensor<T> abs(const Tensor<T>& x) {
  Tensor<T> out = detail::map(x, [](const auto& in, auto& o) { o = in.abs(); });
  return record("abs", out, {x}, [x_ = x.detach()](const Tensor<T>& g) {
    return std::vector<Tensor<T>>{
        detail::zip(g, x_, [](T a, T v) { return v > 0 ? a : (v < 0 ? -a : T(0)); })};
  });
}

// -1, 0 or 1 by the sign of x; the gradient is 0 everywhere.
template <class T>
Tensor<T> sign(const Tensor<T>& x) {
  Tensor<T> out = detail::map(x, [](const auto& in, auto& o) { o = in.sign(); });
  return record("sign", out, {x}, [](const Tensor<T>& g) {
    return std::vector<Tensor<T>>{Tensor<T>::zeros(g.shape())};
  });
}

// min(max(x, low), high); the gradient passes where low <= x <= high and is 0 elsewhere.
template <class T>
Tensor<T> clamp(const Tensor<T>& x, Scalar<T> low, Scalar<T> high) {
  check(low <= high, "clamp", "low ", low, " is above high ", high);
  Tensor<T> out = detail::map(x, [low, high](const auto& in, auto& o) { o = in.max(low).min(high); });
  return record("clamp", out, {x}, [x_ = x.detach(), low, high](const Tensor<T>& g) {
    return std::vector<Tensor<T>>{
        detail::zip(g, x_, [low, high](T a, T v) { return v >= low && v <= high ? a : T(0); })};
  });
}

// ---- tensor (op) scalar --------------------------------------------------------------------
// The scalar is a constant: only the tensor gets a gradient.

namespace detail {
// y = f(x) with a constant scalar folded into f, and dL/dx = g * slope(x).
template <class T, class F, class Slope>
Tensor<T> scalar_op(const char* name, const Tensor<T>& x, F&& f, Slope slope) {
  Tensor<T> out = map(x, f);
  return record(name, out, {x}, [x_ = x.detach(), slope](const Tensor<T>& g) {
    return std::vector<Tensor<T>>{zip(g, x_, [&](T a, T v) { return a * slope(v); })};
  });
}
}  // namespace detail

template <class T>
Tensor<T> operator+(const Tensor<T>& a, const Tensor<T>& b) { return add(a, b); }
template <class T>
Tensor<T> operator-(const Tensor<T>& a, const Tensor<T>& b) { return sub(a, b); }
template <class T>
Tensor<T> operator*(const Tensor<T>& a, const Tensor<T>& b) { return mul(a, b); }
template <class T>
Tensor<T> operator/(const Tensor<T>& a, const Tensor<T>& b) { return div(a, b); }
template <class T>
Tensor<T> operator-(const Tensor<T>& x) { return neg(x); }

template <class T>
Tensor<T> operator+(const Tensor<T>& x, Scalar<T> s) {
  return detail::scalar_op("add_scalar", x, [s](const auto& in, auto& o) { o = in + s; },
                           [](T) { return T(1); });
}
template <class T>
Tensor<T> operator+(Scalar<T> s, const Tensor<T>& x) { return x + s; }

template <class T>
Tensor<T> operator-(const Tensor<T>& x, Scalar<T> s) { return x + (-s); }
template <class T>
Tensor<T> operator-(Scalar<T> s, const Tensor<T>& x) {
  return detail::scalar_op("rsub_scalar", x, [s](const auto& in, auto& o) { o = s - in; },
                           [](T) { return T(-1); });
}

template <class T>
Tensor<T> operator*(const Tensor<T>& x, Scalar<T> s) {
  return detail::scalar_op("mul_scalar", x, [s](const auto& in, auto& o) { o = in * s; },
                           [s](T) { return s; });
}
template <class T>
Tensor<T> operator*(Scalar<T> s, const Tensor<T>& x) { return x * s; }

template <class T>
Tensor<T> operator/(const Tensor<T>& x, Scalar<T> s) {
  return detail::scalar_op("div_scalar", x, [s](const auto& in, auto& o) { o = in / s; },
                           [s](T) { return T(1) / s; });
}
// s / x; the gradient is -s / x^2.
template <class T>
Tensor<T> operator/(Scalar<T> s, const Tensor<T>& x) {
  return detail::scalar_op("rdiv_scalar", x, [s](const auto& in, auto& o) { o = s / in; },
                           [s](T v) { return -s / (v * v); });
}

}  // namespace trit
