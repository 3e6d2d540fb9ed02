// Forward parity with PyTorch: weights saved from PyTorch models' state_dict() (random
// weights and BN running statistics, eval mode; tests/reference/make_interop.py) load into
// trit's models by name and give the same logits on the same inputs:
//   resnet20 (CIFAR ResNet, shortcut A), mobilenet_v2 (torchvision, width 0.25, K = 10) as is
//   and with trit's small_input strides.
// In float, |trit - PyTorch| < 1e-4 (the logits were computed by PyTorch in float64); in
// double, trit matches to 1e-9, which only the same structure computed the same way can do.
// ResNet-18/50 weights are too big to commit: trit must write exactly the safetensors header
// torchvision's state_dict() gives (names, order, shapes, dtypes, offsets).
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <unistd.h>

#include <trit/autograd/grad_mode.hpp>
#include <trit/io.hpp>
#include <trit/models.hpp>

#include "reference.hpp"

using trit::Tensor;
namespace io = trit::io;
namespace models = trit::models;

namespace {

std::string interop(const std::string& file) {
  return std::string(TRIT_TEST_REFERENCE_DIR) + "/interop/" + file;
}

const auto& reference() {
  static const auto ref = trit::testing::load_reference("interop.txt");
  return ref;
}

// The tensor `name` of the safetensors file `file` in tests/reference/interop/.
Tensor<float> stored(const std::string& file, const std::string& name) {
  io::SafetensorsFile f = io::load_safetensors(interop(file));
  const Tensor<float>* t = f.find(name);
  REQUIRE_MESSAGE(t != nullptr, file, " has no tensor ", name);
  return *t;
}

template <class T>
Tensor<T> eval_forward(trit::nn::Module<T>& model, const Tensor<T>& x) {
  model.eval();
  trit::NoGradGuard no_grad;
  return model(x);
}

// `model` (float, weights loaded) copied into `twin` (the same model in double).
void copy_weights(const trit::nn::Module<float>& model, trit::nn::Module<double>& twin) {
  auto from = model.state_dict();
  auto to = twin.state_dict();
  REQUIRE(from.size() == to.size());
  for (size_t i = 0; i < from.size(); ++i) {
    REQUIRE(from[i].first == to[i].first);
    to[i].second.copy_from(from[i].second.to<double>());
  }
}

// Builds `config`, loads <key>.safetensors strictly, and checks the float logits against
// <key>_io.safetensors[logits_key] and the double twin's against interop.txt.
void check_parity(const models::ModelConfig& config, const std::string& key,
                  const std::string& logits_key,
                  std::shared_ptr<trit::nn::Module<double>> twin) {
  auto model = models::make_model(config);
  io::LoadReport report = io::load_weights(*model, interop(key + ".safetensors"));
  CHECK(report.complete());
  CHECK(report.loaded == static_cast<int64_t>(model->state_dict().size()));

  const Tensor<float> x = stored(key + "_io.safetensors", "input");
  const Tensor<float> expected = stored(key + "_io.safetensors", logits_key);
  const Tensor<float> logits = eval_forward(*model, x);
  REQUIRE(logits.shape() == expected.shape());
  const double diff = trit::testing::max_abs_diff(logits, expected.to<double>());
  MESSAGE(key, " ", logits_key, " float: max |trit - PyTorch| = ", diff);
  CHECK(diff < 1e-4);

  copy_weights(*model, *twin);
  const Tensor<double> logits64 = eval_forward(*twin, x.to<double>());
  const double diff64 = trit::testing::max_abs_diff(
      logits64, trit::testing::get(reference(), key + "." + logits_key));
  MESSAGE(key, " ", logits_key, " double: max |trit - PyTorch| = ", diff64);
  CHECK(diff64 < 1e-9);
}

std::string file_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot open ", path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A fresh path in the temp directory, removed when the test ends.
struct TempPath {
  std::string path;
  explicit TempPath(const std::string& name)
      : path("/tmp/trit_models_parity_test_" + std::to_string(::getpid()) + "_" + name) {}
  ~TempPath() { std::remove(path.c_str()); }
};

}  // namespace

TEST_CASE("resnet20 (shortcut A) from a PyTorch state_dict: same logits") {
  models::ModelConfig config{.name = "resnet20", .num_classes = 10, .in_channels = 3,
                             .input_size = 32};
  check_parity(config, "resnet20", "logits", models::resnet20<double>(10, 3));
}

