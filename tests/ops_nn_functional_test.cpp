// Linear algebra, activations and losses: gradcheck in double, forward values and gradients
// against PyTorch (tests/reference/make_ops_basic.py), error messages, float builds.
#include <doctest/doctest.h>

#include "error_of.hpp"

#include <cmath>
#include <string>
#include <vector>

#include <trit/ops/activation.hpp>
#include <trit/ops/linalg.hpp>
#include <trit/ops/loss.hpp>
#include <trit/ops/reduce.hpp>

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
Tensor<double> leaf(const std::string& key) { return R(key).clone().set_requires_grad(); }

Tensor<double> variable(const Shape& shape, uint64_t seed, double low = -1, double high = 1) {
  trit::Generator gen(seed);
  return Tensor<double>::uniform(shape, low, high, gen).set_requires_grad();
}

template <class F>
void expect_gradients(const std::string& what, F f, const Inputs& inputs) {
  auto r = trit::gradcheck([&](const Inputs& in) { return f(in); }, inputs);
  CHECK_MESSAGE(r.ok, what, ": ", r.report);
}

// Runs y = f(inputs) with the reference's seed `key.v` and compares outputs and gradients
// key.grad0, key.grad1, ... with PyTorch's.
template <class F>
void expect_matches_torch(const std::string& key, F f, std::vector<Tensor<double>> inputs,
                          double tol = 1e-12) {
  Tensor<double> y = f(inputs);
  CHECK_MESSAGE(max_abs_diff(y, R(key)) < tol, key);
  y.backward(R(key + ".v"));
  for (size_t i = 0; i < inputs.size(); ++i)
    CHECK_MESSAGE(max_abs_diff(inputs[i].grad(), R(key + ".grad" + std::to_string(i))) < tol,
                  key, " grad ", i);
}

}  // namespace

TEST_CASE("matmul matches PyTorch, passes gradcheck and checks shapes") {
  expect_matches_torch("matmul", [](const Inputs& in) { return trit::matmul(in[0], in[1]); },
                       {leaf("ma"), leaf("mb")});
  expect_matches_torch("bmm", [](const Inputs& in) { return trit::matmul(in[0], in[1]); },
                       {leaf("bma"), leaf("bmb")});
  expect_gradients("matmul", [](const Inputs& in) { return trit::matmul(in[0], in[1]); },
                   {variable({3, 4}, 1), variable({4, 2}, 2)});
  expect_gradients("batched matmul", [](const Inputs& in) { return trit::matmul(in[0], in[1]); },
                   {variable({2, 3, 4}, 3), variable({2, 4, 2}, 4)});
  auto fixed = Tensor<double>::ones({4, 2});
  expect_gradients("matmul, b constant", [fixed](const Inputs& in) { return trit::matmul(in[0], fixed); },
                   {variable({3, 4}, 5)});

  auto a = Tensor<double>::ones({3, 4});
  CHECK(error_of([&] { trit::matmul(a, Tensor<double>::ones({3, 4})); }) ==
        "matmul: expects [M,K] x [K,N] or [B,M,K] x [B,K,N], got [3, 4] x [3, 4]");
  CHECK(error_of([&] { trit::matmul(Tensor<double>::ones({2, 3, 4}), Tensor<double>::ones({3, 4, 5})); })
            .find("matmul") == 0);
  CHECK(error_of([&] { trit::matmul(a, Tensor<double>::ones({4})); }) != "");
}

TEST_CASE("linear matches PyTorch, passes gradcheck and checks shapes") {
  expect_matches_torch("linear", [](const Inputs& in) { return trit::linear(in[0], in[1], in[2]); },
                       {leaf("lin_x"), leaf("lin_w"), leaf("lin_b")});
  expect_gradients("linear", [](const Inputs& in) { return trit::linear(in[0], in[1], in[2]); },
                   {variable({5, 4}, 6), variable({3, 4}, 7), variable({3}, 8)});
  expect_gradients("linear, no bias", [](const Inputs& in) { return trit::linear(in[0], in[1]); },
                   {variable({5, 4}, 6), variable({3, 4}, 7)});
  expect_gradients("linear, 3-d input", [](const Inputs& in) { return trit::linear(in[0], in[1], in[2]); },
                   {variable({2, 5, 4}, 9), variable({3, 4}, 7), variable({3}, 8)});
  auto y = trit::linear(R("lin_x"), R("lin_w"), Tensor<double>());
  auto y_bias = trit::linear(R("lin_x"), R("lin_w"), R("lin_b"));
  CHECK(std::abs(y_bias(1, 2) - y(1, 2) - R("lin_b")(2)) < 1e-12);

  auto x = Tensor<double>::ones({5, 4}), w = Tensor<double>::ones({3, 4});
  CHECK(error_of([&] { trit::linear(x, Tensor<double>::ones({3, 5})); }) ==
        "linear: input [5, 4] does not end in in_features 5 of weight [3, 5]");
  CHECK(error_of([&] { trit::linear(x, w, Tensor<double>::ones({4})); }).find("linear: bias [4]") == 0);
  CHECK(error_of([&] { trit::linear(x, Tensor<double>::ones({12})); }).find("linear: weight") == 0);
}

