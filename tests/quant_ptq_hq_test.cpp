// The ternary policies quant::PTQ and quant::HQ: projection of known weights, the gradient
// that reaches the latent, ternary forward weights at the scheduled sparsity after training
// steps with SGD and AdamW in float and double, a small CNN whose loss falls, bad options.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <set>
#include <vector>

#include <trit/nn.hpp>
#include <trit/ops.hpp>
#include <trit/optim.hpp>
#include <trit/quant/hq.hpp>
#include <trit/quant/ptq.hpp>

using namespace trit;

namespace {

template <class T>
using Params = std::vector<std::pair<std::string, Tensor<T>>>;

template <class T>
void check_close(const Tensor<T>& t, const std::vector<double>& expected, double tol = 1e-6) {
  REQUIRE(t.numel() == int64_t(expected.size()));
  for (int64_t i = 0; i < t.numel(); ++i) CHECK(double(t[i]) == doctest::Approx(expected[i]).epsilon(tol));
}

}  // namespace

TEST_CASE("ternary math: counts, threshold, mask, scales, cosine") {
  CHECK(quant::pruned_counts(8, 1, 0.5) == std::vector<int64_t>{4});
  CHECK(quant::pruned_counts(9, 3, 0.5) == std::vector<int64_t>{2, 2, 1});  // round(4.5) = 5
  CHECK_THROWS_AS(quant::pruned_counts(7, 2, 0.5), Error);
  auto w = Tensor<double>::from_vector({2, 4}, {0.9, -0.1, 0.4, -0.6, 0.2, -0.8, 0.05, 0.3});
  CHECK(quant::magnitude_threshold(w.data(), 8, 3) == 0.3);
  auto mask = quant::magnitude_mask(w, 1, 0.5);
  CHECK(mask == std::vector<uint8_t>{1, 0, 1, 1, 0, 1, 0, 0});
  auto scales = quant::least_squares_scales(w, mask, 1);
  CHECK(scales[0] == doctest::Approx(0.675));
  // Ties: equal magnitudes are pruned by position, so the count stays exact.
  auto ties = Tensor<double>::from_vector({4}, {0.5, -0.5, 0.5, 0.5});
  CHECK(quant::magnitude_mask(ties, 1, 0.5) == std::vector<uint8_t>{0, 0, 1, 1});
  auto a = Tensor<double>::from_vector({2}, {3, 4}), b = Tensor<double>::from_vector({2}, {1, 0});
  CHECK(quant::cosine_similarity(a, b) == doctest::Approx(0.6));
  CHECK(quant::unit_norm_scales({1, 1, 0, 0, 1, 0, 0, 0}, {2.0, 3.0}) ==
        std::vector<double>{2.0 / std::sqrt(2.0), 3.0});
}

TEST_CASE("PTQ projects known weights to the expected codes, scales and sparsity") {
  const std::vector<double> values = {0.9, -0.1, 0.4, -0.6, 0.2, -0.8, 0.05, 0.3};
  SUBCASE("per tensor: a = mean of kept |w| = (0.9 + 0.4 + 0.6 + 0.8) / 4") {
    auto w = Tensor<double>::from_vector({2, 4}, values).set_requires_grad();
    optim::SGD<quant::PTQ, double> sgd(Params<double>{{"w", w}}, {.lr = 0.1},
                                       quant::PTQ({.schedule = {.target = 0.5}}));
    check_close(w, {0.675, 0, 0.675, -0.675, 0, -0.675, 0, 0});
    auto q = sgd.policy().quantized_tensors(sgd.parameters());
    REQUIRE(q.size() == 1);
    CHECK(q[0].groups == 1);
    CHECK(q[0].codebooks[0] == std::vector<float>{0.0f, 0.675f, -0.675f});
    CHECK(q[0].codes == std::vector<uint8_t>{1, 0, 1, 2, 0, 2, 0, 0});
    CHECK(sgd.policy().sparsity("w") == 0.5);
    CHECK(sgd.policy().layers().all().at("w").scales[0] == doctest::Approx(0.675));
    CHECK(sgd.parameters()[0].latent.to_vector() == values);  // the latent is left as it was
    CHECK(sgd.policy().report().find("sparsity 0.500") != std::string::npos);
    CHECK_THROWS_AS(sgd.policy().sparsity("nope"), Error);
  }
  SUBCASE("per channel: two pruned per row, a_0 = 0.75, a_1 = 0.55") {
    auto w = Tensor<double>::from_vector({2, 4}, values).set_requires_grad();
    optim::SGD<quant::PTQ, double> sgd(
        Params<double>{{"w", w}}, {.lr = 0.1},
        quant::PTQ({.schedule = {.target = 0.5}, .per_channel = true}));
    check_close(w, {0.75, 0, 0, -0.75, 0, -0.55, 0, 0.55});
    auto q = sgd.policy().quantized_tensors(sgd.parameters());
    CHECK(q[0].groups == 2);
    CHECK(q[0].sparsity() == 0.5);
    auto& s = sgd.policy().layers().all().at("w").scales;
    CHECK(s[0] == doctest::Approx(0.75));
    CHECK(s[1] == doctest::Approx(0.55));
  }
}

