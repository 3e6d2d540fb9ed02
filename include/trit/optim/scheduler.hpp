#pragma once
// Learning-rate schedulers: each computes the learning rate after t calls of step() from a
// closed form (PyTorch's), and writes it into the optimizer.
//
//   optim::SGD<> sgd(model, {.lr = 0.1, .momentum = 0.9});
//   optim::CosineAnnealingLR cosine(sgd, /*t_max=*/epochs);
//   for (epoch...) { train_one_epoch(); cosine.step(); }
//
// Contract: construction reads base_lr = optimizer.lr() and sets the rate for t = 0; step()
// advances t by one and sets the rate for the new t; get_lr() returns the rate for the current
// t. The optimizer must outlive the scheduler.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <numbers>
#include <utility>
#include <vector>

#include "trit/core/error.hpp"
#include "trit/optim/optimizer.hpp"

namespace trit::optim {

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  // Advances one epoch (or iteration) and sets the optimizer's learning rate.
  void step() {
    ++t_;
    optimizer_->set_lr(lr_at(t_));
  }
  // The learning rate for the current count of steps.
  double get_lr() const { return lr_at(t_); }
  // Number of step() calls so far (PyTorch's last_epoch).
  int64_t steps() const { return t_; }
  double base_lr() const { return base_lr_; }
  // The closed form: learning rate after t steps.
  virtual double lr_at(int64_t t) const = 0;

 protected:
  explicit Scheduler(LearningRate& optimizer)
      : optimizer_(&optimizer), base_lr_(optimizer.lr()) {}
  // Each subclass calls this at the end of its constructor (lr_at is virtual).
  void start() { optimizer_->set_lr(lr_at(0)); }

 private:
  LearningRate* optimizer_;
  double base_lr_;
  int64_t t_ = 0;
};

// base_lr * gamma^(t / step_size), integer division.
class StepLR : public Scheduler {
 public:
  StepLR(LearningRate& optimizer, int64_t step_size, double gamma = 0.1)
      : Scheduler(optimizer), step_size_(step_size), gamma_(gamma) {
    check(step_size > 0, "StepLR", "step_size must be > 0, got ", step_size);
    check(gamma > 0, "StepLR", "gamma must be > 0, got ", gamma);
    start();
  }
  double lr_at(int64_t t) const override {
    return base_lr() * std::pow(gamma_, double(t / step_size_));
  }

 private:
  int64_t step_size_;
  double gamma_;
};

// base_lr * gamma^(number of milestones <= t). Milestones must be increasing.
class MultiStepLR : public Scheduler {
 public:
  MultiStepLR(LearningRate& optimizer, std::vector<int64_t> milestones, double gamma = 0.1)
      : Scheduler(optimizer), milestones_(std::move(milestones)), gamma_(gamma) {
    check(std::is_sorted(milestones_.begin(), milestones_.end()), "MultiStepLR",
          "milestones must be increasing");
    check(gamma > 0, "MultiStepLR", "gamma must be > 0, got ", gamma);
    start();
  }
  double lr_at(int64_t t) const override {
    auto passed = std::upper_bound(milestones_.begin(), milestones_.end(), t) - milestones_.begin();
    return base_lr() * std::pow(gamma_, double(passed));
  }

 private:
  std::vector<int64_t> milestones_;
  double gamma_;
};

// eta_min + (base_lr - eta_min) * (1 + cos(pi * t / t_max)) / 2; past t_max the cosine goes
// on (back up), as PyTorch's.
class CosineAnnealingLR : public Scheduler {
 public:
  CosineAnnealingLR(LearningRate& optimizer, int64_t t_max, double eta_min = 0.0)
      : Scheduler(optimizer), t_max_(t_max), eta_min_(eta_min) {
    check(t_max > 0, "CosineAnnealingLR", "T_max must be > 0, got ", t_max);
    check(eta_min >= 0, "CosineAnnealingLR", "eta_min must be >= 0, got ", eta_min);
    start();
  }
  double lr_at(int64_t t) const override {
    return eta_min_ +
           (base_lr() - eta_min_) * (1 + std::cos(std::numbers::pi * double(t) / double(t_max_))) / 2;
  }

