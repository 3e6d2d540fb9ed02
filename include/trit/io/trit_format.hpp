#pragma once
// The .trit file: a compressed model that rebuilds itself. It holds the architecture (the
// name and ModelConfig arguments make_model takes), free metadata, and every tensor of the
// model's state_dict, the quantized ones as codes and codebooks (quant::QuantizedTensor).
//
//   auto codes = optimizer.policy().quantized_tensors(optimizer.parameters());
//   io::save_compressed("run/model.trit", config, model.state_dict(), codes);
//   io::CompressedModel m = io::read_compressed("run/model.trit");
//   auto model = io::make_dense_model(m);     // make_model(m.config) + the expanded weights
//
// Encodings of a tensor (TensorEncoding):
//   f32              numel x f32, everything that is not quantized (BN parameters and running
//                    statistics, biases, num_batches_tracked, layers kept full precision)
//   f16              numel x IEEE half (CompressOptions::fp16; lossy: expand() gives the
//                    rounded values). Never used for num_batches_tracked, nor for a tensor
//                    with a value outside the half range (those stay f32)
//   ternary2         codebooks, then 2 bits per weight, packed
//   ternary_entropy  codebooks, then the codes rANS-coded (io/entropy.hpp)
//   pow2             codebooks, then fixed-length codes of bits_per_code() bits, packed
//   pow2_entropy     codebooks, then the codes rANS-coded
// With CompressOptions::entropy (the default) each quantized tensor takes whichever of its
// fixed-length and entropy-coded forms is smaller; the record says which.
//
// File layout, version 2 (integers little-endian; varint: LEB128, 1 byte below 128;
// string: varint length + bytes):
//   "TRIT"                         4 bytes magic
//   u32 version                    = 2
//   model: string name, varint num_classes, varint in_channels, varint input_size, f64 width,
//          u8 small_input (0 unset, 1 off, 2 on), u8 shortcut (0 A, 1 B)
//   varint metadata count, then per entry: string key, string value (keys sorted, unique)
//   varint tensor count, then per tensor (a record):
//     varint shared, string suffix the dotted state_dict name: its first `shared` characters
//                                  are the previous record's ("layer1.0.bn1.bias" after
//                                  "layer1.0.bn1.weight" stores 13 and "bias")
//     u8  encoding                 TensorEncoding
//     u8  rank, rank x varint dims
//     varint payload length P, then P bytes of payload:
//       f32 / f16:   the elements, row-major
//       quantized:   varint groups G (1, or dims[0]: one codebook per output channel)
//                    per group: u8 levels L (1..256; 0 stands for 256), (L - 1) x f32
//                               codebook values for codes 1..L-1 (code 0 is always 0.0,
//                               the pruned weight)
//                    the codes, numel of them, group g owning elements [g, g+1) * numel / G:
//                      ternary2, pow2: b bits each (b = 2, or the bits of the largest L),
//                                      LSB first, zero padding to a whole byte
//                      *_entropy:      one rANS stream (io/entropy.hpp)
// The small fields are what makes a ResNet-20 at 90% zeros fit in 33 KB: its 116 tensors
// are mostly BatchNorm vectors of 16-64 values, where version 1's fixed-width names, i64
// dims and u64 lengths cost as much as the values.
//   u32 CRC-32 of every byte before it
//
// Reading checks magic, version and checksum first, then every field: lengths against the
// bytes left, tensor sizes (at most kTritMaxElements elements), codes against their group's
// codebook, finite codebook values, the payload consumed exactly. A truncated, corrupt or
// foreign file, or one of another version, raises trit::Error naming the file; reading never
// reads outside the file, and never allocates much more than the tensors it decodes.
// Writing is atomic (write_file_atomically): a failed save leaves the old file as it was.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "trit/core/error.hpp"
#include "trit/core/shape.hpp"
#include "trit/core/tensor.hpp"
#include "trit/io/atomic_file.hpp"
#include "trit/io/bytes.hpp"
#include "trit/io/checkpoint.hpp"
#include "trit/io/entropy.hpp"
#include "trit/io/safetensors.hpp"
#include "trit/models/registry.hpp"
#include "trit/quant/codes.hpp"

