// custom_quantizer: how to add a weight-quantization method to trit without touching trit.
//
// A quantizer is a policy: a small struct the optimizer takes as a template argument
// (optim::SGD<TWN>). This walkthrough writes TWN (ternary weight networks, Li & Liu 2016) in a
// few dozen lines, checks it against the optim::WeightQuantizer concept, and trains a small
// CNN with it on a slice of Fashion-MNIST (or on generated images when the data is missing).
//
// Run:  build/bin/trit-custom-quantizer [--train-limit 3000] [--epochs 2] [--data DIR]
//                                       [--synthetic]
//
// Read it top to bottom: 1. the method, 2. the policy, 3. data and model, 4. training,
// 5. checking that the network really computes with ternary weights.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <trit/trit.hpp>

using namespace trit;

// ---------------------------------------------------------------------------------------------
// 1. The method. TWN replaces each weight tensor W by a ternary tensor a * t, t in {-1, 0, +1}:
//      delta = 0.7 * mean |W|                        (threshold)
//      t_i   = sign(W_i) if |W_i| > delta, else 0
//      a     = mean of |W_i| over the kept weights  (the least-squares scale for that mask)
//    Backward is the straight-through estimator: the gradient dL/d(a t) is applied to W as is.
//
// 2. The policy. The optimizer keeps two tensors per quantized parameter (see
//    trit/optim/quantizer.hpp):
//      p.latent   full-precision weights; the optimizer's update (SGD, AdamW...) moves these
//      p.weight   the module's tensor: exactly what the forward pass computes with
//    and calls four functions of the policy:
//      quantizes(info)        once per parameter when the optimizer is built: take this one?
//      on_gradient(p, prog)   before the update: turn dL/d(weight) in p.grad into the latent's
//                             gradient (the straight-through estimator needs nothing here)
//      project(p, prog)       after the update (and once at construction): write p.weight
//                             from p.latent
//      on_epoch(prog)         at epoch boundaries, for schedules
//    Per-parameter state (here: the scale and the sparsity, for printing) lives in the policy,
//    keyed by the parameter's name.
// ---------------------------------------------------------------------------------------------
struct TWN {
  quant::ParameterSelection selection;  // trit's default: conv/linear weights, not the stem
  std::map<std::string, double> scale, sparsity;

  template <class T>
  bool quantizes(const optim::ParameterInfo<T>& info) const {
    return selection.selects(info);
  }

  template <class T>
  void on_gradient(optim::QuantizedParameter<T>&, const optim::TrainingProgress&) {
    // Straight-through estimator: p.grad = dL/d(weight) is the latent's gradient unchanged.
  }

  template <class T>
  void project(optim::QuantizedParameter<T>& p, const optim::TrainingProgress&) {
    const int64_t n = p.latent.numel();
    const double delta = 0.7 * double(p.latent.array().abs().mean());
    double kept_sum = 0;
    int64_t kept = 0;
    for (int64_t i = 0; i < n; ++i)
      if (std::abs(double(p.latent[i])) > delta) kept_sum += std::abs(double(p.latent[i])), ++kept;
    const T a = T(kept ? kept_sum / double(kept) : 0.0);
    for (int64_t i = 0; i < n; ++i) {
      const T w = p.latent[i];
      p.weight[i] = std::abs(double(w)) > delta ? (w > 0 ? a : -a) : T(0);
    }
    scale[p.name] = double(a);
    sparsity[p.name] = 1.0 - double(kept) / double(n);
  }

  void on_epoch(const optim::TrainingProgress&) {}
};

// The concept check: a typo in a signature fails here, with a readable message, rather than
// deep inside the optimizer.
static_assert(optim::WeightQuantizer<TWN, float> && optim::WeightQuantizer<TWN, double>);

// ---------------------------------------------------------------------------------------------
// 3. Data and model.
// ---------------------------------------------------------------------------------------------

// Generated stand-in for Fashion-MNIST: 10 classes, each a fixed random pattern of blobs,
// shifted by up to a pixel, plus noise. Used when the real data is not installed.
data::Dataset synthetic_images(int64_t n, uint64_t seed) {
  const int64_t S = 28;
  Generator pattern_gen(1234), gen(seed);
  std::vector<std::vector<float>> patterns(10, std::vector<float>(S * S));
  for (auto& p : patterns)
    for (int64_t r = 0; r < S; r += 4)
      for (int64_t c = 0; c < S; c += 4) {
        const float v = pattern_gen.uniform() < 0.4 ? 1.0f : 0.0f;
        for (int64_t i = 0; i < 16; ++i) p[(r + i / 4) * S + c + i % 4] = v;
      }
  data::Dataset d;
  d.images = Tensor<float>::empty({n, 1, S, S});
  for (int k = 0; k < 10; ++k) d.classes.push_back("pattern " + std::to_string(k));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t label = gen.below(10), dy = gen.below(3) - 1, dx = gen.below(3) - 1;
    d.labels.push_back(label);
    for (int64_t r = 0; r < S; ++r)
      for (int64_t c = 0; c < S; ++c) {
        const float v = patterns[label][((r + dy + S) % S) * S + (c + dx + S) % S];
        d.images(i, 0, r, c) = std::clamp(v + float(0.3 * gen.normal()), 0.0f, 1.0f);
      }
  }
  return d;
}

