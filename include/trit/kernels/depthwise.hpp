#pragma once
// Direct depthwise convolution: groups == C == O (channel multiplier 1), so output channel c
// reads input channel c only, through its own KH x KW filter. There is nothing to share
// between channels, so im2col + GEMM would be a waste: these loops slide the filter over each
// contiguous (H, W) plane directly.
//
//   x[N, C, H, W], w[C, KH, KW] (the [C, 1, KH, KW] weight), bias[C] or nullptr,
//   y[N, C, OH, OW] with the geometry of ConvGeometry (g.C = C). The forward also measures
//   each output plane's moments into `moments` when given (sized by the caller).
//
// The layers are memory-bound (9 multiply-adds per value read), so every loop visits the
// planes in memory order, each thread one contiguous block of planes (schedule(static)):
// interleaving small dynamic chunks of planes between the threads kept the forward at the
// same speed on 2 threads as on 1 (the kernel alone on [64, 144, 32, 32]: 2.53 ms with
// dynamic chunks, 1.51 ms static, 2.57 ms on 1 thread).
//
// Three loop forms:
// - Fast path, 3x3 filters with padding 1, dilation 1 and stride 1 or 2 (all of MobileNetV2's
//   depthwise layers). Each plane is first copied into a per-thread scratch buffer in a
//   "flat" layout (PlaneLayout below) where every tap of the filter is a fixed offset from
//   the output's own index: then out[j] = sum over taps of f[t] * src[t][j] is one vector
//   loop over the whole plane with no bounds tests and no short rows, which keeps the 8x8
//   and 4x4 planes of the deep layers (and the stride-2 layers) as fast per value as the
//   32x32 ones. The input gradient is the same sweep over the output gradient (the filter
//   flipped at stride 1; four interleaved parity classes at stride 2), and the weight
//   gradient is 9 dot products of the output gradient with the 9 tap sources.
// - Vector planes (float on AVX-512 machines, stride 1): planes of at most 64 values and 15
//   wide (SmallPlane: MobileNetV2's 8x8 and 4x4 layers on 32x32 images), or whose width is a
//   multiple of 16 (WidePlane: 32x32, 16x16; forward and input gradient only). Each tap is
//   the plane's own vectors, loaded in place, shifted by the tap's offset in registers: no
//   copy into scratch. On 2 threads, batch 64: [64, 192, 16, 16] forward 0.59 -> 0.35 ms,
//   [64, 576, 8, 8] 0.98 -> 0.44 ms (the 8x8 planes through masked loads before).
// - General path (other sizes, strides, paddings, dilations): for each filter tap (kh, kw)
//   the output rows and columns whose input lies inside the image are one rectangle
//   (valid_output_range), so the inner loop over ow has no branches and vectorises; the plane
//   stays in L1 across the KH*KW sweeps.
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include <Eigen/Core>
#include <omp.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "trit/kernels/im2col.hpp"
#include "trit/kernels/plane_moments.hpp"

