#pragma once
// The layers of inference: a convolution and a linear layer whose weight matrix W[O, K] is
// held either compressed (kernels::SignedTerms: ternary / power-of-two codes as index lists,
// multiplication-free product) or dense FP32 (kernels::gemm). Inference only: plain float
// tensors in and out, no autograd, BN already folded (fold_bn.hpp) into W and the bias.
//
//   ConvLayer    y[N, O, OH, OW] = act(conv(x[N, C, H, W], W) + bias[O] (+ residual[N, O, OH, OW]))
//   LinearLayer  y[N, O]         = act(x[N, K] * W^T + bias[O])
//
// A conv runs image by image. The dense form multiplies kernels::im2col's column matrix
// col[C*KH*KW, OH*OW] (a 1x1 stride-1 unpadded conv reads x[n] itself); the compressed form
// reads shifted views of the zero-bordered image (split into stride x stride phases when
// strided) instead of the KH*KW copies of im2col (see forward). With at least as many images as threads the
// images are split over threads, each with its own column buffer; with fewer (batch 1) the
// rows of W are split over threads (compressed) or Eigen's GEMM threads (dense).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include <omp.h>

#include "trit/core/error.hpp"
#include "trit/core/tensor.hpp"
#include "trit/kernels/depthwise.hpp"
#include "trit/kernels/gemm.hpp"
#include "trit/kernels/im2col.hpp"
#include "trit/kernels/ternary.hpp"

namespace trit::infer {

// Below this many additions (about 100 us on one core) a product runs on the calling thread
// even when threads are offered: the fork and join of a parallel region cost
// more than they save on a batch-1 ResNet-20 layer (a few tens of microseconds of work), and
// on a loaded machine a parallel region can wait milliseconds for a descheduled thread.
inline constexpr int64_t kParallelAdds = int64_t(1) << 22;

// A one-tile compressed conv with at most this many non-zero weights caches their offsets
// (64 KiB); see ConvLayer::offsets.
inline constexpr int64_t kCachedOffsets = 16384;

// How a quantized layer's weights are held: as codes (index lists) or expanded to FP32.
enum class WeightForm { compressed, dense };

// out[o, p] = act(out[o, p] + bias[o] + residual[o, p]) on a plain [O, P] matrix (row stride
// ldo): the epilogue of the dense form, run after the GEMM.
inline void apply_epilogue(float* out, int64_t ldo, int64_t O, int64_t P,
                           const kernels::Epilogue& e) {
  for (int64_t o = 0; o < O; ++o) {
    float* y = out + o * ldo;
    const float b = e.bias ? e.bias[o] : 0.0f;
    const float* r = e.residual ? e.residual + o * e.ld_residual : nullptr;
    for (int64_t p = 0; p < P; ++p) {
      float v = y[p] + b;
      if (r) v += r[p];
      if (e.relu) v = std::min(std::max(v, 0.0f), e.relu_cap);
      y[p] = v;
    }
  }
}

// W in one of the two forms, for a layer of G groups: W[O, K] where row o belongs to group
// g = o / (O/G) and multiplies rows [g*K, (g+1)*K) of the column matrix (a grouped conv's
// per-group columns; G = 1 for a plain conv or linear layer, G = O for a depthwise conv).
// The product is out[O, P] = epilogue(W * col[G*K, P]).
class MatrixWeights {
 public:
  MatrixWeights() = default;
  // Dense FP32, w row-major [O * K].
  static MatrixWeights dense(int64_t O, int64_t K, std::vector<float> w, int64_t groups = 1) {
    check(int64_t(w.size()) == O * K, "infer::MatrixWeights", "dense weight of ", w.size(),
          " values is not ", O, " x ", K);
    MatrixWeights m;
    m.rows_ = O, m.cols_ = K;
    m.dense_ = std::move(w);
    m.set_groups(groups);
    return m;
  }
  static MatrixWeights compressed(kernels::SignedTerms terms, int64_t groups = 1) {
    MatrixWeights m;
    m.rows_ = terms.rows, m.cols_ = terms.cols;
    m.terms_ = std::make_shared<kernels::SignedTerms>(std::move(terms));
    m.set_groups(groups);
    return m;
  }

  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }  // K: columns per group
  int64_t groups() const { return groups_; }
  bool is_compressed() const { return terms_ != nullptr; }
  const kernels::SignedTerms* terms() const { return terms_.get(); }
  const float* dense_data() const { return dense_.data(); }
  // Bytes the weights occupy in memory.
  int64_t bytes() const {
    return terms_ ? terms_->bytes() : int64_t(dense_.size() * sizeof(float));
  }

