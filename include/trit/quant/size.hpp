#pragma once
// ModelSize: what a model weighs, counted honestly. Every tensor of the state_dict is
// counted (parameters and buffers: BN running statistics included). A quantized tensor costs
// its fixed-length codes (2 bits per weight for ternary, bits_per_code() for power-of-two)
// plus its codebooks in FP32; every other tensor costs 4 bytes per element. The ratio is
// FP32 bytes of the whole model over these bytes. Entropy coding (the .trit file) goes lower.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "trit/core/tensor.hpp"
#include "trit/quant/codes.hpp"

namespace trit::quant {

struct ModelSize {
  int64_t fp32_bytes = 0;       // every tensor at 4 bytes per element
  int64_t quantized_bytes = 0;  // quantized tensors as codes + codebooks, the rest FP32
  int64_t quantized_weights = 0;  // elements held as codes
  int64_t zero_weights = 0;       // of those, pruned to zero
  double compression_ratio() const {
    return quantized_bytes > 0 ? double(fp32_bytes) / double(quantized_bytes) : 0.0;
  }
  double sparsity() const {
    return quantized_weights > 0 ? double(zero_weights) / double(quantized_weights) : 0.0;
  }
};

// Bytes of one quantized tensor as packed fixed-length codes plus FP32 codebooks (code 0,
// the zero, needs no entry).
inline int64_t packed_bytes(const QuantizedTensor& q) {
  int64_t code_bytes = (q.numel() * q.bits_per_code() + 7) / 8;
  int64_t book_bytes = 0;
  for (const auto& book : q.codebooks) book_bytes += 4 * static_cast<int64_t>(book.size() - 1);
  return code_bytes + book_bytes;
}

// The size of a model whose state_dict is `state` when the tensors in `quantized` (matched by
// name) are stored as codes.
template <class T>
ModelSize model_size(const std::vector<std::pair<std::string, Tensor<T>>>& state,
                     const std::vector<QuantizedTensor>& quantized) {
  ModelSize size;
  for (const auto& [name, tensor] : state) {
    size.fp32_bytes += 4 * tensor.numel();
    const QuantizedTensor* q = nullptr;
    for (const auto& candidate : quantized)
      if (candidate.name == name) q = &candidate;
    if (q) {
      size.quantized_bytes += packed_bytes(*q);
      size.quantized_weights += q->numel();
      size.zero_weights += static_cast<int64_t>(q->sparsity() * double(q->numel()) + 0.5);
    } else {
      size.quantized_bytes += 4 * tensor.numel();
    }
  }
  return size;
}

}  // namespace trit::quant