namespace trit::kernels {

namespace detail {

// Does the fast path apply?
inline bool depthwise_fast(const ConvGeometry& g) {
  return g.KH == 3 && g.KW == 3 && g.padding == 1 && g.dilation == 1 &&
         (g.stride == 1 || g.stride == 2);
}

// A thread's scratch buffer (slot 0 or 1) of at least n elements, kept between calls.
template <class T>
T* depthwise_scratch(int64_t n, int slot) {
  thread_local std::vector<T> buffers[2];
  auto& buffer = buffers[slot];
  if (static_cast<int64_t>(buffer.size()) < n) buffer.resize(static_cast<size_t>(n));
  return buffer.data();
}

inline int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

// Vector width of the flat sweeps (16 floats: one AVX-512 register, two AVX2 ones).
constexpr int kLanes = 16;

// The flat layout of one plane for the fast path (S the stride, OH x OW the output).
// Let xp(r, q) be the input zero-padded by one pixel: x[r-1][q-1] inside, 0 outside. Output
// (oh, ow) reads xp(S*oh + kh, S*ow + kw). Split xp into S*S "sub-images" by the parity of r
// and q: sub(a, b)[i][k] = xp(S*i + a, S*k + b), stored as RS = OH+1 rows of QW = OW+1
// values (PS = RS*QW). Output (oh, ow) gets the flat index j = oh*QW + ow, and
//
//   tap (kh, kw) reads sub(kh % S, kw % S)[j + (kh / S)*QW + kw / S].
//
// At stride 1 (one sub-image, RS = H+1, QW = W+1) the padded plane's last column and row are
// not stored: reading past a row's end lands on the next row's column 0 (a zero), past the
// last row on the zeroed tail. Flat indices with ow = OW (or beyond OH*QW) are junk outputs,
// computed and thrown away: (OH+1)(OW+1)/(OH*OW) times the useful work (1.06 at 32x32, 1.56
// at 4x4), far cheaper than rows 4 or 8 wide.
struct PlaneLayout {
  int64_t S, OH, OW, RS, QW, PS;
  int64_t n;     // flat outputs swept: OH*QW rounded up to kLanes
  int64_t span;  // values per sub-image in the buffer: n + the farthest tap offset, rounded
  explicit PlaneLayout(const ConvGeometry& g)
      : S(g.stride), OH(g.out_h()), OW(g.out_w()), RS(OH + 1), QW(OW + 1), PS(RS * QW),
        n(round_up(OH * QW, kLanes)),
        span(std::max(round_up(PS, kLanes), n + round_up(2 * QW + 2, kLanes))) {}
};

// dst[0, n) = src[0, n) for the short rows (4 to 32 values) of the plane copies: vectors of
// 16, then one of 8 and one of 4 (fixed-size Eigen arrays), then single values, so the 8- and
// 4-wide rows of the deep layers are one move each. (The compiler would turn plain loops, or
// std::copy, into calls to memmove, whose call overhead costs more than such a row.)
template <int V, class T>
inline void copy_part(const T* src, int64_t n, T* dst, int64_t& k) {
  using Vec = Eigen::Array<T, V, 1>;
  for (; k + V <= n; k += V) Eigen::Map<Vec>(dst + k) = Eigen::Map<const Vec>(src + k);
}
template <class T>
inline void copy_row(const T* src, int64_t n, T* dst) {
  int64_t k = 0;
  copy_part<kLanes>(src, n, dst, k);
  copy_part<8>(src, n, dst, k);
  copy_part<4>(src, n, dst, k);
  switch (n - k) {  // 0 to 3 left (not a loop: that would become a memmove call again)
    case 3: dst[k + 2] = src[k + 2]; [[fallthrough]];
    case 2: dst[k + 1] = src[k + 1]; [[fallthrough]];
    case 1: dst[k] = src[k];
  }
}

// Copies the plane in[H x W] into the S*S sub-images of buf (sub-image (a, b) at
// buf + (a*S + b)*L.span): sub(a, b)[i][k] = xp(S*i + a + parity, S*k + b + parity). Only the
// values that come from the plane are written: the zeros (padding, the junk row and column,
// the tail of each span) sit at the same places for every plane, so the caller zeroes the
// buffer once (zero_buffer) and then fills plane after plane. Parity 0 is the padded input;
// with S = 1 and parity 1 the copy is the plain plane with a zero column and row after it:
// the layout of an output gradient (H x W = OH x OW), whose value at flat index j pairs with
// output j. (Stride 2 takes parity 0 only.)
template <int S, class T>
void fill_plane(const T* __restrict in, int64_t H, int64_t W, const PlaneLayout& L, int parity,
                T* __restrict buf) {
  if constexpr (S == 1) {
    // x[h][w] goes to sub[h + 1 - parity][w + 1 - parity]
    T* dst = buf + (1 - parity) * L.QW + (1 - parity);
    for (int64_t h = 0; h < H; ++h) copy_row(in + h * W, W, dst + h * L.QW);
  } else {
    // One pass over each input row, splitting it into its even and odd padded columns:
    // x row h is padded row r = h + 1 = 2i + a, so it goes to row i of sub(a, 0) (padded
    // columns 0, 2, ...: x[1], x[3], ... from column 1 on) and of sub(a, 1) (padded columns
    // 1, 3, ...: x[0], x[2], ...).
    for (int64_t h = 0; h < H; ++h) {
      const int64_t r = h + 1, a = r % 2, i = r / 2;
      T* even = buf + (2 * a) * L.span + i * L.QW;
      T* odd = buf + (2 * a + 1) * L.span + i * L.QW;
      const T* row = in + h * W;
      for (int64_t k = 0; k < W / 2; ++k) {
        odd[k] = row[2 * k];
        even[k + 1] = row[2 * k + 1];
      }
      if (W % 2) odd[W / 2] = row[W - 1];
    }
  }
}

// The padded input plane at stride s (1 or 2): fill_plane<s> with parity 0.
template <class T>
void fill_input_plane(int64_t s, const T* in, int64_t H, int64_t W, const PlaneLayout& L, T* buf) {
  if (s == 1)
    fill_plane<1>(in, H, W, L, 0, buf);
  else
    fill_plane<2>(in, H, W, L, 0, buf);
}

// Zeroes a thread's fill buffer of S*S sub-images (see fill_plane).
template <class T>
void zero_buffer(T* buf, int64_t S, const PlaneLayout& L) {
  std::fill(buf, buf + S * S * L.span, T(0));
}

// The 9 tap sources of a filled plane: tap (kh, kw) -> sub(kh % S, kw % S) + offset.
template <class T>
void tap_sources(const T* buf, const PlaneLayout& L, const T* src[9]) {
  for (int kh = 0; kh < 3; ++kh)
    for (int kw = 0; kw < 3; ++kw)
      src[kh * 3 + kw] = buf + ((kh % L.S) * L.S + kw % L.S) * L.span +
                         (kh / L.S) * L.QW + kw / L.S;
}

// out[r*out_stride + j] = bias + sum over t < TAPS of f[t] * src[t][r*in_stride + j], for
// r < rows and j < len (len a multiple of kLanes): kLanes outputs at a time summed in
// registers over all taps (a fixed-size Eigen array, so the compiler emits plain vector
// FMAs), then stored once. One long flat row (rows = 1), or the plane's rows written straight
// to their place when OW is a multiple of kLanes (no junk outputs, no copy afterwards).
template <int TAPS, class T>
void tap_sum(const T* const* src, const T* f, T bias, int64_t rows, int64_t len,
             int64_t in_stride, T* __restrict out, int64_t out_stride) {
  using Vec = Eigen::Array<T, kLanes, 1>;
  using In = Eigen::Map<const Vec>;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < len; j += kLanes) {
      const int64_t at = r * in_stride + j;
      Vec acc = Vec::Constant(bias);
      for (int t = 0; t < TAPS; ++t) acc += f[t] * In(src[t] + at);
      Eigen::Map<Vec>(out + r * out_stride + j) = acc;
    }
}

// out[OH x OW] = the 3x3 sweep of the filled plane's 9 tap sources with f and bias: straight
// into out's rows when OW is a multiple of kLanes, else flat into the scratch flat[L.n] and
// then the OW real values of each row copied out.
template <class T>
void sweep_plane(const T* const* src, const T* f, T bias, const PlaneLayout& L, T* flat,
                 T* out) {
  if (L.OW % kLanes == 0) {
    tap_sum<9>(src, f, bias, L.OH, L.OW, L.QW, out, L.OW);
    return;
  }
  tap_sum<9>(src, f, bias, 1, L.n, 0, flat, 0);
  for (int64_t oh = 0; oh < L.OH; ++oh) copy_row(flat + oh * L.QW, L.OW, out + oh * L.OW);
}

// sums[t] += sum over r < rows, j < len of g[r*g_stride + j] * src[t][r*in_stride + j] for
// the 9 taps (len a multiple of kLanes): per tap a vector of kLanes partial sums in
// registers, reduced once at the end.
template <class T>
void tap_dot(const T* const* src, const T* g, int64_t rows, int64_t len, int64_t in_stride,
             int64_t g_stride, double* sums) {
  using Vec = Eigen::Array<T, kLanes, 1>;
  using In = Eigen::Map<const Vec>;
  Vec acc[9];
  for (auto& a : acc) a.setZero();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < len; j += kLanes) {
      const Vec gv = In(g + r * g_stride + j);
      for (int t = 0; t < 9; ++t) acc[t] += gv * In(src[t] + r * in_stride + j);
    }
  for (int t = 0; t < 9; ++t) sums[t] += double(acc[t].sum());
}

