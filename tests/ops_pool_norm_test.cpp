// Pooling (ops/pool.hpp, kernels/pool.hpp) and batch_norm (ops/batch_norm.hpp): forward values,
// gradients and BN running statistics against PyTorch (tests/reference/make_ops_image.py),
// gradcheck in double, and errors on bad shapes.
#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

#include <trit/core.hpp>
#include <trit/ops/batch_norm.hpp>
#include <trit/ops/pool.hpp>

#include "reference.hpp"

using trit::Tensor;
using trit::testing::get;
using trit::testing::max_abs_diff;

namespace {

const auto& reference() {
  static const auto ref = trit::testing::load_reference("ops_image.txt");
  return ref;
}

bool has(const std::string& key) { return reference().count(key) > 0; }

// The reference pooling cases, as the same calls on the trit side.
template <class T>
const std::vector<std::pair<std::string, std::function<Tensor<T>(const Tensor<T>&)>>>& pools() {
  static const std::vector<std::pair<std::string, std::function<Tensor<T>(const Tensor<T>&)>>> p{
      {"max_k2", [](const Tensor<T>& x) { return trit::max_pool2d(x, 2); }},
      {"max_k3s2p1", [](const Tensor<T>& x) { return trit::max_pool2d(x, 3, 2, 1); }},
      {"avg_k2", [](const Tensor<T>& x) { return trit::avg_pool2d(x, 2); }},
      {"avg_k3s2p1", [](const Tensor<T>& x) { return trit::avg_pool2d(x, 3, 2, 1); }},
      {"adaptive_1x1", [](const Tensor<T>& x) { return trit::adaptive_avg_pool2d(x, 1, 1); }},
      {"adaptive_3x2", [](const Tensor<T>& x) { return trit::adaptive_avg_pool2d(x, 3, 2); }},
      {"adaptive_up", [](const Tensor<T>& x) { return trit::adaptive_avg_pool2d(x, 5, 4); }},
  };
  return p;
}

template <class T>
void check_pools(double tol) {
  for (const auto& [name, f] : pools<T>()) {
    const std::string k = "pool." + name + ".";
    auto x = get(reference(), k + "x").to<T>().set_requires_grad();
    auto y = f(x);
    CHECK_MESSAGE(max_abs_diff(y, get(reference(), k + "y")) < tol, name, " forward");
    y.backward(get(reference(), k + "gy").to<T>());
    CHECK_MESSAGE(max_abs_diff(x.grad(), get(reference(), k + "gx")) < tol, name, " grad x");
  }
}

struct BnCase {
  std::string name;
  bool training;
};
const std::vector<BnCase> kBn = {
    {"train4d", true}, {"eval4d", false}, {"train2d", true}, {"train_noaffine", true}};

template <class T>
void check_batch_norm(const BnCase& c, double tol) {
  const std::string k = "bn." + c.name + ".";
  auto x = get(reference(), k + "x").to<T>().set_requires_grad();
  Tensor<T> w, b;
  if (has(k + "w")) {
    w = get(reference(), k + "w").to<T>().set_requires_grad();
    b = get(reference(), k + "b").to<T>().set_requires_grad();
  }
  auto rm = get(reference(), k + "running_mean").to<T>();
  auto rv = get(reference(), k + "running_var").to<T>();
  auto y = trit::batch_norm(x, w, b, rm, rv, c.training);
  CHECK_MESSAGE(max_abs_diff(y, get(reference(), k + "y")) < tol, c.name, " forward");
  // running stats updated in place (train) or left alone (eval)
  CHECK_MESSAGE(max_abs_diff(rm, get(reference(), k + "running_mean_after")) < tol, c.name);
  CHECK_MESSAGE(max_abs_diff(rv, get(reference(), k + "running_var_after")) < tol, c.name);
  y.backward(get(reference(), k + "gy").to<T>());
  CHECK_MESSAGE(max_abs_diff(x.grad(), get(reference(), k + "gx")) < tol, c.name, " grad x");
  if (w.defined()) {
    CHECK_MESSAGE(max_abs_diff(w.grad(), get(reference(), k + "gw")) < tol, c.name, " grad w");
    CHECK_MESSAGE(max_abs_diff(b.grad(), get(reference(), k + "gb")) < tol, c.name, " grad b");
  }
}

// batch_norm with its fused epilogue, act(bn(x) + r), against PyTorch's op-by-op values.
struct BnFusedCase {
  std::string name;
  bool training;
  trit::BatchNormActivation activation;
};
const std::vector<BnFusedCase> kBnFused = {
    {"train_relu_res", true, trit::BatchNormActivation::relu},
    {"train_relu6", true, trit::BatchNormActivation::relu6},
    {"eval_relu6_res", false, trit::BatchNormActivation::relu6},
    {"train_none_res", true, trit::BatchNormActivation::none}};

template <class T>
void check_batch_norm_fused(const BnFusedCase& c, double tol) {
  const std::string k = "bn." + c.name + ".";
  auto x = get(reference(), k + "x").to<T>().set_requires_grad();
  auto w = get(reference(), k + "w").to<T>().set_requires_grad();
  auto b = get(reference(), k + "b").to<T>().set_requires_grad();
  Tensor<T> r;
  if (has(k + "r")) r = get(reference(), k + "r").to<T>().set_requires_grad();
  auto rm = get(reference(), k + "running_mean").to<T>();
  auto rv = get(reference(), k + "running_var").to<T>();
  auto y = trit::batch_norm(x, w, b, rm, rv, c.training, 0.1, 1e-5, c.activation, r);
  CHECK_MESSAGE(max_abs_diff(y, get(reference(), k + "y")) < tol, c.name, " forward");
  CHECK_MESSAGE(max_abs_diff(rm, get(reference(), k + "running_mean_after")) < tol, c.name);
  CHECK_MESSAGE(max_abs_diff(rv, get(reference(), k + "running_var_after")) < tol, c.name);
  y.backward(get(reference(), k + "gy").to<T>());
  CHECK_MESSAGE(max_abs_diff(x.grad(), get(reference(), k + "gx")) < tol, c.name, " grad x");
  CHECK_MESSAGE(max_abs_diff(w.grad(), get(reference(), k + "gw")) < tol, c.name, " grad w");
  CHECK_MESSAGE(max_abs_diff(b.grad(), get(reference(), k + "gb")) < tol, c.name, " grad b");
  if (r.defined())
    CHECK_MESSAGE(max_abs_diff(r.grad(), get(reference(), k + "gr")) < tol, c.name, " grad r");
}

template <class F>
void check_error(F&& f, const std::string& op, const std::string& needle) {
  try {
    f();
    FAIL("no error for ", needle);
  } catch (const trit::Error& e) {
    CHECK(e.where() == op);
    CHECK_MESSAGE(std::string(e.what()).find(needle) != std::string::npos, e.what());
  }
}

}  // namespace

