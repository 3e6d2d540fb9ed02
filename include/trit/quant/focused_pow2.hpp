#pragma once
// quant::FocusedPow2: focused quantization (FQ; Zhao, Gao et al., NeurIPS 2019; shared notes on
// the quantizers, section 3) as an optimizer policy:
//
//   optim::SGD<quant::FocusedPow2> sgd(model, {.lr = 0.01, .momentum = 0.9},
//       quant::FocusedPow2({.bits = 5, .schedule = {.target = 0.75, .fp_epochs = 1,
//                                                   .ramp_epochs = 4}}));
//   ... each epoch end: sgd.on_epoch(progress)   (refits the mixtures on schedule)
//   auto codes = sgd.policy().quantized_tensors(sgd.parameters());
//
// THE CONTRACT, per quantized parameter (latent theta, forward weight w, n = bits):
// - Schedule. While SparsitySchedule::full_precision (the first fp_epochs) w = theta and the
//   gradient passes unchanged. After that the layer is quantized at every projection.
// - Mask z (fine-grained magnitude pruning). The round(s * numel) smallest |theta| are pruned,
//   s = schedule.at(progress, target) (per-name override of the target via the selection).
//   Ties go by index, so the count is exact. The mask is recomputed from |theta| at every step
//   while the cubic ramp runs (Zhu & Gupta) and frozen once it reaches its target (as Mayo's
//   FQ config freezes the DNS mask). Pruned weights are exactly 0 and get no gradient.
// - Mixture. A 2-component Gaussian mixture (gaussian_mixture.hpp) is fitted by EM to the
//   surviving latents (notes 3.9.1): at the first quantized projection, then at
//   refit_interval * {1, 2, 4, 8, ...} epochs after quantization started (refit_growth = 2;
//   notes 3.5, 3.9.2; growth 1 refits every interval). Each weight's component m is SAMPLED
//   from the posterior with a per-parameter seeded RNG (notes 3.3; sample_assignment = false
//   takes the argmax) and stays fixed until the next refit.
//   hardware = true (default, notes 3.3.5 / 3.9.6): the means are rounded to the nearest power
//   of two and both components use one sigma = sqrt(lambda_0 sigma_0^2 + lambda_1 sigma_1^2).
// - Mode per layer (notes 3.4): recentralized unless the Wasserstein separation of the fitted
//   (free) mixture is below w_sep = 2.0, then shift; `mode` can force one. Re-decided at each fit.
// - Forward weights. w = 0 where z = 0, else
//     recentralized:  w = alpha * (mu_m + sigma_m * v),  v = Q^shift_{n-1}((theta - mu_m) / sigma_m)
//     shift:          w = alpha * v,                     v = Q^shift_n(theta)
//   where Q^shift_k rounds to {0} u {+-2^j : j in [top - E + 1, top]} with E = 2^(k-2)
//   exponents (a k-bit shift value: sign, zero, 2^(k-2) exponents; notes 3.1), in the linear
//   domain (2^j | 2^(j+1) boundary at 1.5 * 2^j; Mayo), clipped at 2^top. So an n-bit
//   recentralized weight is 1 bit of m plus an (n-1)-bit shift value (notes 3.2).
//   top is chosen per layer at every projection by the overflow rule (notes 3.1): the smallest
//   integer with at most a fraction 1/(2^k + 1) of the normalised survivors rounding above 2^top.
//   Zero is reserved for pruned weights: a survivor never becomes 0. In recentralized mode
//   v = 0 gives mu_m (notes 3.2, ours); in shift mode a survivor below the smallest level takes
//   the smallest level (ours: so the sparsity is exactly the mask's).
//   So each tensor has at most max_levels() distinct values: 1 + 2^(n-1) (shift) or
//   1 + 2 * (1 + 2^(n-2)) (recentralized), 17 and 19 at the default n = 5.
//   For checking: |w - centre(m)| / step(m) is 0 or an exact power of two, where
//   centre(m) = alpha * mu_m and step(m) = alpha * sigma_m (recentralized) or 0 and alpha (shift).
// - Gradient reaching the latent (notes 3.5, 3.9.4): straight through the rounding, exact for
//   alpha and the mask:  dL/dtheta = alpha * z * dL/dw.
// - alpha, the per-layer scale (initialised to 1, notes 3.2). The optimizer concept cannot
//   register extra optimizer parameters, so the policy trains alpha itself by plain SGD:
//   alpha -= alpha_lr * sum(dL/dw * w / alpha) (notes 3.9.4), halving instead when that step
//   would not keep alpha > 0. alpha_lr = 0 (default) keeps alpha = 1: every quantized conv of
//   trit's models is followed by BatchNorm, which absorbs a per-layer scale (notes 3.3.5).
//
// Not implemented (documented choices): the INQ stages of the paper's pipeline (the fp warm-up
// and the sparsity ramp stand in for them), DNS hysteresis (magnitude pruning instead), Mayo's
// |theta - Q(theta)| penalty, Huffman coding (size accounting is the exporter's).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "trit/core/error.hpp"
#include "trit/core/rng.hpp"
#include "trit/core/tensor.hpp"
#include "trit/optim/quantizer.hpp"
#include "trit/quant/codes.hpp"
#include "trit/quant/gaussian_mixture.hpp"
#include "trit/quant/schedule.hpp"
#include "trit/quant/selection.hpp"
#include "trit/quant/ternary.hpp"

