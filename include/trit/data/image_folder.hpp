#pragma once
// Image folders: root/<class name>/<image>.{png,jpg,jpeg,bmp}, as torchvision's ImageFolder.
// Classes are the subfolders sorted by name (label = position), files are sorted by name
// within each class. Every image is decoded with stb_image, converted to grey (C = 1) or RGB
// (C = 3), and resized to a fixed H x W with bilinear interpolation.
//
// stb_image is compiled here as a private static copy in each translation unit
// (STB_IMAGE_STATIC), so nothing needs linking. Include this header before any other
// inclusion of <stb/stb_image.h> in the same file. Images wider or taller than
// STBI_MAX_DIMENSIONS (16384 unless defined earlier) are rejected, so a corrupt header cannot
// ask for gigabytes.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include <omp.h>

#include "trit/core/error.hpp"
#include "trit/data/dataset.hpp"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#define STB_IMAGE_STATIC
#ifndef STBI_MAX_DIMENSIONS
#define STBI_MAX_DIMENSIONS (1 << 14)
#endif
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>
#undef STB_IMAGE_IMPLEMENTATION
#pragma GCC diagnostic pop

namespace trit::data {

// How images are brought to one shape: C = channels (1 grey, 3 RGB), H x W pixels.
struct ImageFolderOptions {
  int64_t channels = 3;
  int64_t height = 32;
  int64_t width = 32;
  ImageFolderOptions& set_channels(int64_t c) { channels = c; return *this; }
  ImageFolderOptions& set_size(int64_t h, int64_t w) { height = h; width = w; return *this; }
};

// Resizes an interleaved h x w x c byte image to a planar c x out_h x out_w float image in
// [0, 1], bilinear with pixel centres aligned (as PyTorch's align_corners=false, no
// antialiasing). Equal sizes copy exactly.
inline void resize_bilinear(const uint8_t* in, int64_t h, int64_t w, int64_t c, float* out,
                            int64_t out_h, int64_t out_w) {
  const float scale_y = float(h) / float(out_h), scale_x = float(w) / float(out_w);
  for (int64_t y = 0; y < out_h; ++y) {
    // Source coordinate of this row's centre, clamped to the image; y0/y1 the rows around it.
    float sy = std::clamp((float(y) + 0.5f) * scale_y - 0.5f, 0.0f, float(h - 1));
    int64_t y0 = int64_t(sy), y1 = std::min(y0 + 1, h - 1);
    float fy = sy - float(y0);
    for (int64_t x = 0; x < out_w; ++x) {
      float sx = std::clamp((float(x) + 0.5f) * scale_x - 0.5f, 0.0f, float(w - 1));
      int64_t x0 = int64_t(sx), x1 = std::min(x0 + 1, w - 1);
      float fx = sx - float(x0);
      for (int64_t k = 0; k < c; ++k) {
        auto at = [&](int64_t yy, int64_t xx) { return float(in[(yy * w + xx) * c + k]); };
        float top = at(y0, x0) + fx * (at(y0, x1) - at(y0, x0));
        float bottom = at(y1, x0) + fx * (at(y1, x1) - at(y1, x0));
        out[(k * out_h + y) * out_w + x] = (top + fy * (bottom - top)) / 255.0f;
      }
    }
  }
}

namespace detail {
inline bool is_image_file(const std::filesystem::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp";
}
}  // namespace detail

// Loads every image under root/<class>/ into a Dataset of N x C x H x W. Throws trit::Error
// naming the folder or file when root is missing or has no class folders, a class folder
// holds no images, or an image cannot be decoded. Decoding runs in parallel (OpenMP).
inline Dataset load_image_folder(const std::string& root, const ImageFolderOptions& options = {}) {
  namespace fs = std::filesystem;
  check(options.channels == 1 || options.channels == 3, "load_image_folder", "channels must be 1 or 3, got ",
        options.channels);
  check(options.height > 0 && options.width > 0 && options.height <= 16384 && options.width <= 16384,
        "load_image_folder", "image size ", options.height, "x", options.width, " out of range");
  std::error_code ec;
  check(fs::is_directory(root, ec), root, "image folder not found");

  Dataset set;
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(root, ec))
    if (entry.is_directory() && entry.path().filename().string()[0] != '.')
      set.classes.push_back(entry.path().filename().string());
  check(!ec, root, "cannot list folder: ", ec.message());
  std::sort(set.classes.begin(), set.classes.end());
  check(!set.classes.empty(), root, "no class folders (expected root/<class>/<image>.png)");
  for (size_t label = 0; label < set.classes.size(); ++label) {
    std::string folder = root + "/" + set.classes[label];
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(folder, ec))
      if (entry.is_regular_file() && detail::is_image_file(entry.path()))
        names.push_back(entry.path().filename().string());
    check(!ec, folder, "cannot list folder: ", ec.message());
    check(!names.empty(), folder, "class folder holds no .png/.jpg/.jpeg/.bmp images");
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) {
      files.push_back(folder + "/" + name);
      set.labels.push_back(int64_t(label));
    }
  }

  const int64_t n = set.size(), c = options.channels, h = options.height, w = options.width;
  set.images = Tensor<float>::empty({n, c, h, w});
  float* out = set.images.data();
  std::vector<std::string> errors(files.size());  // per image, so the first by name is reported
#pragma omp parallel for schedule(dynamic)
  for (int64_t i = 0; i < n; ++i) {
    int iw = 0, ih = 0, in_channels = 0;
    uint8_t* pixels = stbi_load(files[i].c_str(), &iw, &ih, &in_channels, int(c));
    if (!pixels) {
      errors[i] = error_message("cannot decode image: ", stbi_failure_reason());
      continue;
    }
    resize_bilinear(pixels, ih, iw, c, out + i * c * h * w, h, w);
    stbi_image_free(pixels);
  }
  for (int64_t i = 0; i < n; ++i)
    if (!errors[i].empty()) throw Error(files[i], errors[i]);
  return set;
}

}  // namespace trit::data
