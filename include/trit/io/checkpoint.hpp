#pragma once
// Checkpoints: named tensors (a module's parameters and buffers) plus string metadata in one
// binary file, for --resume and for handing a trained model to the next program.
//
// File format, version 1 (all integers little-endian):
//   "TRITCKPT"                     8 bytes magic
//   u32 version                    = 1
//   u32 metadata count, then per entry: u32 key length, key bytes, u32 value length, value
//   u32 tensor count, then per tensor:
//     u32 name length, name bytes (dotted state_dict name, e.g. "layer1.0.conv1.weight")
//     u8  dtype                    0 = float32, 1 = float64
//     u32 rank, rank x i64 dims
//     numel x element, raw little-endian IEEE 754
//   u32 CRC-32 (zlib's crc32) of every byte before it
//
// Loading checks magic, version and checksum and bounds-checks every length against the bytes
// that remain, so a corrupt or truncated file throws trit::Error naming the file; it never
// allocates more than the file's size or reads past its end.
//
// Saving goes through write_file_atomically: an interrupted save leaves the previous
// checkpoint intact.
#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "trit/core/error.hpp"
#include "trit/core/shape.hpp"
#include "trit/core/tensor.hpp"
#include "trit/io/atomic_file.hpp"
#include "trit/io/bytes.hpp"
#include "trit/nn/module.hpp"

namespace trit::io {

inline constexpr char kCheckpointMagic[8] = {'T', 'R', 'I', 'T', 'C', 'K', 'P', 'T'};
inline constexpr uint32_t kCheckpointVersion = 1;

// Free-form key/value strings stored with the tensors (epoch, optimizer, model name and args).
using Metadata = std::map<std::string, std::string>;

// A tensor of either precision, as stored in a checkpoint.
using AnyTensor = std::variant<Tensor<float>, Tensor<double>>;

// What a checkpoint file holds: metadata and tensors in file order.
struct Checkpoint {
  Metadata metadata;
  std::vector<std::pair<std::string, AnyTensor>> tensors;