  // out[O, P] (row stride ldo) = epilogue(W * col[G*K, P] (row stride ldc)). The compressed
  // form needs ldc >= kernels::padded_columns(P) with finite values in the padding. `threads`:
  // run on the OpenMP threads (call it outside a parallel region), else on this thread.
  void apply(const float* col, int64_t ldc, int64_t P, float* out, int64_t ldo,
             const kernels::Epilogue& e, bool threads) const {
    if (terms_) {
      const std::vector<int32_t> rows = kernels::strided_rows(groups_ * cols_, ldc);
      apply_compressed(col, offsets(rows.data()).data(), P, out, ldo, e, threads);
      return;
    }
    // A small product (under kParallelAdds multiply-adds: every layer of a batch-1 ResNet-20)
    // runs on this thread, for the reason given at kParallelAdds. A larger one splits each
    // group's rows over the OpenMP threads, one Eigen GEMM per block (Eigen runs one thread
    // inside a parallel region). Not Eigen's own threads: its GEMM threads busy-wait for
    // each other, and on a loaded machine a batch-1 ResNet-18 took a second per image.
    const int64_t Og = rows_ / groups_;
    auto rows_block = [&](int64_t t, int64_t n) {
      for (int64_t g = 0; g < groups_; ++g) {
        const int64_t o0 = Og * t / n, o1 = Og * (t + 1) / n;
        if (o1 > o0)
          kernels::gemm(false, false, o1 - o0, P, cols_, 1.0f,
                        dense_.data() + (g * Og + o0) * cols_, cols_, col + g * cols_ * ldc, ldc,
                        0.0f, out + (g * Og + o0) * ldo, ldo);
      }
    };
    if (!threads) {  // called inside a parallel region (images over threads)
      rows_block(0, 1);
    } else if (rows_ * cols_ * P < kParallelAdds || omp_get_max_threads() == 1) {
      const int eigen_threads = Eigen::nbThreads();
      Eigen::setNbThreads(1);
      rows_block(0, 1);
      Eigen::setNbThreads(eigen_threads);
    } else {
#pragma omp parallel
      rows_block(omp_get_thread_num(), omp_get_num_threads());
    }
    apply_epilogue(out, ldo, rows_, P, e);
  }

  // The compressed form's offsets into a column matrix whose row k (of G*K) starts at
  // col + rows[k] (kernels::nonzero_offsets).
  std::vector<int32_t> offsets(const int32_t* rows) const {
    check(terms_ != nullptr, "infer::MatrixWeights", "offsets of dense weights");
    return kernels::nonzero_offsets(*terms_, rows, groups_);
  }

  // The compressed form on a column matrix read through offsets(rows)
  // (kernels::signed_terms_gemm). Threads split the output rows.
  void apply_compressed(const float* col, const int32_t* offset, int64_t P, float* out,
                        int64_t ldo, const kernels::Epilogue& e, bool threads) const {
    check(terms_ != nullptr, "infer::MatrixWeights", "apply_compressed on dense weights");
    const kernels::SignedTerms& w = *terms_;
    if (!threads || w.nonzeros() * P < kParallelAdds || omp_get_max_threads() == 1) {
      kernels::signed_terms_gemm(w, 0, rows_, col, offset, P, out, ldo, e);
      return;
    }
#pragma omp parallel
    {  // one contiguous block of rows per thread
      const int64_t t = omp_get_thread_num(), n = omp_get_num_threads();
      kernels::signed_terms_gemm(w, rows_ * t / n, rows_ * (t + 1) / n, col, offset, P, out, ldo,
                                 e);
    }
  }