#if defined(__AVX512F__)
// Vector planes (float, AVX-512, 3x3 filters, stride 1, padding 1): the plane's own 16-float
// vectors, loaded straight from it, supply every tap, with no copy into the flat layout.
// Output vector k (flat indices j = 16k .. 16k+15 of the plane, j = oh*W + ow) needs tap
// (kh, kw), the input at j + o with o = (kh-1)*W + (kw-1), which is the concatenation of the
// input vectors around k shifted by o lanes (valignd, an instruction immediate). Two kinds:
//
// - SmallPlane<W>: planes of at most 64 values (four vectors) and at most 15 wide (the 8x8
//   and 4x4 layers of MobileNetV2 on 32x32 images, 7x7 on 28x28). The vectors of output
//   vector k-1, k, k+1 hold every tap (|o| <= W+1 <= 16); a mask per tap and vector keeps the
//   lanes whose input pixel lies inside the plane, and the other lanes leave the sum as it
//   is. (Reading each tap as a masked load at offset o from memory instead, with the same
//   masks, took twice as long: 23 against 12 ns per 8x8 plane on one thread, the loads
//   crossing cache lines.) W is a template parameter: the shifts are immediates.
// - WidePlane: planes whose width is a whole number R of vectors (32x32, 16x16). Output
//   vector (r, q), the q-th of row r, takes row kh's taps from input row r+kh-1, vector q
//   shifted by kw-1 lanes across its neighbours q-1 and q+1; the zero vectors past the
//   plane's edges (rows -1 and H, columns -1 and R) are the padding, so nothing is masked.
//   Each output vector loads three input vectors (column q+1 of the three rows); the other
//   six roll over from the previous output vector.
//
// Both give sweep(in, f, bias, out) (the forward, and the input gradient with the filter
// flipped), with the taps summed in the order t = kh*3 + kw, as the flat sweep does, and
// SmallPlane dot(in, grad, sums) (the weight gradient's 9 sums). The weight gradient of wide
// planes stays on the flat path: it walks the planes in memory order, where a channel's
// planes (4 KiB apart at 32x32, the same L1 sets) walked side by side ran at half its speed.

