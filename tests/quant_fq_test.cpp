// Focused quantization (quant::FocusedPow2): the Gaussian mixture fit, shift quantization, the
// projection and the gradient on hand-computed examples, the forward weights after optimizer
// steps on a small network, and a small CNN that learns under the policy.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <trit/core.hpp>
#include <trit/nn.hpp>
#include <trit/ops/loss.hpp>
#include <trit/optim.hpp>
#include <trit/quant/focused_pow2.hpp>
#include <trit/quant/gaussian_mixture.hpp>

using namespace trit;
using quant::FocusedPow2;
using quant::FocusedPow2Options;
using quant::FQMode;

// ---- mixture -----------------------------------------------------------------------------------

TEST_CASE("EM recovers a known bimodal mixture") {
  Generator gen(1);
  std::vector<double> x;
  for (int i = 0; i < 20000; ++i)
    x.push_back(gen.uniform() < 0.4 ? gen.normal(-0.5, 0.1) : gen.normal(0.8, 0.2));
  auto g = quant::fit_gaussian_mixture(x);
  CHECK(g.converged);
  CHECK(g.lambda[0] == doctest::Approx(0.4).epsilon(0.05));
  CHECK(g.lambda[1] == doctest::Approx(0.6).epsilon(0.05));
  CHECK(std::abs(g.mu[0] + 0.5) < 0.02);
  CHECK(std::abs(g.mu[1] - 0.8) < 0.02);
  CHECK(std::abs(g.sigma[0] - 0.1) < 0.01);
  CHECK(std::abs(g.sigma[1] - 0.2) < 0.01);

  // One-signed data (both modes positive) starts from the median split and still separates.
  std::vector<double> y;
  for (int i = 0; i < 4000; ++i) y.push_back(i % 2 ? gen.normal(1.0, 0.1) : gen.normal(3.0, 0.1));
  auto h = quant::fit_gaussian_mixture(y);
  CHECK(std::abs(h.mu[0] - 1.0) < 0.02);
  CHECK(std::abs(h.mu[1] - 3.0) < 0.02);
  CHECK(h.lambda[0] == doctest::Approx(0.5).epsilon(0.02));
}

TEST_CASE("weighted EM equals EM on repeated values") {
  std::vector<double> x = {-1.2, -0.9, -0.7, 0.1, 0.5, 0.8, 1.3}, w = {2, 1, 3, 1, 2, 1, 1};
  std::vector<double> repeated;
  for (size_t i = 0; i < x.size(); ++i)
    for (int k = 0; k < int(w[i]); ++k) repeated.push_back(x[i]);
  auto a = quant::fit_gaussian_mixture(x, w);
  auto b = quant::fit_gaussian_mixture(repeated);
  for (int c = 0; c < 2; ++c) {
    CHECK(a.lambda[c] == doctest::Approx(b.lambda[c]).epsilon(1e-9));
    CHECK(a.mu[c] == doctest::Approx(b.mu[c]).epsilon(1e-9));
    CHECK(a.sigma[c] == doctest::Approx(b.sigma[c]).epsilon(1e-9));
  }
  CHECK(a.mu[0] <= a.mu[1]);
}

