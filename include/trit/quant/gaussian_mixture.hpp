#pragma once
// GaussianMixture: a two-component 1-d Gaussian mixture q(x) = sum_c lambda_c N(x | mu_c, sigma_c)
// fitted by EM, and the per-weight assignment of focused quantization (FQ, Zhao et al. 2019;
// shared notes on the quantizers, section 3.3).
//
//   GaussianMixture g = fit_gaussian_mixture(values);          // or with per-value weights
//   int c = sample_component(g, x, rng);                        // FQ's assignment m_x
//
// Component 0 is the lower one ("negative", mu[0] <= mu[1]), component 1 the upper one.
//
// Fit (maximum likelihood, weighted EM):
// - Initialisation as FQ: component 0 from the negative values, component 1 from the positive
//   ones (mean and standard deviation of each half), lambda = 1/2 each. Zeros count half to
//   each. When one half is empty (one-signed data) the values are split at their weighted
//   median instead; when a split side is still empty both components start at the mean and
//   standard deviation of all values.
// - At most `max_iterations` EM rounds; stops when the mean log-likelihood changes by less than
//   tolerance * max(1, |log-likelihood|).
// - Never NaN on finite input: responsibilities are computed in the log domain, every sigma is
//   kept >= sigma_floor (min_sigma_ratio times the standard deviation of all values, and at
//   least 1e-12 * max(1, max|x|)), every lambda >= 1e-12, and a component that loses all its
//   mass keeps its mean and spread. All-equal values give mu = that value for both components;
//   an empty input gives lambda = 1/2, mu = 0, sigma = 1 (iterations 0).
// - Non-finite values or negative weights throw trit::Error.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <span>
#include <utility>
#include <vector>

#include "trit/core/error.hpp"
#include "trit/core/rng.hpp"

namespace trit::quant {

struct GaussianMixture {
  std::array<double, 2> lambda{0.5, 0.5};  // mixing weights, sum 1
  std::array<double, 2> mu{0.0, 0.0};      // means, mu[0] <= mu[1]
  std::array<double, 2> sigma{1.0, 1.0};   // standard deviations, > 0
  int iterations = 0;                      // EM rounds run
  bool converged = false;                  // stopped by the tolerance, not the cap
  double log_likelihood = 0.0;             // mean (weighted) log q(x) over the fitted values

  // log(lambda_c N(x | mu_c, sigma_c)), without the shared -log sqrt(2 pi).
  double log_joint(int c, double x) const {
    const double z = (x - mu[c]) / sigma[c];
    return std::log(lambda[c]) - std::log(sigma[c]) - 0.5 * z * z;
  }
  // P(component 1 | x) = lambda_1 N_1(x) / q(x), in [0, 1], never NaN for finite x.
  double posterior_upper(double x) const {
    const double d = log_joint(0, x) - log_joint(1, x);  // log of N_0-part over N_1-part
    if (std::isnan(d)) return 0.5;
    if (d > 700) return 0.0;
    return 1.0 / (1.0 + std::exp(d));
  }
  // log q(x), the mixture's log density.
  double log_density(double x) const {
    const double a = log_joint(0, x), b = log_joint(1, x), m = std::max(a, b);
    return m + std::log(std::exp(a - m) + std::exp(b - m)) - 0.5 * std::log(2.0 * M_PI);
  }
};

struct MixtureFitOptions {
  int max_iterations = 100;       // EM rounds at most
  double tolerance = 1e-8;        // relative change of the mean log-likelihood to stop
  double min_sigma_ratio = 1e-3;  // sigma floor, as a fraction of the std of all values

