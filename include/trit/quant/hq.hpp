#pragma once
// quant::HQ: hyperspherical quantization (Liu, Chen, Ma, Liu, WACV 2023) as a policy of any
// optimizer:
//
//   optim::AdamW<quant::HQ> adam(model, {.lr = 1e-3, .weight_decay = 0},
//       quant::HQ({.schedule = {.target = 0.7, .fp_epochs = 1, .ramp_epochs = 5}}));
//
// Only the abstract and the start of the introduction are readable (shared notes,
// docs/quantizers.md section 2); the method below is the notes' recommended reading (2.3).
//
// Contract, for every quantized parameter (a conv [O, C, K, K] or linear [O, I] weight):
// - Latent (2.3.1): each output channel c is stored as a unit vector u_c (||u_c|| = 1, the
//   hypersphere), and its magnitude r_c = ||W_c|| is fixed when the optimizer is built (the
//   initial or pretrained weights): HQ learns directions, "more stable than magnitudes". After
//   every update the latent is renormalised to unit norm per channel.
// - Forward weights: the k_c = round((1 - s) * n_c) largest |u_c| are kept (pruned counts
//   spread so the tensor has exactly round(s * numel) zeros), and
//     w_c = r_c * t_c / ||t_c|| = (r_c / sqrt(k_c)) * sign(u_c) * mask_c
//   so each channel is exactly {-a_c, 0, +a_c} with a_c = r_c / sqrt(k_c): the unit ternary
//   direction, scaled back to the channel's magnitude. Then ||w_c - r_c u_c||^2 =
//   2 r_c^2 (1 - cos(u_c, t_c)): the cosine distance HQ shrinks is exactly the gap between
//   the latent and the forward weights. cos(u_c, t_c) = sum_kept |u_c| / sqrt(k_c) is logged
//   per channel (stats, report()).
// - Sparsity s follows options.schedule: during fp_epochs the forward weights are r_c * u_c
//   (full precision with unit-norm latents, 2.3.4); then the cubic ramp, every step.
// - Gradient reaching the latent, from g = dL/dw (the chain rule through w_c = r_c u_c with
//   the straight-through estimator for the ternarisation, on the sphere):
//     g_c = r_c * g_c                                            STE
//         - cosine_weight * (t_c / ||t_c|| - cos_c * u_c)        d/du of cosine_weight * (1 - cos_c)
//     g_c -= (g_c . u_c) u_c                                     tangent to the sphere
//   The cosine term (off during the warm-up) pulls kept weights towards equal magnitude and
//   pruned ones towards 0. Default cosine_weight = 0, by measurement: in the ablation of
//   docs/results.md (ResNet-20, Fashion-MNIST, 90% zeros, fine-tuned from FP32, 2 seeds)
//   1e-3 cost 0.27 points against 0. The term stays available for longer or from-scratch
//   training, where the notes expect it to matter.
//   Weight decay is meaningless on a sphere (it is radial and removed by the renormalisation):
//   give the optimizer weight_decay 0 for clarity.
// - Reinitialisation at epoch boundaries of the quantized phase (2.3.3), options.reinit:
//     pruned   pruned latents restart at 0, their forward value; the kept ones keep
//              their magnitudes. The cosine distance drops, and the order of the kept weights,
//              which the ramp's next pruning decisions read, survives.
//     project  the notes' reading (a) literally: when ternarisation starts and after each
//              sparsity increase, u_c <- t_c / ||t_c|| (cosine distance 0, forward weights
//              unchanged). It also erases the order of the kept weights, so during a ramp
//              the next pruning follows one epoch of gradient drift: not the default.
//     regrow   reading (b): pruned latents are re-drawn with random signs and magnitudes
//              uniform below the channel's threshold, so they can regrow.
//     none     (default) no reinitialisation. By measurement: in the same ablation `pruned`
//              cost 0.43 points against `none` (2 seeds); the modes stay available.
//   Every reinitialisation is followed by renormalisation.
// - Scales are per output channel (the normalisation is), so export codebooks are per channel.
// - Which parameters: options.selection (as PTQ).
//
// Read-out: sparsity(name), sparsity(), report(), layers() (TernaryLayer: mask, scales a_c,
// cosines, radius r_c) and quantized_tensors(params) for the exporter.
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "trit/core/error.hpp"
#include "trit/core/rng.hpp"
#include "trit/optim/quantizer.hpp"
#include "trit/quant/codes.hpp"
#include "trit/quant/schedule.hpp"
#include "trit/quant/selection.hpp"
#include "trit/quant/ternary.hpp"