namespace trit::quant {

// ---- shift (power-of-two) quantization, notes 3.1 --------------------------------------------

// Q^shift: rounds x to 0 or +-2^j with j in [top - exponents + 1, top], in the linear domain
// (|x| >= 1.5 * 2^j rounds up to 2^(j+1)), clipped to +-2^top. Below half the smallest level
// the result is 0 when `zero_allowed`, else +-(smallest level) (x = 0 then gives +smallest).
inline double shift_quantize(double x, int top, int exponents, bool zero_allowed) {
  const int lowest = top - exponents + 1;
  if (x == 0) return zero_allowed ? 0.0 : std::ldexp(1.0, lowest);
  int ex = 0;
  const double f = std::frexp(std::abs(x), &ex);  // |x| = f * 2^ex, f in [0.5, 1)
  int j = f >= 0.75 ? ex : ex - 1;                 // nearest power of two, linear rounding
  j = std::min(j, top);
  if (j < lowest) {
    // |x| < 1.5 * 2^(lowest-1) here; 0 and 2^lowest meet at half the smallest level.
    if (zero_allowed && std::abs(x) < std::ldexp(1.0, lowest - 1)) return 0.0;
    j = lowest;
  }
  return std::copysign(std::ldexp(1.0, j), x);
}

// The overflow rule for the top exponent (notes 3.1): the smallest integer `top` such that at
// most floor(overflow_fraction * N) of the N magnitudes round above 2^top (|x| >= 1.5 * 2^top).
// Reorders `magnitudes`. 0 when there are none or they are all 0.
inline int overflow_top_exponent(std::vector<double>& magnitudes, double overflow_fraction) {
  const int64_t n = static_cast<int64_t>(magnitudes.size());
  if (n == 0) return 0;
  const int64_t allowed = std::min<int64_t>(n - 1, int64_t(std::floor(overflow_fraction * n)));
  // a = the (allowed + 1)-th largest magnitude: it must not overflow.
  auto nth = magnitudes.begin() + (n - 1 - allowed);
  std::nth_element(magnitudes.begin(), nth, magnitudes.end());
  const double a = *nth;
  if (!(a > 0) || !std::isfinite(a)) return 0;
  const int j = std::ilogb(a);  // a in [2^j, 2^(j+1))
  return a >= 1.5 * std::ldexp(1.0, j) ? j + 1 : j;
}

// The nearest power of two to x (linear rounding as shift_quantize), sign kept; 0 stays 0.
inline double round_to_power_of_two(double x) {
  if (x == 0 || !std::isfinite(x)) return x;
  int ex = 0;
  const double f = std::frexp(std::abs(x), &ex);
  return std::copysign(std::ldexp(1.0, f >= 0.75 ? ex : ex - 1), x);
}

// ---- options ---------------------------------------------------------------------------------

enum class FQMode {
  automatic,      // option only: per layer by the Wasserstein separation (notes 3.4)
  shift,          // plain n-bit shift quantization of the latent
  recentralized,  // power-of-two offsets around the component means
};

inline const char* fq_mode_name(FQMode m) {
  return m == FQMode::automatic ? "automatic" : (m == FQMode::shift ? "shift" : "recentralized");
}

struct FocusedPow2Options {
  int bits = 5;                  // n, bits per weight; the paper's 5-bit setting (Table 1-2)
  SparsitySchedule schedule{};   // magnitude-pruning target, fp warm-up, cubic ramp
  double refit_interval = 1.0;   // epochs after quantization starts of the first refit
  double refit_growth = 2.0;     // later refits at interval * growth^k (1: every interval)
  FQMode mode = FQMode::automatic;
  double w_sep = 2.0;            // recentralized when the separation is >= w_sep
  bool hardware = true;          // power-of-two means and one shared sigma
  bool sample_assignment = true; // m sampled from the posterior (false: argmax)
  double alpha_lr = 0.0;         // SGD rate of the per-layer scale alpha (0: alpha = 1)
  uint64_t seed = 0;             // assignment RNG, mixed with each parameter's name
  MixtureFitOptions mixture{};   // EM iteration cap and tolerance
  ParameterSelection selection{};  // which parameters; per-name sparsity and bits overrides

