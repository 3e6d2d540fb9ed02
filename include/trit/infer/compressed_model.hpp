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
// residual block is a few fused conv(+bias, +residual, +activation) passes. Every
// architecture of models::make_model is supported:
//   resnet20 / resnet32 / resnet56  models::CifarResNet, shortcut option A or B
//   resnet18 / resnet34 / resnet50  models::ResNet (BasicBlock / Bottleneck, 7x7 stem and
//                                   max-pool, or the small_input 3x3 stem; 1x1+BN projections)
//   mobilenet_v2                    models::MobileNetV2 (inverted residuals: 1x1 expand,
//                                   depthwise 3x3, 1x1 project; ReLU6; width; small_input)
//   lenet                           models::LeNet
// The networks other than LeNet share one shape, which Model holds as data:
//   stem conv -> [3x3/2 max-pool] -> blocks -> [head conv] -> global average pool -> fc
// where a Block is a chain of convs whose last one adds the shortcut (identity, option A,
// 1x1 projection, or none) before its activation.
// forward(x [N, C, H, W]) -> logits [N, K], the same function as the trained model in eval
// mode (to float rounding: the additions run in another order).
#include <algorithm>
#include <array>
#include <cmath>
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
#include "trit/models/mobilenet_v2.hpp"
#include "trit/models/registry.hpp"
#include "trit/models/shortcut_a.hpp"
#include "trit/nn/module.hpp"
#include "trit/quant/codes.hpp"

namespace trit::infer {

class Model {
 public:
  // Architectures with a compressed inference model; others run dense (io::make_dense_model).
  static bool supports(const std::string& name) {
    return name == "lenet" || name == "resnet20" || name == "resnet32" || name == "resnet56" ||
           name == "resnet18" || name == "resnet34" || name == "resnet50" ||
           name == "mobilenet_v2";
  }

  explicit Model(const io::CompressedModel& m, WeightForm form = WeightForm::compressed)
      : config_(m.config), form_(form) {
    Source s{m, form};
    const std::string& name = config_.name;
    if (name == "lenet") {
      build_lenet(s);
    } else if (name == "resnet20" || name == "resnet32" || name == "resnet56") {
      build_cifar_resnet(s, (std::stoi(name.substr(6)) - 2) / 6);
    } else if (name == "resnet18" || name == "resnet34") {
      build_resnet(s, false, name == "resnet18" ? std::array<int64_t, 4>{2, 2, 2, 2}
                                                : std::array<int64_t, 4>{3, 4, 6, 3});
    } else if (name == "resnet50") {
      build_resnet(s, true, {3, 4, 6, 3});
    } else if (name == "mobilenet_v2") {
      build_mobilenet_v2(s);
    } else {
      check(false, "infer::Model", "architecture '", name,
            "' has no inference model; supported: lenet, resnet18, resnet20, resnet32, "
            "resnet34, resnet50, resnet56, mobilenet_v2");
    }
  }

  // x [N, C, H, W] -> logits [N, K].
  Tensor<float> forward(const Tensor<float>& x) const {
    check(x.dim() == 4 && x.size(1) == config_.in_channels, "infer::Model", "expected x [N, ",
          config_.in_channels, ", H, W], got ", to_string(x.shape()));
    NoGradGuard no_grad;
    return config_.name == "lenet" ? forward_lenet(x) : forward_blocks(x);
  }

