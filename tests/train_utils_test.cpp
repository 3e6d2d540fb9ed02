// What training programs share: CSV log contents, progress bar output for logs, PNG charts
// (decoded back with stb_image), nice axis ticks, atomic writes, the Ctrl-C flag.
#include <doctest/doctest.h>

#include "error_of.hpp"

#include <csignal>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>

#include <trit/io/atomic_file.hpp>
#include <trit/train.hpp>

using namespace trit::train;

using trit::testing::error_of;

namespace {

struct TempPath {
  std::string path;
  explicit TempPath(const std::string& name)
      : path("/tmp/trit_train_utils_test_" + std::to_string(::getpid()) + "_" + name) {}
  ~TempPath() { std::remove(path.c_str()); }
};

std::string slurp(const std::string& path) {
  std::vector<char> bytes = trit::io::read_file(path);
  return std::string(bytes.begin(), bytes.end());
}

// Decoded RGB image.
struct Image {
  int width = 0, height = 0;
  std::vector<unsigned char> rgb;
  bool has(Color c) const {
    for (size_t i = 0; i + 2 < rgb.size(); i += 3)
      if (rgb[i] == c.r && rgb[i + 1] == c.g && rgb[i + 2] == c.b) return true;
    return false;
  }
  size_t distinct_first_pixel() const {
    size_t n = 0;
    for (size_t i = 0; i + 2 < rgb.size(); i += 3)
      n += rgb[i] != rgb[0] || rgb[i + 1] != rgb[1] || rgb[i + 2] != rgb[2];
    return n;
  }
};

Image decode_png(const std::string& path) {
  Image image;
  int channels = 0;
  unsigned char* data = stbi_load(path.c_str(), &image.width, &image.height, &channels, 3);
  REQUIRE(data != nullptr);
  image.rgb.assign(data, data + static_cast<size_t>(image.width) * image.height * 3);
  stbi_image_free(data);
  return image;
}

}  // namespace

TEST_CASE("CsvLog: header once, rows flushed, quoting, append for --resume") {
  TempPath file("log.csv");
  {
    CsvLog log(file.path, {"epoch", "loss", "note"});
    log.row({1, 0.5, "start"});
    // Flushed per row: readable while the log is still open.
    CHECK(slurp(file.path) == "epoch,loss,note\n1,0.5,start\n");
    log.row({2, 1.0 / 3, "a, \"quoted\" note"});
    log.row({int64_t(60000), 1e-5, ""});
    CHECK(error_of([&] { log.row({1, 2}); }).find("2 cells for 3 columns") != std::string::npos);
  }
  CHECK(slurp(file.path) ==
        "epoch,loss,note\n1,0.5,start\n2,0.3333333333,\"a, \"\"quoted\"\" note\"\n"
        "60000,1e-05,\n");

  // Appending keeps rows and does not repeat the header.
  {
    CsvLog log(file.path, {"epoch", "loss", "note"}, CsvLog::Mode::append);
    log.row({3, std::nan(""), "x"});
  }
  std::string text = slurp(file.path);
  CHECK(text.find("epoch,loss,note") == 0);
  CHECK(text.find("epoch", 1) == std::string::npos);
  CHECK(text.substr(text.size() - 8) == "3,nan,x\n");
  // A different header refuses to append.
  CHECK(error_of([&] { CsvLog(file.path, {"epoch", "acc"}, CsvLog::Mode::append); })
            .find("differs") != std::string::npos);
  // Truncate starts over.
  { CsvLog log(file.path, {"a"}); }
  CHECK(slurp(file.path) == "a\n");
  CHECK(!error_of([] { CsvLog("/tmp/no_such_dir_trit/x.csv", {"a"}); }).empty());
}

