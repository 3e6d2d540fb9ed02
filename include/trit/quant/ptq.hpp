#pragma once
// quant::PTQ: pruning ternary quantization (Liu, Chen, Fu, Ma, Liu, arXiv 2107.10998) as a
// policy of any optimizer:
//
//   optim::SGD<quant::PTQ> sgd(model, {.lr = 0.1, .momentum = 0.9},   // optimizer decay 0:
//       quant::PTQ({.schedule = {.target = 0.7, .fp_epochs = 1, .ramp_epochs = 5}}));
//
// Only the papers' abstracts are readable (shared notes, docs/quantizers.md section 1), so the
// method below is the notes' recommended reading (section 1.5); each choice says so.
//
// Contract, for every quantized parameter W (the latent, full precision, in the optimizer):
// - Forward weights (section 1.5.1-2). With u = W / ||W|| the L2-normalised latent (per
//   tensor, or per output channel with per_channel), keep the (1 - s) largest |u| and write
//     w = a * sign(u) * mask,   a = ||W|| * mean_kept |u| = mean_kept |W|
//   so the weights the network computes with are exactly {-a, 0, +a} (one a per tensor or per
//   output channel) with exactly round(s * numel) zeros. a is the least-squares (TWN) scale of
//   the notes' default: it keeps the weight scale continuous as the mask changes.
//   The normalisation is the projection's, not a rescaling of the stored latent: the mask and
//   codes depend only on u, a is read back in the latent's units, and ||W|| stays free so the
//   optimizer's learning rate keeps the units of the weights (a unit-norm latent of N weights
//   has entries near 1/sqrt(N), which would scale SGD's relative step by ||W||^2) and the
//   policy's weight decay is not a no-op. Per-layer ||W|| and cos(W, w) are in the stats.
// - Sparsity s follows options.schedule (SparsitySchedule, section 1.5.3): full precision for
//   fp_epochs (project copies latent to weight, unquantized), then the cubic ramp from
//   `initial` to `target` over ramp_epochs, moving every step; the mask is re-selected by
//   magnitude after every step. A per-name override (`selection.add_override({.pattern =
//   "layer1.*", .sparsity = 0.5})`) replaces `target` for matching parameters.
// - Gradient reaching the latent (section 1.5.4-5), from g = dL/dw:
//     g_latent = g                                 identity straight-through estimator
//              + weight_decay * W                  the method's own L2 decay (section 1.5.5)
//              + refined_decay * (1 - mask) * W    refined STE: SR-STE's masked decay pulls
//                                                  pruned latents towards 0, their forward
//                                                  value, shrinking the latent/forward gap
//   The refined term is off during the warm-up (no mask yet) and with refined_ste = false.
//   That PTQ uses exactly SR-STE's term is the notes' reading, unverified (section 1.5.4).
//   The policy owns the decay on the tensors it quantizes: give the optimizer weight_decay 0
//   (or let it decay only the rest), or these tensors are decayed twice.
// - per_channel defaults to false: symmetric ternary with one scale per tensor is what the
//   paper describes, what its 2-bit size counts, and behind every conv there is a BatchNorm
//   that absorbs per-channel scale anyway. per_channel = true helps the classifier (no BN
//   after it) at C extra floats.
// - Which parameters: options.selection (default every conv and linear weight except the
//   first conv; the classifier too unless keep_last_linear_fp32).
//
// Read-out: sparsity(name), sparsity(), report(), layers(), and quantized_tensors(params)
// (codes read off the forward weights by quant::encode) for the exporter.
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "trit/core/error.hpp"
#include "trit/optim/quantizer.hpp"
#include "trit/quant/codes.hpp"
#include "trit/quant/schedule.hpp"
#include "trit/quant/selection.hpp"
#include "trit/quant/ternary.hpp"

namespace trit::quant {

struct PTQOptions {
  SparsitySchedule schedule;        // target 0.5, no warm-up, no ramp unless set
  bool per_channel = false;         // one scale (and normalisation) per output channel
  bool refined_ste = true;          // add the masked decay of pruned latents
  double refined_decay = 2e-4;      // its coefficient (SR-STE's default lambda_w)
  double weight_decay = 5e-4;       // the method's L2 decay of the latent (CIFAR/Fashion-MNIST;
                                    // 1e-4 for ImageNet-like runs)
  ParameterSelection selection;

