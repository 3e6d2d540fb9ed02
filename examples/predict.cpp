// trit-predict: runs a model on a batch of inputs and writes its logits, so a PyTorch user
// can check trit against their own model with the same weights.
//
//   build/bin/trit-predict --model resnet20 --weights w.safetensors \
//       --input x.safetensors --output y.safetensors
//
// Read top to bottom:
//   1. flags     the architecture (as trit-train builds it) and three files
//   2. input     the tensor "input" [N, C, H, W] float32 from a safetensors file
//   3. model     built by name, weights loaded strictly: every tensor of the model must be in
//                the file with its shape, and nothing else
//   4. forward   eval mode (BatchNorm uses its running statistics, no dropout), no graph
//   5. output    the tensor "logits" [N, K] in a safetensors file
//   6. check     with --expect E.safetensors: compares with E's tensor "logits" (for example
//                PyTorch's, saved beside the input) and fails if an element differs by more
//                than --tolerance times max(1, |expected|)
//
// From PyTorch (with the safetensors package):
//   save_file(model.state_dict(), "w.safetensors"); save_file({"input": x}, "x.safetensors")
//   ... then load_file("y.safetensors")["logits"] vs model.eval()(x)
//
// The model's options are explicit, never guessed from the input: --small-input selects the
// CIFAR variant of resnet18/34/50 and mobilenet_v2 (for mobilenet_v2 it changes strides, not
// weight shapes, so a wrong choice would not show up as a loading error).
//
// Errors print one line "error: ..." on stderr; the exit status is 1, or 2 for a usage error.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>

#include <trit/cli.hpp>
#include <trit/trit.hpp>

using namespace trit;