namespace trit::io {

inline constexpr char kTritMagic[4] = {'T', 'R', 'I', 'T'};
inline constexpr uint32_t kTritVersion = 2;
// The most elements one tensor may have (an entropy-coded tensor can be tiny on disk, so
// this, not the file size, bounds what a reader decodes).
inline constexpr int64_t kTritMaxElements = int64_t(1) << 30;
inline constexpr uint32_t kTritMaxRank = 8;

enum class TensorEncoding : uint8_t {
  f32 = 0,
  f16 = 1,
  ternary2 = 2,
  ternary_entropy = 3,
  pow2 = 4,
  pow2_entropy = 5,
};

inline const char* tensor_encoding_name(TensorEncoding e) {
  switch (e) {
    case TensorEncoding::f32:
      return "f32";
    case TensorEncoding::f16:
      return "f16";
    case TensorEncoding::ternary2:
      return "ternary2";
    case TensorEncoding::ternary_entropy:
      return "ternary_entropy";
    case TensorEncoding::pow2:
      return "pow2";
    case TensorEncoding::pow2_entropy:
      return "pow2_entropy";
  }
  return "unknown";
}

// True for the four code encodings (the tensor is a quant::QuantizedTensor).
inline bool is_quantized(TensorEncoding e) { return e >= TensorEncoding::ternary2; }
inline bool is_entropy_coded(TensorEncoding e) {
  return e == TensorEncoding::ternary_entropy || e == TensorEncoding::pow2_entropy;
}

// One tensor of a .trit file: dense values (f32, f16) or codes (the other encodings).
struct CompressedTensor {
  std::string name;
  TensorEncoding encoding = TensorEncoding::f32;
  Tensor<float> dense;               // f32, f16: the values (f16 widened to float)
  quant::QuantizedTensor quantized;  // ternary*, pow2*: codes and codebooks
  int64_t file_bytes = 0;            // bytes of its record in the file (name, shape, payload)

  bool is_quantized() const { return io::is_quantized(encoding); }
  Shape shape() const { return is_quantized() ? quantized.shape : dense.shape(); }
  int64_t numel() const { return is_quantized() ? quantized.numel() : dense.numel(); }
  // The dense weights (codebook values for the codes): what the network computes with.
  Tensor<float> expand() const { return is_quantized() ? quantized.expand() : dense; }
  // Share of elements that are exactly zero.
  double sparsity() const {
    if (is_quantized()) return quantized.sparsity();
    if (dense.numel() == 0) return 0.0;
    int64_t zeros = 0;
    for (int64_t i = 0; i < dense.numel(); ++i) zeros += dense[i] == 0.0f;
    return double(zeros) / double(dense.numel());
  }
};

// What a .trit file holds.
struct CompressedModel {
  models::ModelConfig config;                   // make_model(config) rebuilds the network
  std::map<std::string, std::string> metadata;  // free key/value strings
  std::vector<CompressedTensor> tensors;        // state_dict order
  int64_t file_bytes = 0;                       // size of the file (filled by compress, read)

  const CompressedTensor* find(const std::string& name) const {
    for (auto& t : tensors)
      if (t.name == name) return &t;
    return nullptr;
  }
};

struct CompressOptions {
  bool entropy = true;  // quantized tensors: the smaller of fixed-length and rANS-coded codes
  bool fp16 = false;    // non-quantized tensors in half precision (lossy)
  std::map<std::string, std::string> metadata;
};

namespace detail {

// float -> IEEE half, rounding to nearest even; overflow gives inf.
inline uint16_t float_to_half(float value) {
  const uint32_t x = std::bit_cast<uint32_t>(value);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  const uint32_t exponent = (x >> 23) & 0xff;
  uint32_t mantissa = x & 0x7fffff;
  if (exponent == 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);  // inf, nan
  const int e = int(exponent) - 127 + 15;                               // half's exponent
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {  // a half subnormal (or zero): mantissa * 2^-24
    if (e < -10) return sign;
    mantissa |= 0x800000;
    const int shift = 14 - e;
    uint32_t half = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1), halfway = 1u << (shift - 1);
    if (rest > halfway || (rest == halfway && (half & 1))) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t half = (uint32_t(e) << 10) | (mantissa >> 13);
  const uint32_t rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (half & 1))) ++half;  // a carry may reach inf: right
  return static_cast<uint16_t>(sign | half);
}

