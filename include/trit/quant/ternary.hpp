#pragma once
// Ternary math shared by the ternary policies (quant::PTQ, quant::HQ) and by user policies:
// plain functions over a weight tensor, no policy state.
//
// A weight tensor W of numel N is split into G equal groups: the whole tensor (G = 1) or its
// output channels (G = W.shape[0], rows of a [O, I] linear, filters of an [O, C, K, K] conv).
// Every group g gets a mask m (1 kept, 0 pruned) and a scale a_g, and the ternary weights are
//   t_i = a_g * sign(W_i) * m_i       in {-a_g, 0, +a_g}
//
//   pruned_counts      how many weights each group prunes for a sparsity s: round(s * N) in
//                      all, spread so groups differ by at most one (exact global sparsity)
//   magnitude_threshold  the k-th smallest |w| of a group (std::nth_element)
//   magnitude_mask     prunes exactly the counted smallest-|w| weights of each group
//   least_squares_scales  a_g = mean |W| over the kept weights: argmin_a ||W_g - a t_g||^2
//   unit_norm_scales   a_g = r_g / sqrt(k_g): the ternary direction t/||t|| scaled to norm r_g
//   project_ternary    writes t from W, mask and scales
//   group_norms, cosine_similarity, group_cosines: ||W_g||, and cos(W, t) to log how close the
//                      latent and the ternary weights point (HQ shrinks 1 - cos)
//
// TernaryLayer / TernaryLayers: the per-parameter record a ternary policy keeps (mask, scales,
// sparsity, cosine) and the read-out built on it (sparsity(name), report(), the codes).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include "trit/core/error.hpp"
#include "trit/core/tensor.hpp"
#include "trit/optim/quantizer.hpp"
#include "trit/quant/codes.hpp"

namespace trit::quant {

// Number of groups of `w`: its output channels, or 1 for the whole tensor.
template <class T>
int64_t ternary_groups(const Tensor<T>& w, bool per_channel) {
  return per_channel && w.dim() >= 1 ? w.size(0) : 1;
}

// Weights to prune per group so that the whole tensor of `numel` weights in `groups` equal
// groups has sparsity round(sparsity * numel) / numel: each group prunes total / groups, and
// the first total % groups groups one more.
inline std::vector<int64_t> pruned_counts(int64_t numel, int64_t groups, double sparsity) {
  check(groups > 0 && numel % groups == 0, "quant::pruned_counts", "numel ", numel,
        " does not split into ", groups, " groups");
  check(sparsity >= 0 && sparsity <= 1, "quant::pruned_counts", "sparsity must be in [0, 1], got ",
        sparsity);
  const int64_t total = std::llround(sparsity * double(numel));
  std::vector<int64_t> counts(size_t(groups), total / groups);
  for (int64_t g = 0; g < total % groups; ++g) ++counts[size_t(g)];
  return counts;
}

// The k-th smallest |w| (0-based) over w[0..n). k in [0, n).
template <class T>
double magnitude_threshold(const T* w, int64_t n, int64_t k) {
  check(k >= 0 && k < n, "quant::magnitude_threshold", "k ", k, " outside [0, ", n, ")");
  std::vector<double> mags(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) mags[size_t(i)] = std::abs(double(w[i]));
  std::nth_element(mags.begin(), mags.begin() + k, mags.end());
  return mags[size_t(k)];
}

// Mask over `w` (1 kept, 0 pruned): in each group, the pruned_counts() smallest-|w| weights are
// pruned. Ties at the threshold are broken by position (earlier pruned first), so the count is
// exact whatever the values. Per group: one nth_element over a copy of |w| finds t, the k-th
// smallest |w|; everything below t is pruned, then weights equal to t in position order until
// k are pruned. That is the first k in (|w|, position) order, in O(n) per group.
template <class T>
std::vector<uint8_t> magnitude_mask(const Tensor<T>& w, int64_t groups, double sparsity) {
  const int64_t n = w.numel();
  const std::vector<int64_t> prune = pruned_counts(n, groups, sparsity);
  const int64_t per = n / groups;
  std::vector<uint8_t> mask(size_t(n), 1);
  std::vector<T> magnitudes(static_cast<size_t>(per));
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t k = prune[size_t(g)];
    if (k == 0) continue;
    const T* v = w.data() + g * per;
    uint8_t* m = mask.data() + g * per;
    if (k == per) {
      std::fill(m, m + per, uint8_t(0));
      continue;
    }
    for (int64_t i = 0; i < per; ++i) magnitudes[size_t(i)] = std::abs(v[i]);
    std::nth_element(magnitudes.begin(), magnitudes.begin() + (k - 1), magnitudes.end());
    const T threshold = magnitudes[size_t(k - 1)];
    int64_t pruned = 0;
    for (int64_t i = 0; i < per; ++i)
      if (std::abs(v[i]) < threshold) m[i] = 0, ++pruned;
    for (int64_t i = 0; i < per && pruned < k; ++i)
      if (std::abs(v[i]) == threshold) m[i] = 0, ++pruned;
  }
  return mask;
}