// Lane l of the result is lane l + O of the concatenation (prev, mid, next), -16 <= O <= 16.
template <int O>
inline __m512 shifted(__m512 prev, __m512 mid, __m512 next) {
  static_assert(O >= -16 && O <= 16);
  if constexpr (O == 0) return mid;
  else if constexpr (O == 16) return next;
  else if constexpr (O == -16) return prev;
  else if constexpr (O > 0)
    return _mm512_castsi512_ps(
        _mm512_alignr_epi32(_mm512_castps_si512(next), _mm512_castps_si512(mid), O));
  else
    return _mm512_castsi512_ps(
        _mm512_alignr_epi32(_mm512_castps_si512(mid), _mm512_castps_si512(prev), 16 + O));
}

template <int W>
struct SmallPlane {
  static_assert(W >= 1 && W <= 15);
  static constexpr bool kWide = false;
  int64_t HW = 0;               // values per plane
  int K = 0;                    // vectors per plane, ceil(HW / 16)
  __mmask16 inside[4][9] = {};  // lanes of vector k whose tap t = kh*3 + kw is inside the plane
  __mmask16 tail[4] = {};       // lanes of vector k that are in the plane (16k + l < HW)

  explicit SmallPlane(int64_t H) : HW(H * W), K(int((H * W + 15) / 16)) {
    for (int k = 0; k < K; ++k)
      for (int l = 0; l < 16; ++l) {
        const int64_t j = 16 * k + l, oh = j / W, ow = j % W;
        if (j >= HW) continue;
        tail[k] |= __mmask16(1u << l);
        for (int t = 0; t < 9; ++t) {
          const int64_t ih = oh + t / 3 - 1, iw = ow + t % 3 - 1;
          if (ih >= 0 && ih < H && iw >= 0 && iw < W) inside[k][t] |= __mmask16(1u << l);
        }
      }
  }

  // Vector k of a plane; zeros past the plane's end and for k outside [0, K).
  __m512 vector(const float* plane, int k) const {
    if (k < 0 || k >= K) return _mm512_setzero_ps();
    if (tail[k] == 0xFFFF) return _mm512_loadu_ps(plane + 16 * k);
    return _mm512_maskz_loadu_ps(tail[k], plane + 16 * k);
  }

  // The 9 taps of output vector k, from the plane's vectors k-1, k, k+1.
  static void taps(__m512 prev, __m512 mid, __m512 next, __m512 tap[9]) {
    tap[0] = shifted<-W - 1>(prev, mid, next);
    tap[1] = shifted<-W>(prev, mid, next);
    tap[2] = shifted<-W + 1>(prev, mid, next);
    tap[3] = shifted<-1>(prev, mid, next);
    tap[4] = mid;
    tap[5] = shifted<1>(prev, mid, next);
    tap[6] = shifted<W - 1>(prev, mid, next);
    tap[7] = shifted<W>(prev, mid, next);
    tap[8] = shifted<W + 1>(prev, mid, next);
  }

  // out[HW] = bias + the 3x3 sweep of f over in[HW].
  void sweep(const float* in, const float* f, float bias, float* out) const {
    __m512 fv[9];
    for (int t = 0; t < 9; ++t) fv[t] = _mm512_set1_ps(f[t]);
    __m512 prev = _mm512_setzero_ps(), mid = vector(in, 0);
    for (int k = 0; k < K; ++k) {
      const __m512 next = vector(in, k + 1);
      __m512 tap[9];
      taps(prev, mid, next, tap);
      __m512 acc = _mm512_set1_ps(bias);
      for (int t = 0; t < 9; ++t) acc = _mm512_mask3_fmadd_ps(fv[t], tap[t], acc, inside[k][t]);
      _mm512_mask_storeu_ps(out + 16 * k, tail[k], acc);
      prev = mid;
      mid = next;
    }
  }

  // sums[t] += sum over the plane of grad[j] * in[j + offset of tap t] (inside the plane), in
  // vector sums that the caller keeps in registers across planes.
  void dot(const float* in, const float* grad, __m512 sums[9]) const {
    __m512 prev = _mm512_setzero_ps(), mid = vector(in, 0);
    for (int k = 0; k < K; ++k) {
      const __m512 next = vector(in, k + 1), gv = vector(grad, k);
      __m512 tap[9];
      taps(prev, mid, next, tap);
      for (int t = 0; t < 9; ++t)
        sums[t] = _mm512_mask3_fmadd_ps(gv, tap[t], sums[t], inside[k][t]);
      prev = mid;
      mid = next;
    }
  }
};

