#pragma once
// IDX files, the format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/):
// a big-endian header, then the elements row-major.
//
//   bytes 0-1: 0, 0    byte 2: element type (0x08 = unsigned byte)    byte 3: number of dims
//   then one u32 per dim, then the elements.
//   images: magic 0x00000803, dims N, rows, cols     labels: magic 0x00000801, dims N
//
// Files may be gzip-compressed (.gz) or plain. Every header value is checked against the
// bytes actually present before anything is allocated from it.
#include <cstdint>
#include <string>
#include <vector>

#include "trit/data/dataset.hpp"
#include "trit/data/file.hpp"

namespace trit::data {

// A parsed IDX file of unsigned bytes: its dims and its elements (row-major).
struct IdxBytes {
  std::vector<int64_t> dims;
  std::vector<uint8_t> file;  // the whole file; elements start at `offset`
  size_t offset = 0;
  const uint8_t* data() const { return file.data() + offset; }
};

// Reads an IDX file of unsigned bytes with `ndims` dimensions. Throws trit::Error(path, ...)
// on a bad magic number, a zero extent, or a size that does not match the header (truncated
// data, trailing bytes, or a header claiming absurd dimensions).
inline IdxBytes read_idx(const std::string& path, int ndims) {
  IdxBytes idx;
  idx.file = read_file(path);
  const std::vector<uint8_t>& b = idx.file;
  auto be32 = [&](size_t at) {
    return (uint32_t(b[at]) << 24) | (uint32_t(b[at + 1]) << 16) | (uint32_t(b[at + 2]) << 8) |
           uint32_t(b[at + 3]);
  };
  check(b.size() >= 4, path, "only ", b.size(), " bytes; too short for an IDX header");
  uint32_t magic = be32(0);
  uint32_t expected = 0x0800u | uint32_t(ndims);
  check(magic == expected, path, "bad IDX magic number 0x", std::hex, magic, " (expected 0x",
        expected, std::dec, ", unsigned bytes in ", ndims, " dimensions)");
  idx.offset = 4 + 4 * size_t(ndims);
  check(b.size() >= idx.offset, path, "truncated IDX header: ", b.size(), " bytes");
  // Multiply the extents, stopping as soon as they claim more than the file holds.
  uint64_t available = b.size() - idx.offset, count = 1;
  for (int d = 0; d < ndims; ++d) {
    uint64_t extent = be32(4 + 4 * size_t(d));
    idx.dims.push_back(int64_t(extent));
    check(extent > 0, path, "IDX dimension ", d, " is 0");
    count = count > available / extent ? available + 1 : count * extent;
  }
  std::string dims_text = to_string(idx.dims);
  check(count <= available, path, "truncated or corrupt: header claims dims ", dims_text,
        " but the file holds only ", available, " data bytes");
  check(count == available, path, "header claims dims ", dims_text, " but the file holds ",
        available - count, " bytes more than that");
  return idx;
}

// Images from an IDX images file (N x rows x cols bytes) and labels from an IDX labels file
// (N bytes), scaled to [0, 1] as a Dataset of N x 1 x rows x cols. `classes` names the labels
// (every label must be < classes.size()); empty means "0".."9".
inline Dataset load_idx(const std::string& images_path, const std::string& labels_path,
                        std::vector<std::string> classes = {}) {
  if (classes.empty())
    for (int i = 0; i < 10; ++i) classes.push_back(std::to_string(i));
  IdxBytes images = read_idx(images_path, 3);
  IdxBytes labels = read_idx(labels_path, 1);
  int64_t n = images.dims[0], rows = images.dims[1], cols = images.dims[2];
  check(labels.dims[0] == n, labels_path, labels.dims[0], " labels but ", images_path, " holds ",
        n, " images");

  Dataset set;
  set.classes = std::move(classes);
  set.labels.resize(size_t(n));
  for (int64_t i = 0; i < n; ++i) {
    int64_t label = labels.data()[i];
    check(label < set.num_classes(), labels_path, "label ", label, " of item ", i,
          " is outside [0, ", set.num_classes(), ")");
    set.labels[size_t(i)] = label;
  }
  set.images = Tensor<float>::empty({n, 1, rows, cols});
  float* out = set.images.data();
  const uint8_t* in = images.data();
  for (int64_t i = 0; i < n * rows * cols; ++i) out[i] = float(in[i]) / 255.0f;
  return set;
}

// The ten Fashion-MNIST classes, in label order.
inline std::vector<std::string> fashion_mnist_classes() {
  return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
          "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
}

// MNIST-layout files in `dir`: {train,t10k}-images-idx3-ubyte and {train,t10k}-labels-idx1-ubyte,
// each optionally with .gz. `train` picks the training set (60000) or the test set (10000).
inline Dataset load_idx_dir(const std::string& dir, bool train, std::vector<std::string> classes) {
  std::string prefix = dir + "/" + (train ? "train" : "t10k");
  std::string images = find_plain_or_gz(prefix + "-images-idx3-ubyte");
  std::string labels = find_plain_or_gz(prefix + "-labels-idx1-ubyte");
  return load_idx(images, labels, std::move(classes));
}

// MNIST digits from `dir` (classes "0".."9").
inline Dataset load_mnist(const std::string& dir, bool train) { return load_idx_dir(dir, train, {}); }

// Fashion-MNIST from `dir`, with its ten class names.
inline Dataset load_fashion_mnist(const std::string& dir, bool train) {
  return load_idx_dir(dir, train, fashion_mnist_classes());
}

}  // namespace trit::data
