// Optimizers and LR schedulers: trajectories against PyTorch on a fixed linear regression,
// the quantizer-policy call protocol, and option validation.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <trit/core.hpp>
#include <trit/optim.hpp>

#include "reference.hpp"

using trit::Tensor;
using trit::testing::get;
using trit::testing::max_abs_diff;
namespace optim = trit::optim;
namespace quant = trit::quant;

namespace {

const auto& ref() {
  static const auto r = trit::testing::load_reference("optim.txt");
  return r;
}

// Hand-written gradient of loss = mean((X W^T + b - Y)^2) into W.grad() and b.grad().
void regression_gradient(Tensor<double>& W, Tensor<double>& b) {
  Tensor<double> X = get(ref(), "X"), Y = get(ref(), "Y");
  const int64_t n = X.size(0), in = X.size(1), out = Y.size(1);
  Eigen::MatrixXd r = X.matrix(n, in) * W.matrix(out, in).transpose();
  r.rowwise() += b.matrix(1, out).row(0);
  r -= Y.matrix(n, out);
  r *= 2.0 / double(n * out);  // dL/dpred
  Tensor<double> gW = Tensor<double>::empty({out, in}), gb = Tensor<double>::empty({out});
  gW.matrix(out, in) = r.transpose() * X.matrix(n, in);
  gb.matrix(1, out) = r.colwise().sum();
  W.set_grad(gW);
  b.set_grad(gb);
}

// Runs 10 steps of `make`'s optimizer and compares W, b with PyTorch's after each step.
template <class Make>
void check_trajectory(const std::string& config, Make make) {
  CAPTURE(config);
  Tensor<double> W = get(ref(), "W0").clone().set_requires_grad();
  Tensor<double> b = get(ref(), "b0").clone().set_requires_grad();
  auto opt = make(std::vector<std::pair<std::string, Tensor<double>>>{{"W", W}, {"b", b}});
  for (int k = 1; k <= 10; ++k) {
    CAPTURE(k);
    opt.zero_grad();
    regression_gradient(W, b);
    opt.step();
    CHECK(max_abs_diff(W, get(ref(), config + ".W." + std::to_string(k))) < 1e-10);
    CHECK(max_abs_diff(b, get(ref(), config + ".b." + std::to_string(k))) < 1e-10);
  }
  CHECK(opt.progress().step == 10);
}

using Params = std::vector<std::pair<std::string, Tensor<double>>>;
using SGD = optim::SGD<quant::None, double>;
using Adam = optim::Adam<quant::None, double>;
using AdamW = optim::AdamW<quant::None, double>;

}  // namespace

TEST_CASE("SGD matches PyTorch: plain, momentum, dampening, nesterov, weight decay") {
  check_trajectory("sgd_plain", [](Params p) { return SGD(p, {.lr = 0.1}); });
  check_trajectory("sgd_momentum", [](Params p) { return SGD(p, {.lr = 0.1, .momentum = 0.9}); });
  check_trajectory("sgd_dampening", [](Params p) {
    return SGD(p, {.lr = 0.1, .momentum = 0.9, .dampening = 0.3});
  });
  check_trajectory("sgd_nesterov", [](Params p) {
    return SGD(p, {.lr = 0.05, .momentum = 0.9, .nesterov = true});
  });
  check_trajectory("sgd_weight_decay", [](Params p) {
    return SGD(p, {.lr = 0.1, .momentum = 0.5, .weight_decay = 0.01});
  });
}

TEST_CASE("Adam and AdamW match PyTorch") {
  check_trajectory("adam", [](Params p) { return Adam(p, {.lr = 0.01}); });
  check_trajectory("adam_weight_decay", [](Params p) {
    return Adam(p, {.lr = 0.01, .beta1 = 0.8, .beta2 = 0.99, .weight_decay = 0.1});
  });
  check_trajectory("adamw", [](Params p) { return AdamW(p, {.lr = 0.01}); });
  check_trajectory("adamw_weight_decay", [](Params p) {
    return AdamW(p, {.lr = 0.02, .eps = 1e-6, .weight_decay = 0.1});
  });
  CHECK(optim::AdamWOptions{}.weight_decay == 0.01);
  CHECK(optim::AdamOptions{}.weight_decay == 0.0);
}

TEST_CASE("float optimizers follow the double trajectory") {
  Tensor<double> Wd = get(ref(), "W0").clone().set_requires_grad();
  Tensor<double> bd = get(ref(), "b0").clone().set_requires_grad();
  Tensor<float> Wf = Wd.to<float>().set_requires_grad();
  Tensor<float> bf = bd.to<float>().set_requires_grad();
  optim::Adam<> adam({{"W", Wf}, {"b", bf}}, {.lr = 0.01});
  for (int k = 1; k <= 10; ++k) {
    Wd.copy_from(Wf.to<double>());
    bd.copy_from(bf.to<double>());
    regression_gradient(Wd, bd);
    Wf.set_grad(Wd.grad().to<float>());
    bf.set_grad(bd.grad().to<float>());
    adam.step();
  }
  CHECK(max_abs_diff(Wf, get(ref(), "adam.W.10")) < 1e-5);
}