  // The tensor called `name`, or nullptr.
  const AnyTensor* find(const std::string& name) const {
    for (auto& [n, t] : tensors)
      if (n == name) return &t;
    return nullptr;
  }
  // The tensor called `name` converted to Tensor<T> (a copy when the precision differs).
  // Throws trit::Error when there is none.
  template <class T>
  Tensor<T> get(const std::string& name) const {
    const AnyTensor* t = find(name);
    check(t != nullptr, "Checkpoint::get", "no tensor named '", name, "'");
    return std::visit(
        [](const auto& x) -> Tensor<T> {
          using X = typename std::decay_t<decltype(x)>::value_type;
          if constexpr (std::is_same_v<X, T>) return x;
          else return x.template to<T>();
        },
        *t);
  }
};

namespace detail {

inline Shape shape_of(const AnyTensor& t) {
  return std::visit([](const auto& x) { return x.shape(); }, t);
}

template <class T>
AnyTensor read_tensor_data(ByteReader& in, const Shape& shape) {
  Tensor<T> t = Tensor<T>::empty(shape);
  in.elements(t.data(), t.numel(), "tensor data");
  return t;
}

}  // namespace detail

// Writes `checkpoint` to `path` atomically. Throws trit::Error naming `path` on failure or
// on duplicate tensor names.
inline void save_checkpoint(const std::string& path, const Checkpoint& checkpoint) {
  detail::ByteWriter w;
  w.out.append(kCheckpointMagic, sizeof kCheckpointMagic);
  w.scalar<uint32_t>(kCheckpointVersion);
  w.scalar<uint32_t>(static_cast<uint32_t>(checkpoint.metadata.size()));
  for (auto& [key, value] : checkpoint.metadata) {
    w.string(key, path);
    w.string(value, path);
  }
  w.scalar<uint32_t>(static_cast<uint32_t>(checkpoint.tensors.size()));
  for (size_t i = 0; i < checkpoint.tensors.size(); ++i) {
    auto& [name, tensor] = checkpoint.tensors[i];
    for (size_t j = 0; j < i; ++j)
      check(checkpoint.tensors[j].first != name, path, "duplicate tensor name '", name, "'");
    w.string(name, path);
    std::visit(
        [&](const auto& x) {
          using X = typename std::decay_t<decltype(x)>::value_type;
          w.scalar<uint8_t>(std::is_same_v<X, float> ? 0 : 1);
          w.scalar<uint32_t>(static_cast<uint32_t>(x.dim()));
          for (int64_t d : x.shape()) w.scalar<int64_t>(d);
          w.elements(x.data(), x.numel());
        },
        tensor);
  }
  w.scalar<uint32_t>(detail::crc32_of(w.out.data(), w.out.size()));
  write_file_atomically(path, w.out);
}

// Convenience: named tensors of one precision (e.g. module.state_dict()) plus metadata.
template <class T>
void save_checkpoint(const std::string& path,
                     const std::vector<std::pair<std::string, Tensor<T>>>& tensors,
                     const Metadata& metadata = {}) {
  Checkpoint c;
  c.metadata = metadata;
  for (auto& [name, t] : tensors) c.tensors.emplace_back(name, t);
  save_checkpoint(path, c);
}

// Reads a checkpoint. Throws trit::Error naming `path` when the file is missing, is not a
// checkpoint, has an unsupported version, is truncated, or fails its checksum.
inline Checkpoint load_checkpoint(const std::string& path) {
  const std::vector<char> bytes = read_file(path);
  const size_t magic_size = sizeof kCheckpointMagic;
  check(bytes.size() >= magic_size &&
            std::memcmp(bytes.data(), kCheckpointMagic, magic_size) == 0,
        path, "not a trit checkpoint (expected magic TRITCKPT)");
  detail::ByteReader header(bytes.data() + magic_size, bytes.size() - magic_size, path);
  uint32_t version = header.scalar<uint32_t>("version");
  check(version == kCheckpointVersion, path, "unsupported checkpoint version ", version,
        " (this build reads version ", kCheckpointVersion, ")");
  // Everything after the magic and version is trusted only once the checksum agrees.
  header.need(4, "checksum");
  const size_t body_end = bytes.size() - 4;
  detail::ByteReader tail(bytes.data() + body_end, 4, path);
  uint32_t stored = tail.scalar<uint32_t>("checksum");
  uint32_t actual = detail::crc32_of(bytes.data(), body_end);
  check(stored == actual, path, "checksum mismatch (file corrupt or truncated)");

  const size_t start = magic_size + 4;
  detail::ByteReader in(bytes.data() + start, body_end - start, path);
  Checkpoint c;
  uint32_t n_meta = in.scalar<uint32_t>("metadata count");
  for (uint32_t i = 0; i < n_meta; ++i) {
    std::string key = in.string("metadata key");
    c.metadata[key] = in.string("metadata value");
  }
  uint32_t n_tensors = in.scalar<uint32_t>("tensor count");
  for (uint32_t i = 0; i < n_tensors; ++i) {
    std::string name = in.string("tensor name");
    check(c.find(name) == nullptr, path, "duplicate tensor name '", name, "'");
    uint8_t dtype = in.scalar<uint8_t>("dtype");
    check(dtype <= 1, path, "tensor '", name, "': unknown dtype tag ", int(dtype));
    const size_t element = dtype == 0 ? sizeof(float) : sizeof(double);
    uint32_t rank = in.scalar<uint32_t>("rank");
    in.need(static_cast<size_t>(rank) * 8, "dims");
    Shape shape(rank);
    // Bound numel by the bytes left so numel * element can neither overflow nor over-allocate.
    const uint64_t max_numel = in.remaining() / element;
    uint64_t numel = 1;
    for (uint32_t d = 0; d < rank; ++d) {
      shape[d] = in.scalar<int64_t>("dims");
      check(shape[d] >= 0, path, "tensor '", name, "': negative dimension ", shape[d]);
      if (shape[d] != 0 && numel > max_numel / static_cast<uint64_t>(shape[d])) numel = max_numel + 1;
      else numel *= static_cast<uint64_t>(shape[d]);
    }
    check(numel <= in.remaining() / element, path, "truncated or corrupt checkpoint: tensor '",
          name, "' of shape ", to_string(shape), " does not fit in the file");
    c.tensors.emplace_back(name, dtype == 0 ? detail::read_tensor_data<float>(in, shape)
                                            : detail::read_tensor_data<double>(in, shape));
  }
  check(in.remaining() == 0, path, "corrupt checkpoint: ", in.remaining(),
        " unexpected bytes after the last tensor");
  return c;
}

// Copies the tensors of `checkpoint` into the module's parameters and buffers, in place
// (Tensor::copy_from), so optimizers holding these handles keep working. Float and double
// convert as needed. All names and shapes are checked before anything is copied: on a
// mismatch nothing changes and trit::Error(`where`, ...) lists missing names, unexpected
// names and shape mismatches.
template <class T>
void load_state(nn::Module<T>& module, const Checkpoint& checkpoint,
                const std::string& where = "checkpoint") {
  auto state = module.state_dict();
  std::string missing, unexpected, mismatched;
  auto add = [](std::string& list, const std::string& item) {
    list += (list.empty() ? "" : ", ") + item;
  };
  for (auto& [name, tensor] : state) {
    const AnyTensor* stored = checkpoint.find(name);
    if (!stored) {
      add(missing, name);
    } else if (detail::shape_of(*stored) != tensor.shape()) {
      add(mismatched, name + ": checkpoint " + to_string(detail::shape_of(*stored)) +
                          " vs model " + to_string(tensor.shape()));
    }
  }
  for (auto& [name, stored] : checkpoint.tensors) {
    bool known = false;
    for (auto& entry : state) known = known || entry.first == name;
    if (!known) add(unexpected, name);
  }
  if (!missing.empty() || !unexpected.empty() || !mismatched.empty()) {
    std::string message = "checkpoint does not match the model;";
    if (!missing.empty()) message += " missing in checkpoint: " + missing + ";";
    if (!unexpected.empty()) message += " unexpected in checkpoint: " + unexpected + ";";
    if (!mismatched.empty()) message += " shape mismatch: " + mismatched + ";";
    message.pop_back();
    throw Error(where, message);
  }
  for (auto& [name, tensor] : state) tensor.copy_from(checkpoint.get<T>(name));
}

// Saves module.state_dict() (parameters and buffers by dotted name) and `metadata` to `path`.
template <class T>
void save(const nn::Module<T>& module, const std::string& path, const Metadata& metadata = {}) {
  save_checkpoint(path, module.state_dict(), metadata);
}

// Loads `path` into `module` (see load_state) and returns the checkpoint's metadata.
template <class T>
Metadata load(nn::Module<T>& module, const std::string& path) {
  Checkpoint c = load_checkpoint(path);
  load_state(module, c, path);
  return c.metadata;
}

}  // namespace trit::io