// Whether every value survives a trip through half precision without overflow.
inline bool fits_half(const Tensor<float>& t) {
  for (int64_t i = 0; i < t.numel(); ++i)
    if (!(std::fabs(t[i]) <= 65504.0f)) return false;
  return true;
}

// Bits per code of a fixed-length encoding.
inline int fixed_code_bits(TensorEncoding e, const quant::QuantizedTensor& q) {
  return e == TensorEncoding::ternary2 ? 2 : q.bits_per_code();
}

// Number of elements of `shape`, or -1 past kTritMaxElements (overflow-safe).
inline int64_t bounded_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return -1;
    if (d != 0 && n > kTritMaxElements / d) return -1;
    n *= d;
  }
  return n <= kTritMaxElements ? n : -1;
}

// Checks that `q` can be written as `encoding`; `where` names the file.
inline void check_quantized(const quant::QuantizedTensor& q, TensorEncoding encoding,
                            const std::string& where) {
  const std::string& n = q.name;
  check(bounded_numel(q.shape) == q.numel(), where, "tensor '", n, "': ", q.numel(),
        " codes for shape ", to_string(q.shape), " (or more than ", kTritMaxElements, " elements)");
  check(q.groups == 1 || (!q.shape.empty() && q.groups == q.shape[0] && q.groups >= 1), where,
        "tensor '", n, "': ", q.groups, " codebook groups for shape ", to_string(q.shape),
        " (1 or one per output channel)");
  check(static_cast<int64_t>(q.codebooks.size()) == q.groups, where, "tensor '", n,
        "': ", q.codebooks.size(), " codebooks for ", q.groups, " groups");
  const int64_t max_levels =
      (encoding == TensorEncoding::ternary2 || encoding == TensorEncoding::ternary_entropy) ? 3
                                                                                            : 256;
  for (const auto& book : q.codebooks) {
    check(!book.empty() && static_cast<int64_t>(book.size()) <= max_levels, where, "tensor '", n,
          "': a codebook of ", book.size(), " values (", tensor_encoding_name(encoding),
          " takes 1 to ", max_levels, ")");
    check(book[0] == 0.0f, where, "tensor '", n, "': code 0 must stand for 0, not ", book[0]);
    for (float v : book)
      check(std::isfinite(v), where, "tensor '", n, "': non-finite codebook value");
  }
  const int64_t per_group = q.numel() / q.groups;
  for (int64_t i = 0; i < q.numel(); ++i)
    check(q.codes[size_t(i)] < q.codebooks[size_t(i / per_group)].size(), where, "tensor '", n,
          "': code ", int(q.codes[size_t(i)]), " at ", i, " outside its codebook");
}

// The payload of one tensor (layout in the header comment).
inline std::string encode_payload(const CompressedTensor& t, const std::string& where) {
  ByteWriter w;
  switch (t.encoding) {
    case TensorEncoding::f32:
      w.elements(t.dense.data(), t.dense.numel());
      return w.out;
    case TensorEncoding::f16:
      for (int64_t i = 0; i < t.dense.numel(); ++i) w.scalar<uint16_t>(float_to_half(t.dense[i]));
      return w.out;
    default:
      break;
  }
  const quant::QuantizedTensor& q = t.quantized;
  check_quantized(q, t.encoding, where);
  w.varint(uint64_t(q.groups));
  for (const auto& book : q.codebooks) {
    w.scalar<uint8_t>(static_cast<uint8_t>(book.size()));
    w.elements(book.data() + 1, static_cast<int64_t>(book.size()) - 1);
  }
  if (is_entropy_coded(t.encoding)) {
    w.out += rans_encode(q.codes);
    return w.out;
  }
  // Fixed-length codes, b bits each, least significant bit first.
  const int b = fixed_code_bits(t.encoding, q);
  std::string packed(size_t((q.numel() * b + 7) / 8), '\0');
  for (int64_t i = 0; i < q.numel(); ++i) {
    const uint32_t code = q.codes[size_t(i)];
    for (int k = 0; k < b; ++k) {
      const int64_t bit = i * b + k;
      if ((code >> k) & 1u) packed[size_t(bit / 8)] |= static_cast<char>(1u << (bit % 8));
    }
  }
  w.out += packed;
  return w.out;
}

