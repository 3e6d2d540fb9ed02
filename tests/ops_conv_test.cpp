// conv2d (ops/conv.hpp) and its kernels (kernels/im2col.hpp, kernels/depthwise.hpp): forward
// values and gradients against PyTorch (tests/reference/make_ops_image.py), gradcheck in
// double for every path (im2col + GEMM, grouped, depthwise, pointwise), chunking over the
// batch, the narrow-GEMM paths against plain loops on odd shapes at 1 and 2 threads, skipped
// gradients, and the errors bad shapes raise.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include <trit/core.hpp>
#include <trit/kernels/im2col.hpp>
#include <trit/ops/conv.hpp>

#include "reference.hpp"

using trit::Tensor;
using trit::testing::get;
using trit::testing::max_abs_diff;

namespace {

const auto& reference() {
  static const auto ref = trit::testing::load_reference("ops_image.txt");
  return ref;
}

bool has(const std::string& key) { return reference().count(key) > 0; }

trit::Conv2dOptions options_of(const std::string& name) {
  Tensor<double> o = get(reference(), "conv." + name + ".options");
  return trit::Conv2dOptions{int64_t(o[0]), int64_t(o[1]), int64_t(o[2]), int64_t(o[3])};
}

const std::vector<std::string> kCases = {"basic",        "stride2",      "dilation2",
                                         "groups2",      "depthwise",    "depthwise_dil",
                                         "pointwise",    "pointwise_g2", "rect_kernel",
                                         "pointwise_s2", "multiplier2"};

// Forward and all gradients of one reference case in precision T, within tol of PyTorch.
template <class T>
void check_against_torch(const std::string& name, double tol) {
  const std::string k = "conv." + name + ".";
  auto x = get(reference(), k + "x").to<T>().set_requires_grad();
  auto w = get(reference(), k + "w").to<T>().set_requires_grad();
  Tensor<T> b;
  if (has(k + "b")) b = get(reference(), k + "b").to<T>().set_requires_grad();
  Tensor<T> y = trit::conv2d(x, w, b, options_of(name));
  CHECK_MESSAGE(max_abs_diff(y, get(reference(), k + "y")) < tol, name, " forward");
  y.backward(get(reference(), k + "gy").to<T>());
  CHECK_MESSAGE(max_abs_diff(x.grad(), get(reference(), k + "gx")) < tol, name, " grad x");
  CHECK_MESSAGE(max_abs_diff(w.grad(), get(reference(), k + "gw")) < tol, name, " grad w");
  if (b.defined())
    CHECK_MESSAGE(max_abs_diff(b.grad(), get(reference(), k + "gb")) < tol, name, " grad b");
}

}  // namespace

TEST_CASE("conv2d matches PyTorch in double and float") {
  for (const auto& name : kCases) {
    check_against_torch<double>(name, 1e-10);
    check_against_torch<float>(name, 2e-4);
  }
}

TEST_CASE("conv2d matches PyTorch on every forced path") {
  // TRIT_CONV_PATH forces the per-image path (with or without its implicit-im2col forward) or
  // the batch-chunk path, which the small reference shapes would not all pick on their own.
  const char* before = std::getenv("TRIT_CONV_PATH");
  const std::string saved = before ? before : "";
  for (const char* path : {"image", "implicit", "chunk"}) {
    ::setenv("TRIT_CONV_PATH", path, 1);
    for (const auto& name : kCases) {
      check_against_torch<double>(name, 1e-10);
      check_against_torch<float>(name, 2e-4);
    }
  }
  if (before) ::setenv("TRIT_CONV_PATH", saved.c_str(), 1);
  else ::unsetenv("TRIT_CONV_PATH");
}

TEST_CASE("conv2d passes gradcheck on every path") {
  for (const auto& name : kCases) {
    const std::string k = "conv." + name + ".";
    std::vector<Tensor<double>> in{get(reference(), k + "x").clone().set_requires_grad(),
                                   get(reference(), k + "w").clone().set_requires_grad()};
    if (has(k + "b")) in.push_back(get(reference(), k + "b").clone().set_requires_grad());
    const auto opt = options_of(name);
    auto r = trit::gradcheck(
        [&](const std::vector<Tensor<double>>& v) {
          return trit::conv2d(v[0], v[1], v.size() > 2 ? v[2] : Tensor<double>(), opt);
        },
        in);
    CHECK_MESSAGE(r.ok, name, "\n", r.report);
  }
}

