#pragma once
// SparsitySchedule: the fraction of a tensor's weights pruned to zero, as training goes on.
//
//   epochs [0, fp_epochs)                   full precision: the policy does not quantize yet
//   [fp_epochs, fp_epochs + ramp_epochs)    sparsity ramps from `initial` to `target` along
//                                           Zhu & Gupta's cubic: fast first, gentle at the end
//   after that                              `target`
// Time is TrainingProgress::epochs(), fractional, so the ramp moves every step.
#include <algorithm>
#include <cmath>

#include "trit/core/error.hpp"
#include "trit/optim/quantizer.hpp"

namespace trit::quant {

struct SparsitySchedule {
  double initial = 0.0;       // sparsity when quantization starts
  double target = 0.5;        // sparsity at the end of the ramp
  double fp_epochs = 0.0;     // full-precision warm-up before quantizing
  double ramp_epochs = 0.0;   // 0: jump to target at once

  void validate(const char* where) const {
    check(initial >= 0 && initial < 1 && target >= 0 && target < 1, where,
          "sparsity must be in [0, 1): initial ", initial, ", target ", target);
    check(fp_epochs >= 0 && ramp_epochs >= 0, where, "fp_epochs ", fp_epochs, " and ramp_epochs ",
          ramp_epochs, " must be >= 0");
  }

  // Still in the full-precision warm-up?
  bool full_precision(const optim::TrainingProgress& progress) const {
    return progress.epochs() < fp_epochs;
  }

  // Sparsity at `progress`, scaled to `target_override` when a per-parameter target is given.
  double at(const optim::TrainingProgress& progress, double target_sparsity) const {
    double t = progress.epochs() - fp_epochs;
    if (t <= 0) return ramp_epochs > 0 ? initial : target_sparsity;
    if (ramp_epochs <= 0 || t >= ramp_epochs) return target_sparsity;
    double left = 1.0 - t / ramp_epochs;
    return target_sparsity + (initial - target_sparsity) * left * left * left;
  }
  double at(const optim::TrainingProgress& progress) const { return at(progress, target); }
};

}  // namespace trit::quant
