#pragma once
// conv2d: 2-d convolution (PyTorch's cross-correlation), differentiable in x, weight and bias.
//
//   y[N, O, OH, OW] = conv2d(x[N, C, H, W], weight[O, C/G, KH, KW], bias[O] or Tensor<T>())
//   OH = floor((H + 2*padding - dilation*(KH-1) - 1) / stride) + 1, likewise OW.
//
// Groups G split C and O into G blocks; block g of the output reads block g of the input
// only. Three paths, chosen from the shapes:
//   1. depthwise (G == C == O): direct sliding-window loops, kernels/depthwise.hpp.
//   2. pointwise (1x1 kernel, stride 1, padding 0): image n's x[n] read as a [C, H*W] matrix IS
//      the column matrix, so y[n] = weight[O, C] * x[n] is one GEMM per image, no copies.
//   3. everything else: im2col + GEMM (kernels/im2col.hpp), in one of two layouts.
//   3a. per image (when P = OH*OW >= 32 and there are at least as many images as threads), in
//      parallel over images, each thread running single-threaded GEMMs on its own images with
//      the weight as the left operand, so outputs and output gradients stay NCHW:
//        forward      y[n][g]  (Og x P)  = weight[g] (Og x K) * col[g] (K x P)
//        grad input   dcol[g]  (K x P)   = weight[g]^T (K x Og) * gy[n][g]      then col2im
//        grad weight  part_t[g] (Og x K) += gy[n][g] (Og x P) * col[g]^T (P x K)
//      Each thread's weight-gradient partial covers its images; the partials are added in
//      thread order at the end. One coarse parallel loop per pass: no transposes, the
//      column matrix of one image stays in L2, and (measured with bench/ops.cpp) it is as
//      fast as 3b at 1 thread and holds up far better at 2 threads on a loaded machine,
//      where 3b's many short multi-threaded GEMMs wait for descheduled partners.
//   3b. batch chunks (small outputs, e.g. 4x4, where per-image GEMMs would reduce over only
//      P values; or fewer images than threads): the chunk's columns sit side by side,
//      col[C*KH*KW, B*OH*OW], so each pass is one large GEMM per group, split over the
//      threads into blocks of columns (or of rows for the weight gradient, gemm_split):
//        forward      yT[O, B*P]      = weight[O, K]     * col[K, B*P]        then yT -> y
//        grad input   dcol[K, B*P]    = weight^T[K, O]   * gyT[O, B*P]        then col2im
//        grad weight  gw[O, K]       += gyT[O, B*P]      * col^T[B*P, K]      (sum over chunks)
//      (P = OH*OW, K = C/G*KH*KW per group; yT/gyT hold the output transposed to [O, B, P].)
//   The forward GEMMs of 3a and 3b run kernels::gemm_narrow, which reads the column matrix in
//   place instead of packing it again as Eigen does (on bench/ops.cpp, 1 thread: ResNet-20
//   16 channels 93 -> 135 GFLOP/s, ResNet-18 128 channels 165 -> 230), in blocks of K of at
//   most kNarrowPanelBytes per column panel.
//   The weight gradient of groups-1 convs runs neither: a pointwise conv's reads the larger
//   of gy and x in place and the smaller transposed (conv2d_weight_grad_pointwise), a 3x3
//   conv's from 16 channels on reads the images channels-last
//   (conv2d_weight_grad_channels_last), on every path.
//      The chunk's columns (kConvColumnBudget elements, 4 MB in float) stay in L3 between
//      im2col and the GEMM; 16 MB chunks measured slower on bench/ops.cpp.
//   TRIT_CONV_PATH=image or =chunk in the environment forces 3a or 3b (tests, benchmarks);
//   =implicit forces 3a with its stride-1 forward and weight gradient on the padded image
//   (conv_implicit).
// The input gradient of a stride-1 convolution with a square kernel is computed as a forward
// convolution of gy with the flipped weight (conv2d_backward_input_as_conv), so it runs the
// forward's im2col + GEMM instead of a GEMM into column gradients followed by col2im.
// `moments` (optional, a BatchNorm's statistics pass done early): each output plane's sum and
// squared deviations (kernels/plane_moments.hpp) are measured as the forward writes it.
// nn::BatchNorm2d::forward_conv asks for them in training and hands them to batch_norm.
// The column, transpose and partial-sum buffers are per-thread workspaces reused across calls, so
// steady-state training allocates nothing here but the outputs. Gradients are computed only
// for inputs that require them (the first layer's x does not).
#include <algorithm>
#include <cstdlib>
#include <cstdint>
#include <numeric>
#include <string_view>
#include <vector>

#include <omp.h>

#include "trit/autograd/function.hpp"
#include "trit/core/tensor.hpp"
#include "trit/kernels/depthwise.hpp"
#include "trit/kernels/plane_moments.hpp"
#include "trit/kernels/gemm.hpp"
#include "trit/kernels/gemm_narrow.hpp"
#include "trit/kernels/im2col.hpp"

