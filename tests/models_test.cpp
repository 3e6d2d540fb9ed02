// The model zoo: parameter counts and state_dict names/shapes identical to torchvision's
// (tests/reference/model_names.txt, from make_models.py), output shapes on small inputs,
// the option-A shortcut's values and gradcheck, block forwards in double against PyTorch
// (tests/reference/models.txt), train/eval reaching every BatchNorm, make_model by name.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <trit/autograd/engine.hpp>
#include <trit/autograd/gradcheck.hpp>
#include <trit/core.hpp>
#include <trit/models.hpp>
#include <trit/ops/loss.hpp>
#include <trit/ops/reduce.hpp>
#include <vector>

#include "reference.hpp"

using trit::Shape;
using trit::Tensor;
using trit::testing::get;
using trit::testing::max_abs_diff;
namespace models = trit::models;
namespace nn = trit::nn;

namespace {

// One model of model_names.txt: parameter count and (name, shape) of each state_dict entry.
struct Listing {
  int64_t parameters = 0;
  std::vector<std::pair<std::string, Shape>> entries;
};

const std::map<std::string, Listing>& listings() {
  static const std::map<std::string, Listing> all = [] {
    std::map<std::string, Listing> out;
    std::ifstream in(std::string(TRIT_TEST_REFERENCE_DIR) + "/model_names.txt");
    REQUIRE(in.good());
    std::string line, key;
    while (std::getline(in, line)) {
      std::istringstream words(line);
      std::string first;
      words >> first;
      if (first == "model") {
        words >> key >> out[key].parameters;
      } else if (first != "end" && !first.empty()) {
        Shape shape;
        int64_t d;
        while (words >> d) shape.push_back(d);
        out[key].entries.emplace_back(first, shape);
      }
    }
    return out;
  }();
  return all;
}

const Listing& listing(const std::string& key) {
  auto it = listings().find(key);
  REQUIRE_MESSAGE(it != listings().end(), key);
  return it->second;
}

// The model's state_dict equals the reference listing entry by entry: same order, names, shapes.
template <class T>
void check_state_dict(const nn::Module<T>& model, const std::string& key) {
  const Listing& want = listing(key);
  auto got = model.state_dict();
  REQUIRE_MESSAGE(got.size() == want.entries.size(), key);
  for (size_t i = 0; i < got.size(); ++i) {
    CHECK_MESSAGE(got[i].first == want.entries[i].first, key, " entry ", i);
    CHECK_MESSAGE(got[i].second.shape() == want.entries[i].second, key, " ", got[i].first);
  }
  CHECK(model.num_parameters() == want.parameters);
}

const auto& ref() {
  static const auto r = trit::testing::load_reference("models.txt");
  return r;
}

// Copies the reference tensors "<prefix>.<name>" into every parameter and buffer except
// num_batches_tracked.
void load(const nn::Module<double>& m, const std::string& prefix) {
  for (auto& [name, t] : m.state_dict()) {
    if (name.find("num_batches_tracked") != std::string::npos) continue;
    Tensor<double> src = get(ref(), prefix + "." + name);
    REQUIRE_MESSAGE(src.shape() == t.shape(), name);
    Tensor<double>(t).copy_from(src);
  }
}

// Eval and train forwards of `block` against PyTorch's.
void check_block(nn::Module<double>& block, const std::string& key) {
  load(block, key);
  Tensor<double> x = get(ref(), key + ".x");
  block.eval();
  CHECK_MESSAGE(max_abs_diff(block.forward(x), get(ref(), key + ".eval")) < 1e-10, key);
  block.train();
  CHECK_MESSAGE(max_abs_diff(block.forward(x), get(ref(), key + ".train")) < 1e-10, key);
}

// Every BatchNorm2d and Dropout under `root` is in the given mode; returns how many there are.
int64_t check_mode(nn::Module<float>& root, bool training) {
  int64_t count = 0;
  models::for_each_module<float>(root, [&](nn::Module<float>& m) {
    if (dynamic_cast<nn::BatchNorm2d<float>*>(&m) || dynamic_cast<nn::Dropout<float>*>(&m)) {
      CHECK(m.is_training() == training);
      ++count;
    }
  });
  return count;
}

Tensor<float> random_input(const Shape& shape) {
  trit::Generator gen(7);
  return Tensor<float>::uniform(shape, -1.f, 1.f, gen);
}

// The shape of `net`'s eval-mode output for a random input of `shape` (eval: a batch of one
// may reach 1x1 feature maps, where training-mode BatchNorm has no statistics).
Shape output_shape(const std::shared_ptr<nn::Module<float>>& net, const Shape& shape) {
  trit::NoGradGuard no_grad;
  net->eval();
  return net->forward(random_input(shape)).shape();
}

}  // namespace