TEST_CASE("pointwise activations match PyTorch and pass gradcheck") {
  auto ax = R("ax");
  CHECK(max_abs_diff(trit::relu(ax), R("relu")) == 0);
  CHECK(max_abs_diff(trit::relu6(ax), R("relu6")) == 0);
  CHECK(max_abs_diff(trit::leaky_relu(ax), R("leaky_relu")) < 1e-15);
  CHECK(max_abs_diff(trit::leaky_relu(ax, 0.2), R("leaky_relu_0.2")) < 1e-15);
  CHECK(max_abs_diff(trit::sigmoid(ax), R("sigmoid")) < 1e-15);
  CHECK(max_abs_diff(trit::tanh(ax), R("tanh")) < 1e-15);

  // Points away from the kinks (|x| > 0.05 and |x - 6| > 0.05) for finite differences.
  auto x = variable({4, 5}, 11, -8, 8);
  for (int64_t i = 0; i < x.numel(); ++i)
    if (std::abs(x[i]) < 0.05 || std::abs(x[i] - 6) < 0.05) x[i] += 0.1;
  expect_gradients("relu", [](const Inputs& in) { return trit::relu(in[0]); }, {x});
  expect_gradients("relu6", [](const Inputs& in) { return trit::relu6(in[0]); }, {x});
  expect_gradients("leaky_relu", [](const Inputs& in) { return trit::leaky_relu(in[0], 0.3); }, {x});
  expect_gradients("sigmoid", [](const Inputs& in) { return trit::sigmoid(in[0]); }, {x});
  expect_gradients("tanh", [](const Inputs& in) { return trit::tanh(in[0]); }, {x});
}

TEST_CASE("activation gradients at the kinks follow PyTorch") {
  auto x = Tensor<double>::from_vector({6}, {-1, 0, 3, 6, 7, 0}).set_requires_grad();
  trit::sum(trit::relu(x)).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{0, 0, 1, 1, 1, 0});
  x.zero_grad();
  trit::sum(trit::relu6(x)).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{0, 0, 1, 0, 0, 0});
  x.zero_grad();
  trit::sum(trit::leaky_relu(x, 0.25)).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{0.25, 0.25, 1, 1, 1, 0.25});
}

TEST_CASE("softmax and log_softmax match PyTorch values and gradients") {
  auto softmax = [](int64_t axis) {
    return [axis](const Inputs& in) { return trit::softmax(in[0], axis); };
  };
  auto log_softmax = [](int64_t axis) {
    return [axis](const Inputs& in) { return trit::log_softmax(in[0], axis); };
  };
  expect_matches_torch("softmax_m1", softmax(-1), {leaf("sx")});
  expect_matches_torch("softmax_0", softmax(0), {leaf("sx")});
  expect_matches_torch("log_softmax_m1", log_softmax(-1), {leaf("sx")});
  expect_matches_torch("softmax3_1", softmax(1), {leaf("sx3")});
  expect_matches_torch("log_softmax3_1", log_softmax(1), {leaf("sx3")});
  // Large logits: no overflow.
  CHECK(max_abs_diff(trit::log_softmax(R("big_logits")), R("log_softmax_big")) < 1e-12);
  auto p = trit::softmax(R("big_logits"));
  CHECK(std::isfinite(p[0]));
  CHECK(p[0] == doctest::Approx(1.0));

  auto x = variable({2, 3, 4}, 12, -3, 3);
  for (int64_t axis : {0, 1, 2, -1}) {
    expect_gradients("softmax axis " + std::to_string(axis), softmax(axis), {x});
    expect_gradients("log_softmax axis " + std::to_string(axis), log_softmax(axis), {x});
  }
  CHECK(error_of([&] { trit::softmax(x, 3); }) == "softmax: axis 3 is out of range for a tensor of rank 3");
  CHECK(error_of([&] { trit::log_softmax(x, -4); }).find("log_softmax: axis -4") == 0);
}

