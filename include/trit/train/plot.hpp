#pragma once
// Line charts and histograms rendered to PNG, with no plotting library: training curves
// (loss, accuracy) and weight histograms that a program writes next to its CSV log.
//
//   Chart loss{"loss", "epoch", "cross-entropy"};
//   loss.add_series("train", epochs, train_loss).add_series("test", epochs, test_loss);
//   Chart acc{"accuracy", "epoch", "top-1 (%)"};
//   acc.add_series("test", epochs, test_acc);
//   save_png("run/curves.png", {loss, acc});          // two panels side by side
//   save_png("run/weights.png", {Histogram{"conv1.weight", values, 60}});
//
// Pieces, top to bottom: Color and a palette; Canvas (an RGB raster with anti-aliased thick
// lines, rectangles, disks and text from stb_easy_font, drawn 2x); nice_ticks (round axis
// ticks); Chart and Histogram (what to draw); render() lays panels out in a grid;
// save_png() encodes with stb_image_write and writes atomically.
//
// stb's code is compiled static in each translation unit that includes this header.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
// A translation unit that already included stb_image_write.h (with its implementation, as
// tests that write images do) keeps that copy; stb's implementation is not re-includable.
#ifndef INCLUDE_STB_IMAGE_WRITE_H
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>
#endif
#include <stb/stb_easy_font.h>
#pragma GCC diagnostic pop

#include "trit/core/error.hpp"
#include "trit/io/atomic_file.hpp"

namespace trit::train {

// ---- colours -----------------------------------------------------------------------------
struct Color {
  uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Color&) const = default;
};
inline constexpr Color kWhite{255, 255, 255};
inline constexpr Color kBlack{0, 0, 0};
inline constexpr Color kAxis{60, 60, 60};
inline constexpr Color kGrid{225, 225, 225};

// Series colour i (matplotlib's "tab10", cycling).
inline Color palette(size_t i) {
  static constexpr Color colors[] = {{31, 119, 180}, {255, 127, 14},  {44, 160, 44},
                                     {214, 39, 40},  {148, 103, 189}, {140, 86, 75},
                                     {227, 119, 194}, {127, 127, 127}, {188, 189, 34},
                                     {23, 190, 207}};
  return colors[i % 10];
}

// ---- canvas ------------------------------------------------------------------------------
// A width x height RGB image, row-major, top-left origin. Coordinates are in pixels (double:
// pixel (x, y) covers [x, x+1) x [y, y+1)); drawing outside the image is clipped.
class Canvas {
 public:
  enum class Align { start, center, end };  // text anchor, per axis

  Canvas(int width, int height, Color background = kWhite) : width_(width), height_(height) {
    check(width > 0 && height > 0 && width <= 16384 && height <= 16384, "Canvas",
          "size ", width, "x", height, " is out of range");
    pixels_.resize(static_cast<size_t>(width) * height * 3);
    for (size_t i = 0; i < pixels_.size(); i += 3) {
      pixels_[i] = background.r;
      pixels_[i + 1] = background.g;
      pixels_[i + 2] = background.b;
    }
  }

  int width() const { return width_; }
  int height() const { return height_; }
  const std::vector<uint8_t>& pixels() const { return pixels_; }
  Color pixel(int x, int y) const {
    const uint8_t* p = &pixels_[(static_cast<size_t>(y) * width_ + x) * 3];
    return {p[0], p[1], p[2]};
  }

  // Mixes `c` into pixel (x, y) with opacity alpha in [0, 1].
  void blend(int x, int y, Color c, double alpha) {
    if (x < 0 || y < 0 || x >= width_ || y >= height_ || alpha <= 0) return;
    alpha = std::min(alpha, 1.0);
    uint8_t* p = &pixels_[(static_cast<size_t>(y) * width_ + x) * 3];
    const uint8_t src[3] = {c.r, c.g, c.b};
    for (int k = 0; k < 3; ++k) p[k] = static_cast<uint8_t>(std::lround(p[k] + alpha * (src[k] - p[k])));
  }