  // Throws trit::Error naming the bad field.
  void validate() const {
    check(bits >= 2 && bits <= 8, "FocusedPow2", "bits must be in [2, 8], got ", bits);
    check(mode != FQMode::recentralized || bits >= 3, "FocusedPow2",
          "recentralized mode needs bits >= 3 (1 component bit + a >= 2-bit shift value), got ",
          bits);
    schedule.validate("FocusedPow2");
    check(refit_interval > 0 && std::isfinite(refit_interval), "FocusedPow2",
          "refit_interval must be > 0 epochs, got ", refit_interval);
    check(refit_growth >= 1 && std::isfinite(refit_growth), "FocusedPow2",
          "refit_growth must be >= 1, got ", refit_growth);
    check(w_sep > 0 && std::isfinite(w_sep), "FocusedPow2", "w_sep must be > 0, got ", w_sep);
    check(alpha_lr >= 0 && std::isfinite(alpha_lr), "FocusedPow2", "alpha_lr must be >= 0, got ",
          alpha_lr);
    mixture.validate("FocusedPow2");
  }
};

// ---- per-parameter state ---------------------------------------------------------------------

// What FocusedPow2 keeps for one quantized parameter (read it with FocusedPow2::layer(name)).
struct FQLayer {
  std::string name;
  int bits = 5;                    // n
  double target_sparsity = 0.5;    // end of this parameter's ramp
  int64_t numel = 0;
  bool quantizing = false;         // false during the fp warm-up
  FQMode mode = FQMode::shift;     // shift or recentralized, decided at each fit
  GaussianMixture mixture;         // as EM fitted it to the survivors (free means and sigmas)
  double separation = 0;           // Wasserstein separation of `mixture`
  std::array<double, 2> mu{0, 0};  // means used (rounded to powers of two in hardware mode)
  std::array<double, 2> sigma{1, 1};  // sigmas used (shared in hardware mode)
  double alpha = 1.0;              // per-layer scale
  int top_exponent = 0;            // largest level 2^top of the normalised shift values
  double scheduled_sparsity = 0;   // s the mask was last built for
  bool mask_frozen = false;
  std::vector<uint8_t> mask;       // z: 1 kept, 0 pruned
  std::vector<uint8_t> component;  // m: 0 lower, 1 upper (recentralized mode)
  int fits = 0;                    // mixture fits so far
  double next_refit = 0;           // epochs after quantization start of the next refit
  Generator rng;

