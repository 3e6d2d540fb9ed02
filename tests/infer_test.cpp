// Inference on compressed weights: the multiplication-free ternary / power-of-two kernels,
// BatchNorm folding, and whole networks (ResNet-20, LeNet) rebuilt from codes, checked against
// the dense trit models in eval mode (themselves checked against PyTorch in
// models_parity_test) on identical weights.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>

#include <unistd.h>
#include <vector>

#include <trit/infer/compressed_model.hpp>
#include <trit/models.hpp>
#include <trit/optim/sgd.hpp>
#include <trit/quant/focused_pow2.hpp>
#include <trit/quant/ptq.hpp>
#include <trit/ops.hpp>
#include <trit/quant/codes.hpp>
#include <trit/quant/ternary.hpp>

using namespace trit;

namespace {

// max |a - b| / max |b|
double relative_error(const Tensor<float>& a, const Tensor<float>& b) {
  REQUIRE(a.shape() == b.shape());
  double diff = 0, scale = 1e-12;
  for (int64_t i = 0; i < a.numel(); ++i) {
    diff = std::max(diff, std::abs(double(a[i]) - double(b[i])));
    scale = std::max(scale, std::abs(double(b[i])));
  }
  return diff / scale;
}

// Random codes for W[O, K] with the given share of zeros, levels 1..L-1.
std::vector<uint8_t> random_codes(int64_t n, int levels, double sparsity, Generator& gen) {
  std::vector<uint8_t> codes(static_cast<size_t>(n));
  Tensor<float> u = Tensor<float>::uniform({n}, 0.0f, 1.0f, gen);
  for (int64_t i = 0; i < n; ++i) {
    const double r = u[i];
    codes[size_t(i)] =
        r < sparsity ? 0 : uint8_t(1 + std::min<int>(levels - 2, int((r - sparsity) / (1 - sparsity) * (levels - 1))));
  }
  return codes;
}

// A quantized weight of `shape` with random codes: ternary {0, +a, -a} per output channel, or
// power-of-two {0, ±s/2, ±s/4, ±s/8, +s} (one unpaired level) for the whole tensor.
quant::QuantizedTensor random_quantized(const std::string& name, const Shape& shape,
                                        quant::Encoding enc, double sparsity, Generator& gen) {
  quant::QuantizedTensor q;
  q.name = name, q.shape = shape, q.encoding = enc;
  const int64_t O = shape[0];
  if (enc == quant::Encoding::ternary) {
    q.groups = O;
    Tensor<float> a = Tensor<float>::uniform({O}, 0.05f, 0.5f, gen);
    for (int64_t o = 0; o < O; ++o) q.codebooks.push_back({0.0f, a[o], -a[o]});
    q.codes = random_codes(numel_of(shape), 3, sparsity, gen);
  } else {
    q.groups = 1;
    const float s = 0.3f;
    q.codebooks.push_back({0.0f, s / 2, -s / 2, s / 4, -s / 4, s / 8, -s / 8, s});
    q.codes = random_codes(numel_of(shape), 8, sparsity, gen);
  }
  return q;
}

// Makes every selected weight of `model` ternary (per-channel least-squares scales at the given
// sparsity, as quant::PTQ projects), writes it into the model, and returns the codes read off
// the forward weights with quant::encode.
std::vector<quant::QuantizedTensor> ternarize(nn::Module<float>& model, double sparsity,
                                              bool (*selected)(const std::string&)) {
  std::vector<quant::QuantizedTensor> out;
  for (auto& [name, w] : model.named_parameters()) {
    if (!selected(name)) continue;
    const int64_t groups = w.size(0);
    auto mask = quant::magnitude_mask(w, groups, sparsity);
    auto scales = quant::least_squares_scales(w, mask, groups);
    quant::project_ternary(w, mask, scales, w);  // in place: the model now computes with it
    out.push_back(quant::encode(name, w, quant::Encoding::ternary, true, 3));
  }
  return out;
}

// Random eval-mode statistics and affine parameters for every BatchNorm of `model` (the
// modules with a running_mean).
void randomise_batch_norms(nn::Module<float>& model, Generator& gen) {
  auto state = model.state_dict();
  for (auto& [name, t] : state) {
    const std::string suffix = ".running_mean";
    if (name.size() < suffix.size() ||
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    const std::string bn = name.substr(0, name.size() - suffix.size());
    auto set = [&](const std::string& field, float lo, float hi) {
      auto it = std::find_if(state.begin(), state.end(),
                             [&](const auto& kv) { return kv.first == bn + field; });
      REQUIRE(it != state.end());
      Tensor<float> v = it->second;
      v.copy_from(Tensor<float>::uniform(v.shape(), lo, hi, gen));
    };
    set(".weight", 0.5f, 1.5f);
    set(".bias", -0.2f, 0.2f);
    set(".running_mean", -0.2f, 0.2f);
    set(".running_var", 0.5f, 1.5f);
  }
}

bool all_but_fc(const std::string& n) { return n.find("conv") != std::string::npos || n.find("downsample.0") != std::string::npos; }
bool inner_convs(const std::string& n) {
  return n != "conv1.weight" && (n.find("conv") != std::string::npos || n.find("downsample.0") != std::string::npos);
}
bool lenet_weights(const std::string& n) { return n.find(".weight") != std::string::npos; }

// A conv layer of either form from a quantized weight [O, C/G, k, k] in G groups.
infer::ConvLayer conv_layer(const quant::QuantizedTensor& q, int64_t stride, int64_t padding,
                            infer::WeightForm form, std::vector<float> bias, bool relu,
                            int64_t groups = 1) {
  infer::ConvLayer c;
  c.O = q.shape[0], c.C = q.shape[1] * groups, c.KH = q.shape[2], c.KW = q.shape[3];
  c.stride = stride, c.padding = padding, c.relu = relu, c.groups = groups;
  const int64_t K = q.shape[1] * c.KH * c.KW;
  c.weight = form == infer::WeightForm::compressed
                 ? infer::MatrixWeights::compressed(kernels::pack_signed_terms(c.O, K, q.codes.data(), q.codebooks), groups)
                 : infer::MatrixWeights::dense(c.O, K, q.expand().to_vector(), groups);
  c.bias = std::move(bias);
  return c;
}

}  // namespace

TEST_CASE("signed terms: packing keeps every weight, zeros cost nothing") {
  Generator gen(3);
  for (auto enc : {quant::Encoding::ternary, quant::Encoding::power_of_two}) {
    auto q = random_quantized("w", {6, 37}, enc, 0.7, gen);
    auto w = kernels::pack_signed_terms(6, 37, q.codes.data(), q.codebooks);
    CHECK(w.expand() == q.expand().to_vector());
    CHECK(w.nonzeros() == int64_t(std::count_if(q.codes.begin(), q.codes.end(), [](uint8_t c) { return c != 0; })));
    // ternary: one term per row; pow2: 4 magnitudes (s, s/2, s/4, s/8) per row
    CHECK(w.terms() == 6 * (enc == quant::Encoding::ternary ? 1 : 4));
  }
  std::vector<uint8_t> bad = {0, 3};
  CHECK_THROWS_AS(kernels::pack_signed_terms(1, 2, bad.data(), {{0.0f, 1.0f}}), Error);
  CHECK_THROWS_AS(kernels::pack_signed_terms(3, 2, bad.data(), {{0.0f}, {0.0f}}), Error);
}

TEST_CASE("ternary and power-of-two conv equal the dense conv (stride, padding, tails)") {
  Generator gen(5);
  struct Case { int64_t N, C, O, H, W, k, stride, padding; };
  // P = OH*OW covers 64-, 32- and 16-column tiles and partial tails; N > 2 runs images in
  // parallel; 3x3 stride 1 on 14x14 / 26x26 and 1x1 on 12x12 take the shifted-copies path.
  for (Case c : {Case{1, 3, 8, 9, 9, 3, 1, 1}, Case{3, 5, 7, 11, 10, 3, 2, 1},
                 Case{1, 4, 6, 14, 14, 3, 1, 1}, Case{3, 30, 9, 26, 26, 3, 1, 1},
                 Case{2, 4, 16, 12, 12, 1, 1, 0}, Case{4, 6, 5, 7, 9, 5, 1, 2},
                 Case{1, 2, 3, 17, 17, 3, 2, 0},
                 // strided convs on the phases of the zero-bordered image: even and odd sizes,
                 // padding 0 / 1 / 2, 1x1 projections, 5x5, stride 3, 7x7-class outputs
                 Case{1, 16, 32, 28, 28, 3, 2, 1}, Case{1, 32, 64, 14, 14, 3, 2, 1},
                 Case{1, 16, 32, 28, 28, 1, 2, 0}, Case{2, 5, 6, 13, 11, 1, 2, 0},
                 Case{1, 3, 5, 15, 12, 5, 2, 2}, Case{1, 4, 6, 16, 19, 3, 3, 1},
                 Case{1, 3, 4, 9, 10, 2, 2, 0}, Case{3, 6, 8, 30, 30, 3, 2, 1}}) {
    for (auto enc : {quant::Encoding::ternary, quant::Encoding::power_of_two}) {
      const int encoding = int(enc);
      CAPTURE(c.C);
      CAPTURE(c.H);
      CAPTURE(c.stride);
      CAPTURE(encoding);
      auto q = random_quantized("w", {c.O, c.C, c.k, c.k}, enc, 0.6, gen);
      Tensor<float> x = Tensor<float>::randn({c.N, c.C, c.H, c.W}, gen);
      Tensor<float> bias = Tensor<float>::randn({c.O}, gen);
      Tensor<float> ref = conv2d(x, q.expand(), bias, Conv2dOptions{.stride = c.stride, .padding = c.padding});
      auto fast = conv_layer(q, c.stride, c.padding, infer::WeightForm::compressed, bias.to_vector(), false);
      auto dense = conv_layer(q, c.stride, c.padding, infer::WeightForm::dense, bias.to_vector(), false);
      CHECK(relative_error(fast.forward(x), ref) < 1e-5);
      CHECK(relative_error(dense.forward(x), ref) < 1e-5);
      // fused residual + ReLU
      Tensor<float> r = Tensor<float>::randn(ref.shape(), gen);
      fast.relu = true;
      CHECK(relative_error(fast.forward(x, r), trit::relu(ref + r)) < 1e-5);
      // another input size: the cached offsets are resolved again
      Tensor<float> x2 = Tensor<float>::randn({1, c.C, c.H + 3, c.W + 5}, gen);
      fast.relu = false;
      CHECK(relative_error(fast.forward(x2), conv2d(x2, q.expand(), bias, Conv2dOptions{.stride = c.stride, .padding = c.padding})) < 1e-5);
      CHECK(relative_error(fast.forward(x), ref) < 1e-5);
    }
  }
}

TEST_CASE("grouped and depthwise ternary / power-of-two convs equal the dense conv, ReLU6") {
  Generator gen(6);
  struct Case { int64_t N, C, O, G, H, k, stride, padding; };
  // depthwise (G = C = O) at stride 1 and 2 (zero-bordered image, its phases), tiles and tails;
  // grouped 3x3 and 1x1 convs; a batch over threads.
  for (Case c : {Case{1, 8, 8, 8, 9, 3, 1, 1}, Case{1, 12, 12, 12, 16, 3, 2, 1},
                 Case{3, 6, 6, 6, 32, 3, 1, 1}, Case{2, 8, 12, 4, 10, 3, 1, 1},
                 Case{1, 6, 4, 2, 7, 1, 1, 0}, Case{2, 4, 4, 4, 5, 3, 2, 1},
                 Case{1, 8, 8, 8, 15, 3, 2, 0}, Case{1, 8, 16, 4, 11, 1, 2, 0}}) {
    for (auto enc : {quant::Encoding::ternary, quant::Encoding::power_of_two}) {
      CAPTURE(c.C);
      CAPTURE(c.G);
      CAPTURE(c.stride);
      auto q = random_quantized("w", {c.O, c.C / c.G, c.k, c.k}, enc, 0.5, gen);
      Tensor<float> x = Tensor<float>::randn({c.N, c.C, c.H, c.H}, gen);
      Tensor<float> bias = Tensor<float>::randn({c.O}, gen);
      Tensor<float> ref = conv2d(x, q.expand(), bias,
                                 Conv2dOptions{.stride = c.stride, .padding = c.padding, .groups = c.G});
      Tensor<float> r = Tensor<float>::randn(ref.shape(), gen);
      Tensor<float> relu6_ref = trit::relu(ref + r);
      for (int64_t i = 0; i < relu6_ref.numel(); ++i) relu6_ref.data()[i] = std::min(relu6_ref[i], 0.5f);
      for (auto form : {infer::WeightForm::compressed, infer::WeightForm::dense}) {
        auto layer = conv_layer(q, c.stride, c.padding, form, bias.to_vector(), false, c.G);
        CHECK(relative_error(layer.forward(x), ref) < 1e-5);
        layer.relu = true, layer.relu_cap = 0.5f;  // a cap inside the values' range
        CHECK(relative_error(layer.forward(x, r), relu6_ref) < 1e-5);
      }
    }
  }
}

TEST_CASE("ternary and power-of-two linear equal the dense product") {
  Generator gen(7);
  for (int64_t N : {1, 3, 5, 70}) {
    for (auto enc : {quant::Encoding::ternary, quant::Encoding::power_of_two}) {
      auto q = random_quantized("fc", {9, 83}, enc, 0.5, gen);
      Tensor<float> x = Tensor<float>::randn({N, 83}, gen), b = Tensor<float>::randn({9}, gen);
      infer::LinearLayer l;
      l.weight = infer::MatrixWeights::compressed(kernels::pack_signed_terms(9, 83, q.codes.data(), q.codebooks));
      l.bias = b.to_vector();
      Tensor<float> ref = linear(x, q.expand(), b);
      CHECK(relative_error(l.forward(x), ref) < 1e-5);
      l.relu = true;
      CHECK(relative_error(l.forward(x), trit::relu(ref)) < 1e-5);
    }
  }
  infer::LinearLayer l;
  l.weight = infer::MatrixWeights::dense(2, 3, {1, 2, 3, 4, 5, 6});
  l.bias = {0, 0};
  CHECK_THROWS_AS(l.forward(Tensor<float>::zeros({1, 4})), Error);
  CHECK_THROWS_AS(infer::MatrixWeights::dense(2, 3, {1, 2}), Error);
}

TEST_CASE("BatchNorm folding: folded conv equals conv then eval BatchNorm, codes unchanged") {
  Generator gen(11);
  const int64_t O = 6, C = 4;
  auto q = random_quantized("w", {O, C, 3, 3}, quant::Encoding::ternary, 0.5, gen);
  q.groups = 1;  // one codebook for the tensor: folding makes it per channel
  q.codebooks = {{0.0f, 0.25f, -0.25f}};
  Tensor<float> gamma = Tensor<float>::uniform({O}, -1.5f, 1.5f, gen),
                beta = Tensor<float>::randn({O}, gen), mean = Tensor<float>::randn({O}, gen),
                var = Tensor<float>::uniform({O}, 0.1f, 2.0f, gen), b = Tensor<float>::randn({O}, gen);
  auto bn = infer::bn_affine(gamma, beta, mean, var);
  auto folded = infer::fold_codebooks(q, bn);
  CHECK(folded.codes == q.codes);
  CHECK(folded.groups == O);
  for (int64_t o = 0; o < O; ++o) {
    REQUIRE(folded.codebooks[o].size() == 3);
    CHECK(folded.codebooks[o][0] == 0.0f);
    CHECK(folded.codebooks[o][1] == -folded.codebooks[o][2]);  // still ternary
  }
  // dense and compressed folding give bit-identical weights
  CHECK(folded.expand().to_vector() == infer::fold_weight(q.expand(), bn).to_vector());

  Tensor<float> x = Tensor<float>::randn({2, C, 7, 7}, gen);
  Tensor<float> ref = batch_norm(conv2d(x, q.expand(), b, Conv2dOptions{.padding = 1}), gamma, beta,
                                 mean.clone(), var.clone(), false);
  for (auto form : {infer::WeightForm::compressed, infer::WeightForm::dense}) {
    auto layer = conv_layer(folded, 1, 1, form, infer::fold_bias(b, bn), false);
    CHECK(relative_error(layer.forward(x), ref) < 1e-5);
  }
  CHECK_THROWS_AS(infer::fold_weight(Tensor<float>::zeros({5, 2}), bn), Error);
  CHECK_THROWS_AS(infer::bn_affine(gamma, beta, mean, Tensor<float>::ones({3})), Error);
}

TEST_CASE("compressed ResNet-20 gives the dense eval model's logits (options A and B)") {
  for (auto shortcut : {models::CifarShortcut::A, models::CifarShortcut::B}) {
    CAPTURE(models::shortcut_name(shortcut));
    Generator gen(17);
    models::ModelConfig config{.name = "resnet20", .num_classes = 10, .in_channels = 1,
                               .input_size = 28, .shortcut = shortcut};
    auto model = models::resnet20<float>(10, 1, shortcut, gen);
    randomise_batch_norms(*model, gen);
    // A: every conv ternary, fc FP32; B: the stem FP32, the rest ternary, fc power-of-two.
    auto quantized = ternarize(*model, 0.7, shortcut == models::CifarShortcut::A ? all_but_fc : inner_convs);
    if (shortcut == models::CifarShortcut::B) {
      auto q = random_quantized("fc.weight", {10, 64}, quant::Encoding::power_of_two, 0.5, gen);
      for (auto& [name, w] : model->named_parameters())
        if (name == "fc.weight") w.detach().copy_from(q.expand());
      quantized.push_back(q);
    }
    model->eval();
    Tensor<float> x = Tensor<float>::randn({6, 1, 28, 28}, gen);
    Tensor<float> ref;
    {
      NoGradGuard no_grad;
      ref = model->forward(x);
    }
    const io::CompressedModel file = io::compress(config, model->state_dict(), quantized);
    infer::Model compressed(file, infer::WeightForm::compressed);
    infer::Model dense(file, infer::WeightForm::dense);
    for (const infer::Model* m : {&compressed, &dense}) {
      Tensor<float> y = m->forward(x);
      CHECK(relative_error(y, ref) < 1e-4);
      for (int64_t n = 0; n < 6; ++n) {
        auto row = [&](const Tensor<float>& t) {
          return std::max_element(t.data() + n * 10, t.data() + n * 10 + 10) - (t.data() + n * 10);
        };
        CHECK(row(y) == row(ref));
      }
      // batch of one (rows split over threads instead of images)
      Tensor<float> x1 = x.slice_rows(0, 1).clone();
      CHECK(relative_error(m->forward(x1), ref.slice_rows(0, 1).clone()) < 1e-4);
    }
    // memory: codes as index lists, well under the FP32 weights
    CHECK(compressed.weight_bytes() * 3 < dense.weight_bytes());
    CHECK(compressed.compressed_weights() > 0);
    CHECK(dense.compressed_weights() == 0);
  }
}

TEST_CASE("compressed LeNet gives the dense model's logits") {
  Generator gen(19);
  models::ModelConfig config{.name = "lenet", .num_classes = 10, .in_channels = 1, .input_size = 28};
  auto model = std::make_shared<models::LeNet<float>>(10, 1, 28);
  auto quantized = ternarize(*model, 0.8, lenet_weights);
  Tensor<float> x = Tensor<float>::randn({3, 1, 28, 28}, gen), ref;
  {
    NoGradGuard no_grad;
    model->eval();
    ref = model->forward(x);
  }
  const io::CompressedModel file = io::compress(config, model->state_dict(), quantized);
  infer::Model compressed(file);
  CHECK(relative_error(compressed.forward(x), ref) < 1e-4);
  CHECK(compressed.weight_bytes() * 5 < infer::Model(file, infer::WeightForm::dense).weight_bytes());
}

TEST_CASE("inference model: clear errors for what it cannot run") {
  Generator gen(23);
  auto model = models::resnet20<float>(10, 1, models::CifarShortcut::A, gen);
  models::ModelConfig config{.name = "resnet20", .in_channels = 1};
  auto t = io::compress(config, model->state_dict(), {});
  infer::Model ok(t);
  CHECK_THROWS_AS(ok.forward(Tensor<float>::zeros({1, 3, 28, 28})), Error);  // wrong channels
  auto missing = t;
  std::erase_if(missing.tensors, [](const io::CompressedTensor& x) {
    return x.name == "layer2.0.bn1.running_var";
  });
  CHECK_THROWS_AS(infer::Model{missing}, Error);
  auto wrong = t;
  for (auto& x : wrong.tensors)
    if (x.name == "fc.weight") x.dense = Tensor<float>::zeros({10, 32});
  CHECK_THROWS_AS(infer::Model{wrong}, Error);
  auto other = t;
  other.config.name = "mobilenet_v2";  // a known architecture whose tensors are missing
  CHECK_THROWS_AS(infer::Model{other}, Error);
  other.config.name = "vgg16";
  CHECK_THROWS_AS(infer::Model{other}, Error);
  // a conv whose groups do not split its channels
  infer::ConvLayer bad;
  bad.C = 4, bad.O = 6, bad.KH = bad.KW = 3, bad.groups = 4;
  bad.weight = infer::MatrixWeights::dense(6, 9, std::vector<float>(54), 2);
  bad.bias.assign(6, 0.0f);
  CHECK_THROWS_AS(bad.forward(Tensor<float>::zeros({1, 4, 5, 5})), Error);
  CHECK_THROWS_AS(infer::MatrixWeights::dense(6, 9, std::vector<float>(54), 4), Error);
  CHECK_THROWS_AS(infer::load_compressed("/nonexistent/model.trit"), Error);
}

TEST_CASE("load_compressed: a .trit file runs on the compressed kernels") {
  Generator gen(29);
  models::ModelConfig config{.name = "resnet20", .num_classes = 10, .in_channels = 1,
                             .input_size = 28};
  auto model = models::resnet20<float>(10, 1, models::CifarShortcut::A, gen);
  randomise_batch_norms(*model, gen);
  auto quantized = ternarize(*model, 0.8, inner_convs);
  const std::string path =
      (std::filesystem::temp_directory_path() / ("infer_test_" + std::to_string(::getpid()) + ".trit")).string();
  io::save_compressed(path, config, model->state_dict(), quantized);
  infer::Model m = infer::load_compressed(path);
  std::remove(path.c_str());
  model->eval();
  Tensor<float> x = Tensor<float>::randn({2, 1, 28, 28}, gen), ref;
  {
    NoGradGuard no_grad;
    ref = model->forward(x);
  }
  CHECK(relative_error(m.forward(x), ref) < 1e-4);
  CHECK(m.form() == infer::WeightForm::compressed);
  CHECK(m.compressed_weights() == [&] {
    int64_t n = 0;
    for (auto& q : quantized) n += q.numel();
    return n;
  }());
}

namespace {

// Quantizes `model` with one SGD step of `Policy` (quantization from the first step, 60%
// zeros; the first conv stays FP32), randomises its BatchNorms, and checks that the .trit
// file written and read back runs on the compressed kernels (and in the dense form) with the
// eval model's logits, on a batch of 2 and a batch of 1.
template <class Policy, class Options>
void check_architecture(const models::ModelConfig& config, Options options) {
  CAPTURE(config.name);
  manual_seed(31);
  auto model = models::make_model(config);
  options.schedule = {.initial = 0.6, .target = 0.6};
  // layer4 of the ResNets (most of their weights) stays FP32, to keep the test fast: its
  // convs run dense inside the compressed model, which is tested too.
  options.selection.add_override({.pattern = "layer4.*", .quantize = false});
  optim::SGD<Policy, float> sgd(*model, {.lr = 0.01}, Policy(options));
  Generator gen(37);
  Tensor<float> x = Tensor<float>::randn({2, config.in_channels, config.input_size, config.input_size}, gen);
  model->train();
  sgd.zero_grad();
  cross_entropy(model->forward(x), std::vector<int64_t>{0, 1}).backward();
  sgd.step();
  auto quantized = sgd.policy().quantized_tensors(sgd.parameters());
  REQUIRE(quantized.size() > 3);
  randomise_batch_norms(*model, gen);
  model->eval();
  Tensor<float> ref;
  {
    NoGradGuard no_grad;
    ref = model->forward(x);
  }
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("infer_test_" + config.name + std::to_string(::getpid()) + ".trit")).string();
  io::save_compressed(path, config, model->state_dict(), quantized);
  infer::Model m = infer::load_compressed(path);
  infer::Model dense = infer::load_compressed(path, infer::WeightForm::dense);
  std::remove(path.c_str());
  CHECK(infer::Model::supports(config.name));
  CHECK(relative_error(m.forward(x), ref) < 1e-4);
  CHECK(relative_error(dense.forward(x), ref) < 1e-4);
  Tensor<float> x1 = x.slice_rows(1, 2).clone();
  CHECK(relative_error(m.forward(x1), ref.slice_rows(1, 2).clone()) < 1e-4);
  int64_t n = 0;
  for (auto& q : quantized) n += q.numel();
  CHECK(m.compressed_weights() == n);
  CHECK(m.weight_bytes() < dense.weight_bytes());
  CHECK(m.memory_bytes() >= m.weight_bytes());
}

}  // namespace