  // Fills [x0, x1) x [y0, y1), with partial coverage at fractional edges.
  void fill_rect(double x0, double y0, double x1, double y1, Color c, double alpha = 1) {
    if (x1 < x0) std::swap(x0, x1);
    if (y1 < y0) std::swap(y0, y1);
    for (int y = static_cast<int>(std::floor(y0)); y < std::ceil(y1); ++y) {
      double cover_y = std::min<double>(y + 1, y1) - std::max<double>(y, y0);
      for (int x = static_cast<int>(std::floor(x0)); x < std::ceil(x1); ++x) {
        double cover_x = std::min<double>(x + 1, x1) - std::max<double>(x, x0);
        blend(x, y, c, alpha * cover_x * cover_y);
      }
    }
  }

  // An anti-aliased segment `thickness` pixels wide with round ends: each pixel near the
  // segment is covered by how far its centre lies inside the stroke.
  void line(double x0, double y0, double x1, double y1, Color c, double thickness = 2) {
    const double half = thickness / 2;
    const double dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
    int xa = static_cast<int>(std::floor(std::min(x0, x1) - half - 1));
    int xb = static_cast<int>(std::ceil(std::max(x0, x1) + half + 1));
    int ya = static_cast<int>(std::floor(std::min(y0, y1) - half - 1));
    int yb = static_cast<int>(std::ceil(std::max(y0, y1) + half + 1));
    xa = std::max(xa, 0), ya = std::max(ya, 0);
    xb = std::min(xb, width_ - 1), yb = std::min(yb, height_ - 1);
    for (int y = ya; y <= yb; ++y) {
      for (int x = xa; x <= xb; ++x) {
        double px = x + 0.5 - x0, py = y + 0.5 - y0;
        double t = len2 > 0 ? std::clamp((px * dx + py * dy) / len2, 0.0, 1.0) : 0.0;
        double ex = px - t * dx, ey = py - t * dy;
        double distance = std::sqrt(ex * ex + ey * ey);
        blend(x, y, c, std::clamp(half + 0.5 - distance, 0.0, 1.0));
      }
    }
  }

  // A filled, anti-aliased disk.
  void disk(double cx, double cy, double radius, Color c) { line(cx, cy, cx, cy, c, 2 * radius); }

  // Text in stb_easy_font's 5x7 pixel font, each font pixel drawn as scale x scale. (x, y) is
  // the anchor point; align_x/align_y place the text box relative to it. With `vertical`
  // the text reads bottom to top (a y-axis title); alignment then refers to the rotated box.
  // Characters outside printable ASCII are drawn as '?'.
  void text(double x, double y, const std::string& s, Color c, int scale = 2,
            Align align_x = Align::start, Align align_y = Align::start, bool vertical = false) {
    std::string clean = printable(s);
    const double w = text_width(clean, scale), h = text_height(scale);
    const double box_w = vertical ? h : w, box_h = vertical ? w : h;
    double left = x - (align_x == Align::center ? box_w / 2 : align_x == Align::end ? box_w : 0);
    double top = y - (align_y == Align::center ? box_h / 2 : align_y == Align::end ? box_h : 0);
    // stb_easy_font emits axis-aligned quads (4 vertices of x, y, z floats + RGBA bytes).
    std::vector<char> buffer(clean.size() * 800 + 64);
    int quads = stb_easy_font_print(0, 0, clean.data(), nullptr, buffer.data(),
                                    static_cast<int>(buffer.size()));
    for (int q = 0; q < quads; ++q) {
      float v0[2], v2[2];
      std::memcpy(v0, buffer.data() + q * 64, sizeof v0);       // first corner
      std::memcpy(v2, buffer.data() + q * 64 + 32, sizeof v2);  // opposite corner
      if (!vertical) {
        fill_rect(left + v0[0] * scale, top + v0[1] * scale, left + v2[0] * scale,
                  top + v2[1] * scale, c);
      } else {
        // Rotate 90 degrees counter-clockwise: font (u, v) -> (left + v, top + box_h - u).
        fill_rect(left + v0[1] * scale, top + box_h - v0[0] * scale, left + v2[1] * scale,
                  top + box_h - v2[0] * scale, c);
      }
    }
  }
  // Size of the box text() fills, in pixels.
  static double text_width(const std::string& s, int scale = 2) {
    std::string clean = printable(s);
    // stb's width counts the advance after the last glyph too; drop that one blank column.
    return clean.empty() ? 0 : (stb_easy_font_width(clean.data()) - 1) * scale;
  }
  static double text_height(int scale = 2) { return 8.0 * scale; }  // cap height 7 + descent