TEST_CASE("PTQ: the latent gradient is the STE plus decay plus the refined masked decay") {
  auto w = Tensor<double>::from_vector({1, 4}, {0.9, -0.1, 0.4, -0.6}).set_requires_grad();
  quant::PTQOptions o{.schedule = {.target = 0.5}, .refined_decay = 0.1, .weight_decay = 0.01};
  optim::SGD<quant::PTQ, double> sgd(Params<double>{{"w", w}}, {.lr = 1.0}, quant::PTQ(o));
  // mask keeps 0.9 and -0.6; the forward weights are 0.75 * {1, 0, 0, -1}.
  w.set_grad(Tensor<double>::from_vector({1, 4}, {1, 2, 3, 4}));
  sgd.step();
  // latent -= g + 0.01 W + 0.1 (1 - m) W
  check_close(sgd.parameters()[0].latent,
              {0.9 - (1 + 0.009), -0.1 - (2 - 0.001 - 0.01), 0.4 - (3 + 0.004 + 0.04),
               -0.6 - (4 - 0.006)});
  CHECK(w.grad().to_vector() == std::vector<double>{1, 2, 3, 4});  // dL/dw left as it was

  SUBCASE("refined STE off") {
    o.refined_ste = false;
    auto v = Tensor<double>::from_vector({1, 4}, {0.9, -0.1, 0.4, -0.6}).set_requires_grad();
    optim::SGD<quant::PTQ, double> plain(Params<double>{{"w", v}}, {.lr = 1.0}, quant::PTQ(o));
    v.set_grad(Tensor<double>::from_vector({1, 4}, {1, 2, 3, 4}));
    plain.step();
    check_close(plain.parameters()[0].latent,
                {0.9 - 1.009, -0.1 - (2 - 0.001), 0.4 - 3.004, -0.6 - (4 - 0.006)});
  }
}

TEST_CASE("PTQ warm-up: forward weights are the latent until fp_epochs") {
  auto w = Tensor<double>::from_vector({1, 4}, {0.9, -0.1, 0.4, -0.6}).set_requires_grad();
  optim::SGD<quant::PTQ, double> sgd(Params<double>{{"w", w}}, {.lr = 0.5},
                                     quant::PTQ({.schedule = {.target = 0.5, .fp_epochs = 1}}));
  sgd.progress().steps_per_epoch = 2;
  CHECK(w.to_vector() == std::vector<double>{0.9, -0.1, 0.4, -0.6});
  CHECK_THROWS_AS(sgd.policy().quantized_tensors(sgd.parameters()), Error);
  CHECK(sgd.policy().report().find("full precision") != std::string::npos);
  for (int i = 0; i < 3; ++i) {
    w.set_grad(Tensor<double>::from_vector({1, 4}, {0.1, 0.1, 0.1, 0.1}));
    sgd.step();
  }
  // Steps 0 and 1 are warm-up; step 2 (epoch 1.0) projects.
  CHECK(sgd.policy().sparsity("w") == 0.5);
  CHECK(quant::encode("w", w, quant::Encoding::ternary, false, 3).levels() == 3);
}

