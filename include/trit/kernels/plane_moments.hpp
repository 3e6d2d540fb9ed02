#pragma once
// Plane moments: for each contiguous H*W plane (n, c) of an [N, C, H, W] tensor, its sum and
// the sum of squared deviations from its own mean (m2). batch_norm combines a channel's N
// planes into the channel's mean and variance (Chan et al.'s parallel formula), so these are
// its first pass over the input.
//
// Every plane's moments come out the same bits whichever way its plane is reached (alone,
// in a group of 16, with any neighbours), so batch_norm's results do not depend on who
// measured them.
//
// Why a kernel of its own: in training, the convolution before a BatchNorm can compute them
// while each output plane is still in cache (conv2d's `moments` argument), and batch_norm then
// skips that pass over memory. Both places call moments_of_planes below.
//
// PlaneMoments owns sum[n*C + c] and m2[n*C + c] (double) and remembers which data they
// describe (`of`), so that batch_norm can refuse moments of another tensor.
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include <Eigen/Core>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace trit::kernels {

namespace detail {

// The moments of one plane of hw values at p: two passes (the sum, then the squared
// deviations from the plane's mean), each reduced in T with Eigen's vectorised sums.
template <class T>
void one_plane_moments(const T* p, int64_t hw, double& sum, double& m2) {
  const Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>> plane(p, hw);
  const T s = plane.sum();
  sum = double(s);
  m2 = double((plane - s / T(hw)).square().sum());
}

#if defined(__AVX512F__)
// The permutex2var indices of sum_each_of_16's rounds (width 8, 4, 2, 1): round r pairs
// vectors 2k, 2k+1, whose planes hold 2*width lanes each, into one whose planes hold `width`
// lanes. Plane g of the result (lanes g*width ...) is the first vector's planes, then the
// second's, and is the sum of that plane's two halves: lanes `lo` plus lanes `hi`.
// (permutex2var numbers the first vector's lanes 0..15 and the second's 16..31.)
struct SumRounds {
  alignas(64) int lo[4][16];
  alignas(64) int hi[4][16];
  constexpr SumRounds() : lo{}, hi{} {
    for (int r = 0, width = 8; r < 4; ++r, width /= 2) {
      const int planes_in = 16 / (2 * width);  // planes per input vector
      for (int lane = 0; lane < 16; ++lane) {
        const int g = lane / width, from = lane % width;
        const int first = (g / planes_in) * 16 + (g % planes_in) * 2 * width;
        lo[r][lane] = first + from;
        hi[r][lane] = first + width + from;
      }
    }
  }
};
inline constexpr SumRounds kSumRounds{};

// r[i] = the sum of the 16 lanes of v[i], i < 16 (v is overwritten): four rounds of
// transpose-and-add, 8 + 4 + 2 + 1 vector additions.
inline __m512 sum_each_of_16(__m512 v[16]) {
  for (int r = 0, count = 16; r < 4; ++r, count /= 2) {
    const __m512i lo = _mm512_load_si512(kSumRounds.lo[r]);
    const __m512i hi = _mm512_load_si512(kSumRounds.hi[r]);
    for (int k = 0; k < count / 2; ++k)
      v[k] = _mm512_add_ps(_mm512_permutex2var_ps(v[2 * k], lo, v[2 * k + 1]),
                           _mm512_permutex2var_ps(v[2 * k], hi, v[2 * k + 1]));
  }
  return v[0];
}

// The moments of 16 consecutive planes of hw <= 64 floats (p, p + hw, ...): each plane's
// vectors added into one (masked past hw), then the 16 planes reduced together.
inline void moments_of_16_small_planes(const float* p, int64_t hw, double* sum, double* m2) {
  const int K = int((hw + 15) / 16);
  __mmask16 mask[4];
  for (int k = 0; k < K; ++k) {
    const int64_t left = hw - 16 * k;
    mask[k] = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1u);
  }
  __m512 v[16];
  for (int i = 0; i < 16; ++i) {
    const float* plane = p + i * hw;
    __m512 a = _mm512_maskz_loadu_ps(mask[0], plane);
    for (int k = 1; k < K; ++k) a = _mm512_add_ps(a, _mm512_maskz_loadu_ps(mask[k], plane + 16 * k));
    v[i] = a;
  }
  const __m512 sums = sum_each_of_16(v);
  const __m512 means = _mm512_div_ps(sums, _mm512_set1_ps(float(hw)));
  for (int i = 0; i < 16; ++i) {
    const float* plane = p + i * hw;
    const __m512 mean = _mm512_permutexvar_ps(_mm512_set1_epi32(i), means);
    __m512 a = _mm512_setzero_ps();
    for (int k = 0; k < K; ++k) {
      const __m512 d = _mm512_maskz_sub_ps(mask[k], _mm512_maskz_loadu_ps(mask[k], plane + 16 * k), mean);
      a = _mm512_fmadd_ps(d, d, a);
    }
    v[i] = a;
  }
  const __m512 squares = sum_each_of_16(v);
  alignas(64) float s[16], q[16];
  _mm512_store_ps(s, sums);
  _mm512_store_ps(q, squares);
  for (int i = 0; i < 16; ++i) sum[i] = double(s[i]), m2[i] = double(q[i]);
}

#endif  // __AVX512F__

}  // namespace detail

// The moments of `count` consecutive planes of hw values from p (plane i at p + i*hw) into
// sum[i], m2[i]. Most planes are small (MobileNetV2 on 32x32 images: a million 8x8 and 4x4
// planes a step), so the per-plane cost matters as much as the per-value one: where the
// machine has AVX-512, float planes of up to 64 values are reduced 16 at a time, a few
// instructions a plane instead of two horizontal sums of its own.
template <class T>
void moments_of_planes(const T* p, int64_t count, int64_t hw, double* sum, double* m2) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    if (hw <= 64) {
      int64_t i = 0;
      for (; i + 16 <= count; i += 16)
        detail::moments_of_16_small_planes(p + i * hw, hw, sum + i, m2 + i);
      if (i < count) {  // the last few planes, copied into a group of 16 (zeros after them)
        alignas(64) float group[16 * 64] = {};
        double s[16], q[16];
        std::copy(p + i * hw, p + count * hw, group);
        detail::moments_of_16_small_planes(group, hw, s, q);
        std::copy(s, s + (count - i), sum + i);
        std::copy(q, q + (count - i), m2 + i);
      }
      return;  // (each plane's moments do not depend on the planes beside it)
    }
  }
#endif
  for (int64_t i = 0; i < count; ++i) detail::one_plane_moments(p + i * hw, hw, sum[i], m2[i]);
}

struct PlaneMoments {
  std::vector<double> sum, m2;  // [planes], plane n*C + c
  const void* of = nullptr;     // the first value of the tensor they describe

  // Sized for `planes` planes of the data at `data` (values left to the producer).
  void reset(int64_t planes, const void* data) {
    sum.assign(static_cast<size_t>(planes), 0.0);
    m2.assign(static_cast<size_t>(planes), 0.0);
    of = data;
  }
  // Planes [first, first + count) of hw values each, from y (plane i at y + i*hw).
  template <class T>
  void measure(const T* y, int64_t first, int64_t count, int64_t hw) {
    moments_of_planes(y + first * hw, count, hw, sum.data() + first, m2.data() + first);
  }
};

}  // namespace trit::kernels