  // Power-of-two exponents of the shift quantizer: 2^(k-2) for its k = n (shift) or n-1 bits.
  int exponents() const { return 1 << (shift_bits() - 2); }
  int shift_bits() const { return mode == FQMode::recentralized ? bits - 1 : bits; }
  // Distinct values the forward weights can take, 0 included.
  int64_t max_levels() const {
    return mode == FQMode::recentralized ? 1 + 2 * (1 + 2 * int64_t(exponents()))
                                         : 1 + 2 * int64_t(exponents());
  }
  // The larger of the two modes' max_levels(): what the weights can hold whichever mode made
  // them (a checkpoint restores the weights and latents, not the policy's fitted mode).
  int64_t max_levels_any_mode() const {
    const int64_t shift = 1 + 2 * (int64_t(1) << (bits - 2));
    const int64_t recentralized = bits >= 3 ? 1 + 2 * (1 + 2 * (int64_t(1) << (bits - 3))) : 0;
    return std::max(shift, recentralized);
  }
  // w = centre(m) + step(m) * v with v = 0 or +-2^j, for surviving weights of component m.
  double centre(int m) const { return mode == FQMode::recentralized ? alpha * mu[m] : 0.0; }
  double step(int m) const { return mode == FQMode::recentralized ? alpha * sigma[m] : alpha; }
  // Share of pruned weights.
  double sparsity() const {
    if (mask.empty()) return 0.0;
    return double(std::count(mask.begin(), mask.end(), uint8_t(0))) / double(mask.size());
  }
};

// ---- the policy ------------------------------------------------------------------------------

class FocusedPow2 {
 public:
  explicit FocusedPow2(FocusedPow2Options options = {}) : options_(std::move(options)) {
    options_.validate();
  }

  const FocusedPow2Options& options() const { return options_; }

  // Quantize this parameter? By options().selection; creates its state (bits and target from
  // the first matching override, else the options').
  template <class T>
  bool quantizes(const optim::ParameterInfo<T>& info) {
    if (!options_.selection.selects(info)) return false;
    FQLayer layer;
    layer.name = info.name;
    layer.numel = info.tensor.numel();
    layer.bits = options_.bits;
    layer.target_sparsity = options_.schedule.target;
    if (const Override* o = options_.selection.override_for(info.name)) {
      if (o->bits) layer.bits = *o->bits;
      if (o->sparsity) layer.target_sparsity = *o->sparsity;
    }
    check(options_.mode != FQMode::recentralized || layer.bits >= 3, "FocusedPow2", "'",
          info.name, "': recentralized mode needs bits >= 3, got ", layer.bits);
    layer.rng.seed(options_.seed ^ (std::hash<std::string>{}(info.name) * 0x9E3779B97F4A7C15ull));
    layer.mask.assign(size_t(layer.numel), 1);
    layer.component.assign(size_t(layer.numel), 0);
    layers_[info.name] = std::move(layer);
    return true;
  }

  // dL/dw -> dL/dtheta = alpha * z * dL/dw (unchanged during the warm-up); then alpha's SGD step.
  template <class T>
  void on_gradient(optim::QuantizedParameter<T>& p, const optim::TrainingProgress&) {
    FQLayer& L = layer_mut(p.name);
    if (!L.quantizing) return;
    Tensor<T> g = Tensor<T>::empty(p.grad.shape());  // p.grad is weight.grad(): left as it is
    double grad_alpha = 0;
    for (int64_t i = 0; i < g.numel(); ++i) {
      g[i] = L.mask[size_t(i)] ? T(L.alpha) * p.grad[i] : T(0);
      grad_alpha += double(p.grad[i]) * double(p.weight[i]);
    }
    grad_alpha /= L.alpha;
    p.grad = g;
    if (options_.alpha_lr > 0) {
      const double next = L.alpha - options_.alpha_lr * grad_alpha;
      L.alpha = next > 0 && std::isfinite(next) ? next : 0.5 * L.alpha;
    }
  }

  // Writes p.weight from p.latent (see the contract at the top).
  template <class T>
  void project(optim::QuantizedParameter<T>& p, const optim::TrainingProgress& progress) {
    bound_[p.name] = Bound<T>{p.latent, p.weight};
    apply(layer_mut(p.name), p.latent, p.weight, progress);
  }