TEST_CASE("pooling matches PyTorch in double and float") {
  check_pools<double>(1e-12);
  check_pools<float>(1e-5);
}

TEST_CASE("pooling passes gradcheck") {
  for (const auto& [name, f] : pools<double>()) {
    auto x = get(reference(), "pool." + name + ".x").clone().set_requires_grad();
    auto r = trit::gradcheck([&f = f](const auto& v) { return f(v[0]); }, {x});
    CHECK_MESSAGE(r.ok, name, "\n", r.report);
  }
}

TEST_CASE("global average pooling on a large plane") {
  auto x = Tensor<float>::randn({3, 5, 17, 13});
  auto y = trit::adaptive_avg_pool2d(x, 1, 1);
  REQUIRE(y.shape() == trit::Shape{3, 5, 1, 1});
  for (int64_t p = 0; p < 15; ++p) {
    double sum = 0;
    for (int64_t i = 0; i < 17 * 13; ++i) sum += x[p * 17 * 13 + i];
    CHECK(y[p] == doctest::Approx(sum / (17 * 13)).epsilon(1e-5));
  }
}

TEST_CASE("pooling rejects bad shapes") {
  auto x = Tensor<float>::zeros({2, 3, 4, 4});
  check_error([&] { trit::max_pool2d(x.with_shape({6, 4, 4}), 2); }, "max_pool2d", "[6, 4, 4]");
  check_error([&] { trit::max_pool2d(x, 5); }, "max_pool2d", "larger than");
  check_error([&] { trit::avg_pool2d(x, 2, 1, 2); }, "avg_pool2d", "at most half");
  check_error([&] { trit::avg_pool2d(x, 0); }, "avg_pool2d", "kernel >= 1");
  check_error([&] { trit::adaptive_avg_pool2d(x, 0, 1); }, "adaptive_avg_pool2d", "positive");
  check_error([&] { trit::adaptive_avg_pool2d(x.with_shape({2, 48}), 1, 1); },
              "adaptive_avg_pool2d", "[2, 48]");
}