TEST_CASE("degenerate inputs never give NaN") {
  auto finite = [](const quant::GaussianMixture& g) {
    for (int c = 0; c < 2; ++c)
      if (!std::isfinite(g.lambda[c]) || !std::isfinite(g.mu[c]) || !std::isfinite(g.sigma[c]) ||
          !(g.sigma[c] > 0) || g.lambda[c] < 0)
        return false;
    return std::isfinite(g.posterior_upper(0.3)) && std::isfinite(g.log_likelihood);
  };
  auto equal = quant::fit_gaussian_mixture(std::vector<double>(1000, 0.3));
  CHECK(finite(equal));
  CHECK(equal.mu[0] == doctest::Approx(0.3));
  CHECK(equal.mu[1] == doctest::Approx(0.3));
  CHECK(finite(quant::fit_gaussian_mixture(std::vector<double>(50, 0.0))));
  CHECK(finite(quant::fit_gaussian_mixture(std::vector<double>{0.7})));
  CHECK(finite(quant::fit_gaussian_mixture(std::vector<double>{-0.2, 0.2})));
  CHECK(finite(quant::fit_gaussian_mixture(std::vector<double>{-1e-30, 1e-30, 5.0})));
  auto empty = quant::fit_gaussian_mixture(std::vector<double>{});
  CHECK(finite(empty));
  CHECK(empty.iterations == 0);
  // Two exact values: each component collapses onto one (sigma at its floor), no NaN.
  std::vector<double> two;
  for (int i = 0; i < 100; ++i) two.push_back(i % 2 ? 1.0 : -1.0);
  auto g = quant::fit_gaussian_mixture(two);
  CHECK(finite(g));
  CHECK(g.mu[0] == doctest::Approx(-1.0));
  CHECK(g.mu[1] == doctest::Approx(1.0));
  CHECK_THROWS_AS(quant::fit_gaussian_mixture(std::vector<double>{0.1, NAN}), Error);
  std::vector<double> bad_w = {1.0, -1.0};
  CHECK_THROWS_AS(quant::fit_gaussian_mixture(std::vector<double>{0.1, 0.2}, bad_w), Error);
  CHECK_THROWS_AS(quant::fit_gaussian_mixture(std::vector<double>{0.1}, {.max_iterations = 0}),
                  Error);
}

TEST_CASE("assignment samples the posterior; separation as FQ defines it") {
  quant::GaussianMixture g;
  g.lambda = {0.5, 0.5}, g.mu = {-1, 1}, g.sigma = {1, 1};
  // Equal sigmas and lambdas: log N0 - log N1 = -2x, so P(1 | x) = 1 / (1 + e^(-2x)).
  const double x = -0.4236;
  const double p1 = 1 / (1 + std::exp(2 * 0.4236));
  CHECK(g.posterior_upper(x) == doctest::Approx(p1));
  Generator gen(3);
  int ones = 0;
  for (int i = 0; i < 20000; ++i) ones += quant::sample_component(g, x, gen);
  CHECK(double(ones) / 20000 == doctest::Approx(p1).epsilon(0.05));
  CHECK(quant::likeliest_component(g, x) == 0);
  CHECK(quant::likeliest_component(g, 0.1) == 1);
  CHECK(quant::sample_component(g, -50.0, gen) == 0);
  // W = ((mu0 - mu1)^2 + (sigma0 - sigma1)^2) / var = (4 + 0.25) / 2
  g.sigma = {1.0, 1.5};
  CHECK(quant::wasserstein_separation(g, 2.0) == doctest::Approx(2.125));
  CHECK(quant::wasserstein_separation(g, 0.0) == 0.0);
}

// ---- shift quantization ------------------------------------------------------------------------

TEST_CASE("shift quantization rounds in the linear domain and clips") {
  // top 0, 4 exponents: levels 1, 1/2, 1/4, 1/8.
  auto q = [](double x, bool zero) { return quant::shift_quantize(x, 0, 4, zero); };
  CHECK(q(0.7, true) == 0.5);     // < 0.75
  CHECK(q(0.75, true) == 1.0);    // the boundary 1.5 * 2^-1 rounds up
  CHECK(q(3.0, true) == 1.0);     // clipped
  CHECK(q(-0.2, true) == -0.25);  // >= 0.1875
  CHECK(q(0.1, true) == 0.125);
  CHECK(q(0.07, true) == 0.125);  // >= half the smallest level
  CHECK(q(0.05, true) == 0.0);    // below it
  CHECK(q(0.05, false) == 0.125); // unless zero is reserved
  CHECK(q(-0.0001, false) == -0.125);
  CHECK(q(0.0, true) == 0.0);
  CHECK(quant::round_to_power_of_two(-0.1) == -0.125);
  CHECK(quant::round_to_power_of_two(0.09) == 0.0625);
  // Overflow rule: at most floor(0.25 * 4) = 1 magnitude may round above 2^top.
  std::vector<double> m = {0.1, 0.2, 0.3, 5.0};
  CHECK(quant::overflow_top_exponent(m, 0.25) == -2);  // 0.3 < 1.5 * 2^-2
  m = {0.1, 0.2, 0.4, 5.0};
  CHECK(quant::overflow_top_exponent(m, 0.25) == -1);  // 0.4 >= 0.375
  m = {0.1, 0.2, 0.4, 5.0};
  CHECK(quant::overflow_top_exponent(m, 0.0) == 2);    // 5 < 6 = 1.5 * 4
  m = {0.0, 0.0};
  CHECK(quant::overflow_top_exponent(m, 0.0) == 0);
}