TEST_CASE("every architecture runs compressed: resnet18, resnet50, mobilenet_v2 (PTQ, FocusedPow2)") {
  // ResNet-18/50 hold 11M / 23M weights whatever the input size, so each is built only once
  // or twice: resnet18 small_input with PTQ (ternary), resnet18's ImageNet layout (7x7 stem,
  // max-pool) and resnet50 (Bottleneck) with FocusedPow2 (power-of-two), MobileNetV2 with both.
  quant::FocusedPow2Options fq;
  fq.bits = 4;
  const models::ModelConfig r18{.name = "resnet18", .num_classes = 5, .in_channels = 3,
                                .input_size = 16, .small_input = true};
  const models::ModelConfig r18_imagenet{.name = "resnet18", .num_classes = 3, .in_channels = 3,
                                         .input_size = 40, .small_input = false};
  const models::ModelConfig r50{.name = "resnet50", .num_classes = 5, .in_channels = 3,
                                .input_size = 16, .small_input = true};
  const models::ModelConfig mobilenet{.name = "mobilenet_v2", .num_classes = 5, .in_channels = 3,
                                      .input_size = 32, .width = 0.5, .small_input = true};
  check_architecture<quant::PTQ>(r18, quant::PTQOptions{});
  check_architecture<quant::FocusedPow2>(r18_imagenet, fq);
  check_architecture<quant::FocusedPow2>(r50, fq);
  check_architecture<quant::PTQ>(mobilenet, quant::PTQOptions{});
  check_architecture<quant::FocusedPow2>(mobilenet, fq);
}