TEST_CASE("dropout scales survivors, is the identity in eval, and checks p") {
  auto x = Tensor<double>::ones({1000}).set_requires_grad();
  trit::Generator gen(42);
  auto y = trit::dropout(x, 0.25, true, gen);
  int64_t kept = 0;
  for (int64_t i = 0; i < y.numel(); ++i) {
    CHECK((y[i] == 0 || std::abs(y[i] - 1 / 0.75) < 1e-12));
    kept += y[i] != 0;
  }
  CHECK(kept > 700);
  CHECK(kept < 800);
  // The gradient uses the same mask.
  trit::sum(y).backward();
  CHECK(max_abs_diff(x.grad(), y.detach()) == 0);
  // Same seed, same mask.
  trit::Generator gen2(42);
  CHECK(max_abs_diff(trit::dropout(x, 0.25, true, gen2), y.detach()) == 0);
  // Identity when not training or p == 0.
  CHECK(trit::dropout(x, 0.5, false).same_as(x));
  CHECK(trit::dropout(x, 0.0, true).same_as(x));
  CHECK(error_of([&] { trit::dropout(x, 1.0, true); }) == "dropout: probability p = 1 is outside [0, 1)");
  CHECK(error_of([&] { trit::dropout(x, -0.1, false); }) != "");
  // gradcheck with a fixed mask: regenerate from the same seed each call.
  expect_gradients("dropout", [](const Inputs& in) {
    trit::Generator g(7);
    return trit::dropout(in[0], 0.5, true, g);
  }, {variable({3, 4}, 13)});
}

TEST_CASE("cross_entropy matches PyTorch with and without label smoothing") {
  auto targets_tensor = R("ce_targets");
  std::vector<int64_t> targets;
  for (int64_t i = 0; i < targets_tensor.numel(); ++i) targets.push_back(int64_t(targets_tensor[i]));
  for (const char* eps : {"0.0", "0.1"}) {
    auto logits = leaf("ce_logits");
    auto loss = trit::cross_entropy(logits, targets, std::stod(eps));
    CHECK(loss.shape() == Shape{});
    CHECK(max_abs_diff(loss, R(std::string("ce_") + eps)) < 1e-12);
    loss.backward(Tensor<double>::scalar(1.5));
    CHECK(max_abs_diff(logits.grad(), R(std::string("ce_") + eps + ".grad")) < 1e-12);
    expect_gradients(std::string("cross_entropy eps ") + eps, [&](const Inputs& in) {
      return trit::cross_entropy(in[0], targets, std::stod(eps));
    }, {variable({6, 5}, 14, -3, 3)});
  }
  auto logits = Tensor<double>::zeros({2, 3});
  CHECK(error_of([&] { trit::cross_entropy(logits, {0, 3}); }) ==
        "cross_entropy: target 3 at 1 is outside [0, 3) for logits of shape [2, 3]");
  CHECK(error_of([&] { trit::cross_entropy(logits, {0, -1}); }) != "");
  CHECK(error_of([&] { trit::cross_entropy(logits, {0}); }) ==
        "cross_entropy: 1 targets for logits of shape [2, 3]");
  CHECK(error_of([&] { trit::cross_entropy(Tensor<double>::zeros({6}), {0}); }).find("cross_entropy: logits must be") == 0);
  CHECK(error_of([&] { trit::cross_entropy(logits, {0, 1}, 1.5); }) != "");
  // Uniform logits: loss = log C.
  CHECK(trit::cross_entropy(logits, {0, 2}).item() == doctest::Approx(std::log(3.0)));
}

TEST_CASE("mse_loss matches PyTorch") {
  auto a = leaf("mse_a"), b = leaf("mse_b");
  auto loss = trit::mse_loss(a, b);
  CHECK(max_abs_diff(loss, R("mse")) < 1e-12);
  loss.backward();
  CHECK(max_abs_diff(a.grad(), R("mse.grad0")) < 1e-12);
  CHECK(max_abs_diff(b.grad(), R("mse.grad1")) < 1e-12);
  expect_gradients("mse_loss", [](const Inputs& in) { return trit::mse_loss(in[0], in[1]); },
                   {variable({3, 4}, 15), variable({3, 4}, 16)});
  CHECK(error_of([&] { trit::mse_loss(a, Tensor<double>::ones({4, 3})); }) ==
        "mse_loss: shapes [3, 4] and [4, 3] differ");
}

TEST_CASE("float builds and agrees with double") {
  auto x = R("lin_x").to<float>(), w = R("lin_w").to<float>(), b = R("lin_b").to<float>();
  w.set_requires_grad();
  auto h = trit::dropout(trit::leaky_relu(trit::relu6(trit::sigmoid(trit::tanh(trit::linear(x, w, b))))), 0.1, false);
  auto logits = trit::matmul(h, Tensor<float>::ones({3, 3}));
  auto loss = trit::cross_entropy(trit::log_softmax(trit::softmax(logits, 0)), {0, 1, 2, 0, 1}, 0.1);
  auto loss_d = trit::cross_entropy(
      trit::log_softmax(trit::softmax(
          trit::matmul(trit::leaky_relu(trit::relu6(trit::sigmoid(trit::tanh(
                           trit::linear(R("lin_x"), R("lin_w"), R("lin_b")))))),
                       Tensor<double>::ones({3, 3})), 0)),
      {0, 1, 2, 0, 1}, 0.1);
  CHECK(std::abs(loss.item() - loss_d.item()) < 1e-5);
  (loss + trit::mse_loss(h, h * 0.5f)).backward();
  CHECK(w.grad().shape() == Shape{3, 4});
}