  // Epoch boundary: re-projects every parameter seen so far at `progress`, so a refit that is
  // due (or the end of the warm-up) shows in the very next forward pass.
  void on_epoch(const optim::TrainingProgress& progress) {
    for (auto& [name, bound] : bound_) {
      FQLayer& L = layer_mut(name);
      std::visit(
          [&](auto& b) {
            if constexpr (!std::is_same_v<std::decay_t<decltype(b)>, std::monostate>)
              apply(L, b.latent, b.weight, progress);
          },
          bound);
    }
  }

  // ---- read-out ------------------------------------------------------------------------------

  bool has_layer(const std::string& name) const { return layers_.count(name) > 0; }
  const FQLayer& layer(const std::string& name) const {
    auto it = layers_.find(name);
    check(it != layers_.end(), "FocusedPow2", "no quantized parameter named '", name, "'");
    return it->second;
  }
  const std::map<std::string, FQLayer>& layers() const { return layers_; }
  // Share of pruned weights of parameter `name` (0 during the warm-up).
  double sparsity(const std::string& name) const { return layer(name).sparsity(); }

  // Codes of every parameter that is quantized now (warm-up ones are left out), read off the
  // forward weights: one codebook per tensor, at most max_levels() values (checked against
  // either mode's bound, so weights restored by trit-train --resume export too).
  template <class T>
  std::vector<QuantizedTensor> quantized_tensors(
      const std::vector<optim::QuantizedParameter<T>>& parameters) const {
    std::vector<QuantizedTensor> out;
    for (const auto& p : parameters) {
      if (!p.quantized || !has_layer(p.name) || !layer(p.name).quantizing) continue;
      out.push_back(encode(p.name, p.weight, Encoding::power_of_two, /*per_channel=*/false,
                           layer(p.name).max_levels_any_mode()));
    }
    return out;
  }

  // One line per quantized parameter: mode, bits, sparsity, mixture, alpha, top exponent.
  std::string report() const {
    std::string out;
    char line[512];
    for (const auto& [name, L] : layers_) {
      if (!L.quantizing) {
        std::snprintf(line, sizeof line, "%s: full precision (warm-up), %lld weights\n",
                      name.c_str(), static_cast<long long>(L.numel));
      } else {
        std::snprintf(line, sizeof line,
                      "%s: %s %d-bit, sparsity %.4f, W %.3f, lambda (%.3f, %.3f), mu (%.4g, "
                      "%.4g), sigma (%.4g, %.4g), alpha %.4g, top 2^%d, fits %d\n",
                      name.c_str(), fq_mode_name(L.mode), L.bits, L.sparsity(), L.separation,
                      L.mixture.lambda[0], L.mixture.lambda[1], L.mu[0], L.mu[1], L.sigma[0],
                      L.sigma[1], L.alpha, L.top_exponent, L.fits);
      }
      out += line;
    }
    return out;
  }

 private:
  template <class T>
  struct Bound {
    Tensor<T> latent, weight;
  };

  FQLayer& layer_mut(const std::string& name) {
    auto it = layers_.find(name);
    check(it != layers_.end(), "FocusedPow2", "no quantized parameter named '", name,
          "' (quantizes() was not asked for it)");
    return it->second;
  }