TEST_CASE("parameter counts equal torchvision's and the CIFAR ResNet paper's") {
  CHECK(models::resnet18()->num_parameters() == 11689512);
  CHECK(models::resnet34()->num_parameters() == 21797672);
  CHECK(models::resnet50()->num_parameters() == 25557032);
  CHECK(models::mobilenet_v2()->num_parameters() == 3504872);
  CHECK(models::mobilenet_v2(1000, 0.5)->num_parameters() ==
        listing("mobilenet_v2_w0.5").parameters);
  CHECK(models::mobilenet_v2(10, 0.5, true)->num_parameters() ==
        listing("mobilenet_v2_w0.5_c10").parameters);
  CHECK(models::resnet20(10, 3)->num_parameters() == 269722);
  CHECK(models::resnet20(10, 3, models::CifarShortcut::B)->num_parameters() == 272474);
  CHECK(models::resnet32(10, 3)->num_parameters() == listing("resnet32_A").parameters);
  CHECK(models::resnet32(10, 3, models::CifarShortcut::B)->num_parameters() ==
        listing("resnet32_B").parameters);
  CHECK(models::resnet56(10, 3)->num_parameters() == listing("resnet56_A").parameters);
  CHECK(models::resnet56(10, 3, models::CifarShortcut::B)->num_parameters() ==
        listing("resnet56_B").parameters);
  // The listing's counts come from PyTorch and agree with the published ones.
  CHECK(listing("resnet18").parameters == 11689512);
  CHECK(listing("resnet34").parameters == 21797672);
  CHECK(listing("resnet50").parameters == 25557032);
  CHECK(listing("mobilenet_v2").parameters == 3504872);
  CHECK(listing("resnet20_A").parameters == 269722);
  CHECK(listing("resnet20_B").parameters == 272474);
}

TEST_CASE("state_dict names, order and shapes equal torchvision's") {
  check_state_dict(*models::resnet18(), "resnet18");
  check_state_dict(*models::resnet50(), "resnet50");
  check_state_dict(*models::mobilenet_v2(), "mobilenet_v2");
  check_state_dict(*models::mobilenet_v2(1000, 0.5), "mobilenet_v2_w0.5");
  check_state_dict(*models::resnet20(10, 3), "resnet20_A");
  check_state_dict(*models::resnet20(10, 3, models::CifarShortcut::B), "resnet20_B");
}

TEST_CASE("small_input keeps the names and changes only the stem's shape") {
  auto big = models::resnet18(10)->state_dict();
  auto small = models::resnet18(10, 3, true)->state_dict();
  REQUIRE(big.size() == small.size());
  for (size_t i = 0; i < big.size(); ++i) {
    CHECK(big[i].first == small[i].first);
    if (big[i].first == "conv1.weight") {
      CHECK(small[i].second.shape() == Shape{64, 3, 3, 3});
    } else {
      CHECK(big[i].second.shape() == small[i].second.shape());
    }
  }
  auto m = models::mobilenet_v2(10, 1.0, true)->state_dict();
  auto m_big = models::mobilenet_v2(10, 1.0, false)->state_dict();
  REQUIRE(m.size() == m_big.size());
  for (size_t i = 0; i < m.size(); ++i) CHECK(m[i].second.shape() == m_big[i].second.shape());
}

