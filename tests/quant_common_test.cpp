// What every quantizer policy shares: parameter selection, sparsity schedules, and reading
// codes off quantized weights.
#include <doctest/doctest.h>

#include <trit/optim/quantizer.hpp>
#include <trit/quant.hpp>

using namespace trit;

TEST_CASE("glob patterns over dotted names") {
  CHECK(quant::glob_match("layer1.*", "layer1.0.conv1.weight"));
  CHECK_FALSE(quant::glob_match("layer1.*", "layer2.0.conv1.weight"));
  CHECK(quant::glob_match("*.conv?.weight", "layer3.1.conv2.weight"));
  CHECK_FALSE(quant::glob_match("*.conv?.weight", "layer3.1.bn2.weight"));
  CHECK(quant::glob_match("fc.weight", "fc.weight"));
  CHECK(quant::glob_match("*", ""));
  CHECK_FALSE(quant::glob_match("fc", "fc.weight"));
}

TEST_CASE("default selection: conv and linear weights except the stem") {
  std::vector<std::pair<std::string, Tensor<float>>> params = {
      {"conv1.weight", Tensor<float>::zeros({8, 1, 3, 3})},
      {"bn1.weight", Tensor<float>::zeros({8})},
      {"layer1.0.conv1.weight", Tensor<float>::zeros({8, 8, 3, 3})},
      {"fc.weight", Tensor<float>::zeros({10, 8})},
      {"fc.bias", Tensor<float>::zeros({10})}};
  auto infos = optim::describe_parameters(params);
  CHECK(infos[0].is_first_conv);
  CHECK_FALSE(infos[2].is_first_conv);
  CHECK(infos[3].is_last_linear);

  quant::ParameterSelection s;
  std::vector<bool> chosen;
  for (auto& i : infos) chosen.push_back(s.selects(i));
  CHECK(chosen == std::vector<bool>{false, false, true, true, false});

  s.keep_last_linear_fp32 = true;
  s.quantize_first_conv = true;
  chosen.clear();
  for (auto& i : infos) chosen.push_back(s.selects(i));
  CHECK(chosen == std::vector<bool>{true, false, true, false, false});

  s.add_override({.pattern = "layer1.*", .quantize = false});
  CHECK_FALSE(s.selects(infos[2]));
  CHECK_THROWS_AS(s.add_override({.pattern = "x", .sparsity = 1.5}), Error);
  CHECK_THROWS_AS(s.add_override({.pattern = ""}), Error);
}

TEST_CASE("sparsity schedule: warm-up, cubic ramp, hold") {
  quant::SparsitySchedule s{.initial = 0.0, .target = 0.8, .fp_epochs = 1, .ramp_epochs = 2};
  auto at_epoch = [](double e) {
    optim::TrainingProgress p;
    p.steps_per_epoch = 100;
    p.step = int64_t(e * 100);
    return p;
  };
  CHECK(s.full_precision(at_epoch(0.5)));
  CHECK_FALSE(s.full_precision(at_epoch(1.0)));
  CHECK(s.at(at_epoch(1.0)) == doctest::Approx(0.0));
  CHECK(s.at(at_epoch(2.0)) == doctest::Approx(0.8 - 0.8 * 0.125));  // half-way: 1 - (1/2)^3
  CHECK(s.at(at_epoch(3.0)) == doctest::Approx(0.8));
  CHECK(s.at(at_epoch(9.0)) == doctest::Approx(0.8));
  CHECK(s.at(at_epoch(3.0), 0.5) == doctest::Approx(0.5));
  quant::SparsitySchedule bad{.target = 1.0};
  CHECK_THROWS_AS(bad.validate("test"), Error);
}

TEST_CASE("encode reads codes off ternary weights and expands back exactly") {
  auto w = Tensor<float>::from_vector({2, 4}, {0.5f, 0, -0.5f, 0.5f,   // channel 0: a = 0.5
                                               0, -0.25f, 0, 0});      // channel 1: a = 0.25
  auto q = quant::encode("w", w, quant::Encoding::ternary, /*per_channel=*/true, 3);
  CHECK(q.groups == 2);
  CHECK(q.sparsity() == doctest::Approx(4.0 / 8));
  CHECK(q.bits_per_code() == 2);
  CHECK(q.expand().to_vector() == w.to_vector());
  CHECK(q.codebooks[0][0] == 0.0f);
  // Per tensor, the two channels' scales make 5 values: not ternary.
  CHECK_THROWS_AS(quant::encode("w", w, quant::Encoding::ternary, false, 3), Error);
  auto nan = Tensor<float>::from_vector({2}, {0, NAN});
  CHECK_THROWS_AS(quant::encode("w", nan, quant::Encoding::ternary, false, 3), Error);
}

TEST_CASE("model size counts every tensor: codes, codebooks and what stays FP32") {
  // A ternary 4x8 weight (2 bits each = 8 bytes, one codebook of 2 non-zero values = 8 bytes),
  // an FP32 bias of 4 (16 bytes) and a BN buffer of 4 (16 bytes).
  std::vector<float> w(32, 0.0f);
  for (int i = 0; i < 8; ++i) w[i] = (i % 2) ? 0.5f : -0.5f;
  std::vector<std::pair<std::string, Tensor<float>>> state = {
      {"fc.weight", Tensor<float>::from_vector({4, 8}, w)},
      {"fc.bias", Tensor<float>::zeros({4})},
      {"bn.running_mean", Tensor<float>::zeros({4})}};
  auto q = quant::encode("fc.weight", state[0].second, quant::Encoding::ternary, false, 3);
  quant::ModelSize size = quant::model_size(state, {q});
  CHECK(size.fp32_bytes == 4 * (32 + 4 + 4));
  CHECK(size.quantized_bytes == 8 + 8 + 16 + 16);
  CHECK(size.compression_ratio() == doctest::Approx(160.0 / 48.0));
  CHECK(size.quantized_weights == 32);
  CHECK(size.sparsity() == doctest::Approx(24.0 / 32.0));
  quant::ModelSize none = quant::model_size(state, {});
  CHECK(none.quantized_bytes == none.fp32_bytes);
}
