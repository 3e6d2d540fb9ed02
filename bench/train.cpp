// trit-bench-train: training and inference throughput of a model from the registry on random
// 32x32 (or --size) images, the trit side of bench/compare.sh.
//
//   trit-bench-train --model NAME [--num-classes K] [--in-channels C] [--width W]
//                    [--small-input] --threads N --batch B [--size S] [--reps R]
//
// Prints one line:
//   model=NAME threads=N batch=B train_img_s=... infer_img_s=... peak_rss_mb=...
// train = forward + cross-entropy + backward + SGD step (momentum 0.9, weight decay 5e-4) in
// training mode; infer = forward in eval mode under NoGradGuard. Each figure is batch divided
// by the median of R (default 7, at least 5) timed steps after 3 warm-up steps. peak_rss_mb
// is the process's peak resident memory (VmHWM) after the training steps, before inference.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <trit/core.hpp>
#include <trit/models.hpp>
#include <trit/ops.hpp>
#include <trit/optim.hpp>

namespace {

// The process's peak resident set (VmHWM in /proc/self/status) in MiB; 0 if unreadable.
double peak_rss_mb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::atof(line.c_str() + 6) / 1024.0;
  return 0;
}

// Median wall time in seconds of `reps` calls of step() after `warmup` untimed ones.
template <class F>
double median_seconds(int warmup, int reps, F&& step) {
  for (int i = 0; i < warmup; ++i) step();
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    step();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

int usage() {
  std::fprintf(stderr,
               "usage: trit-bench-train --model NAME [--num-classes K] [--in-channels C] "
               "[--width W] [--small-input] --threads N --batch B [--size S] [--reps R]\n"
               "models: %s\n",
               trit::models::model_names().c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) try {
  trit::models::ModelConfig config;
  config.name = "";
  config.in_channels = 3;
  config.input_size = 32;
  int threads = 0, reps = 7;
  int64_t batch = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> std::string {
      trit::check(i + 1 < argc, flag, "needs a value");
      return argv[++i];
    };
    if (flag == "--model") config.name = value();
    else if (flag == "--num-classes") config.num_classes = std::stoll(value());
    else if (flag == "--in-channels") config.in_channels = std::stoll(value());
    else if (flag == "--width") config.width = std::stod(value());
    else if (flag == "--small-input") config.small_input = true;
    else if (flag == "--threads") threads = std::stoi(value());
    else if (flag == "--batch") batch = std::stoll(value());
    else if (flag == "--size") config.input_size = std::stoll(value());
    else if (flag == "--reps") reps = std::stoi(value());
    else return usage();
  }
  if (config.name.empty() || threads < 1 || batch < 1 || reps < 5) return usage();
  trit::set_num_threads(threads);

  auto model = trit::models::make_model(config);
  trit::Generator gen(1);
  const auto x = trit::Tensor<float>::uniform(
      {batch, config.in_channels, config.input_size, config.input_size}, -1.f, 1.f, gen);
  std::vector<int64_t> targets(static_cast<size_t>(batch));
  for (int64_t n = 0; n < batch; ++n) targets[n] = n % config.num_classes;

  trit::optim::SGD<> sgd(*model, {.lr = 0.01, .momentum = 0.9, .weight_decay = 5e-4});
  model->train();
  const double train_s = median_seconds(3, reps, [&] {
    trit::Tensor<float> loss = trit::cross_entropy(model->forward(x), targets);
    loss.backward();
    sgd.step();
    sgd.zero_grad();
  });
  const double rss = peak_rss_mb();

  model->eval();
  const double infer_s = median_seconds(3, reps, [&] {
    trit::NoGradGuard no_grad;
    trit::Tensor<float> logits = model->forward(x);
  });

  std::printf("model=%s threads=%d batch=%lld train_img_s=%.1f infer_img_s=%.1f "
              "peak_rss_mb=%.1f\n",
              config.name.c_str(), threads, (long long)batch, double(batch) / train_s,
              double(batch) / infer_s, rss);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "trit-bench-train: %s\n", e.what());
  return 1;
}
