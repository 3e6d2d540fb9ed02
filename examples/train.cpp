// trit-train: trains an image classifier and writes what it learned.
//
//   build/bin/trit-train --dataset fashion-mnist --model lenet --epochs 3 --out runs/lenet
//
// Read top to bottom, this is the whole life of a training run in trit:
//   1. flags            what to train, on what, for how long
//   2. data             the train and test sets, and a DataLoader that batches the train set
//   3. model            built by name from the model zoo
//   4. optimizer        SGD or Adam (their quantizer policy is the template argument)
//   5. resume           optionally continue from a checkpoint
//   6. epochs           train, evaluate, log a CSV row, redraw the curves, save a checkpoint
//   7. summary          one JSON line with the numbers a script would want
// Ctrl-C finishes the current batch, saves a checkpoint and exits cleanly.
//
// Errors (missing dataset, bad flag value, corrupt checkpoint, diverging loss) print one line
// "error: ..." on stderr; the exit status is 1, or 2 for a usage error.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <trit/trit.hpp>

using namespace trit;

namespace {

// Everything the flags set.
struct Settings {
  std::string dataset = "fashion-mnist";
  std::string data_dir;  // --data; empty: $TRIT_DATA, then the Debian location
  std::string model = "lenet";
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
};

// Sums the FP32 bytes of every tensor the model would save (parameters and buffers).
int64_t fp32_bytes(const nn::Module<float>& model) {
  int64_t n = 0;
  for (auto& [name, t] : model.state_dict()) n += t.numel();
  return 4 * n;
}

// The training state saved at each epoch end: the model's tensors, the optimizer's state as
// "optimizer.<parameter>.<k>", and where training stands.
template <class Optimizer>
void save_training_checkpoint(const std::string& path, const nn::Module<float>& model,
                              const Optimizer& optimizer, const Settings& s, int64_t epochs_done) {
  io::Checkpoint c;
  for (auto& [name, t] : model.state_dict()) c.tensors.emplace_back(name, t);
  for (auto& p : optimizer.parameters())
    for (size_t k = 0; k < p.state.size(); ++k)
      c.tensors.emplace_back("optimizer." + p.name + "." + std::to_string(k), p.state[k]);
  c.metadata = {{"model", s.model},         {"dataset", s.dataset},
                {"optimizer", s.optimizer}, {"epochs_done", std::to_string(epochs_done)},
                {"lr", std::to_string(optimizer.lr())}};
  io::save_checkpoint(path, c);
}

// Loads a checkpoint written by save_training_checkpoint; returns the epochs already done.
template <class Optimizer>
int64_t resume_from(const std::string& path, nn::Module<float>& model, Optimizer& optimizer,
                    const Settings& s) {
  io::Checkpoint c = io::load_checkpoint(path);
  check(c.metadata["model"] == s.model, path, "checkpoint is of model '", c.metadata["model"],
        "', not '", s.model, "'");
  io::Checkpoint model_part;
  for (auto& [name, t] : c.tensors)
    if (name.rfind("optimizer.", 0) != 0) model_part.tensors.emplace_back(name, t);
  io::load_state(model, model_part, path);
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

template <class Optimizer>
int train(const Settings& s, Optimizer& optimizer, nn::Module<float>& model,
          const data::Dataset& train_set, const data::Dataset& test_set) {
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

  // The LR schedule advances once per step, over all the run's steps.
  const int64_t total_steps = s.epochs * loader.size();
  std::unique_ptr<optim::Scheduler> schedule;
  if (s.schedule == "cosine")
    schedule = std::make_unique<optim::CosineAnnealingLR>(optimizer, total_steps);
  for (int64_t i = 0; schedule && i < first_epoch * loader.size(); ++i) schedule->step();

  train::CsvLog log(s.out + "/log.csv",
                    {"epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "lr",
                     "seconds", "images_per_second"},
                    first_epoch > 0 ? train::CsvLog::Mode::append : train::CsvLog::Mode::truncate);
  std::vector<double> train_loss, test_loss, test_accuracy, train_accuracy;

  train::InterruptFlag interrupt;
  double train_seconds = 0;
  int64_t train_images = 0;
  train::EpochStats test;
  for (int64_t epoch = first_epoch; epoch < s.epochs; ++epoch) {
    // 6. one epoch: train, evaluate, log, plot, checkpoint.
    const double lr = optimizer.lr();
    std::string label = "epoch " + std::to_string(epoch + 1) + "/" + std::to_string(s.epochs);
    train::EpochStats trained = train::train_epoch(
        model, optimizer, loader, label, &interrupt, [&](int64_t) {
          if (schedule) schedule->step();
          return std::string();
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
    test = train::evaluate(model, test_set);
    std::printf("epoch %lld/%lld  train loss %.4f  acc %.2f%%  |  test loss %.4f  acc %.2f%%  |"
                "  %.0f img/s\n",
                static_cast<long long>(epoch + 1), static_cast<long long>(s.epochs), trained.loss,
                100 * trained.accuracy, test.loss, 100 * test.accuracy,
                trained.images_per_second());
    std::fflush(stdout);
    log.row({epoch + 1, trained.loss, trained.accuracy, test.loss, test.accuracy, lr,
             trained.seconds, trained.images_per_second()});
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
  if (first_epoch >= s.epochs) test = train::evaluate(model, test_set);

  // 7. the summary a script reads: the last line of stdout.
  std::printf("{\"model\": \"%s\", \"dataset\": \"%s\", \"epochs\": %lld, \"threads\": %d, "
              "\"batch\": %lld, \"test_accuracy\": %.4f, \"test_loss\": %.4f, "
              "\"train_seconds\": %.2f, \"images_per_second\": %.1f, \"parameters\": %lld, "
              "\"model_bytes\": %lld}\n",
              s.model.c_str(), s.dataset.c_str(), static_cast<long long>(s.epochs), s.threads,
              static_cast<long long>(s.batch), test.accuracy, test.loss, train_seconds,
              train_seconds > 0 ? train_images / train_seconds : 0.0,
              static_cast<long long>(model.num_parameters()),
              static_cast<long long>(fp32_bytes(model)));
  return 0;
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
  std::shared_ptr<nn::Module<float>> model = models::make_model(config);
  std::fprintf(stderr, "%s", model->to_string().c_str());

  std::error_code ec;
  fs::create_directories(s.out, ec);
  check(!ec, s.out, "cannot create the output folder: ", ec.message());

  // 4. optimizer
  if (s.optimizer == "sgd") {
    optim::SGD<> sgd(*model, {.lr = s.lr, .momentum = s.momentum, .weight_decay = s.weight_decay});
    return train(s, sgd, *model, train_set, test_set);
  }
  optim::Adam<> adam(*model, {.lr = s.lr, .weight_decay = s.weight_decay});
  return train(s, adam, *model, train_set, test_set);
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
  app.add_option("--epochs", s.epochs, "passes over the training set")
      ->check(CLI::Range(int64_t(1), int64_t(100000)))->capture_default_str();
  app.add_option("--batch", s.batch, "images per step")
      ->check(CLI::Range(int64_t(1), int64_t(65536)))->capture_default_str();
  app.add_option("--lr", s.lr, "learning rate")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--momentum", s.momentum, "SGD momentum")
      ->check(CLI::Range(0.0, 0.999999))->capture_default_str();
  app.add_option("--weight-decay", s.weight_decay, "L2 weight decay")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--optimizer", s.optimizer, "sgd or adam")
      ->check(CLI::IsMember({"sgd", "adam"}))->capture_default_str();
  app.add_option("--schedule", s.schedule, "learning-rate schedule per step: cosine or constant")
      ->check(CLI::IsMember({"cosine", "constant"}))->capture_default_str();
  app.add_option("--threads", s.threads, "CPU threads")
      ->check(CLI::Range(1, 1024))->capture_default_str();
  app.add_option("--seed", s.seed, "random seed (initialisation, shuffling)")->capture_default_str();
  app.add_option("--train-limit", s.train_limit, "use only the first N training images (0: all)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--out", s.out, "folder for checkpoint.ckpt, log.csv and curves.png")
      ->capture_default_str();
  app.add_option("--resume", s.resume, "continue from this checkpoint");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "error: %s\n(run with --help for the flags)\n", e.what());
    return 2;
  }
  try {
    return run(s);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