TEST_CASE("output shapes on small inputs") {
  SUBCASE("resnet18 small input, 32x32 and 28x28 grey") {
    CHECK(output_shape(models::resnet18(10, 3, true), {2, 3, 32, 32}) == Shape{2, 10});
    CHECK(output_shape(models::resnet18(10, 1, true), {2, 1, 28, 28}) == Shape{2, 10});
  }
  SUBCASE("resnet18 and resnet34 ImageNet stem on 64x64 and 32x32") {
    CHECK(output_shape(models::resnet18(5), {1, 3, 64, 64}) == Shape{1, 5});
    CHECK(output_shape(models::resnet34(5), {1, 3, 32, 32}) == Shape{1, 5});
  }
  SUBCASE("resnet50 small input") {
    CHECK(output_shape(models::resnet50(10, 3, true), {1, 3, 16, 16}) == Shape{1, 10});
  }
  SUBCASE("CIFAR ResNets on Fashion-MNIST-sized and CIFAR-sized inputs") {
    CHECK(output_shape(models::resnet20(10, 1), {2, 1, 28, 28}) == Shape{2, 10});
    CHECK(output_shape(models::resnet20(10, 1, models::CifarShortcut::B), {2, 1, 28, 28}) ==
          Shape{2, 10});
    CHECK(output_shape(models::resnet32(100, 3), {2, 3, 32, 32}) == Shape{2, 100});
    CHECK(output_shape(models::resnet56(10, 3), {1, 3, 32, 32}) == Shape{1, 10});
  }
  SUBCASE("mobilenet_v2 small input") {
    CHECK(output_shape(models::mobilenet_v2(10, 0.5, true), {2, 3, 32, 32}) == Shape{2, 10});
    CHECK(output_shape(models::mobilenet_v2(10, 0.5, true, 1), {2, 1, 28, 28}) == Shape{2, 10});
    CHECK(output_shape(models::mobilenet_v2(7, 0.35), {1, 3, 32, 32}) == Shape{1, 7});
  }
}

TEST_CASE("small_input changes exactly the documented strides") {
  trit::NoGradGuard no_grad;
  // features.0 and features.2 run at stride 1; 32x32 leaves features.3 at 32x32 and ends 4x4.
  auto net = models::mobilenet_v2(10, 0.5, true);
  net->eval();
  Tensor<float> h = random_input({1, 3, 32, 32});
  std::vector<int64_t> sides;
  for (int64_t i = 0; i < net->features->size(); ++i) {
    h = (*net->features)[i].forward(h);
    sides.push_back(h.size(2));
  }
  CHECK(sides ==
        std::vector<int64_t>{32, 32, 32, 32, 16, 16, 16, 8, 8, 8, 8, 8, 8, 8, 4, 4, 4, 4, 4});
  // The full-size model halves at features.0, 2, 4, 7 and 14: 64 -> 2.
  auto full = models::mobilenet_v2(10, 0.5, false);
  full->eval();
  h = random_input({1, 3, 64, 64});
  sides.clear();
  for (int64_t i = 0; i < full->features->size(); ++i) {
    h = (*full->features)[i].forward(h);
    sides.push_back(h.size(2));
  }
  CHECK(sides == std::vector<int64_t>{32, 32, 16, 16, 8, 8, 8, 4, 4, 4, 4, 4, 4, 4, 2, 2, 2, 2, 2});
}

TEST_CASE("a training step reaches every parameter") {
  auto net = models::resnet20(10, 1);
  Tensor<float> logits = net->forward(random_input({4, 1, 28, 28}));
  trit::cross_entropy(logits, {0, 1, 2, 3}).backward();
  for (auto& [name, p] : net->named_parameters()) CHECK_MESSAGE(p.grad().defined(), name);
}

TEST_CASE("train() and eval() reach every BatchNorm and Dropout") {
  for (std::string name : {"resnet18", "resnet50", "resnet20", "mobilenet_v2"}) {
    models::ModelConfig config{.name = name, .in_channels = 3, .input_size = 32};
    auto net = models::make_model(config);
    net->eval();
    int64_t count = check_mode(*net, false);
    net->train();
    CHECK(check_mode(*net, true) == count);
    CHECK_MESSAGE(count > 10, name);
  }
}