  // Copies `src` with its top-left corner at (x, y).
  void blit(const Canvas& src, int x, int y) {
    for (int sy = 0; sy < src.height_; ++sy) {
      if (y + sy < 0 || y + sy >= height_) continue;
      for (int sx = 0; sx < src.width_; ++sx) {
        if (x + sx < 0 || x + sx >= width_) continue;
        std::memcpy(&pixels_[(static_cast<size_t>(y + sy) * width_ + x + sx) * 3],
                    &src.pixels_[(static_cast<size_t>(sy) * src.width_ + sx) * 3], 3);
      }
    }
  }

  // The image encoded as PNG bytes.
  std::string png() const {
    std::string bytes;
    auto append = [](void* context, void* data, int size) {
      static_cast<std::string*>(context)->append(static_cast<const char*>(data), size);
    };
    int ok = stbi_write_png_to_func(append, &bytes, width_, height_, 3, pixels_.data(),
                                    width_ * 3);
    check(ok != 0, "Canvas::png", "PNG encoding failed");
    return bytes;
  }

 private:
  static std::string printable(const std::string& s) {
    std::string out = s;
    for (char& ch : out)
      if (ch < 32 || ch > 126) ch = '?';
    return out;
  }

  int width_, height_;
  std::vector<uint8_t> pixels_;
};

// ---- axis ticks --------------------------------------------------------------------------
// Round tick positions covering [lo, hi]: a step of 1, 2 or 5 x 10^k giving about `target`
// intervals; the axis is widened to [first, last] tick. Degenerate ranges (lo == hi, or
// non-finite) are widened first. `decimals` is what a label needs to show the step exactly.
struct Ticks {
  double lo = 0, hi = 1, step = 1;
  std::vector<double> values;
  int decimals = 0;

  // "0.25", "60000", "-1.5": a tick value with this axis' decimals.
  std::string label(double value) const {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
    std::string s = buf;
    if (s.find_first_not_of("-0.") == std::string::npos) s = decimals ? s.substr(s[0] == '-') : "0";
    return s;
  }
};

inline Ticks nice_ticks(double lo, double hi, int target = 5) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) lo = 0, hi = 1;
  if (lo > hi) std::swap(lo, hi);
  if (hi - lo <= 1e-12 * std::max(std::abs(lo), std::abs(hi))) {
    double pad = lo == 0 ? 1 : std::abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  target = std::max(target, 1);
  const double raw = (hi - lo) / target;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double fraction = raw / magnitude;
  // Round to the nearest of 1, 2, 5, 10 (on a log scale: thresholds near their midpoints).
  const double nice = fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10;
  Ticks t;
  t.step = nice * magnitude;
  // Small tolerance so lo = 0.30000000000000004 does not add a tick below 0.3.
  const double first = std::floor(lo / t.step + 1e-9), last = std::ceil(hi / t.step - 1e-9);
  for (double k = first; k <= last; ++k) t.values.push_back(k * t.step);
  t.lo = t.values.front();
  t.hi = t.values.back();
  t.decimals = std::max(0, static_cast<int>(-std::floor(std::log10(t.step) + 1e-9)));
  return t;
}

