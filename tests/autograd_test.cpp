// The autograd engine: graph recording, accumulation, topological order, freeing, NoGradGuard,
// gradcheck. Uses two tiny ops defined here so the engine is tested on its own.
#include <doctest/doctest.h>

#include "process_memory.hpp"

#include <fstream>
#include <string>

#include <trit/core.hpp>

using trit::Tensor;

namespace {

// y = a * b elementwise (same shapes).
template <class T>
Tensor<T> times(const Tensor<T>& a, const Tensor<T>& b) {
  Tensor<T> out = Tensor<T>::empty(a.shape());
  out.array() = a.array() * b.array();
  return trit::record("times", out, {a, b}, [a_ = a.detach(), b_ = b.detach()](const Tensor<T>& g) {
    Tensor<T> ga = Tensor<T>::empty(g.shape()), gb = Tensor<T>::empty(g.shape());
    ga.array() = g.array() * b_.array();
    gb.array() = g.array() * a_.array();
    return std::vector<Tensor<T>>{ga, gb};
  });
}

// sum of all elements, a scalar.
template <class T>
Tensor<T> total(const Tensor<T>& x) {
  Tensor<T> out = Tensor<T>::scalar(x.array().sum());
  return trit::record("total", out, {x}, [shape = x.shape()](const Tensor<T>& g) {
    return std::vector<Tensor<T>>{Tensor<T>::full(shape, g.item())};
  });
}

// y = x, whose backward hands on the incoming gradient itself, for both of two inputs when
// given two (an op that shares one gradient tensor between its inputs, as add does).
template <class T>
Tensor<T> pass(const Tensor<T>& x) {
  return trit::record("pass", x.clone(), {x}, [](const Tensor<T>& g) {
    return std::vector<Tensor<T>>{g};
  });
}
template <class T>
Tensor<T> pass_both(const Tensor<T>& a, const Tensor<T>& b) {
  return trit::record("pass_both", a.clone(), {a, b}, [](const Tensor<T>& g) {
    return std::vector<Tensor<T>>{g, g};
  });
}

// A deliberately wrong op: claims d(x^2)/dx = x.
template <class T>
Tensor<T> bad_square(const Tensor<T>& x) {
  Tensor<T> out = Tensor<T>::empty(x.shape());
  out.array() = x.array() * x.array();
  return trit::record("bad_square", out, {x}, [x_ = x.detach()](const Tensor<T>& g) {
    Tensor<T> gx = Tensor<T>::empty(g.shape());
    gx.array() = g.array() * x_.array();
    return std::vector<Tensor<T>>{gx};
  });
}


}  // namespace

