#pragma once
// The training loop pieces every program shares: one epoch of training, and an evaluation
// pass. A classifier maps images [N, C, H, W] to logits [N, K]; the loss is cross-entropy.
#include <cmath>
#include <cstdint>
#include <functional>
#include <sstream>
#include <string>

#include "trit/autograd/grad_mode.hpp"
#include "trit/data/dataloader.hpp"
#include "trit/data/dataset.hpp"
#include "trit/nn/module.hpp"
#include "trit/ops/loss.hpp"
#include "trit/train/interrupt.hpp"
#include "trit/train/progress_bar.hpp"

namespace trit::train {

// What one pass over a data set measured.
struct EpochStats {
  double loss = 0;          // mean cross-entropy per image
  double accuracy = 0;      // fraction of images whose arg-max logit is the label
  int64_t images = 0;       // images seen
  double seconds = 0;       // wall time of the pass
  bool interrupted = false; // stopped early by Ctrl-C (training only)
  double images_per_second() const { return seconds > 0 ? images / seconds : 0; }
};

namespace detail {
// Number of rows of logits [N, K] whose arg-max equals the label.
inline int64_t count_correct(const Tensor<float>& logits, const std::vector<int64_t>& labels) {
  const int64_t n = logits.size(0), k = logits.size(1);
  int64_t correct = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* row = logits.data() + i * k;
    int64_t best = 0;
    for (int64_t j = 1; j < k; ++j)
      if (row[j] > row[best]) best = j;
    correct += best == labels[i];
  }
  return correct;
}
}  // namespace detail

// Mean loss and accuracy of `model` on `set`, in eval mode without a graph, `batch` images at
// a time. The model's train/eval mode is restored afterwards.
inline EpochStats evaluate(nn::Module<float>& model, const data::Dataset& set,
                           int64_t batch = 500) {
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard no_grad;
  EpochStats stats;
  auto start = std::chrono::steady_clock::now();
  double loss_sum = 0;
  int64_t correct = 0;
  for (int64_t begin = 0; begin < set.size(); begin += batch) {
    data::Dataset part = set.slice(begin, std::min(set.size(), begin + batch));
    Tensor<float> logits = model.forward(part.images);
    loss_sum += cross_entropy(logits, part.labels).item() * part.size();
    correct += detail::count_correct(logits, part.labels);
  }
  model.train(was_training);
  stats.images = set.size();
  stats.loss = set.size() ? loss_sum / set.size() : 0;
  stats.accuracy = set.size() ? double(correct) / set.size() : 0;
  stats.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return stats;
}

// Called after every optimizer step with the step's index in the epoch; returns extra text for
// the progress bar (e.g. "sparsity 80%"), and is where a per-step LR schedule advances.
using StepHook = std::function<std::string(int64_t step_in_epoch)>;

// One epoch: for each batch of `loader`, forward, cross-entropy, backward, optimizer step.
// A non-finite loss raises trit::Error (training diverged: lower the learning rate). When
// `interrupt` is requested the epoch ends after the current batch with interrupted = true.
template <class Optimizer>
EpochStats train_epoch(nn::Module<float>& model, Optimizer& optimizer, data::DataLoader& loader,
                       const std::string& label, const InterruptFlag* interrupt = nullptr,
                       const StepHook& after_step = {}) {
  model.train();
  EpochStats stats;
  ProgressBar bar(loader.size(), label, loader.options().batch_size, "img");
  const int64_t epoch = loader.epoch();
  auto start = std::chrono::steady_clock::now();
  double loss_sum = 0;
  int64_t correct = 0, step = 0;
  for (const data::Batch& batch : loader) {
    Tensor<float> logits = model.forward(batch.images);
    Tensor<float> loss = cross_entropy(logits, batch.labels);
    const double value = loss.item();
    check(std::isfinite(value), "training",
          "loss became ", value, " at epoch ", epoch + 1, ", step ", step + 1,
          ": training diverged (try a lower --lr)");
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();

    loss_sum += value * batch.size();
    correct += detail::count_correct(logits, batch.labels);
    stats.images += batch.size();
    ++step;
    std::ostringstream extra;
    extra.precision(3);
    extra << "loss " << loss_sum / stats.images;
    if (after_step) {
      std::string more = after_step(step);
      if (!more.empty()) extra << " " << more;
    }
    bar.update(step, extra.str());
    if (interrupt && interrupt->requested()) {
      stats.interrupted = true;
      break;
    }
  }
  bar.finish();
  stats.loss = stats.images ? loss_sum / stats.images : 0;
  stats.accuracy = stats.images ? double(correct) / stats.images : 0;
  stats.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return stats;
}

}  // namespace trit::train