TEST_CASE("conv2d over many batch chunks equals image-by-image") {
  // 24 images of 16 channels at 32x32 with a 3x3 kernel exceed the column budget, so the
  // im2col path runs several chunks (and a short last one); each image alone must agree.
  trit::Generator gen(3);
  auto x = Tensor<double>::randn({24, 16, 32, 32}, gen).set_requires_grad();
  auto w = Tensor<double>::randn({8, 16, 3, 3}, gen).set_requires_grad();
  auto b = Tensor<double>::randn({8}, gen);
  trit::Conv2dOptions opt{1, 1, 1, 1};
  auto plan = trit::detail::plan_conv2d(x.shape(), w.shape(), true, b.shape(), opt);
  REQUIRE(plan.chunk < 24);
  REQUIRE(24 % plan.chunk != 0);
  auto y = trit::conv2d(x, w, b, opt);
  auto gy = Tensor<double>::randn(y.shape(), gen);
  y.backward(gy);
  Tensor<double> gw_sum = Tensor<double>::zeros(w.shape());
  for (int64_t n = 0; n < 24; ++n) {
    auto xn = x.slice_rows(n, n + 1).clone().set_requires_grad();
    auto wn = w.detach().clone().set_requires_grad();
    auto yn = trit::conv2d(xn, wn, b, opt);
    CHECK(max_abs_diff(yn, y.slice_rows(n, n + 1).clone()) < 1e-12);
    yn.backward(gy.slice_rows(n, n + 1).clone());
    CHECK(max_abs_diff(xn.grad(), x.grad().slice_rows(n, n + 1).clone()) < 1e-12);
    gw_sum.array() += wn.grad().array();
  }
  CHECK(max_abs_diff(w.grad(), gw_sum) < 1e-9);
}

TEST_CASE("conv2d computes only the gradients that are needed") {
  trit::Generator gen(5);
  auto x = Tensor<double>::randn({2, 3, 5, 5}, gen);  // a first layer: no grad for x
  auto w = Tensor<double>::randn({4, 3, 3, 3}, gen).set_requires_grad();
  auto b = Tensor<double>::randn({4}, gen);  // bias without requires_grad
  for (int64_t groups : {1, 3}) {
    auto wg = groups == 1 ? w : Tensor<double>::randn({3, 1, 3, 3}, gen).set_requires_grad();
    auto bg = groups == 1 ? b : Tensor<double>::randn({3}, gen);
    auto y = trit::conv2d(x, wg, bg, trit::Conv2dOptions{1, 1, 1, groups});
    y.backward(Tensor<double>::ones(y.shape()));
    CHECK_FALSE(x.grad().defined());
    CHECK_FALSE(bg.grad().defined());
    CHECK(wg.grad().defined());
  }
  trit::NoGradGuard no_grad;
  CHECK_FALSE(trit::conv2d(x, w, b).requires_grad());
}

TEST_CASE("im2col and col2im are adjoint") {
  // <im2col(x), c> == <x, col2im(c)> for random x and c, over strides, padding, dilation.
  trit::Generator gen(11);
  for (auto [stride, pad, dil] : std::vector<std::array<int64_t, 3>>{
           {1, 0, 1}, {2, 1, 1}, {1, 2, 2}, {3, 3, 1}, {2, 0, 2}}) {
    trit::kernels::ConvGeometry g{2, 7, 6, 3, 2, stride, pad, dil};
    const int64_t P = g.out_h() * g.out_w(), ld = P + 3;  // a row stride wider than P
    auto x = Tensor<double>::randn({g.C, g.H, g.W}, gen);
    auto c = Tensor<double>::randn({g.col_rows(), ld}, gen);
    auto col = Tensor<double>::zeros({g.col_rows(), ld});
    auto back = Tensor<double>::empty({g.C, g.H, g.W});
    trit::kernels::im2col(x.data(), g, col.data(), ld);
    trit::kernels::col2im(c.data(), ld, g, back.data());
    double lhs = 0, rhs = 0;
    for (int64_t r = 0; r < g.col_rows(); ++r)
      for (int64_t p = 0; p < P; ++p) lhs += col(r, p) * c(r, p);
    for (int64_t i = 0; i < x.numel(); ++i) rhs += x[i] * back[i];
    CHECK(lhs == doctest::Approx(rhs).epsilon(1e-12));
  }
}