namespace trit {

struct Conv2dOptions {
  int64_t stride = 1, padding = 0, dilation = 1, groups = 1;
  Conv2dOptions& set_stride(int64_t s) { stride = s; return *this; }
  Conv2dOptions& set_padding(int64_t p) { padding = p; return *this; }
  Conv2dOptions& set_dilation(int64_t d) { dilation = d; return *this; }
  Conv2dOptions& set_groups(int64_t g) { groups = g; return *this; }
};

namespace detail {

// Every extent of one conv2d call, validated once; the kernels below read only this.
struct Conv2dPlan {
  int64_t N, C, H, W, O, G, KH, KW, OH, OW;
  int64_t Cg, Og;  // channels per group, in and out
  int64_t P, K;    // output pixels per image (OH*OW), GEMM depth per group (Cg*KH*KW)
  int64_t chunk;   // images per im2col chunk (path 3b)
  bool depthwise, pointwise;
  bool by_image;   // path 3a: per-image GEMMs in parallel over images (else 3b: batch chunks)
  kernels::ConvGeometry geo;  // the window sweep over all C channels of one image
};

// The forward (and the stride-1 grad input, which runs as a forward) runs kernels::gemm_narrow
// in blocks of K rows whose column panel (rows x NR columns) fits in this many bytes, about
// half of a core's L2: the micro-kernel streams it once per block of MR output channels. A
// longer K (ResNet-18's 512 channels: 4608) is cut into equal blocks added up in the output
// (before, such layers went to Eigen: 2 threads, 65% of sgemm, now 100%).
inline constexpr int64_t kNarrowPanelBytes = int64_t(512) << 10;
template <class T>
int64_t narrow_k_step(const Conv2dPlan& p) {
  const int64_t kmax = kNarrowPanelBytes / (kernels::NarrowTile<T>::NR * int64_t(sizeof(T)));
  const int64_t blocks = (p.K + kmax - 1) / kmax;
  return (p.K + blocks - 1) / blocks;
}

// The weight gradients' final sums of per-thread partials run on one thread below this many
// values read and written: waking the other threads (about 40 us each time on the 2-core
// VM under OMP_WAIT_POLICY=passive) costs more than the sums (a core sums about 15 values a
// nanosecond). MobileNetV2's weight gradients are mostly under it.
inline constexpr int64_t kParallelReduceValues = int64_t(1) << 19;

// Column-buffer budget of path 3, in elements: B = budget / (C*KH*KW*P) images per chunk.
inline constexpr int64_t kConvColumnBudget = int64_t(1) << 20;

// Path 3a or 3b (see the header comment). The environment variable TRIT_CONV_PATH=image or
// =chunk forces one (to test both paths on the same shapes, or to compare their speed).
inline bool conv_by_image(const Conv2dPlan& p) {
  if (const char* e = std::getenv("TRIT_CONV_PATH")) return e[0] == 'i';  // image, implicit
  return p.P >= 32 && p.N >= omp_get_max_threads();
}

// Whether the stride-1 forward of path 3a skips im2col (conv2d_forward_implicit): when the
// padded grid wastes at most 1/8 of its columns (Wp - OW <= OW/8: 32x32 and 16x16 images
// with a 3x3 kernel; at 8x8 the 25% extra multiplies cost more than im2col, measured on
// bench/ops.cpp). TRIT_CONV_PATH=implicit forces it wherever it applies (tests).
inline bool conv_implicit_forced() {
  const char* e = std::getenv("TRIT_CONV_PATH");
  return e && std::string_view(e) == "implicit";
}
inline bool conv_implicit(const Conv2dPlan& p) {
  if (p.geo.stride != 1) return false;
  if (std::getenv("TRIT_CONV_PATH")) return conv_implicit_forced();
  const int64_t Wp = p.W + 2 * p.geo.padding;
  return (Wp - p.OW) * 8 <= p.OW;
}

inline Conv2dPlan plan_conv2d(const Shape& x, const Shape& w, bool has_bias, const Shape& b,
                              const Conv2dOptions& o) {
  const char* op = "conv2d";
  check(x.size() == 4, op, "input must be (N, C, H, W), got shape ", to_string(x));
  check(w.size() == 4, op, "weight must be (O, C/groups, KH, KW), got shape ", to_string(w));
  check(o.stride >= 1 && o.dilation >= 1 && o.padding >= 0 && o.groups >= 1, op,
        "need stride >= 1, dilation >= 1, padding >= 0, groups >= 1; got stride ", o.stride,
        ", padding ", o.padding, ", dilation ", o.dilation, ", groups ", o.groups);
  Conv2dPlan p{};
  p.N = x[0], p.C = x[1], p.H = x[2], p.W = x[3];
  p.O = w[0], p.KH = w[2], p.KW = w[3], p.G = o.groups;
  check(p.C % p.G == 0 && p.O % p.G == 0, op, "groups ", p.G, " must divide the input channels ",
        p.C, " and the output channels ", p.O, " (input ", to_string(x), ", weight ",
        to_string(w), ")");
  p.Cg = p.C / p.G, p.Og = p.O / p.G;
  check(w[1] == p.Cg, op, "weight ", to_string(w), " expects ", w[1] * p.G,
        " input channels with groups ", p.G, ", but the input ", to_string(x), " has ", p.C);
  check(p.KH >= 1 && p.KW >= 1, op, "empty kernel in weight ", to_string(w));
  check(!has_bias || b == Shape{p.O}, op, "bias must have shape [", p.O, "], got ",
        to_string(b));
  p.geo = kernels::ConvGeometry{p.C, p.H, p.W, p.KH, p.KW, o.stride, o.padding, o.dilation};
  p.OH = p.geo.out_h(), p.OW = p.geo.out_w();
  check(p.OH >= 1 && p.OW >= 1, op, "kernel ", p.KH, "x", p.KW, " with dilation ", o.dilation,
        " is larger than the padded input ", p.H + 2 * o.padding, "x", p.W + 2 * o.padding,
        " (input ", to_string(x), ", weight ", to_string(w), ")");
  p.P = p.OH * p.OW;
  p.K = p.Cg * p.KH * p.KW;
  p.depthwise = p.G == p.C && p.G == p.O;
  p.pointwise = p.KH == 1 && p.KW == 1 && o.stride == 1 && o.padding == 0;
  p.by_image = conv_by_image(p);
  p.chunk = std::clamp<int64_t>(kConvColumnBudget / std::max<int64_t>(p.C * p.KH * p.KW * p.P, 1),
                                1, std::max<int64_t>(p.N, 1));
  // Small images: a chunk of whole 32-column panels per thread, the forward's unit of work
  // (4x4 outputs at 2 threads: 16 images, 4 panels each, rather than 14 split 4 + 3).
  const int64_t unit = std::lcm(p.P, int64_t(32) * omp_get_max_threads()) / p.P;
  if (unit <= p.chunk)
    p.chunk = std::min(p.N, (p.chunk + unit / 2) / unit * unit);
  return p;
}

// A buffer of at least n elements owned by the calling thread, kept for later calls
// (slot 0: columns, slot 1: transposed output / gradient, 2: weight-gradient partials,
// 3: the flipped weight of the transposed-convolution grad input, 4: the packed weight of
// kernels::gemm_narrow).
template <class T>
T* conv_workspace(int slot, int64_t n) {
  thread_local std::vector<T> buffers[5];
  auto& b = buffers[slot];
  if (static_cast<int64_t>(b.size()) < n) b.resize(static_cast<size_t>(n));
  return b.data();
}

// Packs every group's weight for kernels::gemm_narrow into workspace slot 4 (group g at
// g * narrow_a_size(Og, K), its block of K rows from k0 at Og_up * k0 within, Og_up = Og
// rounded up to MR); returns it.
template <class T>
const T* pack_weight_narrow(const Conv2dPlan& p, const T* w) {
  constexpr int64_t MR = kernels::NarrowTile<T>::MR;
  const int64_t wpack = kernels::narrow_a_size<T>(p.Og, p.K), kstep = narrow_k_step<T>(p);
  const int64_t og_up = wpack / p.K;
  const int64_t kblocks = (p.K + kstep - 1) / kstep, rblocks = og_up / MR;
  T* wp = conv_workspace<T>(4, p.G * wpack);
  // one MR-row block of one K block at a time, in parallel for large weights (9 MB for 512
  // channels; for small ones waking the threads costs more than the copy)
#pragma omp parallel for collapse(3) schedule(static) if (p.G * wpack >= (1 << 20))
  for (int64_t g = 0; g < p.G; ++g)
    for (int64_t kb = 0; kb < kblocks; ++kb)
      for (int64_t rb = 0; rb < rblocks; ++rb) {
        const int64_t k0 = kb * kstep, klen = std::min(kstep, p.K - k0), r0 = rb * MR;
        kernels::pack_narrow_a(w + (g * p.Og + r0) * p.K + k0, p.K, std::min(MR, p.Og - r0),
                               klen, wp + g * wpack + og_up * k0 + r0 * klen);
      }
  return wp;
}

// Packs every group's transposed weight w[g]^T (K x Og) for kernels::gemm_narrow into
// workspace slot 4 (group g at g * narrow_a_size(K, Og)), the left operand of the grad input
// dcol[g] = w[g]^T * gy[g] of the paths through col2im; returns it.
template <class T>
const T* pack_weight_transposed(const Conv2dPlan& p, const T* w) {
  const int64_t wtpack = kernels::narrow_a_size<T>(p.K, p.Og);
  T* wtp = conv_workspace<T>(4, p.G * wtpack);
  for (int64_t g = 0; g < p.G; ++g)
    kernels::pack_narrow_a(w + g * p.Og * p.K, p.K, p.K, p.Og, wtp + g * wtpack, true);
  return wtp;
}

// C[Og x N] (row stride ldc) = group g's weight, packed by pack_weight_narrow at wpg, times
// B[K x N] with row k at B + off[k] (+ bias): gemm_narrow over the blocks of K.
template <class T>
void narrow_product(const Conv2dPlan& p, const T* wpg, int64_t N, const T* B,
                    const int64_t* off, const T* bias, T* C, int64_t ldc) {
  const int64_t kstep = narrow_k_step<T>(p), og_up = kernels::narrow_a_size<T>(p.Og, p.K) / p.K;
  for (int64_t k0 = 0; k0 < p.K; k0 += kstep)
    kernels::gemm_narrow<T>(p.Og, N, std::min(kstep, p.K - k0), wpg + og_up * k0, B, off + k0,
                            k0 == 0 ? bias : nullptr, C, ldc, k0 > 0);
}

// narrow_product for `count` (1 or 2) images of one SIMD vector each (P == L), side by side
// in one panel: B_v at B + v*b_image, C_v at C + v*c_image (kernels::gemm_narrow_image_pair).
template <class T>
void narrow_pair_product(const Conv2dPlan& p, const T* wpg, const T* B, const int64_t* off,
                         int64_t b_image, int64_t count, const T* bias, T* C, int64_t c_image) {
  const int64_t kstep = narrow_k_step<T>(p), og_up = kernels::narrow_a_size<T>(p.Og, p.K) / p.K;
  for (int64_t k0 = 0; k0 < p.K; k0 += kstep)
    kernels::gemm_narrow_image_pair<T>(p.Og, std::min(kstep, p.K - k0), wpg + og_up * k0, B,
                                       off + k0, b_image, count, k0 == 0 ? bias : nullptr, C,
                                       c_image, k0 > 0);
}

// Calls f(g, lo, hi) for every group g and every thread's share [lo, hi) of `columns`
// columns, shares cut at whole gemm_narrow panels (NR columns), in one parallel loop: the
// batch-chunk products of path 3b, where one chunk's columns feed every thread.
template <class T, class F>
void for_each_panel_range(int64_t groups, int64_t columns, F&& f) {
  constexpr int64_t NR = kernels::NarrowTile<T>::NR;
  const int64_t parts = omp_get_max_threads();
  const int64_t step = ((columns + NR - 1) / NR + parts - 1) / parts * NR;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t part = 0; part < parts; ++part) {
      const int64_t lo = std::min(columns, part * step), hi = std::min(columns, lo + step);
      if (lo < hi) f(g, lo, hi);
    }
}

// C = op(A) * op(B) + beta * C as kernels::gemm, split by this function over the threads
// into contiguous blocks of C's rows (split_rows) or columns, each one single-threaded GEMM
// inside one OpenMP loop. Path 3b uses it instead of Eigen's own threading, whose threads
// busy-wait for each other between packing steps: on a loaded machine (more runnable
// threads than cores) a 2-thread Eigen GEMM ran several times slower than 1 thread.
template <class T>
void gemm_split(bool split_rows, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const T* A,
                int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  const int64_t parts = omp_get_max_threads(), extent = split_rows ? M : N;
  const int64_t step = (extent + parts - 1) / parts;
#pragma omp parallel for schedule(static) if (parts > 1)
  for (int64_t part = 0; part < parts; ++part) {
    const int64_t lo = std::min(extent, part * step), hi = std::min(extent, lo + step);
    if (lo == hi) continue;
    if (split_rows)  // rows lo..hi of C and of op(A)
      kernels::gemm<T>(ta, tb, hi - lo, N, K, T(1), ta ? A + lo : A + lo * lda, lda, B, ldb,
                       beta, C + lo * ldc, ldc);
    else  // columns lo..hi of C and of op(B)
      kernels::gemm<T>(ta, tb, M, hi - lo, K, T(1), A, lda, tb ? B + lo * ldb : B + lo, ldb,
                       beta, C + lo, ldc);
  }
}

// y[N, O, P] <- yT[O, b*P] (+ bias), images n0 .. n0+b-1; and the reverse gather for gy.
template <class T>
void scatter_chunk(const Conv2dPlan& p, const T* yT, const T* bias, int64_t n0, int64_t b, T* y) {
  const int64_t ld = b * p.P;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t i = 0; i < b; ++i) {
    for (int64_t o = 0; o < p.O; ++o) {
      const T* src = yT + o * ld + i * p.P;
      T* dst = y + ((n0 + i) * p.O + o) * p.P;
      const T add = bias ? bias[o] : T(0);
      for (int64_t q = 0; q < p.P; ++q) dst[q] = src[q] + add;
    }
  }
}
template <class T>
void gather_chunk(const Conv2dPlan& p, const T* gy, int64_t n0, int64_t b, T* gyT) {
  const int64_t ld = b * p.P;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t i = 0; i < b; ++i) {
    for (int64_t o = 0; o < p.O; ++o) {
      const T* src = gy + ((n0 + i) * p.O + o) * p.P;
      std::copy(src, src + p.P, gyT + o * ld + i * p.P);
    }
  }
}