  void validate(const char* where) const {
    check(max_iterations >= 1, where, "mixture max_iterations must be >= 1, got ",
          max_iterations);
    check(tolerance > 0 && std::isfinite(tolerance), where,
          "mixture tolerance must be > 0, got ", tolerance);
    check(min_sigma_ratio > 0 && min_sigma_ratio < 1, where,
          "mixture min_sigma_ratio must be in (0, 1), got ", min_sigma_ratio);
  }
};

namespace detail {

// Weighted mean and (population) standard deviation of x with weights `weight`; (0, 0) when
// the weights sum to 0.
inline std::pair<double, double> weighted_moments(std::span<const double> x,
                                                  const std::vector<double>& weight) {
  double total = 0, sum = 0;
  for (size_t i = 0; i < x.size(); ++i) total += weight[i], sum += weight[i] * x[i];
  if (total <= 0) return {0.0, 0.0};
  const double mean = sum / total;
  double var = 0;
  for (size_t i = 0; i < x.size(); ++i) var += weight[i] * (x[i] - mean) * (x[i] - mean);
  return {mean, std::sqrt(var / total)};
}

}  // namespace detail

// Fits the two-component mixture to `x`, each value counted with `weights[i]` (all 1 when
// `weights` is empty). See the header comment for the initialisation and the guarantees.
inline GaussianMixture fit_gaussian_mixture(std::span<const double> x,
                                            std::span<const double> weights = {},
                                            const MixtureFitOptions& options = {}) {
  options.validate("fit_gaussian_mixture");
  const size_t n = x.size();
  check(weights.empty() || weights.size() == n, "fit_gaussian_mixture", "got ", weights.size(),
        " weights for ", n, " values");
  std::vector<double> w(n, 1.0);
  double max_abs = 0;
  for (size_t i = 0; i < n; ++i) {
    check(std::isfinite(x[i]), "fit_gaussian_mixture", "value ", i, " is not finite: ", x[i]);
    if (!weights.empty()) {
      check(weights[i] >= 0 && std::isfinite(weights[i]), "fit_gaussian_mixture", "weight ", i,
            " must be finite and >= 0, got ", weights[i]);
      w[i] = weights[i];
    }
    max_abs = std::max(max_abs, std::abs(x[i]));
  }
  GaussianMixture g;
  const double total = std::accumulate(w.begin(), w.end(), 0.0);
  if (n == 0 || total <= 0) return g;

  const auto [all_mean, all_std] = detail::weighted_moments(x, w);
  const double sigma_floor =
      std::max(options.min_sigma_ratio * all_std, 1e-12 * std::max(1.0, max_abs));
  constexpr double lambda_floor = 1e-12;

  // ---- initialisation: negative half -> component 0, positive half -> component 1 ----------
  std::vector<double> w0(n), w1(n);
  double mass0 = 0, mass1 = 0;
  for (size_t i = 0; i < n; ++i) {
    const double share1 = x[i] > 0 ? 1.0 : (x[i] < 0 ? 0.0 : 0.5);
    w0[i] = w[i] * (1 - share1), w1[i] = w[i] * share1;
    mass0 += w0[i], mass1 += w1[i];
  }
  if (mass0 <= 0 || mass1 <= 0) {
    // One-signed data: split at the weighted median (values in sorted order, first half of
    // the mass to component 0).
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), size_t(0));
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return x[a] < x[b]; });
    double seen = 0;
    mass0 = mass1 = 0;
    for (size_t i : order) {
      const bool lower = seen + 0.5 * w[i] <= 0.5 * total;
      seen += w[i];
      w0[i] = lower ? w[i] : 0.0, w1[i] = lower ? 0.0 : w[i];
      mass0 += w0[i], mass1 += w1[i];
    }
  }
  if (mass0 <= 0 || mass1 <= 0) {
    g.mu = {all_mean, all_mean};
    g.sigma = {std::max(all_std, sigma_floor), std::max(all_std, sigma_floor)};
  } else {
    auto [m0, s0] = detail::weighted_moments(x, w0);
    auto [m1, s1] = detail::weighted_moments(x, w1);
    g.mu = {m0, m1};
    g.sigma = {std::max(s0, sigma_floor), std::max(s1, sigma_floor)};
  }
  g.lambda = {0.5, 0.5};

  // ---- EM ---------------------------------------------------------------------------------
  std::vector<double> r(n);  // responsibility of component 1
  double previous = -INFINITY;
  for (int it = 0; it < options.max_iterations; ++it) {
    // E step: responsibilities and the log-likelihood of the current parameters.
    double ll = 0;
    for (size_t i = 0; i < n; ++i) {
      r[i] = g.posterior_upper(x[i]);
      ll += w[i] * g.log_density(x[i]);
    }
    ll /= total;
    g.log_likelihood = ll;
    g.iterations = it;
    if (std::abs(ll - previous) <= options.tolerance * std::max(1.0, std::abs(ll))) {
      g.converged = true;
      break;
    }
    previous = ll;
    // M step, per component; a component without mass keeps its mean and spread.
    for (int c = 0; c < 2; ++c) {
      double mass = 0, sum = 0;
      for (size_t i = 0; i < n; ++i) {
        const double ri = w[i] * (c == 1 ? r[i] : 1.0 - r[i]);
        mass += ri, sum += ri * x[i];
      }
      g.lambda[c] = mass / total;
      if (mass <= lambda_floor * total) continue;
      const double mean = sum / mass;
      double var = 0;
      for (size_t i = 0; i < n; ++i)
        var += w[i] * (c == 1 ? r[i] : 1.0 - r[i]) * (x[i] - mean) * (x[i] - mean);
      g.mu[c] = mean;
      g.sigma[c] = std::max(std::sqrt(var / mass), sigma_floor);
    }
    g.lambda[0] = std::max(g.lambda[0], lambda_floor);
    g.lambda[1] = std::max(g.lambda[1], lambda_floor);
    const double s = g.lambda[0] + g.lambda[1];
    g.lambda[0] /= s, g.lambda[1] /= s;
    g.iterations = it + 1;
  }
  if (g.mu[0] > g.mu[1]) {
    std::swap(g.mu[0], g.mu[1]);
    std::swap(g.sigma[0], g.sigma[1]);
    std::swap(g.lambda[0], g.lambda[1]);
  }
  return g;
}

inline GaussianMixture fit_gaussian_mixture(const std::vector<double>& x,
                                            const MixtureFitOptions& options = {}) {
  return fit_gaussian_mixture(std::span<const double>(x), {}, options);
}

// FQ's assignment m_x (notes 3.3 step 3): a draw from the categorical posterior
// lambda_c N(x | mu_c, sigma_c) / q(x), not its argmax. Returns 0 or 1.
inline int sample_component(const GaussianMixture& g, double x, Generator& gen) {
  return gen.uniform() < g.posterior_upper(x) ? 1 : 0;
}

// The posterior's argmax (ties go to component 1), the deterministic alternative.
inline int likeliest_component(const GaussianMixture& g, double x) {
  return g.posterior_upper(x) >= 0.5 ? 1 : 0;
}

// FQ's Wasserstein separation of the two components (notes 3.4):
//   W = ((mu_0 - mu_1)^2 + (sigma_0 - sigma_1)^2) / variance
// with `variance` the variance of the whole layer. 0 when variance <= 0 (a single value).
inline double wasserstein_separation(const GaussianMixture& g, double variance) {
  if (!(variance > 0)) return 0.0;
  const double dm = g.mu[0] - g.mu[1], ds = g.sigma[0] - g.sigma[1];
  return (dm * dm + ds * ds) / variance;
}

}  // namespace trit::quant
