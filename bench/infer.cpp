// trit-bench-infer: inference speed of a compressed model against the same network in FP32.
//
//   trit-bench-infer --file model.trit [--threads N] [--reps R]
//   trit-bench-infer --synthetic resnet20 [--sparsity 0.7] [--in-channels 1] [--size 28]
//                    [--shortcut A] [--save model.trit] [--threads N] [--reps R]
//
// --synthetic builds the model in memory instead of reading a file: random weights, random
// BatchNorm statistics, every conv and linear weight but the stem projected to ternary at
// --sparsity with per-channel scales (quant::PTQ's default selection and projection), and the
// codes read back with quant::encode.
//
// Three forms of the same network run on the same random images, in eval mode, no autograd:
//   compressed  infer::Model, quantized weights as index lists (kernels/ternary.hpp), BN folded
//   dense       infer::Model's dense twin: every weight expanded to FP32, BN folded, GEMM
//   trit nn     the models:: module itself (eval, NoGradGuard): the trit network as trained
// Each figure is images per second: batch over the median of R timed forwards (after 3
// warm-ups; the three forms take turns), at batch 1 and 64. Also printed: weight bytes in memory of each form, the
// process's peak resident memory, and the machine load. The last line is one JSON object.
// With --file the .trit file is read once (io::read_compressed) and all three forms are built
// from it; trit nn is io::make_dense_model.
// Errors print "error: ..." on stderr with exit status 1 (2 for a usage error).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <trit/cli.hpp>
#include <trit/core.hpp>
#include <trit/infer/compressed_model.hpp>
#include <trit/io/trit_format.hpp>
#include <trit/models.hpp>
#include <trit/quant/codes.hpp>
#include <trit/quant/ternary.hpp>

using namespace trit;

namespace {

struct Settings {
  std::string file, synthetic, save;
  double sparsity = 0.7;
  int64_t in_channels = 1, size = 28, num_classes = 10;
  std::string shortcut = "A";
  int threads = 2, reps = 21;
};

// A field of /proc/self/status in KiB ("VmHWM": peak resident set, "VmRSS": current); -1 if
// unreadable.
long status_kib(const char* field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  const std::string key = std::string(field) + ":";
  while (std::getline(status, line))
    if (line.rfind(key, 0) == 0) return std::atol(line.c_str() + key.size());
  return -1;
}

// The process's peak resident set (VmHWM) in MiB; 0 if unreadable.
double peak_rss_mb() { return std::max(0L, status_kib("VmHWM")) / 1024.0; }

// Resets VmHWM to the current resident set (Linux >= 4.0: "5" into /proc/self/clear_refs), so
// that a later VmHWM is the peak of what runs in between. False if the kernel refused.
bool reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
  f.flush();
  return bool(f);
}

// The 1-minute load average, -1 if unreadable.
double load_average() {
  std::ifstream f("/proc/loadavg");
  double l = -1;
  f >> l;
  return l;
}