// Columns of images n0 .. n0+b-1 side by side: col[C*KH*KW, b*P], row stride ld (b*P unless
// given).
template <class T>
void im2col_chunk(const Conv2dPlan& p, const T* x, int64_t n0, int64_t b, T* col,
                  int64_t ld = 0) {
  if (ld == 0) ld = b * p.P;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < b; ++i)
    kernels::im2col(x + (n0 + i) * p.C * p.H * p.W, p.geo, col + i * p.P, ld);
}

// A row stride of at least n elements for a matrix that kernels::gemm_narrow reads down its
// columns: an even number of 64-byte lines (1, 2, 4 KB...) gets one line more. A panel's rows
// then spread over all cache sets; at 1 KB strides they crowd into a few sets of L1 and L2
// (ResNet-18's 512-channel layer, 16 images of 4x4 side by side: 30% slower).
template <class T>
int64_t narrow_stride(int64_t n) {
  constexpr int64_t line = 64 / int64_t(sizeof(T));
  return n % (2 * line) == 0 ? n + line : n;
}

// dst[r * ld + i] = src[r * n + i] for r < rows, i < n: rows of n values copied ld apart.
template <class T>
void copy_rows(const T* src, int64_t rows, int64_t n, T* dst, int64_t ld) {
  for (int64_t r = 0; r < rows; ++r) std::copy(src + r * n, src + (r + 1) * n, dst + r * ld);
}

// Stride-1 forward of path 3a without a column matrix ("implicit im2col"). Image n is copied
// into a zero-padded xp[C, Hp, Wp] (Hp = H + 2*pad, Wp = W + 2*pad). On the output grid of
// width Wp (grid position q = oh*Wp + ow, ow < Wp), row (c, kh, kw) of the column matrix is
// then the contiguous run xp[c] + kh*d*Wp + kw*d + q: gemm_narrow reads it there through its
// row offsets. The grid positions with ow >= OW are computed and dropped when the result
// yg[Og, (OH-1)*Wp + OW] is copied into y (Wp/OW - 1 extra work: 6% at 32x32, 25% at 8x8),
// which costs far less than writing and reading the K x P column matrix (9 copies of the
// image for a 3x3 kernel).
// The padded grid of the implicit forms: image planes zero-padded to Hp x Wp, the output
// computed on grid positions q = oh*Wp + ow (ow < Wp), 0 <= q < grid.
struct ImplicitGrid {
  int64_t Hp, Wp, grid;
  explicit ImplicitGrid(const Conv2dPlan& p)
      : Hp(p.H + 2 * p.geo.padding), Wp(p.W + 2 * p.geo.padding),
        grid((p.OH - 1) * (p.W + 2 * p.geo.padding) + p.OW) {}
};

// off[g*K + (c*KH + kh)*KW + kw]: where tap (c, kh, kw) of group g reads in the padded image.
inline std::vector<int64_t> implicit_offsets(const Conv2dPlan& p, const ImplicitGrid& s) {
  const int64_t d = p.geo.dilation;
  std::vector<int64_t> off(static_cast<size_t>(p.G * p.K));
  for (int64_t c = 0; c < p.C; ++c)  // c over all channels: group g's taps follow group g-1's
    for (int64_t kh = 0; kh < p.KH; ++kh)
      for (int64_t kw = 0; kw < p.KW; ++kw)
        off[(c * p.KH + kh) * p.KW + kw] = (c * s.Hp + kh * d) * s.Wp + kw * d;
  return off;
}

