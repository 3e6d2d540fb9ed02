// nn layers: forward values against PyTorch with the reference file's weights, state_dict
// names and order, train/eval behaviour, descriptions, default initialisation, and a flat
// memory profile over a training run.
#include <doctest/doctest.h>

#include "process_memory.hpp"

#include <cmath>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <trit/core.hpp>
#include <trit/nn.hpp>
#include <trit/ops/loss.hpp>
#include <trit/optim.hpp>

#include "reference.hpp"

using trit::Tensor;
using trit::testing::get;
using trit::testing::max_abs_diff;
namespace nn = trit::nn;

namespace {

const auto& ref() {
  static const auto r = trit::testing::load_reference("nn.txt");
  return r;
}

// Copies the reference tensors "<prefix>.<state_dict key>" into the module, checking shapes.
void load(const nn::Module<double>& m, const std::string& prefix) {
  for (auto& [name, t] : m.state_dict()) {
    Tensor<double> src = get(ref(), prefix + "." + name);
    REQUIRE_MESSAGE(src.shape() == t.shape(), name);
    Tensor<double>(t).copy_from(src);
  }
}


std::vector<std::string> names(const nn::Module<double>::NamedTensors& list) {
  std::vector<std::string> out;
  for (auto& [name, t] : list) out.push_back(name);
  return out;
}

}  // namespace

TEST_CASE("Linear and Conv2d match PyTorch") {
  nn::Linear<double> lin(5, 3);
  load(lin, "linear");
  CHECK(max_abs_diff(lin(get(ref(), "linear.x")), get(ref(), "linear.y")) < 1e-12);
  CHECK(names(lin.named_parameters()) == std::vector<std::string>{"weight", "bias"});

  nn::Conv2d<double> conv(4, 6, 3, {.stride = 2, .padding = 1});
  load(conv, "conv");
  CHECK(max_abs_diff(conv(get(ref(), "conv.x")), get(ref(), "conv.y")) < 1e-12);

  nn::Conv2d<double> gconv(4, 6, 3, {.padding = 2, .dilation = 2, .groups = 2, .bias = false});
  CHECK(gconv.weight.shape() == trit::Shape{6, 2, 3, 3});
  CHECK_FALSE(gconv.bias.defined());
  CHECK(names(gconv.named_parameters()) == std::vector<std::string>{"weight"});
  load(gconv, "gconv");
  CHECK(max_abs_diff(gconv(get(ref(), "conv.x")), get(ref(), "gconv.y")) < 1e-12);

  nn::Linear<double> nobias(5, 3, false);
  CHECK(nobias.num_parameters() == 15);
}

TEST_CASE("BatchNorm2d trains running statistics and evaluates with them, as PyTorch") {
  nn::BatchNorm2d<double> bn(3, 1e-5, 0.2);
  CHECK(names(bn.state_dict()) == std::vector<std::string>{"weight", "bias", "running_mean",
                                                           "running_var", "num_batches_tracked"});
  CHECK(names(bn.named_buffers()) ==
        std::vector<std::string>{"running_mean", "running_var", "num_batches_tracked"});
  CHECK(bn.weight.to_vector() == std::vector<double>{1, 1, 1});
  CHECK(bn.bias.to_vector() == std::vector<double>{0, 0, 0});
  CHECK(bn.running_mean.to_vector() == std::vector<double>{0, 0, 0});
  CHECK(bn.running_var.to_vector() == std::vector<double>{1, 1, 1});
  CHECK(bn.num_batches_tracked.numel() == 1);
  CHECK(bn.num_batches_tracked.item() == 0);
  bn.weight.copy_from(get(ref(), "bn.weight"));
  bn.bias.copy_from(get(ref(), "bn.bias"));

  CHECK(bn.is_training());
  CHECK(max_abs_diff(bn(get(ref(), "bn.x1")), get(ref(), "bn.y1")) < 1e-12);
  CHECK(max_abs_diff(bn(get(ref(), "bn.x2")), get(ref(), "bn.y2")) < 1e-12);
  CHECK(max_abs_diff(bn.running_mean, get(ref(), "bn.running_mean")) < 1e-12);
  CHECK(max_abs_diff(bn.running_var, get(ref(), "bn.running_var")) < 1e-12);
  CHECK(bn.num_batches_tracked.item() == get(ref(), "bn.num_batches_tracked").item());
  CHECK(bn.num_batches_tracked.item() == 2);

  bn.eval();
  Tensor<double> mean_before = bn.running_mean.clone();
  CHECK(max_abs_diff(bn(get(ref(), "bn.x1")), get(ref(), "bn.y_eval")) < 1e-12);
  CHECK(max_abs_diff(bn.running_mean, mean_before.to<double>()) == 0);  // eval: untouched
  CHECK(bn.num_batches_tracked.item() == 2);

  CHECK_THROWS_AS(nn::BatchNorm2d<double>(0), trit::Error);
  CHECK_THROWS_AS(nn::BatchNorm2d<double>(3, -1.0), trit::Error);
  CHECK_THROWS_AS(bn(Tensor<double>::zeros({2, 4, 3, 3})), trit::Error);  // 4 channels, not 3
}