// Kept weights per group.
inline std::vector<int64_t> kept_counts(const std::vector<uint8_t>& mask, int64_t groups) {
  const int64_t per = int64_t(mask.size()) / groups;
  std::vector<int64_t> kept(size_t(groups), 0);
  for (size_t i = 0; i < mask.size(); ++i) kept[i / size_t(per)] += mask[i];
  return kept;
}

// a_g = mean |w| over the kept weights of group g (0 when none is kept). For a fixed mask this
// minimises ||W_g - a * sign(W_g) * m_g||^2 (TWN's scale).
template <class T>
std::vector<double> least_squares_scales(const Tensor<T>& w, const std::vector<uint8_t>& mask,
                                         int64_t groups) {
  const int64_t per = w.numel() / groups;
  std::vector<double> scales(size_t(groups), 0.0);
  for (int64_t g = 0; g < groups; ++g) {
    double sum = 0;
    int64_t kept = 0;
    const T* v = w.data();
    for (int64_t i = g * per; i < (g + 1) * per; ++i)
      if (mask[size_t(i)]) sum += std::abs(double(v[i])), ++kept;
    scales[size_t(g)] = kept ? sum / double(kept) : 0.0;
  }
  return scales;
}

// a_g = radius[g] / sqrt(k_g): the unit ternary direction t_g / ||t_g|| scaled to norm
// radius[g] (0 when none is kept). For a unit-norm latent this is the cosine-optimal
// ("orthonormal") scale.
inline std::vector<double> unit_norm_scales(const std::vector<uint8_t>& mask,
                                            const std::vector<double>& radius) {
  const int64_t groups = int64_t(radius.size());
  std::vector<int64_t> kept = kept_counts(mask, groups);
  std::vector<double> scales(size_t(groups), 0.0);
  for (int64_t g = 0; g < groups; ++g)
    if (kept[size_t(g)]) scales[size_t(g)] = radius[size_t(g)] / std::sqrt(double(kept[size_t(g)]));
  return scales;
}

// out_i = a_g * sign(w_i) * m_i. A kept weight that is exactly 0 counts as positive, so the
// zeros of `out` are exactly the mask's (when a_g > 0). `out` may be `w` itself.
template <class T>
void project_ternary(const Tensor<T>& w, const std::vector<uint8_t>& mask,
                     const std::vector<double>& scales, Tensor<T>& out) {
  const int64_t n = w.numel(), groups = int64_t(scales.size()), per = n / groups;
  check(out.numel() == n && int64_t(mask.size()) == n, "quant::project_ternary", "weights ",
        to_string(w.shape()), ", output ", to_string(out.shape()), " and mask of ", mask.size(),
        " do not match");
  const T* in = w.data();
  T* o = out.data();
  for (int64_t g = 0; g < groups; ++g) {
    const T a = T(scales[size_t(g)]);
    for (int64_t i = g * per; i < (g + 1) * per; ++i) o[i] = mask[size_t(i)] ? (in[i] < 0 ? -a : a) : T(0);
  }
}

// ||w_g|| per group.
template <class T>
std::vector<double> group_norms(const Tensor<T>& w, int64_t groups) {
  const int64_t per = w.numel() / groups;
  std::vector<double> norms(size_t(groups), 0.0);
  const T* v = w.data();
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t i = g * per; i < (g + 1) * per; ++i) norms[size_t(g)] += double(v[i]) * double(v[i]);
  for (double& v : norms) v = std::sqrt(v);
  return norms;
}

// cos(a, b) = a.b / (||a|| ||b||) over [begin, end); 1 when both are zero, 0 when one is.
template <class T>
double cosine_similarity(const Tensor<T>& a, const Tensor<T>& b, int64_t begin = 0,
                         int64_t end = -1) {
  check(a.numel() == b.numel(), "quant::cosine_similarity", "shapes ", to_string(a.shape()),
        " and ", to_string(b.shape()), " differ in size");
  if (end < 0) end = a.numel();
  double ab = 0, aa = 0, bb = 0;
  const T *x = a.data(), *y = b.data();
  for (int64_t i = begin; i < end; ++i) {
    ab += double(x[i]) * double(y[i]);
    aa += double(x[i]) * double(x[i]);
    bb += double(y[i]) * double(y[i]);
  }
  if (aa == 0 && bb == 0) return 1.0;
  if (aa == 0 || bb == 0) return 0.0;
  return ab / std::sqrt(aa * bb);
}