// xp[C, Hp, Wp] = image xn[C, H, W] inside a frame of `padding` zeros, then `slack` zeros.
template <class T>
void pad_image(const Conv2dPlan& p, const ImplicitGrid& s, const T* xn, T* xp, int64_t slack) {
  const int64_t pad = p.geo.padding;
  for (int64_t c = 0; c < p.C; ++c) {
    T* plane = xp + c * s.Hp * s.Wp;
    std::fill(plane, plane + pad * s.Wp, T(0));
    for (int64_t h = 0; h < p.H; ++h) {
      T* row = plane + (pad + h) * s.Wp;
      std::fill(row, row + pad, T(0));
      std::copy(xn + (c * p.H + h) * p.W, xn + (c * p.H + h + 1) * p.W, row + pad);
      std::fill(row + pad + p.W, row + s.Wp, T(0));
    }
    std::fill(plane + (pad + p.H) * s.Wp, plane + s.Hp * s.Wp, T(0));
  }
  std::fill(xp + p.C * s.Hp * s.Wp, xp + p.C * s.Hp * s.Wp + slack, T(0));
}

template <class T>
void conv2d_forward_implicit(const Conv2dPlan& p, const T* x, const T* wp, int64_t wpack,
                             const T* bias, T* y, kernels::PlaneMoments* moments) {
  const ImplicitGrid s(p);
  const std::vector<int64_t> off = implicit_offsets(p, s);
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t n = 0; n < p.N; ++n) {
    T* xp = conv_workspace<T>(0, p.C * s.Hp * s.Wp);
    T* yg = conv_workspace<T>(1, p.Og * s.grid);
    pad_image(p, s, x + n * p.C * p.H * p.W, xp, 0);
    for (int64_t g = 0; g < p.G; ++g) {
      narrow_product<T>(p, wp + g * wpack, s.grid, xp, off.data() + g * p.K, nullptr, yg, s.grid);
      for (int64_t o = 0; o < p.Og; ++o) {  // drop the grid columns ow >= OW, add the bias
        const T add = bias ? bias[g * p.Og + o] : T(0);
        T* dst = y + (n * p.O + g * p.Og + o) * p.P;
        for (int64_t oh = 0; oh < p.OH; ++oh) {
          const T* src = yg + o * s.grid + oh * s.Wp;
          for (int64_t ow = 0; ow < p.OW; ++ow) dst[oh * p.OW + ow] = src[ow] + add;
        }
      }
    }
    if (moments) moments->measure(y, n * p.O, p.O, p.P);
  }
}

// y = conv2d(x, w) + bias (bias may be nullptr), and the moments of y's planes when
// `moments` is given (kernels/plane_moments.hpp): measured image by image right after the
// image's output is written, while it is in cache.
template <class T>
void conv2d_forward(const Conv2dPlan& p, const T* x, const T* w, const T* bias, T* y,
                    kernels::PlaneMoments* moments = nullptr) {
  if (moments) moments->reset(p.N * p.O, y);
  if (p.depthwise) {
    kernels::depthwise_forward(x, w, bias, p.N, p.geo, y, moments);
    return;
  }
  if (p.pointwise && p.N >= omp_get_max_threads()) {
    // Image n, group g: y[n][g] (Og x P) = w[g] (Og x Cg) * x[n][g] (Cg x P), gemm_narrow
    // reading x[n] in place, unless its planes are a multiple of 4 KiB apart (32x32 floats)
    // and gemm_narrow walks B column panel by column panel (B over kNarrowRowsOuterBytes):
    // then all K rows of a panel fall in the same L1 set and cannot stay there for the next
    // row block, so x[n] is first copied with its rows narrow_stride apart (MobileNetV2's
    // 144 -> 24 channels on 32x32, batch 64, 2 threads: 2.3 -> 1.9 ms; the grad input of
    // its 24 -> 144 layer runs this forward too). Smaller planes measured slower copied.
    const int64_t wpack = kernels::narrow_a_size<T>(p.Og, p.K);
    const T* wp = pack_weight_narrow(p, w);
    const bool copy = p.P * int64_t(sizeof(T)) % 4096 == 0 &&
                      p.Cg * p.P * int64_t(sizeof(T)) > kernels::kNarrowRowsOuterBytes;
    const int64_t ld = copy ? narrow_stride<T>(p.P) : p.P;
    const std::vector<int64_t> off = kernels::row_offsets(p.K, ld);
    if (p.P == kernels::NarrowTile<T>::L) {
      // Planes of one SIMD vector (4x4 floats under AVX-512): images in pairs, one whole
      // panel each (MobileNetV2's 4x4 layers, batch 64, 2 threads: 160 -> 960 channels
      // 0.81 -> 0.72 ms, 960 -> 160 0.82 -> 0.69 ms; its input gradients run this too).
#pragma omp parallel for schedule(dynamic, 1)
      for (int64_t n = 0; n < p.N; n += 2) {
        const int64_t count = std::min<int64_t>(2, p.N - n);
        for (int64_t g = 0; g < p.G; ++g)
          narrow_pair_product<T>(p, wp + g * wpack, x + (n * p.C + g * p.Cg) * p.P, off.data(),
                                 p.C * p.P, count, bias ? bias + g * p.Og : nullptr,
                                 y + (n * p.O + g * p.Og) * p.P, p.O * p.P);
        if (moments) moments->measure(y, n * p.O, count * p.O, p.P);
      }
      return;
    }
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t n = 0; n < p.N; ++n) {
      const T* xn = x + n * p.C * p.P;
      if (copy) {
        T* rows = conv_workspace<T>(0, p.C * ld);
        copy_rows(xn, p.C, p.P, rows, ld);
        xn = rows;
      }
      for (int64_t g = 0; g < p.G; ++g)
        narrow_product<T>(p, wp + g * wpack, p.P, xn + g * p.Cg * ld, off.data(),
                          bias ? bias + g * p.Og : nullptr, y + (n * p.O + g * p.Og) * p.P, p.P);
      if (moments) moments->measure(y, n * p.O, p.O, p.P);
    }
    return;
  }
  if (p.pointwise) {
    // Fewer images than threads: Eigen splits each GEMM over the threads.
    for (int64_t n = 0; n < p.N; ++n) {
      for (int64_t g = 0; g < p.G; ++g)
        kernels::gemm<T>(false, false, p.Og, p.P, p.Cg, T(1), w + g * p.Og * p.Cg, p.Cg,
                         x + (n * p.C + g * p.Cg) * p.P, p.P, T(0),
                         y + (n * p.O + g * p.Og) * p.P, p.P);
      if (bias)
        for (int64_t o = 0; o < p.O; ++o) {
          T* row = y + (n * p.O + o) * p.P;
          for (int64_t q = 0; q < p.P; ++q) row[q] += bias[o];
        }
      if (moments) moments->measure(y, n * p.O, p.O, p.P);
    }
    return;
  }
  const int64_t wpack = kernels::narrow_a_size<T>(p.Og, p.K);
  const T* wp = pack_weight_narrow(p, w);  // once for all images
  if (p.by_image && conv_implicit(p)) {
    conv2d_forward_implicit(p, x, wp, wpack, bias, y, moments);
    return;
  }
  if (p.by_image) {
    // Image n, group g: y[n][g] (Og x P) = w[g] (Og x K) * col[g] (K x P), written in place,
    // col's row stride kept off even numbers of cache lines (narrow_stride).
    const int64_t ld = narrow_stride<T>(p.P);
    const std::vector<int64_t> off = kernels::row_offsets(p.K, ld);
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t n = 0; n < p.N; ++n) {
      T* col = conv_workspace<T>(0, p.C * p.KH * p.KW * ld);
      kernels::im2col(x + n * p.C * p.H * p.W, p.geo, col, ld);
      for (int64_t g = 0; g < p.G; ++g)
        narrow_product<T>(p, wp + g * wpack, p.P, col + g * p.K * ld, off.data(),
                          bias ? bias + g * p.Og : nullptr, y + (n * p.O + g * p.Og) * p.P, p.P);
      if (moments) moments->measure(y, n * p.O, p.O, p.P);
    }
    return;
  }
  T* col = conv_workspace<T>(0, p.C * p.KH * p.KW * narrow_stride<T>(p.chunk * p.P));
  T* yT = conv_workspace<T>(1, p.O * p.chunk * p.P);
  for (int64_t n0 = 0; n0 < p.N; n0 += p.chunk) {
    const int64_t b = std::min(p.chunk, p.N - n0), ld = b * p.P;
    const int64_t ldc = narrow_stride<T>(ld);  // col's row stride
    im2col_chunk(p, x, n0, b, col, ldc);
    // yT[g] (Og x bP) = w[g] * col[g]: each thread a contiguous range of whole panels
    const std::vector<int64_t> off = kernels::row_offsets(p.K, ldc);
    for_each_panel_range<T>(p.G, ld, [&](int64_t g, int64_t lo, int64_t hi) {
      narrow_product<T>(p, wp + g * wpack, hi - lo, col + g * p.K * ldc + lo, off.data(),
                        nullptr, yT + g * p.Og * ld + lo, ld);
    });
    scatter_chunk(p, yT, bias, n0, b, y);
    if (moments) {  // the chunk's b*O planes, just written
#pragma omp parallel for schedule(static)
      for (int64_t i = n0 * p.O; i < (n0 + b) * p.O; ++i) moments->measure(y, i, 1, p.P);
    }
  }
}