TEST_CASE("HQ projects unit-norm channels to r_c t_c / ||t_c|| and logs the cosine") {
  auto w = Tensor<double>::from_vector({2, 3}, {3, 4, 0, 1, -2, 2}).set_requires_grad();
  optim::SGD<quant::HQ, double> sgd(Params<double>{{"w", w}}, {.lr = 0.1},
                                    quant::HQ({.schedule = {.target = 1.0 / 3}}));
  const double s2 = std::sqrt(2.0);
  // Channel 0: r = 5, u = (0.6, 0.8, 0), 0 pruned, a = 5/sqrt 2. Channel 1: r = 3,
  // u = (1, -2, 2)/3, 1/3 pruned, a = 3/sqrt 2.
  check_close(w, {5 / s2, 5 / s2, 0, 0, -3 / s2, 3 / s2});
  check_close(sgd.parameters()[0].latent, {0.6, 0.8, 0, 1.0 / 3, -2.0 / 3, 2.0 / 3});
  const auto& l = sgd.policy().layers().all().at("w");
  CHECK(l.radius == std::vector<double>{5, 3});
  CHECK(l.cosines[0] == doctest::Approx(1.4 / s2));
  CHECK(l.cosines[1] == doctest::Approx(4.0 / 3 / s2));
  auto q = sgd.policy().quantized_tensors(sgd.parameters());
  CHECK(q[0].groups == 2);
  CHECK(q[0].codes == std::vector<uint8_t>{1, 1, 0, 0, 1, 2});
  CHECK(q[0].codebooks[0][1] == doctest::Approx(5 / s2));
  CHECK(q[0].codebooks[1][1] == doctest::Approx(-3 / s2));
  CHECK(sgd.policy().sparsity("w") == doctest::Approx(1.0 / 3));
}

TEST_CASE("HQ: the latent gradient is r_c * STE plus the cosine term, tangent to the sphere") {
  auto w = Tensor<double>::from_vector({2, 3}, {3, 4, 0, 1, -2, 2}).set_requires_grad();
  optim::SGD<quant::HQ, double> sgd(
      Params<double>{{"w", w}}, {.lr = 0.1},
      quant::HQ({.schedule = {.target = 1.0 / 3}, .cosine_weight = 0.1}));
  auto& p = sgd.parameters()[0];
  p.grad = Tensor<double>::from_vector({2, 3}, {1, 0, -1, 0.5, 0.5, 0.5});
  sgd.policy().on_gradient(p, sgd.progress());
  // Hand-computed: g_c = r_c g - 0.1 (t_c/||t_c|| - cos_c u_c), minus its component along u_c.
  check_close(p.grad, {3.188686291501015, -2.3915147186257615, -5.0, 1.3647603013860687,
                       1.8411900753465171, 1.1588099246534829});
  // After a real step the latent is back on the unit sphere.
  w.set_grad(Tensor<double>::from_vector({2, 3}, {1, 0, -1, 0.5, 0.5, 0.5}));
  sgd.step();
  auto norms = quant::group_norms(p.latent, 2);
  CHECK(norms[0] == doctest::Approx(1.0));
  CHECK(norms[1] == doctest::Approx(1.0));
}