TEST_CASE("pad_channels_last puts each pixel's channels together inside a zero frame") {
  // channel counts and widths around the 8x8 register blocks of its transpose
  for (int64_t C : {1, 7, 8, 9, 17, 24})
    for (int64_t W : {3, 8, 13, 16})
      for (int64_t pad : {0, 1, 2}) {
        const int64_t H = 5, Hp = H + 2 * pad, Wp = W + 2 * pad;
        std::vector<float> x(size_t(C * H * W));
        for (size_t i = 0; i < x.size(); ++i) x[i] = float(i % 97) - 40.5f;
        std::vector<float> xh(size_t(Hp * Wp * C), -1.0f);
        trit::kernels::ConvGeometry g{C, H, W, 3, 3, 1, pad, 1};
        trit::kernels::pad_channels_last(x.data(), g, xh.data());
        int64_t wrong = 0;
        for (int64_t hp = 0; hp < Hp; ++hp)
          for (int64_t wp = 0; wp < Wp; ++wp)
            for (int64_t c = 0; c < C; ++c) {
              const int64_t h = hp - pad, w = wp - pad;
              const float want =
                  h >= 0 && h < H && w >= 0 && w < W ? x[size_t((c * H + h) * W + w)] : 0.0f;
              wrong += xh[size_t((hp * Wp + wp) * C + c)] != want;
            }
        CHECK_MESSAGE(wrong == 0, "C ", C, " W ", W, " padding ", pad);
      }
}

TEST_CASE("conv2d rejects bad shapes naming the op and the shapes") {
  auto x = Tensor<float>::zeros({2, 4, 5, 5});
  auto check_error = [](auto&& f, const std::string& needle) {
    try {
      f();
      FAIL("no error for ", needle);
    } catch (const trit::Error& e) {
      CHECK(e.where() == "conv2d");
      CHECK_MESSAGE(std::string(e.what()).find(needle) != std::string::npos, e.what());
    }
  };
  check_error([&] { trit::conv2d(x, Tensor<float>::zeros({3, 3, 3, 3})); }, "[2, 4, 5, 5]");
  check_error([&] { trit::conv2d(x, Tensor<float>::zeros({3, 2, 3, 3}), {}, {1, 0, 1, 2}); },
              "groups 2 must divide");
  check_error([&] { trit::conv2d(x, Tensor<float>::zeros({4, 4, 3, 3}), {}, {1, 0, 1, 3}); },
              "groups 3");
  check_error([&] { trit::conv2d(x, Tensor<float>::zeros({4, 4, 7, 7})); }, "larger than");
  check_error([&] { trit::conv2d(x, Tensor<float>::zeros({4, 4, 3, 3}), {}, {1, 0, 3, 1}); },
              "larger than");
  check_error([&] { trit::conv2d(x.with_shape({8, 5, 5}), Tensor<float>::zeros({4, 4, 3, 3})); },
              "(N, C, H, W)");
  check_error([&] { trit::conv2d(x, Tensor<float>::zeros({4, 4, 3})); }, "weight");
  check_error([&] { trit::conv2d(x, Tensor<float>::zeros({4, 4, 3, 3}), Tensor<float>::zeros({3})); },
              "bias");
  check_error([&] { trit::conv2d(x, Tensor<float>::zeros({4, 4, 3, 3}), {}, {0, 0, 1, 1}); },
              "stride");
}

namespace {

// Plain-loop conv2d (groups 1) in double: y, and the gradients gx, gw for a given gy.
struct NaiveConv {
  Tensor<double> y, gx, gw;
};
NaiveConv naive_conv(const Tensor<double>& x, const Tensor<double>& w, const Tensor<double>& gy,
                     const trit::Conv2dOptions& o) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t O = w.size(0), KH = w.size(2), KW = w.size(3);
  const int64_t OH = gy.size(2), OW = gy.size(3);
  NaiveConv r{Tensor<double>::zeros(gy.shape()), Tensor<double>::zeros(x.shape()),
              Tensor<double>::zeros(w.shape())};
  for (int64_t n = 0; n < N; ++n)
    for (int64_t oc = 0; oc < O; ++oc)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow)
          for (int64_t c = 0; c < C; ++c)
            for (int64_t kh = 0; kh < KH; ++kh)
              for (int64_t kw = 0; kw < KW; ++kw) {
                const int64_t ih = oh * o.stride - o.padding + kh * o.dilation;
                const int64_t iw = ow * o.stride - o.padding + kw * o.dilation;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                const int64_t xi = ((n * C + c) * H + ih) * W + iw;
                const int64_t wi = ((oc * C + c) * KH + kh) * KW + kw;
                const int64_t yi = ((n * O + oc) * OH + oh) * OW + ow;
                r.y[yi] += x[xi] * w[wi];
                r.gx[xi] += gy[yi] * w[wi];
                r.gw[wi] += gy[yi] * x[xi];
              }
  return r;
}

