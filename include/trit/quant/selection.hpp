#pragma once
// ParameterSelection: which parameters a quantizer policy quantizes, and per-name overrides.
//
// Default, as the papers: every conv and linear weight except the first conv (the stem sees
// raw pixels and is tiny). BatchNorm parameters and biases always stay FP32. The classifier
// (last linear) is quantized by default, since the papers' ~1 MB ResNet-18 is impossible with
// an FP32 classifier; keep_last_linear_fp32 keeps it FP32 to report both countings.
//
// Overrides match dotted names with glob patterns ('*' any run of characters, '?' one):
//   selection.add_override({.pattern = "layer1.*", .sparsity = 0.5});
//   selection.add_override({.pattern = "fc.weight", .quantize = false});
// The first override whose pattern matches a name wins.
#include <optional>
#include <string>
#include <vector>

#include "trit/core/error.hpp"
#include "trit/optim/quantizer.hpp"

namespace trit::quant {

// True when `name` matches the glob `pattern` ('*' any run, '?' any one character).
inline bool glob_match(const std::string& pattern, const std::string& name) {
  size_t p = 0, n = 0, star = std::string::npos, resume = 0;
  while (n < name.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == name[n])) {
      ++p, ++n;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++, resume = n;
    } else if (star != std::string::npos) {
      p = star + 1, n = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

// Per-parameter settings that replace the policy's defaults for matching names.
struct Override {
  std::string pattern;              // glob over dotted names
  std::optional<bool> quantize;     // force on or off
  std::optional<double> sparsity;   // target sparsity for these tensors
  std::optional<int> bits;          // bit width (power-of-two codes)
};

struct ParameterSelection {
  bool quantize_first_conv = false;
  bool keep_last_linear_fp32 = false;
  std::vector<Override> overrides;

  ParameterSelection& add_override(Override o) {
    check(!o.pattern.empty(), "ParameterSelection", "an override needs a name pattern");
    check(!o.sparsity || (*o.sparsity >= 0 && *o.sparsity < 1), "ParameterSelection",
          "override '", o.pattern, "': sparsity must be in [0, 1), got ", o.sparsity.value_or(0));
    check(!o.bits || (*o.bits >= 2 && *o.bits <= 8), "ParameterSelection", "override '",
          o.pattern, "': bits must be in [2, 8], got ", o.bits.value_or(0));
    overrides.push_back(std::move(o));
    return *this;
  }

  // The first override matching `name`, or nullptr.
  const Override* override_for(const std::string& name) const {
    for (const auto& o : overrides)
      if (glob_match(o.pattern, name)) return &o;
    return nullptr;
  }

  // Quantize this parameter? Conv and linear weights only, by the rules above.
  template <class T>
  bool selects(const optim::ParameterInfo<T>& info) const {
    if (const Override* o = override_for(info.name); o && o->quantize) return *o->quantize;
    if (!info.is_conv_weight && !info.is_linear_weight) return false;
    if (info.is_first_conv && !quantize_first_conv) return false;
    if (info.is_last_linear && keep_last_linear_fp32) return false;
    return true;
  }
};

}  // namespace trit::quant
