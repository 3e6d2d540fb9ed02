#pragma once
// infer::Model: a network rebuilt for inference from its architecture and tensors (what a
// .trit file holds), with its quantized weights kept compressed in memory.
//
//   io::CompressedModel   what a .trit file holds (io/trit_format.hpp): models::ModelConfig
//                  plus every state_dict tensor, each FP32 or a quant::QuantizedTensor (codes
//                  and codebooks); io::compress() makes one from a model in memory
//   load_compressed(path)              reads a .trit file into a runnable compressed Model
//   Model(m, WeightForm::compressed)   quantized conv / linear weights become index lists
//                  (kernels/ternary.hpp), run without multiplications by the weights; FP32
//                  weights (a stem or classifier kept full precision) run on kernels::gemm
//   Model(m, WeightForm::dense)        the same network with every weight expanded to FP32,
//                  on kernels::gemm: the dense twin to compare speed and outputs against
//
// Every BatchNorm is folded into the conv before it at build time (fold_bn.hpp), so a
// ResNet block is two fused conv(+bias, +residual, +ReLU) passes. Supported architectures:
//   resnet20 / resnet32 / resnet56  models::CifarResNet, shortcut option A or B
//   lenet                           models::LeNet
// forward(x [N, C, H, W]) -> logits [N, K], the same function as the trained model in eval
// mode (to float rounding: the additions run in another order).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "trit/autograd/grad_mode.hpp"
#include "trit/core/error.hpp"
#include "trit/core/tensor.hpp"
#include "trit/infer/fold_bn.hpp"
#include "trit/infer/layers.hpp"
#include "trit/io/trit_format.hpp"
#include "trit/kernels/pool.hpp"
#include "trit/kernels/ternary.hpp"
#include "trit/models/registry.hpp"
#include "trit/models/shortcut_a.hpp"
#include "trit/nn/module.hpp"
#include "trit/quant/codes.hpp"

namespace trit::infer {

class Model {
 public:
  // Architectures with a compressed inference model; others run dense (io::make_dense_model).
  static bool supports(const std::string& name) {
    return name == "lenet" || name == "resnet20" || name == "resnet32" || name == "resnet56";
  }

  explicit Model(const io::CompressedModel& m, WeightForm form = WeightForm::compressed)
      : config_(m.config), form_(form) {
    Source s{m, form};
    const std::string& name = config_.name;
    if (name == "lenet") {
      build_lenet(s);
    } else if (name == "resnet20" || name == "resnet32" || name == "resnet56") {
      build_cifar_resnet(s, (std::stoi(name.substr(6)) - 2) / 6);
    } else {
      check(false, "infer::Model", "architecture '", name,
            "' has no inference model; supported: lenet, resnet20, resnet32, resnet56");
    }
  }

  // x [N, C, H, W] -> logits [N, K].
  Tensor<float> forward(const Tensor<float>& x) const {
    check(x.dim() == 4 && x.size(1) == config_.in_channels, "infer::Model", "expected x [N, ",
          config_.in_channels, ", H, W], got ", to_string(x.shape()));
    NoGradGuard no_grad;
    return config_.name == "lenet" ? forward_lenet(x) : forward_cifar_resnet(x);
  }

  // Bytes the weights and biases occupy in memory (index lists for compressed layers).
  int64_t weight_bytes() const {
    int64_t bytes = 0;
    for (const ConvLayer* c : convs()) bytes += c->weight.bytes() + 4 * int64_t(c->bias.size());
    for (const LinearLayer* l : {&fc_, &fc2_})
      bytes += l->weight.bytes() + 4 * int64_t(l->bias.size());
    return bytes;
  }
  // Weights held compressed / all weights (counted in elements of W).
  int64_t compressed_weights() const {
    int64_t n = 0;
    for (const ConvLayer* c : convs())
      if (c->weight.is_compressed()) n += c->weight.rows() * c->weight.cols();
    for (const LinearLayer* l : {&fc_, &fc2_})
      if (l->weight.is_compressed()) n += l->weight.rows() * l->weight.cols();
    return n;
  }

  const models::ModelConfig& config() const { return config_; }
  WeightForm form() const { return form_; }

 private:
  // One residual block of a CIFAR ResNet: conv1 -> conv2 (+ shortcut) -> ReLU.
  struct Block {
    ConvLayer conv1, conv2;
    enum { identity, option_a, projection } shortcut = identity;
    ConvLayer project;  // option B: 1x1 conv + BN
    int64_t out_channels = 0, stride = 1;
  };

