#pragma once
// The layers of inference: a convolution and a linear layer whose weight matrix W[O, K] is
// held either compressed (kernels::SignedTerms: ternary / power-of-two codes as index lists,
// multiplication-free product) or dense FP32 (kernels::gemm). Inference only: plain float
// tensors in and out, no autograd, BN already folded (fold_bn.hpp) into W and the bias.
//
//   ConvLayer    y[N, O, OH, OW] = act(conv(x[N, C, H, W], W) + bias[O] (+ residual[N, O, OH, OW]))
//   LinearLayer  y[N, O]         = act(x[N, K] * W^T + bias[O])
//
// A conv runs image by image on kernels::im2col's column matrix col[C*KH*KW, OH*OW] (a 1x1
// stride-1 unpadded conv reads x[n] itself). With at least as many images as threads the
// images are split over threads, each with its own column buffer; with fewer (batch 1) the
// rows of W are split over threads (compressed) or Eigen's GEMM threads (dense).
#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include <omp.h>

#include "trit/core/error.hpp"
#include "trit/core/tensor.hpp"
#include "trit/kernels/gemm.hpp"
#include "trit/kernels/im2col.hpp"
#include "trit/kernels/ternary.hpp"

namespace trit::infer {

// How a quantized layer's weights are held: as codes (index lists) or expanded to FP32.
enum class WeightForm { compressed, dense };

// W[O, K] in one of the two forms, and the product out[O, P] = epilogue(W * col[K, P]).
class MatrixWeights {
 public:
  MatrixWeights() = default;
  // Dense FP32, w row-major [O * K].
  static MatrixWeights dense(int64_t O, int64_t K, std::vector<float> w) {
    check(int64_t(w.size()) == O * K, "infer::MatrixWeights", "dense weight of ", w.size(),
          " values is not ", O, " x ", K);
    MatrixWeights m;
    m.rows_ = O, m.cols_ = K;
    m.dense_ = std::move(w);
    return m;
  }
  static MatrixWeights compressed(kernels::SignedTerms terms) {
    MatrixWeights m;
    m.rows_ = terms.rows, m.cols_ = terms.cols;
    m.terms_ = std::make_shared<kernels::SignedTerms>(std::move(terms));
    return m;
  }

  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  bool is_compressed() const { return terms_ != nullptr; }
  const kernels::SignedTerms* terms() const { return terms_.get(); }
  // Bytes the weights occupy in memory.
  int64_t bytes() const {
    return terms_ ? terms_->bytes() : int64_t(dense_.size() * sizeof(float));
  }

  // out[O, P] (row stride ldo) = epilogue(W * col[K, P] (row stride ldc)). `threads`: run the
  // rows on the OpenMP threads (call it outside a parallel region), else on the calling thread.
  void apply(const float* col, int64_t ldc, int64_t P, float* out, int64_t ldo,
             const kernels::Epilogue& e, bool threads) const {
    if (terms_) {
      const kernels::SignedTerms& w = *terms_;
      if (threads) {
#pragma omp parallel for schedule(static)
        for (int64_t o = 0; o < rows_; ++o)
          kernels::signed_terms_gemm(w, o, o + 1, col, ldc, P, out, ldo, e);
      } else {
        kernels::signed_terms_gemm(w, 0, rows_, col, ldc, P, out, ldo, e);
      }
      return;
    }
    // Eigen uses its threads outside a parallel region, one thread inside.
    kernels::gemm(false, false, rows_, P, cols_, 1.0f, dense_.data(), cols_, col, ldc, 0.0f, out,
                  ldo);
    for (int64_t o = 0; o < rows_; ++o) {
      float* y = out + o * ldo;
      const float b = e.bias ? e.bias[o] : 0.0f;
      const float* r = e.residual ? e.residual + o * e.ld_residual : nullptr;
      for (int64_t p = 0; p < P; ++p) {
        float v = y[p] + b;
        if (r) v += r[p];
        y[p] = e.relu ? std::max(v, 0.0f) : v;
      }
    }
  }