TEST_CASE("an optimizer skips parameters without a gradient and leaves grads untouched") {
  auto a = Tensor<double>::from_vector({2}, {1, 2}).set_requires_grad();
  auto b = Tensor<double>::from_vector({2}, {3, 4}).set_requires_grad();
  SGD sgd(Params{{"a", a}, {"b", b}}, {.lr = 0.5, .momentum = 0.9, .weight_decay = 0.1});
  a.set_grad(Tensor<double>::from_vector({2}, {1, 1}));
  sgd.step();
  CHECK(a.to_vector() == std::vector<double>{1 - 0.5 * 1.1, 2 - 0.5 * 1.2});
  CHECK(b.to_vector() == std::vector<double>{3, 4});
  CHECK(a.grad().to_vector() == std::vector<double>{1, 1});  // not rewritten by decay/momentum
  CHECK(sgd.parameters()[0].state.size() == 1);
  CHECK(sgd.parameters()[1].state.empty());
  sgd.zero_grad();
  CHECK_FALSE(a.grad().defined());
}

namespace {

// A test policy: quantizes parameters named "w" to sign(latent) * mean|latent| and logs every
// call, checking the optimizer's protocol as it goes.
struct SignTimesMean {
  std::vector<std::string> log;
  std::vector<double> latent_before;  // latent as on_gradient saw it
  bool quantizes(const optim::ParameterInfo<double>& info) const { return info.name == "w"; }
  void on_gradient(optim::QuantizedParameter<double>& p, const optim::TrainingProgress& pr) {
    log.push_back("gradient " + p.name + " " + std::to_string(pr.step));
    CHECK(p.grad.same_as(p.weight.grad()));
    latent_before = p.latent.to_vector();
    // Straight-through estimator, scaled so the test can see the rewrite took effect.
    Tensor<double> g = p.grad.clone();
    g.array() *= 2.0;
    p.grad = g;
  }
  void project(optim::QuantizedParameter<double>& p, const optim::TrainingProgress& pr) {
    log.push_back("project " + p.name + " " + std::to_string(pr.step));
    double scale = p.latent.array().abs().mean();
    for (int64_t i = 0; i < p.weight.numel(); ++i)
      p.weight[i] = p.latent[i] > 0 ? scale : (p.latent[i] < 0 ? -scale : 0.0);
  }
  void on_epoch(const optim::TrainingProgress& pr) {
    log.push_back("epoch " + std::to_string(pr.epoch));
  }
};
static_assert(optim::WeightQuantizer<SignTimesMean, double>);

}  // namespace

TEST_CASE("the optimizer calls the policy in order and keeps latent apart from weight") {
  auto w = Tensor<double>::from_vector({4}, {0.5, -1.0, 2.0, -0.1}).set_requires_grad();
  auto bias = Tensor<double>::from_vector({1}, {0.25}).set_requires_grad();
  optim::SGD<SignTimesMean, double> sgd(Params{{"w", w}, {"bias", bias}}, {.lr = 0.1});
  auto& ps = sgd.parameters();
  REQUIRE(ps.size() == 2);
  CHECK(ps[0].quantized);
  CHECK_FALSE(ps[1].quantized);
  CHECK(ps[0].weight.same_as(w));
  CHECK(ps[0].latent.data() != w.data());            // its own full-precision copy
  CHECK(ps[1].latent.data() == bias.data());         // not quantized: one tensor
  // The latent starts as the original weights; the forward weights are projected at once.
  CHECK(ps[0].latent.to_vector() == std::vector<double>{0.5, -1.0, 2.0, -0.1});
  CHECK(w.to_vector() == std::vector<double>{0.9, -0.9, 0.9, -0.9});

  for (int step = 0; step < 2; ++step) {
    w.set_grad(Tensor<double>::from_vector({4}, {1, 1, -1, 1}));
    bias.set_grad(Tensor<double>::from_vector({1}, {1}));
    std::vector<double> latent = ps[0].latent.to_vector();
    sgd.step();
    // on_gradient saw the latent before the update; the update used the rewritten gradient.
    CHECK(sgd.policy().latent_before == latent);
    std::vector<double> expected = {latent[0] - 0.2, latent[1] - 0.2, latent[2] + 0.2,
                                    latent[3] - 0.2};
    for (int i = 0; i < 4; ++i) CHECK(ps[0].latent[i] == doctest::Approx(expected[i]));
    double scale = 0;
    for (double v : expected) scale += std::abs(v) / 4;
    CHECK(w[0] == doctest::Approx(scale));
    CHECK(w[1] == doctest::Approx(-scale));
    CHECK(w[2] == doctest::Approx(scale));
    CHECK(w[3] == doctest::Approx(-scale));
  }
  CHECK(bias[0] == doctest::Approx(0.05));
  sgd.on_epoch({.step = 2, .epoch = 1, .fraction = 0.5});
  CHECK(sgd.progress().fraction == 0.5);
  CHECK(sgd.policy().log == std::vector<std::string>{"project w 0", "gradient w 0", "project w 0",
                                                     "gradient w 1", "project w 1", "epoch 1"});
}