struct WidePlane {
  static constexpr bool kWide = true;
  int64_t H = 0, R = 0;  // rows, and vectors per row (W = 16 R)
  int64_t HW = 0;        // values per plane

  WidePlane(int64_t H_, int64_t W) : H(H_), R(W / 16), HW(H_ * W) {}

  // Walks the output vectors of a plane in order, calling visit(j, tap) with j the flat
  // index of the vector's first value and tap[t] its 9 taps.
  template <class Visit>
  void walk(const float* in, Visit&& visit) const {
    const __m512 zero = _mm512_setzero_ps();
    for (int64_t r = 0; r < H; ++r) {
      const float* rows[3];  // input rows r-1, r, r+1 (null past the plane's edges)
      for (int i = 0; i < 3; ++i)
        rows[i] = r + i - 1 >= 0 && r + i - 1 < H ? in + (r + i - 1) * R * 16 : nullptr;
      auto load = [&](int i, int64_t q) {
        return rows[i] && q < R ? _mm512_loadu_ps(rows[i] + 16 * q) : zero;
      };
      __m512 prev[3] = {zero, zero, zero}, mid[3] = {load(0, 0), load(1, 0), load(2, 0)};
      for (int64_t q = 0; q < R; ++q) {
        const __m512 next[3] = {load(0, q + 1), load(1, q + 1), load(2, q + 1)};
        __m512 tap[9];
        for (int i = 0; i < 3; ++i) {
          tap[3 * i] = shifted<-1>(prev[i], mid[i], next[i]);
          tap[3 * i + 1] = mid[i];
          tap[3 * i + 2] = shifted<1>(prev[i], mid[i], next[i]);
          prev[i] = mid[i];
          mid[i] = next[i];
        }
        visit((r * R + q) * 16, tap);
      }
    }
  }

  void sweep(const float* in, const float* f, float bias, float* out) const {
    __m512 fv[9];
    for (int t = 0; t < 9; ++t) fv[t] = _mm512_set1_ps(f[t]);
    walk(in, [&](int64_t j, const __m512* tap) {
      __m512 acc = _mm512_set1_ps(bias);
      for (int t = 0; t < 9; ++t) acc = _mm512_fmadd_ps(fv[t], tap[t], acc);
      _mm512_storeu_ps(out + j, acc);
    });
  }
};

// Calls body(plane) with the vector-plane kernels for g and returns true, or returns false
// where none applies (another geometry: the flat and general paths below).
template <class Body>
bool with_vector_plane(const ConvGeometry& g, Body&& body) {
  if (!depthwise_fast(g) || g.stride != 1) return false;
  if (g.W % 16 == 0) {
    body(WidePlane(g.H, g.W));
    return true;
  }
  if (g.H * g.W > 64 || g.W > 15) return false;
  [&]<int... I>(std::integer_sequence<int, I...>) {
    ((g.W == I + 1 ? (body(SmallPlane<I + 1>(g.H)), true) : false) || ...);
  }(std::make_integer_sequence<int, 15>{});
  return true;
}
#endif

}  // namespace detail

// y = depthwise_conv(x, w) + bias.
template <class T>
void depthwise_forward(const T* x, const T* w, const T* bias, int64_t N, const ConvGeometry& g,
                       T* y, PlaneMoments* moments = nullptr) {
  const int64_t C = g.C, OH = g.out_h(), OW = g.out_w(), s = g.stride;
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    const bool done = detail::with_vector_plane(g, [&](const auto& P) {
      // in groups of 16 planes, whose moments are measured together (plane_moments.hpp)
#pragma omp parallel for schedule(static)
      for (int64_t group = 0; group < (N * C + 15) / 16; ++group) {
        const int64_t lo = group * 16, hi = std::min(N * C, lo + 16);
        for (int64_t nc = lo; nc < hi; ++nc) {
          const int64_t c = nc % C;
          P.sweep(x + nc * P.HW, w + c * 9, bias ? bias[c] : 0.0f, y + nc * P.HW);
        }
        if (moments) moments->measure(y, lo, hi - lo, P.HW);
      }
    });
    if (done) return;
  }
#endif
  if (detail::depthwise_fast(g)) {
    const detail::PlaneLayout L(g);
#pragma omp parallel
    {
      T* buf = detail::depthwise_scratch<T>(s * s * L.span, 0);
      T* out = detail::depthwise_scratch<T>(L.n, 1);
      detail::zero_buffer(buf, s, L);
      // in groups of 16 planes, whose moments are measured together (plane_moments.hpp)
#pragma omp for schedule(static)
      for (int64_t group = 0; group < (N * C + 15) / 16; ++group) {
        const int64_t lo = group * 16, hi = std::min(N * C, lo + 16);
        for (int64_t nc = lo; nc < hi; ++nc) {
          const int64_t c = nc % C;
          detail::fill_input_plane(s, x + nc * g.H * g.W, g.H, g.W, L, buf);
          const T* src[9];
          detail::tap_sources(buf, L, src);
          detail::sweep_plane(src, w + c * 9, bias ? bias[c] : T(0), L, out, y + nc * OH * OW);
        }
        if (moments) moments->measure(y, lo, hi - lo, OH * OW);
      }
    }
    return;
  }