// Largest |a - b| relative to the largest |b|.
double rel_diff(const Tensor<double>& a, const Tensor<double>& b) {
  double scale = 1e-30;
  for (int64_t i = 0; i < b.numel(); ++i) scale = std::max(scale, std::abs(b[i]));
  return max_abs_diff(a, b) / scale;
}

// For one test's scope: conv2d picks its paths by shape (TRIT_CONV_PATH unset), and the
// thread count and TRIT_CONV_PATH are put back as they were at the end.
class PathsChosenByShape {
 public:
  PathsChosenByShape() : threads_(trit::get_num_threads()) {
    const char* path = std::getenv("TRIT_CONV_PATH");
    had_path_ = path != nullptr;
    if (path) path_ = path;
    ::unsetenv("TRIT_CONV_PATH");
  }
  ~PathsChosenByShape() {
    trit::set_num_threads(threads_);
    if (had_path_) ::setenv("TRIT_CONV_PATH", path_.c_str(), 1);
  }
  PathsChosenByShape(const PathsChosenByShape&) = delete;
  PathsChosenByShape& operator=(const PathsChosenByShape&) = delete;

 private:
  int threads_;
  bool had_path_ = false;
  std::string path_;
};

// One conv2d geometry of the tests below: input and weight shapes, options.
struct ConvCase {
  trit::Shape x, w;
  trit::Conv2dOptions o;
};

}  // namespace

TEST_CASE("conv2d's narrow GEMM paths equal plain loops on odd shapes, at 1 and 2 threads") {
  // The channels-last weight gradient (segments of KW*C taps, or C with dilation; output
  // channels not a multiple of the register tile; partial panels; batch chunks with a short
  // last one; split by images or, with a large gradient, by output rows) and the forward
  // with K > 4096 cut into blocks (512 input channels), and a pointwise conv, whose forward
  // and grad input run gemm_narrow on the images in place; in double and float.
  const std::vector<ConvCase> cases = {
      {{5, 20, 9, 7}, {13, 20, 3, 3}, {1, 1, 1, 1}},
      {{3, 24, 11, 10}, {10, 24, 3, 3}, {2, 1, 1, 1}},
      {{3, 16, 15, 13}, {12, 16, 3, 3}, {2, 1, 1, 1}},  // per image: grad input via col2im
      {{3, 32, 8, 9}, {9, 32, 3, 3}, {1, 2, 2, 1}},
      {{2, 16, 7, 6}, {6, 16, 3, 2}, {1, 1, 1, 1}},
      {{37, 16, 4, 4}, {17, 16, 3, 3}, {1, 1, 1, 1}},
      {{2, 512, 4, 4}, {9, 512, 3, 3}, {1, 1, 1, 1}},
      {{2, 512, 3, 3}, {300, 512, 3, 3}, {1, 1, 1, 1}},  // a >= 5 MB gradient: split by rows
      {{3, 24, 5, 7}, {11, 24, 1, 1}, {1, 0, 1, 1}},     // pointwise: grad input as a forward
      {{1, 32, 6, 5}, {20, 32, 3, 3}, {1, 1, 1, 1}},     // one image: split by rows
      // a B over kNarrowRowsOuterBytes with hundreds of columns (the column-panel order), in
      // place and through tap offsets
      {{2, 64, 24, 25}, {11, 64, 1, 1}, {1, 0, 1, 1}},
      {{2, 16, 31, 30}, {13, 16, 3, 3}, {1, 1, 1, 1}},
  };
  const PathsChosenByShape paths;
  trit::Generator gen(17);
  for (const ConvCase& c : cases) {
    auto x = Tensor<double>::randn(c.x, gen), w = Tensor<double>::randn(c.w, gen);
    const auto plan = trit::detail::plan_conv2d(c.x, c.w, false, {}, c.o);
    auto gy = Tensor<double>::randn({plan.N, plan.O, plan.OH, plan.OW}, gen);
    const NaiveConv ref = naive_conv(x, w, gy, c.o);
    // (each case's runs of taps fill at least 3/4 of whole SIMD vectors on every ISA; a
    // pointwise conv's weight gradient has its own path, tested below)
    CHECK(trit::detail::gw_channels_last_applies<double>(plan) == !plan.pointwise);
    CHECK(trit::detail::gw_channels_last_applies<float>(plan) == !plan.pointwise);
    for (int threads : {1, 2}) {
      trit::set_num_threads(threads);
      INFO("x ", trit::to_string(c.x), " w ", trit::to_string(c.w), " threads ", threads);
      auto xd = x.clone().set_requires_grad(), wd = w.clone().set_requires_grad();
      auto yd = trit::conv2d(xd, wd, {}, c.o);
      yd.backward(gy);
      CHECK(rel_diff(yd, ref.y) < 1e-12);
      CHECK(rel_diff(xd.grad(), ref.gx) < 1e-12);
      CHECK(rel_diff(wd.grad(), ref.gw) < 1e-12);
      auto xf = x.to<float>().set_requires_grad(), wf = w.to<float>().set_requires_grad();
      auto yf = trit::conv2d(xf, wf, {}, c.o);
      yf.backward(gy.to<float>());
      CHECK(rel_diff(yf.to<double>(), ref.y) < 1e-5);
      CHECK(rel_diff(xf.grad().to<double>(), ref.gx) < 1e-5);
      CHECK(rel_diff(wf.grad().to<double>(), ref.gw) < 1e-5);
    }
  }
}

