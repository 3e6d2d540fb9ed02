#pragma once
// batch_norm: per-channel normalisation of x[N, C, H, W] or x[N, C], as PyTorch's
// F.batch_norm, differentiable in x, weight and bias.
//
//   y[n, c, ...] = (x[n, c, ...] - mean[c]) / sqrt(var[c] + eps) * weight[c] + bias[c]
//
// training = true: mean and var are the batch statistics over the M = N*H*W values of each
//   channel (biased variance, divided by M), and the running statistics, when defined, are
//   updated IN PLACE: running = (1 - momentum) * running + momentum * batch, with the unbiased
//   variance (divided by M - 1) going into running_var. Needs M > 1.
// training = false: mean and var are running_mean and running_var (both required), which
//   are read only; the gradient treats them as constants.
// weight / bias may be undefined Tensor<T>() (affine = false: scale 1, shift 0). The running
// stats may be undefined in training (track_running_stats = false).
//
// Fused epilogue (optional, for the conv -> BN -> [+ shortcut] -> ReLU patterns of ResNet and
// MobileNetV2): residual (same shape as x) is added after the normalisation and `activation`
// (ReLU or ReLU6) applied, in the same pass over memory:
//
//   out = act(y + residual)
//
// which equals relu(batch_norm(x) + residual) computed op by op, value for value, and saves
// the separate add and activation passes forward and backward. The backward pass passes the
// gradient where the activation's input v was inside (0, 6) for ReLU6 and above 0 for ReLU
// (PyTorch's gradients at the kinks), reading v off the output when there is a residual and
// recomputing it from x (as the forward did) when there is none, so nothing extra is kept.
//
// moments (training only, optional): the planes' moments of x measured by whoever wrote x
// (conv2d's `moments`, kernels/plane_moments.hpp), which replace pass 1 below; an error if
// they were measured on another tensor. The result is the same bits either way.
//
// The forward visits the N*C planes (H*W values each, contiguous) in memory order, each
// thread one contiguous block of planes, so the hardware prefetchers stream them: pass 1
// reduces each plane (in L1) to its sum and squared deviations, the N planes of each channel
// are combined into its statistics, and pass 2 normalises. (Walking channel by channel over
// planes C*H*W values apart, to keep a channel in L2 between the passes, was slower:
// MobileNetV2's [64, 192, 16, 16] forward 1.46 ms there, 0.70 ms here, on 1 thread.) The
// variance combines the planes' own means and squared deviations (Chan et al.'s parallel
// formula), as stable as the two-pass formula without a second pass over memory.
// The backward does run per channel (in parallel over C) over the N planes of the channel,
// so the channel's x and gy stay in L2 between its sums and the gradient pass: 3 passes over
// memory instead of 5, which measured faster ([64, 144, 32, 32] on 2 threads: 3.3 ms against
// 4.8 ms in memory order).
// Planes are reduced in T with Eigen's vectorised sums, and the planes' results combined in
// double in plane order, so results do not depend on the thread count.
#include <cmath>
#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include <Eigen/Core>
#include <omp.h>

#include "trit/autograd/function.hpp"
#include "trit/core/tensor.hpp"
#include "trit/kernels/plane_moments.hpp"