TEST_CASE("activations, pooling and Flatten match PyTorch") {
  Tensor<double> x = get(ref(), "act.x");
  CHECK(max_abs_diff(nn::ReLU<double>()(x), get(ref(), "act.relu")) < 1e-15);
  CHECK(max_abs_diff(nn::ReLU6<double>()(x), get(ref(), "act.relu6")) < 1e-15);
  CHECK(max_abs_diff(nn::LeakyReLU<double>(0.2)(x), get(ref(), "act.leaky_relu")) < 1e-15);
  CHECK(max_abs_diff(nn::Sigmoid<double>()(x), get(ref(), "act.sigmoid")) < 1e-14);
  CHECK(max_abs_diff(nn::Tanh<double>()(x), get(ref(), "act.tanh")) < 1e-14);
  CHECK(max_abs_diff(nn::Identity<double>()(x), x) == 0);

  Tensor<double> p = get(ref(), "pool.x");
  CHECK(max_abs_diff(nn::MaxPool2d<double>(3, 2, 1)(p), get(ref(), "pool.max")) < 1e-15);
  CHECK(max_abs_diff(nn::AvgPool2d<double>(2)(p), get(ref(), "pool.avg")) < 1e-14);
  CHECK(max_abs_diff(nn::AdaptiveAvgPool2d<double>(3, 2)(p), get(ref(), "pool.adaptive")) < 1e-14);
  CHECK(max_abs_diff(nn::Flatten<double>()(p), get(ref(), "pool.flatten")) == 0);
  CHECK(nn::AdaptiveAvgPool2d<double>(1)(p).shape() == trit::Shape{2, 3, 1, 1});
}

namespace {

// Conv2d(3, 8, 3, padding 1, no bias), BatchNorm2d(8), ReLU, MaxPool2d(2), Flatten,
// Linear(128, 5): the reference file's "seq" network.
std::shared_ptr<nn::Sequential<double>> small_net() {
  auto net = std::make_shared<nn::Sequential<double>>(
      std::make_shared<nn::Conv2d<double>>(3, 8, 3, nn::Conv2dOptions{.padding = 1, .bias = false}),
      std::make_shared<nn::BatchNorm2d<double>>(8), std::make_shared<nn::ReLU<double>>(),
      std::make_shared<nn::MaxPool2d<double>>(2));
  net->push_back(std::make_shared<nn::Flatten<double>>());
  net->push_back(std::make_shared<nn::Linear<double>>(128, 5));
  return net;
}

}  // namespace

TEST_CASE("a Sequential has PyTorch's state_dict keys, forward and gradients") {
  auto net = small_net();
  CHECK(names(net->state_dict()) ==
        std::vector<std::string>{"0.weight", "1.weight", "1.bias", "1.running_mean",
                                 "1.running_var", "1.num_batches_tracked", "5.weight", "5.bias"});
  CHECK(names(net->named_parameters()) ==
        std::vector<std::string>{"0.weight", "1.weight", "1.bias", "5.weight", "5.bias"});
  CHECK(net->num_parameters() == 877);  // PyTorch's sum(p.numel())
  CHECK(net->size() == 6);
  CHECK((*net)[5].describe() == "Linear(in_features=128, out_features=5, bias=True)");
  load(*net, "seq");

  Tensor<double> x = get(ref(), "seq.x");
  Tensor<double> y = (*net)(x);
  CHECK(max_abs_diff(y, get(ref(), "seq.y_train")) < 1e-12);
  trit::cross_entropy(y, {0, 1, 2, 3, 4, 0}).backward();
  for (auto& [name, param] : net->named_parameters()) {
    CAPTURE(name);
    REQUIRE(param.grad().defined());
    CHECK(max_abs_diff(param.grad(), get(ref(), "seq.grad." + name)) < 1e-12);
  }
  for (auto& [name, buffer] : net->named_buffers()) {
    CAPTURE(name);
    CHECK(max_abs_diff(buffer, get(ref(), "seq.after." + name)) < 1e-12);
  }
  net->eval();
  CHECK_FALSE((*net)[1].is_training());
  CHECK(max_abs_diff((*net)(x), get(ref(), "seq.y_eval")) < 1e-12);
  // forward_range runs a prefix: conv, then BatchNorm2d + ReLU (fused), then the rest
  Tensor<double> h = net->forward_range(x, 0, 3);
  CHECK(max_abs_diff(net->forward_range(h, 3, net->size()), get(ref(), "seq.y_eval")) < 1e-12);
  CHECK(max_abs_diff(h, (*net)[2].forward((*net)[1].forward((*net)[0].forward(x)))) < 1e-12);
  CHECK_THROWS_AS(net->forward_range(x, 2, 1), trit::Error);
  CHECK_THROWS_AS(net->forward_range(x, 0, 7), trit::Error);

  // Handles are shared: writing through state_dict() is seen by the layer.
  auto conv = std::dynamic_pointer_cast<nn::Conv2d<double>>(net->children()[0].second);
  REQUIRE(conv);
  CHECK(conv->weight.same_as(net->state_dict()[0].second));

  nn::Sequential<double> named;
  named.push_back("features", std::make_shared<nn::Identity<double>>());
  named.push_back(std::make_shared<nn::ReLU<double>>());
  CHECK(named.children()[1].first == "1");
  CHECK_THROWS_AS(named.push_back("features", std::make_shared<nn::ReLU<double>>()), trit::Error);
  CHECK_THROWS_AS(named[2], trit::Error);
}