TEST_CASE("gradients flow and accumulate over shared subexpressions") {
  auto x = Tensor<double>::from_vector({3}, {1, 2, 3}).set_requires_grad();
  auto y = Tensor<double>::from_vector({3}, {4, 5, 6});
  // L = sum(x*y) + sum(x*x): dL/dx = y + 2x, and x is used three times.
  auto loss_tensor = times(times(x, y), Tensor<double>::ones({3}));
  auto l = total(loss_tensor);
  auto l2 = total(times(x, x));
  auto both = times(l, Tensor<double>::scalar(1.0));
  both.backward();
  CHECK(x.grad().to_vector() == std::vector<double>{4, 5, 6});
  l2.backward();
  CHECK(x.grad().to_vector() == std::vector<double>{6, 9, 12});  // accumulated
  CHECK_FALSE(y.grad().defined());
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("a leaf's gradient is its own tensor, never one that something else holds") {
  // The engine keeps an op's gradient as the leaf's grad only when nothing else holds it;
  // a gradient that is the seed itself, or shared between two inputs, is copied, so adding
  // into the leaf's grad later changes neither the seed nor the other leaf.
  auto x = Tensor<double>::from_vector({2}, {1, 2}).set_requires_grad();
  auto seed = Tensor<double>::from_vector({2}, {3, 4});
  pass(x).backward(seed);
  pass(x).backward(seed);  // accumulates in place into x's grad
  CHECK(x.grad().to_vector() == std::vector<double>{6, 8});
  CHECK(seed.to_vector() == std::vector<double>{3, 4});
  auto a = Tensor<double>::ones({2}).set_requires_grad();
  auto b = Tensor<double>::ones({2}).set_requires_grad();
  pass_both(a, b).backward(seed);
  pass(a).backward(seed);
  CHECK(a.grad().to_vector() == std::vector<double>{6, 8});
  CHECK(b.grad().to_vector() == std::vector<double>{3, 4});
  // a fresh gradient (times' result) is kept and accumulates as before
  auto w = Tensor<double>::from_vector({2}, {5, 6}).set_requires_grad();
  total(times(w, seed)).backward();
  total(times(w, seed)).backward();
  CHECK(w.grad().to_vector() == std::vector<double>{6, 8});
}

TEST_CASE("a diamond graph sums both paths") {
  auto x = Tensor<double>::from_vector({2}, {3, -1}).set_requires_grad();
  auto a = times(x, Tensor<double>::full({2}, 2.0));
  auto b = times(a, a);   // 4x^2 -> 8x
  auto c = times(a, x);   // 2x^2 -> 4x
  total(times(b, c)).backward();  // 8x^4 -> 32x^3
  CHECK(x.grad().to_vector() == std::vector<double>{864, -32});
}

TEST_CASE("the graph is freed after backward") {
  auto x = Tensor<double>::ones({2}).set_requires_grad();
  auto l = total(times(x, x));
  l.backward();
  CHECK_THROWS_AS(l.backward(), trit::Error);
}

TEST_CASE("NoGradGuard records nothing") {
  auto x = Tensor<float>::ones({2}).set_requires_grad();
  {
    trit::NoGradGuard guard;
    auto y = times(x, x);
    CHECK_FALSE(y.requires_grad());
    CHECK(y.is_leaf());
  }
  CHECK(times(x, x).requires_grad());
  CHECK_FALSE(times(x.detach(), x.detach()).requires_grad());
}

TEST_CASE("backward needs a scalar or a seed of the right shape") {
  auto x = Tensor<double>::ones({2}).set_requires_grad();
  CHECK_THROWS_AS(times(x, x).backward(), trit::Error);
  CHECK_THROWS_AS(times(x, x).backward(Tensor<double>::ones({3})), trit::Error);
  CHECK_THROWS_AS(Tensor<double>::ones({1}).backward(), trit::Error);
}

TEST_CASE("gradcheck passes a correct op and catches a wrong one") {
  trit::Generator gen(7);
  auto a = Tensor<double>::randn({3, 2}, gen).set_requires_grad();
  auto b = Tensor<double>::randn({3, 2}, gen).set_requires_grad();
  auto good = trit::gradcheck([](const auto& in) { return times(in[0], in[1]); }, {a, b});
  CHECK_MESSAGE(good.ok, good.report);
  CHECK(good.max_abs_error < 1e-8);
  auto bad = trit::gradcheck([](const auto& in) { return bad_square(in[0]); }, {a});
  CHECK_FALSE(bad.ok);
  CHECK(bad.report.find("input 0") != std::string::npos);
}

TEST_CASE("memory stays flat over many forward/backward steps") {
  auto w = Tensor<float>::randn({256, 256}).set_requires_grad();
  auto step = [&] {
    auto h = w;
    for (int k = 0; k < 8; ++k) h = times(h, w);
    total(h).backward();
    w.zero_grad();
  };
  for (int i = 0; i < 20; ++i) step();  // warm up the allocator
  long before = trit::testing::resident_kib();
  for (int i = 0; i < 200; ++i) step();
  long after = trit::testing::resident_kib();
  // One step's graph is ~8 tensors of 256 KiB; a leak of one graph per step would add ~400 MiB.
  if (trit::testing::kResidentMemoryIsMeaningful) {
    CHECK(after - before < 8 * 1024);
  } else {
    MESSAGE("resident-memory check skipped under AddressSanitizer (LeakSanitizer covers leaks)");
  }
}