// ---- projection and gradient on hand-computed examples ------------------------------------------

namespace {

// A single quantized parameter "w" driven by hand, as the optimizer would.
template <class T>
struct Single {
  FocusedPow2 policy;
  optim::QuantizedParameter<T> p;
  Single(FocusedPow2Options o, std::vector<T> latent) : policy(std::move(o)) {
    auto w = Tensor<T>::from_vector({int64_t(latent.size())}, latent);
    optim::ParameterInfo<T> info{.name = "w", .tensor = w, .is_linear_weight = true};
    // Described as a linear weight, so the default selection takes it.
    REQUIRE(policy.quantizes(info));
    p.name = "w", p.weight = w, p.latent = w.clone(), p.quantized = true;
    policy.project(p, {});
  }
};

FocusedPow2Options forced(FQMode mode, int bits, double sparsity) {
  FocusedPow2Options o;
  o.mode = mode, o.bits = bits;
  o.schedule = {.target = sparsity};
  return o;
}

}  // namespace

TEST_CASE("shift mode: pruning and power-of-two codes by hand") {
  // 8 weights, 25 % sparsity: the two smallest |theta| (0.05, -0.02) are pruned. Survivors'
  // largest magnitude 1.4 < 1.5 * 2^0 with no overflow allowed (floor(6/17) = 0): top = 0;
  // 4 bits give 4 exponents: levels 1, 1/2, 1/4, 1/8.
  Single<double> s(forced(FQMode::shift, 4, 0.25), {0.9, -0.3, 0.05, 0.6, -1.4, 0.2, -0.02, 0.45});
  const auto& L = s.policy.layer("w");
  CHECK(L.quantizing);
  CHECK(L.mode == FQMode::shift);
  CHECK(L.top_exponent == 0);
  CHECK(L.max_levels() == 9);
  CHECK(s.p.weight.to_vector() == std::vector<double>{1, -0.25, 0, 0.5, -1, 0.25, 0, 0.5});
  CHECK(s.policy.sparsity("w") == 0.25);
  auto codes = s.policy.quantized_tensors(std::vector<optim::QuantizedParameter<double>>{s.p});
  REQUIRE(codes.size() == 1);
  CHECK(codes[0].encoding == quant::Encoding::power_of_two);
  CHECK(codes[0].sparsity() == 0.25);
  CHECK(codes[0].expand().to<double>().to_vector() == s.p.weight.to_vector());
  CHECK(s.policy.report().find("w: shift 4-bit, sparsity 0.2500") != std::string::npos);
}