TEST_CASE("describe() and to_string() read like PyTorch") {
  CHECK(nn::Conv2d<>(3, 16, 3, {.padding = 1, .bias = false}).describe() ==
        "Conv2d(3, 16, kernel_size=3, stride=1, padding=1, bias=False)");
  CHECK(nn::Conv2d<>(8, 8, 3, {.stride = 2, .dilation = 2, .groups = 8}).describe() ==
        "Conv2d(8, 8, kernel_size=3, stride=2, padding=0, dilation=2, groups=8)");
  CHECK(nn::BatchNorm2d<>(16).describe() == "BatchNorm2d(16, eps=1e-05, momentum=0.1)");
  CHECK(nn::LeakyReLU<>(0.2).describe() == "LeakyReLU(negative_slope=0.2)");
  CHECK(nn::MaxPool2d<>(2).describe() == "MaxPool2d(kernel_size=2, stride=2, padding=0)");
  CHECK(nn::AvgPool2d<>(3, 1, 1).describe() == "AvgPool2d(kernel_size=3, stride=1, padding=1)");
  CHECK(nn::AdaptiveAvgPool2d<>(1).describe() == "AdaptiveAvgPool2d(output_size=(1, 1))");
  CHECK(nn::Flatten<>().describe() == "Flatten(start_dim=1, end_dim=-1)");
  CHECK(nn::Dropout<>(0.25).describe() == "Dropout(p=0.25)");
  CHECK(nn::Identity<>().describe() == "Identity()");
  CHECK(small_net()->to_string() ==
        "Sequential  [877 params]\n"
        "  (0): Conv2d(3, 8, kernel_size=3, stride=1, padding=1, bias=False)  [216 params]\n"
        "  (1): BatchNorm2d(8, eps=1e-05, momentum=0.1)  [16 params]\n"
        "  (2): ReLU()\n"
        "  (3): MaxPool2d(kernel_size=2, stride=2, padding=0)\n"
        "  (4): Flatten(start_dim=1, end_dim=-1)\n"
        "  (5): Linear(in_features=128, out_features=5, bias=True)  [645 params]\n"
        "total parameters: 877\n");
}

TEST_CASE("Dropout drops in training only") {
  trit::Generator gen(7);
  nn::Sequential<double> net(std::make_shared<nn::Dropout<double>>(0.5, gen));
  Tensor<double> x = Tensor<double>::ones({1000});
  Tensor<double> y = net(x);
  int64_t zeros = 0;
  for (int64_t i = 0; i < y.numel(); ++i) {
    CHECK((y[i] == 0.0 || y[i] == 2.0));
    zeros += y[i] == 0.0;
  }
  CHECK(zeros > 400);
  CHECK(zeros < 600);
  net.eval();
  CHECK(max_abs_diff(net(x), x) == 0);
  CHECK_THROWS_AS(nn::Dropout<double>(1.5), trit::Error);
  CHECK_THROWS_AS(nn::Dropout<double>(-0.1), trit::Error);
}

