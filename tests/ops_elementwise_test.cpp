// Elementwise, reduction and shape ops: gradcheck in double (broadcasting included), forward
// values against PyTorch (tests/reference/make_ops_basic.py), error messages, float builds.
#include <doctest/doctest.h>

#include "error_of.hpp"

#include <string>
#include <vector>

#include <trit/ops/elementwise.hpp>
#include <trit/ops/reduce.hpp>
#include <trit/ops/shape.hpp>

#include "reference.hpp"

using trit::Shape;
using trit::Tensor;
using trit::testing::get;
using trit::testing::max_abs_diff;
using Inputs = std::vector<Tensor<double>>;

using trit::testing::error_of;

namespace {

const auto& ref() {
  static const auto r = trit::testing::load_reference("ops_basic.txt");
  return r;
}
Tensor<double> R(const std::string& key) { return get(ref(), key); }

Tensor<double> variable(const Shape& shape, uint64_t seed, double low = -1, double high = 1) {
  trit::Generator gen(seed);
  return Tensor<double>::uniform(shape, low, high, gen).set_requires_grad();
}

// gradcheck of f on inputs, reported by name.
template <class F>
void expect_gradients(const std::string& what, F f, const Inputs& inputs) {
  auto r = trit::gradcheck([&](const Inputs& in) { return f(in); }, inputs);
  CHECK_MESSAGE(r.ok, what, ": ", r.report);
}

}  // namespace

TEST_CASE("binary ops broadcast and match PyTorch") {
  auto x = R("bx"), y = R("by"), z = R("bz");
  CHECK(max_abs_diff(x + y, R("add_xy")) < 1e-12);
  CHECK(max_abs_diff(trit::sub(x, y), R("sub_xy")) < 1e-12);
  CHECK(max_abs_diff(z * x, R("mul_zx")) < 1e-12);
  CHECK(max_abs_diff(x / y, R("div_xy")) < 1e-12);
  CHECK(max_abs_diff(x * R("bs"), R("mul_xs")) < 1e-12);
  CHECK((x + y).shape() == Shape{2, 3, 4});
  CHECK((R("bs") + R("bs")).shape() == Shape{});
}

TEST_CASE("binary op gradients reduce to each input's shape") {
  // Against PyTorch: gradients of sum(v * f(a, b)).
  auto check_grads = [](const char* key, Tensor<double> a, Tensor<double> b, auto f) {
    a = a.clone().set_requires_grad();
    b = b.clone().set_requires_grad();
    f(a, b).backward(R(std::string(key) + ".v"));
    CHECK(max_abs_diff(a.grad(), R(std::string(key) + ".grad0")) < 1e-12);
    CHECK(max_abs_diff(b.grad(), R(std::string(key) + ".grad1")) < 1e-12);
  };
  check_grads("div_xy", R("bx"), R("by"), [](auto a, auto b) { return a / b; });
  check_grads("mul_xs", R("bx"), R("bs"), [](auto a, auto b) { return a * b; });
  check_grads("mul_zx", R("bz"), R("bx"), [](auto a, auto b) { return a * b; });

  // gradcheck over many broadcasting patterns, for every binary op.
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{2, 3, 4}, {3, 1}}, {{4}, {2, 3, 4}}, {{2, 3, 4}, {}},       {{}, {2, 3}},
      {{2, 3, 4}, {2, 3, 4}}, {{2, 3, 2, 2}, {1, 3, 1, 1}}, {{3, 1, 2}, {1, 4, 1}}, {{}, {}}};
  for (const auto& [sa, sb] : cases) {
    auto a = variable(sa, 1), b = variable(sb, 2, 0.5, 2.0);  // b away from 0 for div
    const std::string what = trit::to_string(sa) + " op " + trit::to_string(sb);
    expect_gradients(what + " add", [](const Inputs& in) { return in[0] + in[1]; }, {a, b});
    expect_gradients(what + " sub", [](const Inputs& in) { return in[0] - in[1]; }, {a, b});
    expect_gradients(what + " mul", [](const Inputs& in) { return in[0] * in[1]; }, {a, b});
    expect_gradients(what + " div", [](const Inputs& in) { return in[0] / in[1]; }, {a, b});
  }
  // Only one side requiring a gradient.
  auto a = variable({2, 3}, 3);
  auto c = Tensor<double>::full({3}, 2.0);
  expect_gradients("a * const", [c](const Inputs& in) { return in[0] * c; }, {a});
  expect_gradients("const / a", [c](const Inputs& in) { return c / (in[0] + 2.0); }, {a});
  expect_gradients("const - a", [c](const Inputs& in) { return c - in[0]; }, {a});
  expect_gradients("a - const", [c](const Inputs& in) { return in[0] - c; }, {a});
  expect_gradients("const + a", [c](const Inputs& in) { return c + in[0]; }, {a});
  CHECK_FALSE(c.grad().defined());
}