TEST_CASE("batch_norm matches PyTorch: train, eval, 2-d input, no affine") {
  for (const auto& c : kBn) {
    check_batch_norm<double>(c, 1e-10);
    check_batch_norm<float>(c, 1e-4);
  }
}

TEST_CASE("batch_norm passes gradcheck in training and evaluation") {
  for (const auto& c : kBn) {
    const std::string k = "bn." + c.name + ".";
    std::vector<Tensor<double>> in{get(reference(), k + "x").clone().set_requires_grad()};
    if (has(k + "w")) {
      in.push_back(get(reference(), k + "w").clone().set_requires_grad());
      in.push_back(get(reference(), k + "b").clone().set_requires_grad());
    }
    auto rm = get(reference(), k + "running_mean").clone();
    auto rv = get(reference(), k + "running_var").clone();
    auto r = trit::gradcheck(
        [&](const std::vector<Tensor<double>>& v) {
          return trit::batch_norm(v[0], v.size() > 1 ? v[1] : Tensor<double>(),
                                  v.size() > 2 ? v[2] : Tensor<double>(), rm, rv, c.training);
        },
        in);
    CHECK_MESSAGE(r.ok, c.name, "\n", r.report);
  }
}

TEST_CASE("batch_norm's fused ReLU / ReLU6 / residual epilogue matches PyTorch's op by op") {
  for (const auto& c : kBnFused) {
    check_batch_norm_fused<double>(c, 1e-10);
    check_batch_norm_fused<float>(c, 1e-4);
  }
  // the ReLU6 case really reaches both kinks (else its cap would go untested)
  auto y = get(reference(), "bn.train_relu6.y");
  int capped = 0, zeroed = 0;
  for (int64_t i = 0; i < y.numel(); ++i) capped += y[i] == 6.0, zeroed += y[i] == 0.0;
  CHECK(capped > 0);
  CHECK(zeroed > 0);
}

TEST_CASE("batch_norm's fused epilogue passes gradcheck") {
  for (const auto& c : kBnFused) {
    const std::string k = "bn." + c.name + ".";
    std::vector<Tensor<double>> in{get(reference(), k + "x").clone().set_requires_grad(),
                                   get(reference(), k + "w").clone().set_requires_grad(),
                                   get(reference(), k + "b").clone().set_requires_grad()};
    if (has(k + "r")) in.push_back(get(reference(), k + "r").clone().set_requires_grad());
    auto rm = get(reference(), k + "running_mean").clone();
    auto rv = get(reference(), k + "running_var").clone();
    auto r = trit::gradcheck(
        [&](const std::vector<Tensor<double>>& v) {
          return trit::batch_norm(v[0], v[1], v[2], rm, rv, c.training, 0.1, 1e-5, c.activation,
                                  v.size() > 3 ? v[3] : Tensor<double>());
        },
        in);
    CHECK_MESSAGE(r.ok, c.name, "\n", r.report);
  }
}

TEST_CASE("batch_norm without running stats in training normalises each channel") {
  auto x = Tensor<double>::randn({4, 2, 3, 3});
  auto y = trit::batch_norm(x, Tensor<double>(), Tensor<double>(), Tensor<double>(),
                            Tensor<double>(), true, 0.1, 0.0 + 1e-12);
  for (int64_t c = 0; c < 2; ++c) {
    double sum = 0, sq = 0;
    for (int64_t n = 0; n < 4; ++n)
      for (int64_t i = 0; i < 9; ++i) {
        double v = y(n, c, i / 3, i % 3);
        sum += v;
        sq += v * v;
      }
    CHECK(sum / 36 == doctest::Approx(0).epsilon(1e-9).scale(1));
    CHECK(sq / 36 == doctest::Approx(1).epsilon(1e-9));
  }
}

TEST_CASE("batch_norm rejects bad shapes and missing statistics") {
  auto x = Tensor<float>::zeros({2, 3, 4, 4});
  auto c3 = Tensor<float>::ones({3});
  check_error([&] { trit::batch_norm(x, Tensor<float>::ones({4}), c3, c3, c3, true); },
              "batch_norm", "[2, 3, 4, 4]");
  check_error([&] { trit::batch_norm(x.with_shape({2, 3, 16, 1, 1}), c3, c3, c3, c3, true); },
              "batch_norm", "(N, C, H, W)");
  check_error([&] { trit::batch_norm(x, c3, c3, Tensor<float>(), Tensor<float>(), false); },
              "batch_norm", "running_mean");
  check_error([&] { trit::batch_norm(Tensor<float>::zeros({1, 3}), c3, c3, c3, c3, true); },
              "batch_norm", "more than 1 value");
  check_error(
      [&] {
        trit::batch_norm(x, c3, c3, c3, c3, true, 0.1, 1e-5, trit::BatchNormActivation::relu,
                         Tensor<float>::zeros({2, 3, 4, 5}));
      },
      "batch_norm", "residual must have the input's shape [2, 3, 4, 4], got [2, 3, 4, 5]");
}