namespace trit::quant {

enum class Reinit { none, pruned, project, regrow };

inline const char* reinit_name(Reinit r) {
  switch (r) {
    case Reinit::none: return "none";
    case Reinit::pruned: return "pruned";
    case Reinit::project: return "project";
    case Reinit::regrow: return "regrow";
  }
  return "?";
}

struct HQOptions {
  SparsitySchedule schedule;       // target 0.5, no warm-up, no ramp unless set
  Reinit reinit = Reinit::none;    // what happens to the latent at epoch boundaries
  double cosine_weight = 0.0;      // coefficient of the (1 - cos) term per channel
  uint64_t seed = 0;               // for Reinit::regrow
  ParameterSelection selection;

  // Throws trit::Error naming HQ and the bad field.
  void validate() const {
    schedule.validate("HQ");
    check(cosine_weight >= 0 && std::isfinite(cosine_weight), "HQ",
          "cosine_weight must be >= 0, got ", cosine_weight);
  }
};

class HQ {
 public:
  explicit HQ(HQOptions options = {}) : options_(std::move(options)) { options_.validate(); }

  // Quantize this parameter? By options.selection; a yes creates its records.
  template <class T>
  bool quantizes(const optim::ParameterInfo<T>& info) {
    if (!options_.selection.selects(info)) return false;
    check(info.tensor.dim() >= 2, "HQ", info.name, " has shape ", to_string(info.tensor.shape()),
          ": HQ normalises output channels and needs rank >= 2");
    TernaryLayer& l = layers_.at(info.name);
    l.name = info.name;
    l.shape = info.tensor.shape();
    l.groups = info.tensor.size(0);
    Extra& e = extra_[info.name];
    e.rng.seed(options_.seed ^ std::hash<std::string>{}(info.name));
    return true;
  }

  // STE times r_c, the cosine term, and the projection onto the sphere's tangent (see above).
  template <class T>
  void on_gradient(optim::QuantizedParameter<T>& p, const optim::TrainingProgress&) {
    const TernaryLayer& l = layers_.at(p.name);
    const int64_t per = p.latent.numel() / l.groups;
    const bool cosine = !l.full_precision && options_.cosine_weight != 0;
    Tensor<T> g = p.grad.clone();  // p.grad is the weight's own gradient: leave it as it is
    for (int64_t c = 0; c < l.groups; ++c) {
      T* gc = g.data() + c * per;
      const T* u = p.latent.data() + c * per;
      const T* w = p.weight.data() + c * per;
      const double r = l.radius[size_t(c)];
      for (int64_t i = 0; i < per; ++i) gc[i] *= T(r);
      if (cosine && r > 0) {
        // t / ||t|| = w / r; cos = u . (t / ||t||).
        const double cos = l.cosines[size_t(c)];
        const T lambda = T(options_.cosine_weight);
        for (int64_t i = 0; i < per; ++i) gc[i] -= lambda * (T(w[i] / r) - T(cos) * u[i]);
      }
      double radial = 0;
      for (int64_t i = 0; i < per; ++i) radial += double(gc[i]) * double(u[i]);
      for (int64_t i = 0; i < per; ++i) gc[i] -= T(radial) * u[i];
    }
    p.grad = g;
  }