TEST_CASE("HQ reinitialisation at epoch boundaries") {
  auto make = [](quant::Reinit r) {
    auto w = Tensor<double>::from_vector({1, 4}, {0.8, -0.5, 0.2, 0.3}).set_requires_grad();
    return std::make_pair(w, std::make_unique<optim::SGD<quant::HQ, double>>(
                                 Params<double>{{"w", w}}, optim::SGDOptions{.lr = 0.1},
                                 quant::HQ({.schedule = {.target = 0.5}, .reinit = r})));
  };
  SUBCASE("pruned: pruned latents restart at 0, kept ones keep their order") {
    auto [w, sgd] = make(quant::Reinit::pruned);
    sgd->on_epoch({.step = 0, .epoch = 1});
    w.set_grad(Tensor<double>::zeros({1, 4}));
    sgd->step();
    auto u = sgd->parameters()[0].latent;
    CHECK(u[2] == 0.0);
    CHECK(std::abs(u[0]) > std::abs(u[1]));
    // cos was 1.3 / sqrt(2 * 1.02) = 0.91 before; with the pruned mass gone it is 0.97.
    CHECK(sgd->policy().layers().all().at("w").cosines[0] > 0.97);
  }
  SUBCASE("project: the latent becomes t/||t||, cosine 1, forward weights unchanged") {
    auto [w, sgd] = make(quant::Reinit::project);
    auto u = sgd->parameters()[0].latent;
    check_close(u, {1 / std::sqrt(2.0), -1 / std::sqrt(2.0), 0, 0});
    CHECK(sgd->policy().layers().all().at("w").cosines[0] == doctest::Approx(1.0));
  }
  SUBCASE("regrow: pruned latents redrawn below the threshold, mask unchanged") {
    auto [w, sgd] = make(quant::Reinit::regrow);
    auto before = w.to_vector();
    sgd->on_epoch({.step = 0, .epoch = 1});
    w.set_grad(Tensor<double>::zeros({1, 4}));
    sgd->step();
    CHECK(w.to_vector() == before);
    auto u = sgd->parameters()[0].latent;
    CHECK(std::abs(u[2]) < std::abs(u[1]));
    CHECK(std::abs(u[3]) < std::abs(u[1]));
  }
}