// Median wall time in seconds of `reps` calls of each step after 3 untimed ones. The steps
// take turns (rep r times step 0, 1, 2, then rep r + 1), so that the slow spells of a loaded
// machine fall on every step alike.
std::vector<double> median_seconds(int reps, const std::vector<std::function<void()>>& steps) {
  for (int i = 0; i < 3; ++i)
    for (auto& step : steps) step();
  std::vector<std::vector<double>> t(steps.size());
  for (int r = 0; r < reps; ++r)
    for (size_t i = 0; i < steps.size(); ++i) {
      auto t0 = std::chrono::steady_clock::now();
      steps[i]();
      t[i].push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
  std::vector<double> medians;
  for (auto& ti : t) {
    std::sort(ti.begin(), ti.end());
    medians.push_back(ti[ti.size() / 2]);
  }
  return medians;
}

// A synthetic ternary model (see the header comment).
io::CompressedModel synthetic_model(const Settings& s) {
  models::ModelConfig config;
  config.name = s.synthetic;
  config.num_classes = s.num_classes;
  config.in_channels = s.in_channels;
  config.input_size = s.size;
  config.shortcut = models::parse_shortcut(s.shortcut);
  Generator gen(1);
  auto model = models::make_model(config);
  for (auto& [name, t] : model->state_dict()) {
    Tensor<float> v = t;
    auto ends = [&](const char* suffix) {
      const std::string x = suffix;
      return name.size() >= x.size() && name.compare(name.size() - x.size(), x.size(), x) == 0;
    };
    if (ends("running_mean")) v.copy_from(Tensor<float>::uniform(v.shape(), -0.1f, 0.1f, gen));
    if (ends("running_var")) v.copy_from(Tensor<float>::uniform(v.shape(), 0.5f, 1.5f, gen));
  }
  std::vector<quant::QuantizedTensor> quantized;
  bool first = true;
  for (auto& [name, w] : model->named_parameters()) {
    if (w.dim() != 2 && w.dim() != 4) continue;  // conv and linear weights only
    if (first && w.dim() == 4) {  // the stem stays FP32
      first = false;
      continue;
    }
    const int64_t groups = w.size(0);
    auto mask = quant::magnitude_mask(w, groups, s.sparsity);
    quant::project_ternary(w, mask, quant::least_squares_scales(w, mask, groups), w);
    quantized.push_back(quant::encode(name, w, quant::Encoding::ternary, true, 3));
  }
  return io::compress(config, model->state_dict(), quantized);
}

io::CompressedModel load_model(const Settings& s) {
  return s.synthetic.empty() ? io::read_compressed(s.file) : synthetic_model(s);
}

int run(const Settings& s) {
  set_num_threads(s.threads);
  const io::CompressedModel file = load_model(s);
  if (!s.save.empty()) {
    io::save_compressed(s.save, file);
    std::printf("wrote %s\n", s.save.c_str());
  }
  const models::ModelConfig& c = file.config;
  infer::Model compressed(file, infer::WeightForm::compressed);
  infer::Model dense(file, infer::WeightForm::dense);
  auto module = io::make_dense_model(file);
  module->eval();

  int64_t quantized = 0, zeros = 0, quantized_tensors = 0;
  for (const auto& t : file.tensors) {
    if (!t.is_quantized()) continue;
    ++quantized_tensors;
    quantized += t.numel();
    zeros += std::llround(t.sparsity() * double(t.numel()));
  }
  std::printf("%s (num_classes=%lld, in_channels=%lld, %lldx%lld input), %d threads, load %.2f\n",
              c.name.c_str(), (long long)c.num_classes, (long long)c.in_channels,
              (long long)c.input_size, (long long)c.input_size, s.threads, load_average());
  std::printf("quantized weights: %lld of %lld tensors, %lld values, sparsity %.3f\n",
              (long long)quantized_tensors, (long long)file.tensors.size(), (long long)quantized,
              quantized ? double(zeros) / double(quantized) : 0.0);
  std::printf("weights in memory: compressed %.1f KiB, dense FP32 %.1f KiB (%.1fx smaller)\n",
              compressed.weight_bytes() / 1024.0, dense.weight_bytes() / 1024.0,
              double(dense.weight_bytes()) / double(compressed.weight_bytes()));

  int64_t fp32_bytes = 0;  // every tensor of the file (parameters and BN buffers) in FP32
  for (const auto& t : file.tensors) fp32_bytes += 4 * t.numel();

  Generator gen(2);
  double img_s[3][2];  // [compressed, dense, nn][batch 1, batch 64]
  long rss_growth_kib = -1;  // peak resident growth over the first compressed batch-1 forwards
  const int64_t batches[2] = {1, 64};
  for (int b = 0; b < 2; ++b) {
    const int64_t N = batches[b];
    Tensor<float> x = Tensor<float>::randn({N, c.in_channels, c.input_size, c.input_size}, gen);
    const int reps = N == 1 ? 5 * s.reps : s.reps;
    // The first forwards of the process: their scratch buffers and activations count here.
    if (N == 1) {
      const long before = status_kib("VmRSS");
      const bool reset = reset_peak_rss();
      for (int i = 0; i < 3; ++i) compressed.forward(x);
      if (before >= 0)
        rss_growth_kib = std::max(0L, status_kib(reset ? "VmHWM" : "VmRSS") - before);
    }
    const std::vector<double> t = median_seconds(
        reps, {[&] { compressed.forward(x); }, [&] { dense.forward(x); },
               [&] {
                 NoGradGuard no_grad;
                 module->forward(x);
               }});
    for (int f = 0; f < 3; ++f) img_s[f][b] = double(N) / t[size_t(f)];
  }
  std::printf("\n%-34s %14s %14s\n", "images/s", "batch 1", "batch 64");
  const char* names[3] = {"compressed (index lists)", "dense FP32 (BN folded, GEMM)",
                          "trit nn module (eval)"};
  for (int f = 0; f < 3; ++f)
    std::printf("%-34s %14.1f %14.1f\n", names[f], img_s[f][0], img_s[f][1]);
  std::printf("%-34s %13.2fx %13.2fx\n", "compressed / dense FP32", img_s[0][0] / img_s[1][0],
              img_s[0][1] / img_s[1][1]);
  std::printf("%-34s %13.2fx %13.2fx\n", "compressed / trit nn module", img_s[0][0] / img_s[2][0],
              img_s[0][1] / img_s[2][1]);
  const double rss = peak_rss_mb();
  std::printf("model in memory: compressed %.1f KiB (weights, biases, layer tables, cached "
              "offsets), FP32 parameters %.1f KiB\n",
              compressed.memory_bytes() / 1024.0, fp32_bytes / 1024.0);
  std::printf("resident memory growth, compressed inference at batch 1: %.1f KiB peak\n",
              double(rss_growth_kib));
  std::printf("peak RSS %.1f MiB (all three forms loaded), load %.2f\n\n", rss, load_average());
  std::printf(
      "{\"model\": \"%s\", \"threads\": %d, \"batch1_compressed_img_s\": %.1f, "
      "\"batch1_dense_img_s\": %.1f, \"batch64_compressed_img_s\": %.1f, "
      "\"batch64_dense_img_s\": %.1f, \"batch1_nn_img_s\": %.1f, \"batch64_nn_img_s\": %.1f, "
      "\"compressed_weight_bytes\": %lld, \"dense_weight_bytes\": %lld, "
      "\"compressed_memory_bytes\": %lld, \"fp32_parameter_bytes\": %lld, "
      "\"batch1_compressed_rss_growth_bytes\": %lld, \"peak_rss_mb\": %.1f}\n",
      c.name.c_str(), s.threads, img_s[0][0], img_s[1][0], img_s[0][1], img_s[1][1], img_s[2][0],
      img_s[2][1], (long long)compressed.weight_bytes(), (long long)dense.weight_bytes(),
      (long long)compressed.memory_bytes(), (long long)fp32_bytes,
      rss_growth_kib < 0 ? -1LL : (long long)rss_growth_kib * 1024, rss);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  CLI::App app{"trit-bench-infer: images/s of a compressed model vs the same network in FP32"};
  auto* file = app.add_option("--file", s.file, "a .trit file")->check(CLI::ExistingFile);
  std::vector<std::string> names;
  for (const auto& [name, factory] : models::model_factories()) names.push_back(name);
  auto* synth = app.add_option("--synthetic", s.synthetic, "build a ternary model in memory: " + models::model_names())
                    ->check(CLI::IsMember(names));
  file->excludes(synth);
  app.add_option("--sparsity", s.sparsity, "synthetic: share of zero weights")
      ->check(CLI::Range(0.0, 0.999))->capture_default_str();
  app.add_option("--in-channels", s.in_channels, "synthetic: input channels")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--size", s.size, "synthetic: input height = width")
      ->check(CLI::Range(12, 512))->capture_default_str();
  app.add_option("--shortcut", s.shortcut, "synthetic resnet: shortcut option A or B")
      ->check(CLI::IsMember({"A", "B", "a", "b"}))->capture_default_str();
  app.add_option("--save", s.save, "also write the model as a .trit file (with --synthetic)")
      ->needs(synth);
  app.add_option("--threads", s.threads, "threads")->check(CLI::Range(1, 256))->capture_default_str();
  app.add_option("--reps", s.reps, "timed forwards per figure (x5 at batch 1)")
      ->check(CLI::Range(3, 10000))->capture_default_str();
  auto needs_a_model = [&] {
    if (s.file.empty() && s.synthetic.empty()) throw CLI::RequiredError("--file or --synthetic");
  };
  return run_program(app, argc, argv, [&] { return run(s); }, needs_a_model);
}