  // Bytes the weights and biases occupy in memory (index lists for compressed layers).
  int64_t weight_bytes() const {
    int64_t bytes = 0;
    for (const ConvLayer* c : convs()) bytes += c->weight.bytes() + 4 * int64_t(c->bias.size());
    for (const LinearLayer* l : {&fc_, &fc2_})
      bytes += l->weight.bytes() + 4 * int64_t(l->bias.size());
    return bytes;
  }
  // Bytes the model holds in memory: weight_bytes(), the layer descriptions and the offsets
  // the compressed convs cache after a forward (ConvLayer::offset_cache: 4 bytes per non-zero
  // weight); not the per-thread scratch buffers of a forward (layers.hpp's workspace).
  int64_t memory_bytes() const {
    int64_t cached = 0;
    for (const ConvLayer* c : convs()) cached += c->offset_cache.bytes();
    return weight_bytes() + cached + int64_t(sizeof(Model)) +
           int64_t(blocks_.capacity() * sizeof(Block)) +
           [&] {
             int64_t n = 0;
             for (const Block& b : blocks_) n += int64_t(b.convs.capacity() * sizeof(ConvLayer));
             return n;
           }();
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
  // A block: convs[0] -> ... -> convs.back(), whose epilogue adds the shortcut of the
  // block's input before its activation (BasicBlock, Bottleneck, InvertedResidual).
  struct Block {
    std::vector<ConvLayer> convs;
    enum { none, identity, option_a, projection } shortcut = none;
    ConvLayer project;  // projection: 1x1 conv + BN (ResNet downsample, CIFAR option B)
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
    // W named `name` of shape `shape` ([O, ...]) as a matrix [O, numel/O] in `groups`
    // groups, BN folded in.
    MatrixWeights matrix(const std::string& name, const Shape& shape, const ChannelAffine* bn,
                         int64_t groups = 1) const {
      const int64_t O = shape[0], K = numel_of(shape) / O;
      const io::CompressedTensor& t = find(name);
      check(t.shape() == shape, "infer::Model", m.config.name, ": '", name, "' is ",
            to_string(t.shape()), ", expected ", to_string(shape));
      if (t.is_quantized()) {
        const quant::QuantizedTensor q = bn ? fold_codebooks(t.quantized, *bn) : t.quantized;
        check(q.numel() == O * K && !q.codebooks.empty(), "infer::Model", "'", name,
              "' holds ", q.numel(), " codes for shape ", to_string(shape));
        if (form == WeightForm::compressed)
          return MatrixWeights::compressed(
              kernels::pack_signed_terms(O, K, q.codes.data(), q.codebooks), groups);
        return MatrixWeights::dense(O, K, q.expand().to_vector(), groups);
      }
      return MatrixWeights::dense(O, K, (bn ? fold_weight(t.dense, *bn) : t.dense).to_vector(),
                                  groups);
    }
    // A k x k conv C -> O in `groups` groups named `prefix` (weight, optional bias) followed
    // by BatchNorm `bn_prefix` ("" for none), then ReLU (capped at relu_cap) when relu.
    ConvLayer conv(const std::string& prefix, const std::string& bn_prefix, int64_t C, int64_t O,
                   int64_t k, int64_t stride, int64_t padding, bool relu, bool has_bias,
                   int64_t groups = 1, float relu_cap = INFINITY) const {
      ConvLayer c;
      c.C = C, c.O = O, c.KH = c.KW = k, c.stride = stride, c.padding = padding, c.relu = relu;
      c.groups = groups, c.relu_cap = relu_cap;
      check(groups >= 1 && C % groups == 0 && O % groups == 0, "infer::Model", "'", prefix,
            "': ", groups, " groups do not split ", C, " -> ", O, " channels");
      const Shape shape{O, C / groups, k, k};
      Tensor<float> bias = has_bias ? fp32(prefix + ".bias") : Tensor<float>();
      if (!bn_prefix.empty()) {
        const ChannelAffine a = bn(bn_prefix);
        c.weight = matrix(prefix + ".weight", shape, &a, groups);
        c.bias = fold_bias(bias, a);
      } else {
        c.weight = matrix(prefix + ".weight", shape, nullptr, groups);
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
        blk.convs.push_back(s.conv(p + ".conv1", p + ".bn1", channels, P, 3, stride, 1, true, false));
        blk.convs.push_back(s.conv(p + ".conv2", p + ".bn2", P, P, 3, 1, 1, true, false));
        blk.shortcut = Block::identity;
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

  // torchvision's ResNet-18/34 (BasicBlock) or ResNet-50 (Bottleneck, expansion 4).
  void build_resnet(const Source& s, bool bottleneck, std::array<int64_t, 4> blocks_per_stage) {
    const bool small = config_.use_small_input();
    stem_ = small ? s.conv("conv1", "bn1", config_.in_channels, 64, 3, 1, 1, true, false)
                  : s.conv("conv1", "bn1", config_.in_channels, 64, 7, 2, 3, true, false);
    stem_pool_ = !small;
    int64_t channels = 64;
    for (int stage = 0; stage < 4; ++stage) {
      const int64_t planes = int64_t(64) << stage, out = bottleneck ? 4 * planes : planes;
      for (int64_t b = 0; b < blocks_per_stage[size_t(stage)]; ++b) {
        const std::string p = "layer" + std::to_string(stage + 1) + "." + std::to_string(b);
        const int64_t stride = (stage > 0 && b == 0) ? 2 : 1;
        Block blk;
        if (bottleneck) {  // 1x1 -> 3x3 (stride) -> 1x1
          blk.convs.push_back(s.conv(p + ".conv1", p + ".bn1", channels, planes, 1, 1, 0, true, false));
          blk.convs.push_back(s.conv(p + ".conv2", p + ".bn2", planes, planes, 3, stride, 1, true, false));
          blk.convs.push_back(s.conv(p + ".conv3", p + ".bn3", planes, out, 1, 1, 0, true, false));
        } else {  // 3x3 (stride) -> 3x3
          blk.convs.push_back(s.conv(p + ".conv1", p + ".bn1", channels, planes, 3, stride, 1, true, false));
          blk.convs.push_back(s.conv(p + ".conv2", p + ".bn2", planes, planes, 3, 1, 1, true, false));
        }
        blk.out_channels = out, blk.stride = stride;
        if (stride != 1 || channels != out) {
          blk.shortcut = Block::projection;
          blk.project = s.conv(p + ".downsample.0", p + ".downsample.1", channels, out, 1, stride,
                               0, false, false);
        } else {
          blk.shortcut = Block::identity;
        }
        blocks_.push_back(std::move(blk));
        channels = out;
      }
    }
    fc_ = s.linear("fc", channels, config_.num_classes, false);
  }

  // torchvision's MobileNetV2 (models/mobilenet_v2.hpp: the same table, strides and widths).
  void build_mobilenet_v2(const Source& s) {
    const bool small = config_.use_small_input();
    const double width = config_.width;
    check(width > 0, "infer::Model", "mobilenet_v2 width ", width, " must be > 0");
    const float six = 6.0f;
    int64_t channels = models::make_divisible(32 * width);
    stem_ = s.conv("features.0.0", "features.0.1", config_.in_channels, channels, 3, small ? 1 : 2,
                   1, true, false, 1, six);
    struct Row {
      int64_t t, c, n, s;
    };
    const Row rows[] = {{1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                        {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
    int feature = 1;
    for (int row = 0; row < 7; ++row) {
      const int64_t out = models::make_divisible(double(rows[row].c) * width);
      for (int64_t i = 0; i < rows[row].n; ++i, ++feature) {
        int64_t stride = i == 0 ? rows[row].s : 1;
        if (small && row == 1 && i == 0) stride = 1;  // the CIFAR variant
        const std::string p = "features." + std::to_string(feature) + ".conv.";
        const int64_t hidden = channels * rows[row].t;
        Block blk;
        int next = 0;  // index of the next child of the block's Sequential
        if (rows[row].t != 1) {  // 1x1 expand + BN + ReLU6
          blk.convs.push_back(s.conv(p + "0.0", p + "0.1", channels, hidden, 1, 1, 0, true, false, 1, six));
          next = 1;
        }
        const std::string dw = p + std::to_string(next), proj = p + std::to_string(next + 1),
                          proj_bn = p + std::to_string(next + 2);
        // depthwise 3x3 + BN + ReLU6, then the linear 1x1 projection + BN (no activation)
        blk.convs.push_back(s.conv(dw + ".0", dw + ".1", hidden, hidden, 3, stride, 1, true, false, hidden, six));
        blk.convs.push_back(s.conv(proj, proj_bn, hidden, out, 1, 1, 0, false, false));
        blk.shortcut = stride == 1 && channels == out ? Block::identity : Block::none;
        blk.out_channels = out, blk.stride = stride;
        blocks_.push_back(std::move(blk));
        channels = out;
      }
    }
    const int64_t last = models::make_divisible(1280 * std::max(1.0, width));
    const std::string h = "features." + std::to_string(feature);
    head_ = s.conv(h + ".0", h + ".1", channels, last, 1, 1, 0, true, false, 1, six);
    has_head_ = true;
    fc_ = s.linear("classifier.1", last, config_.num_classes, false);
  }

  // stem -> [max-pool] -> blocks -> [head] -> global average pool -> fc.
  Tensor<float> forward_blocks(const Tensor<float>& x) const {
    Tensor<float> h = stem_.forward(x);
    if (stem_pool_) h = max_pool(h, 3, 2, 1);
    for (const Block& b : blocks_) {
      Tensor<float> t = h;
      for (size_t i = 0; i + 1 < b.convs.size(); ++i) t = b.convs[i].forward(t);
      Tensor<float> shortcut = b.shortcut == Block::none       ? Tensor<float>()
                               : b.shortcut == Block::identity ? h
                               : b.shortcut == Block::option_a
                                   ? subsample_pad_channels(h, b.out_channels, b.stride)
                                   : b.project.forward(h);
      h = b.convs.back().forward(t, shortcut);
    }
    if (has_head_) h = head_.forward(h);
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

  // k x k max-pool: x [N, C, H, W] -> [N, C, OH, OW] (padding counts as -infinity).
  static Tensor<float> max_pool(const Tensor<float>& x, int64_t k, int64_t stride,
                                int64_t padding) {
    const kernels::ConvGeometry g{1, x.size(2), x.size(3), k, k, stride, padding, 1};
    Tensor<float> y = Tensor<float>::empty({x.size(0), x.size(1), g.out_h(), g.out_w()});
    std::vector<int32_t> argmax(size_t(y.numel()));
    kernels::max_pool_forward(x.data(), x.size(0) * x.size(1), g, y.data(), argmax.data());
    return y;
  }

  Tensor<float> forward_lenet(const Tensor<float>& x) const {
    Tensor<float> h = max_pool(conv2_.forward(max_pool(stem_.forward(x), 2, 2, 0)), 2, 2, 0);
    h = h.with_shape({h.size(0), h.numel() / h.size(0)});
    return fc2_.forward(fc_.forward(h));
  }

  std::vector<const ConvLayer*> convs() const {
    std::vector<const ConvLayer*> out{&stem_};
    if (config_.name == "lenet") out.push_back(&conv2_);
    if (has_head_) out.push_back(&head_);
    for (const Block& b : blocks_) {
      for (const ConvLayer& c : b.convs) out.push_back(&c);
      if (b.shortcut == Block::projection) out.push_back(&b.project);
    }
    return out;
  }

  models::ModelConfig config_;
  WeightForm form_;
  ConvLayer stem_;             // resnet: conv1 + bn1 + ReLU; mobilenet: features.0; lenet: conv1
  bool stem_pool_ = false;     // resnet18/34/50 without small_input: 3x3/2 max-pool after it
  std::vector<Block> blocks_;  // resnets, mobilenet
  ConvLayer head_;             // mobilenet: features.18 (1x1 conv + BN + ReLU6)
  bool has_head_ = false;
  ConvLayer conv2_;            // lenet
  LinearLayer fc_, fc2_;       // fc (mobilenet: classifier.1); lenet: fc1, fc2
};

// Reads the .trit file at `path` (io::read_compressed: trit::Error naming the file when it is
// truncated, corrupt or of another version) and builds its network in `form`.
inline Model load_compressed(const std::string& path, WeightForm form = WeightForm::compressed) {
  return Model(io::read_compressed(path), form);
}

}  // namespace trit::infer