namespace {

// Synthetic Fashion-MNIST-like images: `n` images 1 x S x S, 10 classes; class k is a fixed
// random blob pattern (seeded), each image the pattern with a random shift and noise.
template <class T>
std::pair<Tensor<T>, std::vector<int64_t>> fake_fashion(int64_t n, int64_t S, uint64_t seed) {
  Generator gen(seed);
  std::vector<std::vector<double>> patterns(10, std::vector<double>(size_t(S * S)));
  Generator pattern_gen(12345);
  for (auto& p : patterns)
    for (auto& v : p) v = pattern_gen.uniform() < 0.35 ? 1.0 : 0.0;
  Tensor<T> x = Tensor<T>::empty({n, 1, S, S});
  std::vector<int64_t> y(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    y[size_t(i)] = gen.below(10);
    const int64_t dy = gen.below(3) - 1, dx = gen.below(3) - 1;
    for (int64_t r = 0; r < S; ++r)
      for (int64_t c = 0; c < S; ++c) {
        const int64_t rr = (r + dy + S) % S, cc = (c + dx + S) % S;
        x(i, 0, r, c) = T(patterns[size_t(y[size_t(i)])][size_t(rr * S + cc)] + 0.5 * gen.normal());
      }
  }
  return {x, y};
}

template <class T>
std::shared_ptr<nn::Sequential<T>> small_cnn(uint64_t seed, int64_t S) {
  Generator gen(seed);
  auto net = std::make_shared<nn::Sequential<T>>();
  net->push_back(std::make_shared<nn::Conv2d<T>>(1, 8, 3, nn::Conv2dOptions{.padding = 1}, gen));
  net->push_back(std::make_shared<nn::BatchNorm2d<T>>(8));
  net->push_back(std::make_shared<nn::ReLU<T>>());
  net->push_back(std::make_shared<nn::MaxPool2d<T>>(2));
  net->push_back(std::make_shared<nn::Conv2d<T>>(8, 16, 3, nn::Conv2dOptions{.padding = 1}, gen));
  net->push_back(std::make_shared<nn::BatchNorm2d<T>>(16));
  net->push_back(std::make_shared<nn::ReLU<T>>());
  net->push_back(std::make_shared<nn::MaxPool2d<T>>(2));
  net->push_back(std::make_shared<nn::Flatten<T>>());
  net->push_back(std::make_shared<nn::Linear<T>>(16 * (S / 4) * (S / 4), 10, true, gen));
  return net;
}

// Trains `net` with `opt` for `epochs` over (x, y) in batches; returns the mean loss per epoch.
template <class T, class Opt>
std::vector<double> train(nn::Module<T>& net, Opt& opt, const Tensor<T>& x,
                          const std::vector<int64_t>& y, int64_t batch, int epochs) {
  const int64_t n = x.size(0), steps = n / batch;
  opt.progress().steps_per_epoch = steps;
  std::vector<double> losses;
  for (int e = 0; e < epochs; ++e) {
    double sum = 0;
    for (int64_t b = 0; b < steps; ++b) {
      Tensor<T> xb = x.slice_rows(b * batch, (b + 1) * batch);
      std::vector<int64_t> yb(y.begin() + b * batch, y.begin() + (b + 1) * batch);
      Tensor<T> loss = cross_entropy(net.forward(xb), yb);
      opt.zero_grad();
      loss.backward();
      opt.step();
      sum += double(loss.item());
    }
    losses.push_back(sum / double(steps));
    optim::TrainingProgress p = opt.progress();
    p.epoch = e + 1;
    opt.on_epoch(p);
  }
  return losses;
}

// After training steps: every quantized tensor is ternary (per tensor or per channel), at the
// sparsity the schedule gives for the last projection, within 1/numel.
template <class Opt>
void check_ternary_at_schedule(const Opt& opt, const quant::SparsitySchedule& schedule,
                               bool per_channel) {
  optim::TrainingProgress last = opt.progress();
  last.step -= 1;  // the last projection ran before the step counter moved
  const double s = schedule.at(last);
  int quantized = 0;
  for (const auto& p : opt.parameters()) {
    if (!p.quantized) continue;
    ++quantized;
    auto q = quant::encode(p.name, p.weight, quant::Encoding::ternary, per_channel, 3);
    CHECK(q.levels() == 3);
    CHECK(std::abs(q.sparsity() - s) <= 1.0 / double(p.weight.numel()) + 1e-12);
    CHECK(opt.policy().sparsity(p.name) == doctest::Approx(q.sparsity()));
    // -a and +a: the nonzero codebook entries are opposite.
    for (const auto& book : q.codebooks)
      if (book.size() == 3) CHECK(book[1] == -book[2]);
  }
  CHECK(quantized == 3);  // both convs (stem included by the option) and the classifier
}

}  // namespace

TEST_CASE_TEMPLATE("after training steps the forward weights are ternary at the scheduled sparsity",
                   T, float, double) {
  auto [x, y] = fake_fashion<T>(160, 8, 7);
  const quant::SparsitySchedule schedule{.target = 0.6, .fp_epochs = 1, .ramp_epochs = 2};
  quant::ParameterSelection all{.quantize_first_conv = true};
  SUBCASE("PTQ with SGD") {
    auto net = small_cnn<T>(1, 8);
    optim::SGD<quant::PTQ, T> opt(*net, {.lr = 0.05, .momentum = 0.9},
                                  quant::PTQ({.schedule = schedule, .selection = all}));
    train(*net, opt, x, y, 32, 3);  // 5 steps per epoch; the last projection at 2.8 epochs
    check_ternary_at_schedule(opt, schedule, false);
  }
  SUBCASE("PTQ per channel with AdamW") {
    auto net = small_cnn<T>(2, 8);
    optim::AdamW<quant::PTQ, T> opt(
        *net, {.lr = 1e-3, .weight_decay = 0},
        quant::PTQ({.schedule = schedule, .per_channel = true, .selection = all}));
    train(*net, opt, x, y, 32, 3);
    check_ternary_at_schedule(opt, schedule, true);
  }
  SUBCASE("HQ with SGD") {
    auto net = small_cnn<T>(3, 8);
    optim::SGD<quant::HQ, T> opt(*net, {.lr = 0.05, .momentum = 0.9},
                                 quant::HQ({.schedule = schedule, .selection = all}));
    train(*net, opt, x, y, 32, 3);
    check_ternary_at_schedule(opt, schedule, true);
  }
  SUBCASE("HQ with AdamW, regrow") {
    auto net = small_cnn<T>(4, 8);
    optim::AdamW<quant::HQ, T> opt(
        *net, {.lr = 1e-3, .weight_decay = 0},
        quant::HQ({.schedule = schedule, .reinit = quant::Reinit::regrow, .selection = all}));
    train(*net, opt, x, y, 32, 3);
    check_ternary_at_schedule(opt, schedule, true);
  }
}