  // Throws trit::Error naming PTQ and the bad field.
  void validate() const {
    schedule.validate("PTQ");
    check(refined_decay >= 0 && std::isfinite(refined_decay), "PTQ",
          "refined_decay must be >= 0, got ", refined_decay);
    check(weight_decay >= 0 && std::isfinite(weight_decay), "PTQ",
          "weight_decay must be >= 0, got ", weight_decay);
  }
};

class PTQ {
 public:
  explicit PTQ(PTQOptions options = {}) : options_(std::move(options)) { options_.validate(); }

  // Quantize this parameter? By options.selection; a yes creates its record.
  template <class T>
  bool quantizes(const optim::ParameterInfo<T>& info) {
    if (!options_.selection.selects(info)) return false;
    TernaryLayer& l = layers_.at(info.name);
    l.name = info.name;
    l.shape = info.tensor.shape();
    l.groups = ternary_groups(info.tensor, options_.per_channel);
    return true;
  }

  // g_latent = g + weight_decay * W + [refined] refined_decay * (1 - mask) * W (see above).
  template <class T>
  void on_gradient(optim::QuantizedParameter<T>& p, const optim::TrainingProgress&) {
    const TernaryLayer& l = layers_.at(p.name);
    Tensor<T> g = p.grad.clone();  // p.grad is the weight's own gradient: leave it as it is
    if (options_.weight_decay != 0) g.array() += T(options_.weight_decay) * p.latent.array();
    if (options_.refined_ste && options_.refined_decay != 0 && !l.mask.empty()) {
      const T lambda = T(options_.refined_decay);
      T* gi = g.data();
      const T* w = p.latent.data();
      for (size_t i = 0; i < l.mask.size(); ++i)
        if (!l.mask[i]) gi[i] += lambda * w[i];
    }
    p.grad = g;
  }

  // Writes the forward weights from the latent: a copy during the warm-up, then the ternary
  // projection at the scheduled sparsity (see above).
  template <class T>
  void project(optim::QuantizedParameter<T>& p, const optim::TrainingProgress& progress) {
    TernaryLayer& l = layers_.at(p.name);
    if (options_.schedule.full_precision(progress)) {
      p.weight.copy_from(p.latent);
      l.full_precision = true;
      l.target = 0;
      l.mask.clear();
      l.scales.clear();
      l.cosines.assign(size_t(l.groups), 1.0);
    } else {
      l.full_precision = false;
      l.target = options_.schedule.at(progress, target_for(p.name));
      l.mask = magnitude_mask(p.latent, l.groups, l.target);
      l.scales = least_squares_scales(p.latent, l.mask, l.groups);
      project_ternary(p.latent, l.mask, l.scales, p.weight);
      l.cosines = group_cosines(p.latent, p.weight, l.groups);
    }
    l.radius = group_norms(p.latent, l.groups);
    l.sparsity = zero_fraction(p.weight);
  }

  // The schedule reads the progress itself; nothing happens at epoch boundaries.
  void on_epoch(const optim::TrainingProgress&) {}

  // --- read-out ---
  const PTQOptions& options() const { return options_; }
  const TernaryLayers& layers() const { return layers_; }
  double sparsity(const std::string& name) const { return layers_.sparsity(name); }
  double sparsity() const { return layers_.sparsity(); }  // over all quantized weights
  std::string report() const { return layers_.report(); }
  template <class T>
  std::vector<QuantizedTensor> quantized_tensors(
      const std::vector<optim::QuantizedParameter<T>>& parameters) const {
    return layers_.quantized_tensors(parameters);
  }

 private:
  // The target sparsity of `name`: its override's, else the schedule's.
  double target_for(const std::string& name) const {
    const Override* o = options_.selection.override_for(name);
    return o && o->sparsity ? *o->sparsity : options_.schedule.target;
  }

  PTQOptions options_;
  TernaryLayers layers_;
};

static_assert(optim::WeightQuantizer<PTQ, float> && optim::WeightQuantizer<PTQ, double>);

}  // namespace trit::quant