 private:
  int64_t t_max_;
  double eta_min_;
};

// Linear warmup from start_factor * base_lr to base_lr over warmup_steps steps, then either
// base_lr (no `after`) or the `after` schedule restarted at 0 — PyTorch's LinearLR, alone or
// chained as SequentialLR([LinearLR, after], milestones=[warmup_steps]). Build `after` on the
// same optimizer first: LinearWarmup warmup(opt, 0.1, 5, std::make_unique<CosineAnnealingLR>(opt, 95)).
class LinearWarmup : public Scheduler {
 public:
  LinearWarmup(LearningRate& optimizer, double start_factor, int64_t warmup_steps,
               std::unique_ptr<Scheduler> after = nullptr)
      : Scheduler(optimizer),
        start_factor_(start_factor),
        warmup_steps_(warmup_steps),
        after_(std::move(after)) {
    check(start_factor > 0 && start_factor <= 1, "LinearWarmup",
          "start_factor must be in (0, 1], got ", start_factor);
    check(warmup_steps > 0, "LinearWarmup", "warmup_steps must be > 0, got ", warmup_steps);
    start();
  }
  double lr_at(int64_t t) const override {
    if (t >= warmup_steps_ && after_) return after_->lr_at(t - warmup_steps_);
    double done = double(std::min(t, warmup_steps_)) / double(warmup_steps_);
    return base_lr() * (start_factor_ + (1 - start_factor_) * done);
  }

 private:
  double start_factor_;
  int64_t warmup_steps_;
  std::unique_ptr<Scheduler> after_;
};

// The one-cycle policy (PyTorch's OneCycleLR, cosine annealing, two phases, no momentum
// cycling): from max_lr / div_factor up to max_lr over the first pct_start of total_steps,
// then down to max_lr / div_factor / final_div_factor at step total_steps - 1. Ignores the
// optimizer's lr; stepping past total_steps throws, as PyTorch does.
class OneCycleLR : public Scheduler {
 public:
  OneCycleLR(LearningRate& optimizer, double max_lr, int64_t total_steps, double pct_start = 0.3,
             double div_factor = 25.0, double final_div_factor = 1e4)
      : Scheduler(optimizer),
        max_lr_(max_lr),
        initial_lr_(max_lr / div_factor),
        min_lr_(max_lr / div_factor / final_div_factor),
        total_steps_(total_steps),
        warm_end_(pct_start * double(total_steps) - 1) {
    check(max_lr > 0, "OneCycleLR", "max_lr must be > 0, got ", max_lr);
    check(total_steps > 0, "OneCycleLR", "total_steps must be > 0, got ", total_steps);
    check(pct_start > 0 && pct_start < 1, "OneCycleLR", "pct_start must be in (0, 1), got ",
          pct_start);
    check(div_factor > 0 && final_div_factor > 0, "OneCycleLR",
          "div_factor and final_div_factor must be > 0");
    check(warm_end_ != 0 && warm_end_ < double(total_steps - 1), "OneCycleLR",
          "pct_start ", pct_start, " leaves an empty phase for total_steps ", total_steps);
    start();
  }
  double lr_at(int64_t t) const override {
    check(t <= total_steps_, "OneCycleLR", "stepped ", t, " times, more than total_steps ",
          total_steps_);
    auto anneal = [](double from, double to, double pct) {
      return to + (from - to) / 2 * (std::cos(std::numbers::pi * pct) + 1);
    };
    if (double(t) <= warm_end_) return anneal(initial_lr_, max_lr_, double(t) / warm_end_);
    double end = double(total_steps_ - 1);
    return anneal(max_lr_, min_lr_, (double(t) - warm_end_) / (end - warm_end_));
  }

 private:
  double max_lr_, initial_lr_, min_lr_;
  int64_t total_steps_;
  double warm_end_;  // last step of the warm-up phase (PyTorch: pct_start * total - 1)
};

}  // namespace trit::optim