TEST_CASE("recentralized mode: offsets from the power-of-two means by hand") {
  // Two tight clusters: EM lands on the cluster moments (posteriors are 0 or 1 to e^-400).
  std::vector<double> neg = {-1.1, -0.9, -1.0, -1.05}, pos = {0.95, 1.0, 1.1, 1.05};
  std::vector<double> latent = neg;
  latent.insert(latent.end(), pos.begin(), pos.end());
  Single<double> s(forced(FQMode::automatic, 5, 0.0), latent);
  const auto& L = s.policy.layer("w");
  CHECK(L.mode == FQMode::recentralized);  // W is large: the modes are far apart
  CHECK(L.mixture.mu[0] == doctest::Approx(-1.0125));
  CHECK(L.mixture.mu[1] == doctest::Approx(1.025));
  // Hardware mode: means rounded to +-1, one sigma = sqrt(0.5 var_neg + 0.5 var_pos).
  const double sigma = std::sqrt(0.5 * 0.00546875 + 0.5 * 0.003125);
  CHECK(L.mu[0] == -1.0);
  CHECK(L.mu[1] == 1.0);
  CHECK(L.sigma[0] == doctest::Approx(sigma));
  CHECK(L.component == std::vector<uint8_t>{0, 0, 0, 0, 1, 1, 1, 1});
  // Normalised offsets +-0.1/sigma = +-1.5255 (-> 2, and sets top = 1 as 1.5255 >= 1.5),
  // +-0.05/sigma = +-0.763 (-> 1), 0 (-> 0: the mean itself). 5 bits: 4-bit shift values,
  // 4 exponents, levels 2, 1, 1/2, 1/4.
  CHECK(L.top_exponent == 1);
  CHECK(L.max_levels() == 19);
  std::vector<double> v = {-2, 2, 0, -1, -1, 0, 2, 1};
  for (int i = 0; i < 8; ++i) {
    CAPTURE(i);
    const double mu = i < 4 ? -1.0 : 1.0;
    CHECK(s.p.weight[i] == doctest::Approx(mu + sigma * v[i]).epsilon(1e-12));
  }
  // Free means (hardware off) stay at the fitted ones.
  auto o = forced(FQMode::recentralized, 5, 0.0);
  o.hardware = false;
  Single<double> f(o, latent);
  CHECK(f.policy.layer("w").mu[1] == doctest::Approx(1.025));
  // theta = 1.0: (1.0 - 1.025) / sigma_+ = -0.447 -> -1/2 (>= 0.375), sigma_+ = sqrt(0.003125).
  CHECK(f.policy.layer("w").sigma[1] == doctest::Approx(std::sqrt(0.003125)));
  CHECK(f.p.weight[5] == doctest::Approx(1.025 - 0.5 * std::sqrt(0.003125)));
}

TEST_CASE("gradient to the latent: alpha * z * dL/dw, and alpha's own SGD step") {
  auto o = forced(FQMode::shift, 4, 0.25);
  o.alpha_lr = 0.1;
  Single<double> s(o, {0.9, -0.3, 0.05, 0.6, -1.4, 0.2, -0.02, 0.45});
  auto g = Tensor<double>::from_vector({8}, {1, 2, 3, 4, 5, 6, 7, 8});
  s.p.weight.set_grad(g);
  s.p.grad = g;
  s.policy.on_gradient(s.p, {});
  CHECK(s.p.grad.to_vector() == std::vector<double>{1, 2, 0, 4, 5, 6, 0, 8});
  CHECK(s.p.weight.grad().to_vector() == std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8});
  // dL/dalpha = sum g * w / alpha = 1 - 0.5 + 2 - 5 + 1.5 + 4 = 3, so alpha = 1 - 0.1 * 3.
  CHECK(s.policy.layer("w").alpha == doctest::Approx(0.7));
  s.policy.project(s.p, {});
  CHECK(s.p.weight[0] == doctest::Approx(0.7));
  CHECK(s.p.weight[1] == doctest::Approx(-0.175));
  s.p.grad = g;
  s.policy.on_gradient(s.p, {});
  CHECK(s.p.grad[0] == doctest::Approx(0.7));
  CHECK(s.p.grad[7] == doctest::Approx(5.6));
  CHECK(s.p.grad[6] == 0.0);
}

TEST_CASE("warm-up: full precision forward and unchanged gradient") {
  auto o = forced(FQMode::automatic, 5, 0.5);
  o.schedule.fp_epochs = 1;
  Single<float> s(o, {0.3f, -0.2f, 0.1f, 0.7f});
  CHECK_FALSE(s.policy.layer("w").quantizing);
  CHECK(s.p.weight.to_vector() == std::vector<float>{0.3f, -0.2f, 0.1f, 0.7f});
  auto g = Tensor<float>::ones({4});
  s.p.grad = g;
  s.policy.on_gradient(s.p, {});
  CHECK(s.p.grad.same_as(g));
  CHECK(s.policy.quantized_tensors(std::vector<optim::QuantizedParameter<float>>{s.p}).empty());
  CHECK(s.policy.report().find("full precision") != std::string::npos);
}

// ---- after optimizer steps on a small network ---------------------------------------------------