// Length of the common beginning of two names.
inline size_t shared_prefix(const std::string& a, const std::string& b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

// One tensor's record: name (sharing its beginning with `previous_name`), encoding, shape,
// payload length and payload.
inline std::string encode_record(const CompressedTensor& t, const std::string& previous_name,
                                 const std::string& where) {
  const Shape shape = t.shape();
  check(shape.size() <= kTritMaxRank, where, "tensor '", t.name, "' has rank ", shape.size(),
        " (at most ", kTritMaxRank, ")");
  check(bounded_numel(shape) >= 0, where, "tensor '", t.name, "' of shape ", to_string(shape),
        " has more than ", kTritMaxElements, " elements");
  const std::string payload = encode_payload(t, where);
  ByteWriter w;
  const size_t shared = shared_prefix(previous_name, t.name);
  w.varint(shared);
  w.varint_string(std::string_view(t.name).substr(shared));
  w.scalar<uint8_t>(static_cast<uint8_t>(t.encoding));
  w.scalar<uint8_t>(static_cast<uint8_t>(shape.size()));
  for (int64_t d : shape) w.varint(uint64_t(d));
  w.varint(payload.size());
  w.out += payload;
  return w.out;
}

// Everything before the first record: magic, version, model, metadata, tensor count.
inline std::string encode_preamble(const CompressedModel& m, const std::string& where) {
  ByteWriter w;
  w.out.append(kTritMagic, sizeof kTritMagic);
  w.scalar<uint32_t>(kTritVersion);
  const models::ModelConfig& c = m.config;
  w.varint_string(c.name);
  w.varint(uint64_t(c.num_classes));
  w.varint(uint64_t(c.in_channels));
  w.varint(uint64_t(c.input_size));
  w.scalar<double>(c.width);
  w.scalar<uint8_t>(!c.small_input ? 0 : (*c.small_input ? 2 : 1));
  w.scalar<uint8_t>(c.shortcut == models::CifarShortcut::A ? 0 : 1);
  w.varint(m.metadata.size());
  for (auto& [key, value] : m.metadata) {
    w.varint_string(key);
    w.varint_string(value);
  }
  w.varint(m.tensors.size());
  return w.out;
}

// Reads one payload (exactly `in.remaining()` bytes) into `t`, whose name, encoding and
// shape are set.
inline void decode_payload(ByteReader& in, CompressedTensor& t, const Shape& shape, int64_t numel,
                           const std::string& where) {
  const std::string& n = t.name;
  if (t.encoding == TensorEncoding::f32 || t.encoding == TensorEncoding::f16) {
    const size_t element = t.encoding == TensorEncoding::f32 ? 4 : 2;
    check(in.remaining() == size_t(numel) * element, where, "corrupt file: tensor '", n,
          "' of shape ", to_string(shape), " has ", in.remaining(), " bytes of ",
          tensor_encoding_name(t.encoding), " data, expected ", size_t(numel) * element);
    t.dense = Tensor<float>::empty(shape);
    if (t.encoding == TensorEncoding::f32) {
      in.elements(t.dense.data(), numel, "tensor data");
    } else {
      for (int64_t i = 0; i < numel; ++i)
        t.dense[i] = half_to_float(in.scalar<uint16_t>("tensor data"));
    }
    return;
  }
  quant::QuantizedTensor& q = t.quantized;
  q.name = n;
  q.shape = shape;
  q.encoding =
      (t.encoding == TensorEncoding::ternary2 || t.encoding == TensorEncoding::ternary_entropy)
          ? quant::Encoding::ternary
          : quant::Encoding::power_of_two;
  const uint64_t groups = in.varint("codebook groups");
  check(groups == 1 || (groups > 1 && !shape.empty() && groups == uint64_t(shape[0])), where,
        "corrupt file: tensor '", n, "' of shape ", to_string(shape), " has ", groups,
        " codebook groups");
  q.groups = int64_t(groups);
  const size_t max_levels = q.encoding == quant::Encoding::ternary ? 3 : 256;
  for (uint64_t g = 0; g < groups; ++g) {
    const size_t levels = in.scalar<uint8_t>("codebook size");  // a u8 may not hold 256: 0 = 256
    const size_t L = levels == 0 ? 256 : levels;
    check(L <= max_levels, where, "corrupt file: tensor '", n, "' has a codebook of ", L,
          " values for ", tensor_encoding_name(t.encoding));
    in.need((L - 1) * 4, "codebook");
    std::vector<float> book(L, 0.0f);
    in.elements(book.data() + 1, int64_t(L) - 1, "codebook");
    for (float v : book)
      check(std::isfinite(v), where, "corrupt file: tensor '", n,
            "' has a non-finite codebook value");
    q.codebooks.push_back(std::move(book));
  }
  if (is_entropy_coded(t.encoding)) {
    q.codes =
        rans_decode(in.position(), in.remaining(), size_t(numel), where + ": tensor '" + n + "'");
    in.skip(in.remaining(), "codes");
  } else {
    const int b = fixed_code_bits(t.encoding, q);
    const size_t bytes = size_t((numel * b + 7) / 8);
    check(in.remaining() == bytes, where, "corrupt file: tensor '", n, "' of shape ",
          to_string(shape), " has ", in.remaining(), " bytes of ", b, "-bit codes, expected ",
          bytes);
    const uint8_t* p = reinterpret_cast<const uint8_t*>(in.position());
    q.codes.assign(size_t(numel), 0);
    for (int64_t i = 0; i < numel; ++i) {
      uint32_t code = 0;
      for (int k = 0; k < b; ++k) {
        const int64_t bit = i * b + k;
        code |= uint32_t((p[bit / 8] >> (bit % 8)) & 1u) << k;
      }
      check(code < 256, where, "corrupt file: tensor '", n, "': code ", code, " out of range");
      q.codes[size_t(i)] = static_cast<uint8_t>(code);
    }
    // The padding bits after the last code must be zero.
    for (int64_t bit = numel * b; bit < int64_t(bytes) * 8; ++bit)
      check(((p[bit / 8] >> (bit % 8)) & 1u) == 0, where, "corrupt file: tensor '", n,
            "': non-zero padding bits");
    in.skip(bytes, "codes");
  }
  const int64_t per_group = numel / int64_t(groups);
  for (int64_t i = 0; i < numel; ++i)
    check(q.codes[size_t(i)] < q.codebooks[size_t(i / per_group)].size(), where,
          "corrupt file: tensor '", n, "': code ", int(q.codes[size_t(i)]), " at ", i,
          " outside its codebook");
}

}  // namespace detail