TEST_CASE("quant::None keeps latent and weight one tensor") {
  auto w = Tensor<float>::ones({3}).set_requires_grad();
  optim::Adam<> adam({{"w", w}});
  auto& p = adam.parameters()[0];
  CHECK_FALSE(p.quantized);
  CHECK(p.latent.same_as(w));
  w.set_grad(Tensor<float>::ones({3}));
  adam.step();
  CHECK(w[0] == doctest::Approx(1 - 1e-3));
  CHECK(p.state.size() == 2);
}

TEST_CASE("bad options throw trit::Error") {
  auto w = Tensor<double>::ones({2}).set_requires_grad();
  Params ps{{"w", w}};
  CHECK_THROWS_AS(SGD(ps, {.lr = -0.1}), trit::Error);
  CHECK_THROWS_AS(SGD(ps, {.lr = 0.1, .momentum = -1}), trit::Error);
  CHECK_THROWS_AS(SGD(ps, {.lr = 0.1, .weight_decay = -1}), trit::Error);
  CHECK_THROWS_AS(SGD(ps, {.lr = 0.1, .nesterov = true}), trit::Error);
  CHECK_THROWS_AS(SGD(ps, {.lr = 0.1, .momentum = 0.9, .dampening = 0.1, .nesterov = true}),
                  trit::Error);
  CHECK_THROWS_AS(Adam(ps, {.lr = -1}), trit::Error);
  CHECK_THROWS_AS(Adam(ps, {.beta1 = 1.0}), trit::Error);
  CHECK_THROWS_AS(AdamW(ps, {.beta2 = -0.1}), trit::Error);
  CHECK_THROWS_AS(AdamW(ps, {.eps = -1}), trit::Error);
  CHECK_THROWS_AS(SGD(Params{{"u", Tensor<double>()}}, {.lr = 0.1}), trit::Error);
  SGD sgd(ps, {.lr = 0.1});
  CHECK_THROWS_AS(sgd.set_lr(-1), trit::Error);
  w.set_grad(Tensor<double>::ones({3}));
  CHECK_THROWS_AS(sgd.step(), trit::Error);  // gradient shape does not match
  CHECK_THROWS_AS(optim::StepLR(sgd, 0), trit::Error);
  CHECK_THROWS_AS(optim::MultiStepLR(sgd, {5, 2}), trit::Error);
  CHECK_THROWS_AS(optim::CosineAnnealingLR(sgd, 0), trit::Error);
  CHECK_THROWS_AS(optim::LinearWarmup(sgd, 0.0, 5), trit::Error);
  CHECK_THROWS_AS(optim::OneCycleLR(sgd, 0.5, 10, 1.5), trit::Error);
  optim::OneCycleLR one(sgd, 0.5, 10);
  for (int i = 0; i < 10; ++i) one.step();
  CHECK_THROWS_AS(one.step(), trit::Error);  // past total_steps
}

namespace {

// The scheduler's learning rates for t = 0..n-1, as the optimizer sees them.
void check_schedule(const std::string& name,
                    const std::function<std::unique_ptr<optim::Scheduler>(SGD&)>& make) {
  CAPTURE(name);
  Tensor<double> expected = get(ref(), "lr." + name);
  auto w = Tensor<double>::zeros({1}).set_requires_grad();
  SGD sgd(Params{{"w", w}}, {.lr = 0.1});
  auto sched = make(sgd);
  for (int64_t t = 0; t < expected.numel(); ++t) {
    CAPTURE(t);
    CHECK(std::abs(sgd.lr() - expected[t]) < 1e-12);
    CHECK(sched->get_lr() == doctest::Approx(sgd.lr()));
    sgd.step();
    if (t + 1 < expected.numel()) sched->step();
  }
}

}  // namespace

TEST_CASE("schedulers match PyTorch's learning rates") {
  using std::make_unique;
  check_schedule("step", [](SGD& o) { return make_unique<optim::StepLR>(o, 3, 0.5); });
  check_schedule("multistep", [](SGD& o) {
    return make_unique<optim::MultiStepLR>(o, std::vector<int64_t>{2, 5, 9}, 0.1);
  });
  check_schedule("cosine", [](SGD& o) {
    return make_unique<optim::CosineAnnealingLR>(o, 10, 0.001);
  });
  check_schedule("warmup", [](SGD& o) { return make_unique<optim::LinearWarmup>(o, 0.1, 5); });
  check_schedule("warmup_cosine", [](SGD& o) {
    return make_unique<optim::LinearWarmup>(o, 0.1, 5,
                                            make_unique<optim::CosineAnnealingLR>(o, 10));
  });
  check_schedule("onecycle", [](SGD& o) { return make_unique<optim::OneCycleLR>(o, 0.5, 20); });
}