// ---- what to draw ------------------------------------------------------------------------
// One line of a chart; points with a non-finite coordinate are skipped (the line breaks).
struct Series {
  std::string name;
  std::vector<double> xs, ys;
  std::optional<Color> color;  // default: palette(index in the chart)
};

// A line chart: title above, axis titles, round ticks, legend when any series has a name.
struct Chart {
  std::string title, x_label, y_label;
  std::vector<Series> series;
  std::optional<std::pair<double, double>> y_range;  // default: fit the data

  Chart() = default;
  Chart(std::string title_, std::string x_label_, std::string y_label_)
      : title(std::move(title_)), x_label(std::move(x_label_)), y_label(std::move(y_label_)) {}

  // Adds a series; xs and ys must have the same length.
  Chart& add_series(std::string name, std::vector<double> xs, std::vector<double> ys,
                    std::optional<Color> color = std::nullopt) {
    check(xs.size() == ys.size(), "Chart::add_series", "series '", name, "' has ", xs.size(),
          " x values and ", ys.size(), " y values");
    series.push_back({std::move(name), std::move(xs), std::move(ys), color});
    return *this;
  }
  // Adds a series at x = 1, 2, ..., n (epochs).
  Chart& add_series(std::string name, std::vector<double> ys) {
    std::vector<double> xs(ys.size());
    for (size_t i = 0; i < xs.size(); ++i) xs[i] = static_cast<double>(i + 1);
    return add_series(std::move(name), std::move(xs), std::move(ys));
  }
  Chart& set_y_range(double lo, double hi) {
    check(lo < hi, "Chart::set_y_range", "need lo < hi, got ", lo, " and ", hi);
    y_range = {lo, hi};
    return *this;
  }
};

// Histograms of one or more value sets over shared bins (overlaid, translucent when several).
struct Histogram {
  struct Data {
    std::string name;
    std::vector<double> values;
  };
  std::string title, x_label = "value", y_label = "count";
  int bins = 50;
  std::vector<Data> series;

  Histogram() = default;
  // One unnamed value set (no legend).
  Histogram(std::string title_, std::vector<double> values, int bins_ = 50)
      : title(std::move(title_)), bins(bins_) {
    check(bins_ >= 1 && bins_ <= 10000, "Histogram", "bins must be in [1, 10000], got ", bins_);
    series.push_back({"", std::move(values)});
  }
  Histogram& add_series(std::string name, std::vector<double> values) {
    series.push_back({std::move(name), std::move(values)});
    return *this;
  }
};

using Panel = std::variant<Chart, Histogram>;

