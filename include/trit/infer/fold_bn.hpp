#pragma once
// Folding an eval-mode BatchNorm into the convolution before it, at load time.
//
// In eval mode BN is a per-channel affine map of the conv output z[N, O, H, W]:
//   bn(z)[., o, ., .] = z * scale[o] + shift[o],
//   scale[o] = gamma[o] / sqrt(running_var[o] + eps),  shift[o] = beta[o] - running_mean[o] * scale[o]
// so conv(x, W) + b followed by BN equals conv(x, W') + b' with
//   W'[o, ...] = W[o, ...] * scale[o]        b'[o] = b[o] * scale[o] + shift[o].
// A quantized W keeps its codes: only its codebooks are scaled, one per output channel
// (a ternary {0, -a, +a} becomes {0, -a*scale[o], +a*scale[o]}, still ternary).
// The scales are computed in double and rounded once to float, so the dense and the
// compressed forms of a folded layer hold bit-identical weight values.
#include <cmath>
#include <cstdint>
#include <vector>

#include "trit/core/error.hpp"
#include "trit/core/tensor.hpp"
#include "trit/quant/codes.hpp"

namespace trit::infer {

// An eval-mode BatchNorm as y = x * scale[c] + shift[c] (in double, for folding).
struct ChannelAffine {
  std::vector<double> scale, shift;
  int64_t channels() const { return static_cast<int64_t>(scale.size()); }
};

// gamma, beta, running_mean, running_var: [C] each.
inline ChannelAffine bn_affine(const Tensor<float>& gamma, const Tensor<float>& beta,
                               const Tensor<float>& mean, const Tensor<float>& var,
                               double eps = 1e-5) {
  const int64_t C = gamma.numel();
  for (const Tensor<float>* t : {&beta, &mean, &var})
    check(t->shape() == Shape{C} && gamma.shape() == Shape{C}, "fold_bn",
          "BatchNorm tensors must all have shape [", C, "], got ", to_string(t->shape()));
  ChannelAffine a;
  a.scale.resize(size_t(C));
  a.shift.resize(size_t(C));
  for (int64_t c = 0; c < C; ++c) {
    check(var[c] + eps > 0, "fold_bn", "running_var[", c, "] = ", var[c], " is negative");
    a.scale[c] = double(gamma[c]) / std::sqrt(double(var[c]) + eps);
    a.shift[c] = double(beta[c]) - double(mean[c]) * a.scale[c];
  }
  return a;
}

// W [O, ...] -> W'[o, ...] = W[o, ...] * scale[o].
inline Tensor<float> fold_weight(const Tensor<float>& w, const ChannelAffine& bn) {
  check(w.dim() >= 1 && w.size(0) == bn.channels(), "fold_bn", "weight ", to_string(w.shape()),
        " does not match a BatchNorm of ", bn.channels(), " channels");
  Tensor<float> out = Tensor<float>::empty(w.shape());
  const int64_t per = w.numel() / std::max<int64_t>(w.size(0), 1);
  for (int64_t i = 0; i < w.numel(); ++i) out[i] = float(double(w[i]) * bn.scale[i / per]);
  return out;
}

// b'[o] = b[o] * scale[o] + shift[o]; `bias` may be undefined (a conv without bias).
inline std::vector<float> fold_bias(const Tensor<float>& bias, const ChannelAffine& bn) {
  check(!bias.defined() || bias.shape() == Shape{bn.channels()}, "fold_bn", "bias ",
        bias.defined() ? to_string(bias.shape()) : "", " does not match a BatchNorm of ",
        bn.channels(), " channels");
  std::vector<float> b(size_t(bn.channels()));
  for (int64_t o = 0; o < bn.channels(); ++o)
    b[o] = float((bias.defined() ? double(bias[o]) : 0.0) * bn.scale[o] + bn.shift[o]);
  return b;
}

// The quantized W with BN folded into its codebooks: one codebook per output channel,
// codebooks[o][k] = old codebook of channel o [k] * scale[o]; codes unchanged.
inline quant::QuantizedTensor fold_codebooks(const quant::QuantizedTensor& q,
                                             const ChannelAffine& bn) {
  check(!q.shape.empty() && q.shape[0] == bn.channels() && q.groups >= 1 &&
            q.shape[0] % q.groups == 0 && int64_t(q.codebooks.size()) == q.groups,
        "fold_bn", q.name, " ", to_string(q.shape), " with ", q.groups,
        " codebooks does not match a BatchNorm of ", bn.channels(), " channels");
  quant::QuantizedTensor out = q;
  const int64_t O = q.shape[0], per_book = O / q.groups;
  out.groups = O;
  out.codebooks.assign(size_t(O), {});
  for (int64_t o = 0; o < O; ++o) {
    for (float v : q.codebooks[size_t(o / per_book)])
      out.codebooks[o].push_back(float(double(v) * bn.scale[o]));
  }
  return out;
}

}  // namespace trit::infer