// Two conv blocks and a classifier, for 1 x 28 x 28 images.
std::shared_ptr<nn::Sequential<float>> small_cnn() {
  auto net = std::make_shared<nn::Sequential<float>>();
  net->push_back("conv1", std::make_shared<nn::Conv2d<float>>(1, 16, 3, nn::Conv2dOptions{.padding = 1, .bias = false}));
  net->push_back("bn1", std::make_shared<nn::BatchNorm2d<float>>(16));
  net->push_back("relu1", std::make_shared<nn::ReLU<float>>());
  net->push_back("pool1", std::make_shared<nn::MaxPool2d<float>>(2));
  net->push_back("conv2", std::make_shared<nn::Conv2d<float>>(16, 32, 3, nn::Conv2dOptions{.padding = 1, .bias = false}));
  net->push_back("bn2", std::make_shared<nn::BatchNorm2d<float>>(32));
  net->push_back("relu2", std::make_shared<nn::ReLU<float>>());
  net->push_back("pool2", std::make_shared<nn::MaxPool2d<float>>(2));
  net->push_back("flatten", std::make_shared<nn::Flatten<float>>());
  net->push_back("fc", std::make_shared<nn::Linear<float>>(32 * 7 * 7, 10));
  return net;
}

// Share of `d` the model classifies correctly (eval mode, no graph).
double accuracy(nn::Module<float>& model, const data::Dataset& d) {
  NoGradGuard no_grad;
  model.eval();
  int64_t correct = 0;
  for (int64_t b = 0; b < d.size(); b += 250) {
    const data::Dataset part = d.slice(b, std::min(d.size(), b + 250));
    Tensor<float> logits = model.forward(part.images);
    for (int64_t i = 0; i < part.size(); ++i) {
      int64_t best = 0;
      for (int64_t k = 1; k < logits.size(1); ++k)
        if (logits(i, k) > logits(i, best)) best = k;
      correct += best == part.labels[i];
    }
  }
  model.train();
  return double(correct) / double(d.size());
}

int main(int argc, char** argv) {
  int64_t train_limit = 3000, test_limit = 1000;
  int epochs = 2;
  std::string data_dir;
  bool synthetic = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--train-limit" && has_value) train_limit = std::atoll(argv[++i]);
    else if (a == "--epochs" && has_value) epochs = std::atoi(argv[++i]);
    else if (a == "--data" && has_value) data_dir = argv[++i];
    else if (a == "--synthetic") synthetic = true;
    else {
      std::fprintf(stderr, "usage: %s [--train-limit N] [--epochs E] [--data DIR] [--synthetic]\n", argv[0]);
      return 2;
    }
  }
  if (train_limit < 100 || epochs < 1) {
    std::fprintf(stderr, "error: --train-limit must be >= 100 and --epochs >= 1\n");
    return 2;
  }
  manual_seed(0);

  // Fashion-MNIST when it is installed (or --data points to it), generated images otherwise.
  std::string dir;
  if (!synthetic) {
    try {
      dir = data::find_dataset_dir("fashion-mnist", data_dir);
    } catch (const Error& e) {
      std::printf("Fashion-MNIST not found, using generated images instead:\n  %s\n", e.what());
    }
  }
  data::Dataset train, test;
  if (!dir.empty()) {
    train = data::load_fashion_mnist(dir, true).take(train_limit);
    test = data::load_fashion_mnist(dir, false).take(test_limit);
    std::printf("data: Fashion-MNIST from %s\n", dir.c_str());
  } else {
    train = synthetic_images(train_limit, 1);
    test = synthetic_images(test_limit, 2);
    std::printf("data: generated images\n");
  }
  std::printf("%lld train / %lld test images\n", (long long)train.size(), (long long)test.size());
  auto model = small_cnn();

  // -------------------------------------------------------------------------------------------
  // 4. Training. The only quantization-specific line is the optimizer's type: SGD<TWN>.
  //    conv2 and fc are quantized (the stem conv1 stays FP32, as trit's default selection);
  //    BatchNorm parameters stay FP32 because selection takes only conv/linear weights.
  // -------------------------------------------------------------------------------------------
  optim::SGD<TWN> sgd(*model, {.lr = 0.05, .momentum = 0.9});
  const int64_t batch = 64, steps = train.size() / batch;
  for (int epoch = 1; epoch <= epochs; ++epoch) {
    double loss_sum = 0;
    for (int64_t b = 0; b < steps; ++b) {
      const data::Dataset part = train.slice(b * batch, (b + 1) * batch);
      Tensor<float> loss = cross_entropy(model->forward(part.images), part.labels);
      sgd.zero_grad();
      loss.backward();
      sgd.step();  // on_gradient -> SGD update of the latent -> project (ternary weights)
      loss_sum += loss.item();
    }
    std::printf("epoch %d  loss %.4f  test accuracy %.1f%%\n", epoch, loss_sum / double(steps),
                100.0 * accuracy(*model, test));
    for (const auto& [name, s] : sgd.policy().sparsity)
      std::printf("  %-14s sparsity %.3f  scale %.4f\n", name.c_str(), s, sgd.policy().scale.at(name));
    sgd.on_epoch({.step = sgd.progress().step, .epoch = epoch});
  }

  // -------------------------------------------------------------------------------------------
  // 5. Check: the network computed with ternary weights. quant::encode reads codes off the
  //    module's own tensors and fails on a tensor with more than 3 distinct values.
  // -------------------------------------------------------------------------------------------
  for (const auto& p : sgd.parameters()) {
    if (!p.quantized) continue;
    const quant::QuantizedTensor q =
        quant::encode(p.name, p.weight, quant::Encoding::ternary, /*per_channel=*/false, 3);
    std::printf("%-14s ternary: values {0, %+.4f, %+.4f}, %d-bit codes, sparsity %.3f\n",
                p.name.c_str(), q.codebooks[0].size() > 1 ? q.codebooks[0][1] : 0.0f,
                q.codebooks[0].size() > 2 ? q.codebooks[0][2] : 0.0f, q.bits_per_code(),
                q.sparsity());
  }
  return 0;
}