TEST_CASE("a large broadcast over channels takes the row path and matches a plain loop") {
  // (N,C,H,W) * (1,C,1,1) and (N,C,H,W) + (W): big enough for the OpenMP path.
  trit::Generator gen(5);
  auto x = Tensor<double>::randn({4, 8, 40, 40}, gen), w = Tensor<double>::randn({1, 8, 1, 1}, gen);
  auto v = Tensor<double>::randn({40}, gen);
  auto y = x * w, s = x + v;
  double err = 0;
  for (int64_t n = 0; n < 4; ++n)
    for (int64_t c = 0; c < 8; ++c)
      for (int64_t h = 0; h < 40; ++h)
        for (int64_t q = 0; q < 40; ++q) {
          err = std::max(err, std::abs(y(n, c, h, q) - x(n, c, h, q) * w(0, c, 0, 0)));
          err = std::max(err, std::abs(s(n, c, h, q) - (x(n, c, h, q) + v(q))));
        }
  CHECK(err == 0);
  // The gradient of w sums over N, H, W.
  w.set_requires_grad();
  trit::sum(x * w).backward();
  auto expected = trit::sum(x, {0, 2, 3}, true);
  CHECK(max_abs_diff(w.grad(), expected.to<double>()) < 1e-9);
}

TEST_CASE("unary ops match PyTorch and pass gradcheck") {
  auto u = R("ux"), p = R("up");
  CHECK(max_abs_diff(trit::exp(u), R("exp")) < 1e-12);
  CHECK(max_abs_diff(trit::log(p), R("log")) < 1e-12);
  CHECK(max_abs_diff(trit::sqrt(p), R("sqrt")) < 1e-12);
  CHECK(max_abs_diff(trit::pow(p, 2.5), R("pow_up_2.5")) < 1e-12);
  CHECK(max_abs_diff(trit::pow(u, 3.0), R("pow_ux_3")) < 1e-12);
  CHECK(max_abs_diff(trit::abs(u), R("abs")) < 1e-12);
  CHECK(max_abs_diff(trit::sign(u), R("sign")) < 1e-12);
  CHECK(max_abs_diff(trit::clamp(u, -0.5, 0.7), R("clamp")) < 1e-12);
  CHECK(max_abs_diff(2.0 / p - 3.0 * u + (1.0 - u) / 4.0, R("scalar_ops")) < 1e-12);
  CHECK(max_abs_diff(-u, R("ux") * -1.0) == 0);

  auto x = variable({3, 4}, 11);
  auto pos = variable({3, 4}, 12, 0.2, 2.0);
  expect_gradients("neg", [](const Inputs& in) { return trit::neg(in[0]); }, {x});
  expect_gradients("unary minus", [](const Inputs& in) { return -in[0]; }, {x});
  expect_gradients("exp", [](const Inputs& in) { return trit::exp(in[0]); }, {x});
  expect_gradients("log", [](const Inputs& in) { return trit::log(in[0]); }, {pos});
  expect_gradients("sqrt", [](const Inputs& in) { return trit::sqrt(in[0]); }, {pos});
  expect_gradients("pow 2.5", [](const Inputs& in) { return trit::pow(in[0], 2.5); }, {pos});
  expect_gradients("pow 3", [](const Inputs& in) { return trit::pow(in[0], 3.0); }, {x});
  expect_gradients("pow -1", [](const Inputs& in) { return trit::pow(in[0], -1.0); }, {pos});
  expect_gradients("abs", [](const Inputs& in) { return trit::abs(in[0]); }, {x});
  expect_gradients("clamp", [](const Inputs& in) { return trit::clamp(in[0], -0.5, 0.3); }, {x});
  expect_gradients("scalar ops", [](const Inputs& in) {
    return 2.0 / in[1] - 3.0 * in[0] + (1.0 - in[0]) / 4.0 + (in[0] - 1.0) * 0.5 + (1.5 + in[1]);
  }, {x, pos});
  expect_gradients("scalar shape {}", [](const Inputs& in) { return trit::exp(in[0]) * in[0]; },
                   {variable({}, 13)});
}

