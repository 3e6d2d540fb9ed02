// Depthwise convolution (kernels/depthwise.hpp through conv2d with groups == C == O):
// forward values and all gradients against PyTorch (tests/reference/make_depthwise.py) for
// the 3x3, padding 1, stride 1 and 2 geometries of MobileNetV2 on plane sizes that take each
// loop form (rows of 16 and 32 written straight out, short rows, odd sizes, 1x1 planes);
// gradcheck in double; and the kernels against plain bounds-tested loops over many
// geometries, fast path and general path, in float and double, with 1 and 2 threads.
#include <doctest/doctest.h>

#include <omp.h>

#include <string>
#include <vector>

#include <trit/autograd/gradcheck.hpp>
#include <trit/core.hpp>
#include <trit/kernels/depthwise.hpp>
#include <trit/ops/conv.hpp>

#include "reference.hpp"

using trit::Tensor;
using trit::kernels::ConvGeometry;
using trit::testing::get;
using trit::testing::max_abs_diff;

namespace {

const auto& reference() {
  static const auto ref = trit::testing::load_reference("depthwise.txt");
  return ref;
}

const std::vector<std::string> kCases = {"s1_5x6",   "s1_4x4", "s1_1x1", "s1_32x32", "s1_16x17",
                                         "s2_8x8",   "s2_5x7", "s2_1x2", "s2_32x32"};

trit::Conv2dOptions options_of(const std::string& name, int64_t C) {
  const int64_t stride = int64_t(get(reference(), "dw." + name + ".stride")[0]);
  return trit::Conv2dOptions{stride, 1, 1, C};
}

template <class T>
void check_against_torch(const std::string& name, double tol) {
  const std::string k = "dw." + name + ".";
  auto x = get(reference(), k + "x").to<T>().set_requires_grad();
  auto w = get(reference(), k + "w").to<T>().set_requires_grad();
  Tensor<T> b;
  if (reference().count(k + "b")) b = get(reference(), k + "b").to<T>().set_requires_grad();
  Tensor<T> y = trit::conv2d(x, w, b, options_of(name, x.size(1)));
  CHECK_MESSAGE(max_abs_diff(y, get(reference(), k + "y")) < tol, name, " forward");
  y.backward(get(reference(), k + "gy").to<T>());
  CHECK_MESSAGE(max_abs_diff(x.grad(), get(reference(), k + "gx")) < tol, name, " grad x");
  CHECK_MESSAGE(max_abs_diff(w.grad(), get(reference(), k + "gw")) < tol, name, " grad w");
  if (b.defined())
    CHECK_MESSAGE(max_abs_diff(b.grad(), get(reference(), k + "gb")) < tol, name, " grad b");
}

// Plain loops with a bounds test per tap: y, gx and gw of a depthwise convolution.
struct Naive {
  std::vector<double> y, gx, gw;
};
Naive naive(const std::vector<double>& x, const std::vector<double>& w,
            const std::vector<double>& bias, const std::vector<double>& gy, int64_t N,
            const ConvGeometry& g) {
  const int64_t C = g.C, H = g.H, W = g.W, OH = g.out_h(), OW = g.out_w();
  Naive r{std::vector<double>(N * C * OH * OW, 0.0), std::vector<double>(x.size(), 0.0),
          std::vector<double>(w.size(), 0.0)};
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          const int64_t o = ((n * C + c) * OH + oh) * OW + ow;
          double s = bias.empty() ? 0.0 : bias[c];
          for (int64_t kh = 0; kh < g.KH; ++kh)
            for (int64_t kw = 0; kw < g.KW; ++kw) {
              const int64_t ih = oh * g.stride + kh * g.dilation - g.padding;
              const int64_t iw = ow * g.stride + kw * g.dilation - g.padding;
              if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
              const int64_t i = ((n * C + c) * H + ih) * W + iw, f = (c * g.KH + kh) * g.KW + kw;
              s += w[f] * x[i];
              r.gx[i] += w[f] * gy[o];
              r.gw[f] += x[i] * gy[o];
            }
          r.y[o] = s;
        }
  return r;
}

template <class T>
std::vector<T> random_values(int64_t n, trit::Generator& gen) {
  Tensor<double> t = Tensor<double>::randn({n}, gen);
  std::vector<T> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = T(t[i]);
  return v;
}

template <class T>
double max_diff(const std::vector<T>& a, const std::vector<double>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a[i]) - b[i]));
  return m;
}