#pragma omp parallel for schedule(dynamic, 32)
  for (int64_t nc = 0; nc < N * C; ++nc) {
    const int64_t c = nc % C;
    const T* in_plane = x + nc * g.H * g.W;
    const T* filter = w + c * g.KH * g.KW;
    T* out_plane = y + nc * OH * OW;
    const T b = bias ? bias[c] : T(0);
    for (int64_t i = 0; i < OH * OW; ++i) out_plane[i] = b;
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      const int64_t h_off = kh * g.dilation - g.padding;  // ih = oh*s + h_off
      int64_t oh_lo, oh_hi;
      valid_output_range(h_off, s, g.H, OH, oh_lo, oh_hi);
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const int64_t w_off = kw * g.dilation - g.padding;  // iw = ow*s + w_off
        int64_t lo, hi;
        valid_output_range(w_off, s, g.W, OW, lo, hi);
        const T wv = filter[kh * g.KW + kw];
        for (int64_t oh = oh_lo; oh < oh_hi; ++oh) {
          const T* in = in_plane + (oh * s + h_off) * g.W;
          T* out = out_plane + oh * OW;
          if (s == 1) {
            for (int64_t ow = lo; ow < hi; ++ow) out[ow] += wv * in[ow + w_off];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) out[ow] += wv * in[ow * s + w_off];
          }
        }
      }
    }
    if (moments) moments->measure(y, nc, 1, OH * OW);
  }
}

// gx = dL/dx given gy = dL/dy (gx overwritten).
template <class T>
void depthwise_backward_input(const T* gy, const T* w, int64_t N, const ConvGeometry& g, T* gx) {
  const int64_t C = g.C, OH = g.out_h(), OW = g.out_w(), s = g.stride;
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    // the forward's sweep over gy with the filter flipped
    const bool done = detail::with_vector_plane(g, [&](const auto& P) {
#pragma omp parallel for schedule(static)
      for (int64_t nc = 0; nc < N * C; ++nc) {
        const float* f = w + (nc % C) * 9;
        const float flipped[9] = {f[8], f[7], f[6], f[5], f[4], f[3], f[2], f[1], f[0]};
        P.sweep(gy + nc * P.HW, flipped, 0.0f, gx + nc * P.HW);
      }
    });
    if (done) return;
  }