TEST_CASE("default initialisation is PyTorch's kaiming_uniform(a = sqrt(5)) and reproducible") {
  trit::Generator gen(42);
  nn::Conv2d<double> conv(16, 32, 3, {}, gen);  // fan_in = 16 * 9 = 144: bound 1/12
  const double bound = 1.0 / 12.0;
  auto w = conv.weight.array();
  CHECK(w.abs().maxCoeff() <= bound);
  CHECK(w.abs().maxCoeff() > 0.99 * bound);
  CHECK(std::abs(w.mean()) < 0.01 * bound * 10);
  double var = (w - w.mean()).square().mean();
  CHECK(var == doctest::Approx(bound * bound / 3).epsilon(0.05));  // uniform(-b, b): b^2/3
  CHECK(conv.bias.array().abs().maxCoeff() <= bound);
  CHECK(conv.bias.array().abs().maxCoeff() > 0.5 * bound);

  nn::Linear<double> lin(100, 50, true, gen);  // bound 1/10
  CHECK(lin.weight.array().abs().maxCoeff() <= 0.1);
  CHECK(lin.weight.array().abs().maxCoeff() > 0.099);

  trit::Generator a(3), b(3);
  nn::Linear<float> l1(8, 4, true, a), l2(8, 4, true, b);
  CHECK(l1.weight.to_vector() == l2.weight.to_vector());
  CHECK(l1.bias.to_vector() == l2.bias.to_vector());

  Tensor<double> k = Tensor<double>::empty({64, 32, 3, 3});
  nn::init::kaiming_normal_(k, 0.0, nn::init::FanMode::fan_out, gen);  // std sqrt(2 / 576)
  double std_k = std::sqrt((k.array() - k.array().mean()).square().mean());
  CHECK(std_k == doctest::Approx(std::sqrt(2.0 / 576)).epsilon(0.03));
  CHECK_THROWS_AS(nn::init::fan(Tensor<double>::empty({5}), nn::init::FanMode::fan_in),
                  trit::Error);
}

TEST_CASE("bad layer arguments throw trit::Error") {
  CHECK_THROWS_AS(nn::Conv2d<>(3, 8, 0), trit::Error);
  CHECK_THROWS_AS(nn::Conv2d<>(3, 8, 3, {.groups = 2}), trit::Error);
  CHECK_THROWS_AS(nn::Conv2d<>(3, 8, 3, {.stride = 0}), trit::Error);
  CHECK_THROWS_AS(nn::Linear<>(0, 4), trit::Error);
  CHECK_THROWS_AS(nn::MaxPool2d<>(0), trit::Error);
  CHECK_THROWS_AS(nn::AdaptiveAvgPool2d<>(0), trit::Error);
  nn::Conv2d<> conv(3, 8, 3);
  CHECK_THROWS_AS(conv(Tensor<float>::zeros({1, 4, 8, 8})), trit::Error);  // 4 channels, not 3
  nn::Linear<> lin(5, 2);
  CHECK_THROWS_AS(lin(Tensor<float>::zeros({2, 6})), trit::Error);
}

TEST_CASE("200 training steps of a conv net with SGD momentum keep memory flat") {
  trit::Generator gen(1);
  nn::Sequential<float> net(
      std::make_shared<nn::Conv2d<float>>(3, 8, 3, nn::Conv2dOptions{.padding = 1}, gen),
      std::make_shared<nn::BatchNorm2d<float>>(8), std::make_shared<nn::ReLU<float>>(),
      std::make_shared<nn::MaxPool2d<float>>(2), std::make_shared<nn::Flatten<float>>(),
      std::make_shared<nn::Linear<float>>(8 * 8 * 8, 10, true, gen));
  trit::optim::SGD<> sgd(net, {.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-4});
  Tensor<float> x = Tensor<float>::randn({16, 3, 16, 16}, gen);
  std::vector<int64_t> targets;
  for (int i = 0; i < 16; ++i) targets.push_back(i % 10);
  float first_loss = 0, loss_value = 0;
  auto step = [&] {
    sgd.zero_grad();
    Tensor<float> loss = trit::cross_entropy(net(x), targets);
    loss.backward();
    sgd.step();
    loss_value = loss.item();
  };
  step();
  first_loss = loss_value;
  for (int i = 0; i < 20; ++i) step();  // warm up the allocator
  long before = trit::testing::resident_kib();
  for (int i = 0; i < 200; ++i) step();
  long after = trit::testing::resident_kib();
  // One step's graph holds ~1 MiB of activations; leaking it would add ~200 MiB.
  if (trit::testing::kResidentMemoryIsMeaningful) {
    CHECK(after - before < 8 * 1024);
  } else {
    MESSAGE("resident-memory check skipped under AddressSanitizer (LeakSanitizer covers leaks)");
  }
  CHECK(loss_value < 0.5f * first_loss);  // and it learned the fixed batch
}