namespace {

template <class T>
std::shared_ptr<nn::Sequential<T>> small_net(int64_t side) {
  const int64_t s1 = (side - 3) / 2 + 1, s2 = (s1 - 3) / 2 + 1;
  return std::make_shared<nn::Sequential<T>>(
      std::make_shared<nn::Conv2d<T>>(1, 4, 3, nn::Conv2dOptions{.stride = 2}),
      std::make_shared<nn::ReLU<T>>(),
      std::make_shared<nn::Conv2d<T>>(4, 8, 3, nn::Conv2dOptions{.stride = 2}),
      std::make_shared<nn::ReLU<T>>(), std::make_shared<nn::Flatten<T>>(),
      std::make_shared<nn::Linear<T>>(8 * s2 * s2, 10));
}

// Every forward weight is 0 where pruned, else centre(m) + step(m) * v with v in
// {0} u {+-2^j : j in [top - E + 1, top]}; at most max_levels() distinct values.
template <class T>
void check_forward_weights(const quant::FQLayer& L, const Tensor<T>& w) {
  CAPTURE(L.name);
  REQUIRE(L.quantizing);
  const int lowest = L.top_exponent - L.exponents() + 1;
  std::set<T> distinct;
  int bad = 0;
  for (int64_t i = 0; i < w.numel(); ++i) {
    distinct.insert(w[i]);
    if (!L.mask[size_t(i)]) {
      bad += w[i] != T(0);
      continue;
    }
    bad += w[i] == T(0);
    const int m = L.mode == FQMode::recentralized ? L.component[size_t(i)] : 0;
    const double r = std::abs(double(w[i]) - L.centre(m)) / L.step(m);
    // The nearest allowed |v| must match r to rounding error.
    double best = L.mode == FQMode::recentralized ? 0.0 : INFINITY;
    for (int j = lowest; j <= L.top_exponent; ++j)
      if (std::abs(std::ldexp(1.0, j) - r) < std::abs(best - r)) best = std::ldexp(1.0, j);
    const double tol = 1e-4 * std::ldexp(1.0, lowest) + 1e-5 * r;
    if (std::abs(r - best) > tol) {
      ++bad;
      MESSAGE("weight ", i, " = ", double(w[i]), ": |w - centre| / step = ", r);
    }
  }
  CHECK(bad == 0);
  CHECK(int64_t(distinct.size()) <= L.max_levels());
}

template <class Opt, class T, class Tweak>
void run_steps(const std::string& label, Opt make, Tweak tweak) {
  CAPTURE(label);
  manual_seed(11);
  auto net = small_net<T>(12);
  FocusedPow2Options o;
  o.bits = 4;
  o.schedule = {.initial = 0.0, .target = 0.6, .fp_epochs = 1, .ramp_epochs = 2};
  o.selection.quantize_first_conv = true;
  o.selection.add_override({.pattern = "5.*", .sparsity = 0.3, .bits = 5});
  tweak(o);
  auto opt = make(*net, FocusedPow2(o));
  const int64_t per_epoch = 4;
  opt.progress().steps_per_epoch = per_epoch;
  Generator gen(5);
  auto x = Tensor<T>::randn({16, 1, 12, 12}, gen);
  std::vector<int64_t> y;
  for (int i = 0; i < 16; ++i) y.push_back(i % 10);
  const auto& policy = opt.policy();
  CHECK(policy.layer("5.weight").bits == 5);
  CHECK_FALSE(policy.has_layer("5.bias"));

  for (int64_t step = 0; step < 6 * per_epoch; ++step) {
    CAPTURE(step);
    opt.zero_grad();
    auto loss = cross_entropy((*net)(x), y);
    loss.backward();
    opt.step();
    optim::TrainingProgress at = opt.progress();  // the projection saw step - 1
    at.step -= 1;
    if ((step + 1) % per_epoch == 0)
      opt.on_epoch({.step = opt.progress().step, .epoch = (step + 1) / per_epoch,
                    .steps_per_epoch = per_epoch});
    // The weights were last projected at `at`, or at the epoch boundary by on_epoch.
    const optim::TrainingProgress last = (step + 1) % per_epoch == 0 ? opt.progress() : at;
    for (const auto& p : opt.parameters()) {
      if (!p.quantized) continue;
      const auto& L = policy.layer(p.name);
      if (last.epochs() < 1) {
        CHECK_FALSE(L.quantizing);
        CHECK(p.weight.to_vector() == p.latent.to_vector());
        continue;
      }
      check_forward_weights(L, p.weight);
      // Sparsity as scheduled, within one weight.
      const double s = o.schedule.at(last, L.target_sparsity);
      int64_t zeros = 0;
      for (int64_t i = 0; i < p.weight.numel(); ++i) zeros += p.weight[i] == T(0);
      CHECK(std::abs(double(zeros) / double(p.weight.numel()) - s) <=
            1.0 / double(p.weight.numel()) + 1e-12);
    }
  }
  // Quantized from epoch 1 (t = 0), refits at t = 1, 2, 4: epochs 2, 3, 5.
  for (const auto& [name, L] : policy.layers()) {
    CAPTURE(name);
    CHECK(L.fits == 4);
    CHECK(L.mask_frozen);
    CHECK(std::isfinite(L.mixture.mu[0]));
    // These layers' survivors are clearly bimodal (W > 2): automatic picks recentralized.
    CHECK(L.mode == (o.mode == FQMode::automatic ? FQMode::recentralized : o.mode));
    if (o.alpha_lr == 0) CHECK(L.alpha == 1.0);
    if (o.alpha_lr > 0) CHECK(L.alpha != 1.0);
  }
  CHECK(policy.sparsity("2.weight") == doctest::Approx(0.6).epsilon(0.01));
  CHECK(policy.sparsity("5.weight") == doctest::Approx(0.3).epsilon(0.01));
  auto codes = policy.quantized_tensors(opt.parameters());
  CHECK(codes.size() == 3);
  for (const auto& q : codes) {
    CHECK(q.levels() <= policy.layer(q.name).max_levels());
    CHECK(q.bits_per_code() <= policy.layer(q.name).bits);  // n-bit codes, zero included
  }
}

}  // namespace