TEST_CASE("a small CNN trained with PTQ or HQ on generated Fashion-MNIST-like images learns") {
  auto [x, y] = fake_fashion<float>(2000, 14, 11);
  const quant::SparsitySchedule schedule{.target = 0.7, .ramp_epochs = 1};
  SUBCASE("PTQ, SGD") {
    auto net = small_cnn<float>(5, 14);
    optim::SGD<quant::PTQ> opt(*net, {.lr = 0.05, .momentum = 0.9},
                               quant::PTQ({.schedule = schedule}));
    auto losses = train(*net, opt, x, y, 50, 3);
    MESSAGE("PTQ losses ", losses[0], " ", losses[1], " ", losses[2]);
    CHECK(losses.back() < 0.6 * losses.front());
    CHECK(losses.back() < 1.2);
    CHECK(opt.policy().sparsity() == doctest::Approx(0.7).epsilon(0.01));
  }
  SUBCASE("HQ, SGD") {
    auto net = small_cnn<float>(6, 14);
    optim::SGD<quant::HQ> opt(*net, {.lr = 0.05, .momentum = 0.9},
                              quant::HQ({.schedule = schedule}));
    auto losses = train(*net, opt, x, y, 50, 3);
    MESSAGE("HQ SGD losses ", losses[0], " ", losses[1], " ", losses[2]);
    CHECK(losses.back() < 0.6 * losses.front());
    CHECK(losses.back() < 1.2);
    CHECK(opt.policy().sparsity() == doctest::Approx(0.7).epsilon(0.01));
  }
  SUBCASE("HQ, AdamW") {
    auto net = small_cnn<float>(6, 14);
    optim::AdamW<quant::HQ> opt(*net, {.lr = 3e-3, .weight_decay = 0},
                                quant::HQ({.schedule = schedule}));
    auto losses = train(*net, opt, x, y, 50, 3);
    MESSAGE("HQ AdamW losses ", losses[0], " ", losses[1], " ", losses[2]);
    CHECK(losses.back() < 0.7 * losses.front());
    CHECK(opt.policy().sparsity() == doctest::Approx(0.7).epsilon(0.01));
  }
}

TEST_CASE("bad options throw trit::Error") {
  CHECK_THROWS_AS(quant::PTQ({.schedule = {.target = 1.0}}), Error);
  CHECK_THROWS_AS(quant::PTQ({.schedule = {.fp_epochs = -1}}), Error);
  CHECK_THROWS_AS(quant::PTQ({.refined_decay = -1}), Error);
  CHECK_THROWS_AS(quant::PTQ({.weight_decay = NAN}), Error);
  CHECK_THROWS_AS(quant::HQ({.schedule = {.initial = -0.1}}), Error);
  CHECK_THROWS_AS(quant::HQ({.cosine_weight = -1}), Error);
  // HQ normalises output channels: a quantized rank-1 tensor is refused.
  quant::ParameterSelection force;
  force.add_override({.pattern = "b", .quantize = true});
  auto b = Tensor<float>::ones({3});
  CHECK_THROWS_AS((optim::SGD<quant::HQ>({{"b", b}}, {.lr = 0.1}, quant::HQ({.selection = force}))),
                  Error);
}