  // Fits the mixture to the survivors, chooses the mode, sets mu/sigma used, assigns m.
  template <class T>
  void fit(FQLayer& L, const Tensor<T>& latent) {
    std::vector<double> x;
    x.reserve(size_t(L.numel));
    for (int64_t i = 0; i < L.numel; ++i)
      if (L.mask[size_t(i)]) x.push_back(double(latent[i]));
    L.mixture = fit_gaussian_mixture(x, options_.mixture);
    double mean = 0, var = 0;
    for (double v : x) mean += v;
    mean /= std::max<size_t>(x.size(), 1);
    for (double v : x) var += (v - mean) * (v - mean);
    var /= std::max<size_t>(x.size(), 1);
    L.separation = wasserstein_separation(L.mixture, var);
    if (options_.mode == FQMode::automatic)
      L.mode = L.bits >= 3 && L.separation >= options_.w_sep ? FQMode::recentralized
                                                             : FQMode::shift;
    else
      L.mode = options_.mode;
    GaussianMixture used = L.mixture;
    if (options_.hardware) {
      const double shared = std::sqrt(used.lambda[0] * used.sigma[0] * used.sigma[0] +
                                      used.lambda[1] * used.sigma[1] * used.sigma[1]);
      used.mu = {round_to_power_of_two(used.mu[0]), round_to_power_of_two(used.mu[1])};
      used.sigma = {shared, shared};
    }
    L.mu = used.mu;
    L.sigma = used.sigma;
    for (int64_t i = 0; i < L.numel; ++i) {
      const double v = double(latent[i]);
      L.component[size_t(i)] = uint8_t(options_.sample_assignment
                                            ? sample_component(used, v, L.rng)
                                            : likeliest_component(used, v));
    }
    ++L.fits;
  }

  // The projection of the contract, for one parameter.
  template <class T>
  void apply(FQLayer& L, const Tensor<T>& latent, Tensor<T>& weight,
             const optim::TrainingProgress& progress) {
    const SparsitySchedule& schedule = options_.schedule;
    if (schedule.full_precision(progress)) {
      L.quantizing = false;
      if (!weight.same_as(latent)) weight.copy_from(latent);
      return;
    }
    const double t = progress.epochs() - schedule.fp_epochs;  // epochs since quantization began
    if (!L.mask_frozen) {
      L.scheduled_sparsity = schedule.at(progress, L.target_sparsity);
      // z: the round(s * numel) smallest |theta| pruned, ties by index (quant/ternary.hpp).
      L.mask = quant::magnitude_mask(latent, /*groups=*/1, L.scheduled_sparsity);
      if (t >= schedule.ramp_epochs) L.mask_frozen = true;
    }
    if (L.fits == 0 || t >= L.next_refit) {
      fit(L, latent);
      if (L.fits == 1) L.next_refit = options_.refit_interval;
      while (L.next_refit <= t)
        L.next_refit = std::max(L.next_refit * options_.refit_growth,
                                L.next_refit + options_.refit_interval);
    }
    L.quantizing = true;
    const bool rec = L.mode == FQMode::recentralized;
    // Normalised survivors x = (theta - mu_m) / sigma_m (recentralized) or theta (shift).
    auto normalised = [&](int64_t i) {
      const double v = double(latent[i]);
      if (!rec) return v;
      const int m = L.component[size_t(i)];
      return (v - L.mu[m]) / L.sigma[m];
    };
    std::vector<double> magnitudes;
    magnitudes.reserve(size_t(L.numel));
    for (int64_t i = 0; i < L.numel; ++i)
      if (L.mask[size_t(i)]) magnitudes.push_back(std::abs(normalised(i)));
    L.top_exponent = overflow_top_exponent(
        magnitudes, 1.0 / (std::ldexp(1.0, L.shift_bits()) + 1.0));
    const std::array<double, 2> centre{L.centre(0), L.centre(1)}, step{L.step(0), L.step(1)};
    for (int64_t i = 0; i < L.numel; ++i) {
      if (!L.mask[size_t(i)]) {
        weight[i] = T(0);
        continue;
      }
      const int m = rec ? L.component[size_t(i)] : 0;
      // Zero stays reserved for pruned weights, also when a centre is exactly 0.
      const bool zero_allowed = rec && centre[m] != 0;
      const double v = shift_quantize(normalised(i), L.top_exponent, L.exponents(), zero_allowed);
      weight[i] = T(centre[m] + step[m] * v);
    }
  }

  FocusedPow2Options options_;
  std::map<std::string, FQLayer> layers_;
  std::map<std::string, std::variant<std::monostate, Bound<float>, Bound<double>>> bound_;
};

static_assert(optim::WeightQuantizer<FocusedPow2, float> &&
              optim::WeightQuantizer<FocusedPow2, double>);

}  // namespace trit::quant