 private:
  int64_t rows_ = 0, cols_ = 0;
  std::vector<float> dense_;                      // dense form
  std::shared_ptr<kernels::SignedTerms> terms_;  // compressed form
};

// A column buffer of at least n floats owned by the calling thread, kept for later calls.
inline float* column_workspace(int64_t n) {
  thread_local std::vector<float> buffer;
  if (int64_t(buffer.size()) < n) buffer.resize(size_t(n));
  return buffer.data();
}

// A 2-d convolution (groups 1) with bias (BN folded in) and an optional ReLU.
struct ConvLayer {
  int64_t C = 0, O = 0, KH = 1, KW = 1, stride = 1, padding = 0;
  MatrixWeights weight;     // [O, C*KH*KW]
  std::vector<float> bias;  // [O]
  bool relu = false;

  // x [N, C, H, W] -> [N, O, OH, OW]; residual (same shape as the output, or undefined) is
  // added before the ReLU.
  Tensor<float> forward(const Tensor<float>& x, const Tensor<float>& residual = {}) const {
    check(x.dim() == 4 && x.size(1) == C, "infer::ConvLayer", "expected x [N, ", C,
          ", H, W], got ", to_string(x.shape()));
    const int64_t N = x.size(0);
    const kernels::ConvGeometry g{C, x.size(2), x.size(3), KH, KW, stride, padding, 1};
    const int64_t OH = g.out_h(), OW = g.out_w(), P = OH * OW, K = g.col_rows();
    check(OH >= 1 && OW >= 1, "infer::ConvLayer", "kernel ", KH, "x", KW,
          " larger than the padded input ", to_string(x.shape()));
    Tensor<float> y = Tensor<float>::empty({N, O, OH, OW});
    if (residual.defined())
      check(residual.shape() == y.shape(), "infer::ConvLayer", "residual ",
            to_string(residual.shape()), " does not match the output ", to_string(y.shape()));
    const bool pointwise = KH == 1 && KW == 1 && stride == 1 && padding == 0;
    const int64_t in_image = C * g.H * g.W, out_image = O * P;
    auto run_image = [&](int64_t n, float* col, bool threads) {
      const float* src = x.data() + n * in_image;
      if (!pointwise) kernels::im2col(src, g, col, P);
      kernels::Epilogue e{bias.data(), residual.defined() ? residual.data() + n * out_image : nullptr,
                          P, relu};
      weight.apply(pointwise ? src : col, P, P, y.data() + n * out_image, P, e, threads);
    };
    if (N >= omp_get_max_threads() && N > 1) {
#pragma omp parallel for schedule(static)
      for (int64_t n = 0; n < N; ++n) run_image(n, column_workspace(pointwise ? 0 : K * P), false);
    } else {
      float* col = column_workspace(pointwise ? 0 : K * P);
      for (int64_t n = 0; n < N; ++n) run_image(n, col, true);
    }
    return y;
  }
};

// A linear layer with bias and an optional ReLU: x [N, K] -> [N, O].
struct LinearLayer {
  MatrixWeights weight;     // [O, K]
  std::vector<float> bias;  // [O]
  bool relu = false;

  Tensor<float> forward(const Tensor<float>& x) const {
    const int64_t O = weight.rows(), K = weight.cols();
    check(x.dim() == 2 && x.size(1) == K, "infer::LinearLayer", "expected x [N, ", K, "], got ",
          to_string(x.shape()));
    const int64_t N = x.size(0);
    // Both forms compute yT[O, N] = W * xT[K, N], then transpose back.
    std::vector<float> xT(size_t(K * N)), yT(size_t(O * N));
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k) xT[size_t(k * N + n)] = x.data()[n * K + k];
    weight.apply(xT.data(), N, N, yT.data(), N, kernels::Epilogue{bias.data(), nullptr, 0, relu},
                 true);
    Tensor<float> y = Tensor<float>::empty({N, O});
    for (int64_t o = 0; o < O; ++o)
      for (int64_t n = 0; n < N; ++n) y.data()[n * O + o] = yT[size_t(o * N + n)];
    return y;
  }
};

}  // namespace trit::infer