TEST_CASE("ProgressBar: plain lines without \\r when not a terminal") {
  std::ostringstream out;
  {
    ProgressBar bar(469, "train", 128, "img", out, /*is_terminal=*/false);
    for (int step = 1; step <= 469; ++step) bar.update(step, "loss 0.412");
    bar.finish("loss 0.400");
  }
  std::string text = out.str();
  CHECK(text.find('\r') == std::string::npos);
  // One line per 10% (10 lines) plus the final one.
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  REQUIRE(lines.size() == 11);
  CHECK(lines[0].find("train [##..................] 47/469") == 0);
  CHECK(lines[0].find(" img/s") != std::string::npos);
  CHECK(lines[0].find(" ETA ") != std::string::npos);
  CHECK(lines[0].find("loss 0.412") != std::string::npos);
  CHECK(lines[9].find("train [####################] 469/469") == 0);
  CHECK(lines[10].find(" in 0:") != std::string::npos);
  CHECK(lines[10].find("loss 0.400") != std::string::npos);
  CHECK(lines[10].find("ETA") == std::string::npos);
}

TEST_CASE("ProgressBar: terminal redraws in place and ends the line") {
  std::ostringstream out;
  ProgressBar bar(10, "eval", 1, "img", out, /*is_terminal=*/true);
  bar.update(1, "a much longer extra text");
  bar.update(10);  // the last step is always drawn
  bar.finish();
  std::string text = out.str();
  CHECK(text.front() == '\r');
  CHECK(text.back() == '\n');
  CHECK(text.find("\reval [####################] 10/10") != std::string::npos);
  CHECK(error_of([&] { ProgressBar(-1, "x", 1, "it", out, false); }).find("ProgressBar") == 0);
  CHECK(format_duration(5) == "0:05");
  CHECK(format_duration(754) == "12:34");
  CHECK(format_duration(3723) == "1:02:03");
}

TEST_CASE("nice_ticks: round steps covering the range") {
  Ticks t = nice_ticks(0.03, 2.31, 5);
  CHECK(t.step == doctest::Approx(0.5));
  CHECK(t.lo == doctest::Approx(0.0));
  CHECK(t.hi == doctest::Approx(2.5));
  CHECK(t.values.size() == 6);
  CHECK(t.label(t.values[1]) == "0.5");
  CHECK(t.label(t.values[2]) == "1.0");

  t = nice_ticks(1, 20, 6);
  CHECK(t.step == doctest::Approx(5));
  CHECK(t.lo == 0);
  CHECK(t.hi == 20);
  CHECK(t.label(15) == "15");

  t = nice_ticks(-0.013, 0.0071, 5);
  CHECK(t.step == doctest::Approx(0.005));
  CHECK(t.lo == doctest::Approx(-0.015));
  CHECK(t.hi == doctest::Approx(0.01));
  CHECK(t.decimals == 3);
  CHECK(t.label(0.0) == "0.000");
  CHECK(t.label(-1e-18) == "0.000");  // no "-0.000"

  t = nice_ticks(0, 60000, 5);
  CHECK(t.step == doctest::Approx(10000));
  CHECK(t.label(60000) == "60000");

  // Degenerate ranges still give a usable axis.
  t = nice_ticks(3, 3);
  CHECK(t.lo < 3);
  CHECK(t.hi > 3);
  t = nice_ticks(INFINITY, -INFINITY);
  CHECK(t.lo == 0);
  CHECK(t.hi == 1);
  // Every range: ticks ascending, equally spaced, covering [lo, hi].
  for (double hi : {0.7, 1.0, 3.3, 17.0, 99.0, 1234.5}) {
    t = nice_ticks(0.1, hi);
    CHECK(t.lo <= 0.1);
    CHECK(t.hi >= hi);
    CHECK(t.values.size() >= 3);
    CHECK(t.values.size() <= 12);
  }
}