  // Reads layers out of the compressed model by state_dict name.
  struct Source {
    const io::CompressedModel& m;
    WeightForm form;

    const io::CompressedTensor& find(const std::string& name) const {
      const io::CompressedTensor* t = m.find(name);
      check(t != nullptr, "infer::Model", m.config.name, ": tensor '", name, "' is missing");
      return *t;
    }
    const Tensor<float>& fp32(const std::string& name) const {
      const io::CompressedTensor& t = find(name);
      check(!t.is_quantized(), "infer::Model", m.config.name, ": tensor '", name,
            "' is quantized, expected FP32");
      return t.dense;
    }
    ChannelAffine bn(const std::string& prefix) const {
      return bn_affine(fp32(prefix + ".weight"), fp32(prefix + ".bias"),
                       fp32(prefix + ".running_mean"), fp32(prefix + ".running_var"));
    }
    // W named `name` of shape `shape` ([O, ...]) as a matrix [O, numel/O], BN folded in.
    MatrixWeights matrix(const std::string& name, const Shape& shape,
                         const ChannelAffine* bn) const {
      const int64_t O = shape[0], K = numel_of(shape) / O;
      const io::CompressedTensor& t = find(name);
      check(t.shape() == shape, "infer::Model", m.config.name, ": '", name, "' is ",
            to_string(t.shape()), ", expected ", to_string(shape));
      if (t.is_quantized()) {
        const quant::QuantizedTensor q = bn ? fold_codebooks(t.quantized, *bn) : t.quantized;
        check(q.numel() == O * K && !q.codebooks.empty(), "infer::Model", "'", name,
              "' holds ", q.numel(), " codes for shape ", to_string(shape));
        if (form == WeightForm::compressed)
          return MatrixWeights::compressed(kernels::pack_signed_terms(O, K, q.codes.data(), q.codebooks));
        return MatrixWeights::dense(O, K, q.expand().to_vector());
      }
      return MatrixWeights::dense(O, K, (bn ? fold_weight(t.dense, *bn) : t.dense).to_vector());
    }
    // A conv named `prefix` (weight, optional bias) followed by BatchNorm `bn_prefix` ("" for none).
    ConvLayer conv(const std::string& prefix, const std::string& bn_prefix, int64_t C, int64_t O,
                   int64_t k, int64_t stride, int64_t padding, bool relu, bool has_bias) const {
      ConvLayer c;
      c.C = C, c.O = O, c.KH = c.KW = k, c.stride = stride, c.padding = padding, c.relu = relu;
      Tensor<float> bias = has_bias ? fp32(prefix + ".bias") : Tensor<float>();
      if (!bn_prefix.empty()) {
        const ChannelAffine a = bn(bn_prefix);
        c.weight = matrix(prefix + ".weight", {O, C, k, k}, &a);
        c.bias = fold_bias(bias, a);
      } else {
        c.weight = matrix(prefix + ".weight", {O, C, k, k}, nullptr);
        c.bias = has_bias ? bias.to_vector() : std::vector<float>(size_t(O), 0.0f);
      }
      return c;
    }
    LinearLayer linear(const std::string& prefix, int64_t in, int64_t out, bool relu) const {
      LinearLayer l;
      l.weight = matrix(prefix + ".weight", {out, in}, nullptr);
      l.bias = fp32(prefix + ".bias").to_vector();
      check(int64_t(l.bias.size()) == out, "infer::Model", "'", prefix, ".bias' has ",
            l.bias.size(), " values, expected ", out);
      l.relu = relu;
      return l;
    }
  };