TEST_CASE("after optimizer steps: power-of-two forward weights at the scheduled sparsity") {
  auto sgd = []<class T>(nn::Sequential<T>& net, FocusedPow2 q) {
    return optim::SGD<FocusedPow2, T>(net, {.lr = 0.05, .momentum = 0.9}, std::move(q));
  };
  auto adamw = []<class T>(nn::Sequential<T>& net, FocusedPow2 q) {
    return optim::AdamW<FocusedPow2, T>(net, {.lr = 1e-2, .weight_decay = 1e-2}, std::move(q));
  };
  auto as_is = [](FocusedPow2Options&) {};
  run_steps<decltype(sgd), float>("SGD float", sgd, as_is);
  run_steps<decltype(sgd), double>("SGD double, shift, learnt alpha", sgd,
                                   [](FocusedPow2Options& o) {
                                     o.mode = FQMode::shift;
                                     o.alpha_lr = 1e-3;
                                   });
  run_steps<decltype(adamw), float>("AdamW float, free means, argmax", adamw,
                                    [](FocusedPow2Options& o) {
                                      o.hardware = false;
                                      o.sample_assignment = false;
                                    });
  run_steps<decltype(adamw), double>("AdamW double", adamw, as_is);
}

// ---- a small CNN learns under the policy -------------------------------------------------------