TEST_CASE("gradients at kinks follow PyTorch") {
  auto x = Tensor<double>::from_vector({5}, {-1, 0, 0.5, 1, 2}).set_requires_grad();
  trit::sum(trit::abs(x) + trit::sign(x) + trit::clamp(x, 0.0, 1.0)).backward();
  // abs' = sign (0 at 0); sign' = 0; clamp' = 1 on [0, 1] inclusive.
  CHECK(x.grad().to_vector() == std::vector<double>{-1, 1, 2, 2, 1});
  CHECK_THROWS_AS(trit::clamp(x, 1.0, 0.0), trit::Error);
}

TEST_CASE("reductions match PyTorch and pass gradcheck") {
  auto r = R("rx");
  CHECK(max_abs_diff(trit::sum(r), R("sum_all")) < 1e-12);
  CHECK(max_abs_diff(trit::sum(r, {1}), R("sum_1")) < 1e-12);
  CHECK(max_abs_diff(trit::sum(r, {0, 2}, true), R("sum_02_keep")) < 1e-12);
  CHECK(max_abs_diff(trit::sum(r, {-1}), R("sum_m1")) < 1e-12);
  CHECK(max_abs_diff(trit::mean(r), R("mean_all")) < 1e-12);
  CHECK(max_abs_diff(trit::mean(r, {0, -1}), R("mean_0m1")) < 1e-12);
  CHECK(max_abs_diff(trit::mean(r, {1}, true), R("mean_1_keep")) < 1e-12);
  CHECK(trit::sum(r).shape() == Shape{});
  CHECK(trit::sum(r, {}).shape() == Shape{});  // an empty axis list reduces everything
  CHECK(trit::sum(r, {0, 1, 2}, true).shape() == Shape{1, 1, 1});

  auto x = variable({2, 3, 4}, 21);
  expect_gradients("sum", [](const Inputs& in) { return trit::sum(in[0]); }, {x});
  expect_gradients("mean", [](const Inputs& in) { return trit::mean(in[0]); }, {x});
  expect_gradients("sum 1", [](const Inputs& in) { return trit::sum(in[0], {1}); }, {x});
  expect_gradients("sum 0,2 keep", [](const Inputs& in) { return trit::sum(in[0], {0, 2}, true); }, {x});
  expect_gradients("mean -1", [](const Inputs& in) { return trit::mean(in[0], {-1}); }, {x});
  expect_gradients("mean 0,1 keep", [](const Inputs& in) { return trit::mean(in[0], {0, 1}, true); }, {x});
  expect_gradients("sum of scalar", [](const Inputs& in) { return trit::sum(in[0] * in[0]); },
                   {variable({}, 22)});
  expect_gradients("broadcast_to / sum_to_shape", [](const Inputs& in) {
    return trit::sum_to_shape(trit::broadcast_to(in[0], {2, 3, 4}) * in[1], {3, 1});
  }, {variable({3, 1}, 23), variable({2, 3, 4}, 24)});

  CHECK(error_of([&] { trit::sum(r, {3}); }).find("sum: axis 3 is out of range") == 0);
  CHECK(error_of([&] { trit::mean(r, {1, -2}); }).find("repeated") != std::string::npos);
  CHECK(error_of([&] { trit::sum_to_shape(r, {2, 1}); }).find("[2, 1] cannot be broadcast to [2, 3, 4]") !=
        std::string::npos);
}