// Path 3a backward: per image, gy[n] (O x P, NCHW as it is) is already the GEMM operand.
//   grad input   dcol[g] (K x P) = w[g]^T (K x Og) * gy[n][g] (Og x P), then col2im -> gx[n]
//                (stride 2 and other convs that are not a transposed stride-1 forward)
//   grad weight  partial_t[g] (Og x K) += gy[n][g] (Og x P) * col[g]^T (P x K)
// Each thread sums the weight gradient of its images into its own partial; the partials are
// added in thread order at the end (deterministic for a given thread count).
template <class T>
void conv2d_backward_by_image(const Conv2dPlan& p, const T* gy, const T* x, const T* w, T* gx,
                              T* gw) {
  const int64_t wsize = p.O * p.K, threads = omp_get_max_threads();
  // The stride-1 weight gradient of the implicit form (see conv2d_forward_implicit): one
  // kernels::gemm_dot per image and group over the padded grid, no column matrix.
  // Each tile's lane sums cost about as much as 16 steps of its loop, so it needs long rows:
  // 32x32 images (grid 1088) gain, 16x16 (286) measured slower than Eigen and stay there.
  constexpr int64_t L = kernels::NarrowTile<T>::L;
  const ImplicitGrid s(p);
  const bool implicit_gw =
      gw && !p.pointwise && conv_implicit(p) && (s.grid >= 512 || conv_implicit_forced());
  const int64_t Q = (s.grid + L - 1) / L * L;  // the grid padded to whole SIMD vectors
  const std::vector<int64_t> off = implicit_gw ? implicit_offsets(p, s) : std::vector<int64_t>();
  T* partials = gw ? conv_workspace<T>(2, threads * wsize) : nullptr;
  if (gw) std::fill(partials, partials + threads * wsize, T(0));
  // grad input: dcol[g] (K x P) = w[g]^T (K x Og) * gy[n][g] through gemm_narrow, gy[n] read
  // in place
  const int64_t wtpack = kernels::narrow_a_size<T>(p.K, p.Og);
  const T* wtp = gx ? pack_weight_transposed(p, w) : nullptr;
  const std::vector<int64_t> gy_off = kernels::row_offsets(gx ? p.Og : 0, p.P);
#pragma omp parallel
  {
    T* mine = gw ? partials + omp_get_thread_num() * wsize : nullptr;
#pragma omp for schedule(static)
    for (int64_t n = 0; n < p.N; ++n) {
      T* col = conv_workspace<T>(0, p.C * p.KH * p.KW * p.P);
      const T* gyn = gy + n * p.O * p.P;
      if (gw && implicit_gw) {
        // gyg[O, Q] = gy[n] on the padded grid (zeros at ow >= OW and past the grid), then
        // partial[g] += gyg[g] (Og x Q) * taps of xp (K x Q)^T, the taps read in place.
        T* xp = conv_workspace<T>(0, p.C * s.Hp * s.Wp + Q);
        T* gyg = conv_workspace<T>(1, p.O * Q);
        pad_image(p, s, x + n * p.C * p.H * p.W, xp, Q);
        for (int64_t o = 0; o < p.O; ++o) {
          T* dst = gyg + o * Q;
          std::fill(dst, dst + Q, T(0));
          for (int64_t oh = 0; oh < p.OH; ++oh)
            std::copy(gyn + o * p.P + oh * p.OW, gyn + o * p.P + (oh + 1) * p.OW, dst + oh * s.Wp);
        }
        for (int64_t g = 0; g < p.G; ++g)
          kernels::gemm_dot<T>(p.Og, p.K, Q, gyg + g * p.Og * Q, Q, xp, off.data() + g * p.K,
                               mine + g * p.Og * p.K, p.K);
      } else if (gw) {
        const T* xcol = x + n * p.C * p.H * p.W;  // a pointwise conv's x[n] is its col
        if (!p.pointwise) {
          kernels::im2col(xcol, p.geo, col, p.P);
          xcol = col;
        }
        for (int64_t g = 0; g < p.G; ++g)
          kernels::gemm<T>(false, true, p.Og, p.K, p.P, T(1), gyn + g * p.Og * p.P, p.P,
                           xcol + g * p.K * p.P, p.P, T(1), mine + g * p.Og * p.K, p.K);
      }
      if (gx) {
        for (int64_t g = 0; g < p.G; ++g)
          kernels::gemm_narrow<T>(p.K, p.P, p.Og, wtp + g * wtpack, gyn + g * p.Og * p.P,
                                  gy_off.data(), nullptr, col + g * p.K * p.P, p.P);
        kernels::col2im(col, p.P, p.geo, gx + n * p.C * p.H * p.W);
      }
    }
  }
  if (!gw) return;
#pragma omp parallel for schedule(static) if ((threads + 1) * wsize >= kParallelReduceValues)
  for (int64_t i = 0; i < wsize; ++i) {
    T sum = 0;
    for (int64_t t = 0; t < threads; ++t) sum += partials[t * wsize + i];
    gw[i] = sum;
  }
}