// ---- rendering ---------------------------------------------------------------------------
namespace detail {

// Maps data coordinates to pixels inside the plot rectangle.
struct Frame {
  double left, top, right, bottom;  // plot rectangle in pixels
  Ticks x, y;
  double px(double v) const { return left + (v - x.lo) / (x.hi - x.lo) * (right - left); }
  double py(double v) const { return bottom - (v - y.lo) / (y.hi - y.lo) * (bottom - top); }
};

// Ticks for [lo, hi] along an axis `length` pixels long, with as many as fit: labels of
// size `label_size(text)` need a gap of 12 pixels between them.
template <class Size>
Ticks fitting_ticks(double lo, double hi, double length, int target, Size label_size) {
  Ticks t = nice_ticks(lo, hi, target);
  for (; target > 1; t = nice_ticks(lo, hi, --target)) {
    double widest = 0;
    for (double v : t.values) widest = std::max(widest, label_size(t.label(v)));
    if (widest + 12 <= length / (t.values.size() - 1)) break;
  }
  return t;
}

// Title, grid, axes, ticks with labels, axis titles for data in [xlo, xhi] x [ylo, yhi].
// Returns the plot rectangle's mapping.
inline Frame draw_frame(Canvas& c, const std::string& title, const std::string& x_label,
                        const std::string& y_label, double xlo, double xhi, double ylo,
                        double yhi) {
  using A = Canvas::Align;
  const double th = Canvas::text_height(2);
  Frame f{};
  f.top = title.empty() ? 20 : 20 + th + 18;
  f.bottom = c.height() - 14 - (x_label.empty() ? 0 : th + 12) - th - 10;
  f.y = fitting_ticks(ylo, yhi, f.bottom - f.top, 5, [&](const std::string&) { return th; });
  double label_w = 0;
  for (double v : f.y.values) label_w = std::max(label_w, Canvas::text_width(f.y.label(v)));
  f.left = 14 + (y_label.empty() ? 0 : th + 12) + label_w + 10;
  // Leave room for half of the last x tick label, which is centred on the right edge.
  auto width = [](const std::string& s) { return Canvas::text_width(s); };
  f.x = fitting_ticks(xlo, xhi, c.width() - 40 - f.left, 6, width);
  f.right = c.width() - std::max(24.0, width(f.x.label(f.x.hi)) / 2 + 8);
  const Ticks& xt = f.x;
  const Ticks& yt = f.y;

  if (!title.empty()) {  // bold: drawn twice, one pixel apart
    c.text(c.width() / 2.0, 18, title, kBlack, 2, A::center, A::start);
    c.text(c.width() / 2.0 + 1, 18, title, kBlack, 2, A::center, A::start);
  }
  // Grid lines at each tick, then the frame on top.
  for (double v : xt.values) c.line(f.px(v), f.top, f.px(v), f.bottom, kGrid, 1);
  for (double v : yt.values) c.line(f.left, f.py(v), f.right, f.py(v), kGrid, 1);
  for (double v : xt.values) {
    c.line(f.px(v), f.bottom, f.px(v), f.bottom + 6, kAxis, 1.5);
    c.text(f.px(v), f.bottom + 10, xt.label(v), kAxis, 2, A::center, A::start);
  }
  for (double v : yt.values) {
    c.line(f.left - 6, f.py(v), f.left, f.py(v), kAxis, 1.5);
    c.text(f.left - 10, f.py(v), yt.label(v), kAxis, 2, A::end, A::center);
  }
  c.line(f.left, f.top, f.left, f.bottom, kAxis, 1.5);
  c.line(f.left, f.bottom, f.right, f.bottom, kAxis, 1.5);
  if (!x_label.empty())
    c.text((f.left + f.right) / 2, c.height() - 14, x_label, kBlack, 2, A::center, A::end);
  if (!y_label.empty())
    c.text(14, (f.top + f.bottom) / 2, y_label, kBlack, 2, A::start, A::center, true);
  return f;
}

// A legend box in the corner of the plot rectangle that hides the fewest data points.
// `filled` draws square swatches (bars) instead of line swatches.
inline void draw_legend(Canvas& c, const Frame& f,
                        const std::vector<std::pair<std::string, Color>>& entries,
                        const std::vector<std::pair<double, double>>& points_px, bool filled) {
  bool any_name = false;
  for (auto& e : entries) any_name = any_name || !e.first.empty();
  if (!any_name) return;
  const double th = Canvas::text_height(2), row = th + 8, swatch = 28, pad = 10;
  double text_w = 0;
  for (auto& e : entries) text_w = std::max(text_w, Canvas::text_width(e.first));
  const double w = pad + swatch + 8 + text_w + pad, h = pad + row * entries.size() - 8 + pad;
  const double margin = 10;
  // Candidate places, in order of preference: corners, then edge midpoints.
  const double right = f.right - margin - w, left = f.left + margin, top = f.top + margin,
               bottom = f.bottom - margin - h, middle_x = (f.left + f.right - w) / 2,
               middle_y = (f.top + f.bottom - h) / 2;
  const double corners[8][2] = {{right, top},    {left, top},     {right, bottom},
                                {left, bottom},   {right, middle_y}, {middle_x, top},
                                {left, middle_y}, {middle_x, bottom}};
  int best = 0;
  size_t best_hidden = std::numeric_limits<size_t>::max();
  for (int k = 0; k < 8; ++k) {
    size_t hidden = 0;
    for (auto& [x, y] : points_px)
      hidden += x >= corners[k][0] && x <= corners[k][0] + w && y >= corners[k][1] &&
                y <= corners[k][1] + h;
    if (hidden < best_hidden) best = k, best_hidden = hidden;
  }
  const double x0 = corners[best][0], y0 = corners[best][1];
  c.fill_rect(x0, y0, x0 + w, y0 + h, kWhite, 0.9);
  c.line(x0, y0, x0 + w, y0, kGrid, 1.5);
  c.line(x0, y0 + h, x0 + w, y0 + h, kGrid, 1.5);
  c.line(x0, y0, x0, y0 + h, kGrid, 1.5);
  c.line(x0 + w, y0, x0 + w, y0 + h, kGrid, 1.5);
  for (size_t i = 0; i < entries.size(); ++i) {
    double cy = y0 + pad + row * i + th / 2;
    if (filled) c.fill_rect(x0 + pad + 6, cy - th / 2, x0 + pad + swatch - 6, cy + th / 2,
                            entries[i].second, 0.8);
    else c.line(x0 + pad, cy, x0 + pad + swatch, cy, entries[i].second, 3);
    c.text(x0 + pad + swatch + 8, cy, entries[i].first, kBlack, 2, Canvas::Align::start,
           Canvas::Align::center);
  }
}

inline void draw(Canvas& c, const Chart& chart) {
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  size_t most_points = 0;
  for (auto& s : chart.series) {
    most_points = std::max(most_points, s.xs.size());
    for (size_t i = 0; i < s.xs.size(); ++i) {
      if (!std::isfinite(s.xs[i]) || !std::isfinite(s.ys[i])) continue;
      xlo = std::min(xlo, s.xs[i]), xhi = std::max(xhi, s.xs[i]);
      ylo = std::min(ylo, s.ys[i]), yhi = std::max(yhi, s.ys[i]);
    }
  }
  if (chart.y_range) ylo = chart.y_range->first, yhi = chart.y_range->second;
  Frame f = draw_frame(c, chart.title, chart.x_label, chart.y_label, xlo, xhi, ylo, yhi);
  std::vector<std::pair<std::string, Color>> legend;
  std::vector<std::pair<double, double>> points;
  for (size_t k = 0; k < chart.series.size(); ++k) {
    const Series& s = chart.series[k];
    const Color color = s.color.value_or(palette(k));
    legend.emplace_back(s.name, color);
    bool have_previous = false;
    double px0 = 0, py0 = 0;
    for (size_t i = 0; i < s.xs.size(); ++i) {
      if (!std::isfinite(s.xs[i]) || !std::isfinite(s.ys[i])) {
        have_previous = false;
        continue;
      }
      // Clamp to the plot rectangle (a fixed y_range may cut the data).
      double px = f.px(s.xs[i]), py = std::clamp(f.py(s.ys[i]), f.top, f.bottom);
      if (have_previous) {
        c.line(px0, py0, px, py, color, 2.5);
        // Sample the segment every few pixels so the legend avoids lines, not just vertices.
        int steps = static_cast<int>(std::hypot(px - px0, py - py0) / 4);
        for (int j = 1; j < steps; ++j)
          points.emplace_back(px0 + (px - px0) * j / steps, py0 + (py - py0) * j / steps);
      }
      points.emplace_back(px, py);
      px0 = px, py0 = py, have_previous = true;
    }
    // Few points: mark each one.
    if (most_points <= 40)
      for (size_t i = 0; i < s.xs.size(); ++i)
        if (std::isfinite(s.xs[i]) && std::isfinite(s.ys[i]))
          c.disk(f.px(s.xs[i]), std::clamp(f.py(s.ys[i]), f.top, f.bottom), 3.5, color);
  }
  draw_legend(c, f, legend, points, false);
}

inline void draw(Canvas& c, const Histogram& h) {
  check(h.bins >= 1 && h.bins <= 10000, "Histogram", "bins must be in [1, 10000], got ", h.bins);
  double lo = INFINITY, hi = -INFINITY;
  for (auto& s : h.series)
    for (double v : s.values)
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  if (!(lo < hi)) {  // no data, or all values equal: a unit range, the value in its middle bin
    double mid = std::isfinite(lo) ? lo : 0;
    lo = mid - (h.bins / 2 + 0.5) / h.bins;
    hi = lo + 1;
  }
  // counts[s][b]: values of series s in bin b = [lo + b*w, lo + (b+1)*w), last bin closed.
  const double width = (hi - lo) / h.bins;
  std::vector<std::vector<double>> counts(h.series.size(), std::vector<double>(h.bins, 0));
  double top = 0;
  for (size_t s = 0; s < h.series.size(); ++s) {
    for (double v : h.series[s].values) {
      if (!std::isfinite(v)) continue;
      int b = std::min(h.bins - 1, static_cast<int>((v - lo) / width));
      top = std::max(top, ++counts[s][std::max(b, 0)]);
    }
  }
  // At least 0..5 on the count axis, so small counts get whole-number ticks.
  Frame f = draw_frame(c, h.title, h.x_label, h.y_label, lo, hi, 0, std::max(top, 5.0));
  const double alpha = h.series.size() > 1 ? 0.45 : 0.85;
  std::vector<std::pair<std::string, Color>> legend;
  std::vector<std::pair<double, double>> points;
  for (size_t s = 0; s < h.series.size(); ++s) {
    const Color color = palette(s);
    legend.emplace_back(h.series[s].name, color);
    for (int b = 0; b < h.bins; ++b) {
      if (counts[s][b] == 0) continue;
      double x0 = f.px(lo + b * width), x1 = f.px(lo + (b + 1) * width), y = f.py(counts[s][b]);
      c.fill_rect(x0, y, x1, f.bottom, color, alpha);
      c.line(x0, y, x1, y, color, 1.5);  // crisp top edge
      for (double x = x0; x <= x1; x += 4) points.emplace_back(x, y);
    }
  }
  c.line(f.left, f.bottom, f.right, f.bottom, kAxis, 1.5);
  draw_legend(c, f, legend, points, true);
}

}  // namespace detail