  // Renormalises the latent, reinitialises it when due, and writes the forward weights.
  template <class T>
  void project(optim::QuantizedParameter<T>& p, const optim::TrainingProgress& progress) {
    TernaryLayer& l = layers_.at(p.name);
    Extra& e = extra_[p.name];
    if (l.radius.empty()) l.radius = group_norms(p.latent, l.groups);  // fixed from here on
    normalise(p.latent, l.groups);
    const int64_t per = p.latent.numel() / l.groups;

    if (options_.schedule.full_precision(progress)) {
      for (int64_t i = 0; i < p.latent.numel(); ++i)
        p.weight[i] = T(l.radius[size_t(i / per)]) * p.latent[i];
      l.full_precision = true;
      l.target = 0;
      l.mask.clear();
      l.scales.clear();
      l.cosines.assign(size_t(l.groups), 1.0);
      l.sparsity = zero_fraction(p.weight);
      return;
    }
    const bool starting = l.full_precision;  // the first ternary projection
    l.full_precision = false;
    l.target = options_.schedule.at(progress, target_for(p.name));
    l.mask = magnitude_mask(p.latent, l.groups, l.target);

    if ((starting || e.reinit_due) && options_.reinit != Reinit::none) {
      reinitialise(p.latent, l, e, starting);
      normalise(p.latent, l.groups);
      l.mask = magnitude_mask(p.latent, l.groups, l.target);
    }
    e.reinit_due = false;

    l.scales = unit_norm_scales(l.mask, l.radius);
    project_ternary(p.latent, l.mask, l.scales, p.weight);
    l.cosines = group_cosines(p.latent, p.weight, l.groups);
    l.sparsity = zero_fraction(p.weight);
  }

  // Marks every parameter for reinitialisation at its next projection.
  void on_epoch(const optim::TrainingProgress&) {
    for (auto& [name, e] : extra_) e.reinit_due = true;
  }

  // --- read-out ---
  const HQOptions& options() const { return options_; }
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
  struct Extra {
    bool reinit_due = false;
    double reinit_sparsity = -1;  // sparsity at the last Reinit::project reset
    Generator rng;
  };

  double target_for(const std::string& name) const {
    const Override* o = options_.selection.override_for(name);
    return o && o->sparsity ? *o->sparsity : options_.schedule.target;
  }

  // Each output channel of `u` to unit L2 norm (all-zero channels stay zero).
  template <class T>
  static void normalise(Tensor<T>& u, int64_t groups) {
    const int64_t per = u.numel() / groups;
    const std::vector<double> norms = group_norms(u, groups);
    for (int64_t i = 0; i < u.numel(); ++i) {
      const double n = norms[size_t(i / per)];
      if (n > 0) u[i] = T(double(u[i]) / n);
    }
  }

  // One reinitialisation of the latent `u` by options.reinit, with l.mask current.
  template <class T>
  void reinitialise(Tensor<T>& u, const TernaryLayer& l, Extra& e, bool starting) {
    const int64_t per = u.numel() / l.groups;
    switch (options_.reinit) {
      case Reinit::none:
        return;
      case Reinit::pruned:  // pruned latents restart at 0
        if (starting) return;
        for (int64_t i = 0; i < u.numel(); ++i)
          if (!l.mask[size_t(i)]) u[i] = T(0);
        return;
      case Reinit::project: {  // u <- t / ||t|| when starting or after a sparsity increase
        if (!starting && l.target <= e.reinit_sparsity) return;
        e.reinit_sparsity = l.target;
        const std::vector<int64_t> kept = kept_counts(l.mask, l.groups);
        for (int64_t i = 0; i < u.numel(); ++i) {
          const int64_t k = kept[size_t(i / per)];
          const T a = k ? T(1.0 / std::sqrt(double(k))) : T(0);
          u[i] = l.mask[size_t(i)] ? (u[i] < 0 ? -a : a) : T(0);
        }
        return;
      }
      case Reinit::regrow: {  // pruned latents re-drawn below the channel's threshold
        if (starting) return;
        for (int64_t c = 0; c < l.groups; ++c) {
          double threshold = 0;  // smallest kept |u| of the channel
          bool any = false;
          for (int64_t i = c * per; i < (c + 1) * per; ++i)
            if (l.mask[size_t(i)] && (!any || std::abs(double(u[i])) < threshold))
              threshold = std::abs(double(u[i])), any = true;
          for (int64_t i = c * per; i < (c + 1) * per; ++i)
            if (!l.mask[size_t(i)])
              u[i] = T((e.rng.bernoulli(0.5) ? 1.0 : -1.0) * threshold * e.rng.uniform());
        }
        return;
      }
    }
  }

  HQOptions options_;
  TernaryLayers layers_;
  std::map<std::string, Extra> extra_;
};

static_assert(optim::WeightQuantizer<HQ, float> && optim::WeightQuantizer<HQ, double>);

}  // namespace trit::quant