TEST_CASE("a pointwise conv's weight gradient reads the larger operand in place") {
  // conv2d_weight_grad_pointwise: gy read in place when it has at least as many channels as
  // x, else x; the other transposed with its channels padded to whole SIMD vectors (channel
  // counts below, at, between and above one and two vectors of 8 or 16 lanes), rows not a
  // multiple of the micro-kernel's 8 (or 4), chunks of images (32x32 planes: 2-8 images per
  // chunk, a partial last one), fewer images than threads; 1 and 2 threads. The forward and
  // input gradient are checked too: on 32x32 planes from 33 channels on (4 KiB apart, B over
  // kNarrowRowsOuterBytes), the float forward copies each image's rows narrow_stride apart;
  // on planes of one SIMD vector it runs image pairs (kernels::gemm_narrow_image_pair).
  const std::vector<ConvCase> cases = {
      {{3, 13, 8, 8}, {11, 13, 1, 1}, {1, 0, 1, 1}},    // x larger: gw transposed
      {{3, 5, 4, 4}, {19, 5, 1, 1}, {1, 0, 1, 1}},      // gy larger, 5 -> one padded vector
      {{4, 24, 4, 4}, {40, 24, 1, 1}, {1, 0, 1, 1}},    // 24: a whole and a half panel (AVX-512)
      {{2, 40, 6, 5}, {33, 40, 1, 1}, {1, 0, 1, 1}},    // odd plane, 40 = 2.5 vectors
      // several chunks, a partial last one; with gx, both gradients image by image
      // (conv2d_backward_pointwise_fused: planes a multiple of 4 KiB, O >= C)
      {{9, 16, 32, 32}, {17, 16, 1, 1}, {1, 0, 1, 1}},
      {{3, 5, 32, 32}, {13, 5, 1, 1}, {1, 0, 1, 1}},
      {{7, 48, 32, 32}, {8, 48, 1, 1}, {1, 0, 1, 1}},   // x larger, one image per chunk
      {{1, 12, 8, 8}, {20, 12, 1, 1}, {1, 0, 1, 1}},    // one image: one thread
      // planes of one SIMD vector (16, 8, 4 or 2 values: 4x4 floats under AVX-512, ...) go
      // forward in image pairs, an odd batch ending with one image
      {{5, 24, 4, 4}, {19, 24, 1, 1}, {1, 0, 1, 1}},
      {{5, 12, 2, 4}, {9, 12, 1, 1}, {1, 0, 1, 1}},
      {{3, 12, 2, 2}, {10, 12, 1, 1}, {1, 0, 1, 1}},
      {{4, 7, 1, 2}, {11, 7, 1, 1}, {1, 0, 1, 1}},
      // and in blocks of K over kNarrowPanelBytes (float: AVX-512 at 4x4, SSE at 2x2)
      {{3, 4200, 4, 4}, {5, 4200, 1, 1}, {1, 0, 1, 1}},
      {{3, 17000, 2, 2}, {3, 17000, 1, 1}, {1, 0, 1, 1}},
  };
  const PathsChosenByShape paths;
  trit::Generator gen(19);
  for (const ConvCase& c : cases)
    for (int threads : {1, 2}) {
      trit::set_num_threads(threads);
      INFO("x ", trit::to_string(c.x), " w ", trit::to_string(c.w), " threads ", threads);
      auto x = Tensor<double>::randn(c.x, gen), w = Tensor<double>::randn(c.w, gen);
      const auto plan = trit::detail::plan_conv2d(c.x, c.w, false, {}, c.o);
      CHECK(trit::detail::pointwise_gw_applies(plan));
      auto gy = Tensor<double>::randn({plan.N, plan.O, plan.OH, plan.OW}, gen);
      const NaiveConv ref = naive_conv(x, w, gy, c.o);
      auto xd = x.clone().set_requires_grad(), wd = w.clone().set_requires_grad();
      auto yd = trit::conv2d(xd, wd, {}, c.o);
      yd.backward(gy);
      CHECK(rel_diff(yd, ref.y) < 1e-12);
      CHECK(rel_diff(xd.grad(), ref.gx) < 1e-12);
      CHECK(rel_diff(wd.grad(), ref.gw) < 1e-12);
      auto xf = x.to<float>().set_requires_grad(), wf = w.to<float>().set_requires_grad();
      auto yf = trit::conv2d(xf, wf, {}, c.o);
      yf.backward(gy.to<float>());
      CHECK(rel_diff(yf.to<double>(), ref.y) < 1e-5);
      CHECK(rel_diff(xf.grad().to<double>(), ref.gx) < 1e-5);
      CHECK(rel_diff(wf.grad().to<double>(), ref.gw) < 1e-5);
    }
}