 private:
  void set_groups(int64_t groups) {
    check(groups >= 1 && rows_ % groups == 0, "infer::MatrixWeights", groups,
          " groups do not split ", rows_, " rows");
    groups_ = groups;
  }

  int64_t rows_ = 0, cols_ = 0, groups_ = 1;
  std::vector<float> dense_;                      // dense form
  std::shared_ptr<kernels::SignedTerms> terms_;  // compressed form
};

// A 64-byte aligned buffer of at least n floats owned by the calling thread, kept for later
// calls (slot 0: the column matrix or the zero-bordered image). Aligned, so that the kernels'
// 16-float loads do not straddle cache lines.
inline float* workspace(int slot, int64_t n) {
  thread_local Tensor<float> buffers[1];
  Tensor<float>& b = buffers[slot];
  if (!b.defined() || b.numel() < n) b = Tensor<float>::empty({std::max<int64_t>(n, 1)});
  return b.data();
}

// The compressed conv's per-weight offsets (MatrixWeights::offsets) for the last input size it
// saw, so that a forward does not resolve them again. Copies start empty; safe to share
// between threads (a mutex guards the swap, readers keep their shared_ptr).
class OffsetCache {
 public:
  OffsetCache() = default;
  OffsetCache(const OffsetCache&) {}
  OffsetCache& operator=(const OffsetCache&) {
    std::lock_guard<std::mutex> lock(mutex_);
    offsets_.reset();
    return *this;
  }

  // Bytes of the offsets held (4 per non-zero weight once a forward ran).
  int64_t bytes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return offsets_ ? int64_t(offsets_->size() * sizeof(int32_t)) : 0;
  }

  // The offsets stored for key, or make() stored under key.
  template <class Make>
  std::shared_ptr<const std::vector<int32_t>> get(const std::array<int64_t, 4>& key,
                                                 Make&& make) const {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (offsets_ && key_ == key) return offsets_;
    }
    auto made = std::make_shared<const std::vector<int32_t>>(make());
    std::lock_guard<std::mutex> lock(mutex_);
    key_ = key, offsets_ = made;
    return made;
  }

 private:
  mutable std::mutex mutex_;
  mutable std::array<int64_t, 4> key_{};
  mutable std::shared_ptr<const std::vector<int32_t>> offsets_;
};

// A 2-d convolution of G groups with bias (BN folded in) and an optional ReLU (capped at
// relu_cap: ReLU6 for MobileNetV2). Group g maps input channels [g*C/G, (g+1)*C/G) to output
// channels [g*O/G, (g+1)*O/G); G = C = O is a depthwise conv.
struct ConvLayer {
  int64_t C = 0, O = 0, KH = 1, KW = 1, stride = 1, padding = 0, groups = 1;
  MatrixWeights weight;     // [O, C/G*KH*KW], groups G
  std::vector<float> bias;  // [O]
  bool relu = false;
  float relu_cap = INFINITY;
  OffsetCache offset_cache;  // compressed form: offsets for the last input size