TEST_CASE("plane moments equal two-pass loops in double, whatever the plane's neighbours") {
  trit::Generator gen(23);
  for (int64_t hw : {1, 3, 16, 17, 49, 64, 65, 256, 1024})
    for (int64_t count : {1, 5, 16, 17, 40}) {
      CAPTURE(hw);
      CAPTURE(count);
      // values off zero (mean 3), so the deviations from each plane's mean are what count
      auto x = Tensor<float>::randn({count, hw}, gen);
      for (int64_t i = 0; i < x.numel(); ++i) x.data()[i] = 3 + 2 * x.data()[i];
      std::vector<double> sum(count), m2(count);
      trit::kernels::moments_of_planes(x.data(), count, hw, sum.data(), m2.data());
      for (int64_t i = 0; i < count; ++i) {
        const float* p = x.data() + i * hw;
        double s = 0, q = 0;
        for (int64_t j = 0; j < hw; ++j) s += p[j];
        for (int64_t j = 0; j < hw; ++j) q += (p[j] - s / hw) * (p[j] - s / hw);
        CHECK(sum[i] == doctest::Approx(s).epsilon(1e-6).scale(1));
        CHECK(m2[i] == doctest::Approx(q).epsilon(1e-5).scale(1e-3));
        // the same bits when the plane is measured alone
        double alone_sum = 0, alone_m2 = 0;
        trit::kernels::moments_of_planes(p, 1, hw, &alone_sum, &alone_m2);
        CHECK(alone_sum == sum[i]);
        CHECK(alone_m2 == m2[i]);
      }
    }
}

TEST_CASE("batch_norm with its input's plane moments gives the same bits, and refuses others") {
  trit::Generator gen(29);
  for (const trit::Shape& shape : {trit::Shape{3, 5, 4, 4}, trit::Shape{2, 7, 9, 11}}) {
    CAPTURE(trit::to_string(shape));
    auto x = Tensor<float>::randn(shape, gen).set_requires_grad();
    const int64_t C = shape[1];
    auto w = Tensor<float>::randn({C}, gen), b = Tensor<float>::randn({C}, gen);
    auto rm1 = Tensor<float>::zeros({C}), rv1 = Tensor<float>::ones({C});
    auto rm2 = rm1.clone(), rv2 = rv1.clone();
    trit::kernels::PlaneMoments m;
    m.reset(shape[0] * C, x.data());
    m.measure(x.data(), 0, shape[0] * C, shape[2] * shape[3]);
    auto y1 = trit::batch_norm(x, w, b, rm1, rv1, true, 0.1, 1e-5,
                               trit::BatchNormActivation::relu6);
    auto y2 = trit::batch_norm(x, w, b, rm2, rv2, true, 0.1, 1e-5,
                               trit::BatchNormActivation::relu6, Tensor<float>(), &m);
    CHECK(max_abs_diff(y1.to<double>(), y2.to<double>()) == 0);
    CHECK(max_abs_diff(rm1.to<double>(), rm2.to<double>()) == 0);
    CHECK(max_abs_diff(rv1.to<double>(), rv2.to<double>()) == 0);
    // moments of another tensor (or of another size) are an error naming the op
    auto other = x.clone();
    check_error([&] {
      trit::batch_norm(other, w, b, rm2, rv2, true, 0.1, 1e-5, trit::BatchNormActivation::none,
                       Tensor<float>(), &m);
    }, "batch_norm", "plane moments");
    // in evaluation the running statistics are used and the moments ignored
    auto e1 = trit::batch_norm(x, w, b, rm1, rv1, false);
    auto e2 = trit::batch_norm(x, w, b, rm1, rv1, false, 0.1, 1e-5,
                               trit::BatchNormActivation::none, Tensor<float>(), &m);
    CHECK(max_abs_diff(e1.to<double>(), e2.to<double>()) == 0);
  }
}
