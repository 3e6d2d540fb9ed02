// trit-train: trains an image classifier and writes what it learned.
//
//   build/bin/trit-train --dataset fashion-mnist --model lenet --epochs 3 --out runs/lenet
//   build/bin/trit-train --model resnet20 --quant ptq --sparsity 0.7 --epochs 10 --out runs/ptq
//
// Read top to bottom, this is the whole life of a training run in trit:
//   1. flags            what to train, on what, for how long
//   2. data             the train and test sets, and a DataLoader that batches the train set
//   3. model            built by name from the model zoo
//   4. optimizer        SGD, Adam or AdamW, with the quantizer policy as template argument:
//                       optim::SGD<quant::PTQ> trains a ternary network
//   5. resume           optionally continue from a checkpoint
//   6. epochs           train, evaluate, log a CSV row, redraw the curves, save a checkpoint;
//                       with a quantizer also the sparsity and the size the model would have
//   7. files            model.safetensors (the weights the forward pass used), model.trit
//                       (the compressed model), weights.png (latent and quantized weights);
//                       model.trit is read back and run on the test set on its compressed
//                       kernels, to show it predicts what the trained network predicts
//   8. summary          one JSON line
// Ctrl-C finishes the current batch, saves a checkpoint and exits cleanly.
//
// Errors (missing dataset, bad flag value, corrupt checkpoint, diverging loss) print one line
// "error: ..." on stderr; the exit status is 1, or 2 for a usage error.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include <trit/cli.hpp>
#include <trit/trit.hpp>

using namespace trit;