TEST_CASE("a small CNN on generated Fashion-MNIST-format images lowers its loss") {
  // 2000 images 1x28x28, 10 classes: a fixed random 7x7 binary pattern per class, upsampled
  // 4x, plus Gaussian noise.
  const int64_t n = 2000, side = 28, classes = 10;
  Generator gen(21);
  std::vector<float> pattern(classes * 49);
  for (auto& v : pattern) v = gen.uniform() < 0.5 ? 1.0f : 0.0f;
  auto images = Tensor<float>::empty({n, 1, side, side});
  std::vector<int64_t> labels(n);
  for (int64_t i = 0; i < n; ++i) {
    labels[i] = i % classes;
    for (int64_t r = 0; r < side; ++r)
      for (int64_t c = 0; c < side; ++c)
        images(i, 0, r, c) =
            pattern[labels[i] * 49 + (r / 4) * 7 + c / 4] + float(gen.normal(0.0, 0.5));
  }
  manual_seed(4);
  auto net = small_net<float>(side);
  FocusedPow2Options o;
  o.bits = 4;
  o.schedule = {.target = 0.5, .fp_epochs = 1, .ramp_epochs = 1};
  optim::SGD<FocusedPow2> sgd(*net, {.lr = 0.05, .momentum = 0.9}, FocusedPow2(o));
  const int64_t batch = 50, per_epoch = n / batch;
  sgd.progress().steps_per_epoch = per_epoch;
  auto mean_loss = [&]() {
    NoGradGuard no_grad;
    std::vector<int64_t> y(labels.begin(), labels.begin() + 500);
    return double(cross_entropy((*net)(images.slice_rows(0, 500)), y).item());
  };
  const double before = mean_loss();
  for (int64_t epoch = 0; epoch < 4; ++epoch) {
    for (int64_t b = 0; b < per_epoch; ++b) {
      std::vector<int64_t> y(labels.begin() + b * batch, labels.begin() + (b + 1) * batch);
      sgd.zero_grad();
      auto loss = cross_entropy((*net)(images.slice_rows(b * batch, (b + 1) * batch)), y);
      loss.backward();
      sgd.step();
    }
    sgd.on_epoch({.step = sgd.progress().step, .epoch = epoch + 1, .steps_per_epoch = per_epoch});
  }
  const double after = mean_loss();
  MESSAGE("loss ", before, " -> ", after, "\n", sgd.policy().report());
  CHECK(before > 2.0);
  CHECK(after < 0.5 * before);
  for (const auto& p : sgd.parameters())
    if (p.quantized) check_forward_weights(sgd.policy().layer(p.name), p.weight);
  CHECK(sgd.policy().sparsity("2.weight") == doctest::Approx(0.5).epsilon(0.01));
}

// ---- options -------------------------------------------------------------------------------------

TEST_CASE("bad options throw trit::Error") {
  auto with = [](auto set) {
    FocusedPow2Options o;
    set(o);
    return o;
  };
  CHECK_THROWS_AS(FocusedPow2(with([](auto& o) { o.bits = 1; })), Error);
  CHECK_THROWS_AS(FocusedPow2(with([](auto& o) { o.bits = 9; })), Error);
  CHECK_THROWS_AS(FocusedPow2(with([](auto& o) { o.bits = 2, o.mode = FQMode::recentralized; })),
                  Error);
  CHECK_THROWS_AS(FocusedPow2(with([](auto& o) { o.schedule.target = 1.0; })), Error);
  CHECK_THROWS_AS(FocusedPow2(with([](auto& o) { o.schedule.fp_epochs = -1; })), Error);
  CHECK_THROWS_AS(FocusedPow2(with([](auto& o) { o.refit_interval = 0; })), Error);
  CHECK_THROWS_AS(FocusedPow2(with([](auto& o) { o.refit_growth = 0.5; })), Error);
  CHECK_THROWS_AS(FocusedPow2(with([](auto& o) { o.w_sep = 0; })), Error);
  CHECK_THROWS_AS(FocusedPow2(with([](auto& o) { o.alpha_lr = -1; })), Error);
  CHECK_THROWS_AS(FocusedPow2(with([](auto& o) { o.mixture.max_iterations = 0; })), Error);
  CHECK_THROWS_AS(FocusedPow2(with([](auto& o) { o.mixture.tolerance = 0; })), Error);
  // A per-name override of 2 bits cannot be recentralized.
  auto o = with([](auto& o) { o.mode = FQMode::recentralized; });
  o.selection.add_override({.pattern = "2.*", .bits = 2});
  auto net = small_net<float>(12);
  CHECK_THROWS_AS(optim::SGD<FocusedPow2>(*net, {.lr = 0.1}, FocusedPow2(o)), Error);
  FocusedPow2 fine;
  CHECK_THROWS_AS(fine.sparsity("nope"), Error);
  CHECK(fine.options().bits == 5);
}
