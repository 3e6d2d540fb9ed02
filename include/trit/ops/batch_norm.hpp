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
// Loops stream the N*C contiguous H*W planes in memory order, in parallel over planes (a
// per-channel order reads 4 KB pieces scattered over the whole tensor, which prefetches
// badly): statistics are per-plane sums (Eigen's vectorised sum, in T) added per channel in
// double in plane order, so results do not depend on the thread count.
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "trit/autograd/function.hpp"
#include "trit/core/tensor.hpp"

namespace trit {

namespace detail {

// One contiguous H*W plane as an Eigen array (vectorised reductions).
template <class T>
using ConstPlaneOf = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;

}  // namespace detail

template <class T>
Tensor<T> batch_norm(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias,
                     Tensor<T> running_mean, Tensor<T> running_var, bool training,
                     double momentum = 0.1, double eps = 1e-5) {
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

  // Per-channel statistics used for normalising: mean[c] and invstd[c] = 1/sqrt(var + eps).
  std::vector<T> mean(C), invstd(C), scale(C), shift(C);
  Tensor<T> y = Tensor<T>::empty(x.shape());
  const T* xd = x.data();
  T* yd = y.data();

  // Training: the mean, then the mean squared deviation from it (two passes, stable). Each
  // pass streams the planes in memory order (in parallel over N*C) and reduces each plane
  // with Eigen's vectorised sum (in T); a channel's plane sums are then added in double in
  // plane order.
  std::vector<double> plane(static_cast<size_t>(N * C));
  auto channel_total = [&](int64_t c) {
    double t = 0;
    for (int64_t n = 0; n < N; ++n) t += plane[n * C + c];
    return t;
  };
  if (training) {
#pragma omp parallel for schedule(static)
    for (int64_t nc = 0; nc < N * C; ++nc) plane[nc] = double(ConstPlane(xd + nc * hw, hw).sum());
    for (int64_t c = 0; c < C; ++c) mean[c] = T(channel_total(c) / double(M));
#pragma omp parallel for schedule(static)
    for (int64_t nc = 0; nc < N * C; ++nc)
      plane[nc] = double((ConstPlane(xd + nc * hw, hw) - mean[nc % C]).square().sum());
  }
  for (int64_t c = 0; c < C; ++c) {
    double mu, var;
    if (training) {
      mu = double(mean[c]);
      var = channel_total(c) / double(M);
      if (running_mean.defined()) {
        T& rm = running_mean.data()[c];
        rm = T((1 - momentum) * rm + momentum * mu);
      }
      if (running_var.defined()) {
        T& rv = running_var.data()[c];
        rv = T((1 - momentum) * rv + momentum * var * double(M) / double(M - 1));
      }
    } else {
      mu = running_mean.data()[c];
      var = running_var.data()[c];
    }
    mean[c] = T(mu);
    invstd[c] = T(1.0 / std::sqrt(var + eps));
    scale[c] = invstd[c] * (weight.defined() ? weight.data()[c] : T(1));
    shift[c] = (bias.defined() ? bias.data()[c] : T(0)) - mean[c] * scale[c];
  }
  // y = x * scale + shift, in memory order
#pragma omp parallel for schedule(static)
  for (int64_t nc = 0; nc < N * C; ++nc) {
    const T* in = xd + nc * hw;
    T* out = yd + nc * hw;
    const T a = scale[nc % C], b = shift[nc % C];
    for (int64_t i = 0; i < hw; ++i) out[i] = in[i] * a + b;
  }

  std::vector<Tensor<T>> inputs{x};
  if (weight.defined()) inputs.push_back(weight);
  if (bias.defined()) inputs.push_back(bias);
  const bool need_x = x.requires_grad();
  const bool need_w = weight.defined() && weight.requires_grad();
  const bool need_b = bias.defined() && bias.requires_grad();
  return record(
      op, y, std::move(inputs),
      [x_ = x.detach(), w_ = weight.defined() ? weight.detach() : Tensor<T>(),
       has_b = bias.defined(), mean = std::move(mean), invstd = std::move(invstd), training,
       need_x, need_w, need_b, N, C, hw, M](const Tensor<T>& gy) {
        Tensor<T> gx = need_x ? Tensor<T>::empty(x_.shape()) : Tensor<T>();
        Tensor<T> gw = need_w ? Tensor<T>::empty({C}) : Tensor<T>();
        Tensor<T> gb = need_b ? Tensor<T>::empty({C}) : Tensor<T>();
        const T* xd = x_.data();
        const T* g = gy.data();
        // per plane (memory order): sum of gy and sum of gy * (x - mean)
        std::vector<double> plane_g(static_cast<size_t>(N * C)), plane_gx(plane_g.size());
#pragma omp parallel for schedule(static)
        for (int64_t nc = 0; nc < N * C; ++nc) {
          const ConstPlane xp(xd + nc * hw, hw), gp(g + nc * hw, hw);
          plane_g[nc] = double(gp.sum());
          plane_gx[nc] = double((gp * (xp - mean[nc % C])).sum());
        }
        // per channel: gx = k * (gy - mean_g - (x - mean) * proj), with
        //   eval:  k = w * invstd, mean_g = proj = 0
        //   train: mean_g = mean(gy), proj = mean(gy * (x - mean)) * invstd^2, because the
        //          batch mean and variance depend on x too
        std::vector<T> k(C), mean_g(C), proj(C);
        for (int64_t c = 0; c < C; ++c) {
          double sum_g = 0, sum_gx = 0;
          for (int64_t n = 0; n < N; ++n) sum_g += plane_g[n * C + c], sum_gx += plane_gx[n * C + c];
          const T is = invstd[c];
          if (need_b) gb.data()[c] = T(sum_g);
          if (need_w) gw.data()[c] = T(sum_gx * is);  // sum of gy * xhat
          k[c] = (w_.defined() ? w_.data()[c] : T(1)) * is;
          mean_g[c] = training ? T(sum_g / double(M)) : T(0);
          proj[c] = training ? T(sum_gx / double(M)) * is * is : T(0);
        }
        if (need_x) {
#pragma omp parallel for schedule(static)
          for (int64_t nc = 0; nc < N * C; ++nc) {
            const int64_t c = nc % C;
            const T* xp = xd + nc * hw;
            const T* gp = g + nc * hw;
            T* out = gx.data() + nc * hw;
            const T kc = k[c], mg = mean_g[c], pc = proj[c], mu = mean[c];
            for (int64_t i = 0; i < hw; ++i) out[i] = kc * (gp[i] - mg - (xp[i] - mu) * pc);
          }
        }
        std::vector<Tensor<T>> grads{gx};
        if (w_.defined()) grads.push_back(gw);
        if (has_b) grads.push_back(gb);
        return grads;
      });
}

}  // namespace trit