TEST_CASE("subsample_pad_channels: values and gradcheck") {
  // x [1, 2, 3, 3] = 0..17, O = 5, S = 2: P = 1 zero channel before, 2 after, 2x2 pixels.
  Tensor<double> x = Tensor<double>::arange(18).with_shape({1, 2, 3, 3});
  Tensor<double> y = trit::subsample_pad_channels(x, 5, 2);
  REQUIRE(y.shape() == Shape{1, 5, 2, 2});
  CHECK(y.to_vector() ==
        std::vector<double>{0, 0, 0, 0, 0, 2, 6, 8, 9, 11, 15, 17, 0, 0, 0, 0, 0, 0, 0, 0});
  trit::Generator gen(3);
  for (auto [c, o, s, side] : std::vector<std::array<int64_t, 4>>{
           {2, 4, 2, 5}, {3, 8, 2, 4}, {2, 2, 1, 3}, {1, 4, 3, 7}}) {
    Tensor<double> in = Tensor<double>::randn({2, c, side, side}, gen);
    in.set_requires_grad();
    auto r = trit::gradcheck(
        [o = o, s = s](const std::vector<Tensor<double>>& v) {
          return trit::subsample_pad_channels(v[0], o, s);
        },
        {in});
    CHECK_MESSAGE(r.ok, r.report);
  }
  // Through a whole option-A block.
  auto block = std::make_shared<models::BasicBlock<double>>(
      2, 4, 2, std::make_shared<models::ShortcutA<double>>(2, 4, 2));
  Tensor<double> in = Tensor<double>::randn({2, 2, 5, 5}, gen);
  in.set_requires_grad();
  auto r = trit::gradcheck(
      [&](const std::vector<Tensor<double>>& v) { return block->forward(v[0]); }, {in});
  CHECK_MESSAGE(r.ok, r.report);
}

TEST_CASE("blocks match PyTorch in double, eval and train mode") {
  SUBCASE("BasicBlock with projection") {
    models::BasicBlock<double> block(4, 8, 2, models::make_projection<double>(4, 8, 2));
    check_block(block, "basic");
  }
  SUBCASE("BasicBlock with option-A shortcut") {
    models::BasicBlock<double> block(4, 8, 2, std::make_shared<models::ShortcutA<double>>(4, 8, 2));
    check_block(block, "basic_a");
  }
  SUBCASE("Bottleneck") {
    models::Bottleneck<double> block(8, 4, 2, models::make_projection<double>(8, 16, 2));
    check_block(block, "bottleneck");
  }
  SUBCASE("InvertedResidual with expansion and residual") {
    models::InvertedResidual<double> block(6, 6, 1, 3);
    CHECK(block.use_residual());
    check_block(block, "inverted");
  }
  SUBCASE("InvertedResidual without expansion, stride 2") {
    models::InvertedResidual<double> block(4, 8, 2, 1);
    CHECK(!block.use_residual());
    check_block(block, "inverted_s2");
  }
}

TEST_CASE("make_model builds every model by name, following the dataset") {
  CHECK(models::model_names() ==
        "lenet, mobilenet_v2, resnet18, resnet20, resnet32, resnet34, resnet50, resnet56");
  trit::NoGradGuard no_grad;
  // Fashion-MNIST: 1x28x28, 10 classes; small_input comes on by itself.
  for (std::string name : {"lenet", "resnet20", "resnet18", "mobilenet_v2"}) {
    models::ModelConfig config{.name = name, .num_classes = 10, .in_channels = 1, .input_size = 28};
    auto net = models::make_model(config);
    net->eval();
    CHECK_MESSAGE((net->forward(random_input({2, 1, 28, 28})).shape() == Shape{2, 10}), name);
  }
  models::ModelConfig c{.name = "resnet18", .num_classes = 10, .in_channels = 3, .input_size = 32};
  CHECK(c.use_small_input());
  CHECK(models::make_model(c)->describe() ==
        "resnet18(num_classes=10, in_channels=3, small_input=true)");
  c.input_size = 224;
  CHECK(models::make_model(c)->describe() ==
        "resnet18(num_classes=10, in_channels=3, small_input=false)");
  c.input_size = 32;
  c.small_input = false;  // forced off
  CHECK(models::make_model(c)->describe() ==
        "resnet18(num_classes=10, in_channels=3, small_input=false)");
  c = {.name = "resnet20",
       .num_classes = 10,
       .in_channels = 3,
       .shortcut = models::CifarShortcut::B};
  CHECK(models::make_model(c)->num_parameters() == 272474);
  CHECK(models::make_model(c)->describe() == "resnet20(num_classes=10, in_channels=3, shortcut=B)");
  c = {.name = "mobilenet_v2", .num_classes = 10, .in_channels = 3, .input_size = 32, .width = 0.5};
  CHECK(models::make_model(c)->describe() ==
        "mobilenet_v2(num_classes=10, width_mult=0.5, small_input=true, in_channels=3)");
  CHECK(models::make_model({.name = "resnet50", .num_classes = 10, .in_channels = 3})->describe() ==
        "resnet50(num_classes=10, in_channels=3, small_input=true)");
  CHECK(models::parse_shortcut("b") == models::CifarShortcut::B);
}