// cos(a_g, b_g) per group.
template <class T>
std::vector<double> group_cosines(const Tensor<T>& a, const Tensor<T>& b, int64_t groups) {
  const int64_t per = a.numel() / groups;
  std::vector<double> cos(static_cast<size_t>(groups));
  for (int64_t g = 0; g < groups; ++g) cos[size_t(g)] = cosine_similarity(a, b, g * per, (g + 1) * per);
  return cos;
}

// What a ternary policy knows of one quantized parameter after its latest projection.
struct TernaryLayer {
  std::string name;
  Shape shape;
  int64_t groups = 1;             // 1, or shape[0] with per-channel scales
  bool full_precision = true;     // still in the warm-up: the weights are not ternary yet
  double target = 0.0;            // scheduled sparsity at the latest projection
  double sparsity = 0.0;          // share of forward weights that are exactly 0
  std::vector<uint8_t> mask;      // 1 kept, 0 pruned (empty during the warm-up)
  std::vector<double> scales;     // a_g per group
  std::vector<double> cosines;    // cos(latent_g, ternary_g) per group
  std::vector<double> radius;     // policy-specific norms per group (HQ: the fixed ||W_g||)

  int64_t numel() const { return numel_of(shape); }
  double mean(const std::vector<double>& v) const {
    return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
  }
};

// The records of every quantized parameter, by name, and what the exporter and trit-train read.
class TernaryLayers {
 public:
  // The record for `name`, created empty on first use.
  TernaryLayer& at(const std::string& name) { return layers_[name]; }
  bool contains(const std::string& name) const { return layers_.count(name) > 0; }
  const std::map<std::string, TernaryLayer>& all() const { return layers_; }

  // Measured sparsity of the forward weights of `name`; throws for an unknown name.
  double sparsity(const std::string& name) const { return find(name).sparsity; }

  // Sparsity over all quantized weights together (weighted by size), 0 when there are none.
  double sparsity() const {
    double zeros = 0, total = 0;
    for (const auto& [name, l] : layers_) zeros += l.sparsity * double(l.numel()), total += double(l.numel());
    return total > 0 ? zeros / total : 0.0;
  }

  // One line per quantized parameter:
  //   "layer1.0.conv1.weight [16, 16, 3, 3]  sparsity 0.700 (target 0.700)  scale 0.0213  cos 0.812"
  // (scale and cos are means over channels with per-channel scales).
  std::string report() const {
    std::string out;
    char buffer[160];
    for (const auto& [name, l] : layers_) {
      if (l.full_precision) {
        std::snprintf(buffer, sizeof buffer, "  full precision (warm-up)\n");
      } else {
        std::snprintf(buffer, sizeof buffer,
                      "  sparsity %.3f (target %.3f)  scale%s %.4g  cos %.3f\n", l.sparsity,
                      l.target, l.groups > 1 ? " (mean)" : "", l.mean(l.scales), l.mean(l.cosines));
      }
      out += name + " " + to_string(l.shape) + buffer;
    }
    return out;
  }

  // Codes and codebooks of every quantized parameter, read off its forward weights with
  // quant::encode (so they are exactly what the network computes with). Throws while a
  // parameter is still in its full-precision warm-up.
  template <class T>
  std::vector<QuantizedTensor> quantized_tensors(
      const std::vector<optim::QuantizedParameter<T>>& parameters) const {
    std::vector<QuantizedTensor> out;
    for (const auto& p : parameters) {
      if (!p.quantized || !contains(p.name)) continue;
      const TernaryLayer& l = find(p.name);
      check(!l.full_precision, "quantized_tensors", p.name,
            " is still in its full-precision warm-up: no ternary codes yet");
      out.push_back(encode(p.name, p.weight, Encoding::ternary, l.groups > 1, 3));
    }
    return out;
  }

 private:
  const TernaryLayer& find(const std::string& name) const {
    auto it = layers_.find(name);
    check(it != layers_.end(), "TernaryLayers", "no quantized parameter named '", name, "'");
    return it->second;
  }
  std::map<std::string, TernaryLayer> layers_;
};

// Measured share of exact zeros in `w`.
template <class T>
double zero_fraction(const Tensor<T>& w) {
  if (w.numel() == 0) return 0.0;
  int64_t zeros = 0;
  const T* v = w.data();
  const int64_t n = w.numel();
  for (int64_t i = 0; i < n; ++i) zeros += v[i] == T(0);
  return double(zeros) / double(w.numel());
}

}  // namespace trit::quant