  void build_cifar_resnet(const Source& s, int64_t blocks_per_stage) {
    stem_ = s.conv("conv1", "bn1", config_.in_channels, 16, 3, 1, 1, true, false);
    int64_t channels = 16;
    const int64_t planes[3] = {16, 32, 64};
    for (int stage = 0; stage < 3; ++stage) {
      for (int64_t b = 0; b < blocks_per_stage; ++b) {
        const std::string p = "layer" + std::to_string(stage + 1) + "." + std::to_string(b);
        const int64_t stride = (stage > 0 && b == 0) ? 2 : 1, P = planes[stage];
        Block blk;
        blk.conv1 = s.conv(p + ".conv1", p + ".bn1", channels, P, 3, stride, 1, true, false);
        blk.conv2 = s.conv(p + ".conv2", p + ".bn2", P, P, 3, 1, 1, true, false);
        blk.out_channels = P, blk.stride = stride;
        if (stride != 1 || channels != P) {
          if (config_.shortcut == models::CifarShortcut::A) {
            blk.shortcut = Block::option_a;
          } else {
            blk.shortcut = Block::projection;
            blk.project = s.conv(p + ".downsample.0", p + ".downsample.1", channels, P, 1, stride,
                                 0, false, false);
          }
        }
        blocks_.push_back(std::move(blk));
        channels = P;
      }
    }
    fc_ = s.linear("fc", 64, config_.num_classes, false);
  }

  Tensor<float> forward_cifar_resnet(const Tensor<float>& x) const {
    Tensor<float> h = stem_.forward(x);
    for (const Block& b : blocks_) {
      Tensor<float> t = b.conv1.forward(h);
      Tensor<float> shortcut = b.shortcut == Block::identity ? h
                               : b.shortcut == Block::option_a
                                   ? subsample_pad_channels(h, b.out_channels, b.stride)
                                   : b.project.forward(h);
      h = b.conv2.forward(t, shortcut);
    }
    // Global average pool, on this thread (a parallel region costs more than N*C short sums).
    const int64_t N = h.size(0), C = h.size(1), HW = h.size(2) * h.size(3);
    Tensor<float> pooled = Tensor<float>::empty({N, C});
    for (int64_t i = 0; i < N * C; ++i) {
      float sum = 0;
      for (int64_t j = 0; j < HW; ++j) sum += h.data()[i * HW + j];
      pooled.data()[i] = sum / float(HW);
    }
    return fc_.forward(pooled);
  }

  void build_lenet(const Source& s) {
    const int64_t side = (config_.input_size / 2 - 4) / 2;
    check(config_.input_size >= 12, "infer::Model", "lenet input size ", config_.input_size,
          " is too small (>= 12)");
    stem_ = s.conv("conv1", "", config_.in_channels, 20, 5, 1, 2, true, true);
    conv2_ = s.conv("conv2", "", 20, 50, 5, 1, 0, true, true);
    fc_ = s.linear("fc1", 50 * side * side, 500, true);
    fc2_ = s.linear("fc2", 500, config_.num_classes, false);
  }

  // 2x2 max-pool, stride 2: x [N, C, H, W] -> [N, C, H/2, W/2].
  static Tensor<float> max_pool2(const Tensor<float>& x) {
    const kernels::ConvGeometry g{1, x.size(2), x.size(3), 2, 2, 2, 0, 1};
    Tensor<float> y = Tensor<float>::empty({x.size(0), x.size(1), g.out_h(), g.out_w()});
    std::vector<int32_t> argmax(size_t(y.numel()));
    kernels::max_pool_forward(x.data(), x.size(0) * x.size(1), g, y.data(), argmax.data());
    return y;
  }

  Tensor<float> forward_lenet(const Tensor<float>& x) const {
    Tensor<float> h = max_pool2(conv2_.forward(max_pool2(stem_.forward(x))));
    h = h.with_shape({h.size(0), h.numel() / h.size(0)});
    return fc2_.forward(fc_.forward(h));
  }

  std::vector<const ConvLayer*> convs() const {
    std::vector<const ConvLayer*> out{&stem_};
    if (config_.name == "lenet") out.push_back(&conv2_);
    for (const Block& b : blocks_) {
      out.push_back(&b.conv1);
      out.push_back(&b.conv2);
      if (b.shortcut == Block::projection) out.push_back(&b.project);
    }
    return out;
  }

  models::ModelConfig config_;
  WeightForm form_;
  ConvLayer stem_;            // resnet: conv1 + bn1 + ReLU; lenet: conv1 + ReLU
  std::vector<Block> blocks_;  // resnet
  ConvLayer conv2_;           // lenet
  LinearLayer fc_, fc2_;      // resnet: fc; lenet: fc1, fc2
};

// Reads the .trit file at `path` (io::read_compressed: trit::Error naming the file when it is
// truncated, corrupt or of another version) and builds its network in `form`.
inline Model load_compressed(const std::string& path, WeightForm form = WeightForm::compressed) {
  return Model(io::read_compressed(path), form);
}

}  // namespace trit::infer