TEST_CASE("conv2d measures its output planes' moments on every path, as measured afterwards") {
  // Each case takes one path of conv2d_forward; the moments it measures while writing the
  // output must be the bits kernels::moments_of_planes gives on the finished output.
  struct Case {
    const char* path;
    ConvCase conv;
  };
  const std::vector<Case> cases = {
      {"pointwise, by image", {{4, 8, 8, 8}, {12, 8, 1, 1}, {1, 0, 1, 1}}},
      {"pointwise, one image", {{1, 8, 8, 8}, {12, 8, 1, 1}, {1, 0, 1, 1}}},
      {"3x3 implicit", {{3, 8, 16, 16}, {10, 8, 3, 3}, {1, 1, 1, 1}}},
      {"3x3 stride 2, by image", {{3, 8, 17, 17}, {10, 8, 3, 3}, {2, 1, 1, 1}}},
      {"3x3 on 4x4, batch chunks", {{5, 8, 4, 4}, {10, 8, 3, 3}, {1, 1, 1, 1}}},
      {"depthwise 8x8", {{3, 24, 8, 8}, {24, 1, 3, 3}, {1, 1, 1, 24}}},
      {"depthwise 16x16", {{3, 20, 16, 16}, {20, 1, 3, 3}, {1, 1, 1, 20}}},
      {"depthwise stride 2", {{3, 20, 16, 16}, {20, 1, 3, 3}, {2, 1, 1, 20}}},
      {"depthwise 5x5", {{2, 6, 9, 9}, {6, 1, 5, 5}, {1, 2, 1, 6}}},
  };
  const PathsChosenByShape paths;
  trit::Generator gen(31);
  for (const Case& c : cases)
    for (int threads : {1, 2}) {
      trit::set_num_threads(threads);
      INFO("path ", std::string(c.path), ", threads ", threads);
      auto x = Tensor<float>::randn(c.conv.x, gen), w = Tensor<float>::randn(c.conv.w, gen);
      trit::kernels::PlaneMoments m;
      auto y = trit::conv2d(x, w, {}, c.conv.o, &m);
      CHECK(m.of == y.data());
      const int64_t planes = y.size(0) * y.size(1), hw = y.size(2) * y.size(3);
      std::vector<double> sum(planes), m2(planes);
      trit::kernels::moments_of_planes(y.data(), planes, hw, sum.data(), m2.data());
      CHECK(m.sum == sum);
      CHECK(m.m2 == m2);
    }
}
