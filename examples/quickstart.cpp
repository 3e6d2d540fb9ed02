// quickstart: the smallest complete trit program. It builds a two-layer network, trains it
// with optim::SGD<> on points it generates (two interleaved half-moons), and prints the
// accuracy. Run: build/bin/trit-quickstart
//
// Read it top to bottom: data, model, optimizer, loop. Every trit program has these four.
#include <cmath>
#include <cstdio>
#include <memory>
#include <vector>

#include <trit/trit.hpp>

using namespace trit;

int main() {
  // 1. Data: 512 points in 2-d, label 0 on the upper moon, 1 on the lower one, with noise.
  Generator gen(1);
  const int64_t n = 512;
  Tensor<float> x = Tensor<float>::empty({n, 2});
  std::vector<int64_t> y(n);
  for (int64_t i = 0; i < n; ++i) {
    double t = M_PI * gen.uniform();
    y[i] = i % 2;
    x(i, 0) = float(y[i] ? 1 - std::cos(t) : std::cos(t)) + float(0.1 * gen.normal());
    x(i, 1) = float(y[i] ? 0.5 - std::sin(t) : std::sin(t)) + float(0.1 * gen.normal());
  }

  // 2. Model: Linear -> ReLU -> Linear, parameters named "0.weight", "0.bias", "2.weight"...
  auto model = std::make_shared<nn::Sequential<float>>(std::make_shared<nn::Linear<float>>(2, 32),
                                                       std::make_shared<nn::ReLU<float>>(),
                                                       std::make_shared<nn::Linear<float>>(32, 2));

  // 3. Optimizer: plain SGD with momentum. optim::SGD<quant::PTQ> would ternarise the weights.
  optim::SGD<> sgd(*model, {.lr = 0.1, .momentum = 0.9});

  // 4. Loop: forward, loss, backward, step.
  for (int step = 1; step <= 300; ++step) {
    Tensor<float> loss = cross_entropy(model->forward(x), y);
    sgd.zero_grad();
    loss.backward();
    sgd.step();
    if (step % 100 == 0) std::printf("step %d  loss %.4f\n", step, loss.item());
  }

  // Evaluate without recording a graph.
  NoGradGuard no_grad;
  Tensor<float> logits = model->forward(x);
  int64_t correct = 0;
  for (int64_t i = 0; i < n; ++i) correct += (logits(i, 1) > logits(i, 0)) == (y[i] == 1);
  std::printf("training accuracy %.1f%%\n", 100.0 * correct / n);
  return 0;
}
