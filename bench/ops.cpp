// trit-bench-ops: GFLOP/s of conv2d forward, grad input and grad weight on the layer shapes of
// ResNet-20, ResNet-18 (CIFAR-size inputs) and MobileNetV2's depthwise layers, batch 64,
// against Eigen's own sgemm (1024 x 1024 x 1024) measured in the same run.
//
//   trit-bench-ops [--threads N] [--reps R] [--batch B] [--best] [--only TEXT]
//
// FLOPs per pass = 2 * N * O * C/G * KH * KW * OH * OW. Each figure is the median of R timed
// repetitions after two warm-up runs (with --best, the fastest one: on a machine shared with
// other work, the fastest repetition is the one least disturbed, for sgemm and conv alike).
// --only TEXT runs the layers whose printed name ("64->64 3x3 32x32") contains TEXT.
// bench/ops_torch.py prints PyTorch's figures for the same shapes.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <trit/core.hpp>
#include <trit/ops/conv.hpp>

using trit::Tensor;

namespace {

struct Layer {
  const char* net;
  int64_t C, O, HW, K, groups;
};

bool g_best = false;  // --best: report the fastest repetition instead of the median

template <class F>
double median_seconds(int reps, F&& f) {
  f();
  f();  // warm-up: workspaces, page faults, Eigen's blocking
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) t.push_back(f());
  std::sort(t.begin(), t.end());
  return g_best ? t.front() : t[t.size() / 2];
}

// Runs body() once and returns its wall time in seconds; setup() runs untimed before it.
template <class Setup, class Body>
double timed(Setup&& setup, Body&& body) {
  setup();
  auto t0 = std::chrono::steady_clock::now();
  body();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double sgemm_gflops(int reps) {
  const int n = 1024;
  Eigen::MatrixXf a = Eigen::MatrixXf::Random(n, n), b = Eigen::MatrixXf::Random(n, n), c(n, n);
  double s = median_seconds(reps, [&] {
    return timed([] {}, [&] { c.noalias() = a * b; });
  });
  return 2.0 * n * n * n / s * 1e-9;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = trit::get_num_threads(), reps = 7;
  int64_t batch = 64;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    auto value = [&](const char* flag) {
      trit::check(i + 1 < argc, flag, "needs a value");
      return std::atoi(argv[++i]);
    };
    if (!std::strcmp(argv[i], "--threads")) threads = value("--threads");
    else if (!std::strcmp(argv[i], "--reps")) reps = value("--reps");
    else if (!std::strcmp(argv[i], "--batch")) batch = value("--batch");
    else if (!std::strcmp(argv[i], "--best")) g_best = true;
    else if (!std::strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
    else {
      std::fprintf(stderr, "usage: trit-bench-ops [--threads N] [--reps R] [--batch B] [--best] [--only TEXT]\n");
      return 1;
    }
  }
  trit::set_num_threads(threads);

  const double sgemm = sgemm_gflops(reps);
  std::printf("trit-bench-ops: batch %lld, %d threads, %s of %d reps\n", (long long)batch,
              threads, g_best ? "best" : "median", reps);
  std::printf("Eigen sgemm 1024^3: %.1f GFLOP/s\n\n", sgemm);
  std::printf("%-10s %-22s %17s %17s %17s\n", "net", "layer", "forward", "grad input",
              "grad weight");
  std::printf("%-10s %-22s %17s %17s %17s\n", "", "", "GFLOP/s (%sgemm)", "GFLOP/s (%sgemm)",
              "GFLOP/s (%sgemm)");

  const std::vector<Layer> layers = {
      {"ResNet-20", 16, 16, 32, 3, 1},   {"ResNet-20", 32, 32, 16, 3, 1},
      {"ResNet-20", 64, 64, 8, 3, 1},    {"ResNet-18", 64, 64, 32, 3, 1},
      {"ResNet-18", 128, 128, 16, 3, 1}, {"ResNet-18", 256, 256, 8, 3, 1},
      {"ResNet-18", 512, 512, 4, 3, 1},  {"MobileNetV2", 96, 96, 32, 3, 96},
      {"MobileNetV2", 144, 144, 16, 3, 144}, {"MobileNetV2", 96, 576, 8, 1, 1},
  };
  trit::Generator gen(1);
  for (const Layer& l : layers) {
    char name[64];
    std::snprintf(name, sizeof name, "%lld->%lld %lldx%lld %s%lldx%lld", (long long)l.C,
                  (long long)l.O, (long long)l.K, (long long)l.K,
                  l.groups > 1 ? "dw " : "", (long long)l.HW, (long long)l.HW);
    if (std::string(name).find(only) == std::string::npos) continue;
    trit::Conv2dOptions opt{1, l.K / 2, 1, l.groups};
    auto x = Tensor<float>::randn({batch, l.C, l.HW, l.HW}, gen);
    auto w = Tensor<float>::randn({l.O, l.C / l.groups, l.K, l.K}, gen);
    const double flops = 2.0 * batch * l.O * (l.C / l.groups) * l.K * l.K * l.HW * l.HW;
    auto gy = Tensor<float>::randn({batch, l.O, l.HW, l.HW}, gen);

    double fwd = median_seconds(reps, [&] {
      return timed([] {}, [&] { trit::conv2d(x, w, {}, opt); });
    });
    // grad input only: x requires a gradient, w does not (and the reverse for grad weight)
    auto backward_of = [&](bool x_grad) {
      Tensor<float> xi = x.detach(), wi = w.detach(), y;
      if (x_grad) xi.set_requires_grad(); else wi.set_requires_grad();
      return median_seconds(reps, [&] {
        return timed([&] { y = trit::conv2d(xi, wi, {}, opt); xi.zero_grad(); wi.zero_grad(); },
                     [&] { y.backward(gy); });
      });
    };
    double bin = backward_of(true), bw = backward_of(false);

    auto cell = [&](double s) {
      static char buf[4][32];
      static int k = 0;
      char* b = buf[k++ % 4];
      std::snprintf(b, 32, "%7.1f (%3.0f%%)", flops / s * 1e-9, 100.0 * flops / s * 1e-9 / sgemm);
      return b;
    };
    std::printf("%-10s %-22s %17s %17s %17s\n", l.net, name, cell(fwd), cell(bin), cell(bw));
    std::fflush(stdout);
  }
  return 0;
}