#endif
  if (detail::depthwise_fast(g) && s == 1) {
    // gx[ih][iw] = sum over taps of f[kh][kw] * gy[ih + 1 - kh][iw + 1 - kw]: the forward
    // sweep over gy (zero-padded by 1, OH x OW = H x W) with the filter flipped.
    const detail::PlaneLayout L(g);
#pragma omp parallel
    {
      T* buf = detail::depthwise_scratch<T>(L.span, 0);
      T* out = detail::depthwise_scratch<T>(L.n, 1);
      detail::zero_buffer(buf, 1, L);
#pragma omp for schedule(static)
      for (int64_t nc = 0; nc < N * C; ++nc) {
        const T* f = w + (nc % C) * 9;
        const T flipped[9] = {f[8], f[7], f[6], f[5], f[4], f[3], f[2], f[1], f[0]};
        detail::fill_plane<1>(gy + nc * OH * OW, OH, OW, L, 0, buf);
        const T* src[9];
        detail::tap_sources(buf, L, src);
        detail::sweep_plane(src, flipped, T(0), L, out, gx + nc * g.H * g.W);
      }
    }
    return;
  }
  if (detail::depthwise_fast(g)) {
    // Stride 2: input pixel (ih, iw) = (2i + a, 2k + b) was read by the taps with
    // kh = a + 1 - 2*(oh - i) and kw = b + 1 - 2*(ow - k), so each of the four parity
    // classes (a, b) is a small sweep over gy, stored with a zero column and row after the
    // plane (the gy[i+1], gy[k+1] below read zeros past the edge):
    //   gx[2i  ][2k  ] = f11 gy[i][k]
    //   gx[2i  ][2k+1] = f10 gy[i][k+1] + f12 gy[i][k]
    //   gx[2i+1][2k  ] = f01 gy[i+1][k] + f21 gy[i][k]
    //   gx[2i+1][2k+1] = f00 gy[i+1][k+1] + f02 gy[i+1][k] + f20 gy[i][k+1] + f22 gy[i][k]
    // The class planes are computed flat (index i*QW + k, as the forward's outputs) and
    // interleaved back into gx's rows.
    const detail::PlaneLayout L(g);
    const int64_t Q = L.QW;
#pragma omp parallel
    {
      T* buf = detail::depthwise_scratch<T>(L.span, 0);
      T* out = detail::depthwise_scratch<T>(4 * L.n, 1);
      detail::zero_buffer(buf, 1, L);
      T* P[4] = {out, out + L.n, out + 2 * L.n, out + 3 * L.n};  // classes 00, 01, 10, 11
#pragma omp for schedule(static)
      for (int64_t nc = 0; nc < N * C; ++nc) {
        const T* f = w + (nc % C) * 9;
        detail::fill_plane<1>(gy + nc * OH * OW, OH, OW, L, 1, buf);
        const T* s00[1] = {buf};
        const T f00[1] = {f[4]};
        const T* s01[2] = {buf + 1, buf};
        const T f01[2] = {f[3], f[5]};
        const T* s10[2] = {buf + Q, buf};
        const T f10[2] = {f[1], f[7]};
        const T* s11[4] = {buf + Q + 1, buf + Q, buf + 1, buf};
        const T f11[4] = {f[0], f[2], f[6], f[8]};
        detail::tap_sum<1>(s00, f00, T(0), 1, L.n, 0, P[0], 0);
        detail::tap_sum<2>(s01, f01, T(0), 1, L.n, 0, P[1], 0);
        detail::tap_sum<2>(s10, f10, T(0), 1, L.n, 0, P[2], 0);
        detail::tap_sum<4>(s11, f11, T(0), 1, L.n, 0, P[3], 0);
        T* plane = gx + nc * g.H * g.W;
        for (int64_t ih = 0; ih < g.H; ++ih) {
          const int64_t a = ih % 2, at = (ih / 2) * Q;
          const T* even = P[2 * a] + at;     // columns 2k
          const T* odd = P[2 * a + 1] + at;  // columns 2k + 1
          T* row = plane + ih * g.W;
          for (int64_t k = 0; k < g.W / 2; ++k) {
            row[2 * k] = even[k];
            row[2 * k + 1] = odd[k];
          }
          if (g.W % 2) row[g.W - 1] = even[g.W / 2];
        }
      }
    }
    return;
  }
#pragma omp parallel for schedule(dynamic, 32)
  for (int64_t nc = 0; nc < N * C; ++nc) {
    const int64_t c = nc % C;
    const T* filter = w + c * g.KH * g.KW;
    const T* gy_plane = gy + nc * OH * OW;
    T* gx_plane = gx + nc * g.H * g.W;
    for (int64_t i = 0; i < g.H * g.W; ++i) gx_plane[i] = T(0);
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      const int64_t h_off = kh * g.dilation - g.padding;
      int64_t oh_lo, oh_hi;
      valid_output_range(h_off, s, g.H, OH, oh_lo, oh_hi);
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const int64_t w_off = kw * g.dilation - g.padding;
        int64_t lo, hi;
        valid_output_range(w_off, s, g.W, OW, lo, hi);
        const T wv = filter[kh * g.KW + kw];
        for (int64_t oh = oh_lo; oh < oh_hi; ++oh) {
          const T* grad = gy_plane + oh * OW;
          T* dst = gx_plane + (oh * s + h_off) * g.W;  // the input row this tap read
          if (s == 1) {
            for (int64_t ow = lo; ow < hi; ++ow) dst[ow + w_off] += wv * grad[ow];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) dst[ow * s + w_off] += wv * grad[ow];
          }
        }
      }
    }
  }
}

// gw[C, KH, KW] = dL/dw given gy and the forward input x (gw overwritten). Each channel's
// filter gradient sums over all N planes of that channel.
template <class T>
void depthwise_backward_weight(const T* gy, const T* x, int64_t N, const ConvGeometry& g,
                               T* gw) {
  const int64_t C = g.C, OH = g.out_h(), OW = g.out_w(), s = g.stride;
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    // Small planes: threads split the channels, each a contiguous range. A channel's 9 sums
    // stay in registers across a block of 8 images and are reduced once per block, into
    // double; within a block the thread walks its channels in order, so it reads 8
    // sequential streams (one per image) rather than one plane C planes away from the last.
    constexpr int64_t kImages = 8;
    bool done = false;
    detail::with_vector_plane(g, [&](const auto& P) {
      if constexpr (!std::decay_t<decltype(P)>::kWide) {
#pragma omp parallel
        {
          const int64_t threads = omp_get_num_threads(), me = omp_get_thread_num();
          const int64_t c_begin = C * me / threads, c_end = C * (me + 1) / threads;
          std::vector<double> total(static_cast<size_t>((c_end - c_begin) * 9), 0.0);
          for (int64_t n0 = 0; n0 < N; n0 += kImages)
            for (int64_t c = c_begin; c < c_end; ++c) {
              __m512 sums[9];
              for (auto& v : sums) v = _mm512_setzero_ps();
              for (int64_t n = n0; n < std::min(N, n0 + kImages); ++n)
                P.dot(x + (n * C + c) * P.HW, gy + (n * C + c) * P.HW, sums);
              for (int t = 0; t < 9; ++t)
                total[(c - c_begin) * 9 + t] += double(_mm512_reduce_add_ps(sums[t]));
            }
          for (int64_t c = c_begin; c < c_end; ++c)
            for (int t = 0; t < 9; ++t) gw[c * 9 + t] = float(total[(c - c_begin) * 9 + t]);
        }
        done = true;
      }
    });
    if (done) return;
  }