namespace trit {

// The activation batch_norm applies after its normalisation (and residual), see above.
enum class BatchNormActivation { none, relu, relu6 };

namespace detail {

// One contiguous H*W plane as an Eigen array (vectorised reductions).
template <class T>
using ConstPlaneOf = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;

// Asks the cache for the hw values at p ahead of their use. A channel's planes lie C*hw
// values apart, so the hardware prefetcher, which follows runs inside a page, stalls at the
// start of every plane without it. Into L2 (locality 1), not L1: a 32x32 plane is 64 lines
// per array, more than the L1 can have in flight, and asking the L1 for them measured 25%
// slower ([64, 144, 32, 32] backward on 2 threads: 3.7 against 2.85 ms).
template <class T>
void prefetch_plane(const T* p, int64_t hw) {
  const char* bytes = reinterpret_cast<const char*>(p);
  for (int64_t b = 0; b < hw * int64_t(sizeof(T)); b += 64) __builtin_prefetch(bytes + b, 0, 1);
}

}  // namespace detail

template <class T>
Tensor<T> batch_norm(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias,
                     Tensor<T> running_mean, Tensor<T> running_var, bool training,
                     double momentum = 0.1, double eps = 1e-5,
                     BatchNormActivation activation = BatchNormActivation::none,
                     const Tensor<T>& residual = Tensor<T>(),
                     const kernels::PlaneMoments* moments = nullptr) {
  const char* op = "batch_norm";
  using ConstPlane = detail::ConstPlaneOf<T>;
  check(x.dim() == 4 || x.dim() == 2, op, "input must be (N, C, H, W) or (N, C), got shape ",
        to_string(x.shape()));
  const int64_t N = x.size(0), C = x.size(1), hw = x.dim() == 4 ? x.size(2) * x.size(3) : 1;
  const int64_t M = N * hw;  // values per channel
  for (const Tensor<T>* t :
       {&weight, &bias, &std::as_const(running_mean), &std::as_const(running_var)})
    if (t->defined())
      check(t->shape() == Shape{C}, op, "per-channel tensors must have shape [", C,
            "] for input ", to_string(x.shape()), ", got ", to_string(t->shape()));
  check(training || (running_mean.defined() && running_var.defined()), op,
        "evaluation mode needs running_mean and running_var");
  check(!training || M > 1, op, "training needs more than 1 value per channel, got input ",
        to_string(x.shape()));
  check(eps > 0, op, "eps must be positive, got ", eps);
  if (training && moments)
    check(moments->of == x.data() && moments->sum.size() == size_t(N * C) &&
              moments->m2.size() == size_t(N * C),
          op, "the plane moments given were not measured on this input ", to_string(x.shape()));
  if (residual.defined())
    check(residual.shape() == x.shape(), op, "residual must have the input's shape ",
          to_string(x.shape()), ", got ", to_string(residual.shape()));
  // The activation as a clamp to [0, cap] (no clamp at all for none).
  const bool clamp = activation != BatchNormActivation::none;
  const T cap = activation == BatchNormActivation::relu6 ? T(6) : std::numeric_limits<T>::infinity();

  // Per-channel statistics used for normalising: mean[c] and invstd[c] = 1/sqrt(var + eps).
  std::vector<T> mean(C), invstd(C), scale(C), shift(C);
  Tensor<T> y = Tensor<T>::empty(x.shape());
  const T* xd = x.data();
  const T* rd = residual.defined() ? residual.data() : nullptr;
  T* yd = y.data();
  // The per-channel scale and shift that normalise (y = x * scale + shift before the
  // epilogue), from the statistics mean and var of channel c.
  auto set_channel = [&](int64_t c, double mu, double var) {
    mean[c] = T(mu);
    invstd[c] = T(1.0 / std::sqrt(var + eps));
    scale[c] = invstd[c] * (weight.defined() ? weight.data()[c] : T(1));
    shift[c] = (bias.defined() ? bias.data()[c] : T(0)) - mean[c] * scale[c];
  };
  // sums[nc], m2s[nc]: plane (n, c)'s sum and sum of squared deviations from its own mean
  // (training only): pass 1 below measures them into `own`, unless the producer of x did
  const bool pass1 = training && !moments;
  kernels::PlaneMoments own;
  if (pass1) own.reset(N * C, xd);
  const kernels::PlaneMoments& planes = training && moments ? *moments : own;
  const double* sums = planes.sum.data();
  const double* m2s = planes.m2.data();
  if (!training)  // the running statistics: C values, no pass, no barrier inside the region
    for (int64_t c = 0; c < C; ++c) set_channel(c, running_mean.data()[c], running_var.data()[c]);
  // The statistics of channels [c0, c1) from their planes' moments, then their running
  // statistics and scale and shift. The loops run n outer, along memory (each channel's sums
  // still in plane order, so the bits do not depend on how the channels are split).
  auto channel_statistics = [&](int64_t c0, int64_t c1) {
    std::vector<double> mu(c1 - c0, 0.0), m2(c1 - c0, 0.0);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = c0; c < c1; ++c) mu[c - c0] += sums[n * C + c];
    for (double& m : mu) m /= double(M);
    // squared deviations from mu = those from each plane's mean + hw * (its mean - mu)^2
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = c0; c < c1; ++c) {
        const double d = sums[n * C + c] / double(hw) - mu[c - c0];
        m2[c - c0] += m2s[n * C + c] + double(hw) * d * d;
      }
    for (int64_t c = c0; c < c1; ++c) {
      const double var = m2[c - c0] / double(M);
      if (running_mean.defined()) {
        T& rm = running_mean.data()[c];
        rm = T((1 - momentum) * rm + momentum * mu[c - c0]);
      }
      if (running_var.defined()) {
        T& rv = running_var.data()[c];
        rv = T((1 - momentum) * rv + momentum * var * double(M) / double(M - 1));
      }
      set_channel(c, mu[c - c0], var);
    }
  };
  // With the moments given, the statistics are N*C values: computed here, before the
  // parallel region, they cost less than the barrier they would need inside it.
  if (training && !pass1) channel_statistics(0, C);