namespace {

// Everything the flags set.
struct Settings {
  std::string dataset = "fashion-mnist";
  std::string data_dir;  // --data; empty: $TRIT_DATA, then the Debian location
  std::string model = "lenet";
  double width = 1.0;          // mobilenet_v2 width multiplier
  std::string shortcut = "A";  // resnet20/32/56 shortcut option
  int64_t epochs = 3;
  int64_t batch = 64;
  double lr = 0.05;
  double momentum = 0.9;
  double weight_decay = 0.0;
  std::string optimizer = "sgd";
  std::string schedule = "cosine";
  int threads = 2;
  uint64_t seed = 1;
  int64_t train_limit = 0;  // 0: the whole training set
  std::string out = "runs/last";
  std::string resume;       // a checkpoint to continue from
  std::string pretrained;   // a checkpoint whose model weights to start from
  // Quantization (see include/trit/quant/): none, ptq, hq or fq.
  std::string quant = "none";
  double sparsity = 0.7;         // target share of zero weights
  double fp_epochs = 0;          // full-precision warm-up
  double ramp_epochs = -1;       // sparsity ramp length; < 0: half the epochs after warm-up
  int bits = 5;                  // fq: bits per weight
  bool keep_fp_classifier = false;
  bool per_channel = false;      // ptq: one scale per output channel
  bool refined_ste = true;       // ptq: masked decay of pruned latents (--no-refined-ste)
  std::string reinit = "none";   // hq: none, pruned, project or regrow
  double cosine_weight = 0.0;    // hq: weight of the (1 - cos) term
  std::string fq_mode = "auto";  // fq: auto, shift or recentralized
  std::string fq_assignment = "sample";  // fq: sample or argmax (mixture component per weight)
  std::vector<std::string> overrides;    // "PATTERN=SPARSITY" or "PATTERN=fp32"
};

// "PATTERN=SPARSITY" (a target sparsity in [0, 1]) or "PATTERN=fp32" (not quantized) as a
// quant::Override; nullopt when the text is neither.
std::optional<quant::Override> parse_override(const std::string& text) {
  const size_t eq = text.rfind('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size()) return std::nullopt;
  quant::Override o;
  o.pattern = text.substr(0, eq);
  const std::string value = text.substr(eq + 1);
  if (value == "fp32") {
    o.quantize = false;
    return o;
  }
  char* end = nullptr;
  const double sparsity = std::strtod(value.c_str(), &end);
  if (end != value.c_str() + value.size() || !(sparsity >= 0 && sparsity <= 1)) return std::nullopt;
  o.sparsity = sparsity;
  return o;
}

// What a run trains: the model (and the arguments that rebuild it) and its data.
struct Job {
  models::ModelConfig config;
  std::shared_ptr<nn::Module<float>> model;
  data::Dataset train_set, test_set;
};

// The sparsity schedule the flags describe.
quant::SparsitySchedule schedule_from(const Settings& s) {
  quant::SparsitySchedule schedule;
  schedule.target = s.sparsity;
  schedule.fp_epochs = s.fp_epochs;
  schedule.ramp_epochs =
      s.ramp_epochs >= 0 ? s.ramp_epochs : std::max(0.0, (double(s.epochs) - s.fp_epochs) / 2);
  return schedule;
}

// The quantized tensors as codes, read off the forward weights; none for quant::None and
// during the full-precision warm-up.
template <class Optimizer>
std::vector<quant::QuantizedTensor> quantized_tensors(const Optimizer& optimizer,
                                                      const Settings& s, double epochs_done) {
  if constexpr (requires { optimizer.policy().quantized_tensors(optimizer.parameters()); }) {
    if (epochs_done >= s.fp_epochs) return optimizer.policy().quantized_tensors(optimizer.parameters());
  }
  return {};
}

// "sparsity 68.2%" for the progress bar, when the policy tracks it.
template <class Optimizer>
std::string sparsity_text(const Optimizer& optimizer) {
  if constexpr (requires { optimizer.policy().sparsity(); }) {
    char text[32];
    std::snprintf(text, sizeof text, "sparsity %.1f%%", 100 * optimizer.policy().sparsity());
    return text;
  }
  return "";
}

// Histograms of the latent (full-precision) and forward (quantized) weights of each quantized
// parameter, one panel each.
template <class Optimizer>
void save_weight_histograms(const std::string& path, const Optimizer& optimizer) {
  std::vector<train::Panel> panels;
  for (const auto& p : optimizer.parameters()) {
    if (!p.quantized) continue;
    std::vector<float> latent = p.latent.to_vector(), forward = p.weight.to_vector();
    train::Histogram h(p.name, std::vector<double>(latent.begin(), latent.end()), 80);
    h.series[0].name = "latent";
    h.add_series("quantized", std::vector<double>(forward.begin(), forward.end()));
    panels.push_back(h);
  }
  if (!panels.empty()) train::save_png(path, panels, 4, 420, 300);
}

// The training state saved at each epoch end: the model's tensors, the optimizer's state as
// "optimizer.<parameter>.<k>", and where training stands.
template <class Optimizer>
void save_training_checkpoint(const std::string& path, const nn::Module<float>& model,
                              const Optimizer& optimizer, const Settings& s, int64_t epochs_done) {
  io::Checkpoint c;
  for (auto& [name, t] : model.state_dict()) c.tensors.emplace_back(name, t);
  for (auto& p : optimizer.parameters()) {
    for (size_t k = 0; k < p.state.size(); ++k)
      c.tensors.emplace_back("optimizer." + p.name + "." + std::to_string(k), p.state[k]);
    if (p.quantized) c.tensors.emplace_back("latent." + p.name, p.latent);
  }
  c.metadata = {{"model", s.model},         {"dataset", s.dataset},
                {"optimizer", s.optimizer}, {"quant", s.quant},
                {"epochs_done", std::to_string(epochs_done)},
                {"lr", std::to_string(optimizer.lr())}};
  io::save_checkpoint(path, c);
}

// Loads the model's own tensors of a checkpoint (not the optimizer's state) into `model`.
io::Checkpoint load_model_weights(const std::string& path, nn::Module<float>& model,
                                  const Settings& s) {
  io::Checkpoint c = io::load_checkpoint(path);
  check(c.metadata["model"] == s.model, path, "checkpoint is of model '", c.metadata["model"],
        "', not '", s.model, "'");
  io::Checkpoint model_part;
  for (auto& [name, t] : c.tensors)
    if (name.rfind("optimizer.", 0) != 0 && name.rfind("latent.", 0) != 0)
      model_part.tensors.emplace_back(name, t);
  io::load_state(model, model_part, path);
  return c;
}

// Loads a checkpoint written by save_training_checkpoint; returns the epochs already done.
// A quantized run continues from its saved latent weights, projected again by the policy.
template <class Optimizer>
int64_t resume_from(const std::string& path, nn::Module<float>& model, Optimizer& optimizer,
                    const Settings& s) {
  io::Checkpoint c = load_model_weights(path, model, s);
  check(c.metadata["quant"] == s.quant, path, "checkpoint was trained with --quant ",
        c.metadata["quant"], ", not ", s.quant);
  for (auto& p : optimizer.parameters())
    if (p.quantized) p.latent.copy_from(c.get<float>("latent." + p.name));
  for (auto& p : optimizer.parameters()) {
    p.state.clear();
    for (size_t k = 0;; ++k) {
      const io::AnyTensor* t = c.find("optimizer." + p.name + "." + std::to_string(k));
      if (!t) break;
      p.state.push_back(c.get<float>("optimizer." + p.name + "." + std::to_string(k)));
    }
  }
  return std::stoll(c.metadata["epochs_done"]);
}

// What running the written .trit file on the compressed kernels gives on the test set, beside
// the trained network: the file must predict what training ended with, image by image.
struct FileCheck {
  bool done = false;          // false: no compressed inference for this architecture
  double accuracy = 0;        // test accuracy of the model rebuilt from the file
  int64_t disagreements = 0;  // images whose argmax differs from the trained network's
  double max_relative_difference = 0;  // max over images of max|a - b| / max|b| (b: trained)
};

FileCheck check_compressed_file(const std::string& path, nn::Module<float>& model,
                                const data::Dataset& test_set) {
  FileCheck result;
  const io::CompressedModel file = io::read_compressed(path);
  if (!infer::Model::supports(file.config.name)) return result;
  const infer::Model compressed(file);
  model.eval();
  NoGradGuard no_grad;
  int64_t correct = 0;
  for (int64_t begin = 0; begin < test_set.size(); begin += 500) {
    data::Dataset part = test_set.slice(begin, std::min(test_set.size(), begin + 500));
    const Tensor<float> expected = model.forward(part.images);
    const Tensor<float> got = compressed.forward(part.images);
    const int64_t k = expected.size(1);
    for (int64_t i = 0; i < part.size(); ++i) {
      int64_t best_expected = 0, best_got = 0;
      double scale = 0, difference = 0;
      for (int64_t j = 0; j < k; ++j) {
        const float e = expected[i * k + j], g = got[i * k + j];
        if (e > expected[i * k + best_expected]) best_expected = j;
        if (g > got[i * k + best_got]) best_got = j;
        scale = std::max(scale, double(std::fabs(e)));
        difference = std::max(difference, double(std::fabs(e - g)));
      }
      result.disagreements += best_expected != best_got;
      correct += best_got == part.labels[i];
      result.max_relative_difference =
          std::max(result.max_relative_difference, difference / std::max(scale, 1e-12));
    }
  }
  model.train();
  result.done = true;
  result.accuracy = test_set.size() ? double(correct) / double(test_set.size()) : 0;
  return result;
}

template <class Optimizer>
int train(const Settings& s, Optimizer& optimizer, const Job& job) {
  nn::Module<float>& model = *job.model;
  const data::Dataset& train_set = job.train_set;
  const data::Dataset& test_set = job.test_set;
  namespace fs = std::filesystem;
  const std::string checkpoint_path = s.out + "/checkpoint.ckpt";

  // 5. resume: continue the epoch count, the weights and the optimizer's momentum.
  int64_t first_epoch = 0;
  if (!s.resume.empty()) {
    first_epoch = resume_from(s.resume, model, optimizer, s);
    std::fprintf(stderr, "resumed from %s after %lld epochs\n", s.resume.c_str(),
                 static_cast<long long>(first_epoch));
  }

  data::DataLoader loader(train_set, data::LoaderOptions{}.set_batch_size(s.batch).set_seed(s.seed));
  loader.set_epoch(first_epoch);
  // The policy's schedules read where training stands.
  optim::TrainingProgress& progress = optimizer.progress();
  progress.steps_per_epoch = loader.size();
  progress.epoch = first_epoch;
  progress.step = first_epoch * loader.size();
  progress.fraction = double(first_epoch) / double(s.epochs);

  // The LR schedule advances once per step, over all the run's steps.
  const int64_t total_steps = s.epochs * loader.size();
  std::unique_ptr<optim::Scheduler> schedule;
  if (s.schedule == "cosine")
    schedule = std::make_unique<optim::CosineAnnealingLR>(optimizer, total_steps);
  for (int64_t i = 0; schedule && i < first_epoch * loader.size(); ++i) schedule->step();

  train::CsvLog log(s.out + "/log.csv",
                    {"epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "lr",
                     "seconds", "images_per_second", "sparsity", "quantized_bytes",
                     "compression_ratio"},
                    first_epoch > 0 ? train::CsvLog::Mode::append : train::CsvLog::Mode::truncate);
  std::vector<double> train_loss, test_loss, test_accuracy, train_accuracy;

  train::InterruptFlag interrupt;
  double train_seconds = 0;
  int64_t train_images = 0;
  train::EpochStats test;
  quant::ModelSize size = quant::model_size(model.state_dict(), {});
  for (int64_t epoch = first_epoch; epoch < s.epochs; ++epoch) {
    // 6. one epoch: train, evaluate, log, plot, checkpoint.
    const double lr = optimizer.lr();
    std::string label = "epoch " + std::to_string(epoch + 1) + "/" + std::to_string(s.epochs);
    train::EpochStats trained = train::train_epoch(
        model, optimizer, loader, label, &interrupt, [&](int64_t step) {
          if (schedule) schedule->step();
          progress.fraction = (double(epoch) + double(step) / double(loader.size())) / s.epochs;
          return sparsity_text(optimizer);
        });
    train_seconds += trained.seconds;
    train_images += trained.images;
    if (trained.interrupted) {
      save_training_checkpoint(checkpoint_path, model, optimizer, s, epoch);
      std::fprintf(stderr, "interrupted: weights saved to %s; --resume %s continues with epoch %lld"
                   " from its start\n", checkpoint_path.c_str(), checkpoint_path.c_str(),
                   static_cast<long long>(epoch + 1));
      return 130;
    }
    optimizer.on_epoch({.step = progress.step, .epoch = epoch + 1,
                        .fraction = double(epoch + 1) / s.epochs,
                        .steps_per_epoch = loader.size()});
    test = train::evaluate(model, test_set);
    size = quant::model_size(model.state_dict(), quantized_tensors(optimizer, s, epoch + 1));
    std::printf("epoch %lld/%lld  train loss %.4f  acc %.2f%%  |  test loss %.4f  acc %.2f%%  |"
                "  %.0f img/s",
                static_cast<long long>(epoch + 1), static_cast<long long>(s.epochs), trained.loss,
                100 * trained.accuracy, test.loss, 100 * test.accuracy,
                trained.images_per_second());
    if (s.quant != "none")
      std::printf("  |  sparsity %.1f%%  size %.1f KB (%.1fx)", 100 * size.sparsity(),
                  size.quantized_bytes / 1000.0, size.compression_ratio());
    std::printf("\n");
    std::fflush(stdout);
    log.row({epoch + 1, trained.loss, trained.accuracy, test.loss, test.accuracy, lr,
             trained.seconds, trained.images_per_second(), size.sparsity(),
             size.quantized_bytes, size.compression_ratio()});
    train_loss.push_back(trained.loss);
    train_accuracy.push_back(100 * trained.accuracy);
    test_loss.push_back(test.loss);
    test_accuracy.push_back(100 * test.accuracy);
    train::Chart loss_chart{"loss", "epoch", "cross-entropy"};
    loss_chart.add_series("train", train_loss).add_series("test", test_loss);
    train::Chart accuracy_chart{"accuracy", "epoch", "top-1 (%)"};
    accuracy_chart.add_series("train", train_accuracy).add_series("test", test_accuracy);
    train::save_png(s.out + "/curves.png", {loss_chart, accuracy_chart});
    save_training_checkpoint(checkpoint_path, model, optimizer, s, epoch + 1);
  }
  if (first_epoch >= s.epochs) {
    test = train::evaluate(model, test_set);
    size = quant::model_size(model.state_dict(), quantized_tensors(optimizer, s, s.epochs));
  }
  // The weights the forward pass used, under PyTorch's names, for any other tool to check;
  // and the compressed model: codes entropy-coded, the rest FP32 (trit-inspect reads it).
  io::save_weights(model, s.out + "/model.safetensors");
  io::CompressedModel compressed = io::save_compressed(
      s.out + "/model.trit", job.config, model.state_dict(), quantized_tensors(optimizer, s, s.epochs));
  save_weight_histograms(s.out + "/weights.png", optimizer);

  // 7. read the file back and run it on the compressed kernels: same predictions?
  const FileCheck file_check = check_compressed_file(s.out + "/model.trit", model, test_set);
  if (file_check.done)
    std::fprintf(stderr, "model.trit on the compressed kernels: test accuracy %.2f%%, %lld of %lld"
                 " predictions differ from the trained network's, logits within %.1e relative\n",
                 100 * file_check.accuracy, static_cast<long long>(file_check.disagreements),
                 static_cast<long long>(test_set.size()), file_check.max_relative_difference);

  std::string file_json;
  if (file_check.done) {
    char text[160];
    std::snprintf(text, sizeof text,
                  ", \"trit_test_accuracy\": %.4f, \"trit_prediction_differences\": %lld, "
                  "\"trit_max_logit_relative_difference\": %.2e",
                  file_check.accuracy, static_cast<long long>(file_check.disagreements),
                  file_check.max_relative_difference);
    file_json = text;
  }
  // 8. the summary a script reads: the last line of stdout.
  std::printf("{\"model\": \"%s\", \"dataset\": \"%s\", \"epochs\": %lld, \"threads\": %d, "
              "\"batch\": %lld, \"test_accuracy\": %.4f, \"test_loss\": %.4f, "
              "\"train_seconds\": %.2f, \"images_per_second\": %.1f, \"parameters\": %lld, "
              "\"model_bytes\": %lld, \"quant\": \"%s\", \"sparsity\": %.4f, \"fp32_bytes\": %lld, "
              "\"quantized_bytes\": %lld, \"compression_ratio\": %.2f, \"trit_file_bytes\": %lld, "
              "\"trit_compression_ratio\": %.2f%s}\n",
              s.model.c_str(), s.dataset.c_str(), static_cast<long long>(s.epochs), s.threads,
              static_cast<long long>(s.batch), test.accuracy, test.loss, train_seconds,
              train_seconds > 0 ? train_images / train_seconds : 0.0,
              static_cast<long long>(model.num_parameters()),
              static_cast<long long>(size.quantized_bytes), s.quant.c_str(), size.sparsity(),
              static_cast<long long>(size.fp32_bytes), static_cast<long long>(size.quantized_bytes),
              size.compression_ratio(), static_cast<long long>(compressed.file_bytes),
              double(size.fp32_bytes) / double(compressed.file_bytes), file_json.c_str());
  return 0;
}

// Builds the optimizer the flags name around `policy` and trains. A policy owns the weight
// decay of the tensors it quantizes, so the optimizer's own decay is off for quantized runs.
template <class Policy>
int train_with(const Settings& s, Policy policy, const Job& job) {
  nn::Module<float>& model = *job.model;
  const bool quantized = !std::is_same_v<Policy, quant::None>;
  const double decay = quantized ? 0.0 : s.weight_decay;
  if (s.optimizer == "sgd") {
    optim::SGD<Policy> sgd(model, {.lr = s.lr, .momentum = s.momentum, .weight_decay = decay},
                           std::move(policy));
    return train(s, sgd, job);
  }
  if (s.optimizer == "adamw") {
    optim::AdamW<Policy> adamw(model, {.lr = s.lr, .weight_decay = decay}, std::move(policy));
    return train(s, adamw, job);
  }
  optim::Adam<Policy> adam(model, {.lr = s.lr, .weight_decay = decay}, std::move(policy));
  return train(s, adam, job);
}

int run(const Settings& s) {
  namespace fs = std::filesystem;
  set_num_threads(s.threads);
  manual_seed(s.seed);

  // 2. data
  data::Dataset train_set = data::load_named_dataset(s.dataset, s.data_dir, /*train=*/true);
  data::Dataset test_set = data::load_named_dataset(s.dataset, s.data_dir, /*train=*/false);
  if (s.train_limit > 0) train_set = train_set.take(s.train_limit);
  std::fprintf(stderr, "%s: %lld training and %lld test images of %s, %lld classes\n",
               s.dataset.c_str(), static_cast<long long>(train_set.size()),
               static_cast<long long>(test_set.size()), to_string(train_set.image_shape()).c_str(),
               static_cast<long long>(train_set.num_classes()));

  // 3. model: its input follows the dataset.
  models::ModelConfig config;
  config.name = s.model;
  config.num_classes = train_set.num_classes();
  config.in_channels = train_set.channels();
  config.input_size = train_set.height();
  config.width = s.width;
  config.shortcut = models::parse_shortcut(s.shortcut);
  std::shared_ptr<nn::Module<float>> model = models::make_model(config);
  std::fprintf(stderr, "%s", model->to_string().c_str());

  std::error_code ec;
  fs::create_directories(s.out, ec);
  check(!ec, s.out, "cannot create the output folder: ", ec.message());

  // Start from trained weights (the papers quantize a pretrained FP32 network).
  if (!s.pretrained.empty()) load_model_weights(s.pretrained, *model, s);

  // 4. optimizer, with the quantizer policy the flags name.
  quant::ParameterSelection selection;
  selection.keep_last_linear_fp32 = s.keep_fp_classifier;
  for (const std::string& text : s.overrides) selection.add_override(*parse_override(text));
  Job job{config, model, train_set, test_set};
  auto run_with = [&](auto policy) { return train_with(s, std::move(policy), job); };
  if (s.quant == "ptq") {
    quant::PTQOptions o;
    o.schedule = schedule_from(s);
    o.selection = selection;
    o.per_channel = s.per_channel;
    o.refined_ste = s.refined_ste;
    o.weight_decay = s.weight_decay;
    return run_with(quant::PTQ(o));
  }
  if (s.quant == "hq") {
    quant::HQOptions o;
    o.schedule = schedule_from(s);
    o.selection = selection;
    o.reinit = s.reinit == "none"      ? quant::Reinit::none
               : s.reinit == "project" ? quant::Reinit::project
               : s.reinit == "regrow"  ? quant::Reinit::regrow
                                       : quant::Reinit::pruned;
    o.cosine_weight = s.cosine_weight;
    return run_with(quant::HQ(o));
  }
  if (s.quant == "fq") {
    quant::FocusedPow2Options o;
    o.bits = s.bits;
    o.schedule = schedule_from(s);
    o.selection = selection;
    o.mode = s.fq_mode == "shift"           ? quant::FQMode::shift
             : s.fq_mode == "recentralized" ? quant::FQMode::recentralized
                                            : quant::FQMode::automatic;
    o.sample_assignment = s.fq_assignment == "sample";
    return run_with(quant::FocusedPow2(o));
  }
  return run_with(quant::None{});
}

}  // namespace

int main(int argc, char** argv) {
  // 1. flags
  Settings s;
  CLI::App app{"trit-train: train an image classifier on a dataset and save it"};
  app.add_option("--dataset", s.dataset, "fashion-mnist, mnist, cifar10, cifar100 or folder:PATH")
      ->capture_default_str();
  app.add_option("--data", s.data_dir,
                 "folder holding the dataset's files (default: $TRIT_DATA, then "
                 "/usr/share/datasets/<dataset>)");
  app.add_option("--model", s.model, "architecture: " + models::model_names())
      ->capture_default_str();
  app.add_option("--width", s.width, "mobilenet_v2: width multiplier")
      ->check(CLI::Range(0.05, 4.0))->capture_default_str();
  app.add_option("--shortcut", s.shortcut, "resnet20/32/56: shortcut option A (identity) or B (1x1 conv)")
      ->check(CLI::IsMember({"A", "B", "a", "b"}))->capture_default_str();
  app.add_option("--epochs", s.epochs, "passes over the training set")
      ->check(CLI::Range(int64_t(1), int64_t(100000)))->capture_default_str();
  app.add_option("--batch", s.batch, "images per step")
      ->check(CLI::Range(int64_t(1), int64_t(65536)))->capture_default_str();
  app.add_option("--lr", s.lr, "learning rate")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--momentum", s.momentum, "SGD momentum")
      ->check(CLI::Range(0.0, 0.999999))->capture_default_str();
  app.add_option("--weight-decay", s.weight_decay, "L2 weight decay")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--optimizer", s.optimizer, "sgd, adam or adamw")
      ->check(CLI::IsMember({"sgd", "adam", "adamw"}))->capture_default_str();
  app.add_option("--schedule", s.schedule, "learning-rate schedule per step: cosine or constant")
      ->check(CLI::IsMember({"cosine", "constant"}))->capture_default_str();
  app.add_option("--threads", s.threads, "CPU threads")
      ->check(CLI::Range(1, 1024))->capture_default_str();
  app.add_option("--seed", s.seed, "random seed (initialisation, shuffling)")->capture_default_str();
  app.add_option("--train-limit", s.train_limit, "use only the first N training images (0: all)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--out", s.out,
                 "folder for checkpoint.ckpt, log.csv, curves.png, model.safetensors, weights.png")
      ->capture_default_str();
  app.add_option("--resume", s.resume, "continue from this checkpoint");
  app.add_option("--pretrained", s.pretrained,
                 "start from the model weights of this checkpoint (e.g. a trained FP32 run)");
  app.add_option("--quant", s.quant, "weight quantizer: none, ptq, hq (ternary) or fq (power-of-two)")
      ->check(CLI::IsMember({"none", "ptq", "hq", "fq"}))->capture_default_str();
  app.add_option("--sparsity", s.sparsity, "target share of zero weights in quantized tensors")
      ->check(CLI::Range(0.0, 0.999))->capture_default_str();
  app.add_option("--fp-epochs", s.fp_epochs, "full-precision epochs before quantizing")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--ramp-epochs", s.ramp_epochs,
                 "epochs over which sparsity ramps up (default: half of those after --fp-epochs)");
  app.add_option("--bits", s.bits, "fq: bits per weight")->check(CLI::Range(2, 8))->capture_default_str();
  app.add_flag("--keep-fp-classifier", s.keep_fp_classifier,
               "keep the last linear layer FP32 (the papers' ~1 MB sizes need it quantized)");
  app.add_flag("--per-channel", s.per_channel, "ptq: one scale per output channel");
  app.add_option("--override", s.overrides,
                 "per-parameter choice by name pattern, repeatable: 'layer1.*=0.5' (sparsity) or "
                 "'fc.weight=fp32' (not quantized)")
      ->check([](const std::string& text) {
        return parse_override(text) ? std::string()
                                    : "expected PATTERN=SPARSITY (0 to 1) or PATTERN=fp32, got '" +
                                          text + "'";
      });
  app.add_flag("!--no-refined-ste", s.refined_ste,
               "ptq: no masked decay of pruned latents (the refined STE's term)");
  app.add_option("--reinit", s.reinit, "hq: what happens to pruned latents at epoch ends")
      ->check(CLI::IsMember({"none", "pruned", "project", "regrow"}))->capture_default_str();
  app.add_option("--cosine-weight", s.cosine_weight, "hq: weight of the (1 - cos) loss term")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--fq-mode", s.fq_mode, "fq: per-layer choice (auto), plain shift, or recentralized")
      ->check(CLI::IsMember({"auto", "shift", "recentralized"}))->capture_default_str();
  app.add_option("--fq-assignment", s.fq_assignment,
                 "fq: mixture component per weight sampled from the posterior, or its argmax")
      ->check(CLI::IsMember({"sample", "argmax"}))->capture_default_str();
  return run_program(app, argc, argv, [&] { return run(s); });
}
