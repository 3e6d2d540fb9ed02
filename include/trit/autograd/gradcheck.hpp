#pragma once
// gradcheck: compares the gradients autograd computes for a function against central finite
// differences, in double precision. Use it on every new op (trit's tests do).
//
//   auto f = [](const std::vector<Tensor<double>>& in) { return my_op(in[0], in[1]); };
//   GradcheckResult r = gradcheck(f, {x, w});   // x, w: Tensor<double>, requires_grad set
//   CHECK_MESSAGE(r.ok, r.report);
//
// The output y = f(inputs) may have any shape: the check differentiates the scalar
// L = sum(v * y) for a fixed random v, so every output element is exercised. Only inputs
// with requires_grad() are checked. Inputs are perturbed in place and restored.
#include <cmath>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "trit/autograd/grad_mode.hpp"
#include "trit/core/tensor.hpp"

namespace trit {

struct GradcheckOptions {
  double eps = 1e-6;   // finite-difference step
  double atol = 1e-5;  // pass when |analytic - numeric| <= atol + rtol * |numeric|
  double rtol = 1e-3;
  uint64_t seed = 1234;  // for the projection v
};

struct GradcheckResult {
  bool ok = true;
  double max_abs_error = 0.0;
  std::string report;  // the first mismatches, "input 1 [5]: analytic 0.3 numeric 0.31"
};

using GradcheckFunction = std::function<Tensor<double>(const std::vector<Tensor<double>>&)>;

inline GradcheckResult gradcheck(const GradcheckFunction& f, std::vector<Tensor<double>> inputs,
                                 const GradcheckOptions& options = {}) {
  GradcheckResult result;
  std::ostringstream report;
  for (auto& x : inputs) x.zero_grad();

  // Analytic: backward of L = sum(v * y) seeds the graph with v.
  Tensor<double> y = f(inputs);
  Generator gen(options.seed);
  Tensor<double> v = Tensor<double>::uniform(y.shape(), 0.5, 1.5, gen);
  check(y.requires_grad(), "gradcheck", "the function's output does not require a gradient");
  y.backward(v);

  auto loss = [&]() {
    NoGradGuard no_grad;
    Tensor<double> out = f(inputs);
    double l = 0;
    for (int64_t i = 0; i < out.numel(); ++i) l += v[i] * out[i];
    return l;
  };

  int mismatches = 0;
  for (size_t k = 0; k < inputs.size(); ++k) {
    Tensor<double>& x = inputs[k];
    if (!x.requires_grad()) continue;
    Tensor<double> analytic = x.grad();
    for (int64_t i = 0; i < x.numel(); ++i) {
      double saved = x[i];
      x[i] = saved + options.eps;
      double plus = loss();
      x[i] = saved - options.eps;
      double minus = loss();
      x[i] = saved;
      double numeric = (plus - minus) / (2 * options.eps);
      double a = analytic.defined() ? analytic[i] : 0.0;
      double err = std::abs(a - numeric);
      result.max_abs_error = std::max(result.max_abs_error, err);
      if (!(err <= options.atol + options.rtol * std::abs(numeric))) {  // also catches NaN
        result.ok = false;
        if (mismatches++ < 8)
          report << "input " << k << " [" << i << "]: analytic " << a << " numeric " << numeric
                 << "\n";
      }
    }
  }
  if (mismatches > 8) report << "... " << mismatches << " mismatches in all\n";
  result.report = report.str();
  return result;
}

}  // namespace trit