#pragma omp parallel
  {
    if (pass1) {  // pass 1: per-plane moments, each thread a contiguous block of planes
      const int64_t threads = omp_get_num_threads(), me = omp_get_thread_num();
      const int64_t lo = N * C * me / threads, hi = N * C * (me + 1) / threads;
      own.measure(xd, lo, hi - lo, hw);
#pragma omp barrier
      channel_statistics(C * me / threads, C * (me + 1) / threads);
#pragma omp barrier
    }
    // pass 2: y = act(x * scale[c] + shift[c] + residual), plane by plane
#pragma omp for schedule(static)
    for (int64_t nc = 0; nc < N * C; ++nc) {
      const int64_t c = nc % C;
      const T a = scale[c], b = shift[c], hi = cap;  // locals, so the loops vectorise
      const T* __restrict in = xd + nc * hw;
      T* __restrict out = yd + nc * hw;
      if (rd) {
        const T* __restrict r = rd + nc * hw;
        for (int64_t i = 0; i < hw; ++i) out[i] = in[i] * a + b + r[i];
      } else {
        for (int64_t i = 0; i < hw; ++i) out[i] = in[i] * a + b;
      }
      if (clamp)
        for (int64_t i = 0; i < hw; ++i) out[i] = std::min(std::max(out[i], T(0)), hi);
    }
  }

  std::vector<Tensor<T>> inputs{x};
  if (weight.defined()) inputs.push_back(weight);
  if (bias.defined()) inputs.push_back(bias);
  if (residual.defined()) inputs.push_back(residual);
  const bool need_x = x.requires_grad();
  const bool need_w = weight.defined() && weight.requires_grad();
  const bool need_b = bias.defined() && bias.requires_grad();
  const bool need_r = residual.defined() && residual.requires_grad();
  return record(
      op, y, std::move(inputs),
      [x_ = x.detach(), w_ = weight.defined() ? weight.detach() : Tensor<T>(),
       has_b = bias.defined(), has_r = residual.defined(), clamp, cap,
       y_ = clamp && residual.defined() ? y.detach() : Tensor<T>(), scale = std::move(scale),
       shift = std::move(shift), mean = std::move(mean), invstd = std::move(invstd), training,
       need_x, need_w, need_b, need_r, N, C, hw, M](const Tensor<T>& gy) {
        // g: the gradient at the normalisation's output. With an activation that is gy where
        // the activation passed its input (0 < out < cap) and 0 elsewhere; it is also the
        // residual's gradient. Without a residual the activation's input is recomputed from
        // x as the forward computed it (x * scale + shift, the same float operations), which
        // reads one array less than the output would.
        Tensor<T> gx = need_x ? Tensor<T>::empty(x_.shape()) : Tensor<T>();
        // (when only x needs it, g is computed in gx's memory: gx's pass reads each element
        // of g just before it overwrites it)
        Tensor<T> g_masked;
        if (clamp) g_masked = need_x && !need_r ? gx : Tensor<T>::empty(gy.shape());
        Tensor<T> gw = need_w ? Tensor<T>::empty({C}) : Tensor<T>();
        Tensor<T> gb = need_b ? Tensor<T>::empty({C}) : Tensor<T>();
        const T* xd = x_.data();
        const T* gyd = gy.data();
        const T* g = clamp ? g_masked.data() : gyd;
        const int64_t ahead = std::max<int64_t>(1, 4096 / (hw * int64_t(sizeof(T))));
#pragma omp parallel for schedule(static)
        for (int64_t c = 0; c < C; ++c) {
          const T mu = mean[c], is = invstd[c];
          // sum_g = sum of g, sum_gx = sum of g * (x - mean), over the channel
          double sum_g = 0, sum_gx = 0;
          // plane n + ahead of every array this loop reads is asked for while plane n is
          // read: at least 4 KiB ahead, so that small planes (8x8: 256 bytes) arrive in time
          auto prefetch = [&](int64_t n) {
            const int64_t at = (n * C + c) * hw;
            detail::prefetch_plane(xd + at, hw);
            detail::prefetch_plane(gyd + at, hw);
            if (y_.defined()) detail::prefetch_plane(y_.data() + at, hw);
          };
          for (int64_t n = 1; n < std::min(ahead, N); ++n) prefetch(n);
          for (int64_t n = 0; n < N; ++n) {
            const int64_t at = (n * C + c) * hw;
            if (n + ahead < N) prefetch(n + ahead);
            if (clamp) {  // g = gy masked by the activation, while the plane is in cache
              const T* __restrict gyp = gyd + at;
              T* __restrict gm = g_masked.data() + at;
              const T hi = cap;  // locals, so the loops vectorise (no reloads through `this`)
              if (y_.defined()) {
                const T* __restrict yp = y_.data() + at;
                for (int64_t i = 0; i < hw; ++i)
                  gm[i] = (yp[i] > T(0)) & (yp[i] < hi) ? gyp[i] : T(0);
              } else {
                const T* __restrict xp = xd + at;
                const T a = scale[c], b = shift[c];
                for (int64_t i = 0; i < hw; ++i) {
                  const T v = xp[i] * a + b;
                  gm[i] = (v > T(0)) & (v < hi) ? gyp[i] : T(0);
                }
              }
            }
            const ConstPlane xp(xd + at, hw), gp(g + at, hw);
            sum_g += double(gp.sum());
            sum_gx += double((gp * (xp - mu)).sum());
          }
          if (need_b) gb.data()[c] = T(sum_g);
          if (need_w) gw.data()[c] = T(sum_gx * is);  // sum of gy * xhat
          if (!need_x) continue;
          const T w = w_.defined() ? w_.data()[c] : T(1);
          // eval:  gx = gy * w * invstd
          // train: gx = w * invstd * (gy - mean(gy) - xhat * mean(gy * xhat)), because the
          //        batch mean and variance depend on x too
          const T k = w * is;
          const T mean_g = training ? T(sum_g / double(M)) : T(0);
          const T proj = training ? T(sum_gx / double(M)) * is * is : T(0);
          for (int64_t n = 0; n < N; ++n) {
            const T* xp = xd + (n * C + c) * hw;
            const T* gp = g + (n * C + c) * hw;
            T* out = gx.data() + (n * C + c) * hw;
            for (int64_t i = 0; i < hw; ++i) out[i] = k * (gp[i] - mean_g - (xp[i] - mu) * proj);
          }
        }
        std::vector<Tensor<T>> grads{gx};
        if (w_.defined()) grads.push_back(gw);
        if (has_b) grads.push_back(gb);
        if (has_r) grads.push_back(need_r ? (y_.defined() ? g_masked : gy) : Tensor<T>());
        return grads;
      });
}

}  // namespace trit