TEST_CASE("shape ops match PyTorch and pass gradcheck") {
  auto r = R("rx");
  auto v = trit::reshape(r, {4, -1});
  CHECK(v.shape() == Shape{4, 6});
  CHECK(v.data() == r.data());  // a view: same storage
  CHECK(trit::flatten(r).shape() == Shape{2, 12});
  CHECK(trit::flatten(r, 0).shape() == Shape{24});
  CHECK(trit::flatten(r, 0, 1).shape() == Shape{6, 4});
  CHECK(trit::flatten(Tensor<double>::scalar(3)).shape() == Shape{1});
  CHECK(max_abs_diff(trit::transpose(r, 0, 2), R("transpose_02")) == 0);
  CHECK(max_abs_diff(trit::transpose(r, -1, 0), R("transpose_02")) == 0);
  CHECK(max_abs_diff(trit::permute(r, {1, 2, 0}), R("permute_120")) == 0);
  CHECK(max_abs_diff(trit::concat<double>({r, R("rx2")}, 1), R("concat_1")) == 0);
  CHECK(max_abs_diff(trit::concat<double>({r, R("rx3"), r}, -1), R("concat_m1")) == 0);

  auto x = variable({2, 3, 4}, 31);
  auto y = variable({2, 2, 4}, 32);
  expect_gradients("reshape", [](const Inputs& in) { return trit::reshape(in[0], {-1, 2}) * 2.0; }, {x});
  auto weights = variable({2, 12}, 33).detach();
  expect_gradients("flatten", [weights](const Inputs& in) { return trit::flatten(in[0]) * weights; }, {x});
  expect_gradients("transpose", [](const Inputs& in) { return trit::transpose(in[0], 1, 2); }, {x});
  expect_gradients("permute", [](const Inputs& in) { return trit::permute(in[0], {2, 0, 1}); }, {x});
  expect_gradients("concat", [](const Inputs& in) {
    return trit::concat<double>({in[0], in[1], in[0]}, 1);
  }, {x, y});
  // One input without a gradient.
  auto fixed = Tensor<double>::ones({2, 3, 4});
  expect_gradients("concat const", [fixed](const Inputs& in) { return trit::concat<double>({fixed, in[0]}, 0); }, {x});

  CHECK(error_of([&] { trit::reshape(r, {5, -1}); }).find("reshape: cannot reshape [2, 3, 4]") == 0);
  CHECK(error_of([&] { trit::reshape(r, {-1, -1}); }).find("more than one -1") != std::string::npos);
  CHECK(error_of([&] { trit::reshape(r, {4, 5}); }) != "");
  CHECK(error_of([&] { trit::permute(r, {0, 0, 1}); }).find("permute: dim 0 appears twice") == 0);
  CHECK(error_of([&] { trit::permute(r, {0, 1}); }) != "");
  CHECK(error_of([&] { trit::transpose(r, 0, 3); }).find("transpose") == 0);
  CHECK(error_of([&] { trit::flatten(r, 2, 1); }).find("flatten") == 0);
  CHECK(error_of([&] { trit::concat<double>({r, R("rx2")}, 0); })
            .find("concat: shape [2, 2, 4] does not match [2, 3, 4]") == 0);
  CHECK(error_of([&] { trit::concat<double>({}, 0); }) != "");
}

TEST_CASE("binary ops name both shapes when they cannot broadcast") {
  auto a = Tensor<double>::ones({2, 3}), b = Tensor<double>::ones({4});
  CHECK(error_of([&] { a + b; }) == "add: shapes [2, 3] and [4] cannot be broadcast together");
  CHECK(error_of([&] { a * b; }).find("mul: ") == 0);
  CHECK(error_of([&] { a / b; }).find("div: ") == 0);
  CHECK(error_of([&] { a - b; }).find("sub: ") == 0);
}

TEST_CASE("float builds and agrees with double") {
  auto x = R("bx").to<float>(), y = R("by").to<float>();
  x.set_requires_grad();
  auto out = trit::mean(trit::exp(trit::clamp(x / y - 1.0, -2.0, 2.0)) + x * 2, {1});
  auto ref_out = trit::mean(trit::exp(trit::clamp(R("bx") / R("by") - 1.0, -2.0, 2.0)) + R("bx") * 2, {1});
  CHECK(max_abs_diff(out, ref_out) < 1e-5);
  trit::sum(trit::permute(trit::reshape(out, {-1}), {0})).backward();
  CHECK(x.grad().shape() == Shape{2, 3, 4});
  CHECK(trit::concat<float>({x, x}, 0).shape() == Shape{4, 3, 4});
}
