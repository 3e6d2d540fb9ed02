#pragma once
// Dataset: an in-memory labelled image set, what every loader in trit/data returns and what
// a DataLoader batches. Images are float in [0, 1], laid out N x C x H x W; labels[i] is the
// class of image i, an index into `classes` (the class names, in label order).
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "trit/core/error.hpp"
#include "trit/core/shape.hpp"
#include "trit/core/tensor.hpp"

namespace trit::data {

struct Dataset {
  Tensor<float> images;              // N, C, H, W; values in [0, 1]
  std::vector<int64_t> labels;       // N class indices in [0, classes.size())
  std::vector<std::string> classes;  // class names, index = label

  // Number of images N.
  int64_t size() const { return static_cast<int64_t>(labels.size()); }
  int64_t num_classes() const { return static_cast<int64_t>(classes.size()); }
  int64_t channels() const { return images.size(1); }
  int64_t height() const { return images.size(2); }
  int64_t width() const { return images.size(3); }
  // The shape of one image: {C, H, W}.
  Shape image_shape() const { return {channels(), height(), width()}; }

  // Images [begin, end), sharing the pixel storage (labels are copied).
  Dataset slice(int64_t begin, int64_t end) const {
    check(0 <= begin && begin <= end && end <= size(), "Dataset::slice", "range [", begin, ", ",
          end, ") of a dataset of ", size(), " images");
    Dataset out;
    out.images = images.slice_rows(begin, end);
    out.labels.assign(labels.begin() + begin, labels.begin() + end);
    out.classes = classes;
    return out;
  }
  // The first min(n, size()) images, e.g. for a quick run on part of the data.
  Dataset take(int64_t n) const {
    check(n >= 0, "Dataset::take", "negative count ", n);
    return slice(0, std::min(n, size()));
  }

  // Throws trit::Error(where, ...) unless images is N x C x H x W with N == labels.size(),
  // C >= 1, and every label lies in [0, classes.size()).
  void validate(const std::string& where) const {
    check(images.defined() && images.dim() == 4, where, "images must be N x C x H x W, got ",
          images.defined() ? to_string(images.shape()) : std::string("no tensor"));
    check(images.size(0) == size(), where, images.size(0), " images but ", size(), " labels");
    check(images.size(1) >= 1 && images.size(2) >= 1 && images.size(3) >= 1, where,
          "empty image shape ", to_string(images.shape()));
    for (int64_t i = 0; i < size(); ++i)
      check(labels[i] >= 0 && labels[i] < num_classes(), where, "label ", labels[i], " of image ",
            i, " is outside [0, ", num_classes(), ")");
  }
};

}  // namespace trit::data