TEST_CASE("plot: a two-panel chart and a histogram are valid PNGs with the series colours") {
  TempPath curves("curves.png"), hist("hist.png");
  std::vector<double> epochs, train, test, acc;
  for (int e = 1; e <= 10; ++e) {
    epochs.push_back(e);
    train.push_back(2.0 / e);
    test.push_back(2.2 / e + 0.1);
    acc.push_back(100 - 50.0 / e);
  }
  Chart loss{"loss", "epoch", "cross-entropy"};
  loss.add_series("train", epochs, train).add_series("test", epochs, test);
  Chart accuracy{"accuracy", "epoch", "top-1 (%)"};
  accuracy.add_series("test", epochs, acc, Color{200, 30, 90});
  save_png(curves.path, {loss, accuracy}, 2, 500, 360);

  Image image = decode_png(curves.path);
  CHECK(image.width == 1000);
  CHECK(image.height == 360);
  CHECK(image.distinct_first_pixel() > 1000);  // not all one colour
  CHECK(image.has(palette(0)));                // solid line pixels in the series colours
  CHECK(image.has(palette(1)));
  CHECK(image.has(Color{200, 30, 90}));
  CHECK(!image.has(palette(2)));  // no third series was drawn

  Histogram h("conv1.weight", {}, 20);
  h.series.clear();
  std::vector<double> a, b;
  for (int i = 0; i < 1000; ++i) a.push_back(std::sin(i * 0.37)), b.push_back(std::round(a.back()));
  h.add_series("latent", a).add_series("ternary", b);
  save_png(hist.path, {h, Histogram("weights", a)}, 1);
  image = decode_png(hist.path);
  CHECK(image.width == 640);
  CHECK(image.height == 2 * 440);
  CHECK(image.distinct_first_pixel() > 1000);

  // Bad input is an error, not a crash.
  CHECK(error_of([] { Chart().add_series("x", {1, 2}, {1}); }).find("2 x values") !=
        std::string::npos);
  CHECK(!error_of([] { save_png("/tmp/no_such_dir_trit/x.png", {Chart()}); }).empty());
  CHECK(!error_of([] { Histogram("h", {1}, 0); }).empty());
  CHECK(!error_of([] { render({}); }).empty());
}

TEST_CASE("Canvas: lines are at least 2 px thick and text leaves ink") {
  Canvas c(40, 40);
  c.line(5, 20, 35, 20, Color{255, 0, 0}, 2);  // covers rows 19 and 20 fully
  CHECK(c.pixel(20, 19) == Color{255, 0, 0});
  CHECK(c.pixel(20, 20) == Color{255, 0, 0});
  CHECK(c.pixel(20, 10) == kWhite);
  CHECK(c.pixel(20, 22) == kWhite);
  c.line(-100, -100, 500, 500, kBlack, 3);  // clipped, no out-of-bounds write
  Canvas t(60, 30);
  t.text(2, 2, "Ab1\x01\xff", kBlack);  // unprintable characters become '?'
  size_t ink = 0;
  for (int y = 0; y < 30; ++y)
    for (int x = 0; x < 60; ++x) ink += t.pixel(x, y) == kBlack;
  CHECK(ink > 20);
  CHECK(Canvas::text_width("abc", 2) > Canvas::text_width("a", 2));
}

TEST_CASE("write_file_atomically: the old file survives a failed write") {
  TempPath file("atomic.txt");
  trit::io::write_file_atomically(file.path, std::string("old contents"));
  CHECK(slurp(file.path) == "old contents");
  std::string message = error_of([&] {
    trit::io::write_file_atomically(file.path, [](std::ostream& out) {
      out << "new but incomplete";
      throw std::runtime_error("interrupted");
    });
  });
  CHECK(message.find(file.path) == 0);
  CHECK(message.find("interrupted") != std::string::npos);
  CHECK(slurp(file.path) == "old contents");
  CHECK(!std::ifstream(file.path + ".tmp." + std::to_string(::getpid())).good());
  trit::io::write_file_atomically(file.path, std::string("new contents"));
  CHECK(slurp(file.path) == "new contents");
  CHECK(error_of([] { trit::io::read_file("/tmp/no_such_file_trit"); })
            .find("/tmp/no_such_file_trit") == 0);
  CHECK(error_of([] { trit::io::read_file("/tmp"); }).find("directory") != std::string::npos);
}

namespace {
volatile std::sig_atomic_t outer_handler_calls = 0;
extern "C" void outer_handler(int) { outer_handler_calls = outer_handler_calls + 1; }
}  // namespace

TEST_CASE("InterruptFlag: first SIGINT sets the flag; the old handler comes back") {
  std::signal(SIGINT, outer_handler);
  {
    InterruptFlag flag;
    CHECK(!flag.requested());
    CHECK(!error_of([] { InterruptFlag second; }).empty());  // one at a time
    std::raise(SIGINT);
    CHECK(flag.requested());
    CHECK(outer_handler_calls == 0);
    flag.clear();
    CHECK(!flag.requested());
  }
  std::raise(SIGINT);
  CHECK(outer_handler_calls == 1);
  std::signal(SIGINT, SIG_DFL);
}
