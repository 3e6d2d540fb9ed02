#pragma once
// QuantizedTensor: a quantized weight read back as codes and codebooks, what the exporter
// writes and what compressed inference runs on.
//
// Every quantized weight has few distinct values: ternary {-a, 0, +a} (one a per tensor or
// per output channel) or power-of-two levels. So a tensor is stored as
//   codes[i]            a small integer per weight, an index into its group's codebook
//   codebooks[g][k]     the value code k stands for in group g
// where a group is the whole tensor (groups = 1) or one output channel (groups = shape[0]).
// Code 0 always stands for 0.0 (pruned weights), so sparsity is the share of code 0.
//
// encode() reads the codes off the forward weights themselves, so what is exported is
// exactly what the network computed with; it fails when a tensor has more distinct values
// per group than the encoding allows (not really quantized).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "trit/core/error.hpp"
#include "trit/core/tensor.hpp"

namespace trit::quant {

enum class Encoding {
  ternary,       // codebook {0, -a, +a}: 3 levels
  power_of_two,  // codebook {0, ±2^e...} (times a scale, plus a centre for recentralised FQ)
};

inline const char* encoding_name(Encoding e) {
  return e == Encoding::ternary ? "ternary" : "power_of_two";
}

struct QuantizedTensor {
  std::string name;
  Shape shape;
  Encoding encoding = Encoding::ternary;
  int64_t groups = 1;                         // 1, or shape[0] for per-channel codebooks
  std::vector<std::vector<float>> codebooks;  // [groups][levels], codebooks[g][0] == 0
  std::vector<uint8_t> codes;                 // numel entries

  int64_t numel() const { return static_cast<int64_t>(codes.size()); }
  // Share of weights that are exactly zero.
  double sparsity() const {
    if (codes.empty()) return 0;
    return double(std::count(codes.begin(), codes.end(), uint8_t(0))) / double(codes.size());
  }
  // Largest codebook size over the groups.
  int64_t levels() const {
    size_t n = 1;
    for (auto& c : codebooks) n = std::max(n, c.size());
    return static_cast<int64_t>(n);
  }
  // Bits a fixed-length code needs per weight: 2 for ternary.
  int bits_per_code() const {
    int bits = 1;
    while ((int64_t(1) << bits) < levels()) ++bits;
    return bits;
  }
  // The weights as the forward pass uses them.
  Tensor<float> expand() const {
    Tensor<float> w = Tensor<float>::empty(shape);
    const int64_t per_group = numel() / groups;
    for (int64_t i = 0; i < numel(); ++i) w[i] = codebooks[i / per_group][codes[i]];
    return w;
  }
};

// Reads codes and codebooks off `weight`. `per_channel`: one codebook per output channel.
// `max_levels` bounds the distinct values per group (3 for ternary, including 0).
template <class T>
QuantizedTensor encode(const std::string& name, const Tensor<T>& weight, Encoding encoding,
                       bool per_channel, int64_t max_levels) {
  QuantizedTensor q;
  q.name = name;
  q.shape = weight.shape();
  q.encoding = encoding;
  q.groups = per_channel && weight.dim() >= 1 ? weight.size(0) : 1;
  check(max_levels >= 2 && max_levels <= 256, "quant::encode", "max_levels ", max_levels,
        " outside [2, 256]");
  const int64_t n = weight.numel(), per_group = q.groups ? n / q.groups : 0;
  q.codes.resize(size_t(n));
  q.codebooks.resize(size_t(q.groups));
  for (int64_t g = 0; g < q.groups; ++g) {
    std::vector<float>& book = q.codebooks[g];
    book = {0.0f};
    for (int64_t i = g * per_group; i < (g + 1) * per_group; ++i) {
      const float v = static_cast<float>(weight[i]);
      check(std::isfinite(v), "quant::encode", name, " holds a non-finite value at ", i);
      auto it = std::find(book.begin(), book.end(), v);
      if (it == book.end()) {
        check(static_cast<int64_t>(book.size()) < max_levels, "quant::encode", name, " has more than ",
              max_levels, " distinct values", q.groups > 1 ? " in an output channel" : "",
              ": it is not ", encoding_name(encoding));
        book.push_back(v);
        it = book.end() - 1;
      }
      q.codes[size_t(i)] = static_cast<uint8_t>(it - book.begin());
    }
  }
  return q;
}

}  // namespace trit::quant
