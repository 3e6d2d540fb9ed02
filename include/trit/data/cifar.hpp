#pragma once
// CIFAR-10 and CIFAR-100, binary version (https://www.cs.toronto.edu/~kriz/cifar.html).
// Each file is a run of fixed-size records, one per 32x32 colour image:
//   CIFAR-10  (data_batch_1..5.bin, test_batch.bin): 1 label byte, then 3072 pixel bytes
//   CIFAR-100 (train.bin, test.bin): 1 coarse label byte, 1 fine label byte, then 3072 bytes
// The pixels are three 32x32 planes, R then G then B, rows top to bottom: exactly C x H x W.
// Files may be gzip-compressed or plain (see file.hpp).
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "trit/data/dataset.hpp"
#include "trit/data/file.hpp"

namespace trit::data {

inline constexpr int64_t kCifarPixels = 3 * 32 * 32;

// Appends the records of one CIFAR binary file to `set`'s labels and to `pixels` (raw bytes).
// `label_bytes` is 1 (CIFAR-10) or 2 (CIFAR-100); the label read is the last of them (the fine
// label for CIFAR-100) and must be < `num_classes`. Throws trit::Error(path, ...) when the
// file is missing, empty, not a whole number of records, or holds a label out of range.
inline void read_cifar_file(const std::string& path, int64_t label_bytes, int64_t num_classes,
                            std::vector<int64_t>& labels, std::vector<uint8_t>& pixels) {
  std::vector<uint8_t> bytes = read_file(path);
  const int64_t record = label_bytes + kCifarPixels;
  const int64_t size = static_cast<int64_t>(bytes.size());
  check(size > 0, path, "empty file");
  check(size % record == 0, path, size, " bytes is not a whole number of ", record,
        "-byte records (", label_bytes, " label byte(s) + ", kCifarPixels,
        " pixels); truncated, or not this CIFAR variant?");
  for (int64_t r = 0; r < size / record; ++r) {
    const uint8_t* rec = bytes.data() + r * record;
    int64_t label = rec[label_bytes - 1];
    check(label < num_classes, path, "label ", label, " of record ", r, " is outside [0, ",
          num_classes, ")");
    labels.push_back(label);
    pixels.insert(pixels.end(), rec + label_bytes, rec + record);
  }
}

// A Dataset of N x 3 x 32 x 32 from the CIFAR binary files `paths`, in order.
inline Dataset load_cifar_files(const std::vector<std::string>& paths, int64_t label_bytes,
                                std::vector<std::string> classes) {
  Dataset set;
  set.classes = std::move(classes);
  std::vector<uint8_t> pixels;
  for (const std::string& path : paths)
    read_cifar_file(path, label_bytes, set.num_classes(), set.labels, pixels);
  set.images = Tensor<float>::empty({set.size(), 3, 32, 32});
  float* out = set.images.data();
  for (size_t i = 0; i < pixels.size(); ++i) out[i] = float(pixels[i]) / 255.0f;
  return set;
}

// The ten CIFAR-10 classes, in label order.
inline std::vector<std::string> cifar10_classes() {
  return {"airplane", "automobile", "bird", "cat", "deer",
          "dog",      "frog",       "horse", "ship", "truck"};
}

// CIFAR-10 from `dir` (the cifar-10-batches-bin folder): data_batch_1..5.bin (50000 images)
// when `train`, else test_batch.bin (10000).
inline Dataset load_cifar10(const std::string& dir, bool train) {
  std::vector<std::string> paths;
  if (train)
    for (int i = 1; i <= 5; ++i) paths.push_back(dir + "/data_batch_" + std::to_string(i) + ".bin");
  else
    paths.push_back(dir + "/test_batch.bin");
  return load_cifar_files(paths, 1, cifar10_classes());
}

// CIFAR-100 from `dir` (the cifar-100-binary folder): train.bin or test.bin, labelled with the
// 100 fine labels. Class names come from fine_label_names.txt (one per line) when present,
// else "0".."99".
inline Dataset load_cifar100(const std::string& dir, bool train) {
  std::vector<std::string> classes;
  std::string names_path = dir + "/fine_label_names.txt";
  std::error_code ec;
  if (std::filesystem::is_regular_file(names_path, ec)) {
    std::ifstream in(names_path);
    for (std::string line; std::getline(in, line);) {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      if (!line.empty()) classes.push_back(line);
    }
    check(classes.size() == 100, names_path, "holds ", classes.size(),
          " class names, expected 100");
  } else {
    for (int i = 0; i < 100; ++i) classes.push_back(std::to_string(i));
  }
  return load_cifar_files({dir + (train ? "/train.bin" : "/test.bin")}, 2, std::move(classes));
}

}  // namespace trit::data