// The bytes of the .trit file of `model` (tensors in the encodings they name). `where` names
// the destination in errors (a tensor that cannot be written as its encoding).
inline std::string serialize_compressed(const CompressedModel& model,
                                        const std::string& where = "serialize_compressed") {
  for (size_t i = 0; i < model.tensors.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      check(model.tensors[j].name != model.tensors[i].name, where, "duplicate tensor name '",
            model.tensors[i].name, "'");
  std::string out = detail::encode_preamble(model, where);
  std::string previous_name;
  for (const CompressedTensor& t : model.tensors) {
    out += detail::encode_record(t, previous_name, where);
    previous_name = t.name;
  }
  detail::ByteWriter crc;
  crc.scalar<uint32_t>(detail::crc32_of(out.data(), out.size()));
  return out + crc.out;
}

// Parses the `size` bytes of a .trit file at `data`; errors name `where` (the file's path).
inline CompressedModel parse_compressed(const char* data, size_t size, const std::string& where) {
  using detail::ByteReader;
  check(size >= sizeof kTritMagic && std::memcmp(data, kTritMagic, sizeof kTritMagic) == 0, where,
        "not a .trit file (expected magic TRIT)");
  check(!(size >= 8 && std::memcmp(data, "TRITCKPT", 8) == 0), where,
        "a trit checkpoint (io::load_checkpoint), not a .trit model file");
  ByteReader head(data + sizeof kTritMagic, size - sizeof kTritMagic, where);
  const uint32_t version = head.scalar<uint32_t>("version");
  check(version == kTritVersion, where, "unsupported .trit version ", version,
        " (this build reads version ", kTritVersion, ")");
  // Nothing after the version is trusted before the checksum agrees.
  head.need(4, "checksum");
  const size_t body_end = size - 4;
  const uint32_t stored = ByteReader(data + body_end, 4, where).scalar<uint32_t>("checksum");
  check(stored == detail::crc32_of(data, body_end), where,
        "checksum mismatch (file corrupt or truncated)");

  const size_t start = sizeof kTritMagic + 4;
  ByteReader in(data + start, body_end - start, where);
  CompressedModel m;
  m.file_bytes = static_cast<int64_t>(size);
  models::ModelConfig& c = m.config;
  // A count or size; at most 2^62, so casts to int64_t stay positive.
  auto count = [&](const char* what) {
    const uint64_t v = in.varint(what);
    check(v <= (uint64_t(1) << 62), where, "corrupt file: ", what, " ", v, " out of range");
    return int64_t(v);
  };
  c.name = in.varint_string("model name");
  c.num_classes = count("num_classes");
  c.in_channels = count("in_channels");
  c.input_size = count("input_size");
  c.width = in.scalar<double>("width");
  const uint8_t small_input = in.scalar<uint8_t>("small_input");
  const uint8_t shortcut = in.scalar<uint8_t>("shortcut");
  check(!c.name.empty() && c.num_classes >= 1 && c.in_channels >= 1 && c.input_size >= 1 &&
            std::isfinite(c.width) && c.width > 0 && small_input <= 2 && shortcut <= 1,
        where, "corrupt file: invalid model arguments (name '", c.name, "', num_classes ",
        c.num_classes, ", in_channels ", c.in_channels, ", input_size ", c.input_size, ", width ",
        c.width, ", small_input ", int(small_input), ", shortcut ", int(shortcut), ")");
  if (small_input) c.small_input = small_input == 2;
  c.shortcut = shortcut == 0 ? models::CifarShortcut::A : models::CifarShortcut::B;

  const int64_t n_meta = count("metadata count");
  for (int64_t i = 0; i < n_meta; ++i) {
    std::string key = in.varint_string("metadata key");
    check(m.metadata.count(key) == 0, where, "corrupt file: metadata key '", key, "' twice");
    m.metadata[key] = in.varint_string("metadata value");
  }
  const int64_t n_tensors = count("tensor count");
  std::string previous_name;
  for (int64_t i = 0; i < n_tensors; ++i) {
    const size_t record_start = in.remaining();
    CompressedTensor t;
    const uint64_t shared = in.varint("tensor name");
    check(shared <= previous_name.size(), where, "corrupt file: tensor ", i, " shares ", shared,
          " characters of the previous name '", previous_name, "'");
    t.name = previous_name.substr(0, size_t(shared)) + in.varint_string("tensor name");
    check(m.find(t.name) == nullptr, where, "corrupt file: tensor name '", t.name, "' twice");
    previous_name = t.name;
    const uint8_t encoding = in.scalar<uint8_t>("encoding");
    check(encoding <= uint8_t(TensorEncoding::pow2_entropy), where, "tensor '", t.name,
          "': unknown encoding ", int(encoding));
    t.encoding = TensorEncoding(encoding);
    const uint8_t rank = in.scalar<uint8_t>("rank");
    check(rank <= kTritMaxRank, where, "corrupt file: tensor '", t.name, "' of rank ", int(rank));
    Shape shape(rank);
    for (uint8_t d = 0; d < rank; ++d) shape[d] = count("dims");
    const int64_t numel = detail::bounded_numel(shape);
    check(numel >= 0, where, "corrupt file: tensor '", t.name, "' has shape ", to_string(shape),
          " (negative, or more than ", kTritMaxElements, " elements)");
    const uint64_t payload_size = in.varint("payload length");
    in.need(payload_size, "tensor payload");  // so the cast below is safe
    ByteReader payload(in.position(), size_t(payload_size), where);
    detail::decode_payload(payload, t, shape, numel, where);
    check(payload.remaining() == 0, where, "corrupt file: tensor '", t.name, "' leaves ",
          payload.remaining(), " payload bytes unread");
    in.skip(size_t(payload_size), "tensor payload");
    t.file_bytes = static_cast<int64_t>(record_start - in.remaining());
    m.tensors.push_back(std::move(t));
  }
  check(in.remaining() == 0, where, "corrupt file: ", in.remaining(),
        " unexpected bytes after the last tensor");
  return m;
}

// Builds the compressed form of a model: `state` is its state_dict (every tensor, in order),
// `quantized` the codes of the quantized ones (matched by name; each must have the shape and
// expand to exactly the values of its state_dict tensor). Fills the byte counts.
inline CompressedModel compress(const models::ModelConfig& config,
                                const std::vector<std::pair<std::string, Tensor<float>>>& state,
                                const std::vector<quant::QuantizedTensor>& quantized,
                                const CompressOptions& options = {},
                                const std::string& where = "compress") {
  CompressedModel m;
  m.config = config;
  m.metadata = options.metadata;
  for (const auto& q : quantized) {
    bool found = false;
    for (auto& entry : state) found = found || entry.first == q.name;
    check(found, where, "quantized tensor '", q.name, "' is not in the state_dict");
  }
  for (const auto& [name, tensor] : state) {
    CompressedTensor t;
    t.name = name;
    const std::string previous = m.tensors.empty() ? std::string() : m.tensors.back().name;
    const quant::QuantizedTensor* q = nullptr;
    for (const auto& candidate : quantized)
      if (candidate.name == name) q = &candidate;
    if (!q) {
      // A copy (detached from the module); f16 ones hold the rounded values, as read back.
      t.dense = tensor.clone();
      const bool counter = name.ends_with("num_batches_tracked");
      t.encoding = options.fp16 && !counter && detail::fits_half(tensor) ? TensorEncoding::f16
                                                                         : TensorEncoding::f32;
      if (t.encoding == TensorEncoding::f16)
        for (int64_t i = 0; i < t.dense.numel(); ++i)
          t.dense[i] = detail::half_to_float(detail::float_to_half(t.dense[i]));
      t.file_bytes = static_cast<int64_t>(detail::encode_record(t, previous, where).size());
      m.tensors.push_back(std::move(t));
      continue;
    }
    check(q->shape == tensor.shape(), where, "quantized tensor '", name, "' has shape ",
          to_string(q->shape), ", the state_dict's ", to_string(tensor.shape()));
    t.quantized = *q;
    const bool ternary = q->encoding == quant::Encoding::ternary;
    t.encoding = ternary ? TensorEncoding::ternary2 : TensorEncoding::pow2;
    // Codes must be the weights themselves (read off the forward weights by quant::encode).
    detail::check_quantized(*q, t.encoding, where);
    const Tensor<float> expanded = q->expand();
    for (int64_t i = 0; i < tensor.numel(); ++i)
      check(expanded[i] == tensor[i], where, "quantized tensor '", name,
            "' differs from the state_dict at ", i, ": code value ", expanded[i], ", weight ",
            tensor[i]);
    t.file_bytes = static_cast<int64_t>(detail::encode_record(t, previous, where).size());
    if (options.entropy) {
      CompressedTensor coded = t;
      coded.encoding = ternary ? TensorEncoding::ternary_entropy : TensorEncoding::pow2_entropy;
      coded.file_bytes = static_cast<int64_t>(detail::encode_record(coded, previous, where).size());
      if (coded.file_bytes < t.file_bytes) t = std::move(coded);
    }
    m.tensors.push_back(std::move(t));
  }
  m.file_bytes = static_cast<int64_t>(detail::encode_preamble(m, where).size()) + 4;
  for (auto& t : m.tensors) m.file_bytes += t.file_bytes;
  return m;
}

// Writes `model` to `path` atomically.
inline void save_compressed(const std::string& path, const CompressedModel& model) {
  write_file_atomically(path, serialize_compressed(model, path));
}

// compress() then save: the one call trit-train makes,
//   io::save_compressed(out + "/model.trit", config, model.state_dict(), codes);
// Returns what was written (with its byte counts).
inline CompressedModel save_compressed(
    const std::string& path, const models::ModelConfig& config,
    const std::vector<std::pair<std::string, Tensor<float>>>& state,
    const std::vector<quant::QuantizedTensor>& quantized, const CompressOptions& options = {}) {
  CompressedModel m = compress(config, state, quantized, options, path);
  save_compressed(path, m);
  return m;
}

// Reads and validates the .trit file at `path` (see the header comment); trit::Error naming
// `path` on any problem.
inline CompressedModel read_compressed(const std::string& path) {
  const std::vector<char> bytes = read_file(path);
  return parse_compressed(bytes.data(), bytes.size(), path);
}

// Every tensor as dense float values, by name, in file order (for a dense model).
inline std::vector<std::pair<std::string, Tensor<float>>> expand(const CompressedModel& model) {
  std::vector<std::pair<std::string, Tensor<float>>> out;
  for (const auto& t : model.tensors) out.emplace_back(t.name, t.expand());
  return out;
}

// Copies the expanded weights into `module` (names and shapes must match exactly: see
// io::load_state). `where` names the source in errors.
inline void load_compressed_weights(nn::Module<float>& module, const CompressedModel& model,
                                    const std::string& where = "compressed model") {
  Checkpoint c;
  for (auto& [name, tensor] : expand(model)) c.tensors.emplace_back(name, tensor);
  load_state(module, c, where);
}

// The dense FP32 network a .trit file describes: make_model(config) with its weights.
inline std::shared_ptr<nn::Module<float>> make_dense_model(
    const CompressedModel& model, const std::string& where = "compressed model") {
  std::shared_ptr<nn::Module<float>> net = models::make_model(model.config);
  load_compressed_weights(*net, model, where);
  return net;
}

// ---- size accounting (trit-inspect) -----------------------------------------------------------

// One row of the size table.
struct TensorSizeRow {
  std::string name;
  Shape shape;
  TensorEncoding encoding = TensorEncoding::f32;
  int64_t numel = 0;
  double sparsity = 0;    // share of exact zeros
  int64_t bytes = 0;      // its record in the file: name, shape, codebooks, payload
  int nominal_bits = 32;  // the "paper-style" width: 32 (f32), 16 (f16), bits_per_code()
  double bits_per_weight() const { return numel > 0 ? 8.0 * double(bytes) / double(numel) : 0.0; }
};

// Per-tensor sizes and totals of a compressed model.
struct SizeTable {
  std::vector<TensorSizeRow> rows;
  int64_t file_bytes = 0;     // the whole file: rows + header_bytes
  int64_t header_bytes = 0;   // magic, version, model, metadata, counts, checksum
  int64_t fp32_bytes = 0;     // every tensor at 4 bytes per element
  int64_t nominal_bytes = 0;  // paper-style: sum of nominal_bits x numel / 8, no codebooks
  int64_t quantized_weights = 0, zero_weights = 0;
  double compression_ratio() const {
    return file_bytes > 0 ? double(fp32_bytes) / double(file_bytes) : 0.0;
  }
  double nominal_ratio() const {
    return nominal_bytes > 0 ? double(fp32_bytes) / double(nominal_bytes) : 0.0;
  }
};

inline SizeTable size_table(const CompressedModel& model) {
  SizeTable table;
  int64_t record_bytes = 0, nominal_bits = 0;
  for (const auto& t : model.tensors) {
    TensorSizeRow row;
    row.name = t.name;
    row.shape = t.shape();
    row.encoding = t.encoding;
    row.numel = t.numel();
    row.sparsity = t.sparsity();
    row.bytes = t.file_bytes;
    row.nominal_bits = t.is_quantized() ? detail::fixed_code_bits(t.encoding, t.quantized)
                                        : (t.encoding == TensorEncoding::f16 ? 16 : 32);
    record_bytes += row.bytes;
    nominal_bits += int64_t(row.nominal_bits) * row.numel;
    table.fp32_bytes += 4 * row.numel;
    if (t.is_quantized()) {
      table.quantized_weights += row.numel;
      table.zero_weights +=
          std::count(t.quantized.codes.begin(), t.quantized.codes.end(), uint8_t(0));
    }
    table.rows.push_back(std::move(row));
  }
  table.file_bytes = model.file_bytes;
  table.header_bytes = model.file_bytes - record_bytes;
  table.nominal_bytes = (nominal_bits + 7) / 8;
  return table;
}

}  // namespace trit::io