// The input gradient of a stride-1 convolution is itself a stride-1 convolution: of gy with
// the weight flipped in space and with in/out channels swapped,
//   gx[n, c, h, w] = sum_{o, kh, kw} gy[n, o, h - kh*d + pad, w - kw*d + pad] * w[o, c, kh, kw]
//                  = conv2d(gy, wf, padding = d*(K-1) - pad)[n, c, h, w],
//   wf[g*Cg + c, o, kh, kw] = w[g*Og + o, c, KH-1-kh, KW-1-kw]   (o within group g).
// Running it through conv2d_forward replaces "GEMM into a K x P column gradient, then col2im
// (a scatter-add)" with "im2col, then a GEMM with C outputs per pixel": the same shape as the
// forward pass, half the memory traffic and no zero-fill (measured with bench/ops.cpp).
// Needs a square kernel (one padding for both axes) and pad <= d*(K-1). A pointwise conv's is
// pointwise too, gx[n][g] = w[g]^T * gy[n][g], with the weight transposed (the 1x1 "flip").
inline bool transposed_conv_applies(const Conv2dPlan& p) {
  return !p.depthwise && p.geo.stride == 1 && p.KH == p.KW &&
         p.geo.padding <= p.geo.dilation * (p.KH - 1);
}
template <class T>
void conv2d_backward_input_as_conv(const Conv2dPlan& p, const T* gy, const T* w, T* gx) {
  const int64_t KK = p.KH * p.KW;
  T* wf = conv_workspace<T>(3, p.C * p.Og * KK);
#pragma omp parallel for collapse(2) schedule(static) if (p.C * p.Og * KK >= (1 << 20))
  for (int64_t g = 0; g < p.G; ++g)
    for (int64_t c = 0; c < p.Cg; ++c)
      for (int64_t o = 0; o < p.Og; ++o) {  // writes in order, reads with a stride
        const T* src = w + ((g * p.Og + o) * p.Cg + c) * KK;
        T* dst = wf + ((g * p.Cg + c) * p.Og + o) * KK;
        for (int64_t k = 0; k < KK; ++k) dst[k] = src[KK - 1 - k];  // (kh, kw) -> flipped
      }
  Conv2dOptions t;
  t.padding = p.geo.dilation * (p.KH - 1) - p.geo.padding;
  t.dilation = p.geo.dilation;
  t.groups = p.G;
  const Conv2dPlan q = plan_conv2d({p.N, p.O, p.OH, p.OW}, {p.C, p.Og, p.KH, p.KW}, false, {}, t);
  conv2d_forward(q, gy, wf, static_cast<const T*>(nullptr), gx);
}

// dst[P, Qp] = src[Q, P] transposed, columns Q..Qp zero (Qp >= Q).
template <class T>
void transpose_padded(const T* src, int64_t Q, int64_t P, T* dst, int64_t Qp) {
  kernels::detail::transpose(src, P, Q, P, dst, Qp);
  if (Qp > Q)
    for (int64_t q = 0; q < P; ++q) std::fill(dst + q * Qp + Q, dst + (q + 1) * Qp, T(0));
}

// Weight gradient of a pointwise conv (1x1, stride 1, no padding, groups 1):
//   gw[o, c] = sum over images n and pixels q of gy[n, o, q] * x[n, c, q]
// a product whose reduction runs along the pixels, contiguous in both operands. Of gy and x,
// the one with more channels is read in place as kernels::gemm_narrow_sum's A (its rows are
// the channels' planes); the other is transposed image by image into [P, Qp] (its channels,
// rounded up to a SIMD vector with zeros, along the rows), the B whose rows the micro-kernel
// loads as vectors. So only the smaller tensor is copied (the channels-last path below packs
// both: MobileNetV2's 8x8 and 4x4 layers 20-45% slower). The result is gw, or gw transposed
// when x is the larger (R rows of the larger's channels by Qp). Each thread sums its images
// into its own R x Qp buffer, a chunk of images at a time whose transposed B fits in 256 KiB
// (L2); the buffers are added in thread order at the end (deterministic for a given thread
// count).
// gw[o, c] = sum over threads t of acc[t] (O x Qp, or C x Qp transposed), in thread order:
// the per-thread partial sums of the pointwise weight gradients below.
template <class T>
void sum_pointwise_partials(const Conv2dPlan& p, const T* acc, int64_t threads, int64_t Qp,
                            bool transposed, T* gw) {
  const int64_t bufsize = (transposed ? p.C : p.O) * Qp;
#pragma omp parallel for schedule(static) if ((threads + 1) * p.O * p.C >= kParallelReduceValues)
  for (int64_t o = 0; o < p.O; ++o)
    for (int64_t c = 0; c < p.C; ++c) {
      const int64_t at = transposed ? c * Qp + o : o * Qp + c;
      T sum = 0;
      for (int64_t t = 0; t < threads; ++t) sum += acc[t * bufsize + at];
      gw[o * p.C + c] = sum;
    }
}

inline bool pointwise_gw_applies(const Conv2dPlan& p) {
  return p.pointwise && p.G == 1 && !std::getenv("TRIT_CONV_PATH");
}
template <class T>
void conv2d_weight_grad_pointwise(const Conv2dPlan& p, const T* gy, const T* x, T* gw) {
  constexpr int64_t L = kernels::NarrowTile<T>::L;
  const bool gy_is_a = p.O >= p.C;
  const T* A = gy_is_a ? gy : x;
  const T* B = gy_is_a ? x : gy;
  const int64_t R = gy_is_a ? p.O : p.C, Q = gy_is_a ? p.C : p.O, P = p.P;
  const int64_t Qp = (Q + L - 1) / L * L, bufsize = R * Qp;
  const int64_t threads = std::min<int64_t>(omp_get_max_threads(), p.N);
  T* acc = conv_workspace<T>(2, threads * bufsize);
  std::fill(acc, acc + threads * bufsize, T(0));
#pragma omp parallel num_threads(threads)
  {
    const int64_t t = omp_get_thread_num();
    const int64_t n_lo = t * p.N / threads, n_hi = (t + 1) * p.N / threads;
    const int64_t b = std::clamp<int64_t>((int64_t(256) << 10) / int64_t(sizeof(T)) / (P * Qp),
                                          1, n_hi - n_lo);
    T* bt = conv_workspace<T>(0, b * P * Qp);
    T* mine = acc + t * bufsize;
    for (int64_t n0 = n_lo; n0 < n_hi; n0 += b) {
      const int64_t count = std::min(b, n_hi - n0);
      for (int64_t i = 0; i < count; ++i)  // image n0 + i of B: [Q, P] -> [P, Qp]
        transpose_padded(B + (n0 + i) * Q * P, Q, P, bt + i * P * Qp, Qp);
      kernels::gemm_narrow_sum<T>(R, Qp, P, count, A + n0 * R * P, P, R * P, bt, Qp, mine, Qp);
    }
  }
  sum_pointwise_partials(p, acc, threads, Qp, !gy_is_a, gw);
}

// Both gradients of a widening pointwise conv (O >= C) on planes a multiple of 4 KiB long
// (32x32 floats), image by image: gy[n] (O x P, 576 KB at 144 channels) is copied once with
// its rows narrow_stride apart (as conv2d_forward copies x), and both products read the copy
// from L2: gx[n] (C x P) = w^T gy[n] through gemm_narrow, and the weight gradient with gy[n]'s
// rows as gemm_narrow_sum's A, x[n] transposed as its B (conv2d_weight_grad_pointwise's roles
// when O >= C). Run apart, the two passes read gy from memory twice: MobileNetV2's 24 -> 144
// channels on 32x32, batch 64, 2 threads, 3.70 -> 3.28 ms; 16 -> 96 1.90 -> 1.62 ms.
inline bool pointwise_backward_fused_applies(const Conv2dPlan& p, int64_t element_bytes) {
  return pointwise_gw_applies(p) && p.O >= p.C && p.P * element_bytes % 4096 == 0 &&
         p.N >= omp_get_max_threads();
}
template <class T>
void conv2d_backward_pointwise_fused(const Conv2dPlan& p, const T* gy, const T* x, const T* w,
                                     T* gx, T* gw) {
  constexpr int64_t L = kernels::NarrowTile<T>::L;
  const int64_t ld = narrow_stride<T>(p.P), Qp = (p.C + L - 1) / L * L, bufsize = p.O * Qp;
  const int64_t threads = omp_get_max_threads();
  const T* wtp = pack_weight_transposed(p, w);  // w^T (C x O), packed as gemm_narrow's A
  const std::vector<int64_t> off = kernels::row_offsets(p.O, ld);
  T* acc = conv_workspace<T>(2, threads * bufsize);
  std::fill(acc, acc + threads * bufsize, T(0));
#pragma omp parallel num_threads(threads)
  {
    const int64_t t = omp_get_thread_num();
    T* rows = conv_workspace<T>(0, p.O * ld);
    T* xt = conv_workspace<T>(1, p.P * Qp);
    T* mine = acc + t * bufsize;
#pragma omp for schedule(static)
    for (int64_t n = 0; n < p.N; ++n) {
      const T* gyn = gy + n * p.O * p.P;
      copy_rows(gyn, p.O, p.P, rows, ld);
      kernels::gemm_narrow<T>(p.C, p.P, p.O, wtp, rows, off.data(), nullptr, gx + n * p.C * p.P,
                              p.P);
      transpose_padded(x + n * p.C * p.P, p.C, p.P, xt, Qp);
      kernels::gemm_narrow_sum<T>(p.O, Qp, p.P, 1, rows, ld, 0, xt, Qp, mine, Qp);
    }
  }
  sum_pointwise_partials(p, acc, threads, Qp, false, gw);
}