// Lays `panels` out in a grid of `columns` (row by row), each panel_width x panel_height.
inline Canvas render(const std::vector<Panel>& panels, int columns = 2, int panel_width = 640,
                     int panel_height = 440) {
  check(!panels.empty(), "plot", "nothing to draw");
  check(columns >= 1 && panel_width >= 200 && panel_height >= 150, "plot", "bad layout: ",
        columns, " columns of ", panel_width, "x", panel_height, " panels");
  const int n = static_cast<int>(panels.size());
  columns = std::min(columns, n);
  const int rows = (n + columns - 1) / columns;
  Canvas image(columns * panel_width, rows * panel_height);
  for (int i = 0; i < n; ++i) {
    Canvas panel(panel_width, panel_height);
    std::visit([&](const auto& p) { detail::draw(panel, p); }, panels[i]);
    image.blit(panel, (i % columns) * panel_width, (i / columns) * panel_height);
  }
  return image;
}

// Renders `panels` (see render) and writes them to `path` as a PNG, atomically.
inline void save_png(const std::string& path, const std::vector<Panel>& panels, int columns = 2,
                     int panel_width = 640, int panel_height = 440) {
  io::write_file_atomically(path, render(panels, columns, panel_width, panel_height).png());
}

}  // namespace trit::train