TEST_CASE("initialisation follows torchvision") {
  auto net = models::resnet18(10);
  // conv1 [64, 3, 7, 7]: kaiming normal, fan_out = 64 * 49, std sqrt(2 / fan_out).
  const Tensor<float>& w = net->conv1->weight;
  double sum = 0, sq = 0;
  for (int64_t i = 0; i < w.numel(); ++i) sum += w[i], sq += double(w[i]) * w[i];
  double mean = sum / w.numel(), std = std::sqrt(sq / w.numel() - mean * mean);
  CHECK(std == doctest::Approx(std::sqrt(2.0 / (64 * 49))).epsilon(0.05));
  CHECK(std::abs(mean) < 0.005);
  auto mobile = models::mobilenet_v2(10, 0.5);
  auto& fc = dynamic_cast<nn::Linear<float>&>((*mobile->classifier)[1]);
  sq = 0;
  for (int64_t i = 0; i < fc.weight.numel(); ++i) sq += double(fc.weight[i]) * fc.weight[i];
  CHECK(std::sqrt(sq / fc.weight.numel()) == doctest::Approx(0.01).epsilon(0.05));
  CHECK(fc.bias.array().abs().maxCoeff() == 0.f);
  // The same generator seed gives the same weights.
  trit::Generator a(11), b(11);
  auto n1 = models::resnet20<float>(10, 3, models::CifarShortcut::A, a);
  auto n2 = models::resnet20<float>(10, 3, models::CifarShortcut::A, b);
  auto s1 = n1->state_dict(), s2 = n2->state_dict();
  for (size_t i = 0; i < s1.size(); ++i)
    CHECK(s1[i].second.to_vector() == s2[i].second.to_vector());
}

TEST_CASE("make_divisible as torchvision's _make_divisible") {
  CHECK(models::make_divisible(32 * 1.0) == 32);
  CHECK(models::make_divisible(32 * 0.5) == 16);
  CHECK(models::make_divisible(16 * 0.35) == 8);
  CHECK(models::make_divisible(24 * 0.35) == 8);
  CHECK(models::make_divisible(1280 * 1.4) == 1792);
  CHECK(models::make_divisible(96 * 0.75) == 72);
  CHECK(models::make_divisible(320 * 0.35) == 112);
  CHECK(models::make_divisible(20) == 24);  // halfway rounds up
  CHECK(models::make_divisible(9) == 16);   // never below the divisor
}

TEST_CASE("bad arguments raise trit::Error") {
  CHECK_THROWS_AS(models::make_model({.name = "vgg16"}), trit::Error);
  CHECK_THROWS_AS(models::BasicBlock<float>(16, 32, 2), trit::Error);  // needs a downsample
  CHECK_THROWS_AS(models::Bottleneck<float>(64, 64, 1), trit::Error);  // 64 -> 256 needs one
  CHECK_THROWS_AS(models::InvertedResidual<float>(8, 8, 3, 6), trit::Error);
  CHECK_THROWS_AS(models::resnet20(0, 3), trit::Error);
  CHECK_THROWS_AS(models::mobilenet_v2(10, 0.0), trit::Error);
  CHECK_THROWS_AS(models::parse_shortcut("C"), trit::Error);
  CHECK_THROWS_AS(trit::subsample_pad_channels(Tensor<float>::zeros({1, 4, 4, 4}), 2, 2),
                  trit::Error);
  CHECK_THROWS_AS(trit::subsample_pad_channels(Tensor<float>::zeros({4, 4}), 8, 2), trit::Error);
  CHECK_THROWS_AS(models::ShortcutA<float>(4, 8, 2).forward(Tensor<float>::zeros({1, 3, 4, 4})),
                  trit::Error);
  // Wrong input channels name the model and the shape.
  auto net = models::resnet20(10, 1);
  try {
    net->forward(Tensor<float>::zeros({1, 3, 28, 28}));
    FAIL("no error");
  } catch (const trit::Error& e) {
    CHECK(std::string(e.what()).find("resnet20") != std::string::npos);
    CHECK(std::string(e.what()).find("[1, 3, 28, 28]") != std::string::npos);
  }
  CHECK_THROWS_AS(models::resnet18(10, 3, true)->forward(Tensor<float>::zeros({1, 1, 32, 32})),
                  trit::Error);
  CHECK_THROWS_AS(models::mobilenet_v2(10, 0.5, true)->forward(Tensor<float>::zeros({3, 32, 32})),
                  trit::Error);
}