namespace {

// Everything the flags set.
struct Settings {
  std::string model;
  int64_t num_classes = 10;
  int64_t in_channels = 0;  // 0: the channels of the input
  double width = 1.0;
  bool small_input = false;
  std::string shortcut = "A";
  std::string weights;
  std::string input;
  std::string output;
  std::string expect;        // safetensors file with the expected "logits"
  double tolerance = 1e-4;   // per element, relative to max(1, |expected|)
  int threads = 2;
};

// Loads the weights file at `path` into `model`, strictly, choosing the reader by the file's
// extension. (Only safetensors for now; another format is one more branch here.)
void load_model_weights(nn::Module<float>& model, const std::string& path) {
  auto ends_with = [&](const std::string& suffix) {
    return path.size() >= suffix.size() &&
           path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (ends_with(".safetensors")) {
    io::load_weights(model, path, /*strict=*/true);
    return;
  }
  throw Error("--weights", "'" + path + "': unknown weights format; expected .safetensors or .trit");
}

bool is_trit_file(const std::string& path) {
  return path.size() >= 5 && path.compare(path.size() - 5, 5, ".trit") == 0;
}

// 6. check: the largest |logit - expected| / max(1, |expected|) against --tolerance.
int check_expected(const Settings& s, const Tensor<float>& logits) {
  io::SafetensorsFile file = io::load_safetensors(s.expect);
  const Tensor<float>* expected = file.find("logits");
  check(expected != nullptr, s.expect, "no tensor named 'logits' in the file");
  check(expected->shape() == logits.shape(), s.expect, "expected logits of shape ",
        to_string(expected->shape()), ", the model gives ", to_string(logits.shape()));
  double worst = 0;
  int64_t at = 0;
  for (int64_t i = 0; i < logits.numel(); ++i) {
    const double e = (*expected)[i];
    const double difference = std::fabs(double(logits[i]) - e) / std::max(1.0, std::fabs(e));
    if (!(difference <= worst)) worst = difference, at = i;  // a NaN counts as the worst
  }
  const bool ok = worst <= s.tolerance;
  std::printf("%s: largest difference %.3g (relative to max(1, |expected|)) at logit %lld, "
              "tolerance %.3g\n", ok ? "match" : "MISMATCH", worst, static_cast<long long>(at),
              s.tolerance);
  check(ok, s.expect, "logits differ by ", worst, " at element ", at, ", more than --tolerance ",
        s.tolerance);
  return 0;
}

// 5. output: the tensor "logits" [N, K]; then 6. the check against --expect.
int write_logits(const Settings& s, const std::string& model, const Tensor<float>& logits) {
  io::save_safetensors(s.output, {{"logits", logits}}, {{"model", model}, {"weights", s.weights}});
  std::fprintf(stderr, "%s: logits %s written to %s\n", model.c_str(),
               to_string(logits.shape()).c_str(), s.output.c_str());
  return s.expect.empty() ? 0 : check_expected(s, logits);
}

int run(const Settings& s) {
  set_num_threads(s.threads);

  // 2. input
  io::SafetensorsFile input_file = io::load_safetensors(s.input);
  const Tensor<float>* found = input_file.find("input");
  check(found != nullptr, s.input, "no tensor named 'input' in the file");
  const Tensor<float> x = *found;
  check(x.dim() == 4 && x.size(0) > 0, s.input, "tensor 'input' must be [N, C, H, W] with N > 0, ",
        "got ", to_string(x.shape()));
  const int64_t channels = s.in_channels > 0 ? s.in_channels : x.size(1);
  check(x.size(1) == channels, s.input, "tensor 'input' has ", x.size(1),
        " channels but --in-channels is ", channels);
  check(x.size(2) == x.size(3), s.input, "tensor 'input' must have square images, got ",
        to_string(x.shape()));

  // 3. model. A .trit file names its own architecture and runs on the compressed kernels.
  if (is_trit_file(s.weights)) {
    io::CompressedModel file = io::read_compressed(s.weights);
    check(file.config.in_channels == channels, s.weights, "the model takes ",
          file.config.in_channels, " input channels, the input has ", channels);
    Tensor<float> logits;
    if (infer::Model::supports(file.config.name)) {
      logits = infer::Model(file).forward(x);
    } else {  // no compressed kernels for this architecture yet: run it dense
      std::shared_ptr<nn::Module<float>> dense = io::make_dense_model(file);
      dense->eval();
      NoGradGuard no_grad;
      logits = (*dense)(x);
    }
    return write_logits(s, file.config.name, logits);
  }
  check(!s.model.empty(), "--model", "is required unless --weights is a .trit file");
  models::ModelConfig config;
  config.name = s.model;
  config.num_classes = s.num_classes;
  config.in_channels = channels;
  config.input_size = x.size(2);
  config.width = s.width;
  config.small_input = s.small_input;
  config.shortcut = models::parse_shortcut(s.shortcut);
  std::shared_ptr<nn::Module<float>> model = models::make_model(config);
  load_model_weights(*model, s.weights);

  // 4. forward
  model->eval();
  Tensor<float> logits;
  {
    NoGradGuard no_grad;
    logits = (*model)(x);
  }

  return write_logits(s, s.model, logits);
}

}  // namespace

int main(int argc, char** argv) {
  // 1. flags
  Settings s;
  CLI::App app{"trit-predict: run a model with given weights on the tensor 'input' of a "
               "safetensors file and write the tensor 'logits'"};
  app.add_option("--model", s.model,
                 "architecture: " + models::model_names() + " (not needed with a .trit file)");
  app.add_option("--num-classes", s.num_classes, "number of classes K (rows of the last layer)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 30))->capture_default_str();
  app.add_option("--in-channels", s.in_channels, "input channels C (default: the input's)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  app.add_option("--width", s.width, "width multiplier (mobilenet_v2)")
      ->check(CLI::Range(0.01, 100.0))->capture_default_str();
  app.add_flag("--small-input", s.small_input,
               "CIFAR variant: stride-1 stem (resnet18/34/50, mobilenet_v2)");
  app.add_option("--shortcut", s.shortcut, "resnet20/32/56 shortcut option: A or B")
      ->check(CLI::IsMember({"A", "B", "a", "b"}))->capture_default_str();
  app.add_option("--weights", s.weights, "weights: .safetensors (loaded strictly) or .trit (runs compressed)")->required();
  app.add_option("--input", s.input, "safetensors file with the tensor 'input' [N, C, H, W]")
      ->required();
  app.add_option("--output", s.output, "safetensors file to write the tensor 'logits' [N, K] to")
      ->required();
  app.add_option("--expect", s.expect,
                 "safetensors file whose tensor 'logits' the output must match (exit 1 if not)");
  app.add_option("--tolerance", s.tolerance, "--expect: largest |y - e| / max(1, |e|) allowed")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--threads", s.threads, "CPU threads")
      ->check(CLI::Range(1, 1024))->capture_default_str();
  return run_program(app, argc, argv, [&] { return run(s); });
}