  // The compressed weights' offsets (MatrixWeights::offsets) into a column matrix of
  // `columns` columns whose rows make_rows() gives. Cached when the product has more than
  // one 64-column tile (every tile reads them) or when they are small (kCachedOffsets
  // non-zeros: resolving them costs about as much as a one-tile product); a large one-tile
  // product resolves them per call into this thread's scratch vector instead: caching them
  // would add 4 bytes per non-zero weight to the model's memory (most of a ResNet-18's
  // weights sit in its 4x4 layer4).
  template <class MakeRows>
  const int32_t* offsets(const kernels::ConvGeometry& g, int64_t columns, MakeRows&& make_rows,
                         std::shared_ptr<const std::vector<int32_t>>& keep) const {
    if (columns > 64 || weight.terms()->nonzeros() <= kCachedOffsets) {
      keep = offset_cache.get(cache_key(g), [&] { return weight.offsets(make_rows().data()); });
      return keep->data();
    }
    thread_local std::vector<int32_t> scratch;
    kernels::nonzero_offsets(*weight.terms(), make_rows().data(), weight.groups(), scratch);
    return scratch.data();
  }

  // The input size and the weights (their address and non-zero count) the offsets are for.
  std::array<int64_t, 4> cache_key(const kernels::ConvGeometry& g) const {
    return {g.H, g.W, int64_t(reinterpret_cast<std::intptr_t>(weight.terms())),
            weight.terms()->nonzeros()};
  }