// Weight gradient on channels-last images (groups 1; pointwise convs only under
// TRIT_CONV_PATH=last), the transposed form of the forward's product:
//   gw[o, (c, kh, kw)] = sum over n, oh, ow of gy[n, o, oh, ow] * xh_n[oh*s + kh*d][ow*s + kw*d][c]
// with xh_n image n channels-last and zero-padded (kernels::pad_channels_last). Row (n, oh, ow)
// of the transposed column matrix needs no copy there: for kernel row kh (and column kw, with
// dilation > 1) its taps are one contiguous run of KW*C (or C) values, a "segment", at pixel
// offset (oh*s*Wp + ow*s)*C. So the weight gradient is kernels::gemm_narrow with the pixels
// as its reduction: A = gy (O x pixels, packed per chunk of images), B read in place through
// per-pixel offsets, one call per segment, accumulating over chunks; each micro-kernel step
// does 2*MR multiply-adds per 2 loads, like the forward, where gemm_dot (the padded-grid form
// above) paid a horizontal sum per entry and Eigen a packing of the column matrix. Each
// segment is computed in whole SIMD vectors (the extra columns read the next pixel's values
// and are dropped), so the path is taken where that waste is at most 1/3 (every 3x3 kernel
// from 16 channels on). The result gwt[O, S*Np] (segment-major) is permuted into gw at the end.
// Threads: each takes a range of images and sums into its own gwt (added in thread order at
// the end: O*K values), unless a gwt would exceed 4 MB (512 channels: 9 MB) or there are
// fewer images than threads; then each takes a range of output rows over all images.
// Chunks of images hold about 512 KB of packed gy per thread (at most 2048 pixels), so A
// stays in L2 while the panels of B stream past it.
struct GwSegments {
  int64_t S, width, Np;  // S segments of `width` columns, each computed Np wide (whole vectors)
};
template <class T>
GwSegments gw_segments(const Conv2dPlan& p) {
  constexpr int64_t L = kernels::NarrowTile<T>::L;
  const bool rows = p.geo.dilation == 1;  // (kw, c) contiguous over a whole kernel row
  GwSegments g;
  g.S = rows ? p.KH : p.KH * p.KW;
  g.width = rows ? p.KW * p.C : p.C;
  g.Np = (g.width + L - 1) / L * L;  // whole panels and at most one half panel
  return g;
}
template <class T>
bool gw_channels_last_applies(const Conv2dPlan& p) {
  if (p.depthwise || p.G != 1) return false;
  if (pointwise_gw_applies(p)) return false;
  if (const char* e = std::getenv("TRIT_CONV_PATH")) return std::string_view(e) == "last";
  const GwSegments g = gw_segments<T>(p);
  return g.Np * 3 <= g.width * 4;
}
template <class T>
void conv2d_weight_grad_channels_last(const Conv2dPlan& p, const T* gy, const T* x, T* gw) {
  constexpr int64_t MR = kernels::NarrowTile<T>::MR, NR = kernels::NarrowTile<T>::NR;
  const GwSegments sg = gw_segments<T>(p);
  const int64_t s = p.geo.stride, d = p.geo.dilation, C = p.C;
  const int64_t Hp = p.H + 2 * p.geo.padding, Wp = p.W + 2 * p.geo.padding, img = Hp * Wp * C;
  const int64_t threads = omp_get_max_threads(), blocks = (p.O + MR - 1) / MR;
  const int64_t ldc = sg.S * sg.Np, bufsize = p.O * ldc;
  const bool by_rows =
      threads > 1 && (bufsize * int64_t(sizeof(T)) > (int64_t(4) << 20) || p.N < threads);
  const int64_t nbuf = by_rows ? 1 : threads;
  T* acc = conv_workspace<T>(2, nbuf * bufsize);
  std::fill(acc, acc + nbuf * bufsize, T(0));
#pragma omp parallel num_threads(threads)
  {
    const int64_t t = omp_get_thread_num();
    const int64_t o_lo = by_rows ? std::min(p.O, t * blocks / threads * MR) : 0;
    const int64_t o_hi = by_rows ? std::min(p.O, (t + 1) * blocks / threads * MR) : p.O;
    const int64_t n_lo = by_rows ? 0 : t * p.N / threads;
    const int64_t n_hi = by_rows ? p.N : (t + 1) * p.N / threads;
    const int64_t rows = o_hi - o_lo, rows_up = (rows + MR - 1) / MR * MR;
    // images per chunk: about 512 KB of packed gy (rows_up x b*P), at most 2048 pixels
    const int64_t pixels = std::min<int64_t>(2048, (int64_t(512) << 10) / int64_t(sizeof(T)) /
                                                       std::max<int64_t>(rows_up, 1));
    const int64_t b = std::clamp<int64_t>(pixels / p.P, 1, std::max<int64_t>(n_hi - n_lo, 1));
    if (rows > 0 && n_hi > n_lo) {
      T* xh = conv_workspace<T>(0, b * img + NR);
      T* ap = conv_workspace<T>(1, rows_up * b * p.P);
      thread_local std::vector<int64_t> off;  // pixel (i, oh, ow) of the chunk -> its offset
      off.resize(static_cast<size_t>(b * p.P));
      for (int64_t i = 0; i < b; ++i)
        for (int64_t oh = 0; oh < p.OH; ++oh)
          for (int64_t ow = 0; ow < p.OW; ++ow)
            off[(i * p.OH + oh) * p.OW + ow] = i * img + (oh * s * Wp + ow * s) * C;
      T* mine = acc + (by_rows ? 0 : t * bufsize) + o_lo * ldc;
      for (int64_t n0 = n_lo; n0 < n_hi; n0 += b) {
        const int64_t bb = std::min(b, n_hi - n0), R = bb * p.P;
        for (int64_t i = 0; i < bb; ++i)
          kernels::pad_channels_last(x + (n0 + i) * C * p.H * p.W, p.geo, xh + i * img);
        std::fill(xh + bb * img, xh + bb * img + NR, T(0));  // read by the last, dropped columns
        // ap: rows o_lo..o_hi of gy over the chunk's pixels, packed as pack_narrow_a does
        for (int64_t r0 = 0; r0 < rows; r0 += MR) {
          const int64_t m = std::min(MR, rows - r0);
          for (int64_t i = 0; i < bb; ++i) {
            const T* src = gy + ((n0 + i) * p.O + o_lo + r0) * p.P;
            T* dst = ap + r0 * R + i * p.P * MR;
            if (m == MR) {  // an MR x P transpose, MR values written at a time
              for (int64_t q = 0; q < p.P; ++q)
#pragma GCC unroll 16
                for (int64_t r = 0; r < MR; ++r) dst[q * MR + r] = src[r * p.P + q];
            } else {
              for (int64_t q = 0; q < p.P; ++q)
                for (int64_t r = 0; r < MR; ++r) dst[q * MR + r] = r < m ? src[r * p.P + q] : T(0);
            }
          }
        }
        for (int64_t seg = 0; seg < sg.S; ++seg) {
          const int64_t kh = d == 1 ? seg : seg / p.KW, kw = d == 1 ? 0 : seg % p.KW;
          kernels::gemm_narrow<T>(rows, sg.Np, R, ap, xh + (kh * Wp + kw) * d * C, off.data(),
                                  nullptr, mine + seg * sg.Np, ldc, true);
        }
      }
    }
  }
  // gw[o, (c, kh, kw)] = sum of the buffers at gwt[o, seg*Np + pos]
#pragma omp parallel for schedule(static) num_threads(threads) \
    if ((nbuf + 1) * p.O * p.K >= kParallelReduceValues)
  for (int64_t o = 0; o < p.O; ++o)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t kh = 0; kh < p.KH; ++kh)
        for (int64_t kw = 0; kw < p.KW; ++kw) {
          const int64_t col = d == 1 ? kh * sg.Np + kw * C + c : (kh * p.KW + kw) * sg.Np + c;
          T sum = 0;
          for (int64_t t = 0; t < nbuf; ++t) sum += acc[t * bufsize + o * ldc + col];
          gw[(o * C + c) * p.KH * p.KW + kh * p.KW + kw] = sum;
        }
}