// The three kernels against the plain loops for one geometry, in precision T.
template <class T>
void check_kernels(int64_t N, const ConvGeometry& g, bool with_bias, double tol,
                   trit::Generator& gen) {
  const int64_t OH = g.out_h(), OW = g.out_w();
  auto x = random_values<T>(N * g.C * g.H * g.W, gen);
  auto w = random_values<T>(g.C * g.KH * g.KW, gen);
  auto b = random_values<T>(with_bias ? g.C : 0, gen);
  auto gy = random_values<T>(N * g.C * OH * OW, gen);
  auto as_double = [](const std::vector<T>& v) { return std::vector<double>(v.begin(), v.end()); };
  const Naive ref = naive(as_double(x), as_double(w), as_double(b), as_double(gy), N, g);
  // outputs start as NaN: every value must be written
  std::vector<T> y(ref.y.size(), T(NAN)), gx(x.size(), T(NAN)), gw(w.size(), T(NAN));
  trit::kernels::depthwise_forward(x.data(), w.data(), with_bias ? b.data() : nullptr, N, g,
                                   y.data());
  trit::kernels::depthwise_backward_input(gy.data(), w.data(), N, g, gx.data());
  trit::kernels::depthwise_backward_weight(gy.data(), x.data(), N, g, gw.data());
  const std::string what = "N " + std::to_string(N) + " C " + std::to_string(g.C) + " " +
                           std::to_string(g.H) + "x" + std::to_string(g.W) + " k" +
                           std::to_string(g.KH) + "x" + std::to_string(g.KW) + " s" +
                           std::to_string(g.stride) + " p" + std::to_string(g.padding) + " d" +
                           std::to_string(g.dilation);
  CHECK_MESSAGE(max_diff(y, ref.y) < tol, what, " forward");
  CHECK_MESSAGE(max_diff(gx, ref.gx) < tol, what, " grad input");
  CHECK_MESSAGE(max_diff(gw, ref.gw) < tol * N * OH * OW, what, " grad weight");
}

ConvGeometry geometry(int64_t C, int64_t H, int64_t W, int64_t K, int64_t stride,
                      int64_t padding, int64_t dilation) {
  ConvGeometry g;
  g.C = C;
  g.H = H;
  g.W = W;
  g.KH = g.KW = K;
  g.stride = stride;
  g.padding = padding;
  g.dilation = dilation;
  return g;
}

}  // namespace

TEST_CASE("depthwise conv2d matches PyTorch in double and float") {
  for (const auto& name : kCases) {
    check_against_torch<double>(name, 1e-10);
    check_against_torch<float>(name, 2e-4);
  }
}

TEST_CASE("depthwise conv2d passes gradcheck at stride 1 and 2") {
  for (const std::string name : {"s1_5x6", "s1_4x4", "s2_5x7", "s2_8x8"}) {
    const std::string k = "dw." + name + ".";
    std::vector<Tensor<double>> in{get(reference(), k + "x").clone().set_requires_grad(),
                                   get(reference(), k + "w").clone().set_requires_grad()};
    if (reference().count(k + "b")) in.push_back(get(reference(), k + "b").clone().set_requires_grad());
    const auto opt = options_of(name, in[0].size(1));
    auto r = trit::gradcheck(
        [&](const std::vector<Tensor<double>>& v) {
          return trit::conv2d(v[0], v[1], v.size() > 2 ? v[2] : Tensor<double>(), opt);
        },
        in);
    CHECK_MESSAGE(r.ok, name, "\n", r.report);
  }
}

TEST_CASE("depthwise kernels equal plain loops on every path, 1 and 2 threads") {
  trit::Generator gen(11);
  const int saved = omp_get_max_threads();
  for (int threads : {1, 2}) {
    omp_set_num_threads(threads);
    // fast path: 3x3, padding 1, dilation 1, stride 1 or 2, sizes around the vector width
    for (int64_t stride : {1, 2})
      for (int64_t H : {1, 2, 3, 8, 9, 32})
        for (int64_t W : {1, 2, 5, 16, 17, 32, 33}) {
          check_kernels<double>(3, geometry(5, H, W, 3, stride, 1, 1), (H + W) % 2 == 0, 1e-12,
                                gen);
          check_kernels<float>(2, geometry(3, H, W, 3, stride, 1, 1), true, 1e-4, gen);
        }
    // small planes (H*W <= 64 and W <= 15, stride 1; their own vector path where the
    // machine has AVX-512): every shape up to 8x8 and just past 64 values, every width that
    // path has an instance for (up to 15) and the first past it, more images than the
    // weight gradient's block of 8 and more channels than threads
    for (int64_t H = 1; H <= 9; ++H)
      for (int64_t W : {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}) {
        if (W > 9 && H > 5) continue;  // past 64 values: the flat path, tested above
        check_kernels<float>(9, geometry(5, H, W, 3, 1, 1, 1), H % 2 == 0, 1e-4, gen);
        check_kernels<double>(2, geometry(3, H, W, 3, 1, 1, 1), true, 1e-12, gen);
      }
    // general path: other paddings, dilations, strides and filter sizes
    const ConvGeometry general[] = {
        geometry(4, 7, 6, 3, 1, 0, 1), geometry(4, 7, 6, 3, 1, 2, 2),
        geometry(3, 9, 8, 3, 3, 1, 1), geometry(3, 9, 8, 5, 2, 2, 1),
        geometry(2, 6, 7, 1, 1, 0, 1), geometry(2, 10, 10, 3, 2, 0, 1),
        geometry(2, 8, 8, 3, 1, 1, 2)};
    for (const auto& g : general) {
      check_kernels<double>(2, g, true, 1e-12, gen);
      check_kernels<float>(3, g, false, 1e-4, gen);
    }
  }
  omp_set_num_threads(saved);
}