  // x [N, C, H, W] -> [N, O, OH, OW]; residual (same shape as the output, or undefined) is
  // added before the activation.
  Tensor<float> forward(const Tensor<float>& x, const Tensor<float>& residual = {}) const {
    if (x.dim() != 4 || x.size(1) != C)  // (to_string only on failure: this runs every layer)
      check(false, "infer::ConvLayer", "expected x [N, ", C, ", H, W], got ",
            to_string(x.shape()));
    check(groups >= 1 && C % groups == 0 && O % groups == 0 && weight.groups() == groups &&
              weight.rows() == O && weight.cols() == C / groups * KH * KW &&
              int64_t(bias.size()) == O,
          "infer::ConvLayer", "weight [", weight.rows(), ", ", weight.cols(), "] in ",
          weight.groups(), " groups and ", bias.size(), " biases do not fit a ", KH, "x", KW,
          " conv ", C, " -> ", O, " in ", groups, " groups");
    const int64_t N = x.size(0);
    const kernels::ConvGeometry g{C, x.size(2), x.size(3), KH, KW, stride, padding, 1};
    const int64_t OH = g.out_h(), OW = g.out_w(), P = OH * OW, K = g.col_rows();
    check(OH >= 1 && OW >= 1, "infer::ConvLayer", "kernel ", KH, "x", KW,
          " larger than the padded input ", to_string(x.shape()));
    Tensor<float> y = Tensor<float>::empty({N, O, OH, OW});
    if (residual.defined() && residual.shape() != y.shape())
      check(false, "infer::ConvLayer", "residual ",
            to_string(residual.shape()), " does not match the output ", to_string(y.shape()));
    const int64_t in_image = C * g.H * g.W, out_image = O * P;
    auto epilogue = [&](int64_t n) {
      kernels::Epilogue e{bias.data(), residual.defined() ? residual.data() + n * out_image : nullptr,
                          P, relu, relu_cap};
      return e;
    };
    if (!weight.is_compressed() && groups == C && O == C) {
      // Dense depthwise: kernels::depthwise_forward slides each channel's filter over its
      // plane (threads over the N*C planes), then the residual and activation.
      kernels::depthwise_forward(x.data(), weight.dense_data(), bias.data(), N, g, y.data());
      if (residual.defined() || relu)
        for (int64_t n = 0; n < N; ++n) {
          kernels::Epilogue e = epilogue(n);
          e.bias = nullptr;
          apply_epilogue(y.data() + n * out_image, P, O, P, e);
        }
      return y;
    }
    std::function<void(int64_t, bool)> run_image;
    // The zero-bordered image, split into stride x stride phases (one phase at stride 1):
    //   xs[a, b, c, i, j] = x[n, c, s*i + a - padding, s*j + b - padding]   (0 outside)
    // for phase rows a < SA = min(s, KH), columns b < SB = min(s, KW), i < Hq, j < Wq, rows of
    // Wq floats. Output pixel (oh, ow) with tap (c, kh, kw) reads the padded image at
    // (s*oh + kh, s*ow + kw) = phase (kh % s, kw % s) at (oh + kh / s, ow + kw / s), so every
    // tap is a flat view of a phase starting at (c, kh / s, kw / s), as for a stride-1 conv,
    // with no im2col. The product is computed over OH*Wq columns (those with ow >= OW are
    // junk): column oh*Wq + ow of a tap's view is the wanted value for every valid ow
    // (ow + kw / s <= OW - 1 + (KW - 1) / s < Wq, or at stride 1 past the row into the next
    // row's left padding, see need_w); junk columns read into the next row, finite values
    // whose results are dropped. The epilogue's padded-row mapping
    // (kernels::Epilogue::row_width) drops the junk columns and writes y directly, with bias,
    // residual and activation. (Taps with kw / s > 0 are unaligned loads; KW shifted, aligned
    // copies of the image measured ~4% slower on a batch-1 ResNet-20: building them costs more
    // than the split loads.)
    // Wq: the width the taps need, rounded up to 16 floats (aligned loads) unless that wastes
    // more than a quarter of the work on junk columns (7x7 images).
    const int64_t s = stride, SA = std::min(s, KH), SB = std::min(s, KW);
    // At stride 1 a row's right padding can be the next row's left padding (a tap reading past
    // its row lands on the next row's first `padding` columns, zeros), so rows of W + padding
    // suffice (7x7 images: 56 columns, not 63).
    const int64_t Hq = OH + (KH - 1) / s,
                  need_w = s == 1 ? std::max(OW, g.W + padding) : OW + (KW - 1) / s;
    const int64_t Wq16 = (need_w + 15) / 16 * 16, Wq = 4 * OW >= 3 * Wq16 ? Wq16 : need_w;
    if (weight.is_compressed() && OH * Wq >= 4) {
      const int64_t plane = Hq * Wq, Pq = OH * Wq;
      const int64_t xs_size = SA * SB * C * plane + 64 + KW;  // + the last tile's overrun
      // Row (c, kh, kw) of the virtual column matrix starts at xs[kh % s, kw % s, c, kh / s, kw / s].
      std::shared_ptr<const std::vector<int32_t>> keep;
      const int32_t* offset = offsets(g, Pq, [&] {
        check(xs_size < (int64_t(1) << 31), "infer::ConvLayer", "zero-bordered image of ",
              xs_size, " floats is too large for 32-bit offsets");
        std::vector<int32_t> rows(static_cast<size_t>(K));
        for (int64_t c = 0; c < C; ++c)
          for (int64_t kh = 0; kh < KH; ++kh)
            for (int64_t kw = 0; kw < KW; ++kw)
              rows[size_t((c * KH + kh) * KW + kw)] =
                  int32_t((((kh % s) * SB + kw % s) * C + c) * plane + (kh / s) * Wq + kw / s);
        return rows;
      }, keep);
      run_image = [&, SA, SB, Hq, Wq, plane, Pq, xs_size, offset](int64_t n, bool threads) {
        const float* src = x.data() + n * in_image;
        float* xs = workspace(0, xs_size + 16);  // + copy_bordered_row's overrun
        if (s == 1) {
          // every row written once, in order: image row h at row h + padding, column w at
          // w + padding, zeros around it (the padding rows, columns and the tail)
          for (int64_t c = 0; c < C; ++c)
            for (int64_t i = 0; i < Hq; ++i) {
              float* dst = xs + (c * Hq + i) * Wq;
              const int64_t h = i - padding;
              if (h >= 0 && h < g.H)
                kernels::copy_bordered_row(dst, Wq, src + (c * g.H + h) * g.W, g.W, padding);
              else
                std::fill(dst, dst + Wq, 0.0f);
            }
          std::fill(xs + C * plane, xs + xs_size, 0.0f);
        } else {
          std::fill(xs, xs + xs_size, 0.0f);  // zeros everywhere (one fill), then the phases
          // phase (a, b), row i: image row h = s*i + a - padding, columns w = s*j + b - padding
          // (zero where w falls outside the row)
          for (int64_t a = 0; a < SA; ++a)
            for (int64_t b = 0; b < SB; ++b)
              for (int64_t c = 0; c < C; ++c)
                for (int64_t i = 0; i < Hq; ++i) {
                  const int64_t h = s * i + a - padding;
                  if (h < 0 || h >= g.H) continue;
                  kernels::copy_strided_row(xs + ((a * SB + b) * C + c) * plane + i * Wq, Wq,
                                            src + (c * g.H + h) * g.W, g.W, b - padding, s);
                }
        }
        kernels::Epilogue e = epilogue(n);
        e.row_width = Wq, e.out_width = OW;
        weight.apply_compressed(xs, offset, Pq, y.data() + n * out_image, P, e, threads);
      };
    } else {
      // The column matrix col[K, ld], its rows padded to whole 64-column tiles with zeros; the
      // dense form of a 1x1 stride-1 unpadded conv reads x[n] itself.
      const bool direct =
          !weight.is_compressed() && KH == 1 && KW == 1 && stride == 1 && padding == 0;
      const int64_t ld = kernels::padded_columns(P);
      std::shared_ptr<const std::vector<int32_t>> keep;
      const int32_t* offset =  // compressed: into col[K, ld]
          weight.is_compressed() ? offsets(g, P, [&] { return kernels::strided_rows(K, ld); }, keep)
                                 : nullptr;
      run_image = [&, direct, ld, offset](int64_t n, bool threads) {
        const float* src = x.data() + n * in_image;
        float* col = direct ? nullptr : workspace(0, K * ld);
        if (!direct) {
          kernels::im2col(src, g, col, ld);
          for (int64_t k = 0; k < K; ++k) std::fill(col + k * ld + P, col + (k + 1) * ld, 0.0f);
        }
        float* out = y.data() + n * out_image;
        if (offset)
          weight.apply_compressed(col, offset, P, out, P, epilogue(n), threads);
        else
          weight.apply(direct ? src : col, direct ? P : ld, P, out, P, epilogue(n), threads);
      };
    }
    if (N >= omp_get_max_threads() && N > 1) {
#pragma omp parallel for schedule(static)
      for (int64_t n = 0; n < N; ++n) run_image(n, false);
    } else {
      for (int64_t n = 0; n < N; ++n) run_image(n, true);
    }
    return y;
  }
};