// Gradients of conv2d given gy[N, O, OH, OW]: gx (dL/dx) and gw (dL/dweight), each written
// when its pointer is not null (x is needed for gw, w for gx).
template <class T>
void conv2d_backward(const Conv2dPlan& p, const T* gy, const T* x, const T* w, T* gx, T* gw) {
  if (p.depthwise) {
    if (gx) kernels::depthwise_backward_input(gy, w, p.N, p.geo, gx);
    if (gw) kernels::depthwise_backward_weight(gy, x, p.N, p.geo, gw);
    return;
  }
  if (gx && gw && pointwise_backward_fused_applies(p, sizeof(T))) {
    conv2d_backward_pointwise_fused(p, gy, x, w, gx, gw);
    return;
  }
  if (gx && transposed_conv_applies(p)) {
    conv2d_backward_input_as_conv(p, gy, w, gx);
    gx = nullptr;  // done
  }
  if (gw && pointwise_gw_applies(p)) {
    conv2d_weight_grad_pointwise(p, gy, x, gw);
    gw = nullptr;  // done
  }
  if (gw && gw_channels_last_applies<T>(p)) {
    conv2d_weight_grad_channels_last(p, gy, x, gw);
    gw = nullptr;  // done
  }
  if (!gx && !gw) return;
  if (p.by_image) {
    conv2d_backward_by_image(p, gy, x, w, gx, gw);
    return;
  }
  T* col = conv_workspace<T>(0, p.C * p.KH * p.KW * p.chunk * p.P);
  T* gyT = conv_workspace<T>(1, p.O * p.chunk * p.P);
  const int64_t wtpack = kernels::narrow_a_size<T>(p.K, p.Og);
  const T* wtp = gx ? pack_weight_transposed(p, w) : nullptr;
  for (int64_t n0 = 0; n0 < p.N; n0 += p.chunk) {
    const int64_t b = std::min(p.chunk, p.N - n0), ld = b * p.P;
    gather_chunk(p, gy, n0, b, gyT);
    if (gw) {
      im2col_chunk(p, x, n0, b, col);
      for (int64_t g = 0; g < p.G; ++g)  // gw[g] (Og x K) += gyT[g] (Og x bP) * col[g]^T
        gemm_split<T>(true, false, true, p.Og, p.K, ld, gyT + g * p.Og * ld, ld,
                      col + g * p.K * ld, ld, n0 == 0 ? T(0) : T(1), gw + g * p.Og * p.K, p.K);
    }
    if (gx) {
      // dcol[g] (K x bP) = w[g]^T (K x Og) * gyT[g]: each thread a range of whole panels
      const std::vector<int64_t> off = kernels::row_offsets(p.Og, ld);
      for_each_panel_range<T>(p.G, ld, [&](int64_t g, int64_t lo, int64_t hi) {
        kernels::gemm_narrow<T>(p.K, hi - lo, p.Og, wtp + g * wtpack, gyT + g * p.Og * ld + lo,
                                off.data(), nullptr, col + g * p.K * ld + lo, ld);
      });
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < b; ++i)
        kernels::col2im(col + i * p.P, ld, p.geo, gx + (n0 + i) * p.C * p.H * p.W);
    }
  }
}

// gb[O] = sum over n and output pixels of gy.
template <class T>
void conv2d_bias_grad(const Conv2dPlan& p, const T* gy, T* gb) {
#pragma omp parallel for schedule(static)
  for (int64_t o = 0; o < p.O; ++o) {
    T sum = 0;
    for (int64_t n = 0; n < p.N; ++n) {
      const T* row = gy + (n * p.O + o) * p.P;
#pragma omp simd reduction(+ : sum)
      for (int64_t q = 0; q < p.P; ++q) sum += row[q];
    }
    gb[o] = sum;
  }
}

}  // namespace detail

// See the header comment. Throws trit::Error("conv2d", ...) naming the shapes on a channel
// mismatch, groups that do not divide the channels, a kernel larger than the padded input,
// or a wrong rank.
template <class T>
Tensor<T> conv2d(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias = Tensor<T>(),
                 const Conv2dOptions& options = {}, kernels::PlaneMoments* moments = nullptr) {
  const bool has_bias = bias.defined();
  const detail::Conv2dPlan p = detail::plan_conv2d(x.shape(), weight.shape(), has_bias,
                                                   has_bias ? bias.shape() : Shape{}, options);
  Tensor<T> y = Tensor<T>::empty({p.N, p.O, p.OH, p.OW});
  detail::conv2d_forward(p, x.data(), weight.data(), has_bias ? bias.data() : nullptr, y.data(),
                         moments);

  const bool need_x = x.requires_grad(), need_w = weight.requires_grad();
  const bool need_b = has_bias && bias.requires_grad();
  std::vector<Tensor<T>> inputs{x, weight};
  if (has_bias) inputs.push_back(bias);
  return record(
      "conv2d", y, std::move(inputs),
      [p, need_x, need_w, need_b, has_bias, x_shape = x.shape(), w_shape = weight.shape(),
       x_ = need_w ? x.detach() : Tensor<T>(),         // read by the weight gradient only
       w_ = need_x ? weight.detach() : Tensor<T>()](    // read by the input gradient only
          const Tensor<T>& gy) {
        Tensor<T> gx = need_x ? Tensor<T>::empty(x_shape) : Tensor<T>();
        Tensor<T> gw = need_w ? Tensor<T>::empty(w_shape) : Tensor<T>();
        detail::conv2d_backward(p, gy.data(), need_w ? x_.data() : nullptr,
                                need_x ? w_.data() : nullptr, need_x ? gx.data() : nullptr,
                                need_w ? gw.data() : nullptr);
        std::vector<Tensor<T>> grads{gx, gw};
        if (has_bias) {
          Tensor<T> gb = need_b ? Tensor<T>::empty({p.O}) : Tensor<T>();
          if (need_b) detail::conv2d_bias_grad(p, gy.data(), gb.data());
          grads.push_back(gb);
        }
        return grads;
      });
}

}  // namespace trit