#endif
  if (detail::depthwise_fast(g)) {
    // gw[c][kh][kw] = sum over n, oh, ow of gy[n][c][oh][ow] * xp[n][c][S*oh + kh][S*ow + kw]:
    // with x's plane in the flat layout, one dot product of gy's rows (or of gy stored in the
    // same layout, zeros at the junk outputs) with each of the 9 tap sources. Planes are
    // visited in memory order (in parallel over N*C), each thread adding into its own partial
    // gw[C, 9] in double; the partials are added in thread order at the end.
    const detail::PlaneLayout L(g);
    const int threads = omp_get_max_threads();
    std::vector<double> partials(static_cast<size_t>(threads) * C * 9, 0.0);
#pragma omp parallel
    {
      double* mine = partials.data() + static_cast<size_t>(omp_get_thread_num()) * C * 9;
      T* buf = detail::depthwise_scratch<T>(s * s * L.span, 0);
      T* gy_flat = detail::depthwise_scratch<T>(L.span, 1);
      detail::zero_buffer(buf, s, L);
      detail::zero_buffer(gy_flat, 1, L);
#pragma omp for schedule(static)
      for (int64_t nc = 0; nc < N * C; ++nc) {
        detail::fill_input_plane(s, x + nc * g.H * g.W, g.H, g.W, L, buf);
        const T* src[9];
        detail::tap_sources(buf, L, src);
        if (OW % detail::kLanes == 0) {  // gy's rows read in place
          detail::tap_dot(src, gy + nc * OH * OW, OH, OW, L.QW, OW, mine + (nc % C) * 9);
        } else {  // gy copied into the flat layout, zeros at the junk outputs
          detail::fill_plane<1>(gy + nc * OH * OW, OH, OW, L, 1, gy_flat);
          detail::tap_dot(src, gy_flat, 1, L.n, 0, 0, mine + (nc % C) * 9);
        }
      }
    }
    for (int64_t i = 0; i < C * 9; ++i) {
      double sum = 0;
      for (int t = 0; t < threads; ++t) sum += partials[static_cast<size_t>(t) * C * 9 + i];
      gw[i] = T(sum);
    }
    return;
  }
  // General path: per tap, products accumulate elementwise into a row of OW partial sums
  // (vectorised, no horizontal reduction per row) that is summed once at the end. Threads
  // split the channels.
#pragma omp parallel
  {
    std::vector<T> partial(static_cast<size_t>(OW));  // this thread's row of partial sums
    T* acc = partial.data();
#pragma omp for schedule(static)
    for (int64_t c = 0; c < C; ++c) {
      for (int64_t kh = 0; kh < g.KH; ++kh) {
        const int64_t h_off = kh * g.dilation - g.padding;
        int64_t oh_lo, oh_hi;
        valid_output_range(h_off, s, g.H, OH, oh_lo, oh_hi);
        for (int64_t kw = 0; kw < g.KW; ++kw) {
          const int64_t w_off = kw * g.dilation - g.padding;
          int64_t lo, hi;
          valid_output_range(w_off, s, g.W, OW, lo, hi);
          for (int64_t ow = 0; ow < OW; ++ow) acc[ow] = T(0);
          for (int64_t n = 0; n < N; ++n) {
            const T* in_plane = x + (n * C + c) * g.H * g.W;
            const T* gy_plane = gy + (n * C + c) * OH * OW;
            for (int64_t oh = oh_lo; oh < oh_hi; ++oh) {
              const T* in = in_plane + (oh * s + h_off) * g.W;
              const T* grad = gy_plane + oh * OW;
              if (s == 1) {
                for (int64_t ow = lo; ow < hi; ++ow) acc[ow] += grad[ow] * in[ow + w_off];
              } else {
                for (int64_t ow = lo; ow < hi; ++ow) acc[ow] += grad[ow] * in[ow * s + w_off];
              }
            }
          }
          T sum = 0;
          for (int64_t ow = 0; ow < OW; ++ow) sum += acc[ow];
          gw[(c * g.KH + kh) * g.KW + kw] = sum;
        }
      }
    }
  }
}

}  // namespace trit::kernels