// A linear layer with bias and an optional ReLU: x [N, K] -> [N, O].
struct LinearLayer {
  MatrixWeights weight;     // [O, K]
  std::vector<float> bias;  // [O]
  bool relu = false;
  float relu_cap = INFINITY;

  Tensor<float> forward(const Tensor<float>& x) const {
    const int64_t O = weight.rows(), K = weight.cols();
    check(x.dim() == 2 && x.size(1) == K, "infer::LinearLayer", "expected x [N, ", K, "], got ",
          to_string(x.shape()));
    const int64_t N = x.size(0);
    // Both forms compute yT[O, N] = W * xT[K, N], then transpose back.
    // xT's rows are padded to whole 64-column tiles with zeros (kernels/ternary.hpp).
    const int64_t ld = kernels::padded_columns(N);
    std::vector<float> xT(size_t(K * ld), 0.0f), yT(size_t(O * N));
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k) xT[size_t(k * ld + n)] = x.data()[n * K + k];
    weight.apply(xT.data(), ld, N, yT.data(), N, kernels::Epilogue{bias.data(), nullptr, 0, relu, relu_cap},
                 true);
    Tensor<float> y = Tensor<float>::empty({N, O});
    for (int64_t o = 0; o < O; ++o)
      for (int64_t n = 0; n < N; ++n) y.data()[n * O + o] = yT[size_t(o * N + n)];
    return y;
  }
};

}  // namespace trit::infer
