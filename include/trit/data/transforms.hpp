#pragma once
// Transforms: augmentation and normalisation applied to one image at a time, in place, as a
// DataLoader assembles a batch. A transform is any callable `void(ImageView, Generator&)`;
// random ones draw only from the Generator passed in, so a run is reproducible from a seed.
// Transforms keep the image's shape and allocate nothing.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <utility>
#include <vector>

#include "trit/core/error.hpp"
#include "trit/core/rng.hpp"
#include "trit/core/tensor.hpp"

namespace trit::data {

// One image, C x H x W contiguous floats, not owned.
struct ImageView {
  float* data;
  int64_t channels, height, width;
  float& at(int64_t c, int64_t y, int64_t x) { return data[(c * height + y) * width + x]; }
};

using Transform = std::function<void(ImageView, Generator&)>;

// Applies `transform` to a single image [C, H, W] or to each image of a batch [N, C, H, W]
// (in order, all drawing from `gen`).
inline void apply(const Transform& transform, Tensor<float>& images, Generator& gen) {
  check(images.dim() == 3 || images.dim() == 4, "data::apply",
        "expected an image [C, H, W] or a batch [N, C, H, W], got ", to_string(images.shape()));
  int64_t n = images.dim() == 4 ? images.size(0) : 1;
  int64_t c = images.size(-3), h = images.size(-2), w = images.size(-1);
  for (int64_t i = 0; i < n; ++i) transform(ImageView{images.data() + i * c * h * w, c, h, w}, gen);
}

// (x - mean[c]) / std[c] per channel c. One value broadcasts to every channel.
struct Normalize {
  std::vector<float> mean, std;
  Normalize(std::vector<float> mean_, std::vector<float> std_) : mean(std::move(mean_)), std(std::move(std_)) {
    check(!mean.empty() && mean.size() == std.size(), "Normalize", mean.size(), " means and ",
          std.size(), " standard deviations");
    for (float s : std) check(s > 0, "Normalize", "standard deviation ", s, " is not positive");
  }
  void operator()(ImageView image, Generator&) const {
    int64_t k = static_cast<int64_t>(mean.size());
    check(k == 1 || k == image.channels, "Normalize", k, " channel statistics for an image of ",
          image.channels, " channels");
    int64_t plane = image.height * image.width;
    for (int64_t c = 0; c < image.channels; ++c) {
      float m = mean[k == 1 ? 0 : c], inv = 1.0f / std[k == 1 ? 0 : c];
      float* p = image.data + c * plane;
      for (int64_t i = 0; i < plane; ++i) p[i] = (p[i] - m) * inv;
    }
  }
};

// Pads the image with `padding` zeros on every side and crops a random size x size window
// back out: a shift by (dy, dx), each uniform in [-padding, padding], with zeros moving in.
// size must equal the image's H and W (the CIFAR augmentation: RandomCrop(32, 4)).
// Draws dy, then dx.
struct RandomCrop {
  int64_t size, padding;
  RandomCrop(int64_t size_, int64_t padding_ = 0) : size(size_), padding(padding_) {
    check(size > 0 && padding >= 0, "RandomCrop", "size ", size, " and padding ", padding);
  }
  void operator()(ImageView image, Generator& gen) const {
    check(image.height == size && image.width == size, "RandomCrop", "crop size ", size,
          " must equal the image size ", image.height, "x", image.width);
    int64_t dy = gen.below(2 * padding + 1) - padding;
    int64_t dx = gen.below(2 * padding + 1) - padding;
    shift(image, dy, dx);
  }
  // out(y, x) = in(y + dy, x + dx), zero outside. In place: the source of each pixel lies
  // dy*W + dx elements ahead, so walk forward when that is positive, backward otherwise,
  // and every source is read before it is overwritten.
  static void shift(ImageView image, int64_t dy, int64_t dx) {
    const int64_t h = image.height, w = image.width;
    auto move = [&](int64_t c, int64_t y, int64_t x) {
      int64_t sy = y + dy, sx = x + dx;
      bool inside = sy >= 0 && sy < h && sx >= 0 && sx < w;
      image.at(c, y, x) = inside ? image.at(c, sy, sx) : 0.0f;
    };
    bool forward = dy * w + dx >= 0;
    for (int64_t c = 0; c < image.channels; ++c) {
      if (forward) {
        for (int64_t y = 0; y < h; ++y)
          for (int64_t x = 0; x < w; ++x) move(c, y, x);
      } else {
        for (int64_t y = h - 1; y >= 0; --y)
          for (int64_t x = w - 1; x >= 0; --x) move(c, y, x);
      }
    }
  }
};

// Mirrors the image left-right with probability p. Draws one uniform number.
struct RandomHorizontalFlip {
  double p;
  explicit RandomHorizontalFlip(double p_ = 0.5) : p(p_) {
    check(p >= 0 && p <= 1, "RandomHorizontalFlip", "probability ", p, " outside [0, 1]");
  }
  void operator()(ImageView image, Generator& gen) const {
    if (!gen.bernoulli(p)) return;
    for (int64_t c = 0; c < image.channels; ++c)
      for (int64_t y = 0; y < image.height; ++y)
        std::reverse(&image.at(c, y, 0), &image.at(c, y, 0) + image.width);
  }
};

// Applies transforms in order.
struct Compose {
  std::vector<Transform> transforms;
  Compose(std::initializer_list<Transform> list) : Compose(std::vector<Transform>(list)) {}
  explicit Compose(std::vector<Transform> list) : transforms(std::move(list)) {
    for (const Transform& t : transforms) check(bool(t), "Compose", "empty transform");
  }
  void operator()(ImageView image, Generator& gen) const {
    for (const Transform& t : transforms) t(image, gen);
  }
};

}  // namespace trit::data