TEST_CASE("mobilenet_v2 (width 0.25) from a torchvision state_dict: same logits") {
  models::ModelConfig config{.name = "mobilenet_v2", .num_classes = 10, .in_channels = 3,
                             .input_size = 32, .width = 0.25, .small_input = false};
  check_parity(config, "mobilenet_v2", "logits",
               models::mobilenet_v2<double>(10, 0.25, /*small_input=*/false, 3));
}

TEST_CASE("mobilenet_v2 small_input: the same weights with stride-1 stem, same logits") {
  models::ModelConfig config{.name = "mobilenet_v2", .num_classes = 10, .in_channels = 3,
                             .input_size = 32, .width = 0.25, .small_input = true};
  check_parity(config, "mobilenet_v2", "logits_small_input",
               models::mobilenet_v2<double>(10, 0.25, /*small_input=*/true, 3));
}

TEST_CASE("BN's int64 num_batches_tracked loads as its count") {
  auto model = models::make_model({.name = "resnet20", .num_classes = 10, .in_channels = 3});
  io::load_weights(*model, interop("resnet20.safetensors"));
  const Tensor<float> stored_count = stored("resnet20.safetensors", "bn1.num_batches_tracked");
  for (auto& [name, t] : model->state_dict())
    if (name == "bn1.num_batches_tracked") {
      CHECK(t.item() == stored_count.item());
      CHECK(t.item() >= 1.0f);
    }
}

TEST_CASE("resnet18 and resnet50: trit writes torchvision's state_dict as a header") {
  for (const char* name : {"resnet18", "resnet50"}) {
    CAPTURE(name);
    auto model = models::make_model(
        {.name = name, .num_classes = 10, .in_channels = 3, .input_size = 224, .small_input = false});
    const std::string header = io::safetensors_header(model->state_dict(), {{"model", name}}, name);
    CHECK(header == file_text(interop(std::string(name) + "_header.json")));
  }
}

TEST_CASE("save_weights then load_weights reproduces the logits exactly") {
  auto model = models::make_model({.name = "mobilenet_v2", .num_classes = 10, .in_channels = 3,
                                   .input_size = 32, .width = 0.25});
  io::load_weights(*model, interop("mobilenet_v2.safetensors"));
  TempPath file("mobilenet_v2.safetensors");
  io::save_weights(*model, file.path, {{"model", "mobilenet_v2"}});
  auto copy = models::make_model({.name = "mobilenet_v2", .num_classes = 10, .in_channels = 3,
                                  .input_size = 32, .width = 0.25});
  io::load_weights(*copy, file.path);
  const Tensor<float> x = stored("mobilenet_v2_io.safetensors", "input");
  CHECK(eval_forward(*model, x).to_vector() == eval_forward(*copy, x).to_vector());
}

TEST_CASE("weights of another architecture: the error lists what differs") {
  // resnet20 weights into resnet20 with projection shortcuts (option B): the projections'
  // tensors are missing from the file.
  auto b = models::make_model({.name = "resnet20", .num_classes = 10, .in_channels = 3,
                               .shortcut = models::CifarShortcut::B});
  std::string message;
  try {
    io::load_weights(*b, interop("resnet20.safetensors"));
  } catch (const trit::Error& e) {
    message = e.what();
  }
  INFO(message);
  CHECK(message.find("resnet20.safetensors: weights do not match the model; missing in file: "
                     "layer2.0.downsample.0.weight, layer2.0.downsample.1.weight,") !=
        std::string::npos);
  CHECK(message.find("layer3.0.downsample.1.num_batches_tracked") != std::string::npos);
  CHECK(message.find("unexpected") == std::string::npos);

  // 100 classes instead of 10: the classifier is mis-shaped; not strict, the rest loads.
  auto wide = models::make_model({.name = "resnet20", .num_classes = 100, .in_channels = 3});
  io::LoadReport report = io::load_weights(*wide, interop("resnet20.safetensors"), false);
  CHECK(report.mismatched == std::vector<std::string>{"fc.weight: file [10, 64] vs model [100, 64]",
                                                      "fc.bias: file [10] vs model [100]"});
  CHECK(report.missing.empty());
  CHECK(report.loaded == static_cast<int64_t>(wide->state_dict().size()) - 2);
}
