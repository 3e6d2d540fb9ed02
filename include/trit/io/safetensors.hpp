#pragma once
// safetensors: the weight format of Hugging Face and of much of the PyTorch world. A file
// written from a PyTorch model's state_dict() loads into the matching trit model, and trit's
// weights load back into PyTorch with load_state_dict(strict=True).
//
// File layout (https://github.com/huggingface/safetensors):
//   u64 N                      header length in bytes, little-endian
//   N bytes of JSON            {"__metadata__": {"key": "value", ...},        (optional)
//                               "<name>": {"dtype": "F32", "shape": [K, C, 3, 3],
//                                          "data_offsets": [begin, end]}, ...}
//                              (may end in spaces, which pad the data to 8 bytes)
//   the byte buffer            raw little-endian elements, row-major; a tensor's bytes are
//                              buffer[begin, end), offsets relative to the buffer's start
//
// Reading accepts F64, F32, F16, BF16, I64, I32, I16, I8, U8 and BOOL and converts every
// tensor to Tensor<float> (integers such as BatchNorm's num_batches_tracked become floats,
// exactly up to 2^24). Everything is checked before it is used: the header length against
// the file size (and a 100 MB cap), the JSON, every field, the offsets (inside the buffer,
// contiguous, not overlapping, covering it all), each tensor's byte count against numel x
// element size, and that no name appears twice. A bad file raises trit::Error naming the
// file (and the tensor); reading never allocates more than the file's size.
//
// Writing stores F32, except tensors whose name ends with "num_batches_tracked", stored as
// I64 as PyTorch keeps them, so that PyTorch's load_state_dict(strict=True) accepts the file.
// The header lists the tensors in the order given (a state_dict's order); the I64 data comes
// first in the buffer so that it is 8-byte aligned, which PyTorch's loader requires. Files
// are written atomically (write_file_atomically).
//
//   io::save_weights(model, "w.safetensors");            // model.state_dict(), in order
//   io::load_weights(model, "w.safetensors");            // strict: all names and shapes
//   io::LoadReport r = io::load_weights(model, path, false);  // loads what matches
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "trit/core/error.hpp"
#include "trit/core/shape.hpp"
#include "trit/core/tensor.hpp"
#include "trit/io/atomic_file.hpp"
#include "trit/nn/module.hpp"

namespace trit::io {

// The largest JSON header trit reads (the reference implementation's limit, too).
inline constexpr uint64_t kSafetensorsMaxHeader = 100u << 20;

// What a safetensors file holds: its "__metadata__" and its tensors in header order.
struct SafetensorsFile {
  std::map<std::string, std::string> metadata;
  std::vector<std::pair<std::string, Tensor<float>>> tensors;

  // The tensor called `name`, or nullptr.
  const Tensor<float>* find(const std::string& name) const {
    for (auto& [n, t] : tensors)
      if (n == name) return &t;
    return nullptr;
  }
};

namespace detail {

// A little-endian value of type U at p (p need not be aligned).
template <class U>
U load_le(const char* p) {
  char bytes[sizeof(U)];
  std::memcpy(bytes, p, sizeof(U));
  if constexpr (std::endian::native == std::endian::big) std::reverse(bytes, bytes + sizeof(U));
  U value;
  std::memcpy(&value, bytes, sizeof(U));
  return value;
}
template <class U>
void append_le(std::string& out, U value) {
  char bytes[sizeof(U)];
  std::memcpy(bytes, &value, sizeof(U));
  if constexpr (std::endian::native == std::endian::big) std::reverse(bytes, bytes + sizeof(U));
  out.append(bytes, sizeof(U));
}

// IEEE 754 half (1 sign, 5 exponent, 10 mantissa bits) -> float, exactly.
inline float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h >> 15) << 31;
  const uint32_t exponent = (h >> 10) & 0x1f;
  const uint32_t mantissa = h & 0x3ff;
  uint32_t bits;
  if (exponent == 0x1f) {  // inf or NaN
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {  // normal: rebias 15 -> 127
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else {  // zero or subnormal: mantissa x 2^-24, exact in float
    float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  return std::bit_cast<float>(bits);
}

// One safetensors dtype: its name, element size, and how one element becomes a float.
struct SafetensorsDtype {
  const char* name;
  size_t size;
  float (*to_float)(const char*);
};

inline const SafetensorsDtype* find_safetensors_dtype(const std::string& name) {
  static const SafetensorsDtype dtypes[] = {
      {"F64", 8, [](const char* p) { return static_cast<float>(load_le<double>(p)); }},
      {"F32", 4, [](const char* p) { return load_le<float>(p); }},
      {"F16", 2, [](const char* p) { return half_to_float(load_le<uint16_t>(p)); }},
      {"BF16", 2,
       [](const char* p) {
         return std::bit_cast<float>(static_cast<uint32_t>(load_le<uint16_t>(p)) << 16);
       }},
      {"I64", 8, [](const char* p) { return static_cast<float>(load_le<int64_t>(p)); }},
      {"I32", 4, [](const char* p) { return static_cast<float>(load_le<int32_t>(p)); }},
      {"I16", 2, [](const char* p) { return static_cast<float>(load_le<int16_t>(p)); }},
      {"I8", 1, [](const char* p) { return static_cast<float>(static_cast<int8_t>(*p)); }},
      {"U8", 1, [](const char* p) { return static_cast<float>(static_cast<uint8_t>(*p)); }},
      {"BOOL", 1, [](const char* p) { return *p != 0 ? 1.0f : 0.0f; }},
  };
  for (auto& d : dtypes)
    if (name == d.name) return &d;
  return nullptr;
}

// A tensor's header entry once validated: where its bytes are and how to read them.
struct SafetensorsEntry {
  std::string name;
  const SafetensorsDtype* dtype;
  Shape shape;
  uint64_t begin, end;
};

// Validates one header entry `value` for tensor `name` of a file whose byte buffer holds
// `buffer_size` bytes. Throws trit::Error(path, "tensor '<name>': ...") on any defect.
inline SafetensorsEntry parse_safetensors_entry(const std::string& path, const std::string& name,
                                                const nlohmann::ordered_json& value,
                                                uint64_t buffer_size) {
  auto fail = [&](const auto&... parts) {
    throw Error(path, error_message("tensor '", name, "': ", parts...));
  };
  if (!value.is_object()) fail("header entry is not an object");
  for (const char* field : {"dtype", "shape", "data_offsets"})
    if (!value.contains(field)) fail("header entry has no \"", field, "\"");
  for (auto& [key, v] : value.items())
    if (key != "dtype" && key != "shape" && key != "data_offsets")
      fail("unknown header field \"", key, "\"");

  SafetensorsEntry e;
  e.name = name;
  const nlohmann::ordered_json& dtype = value["dtype"];
  if (!dtype.is_string()) fail("\"dtype\" is not a string");
  e.dtype = find_safetensors_dtype(dtype.get<std::string>());
  if (!e.dtype)
    fail("unsupported dtype \"", dtype.get<std::string>(),
         "\" (trit reads F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)");

  const nlohmann::ordered_json& shape = value["shape"];
  if (!shape.is_array()) fail("\"shape\" is not an array");
  for (const nlohmann::ordered_json& d : shape) {
    if (!d.is_number_unsigned() || d.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
      fail("\"shape\" holds ", d.dump(), ", not an extent >= 0");
    e.shape.push_back(d.get<int64_t>());
  }
  // numel x size must not overflow; it must then equal end - begin <= buffer_size, so the
  // tensor allocated later is never larger than the file.
  const uint64_t max_numel = UINT64_MAX / e.dtype->size;
  const bool empty = std::find(e.shape.begin(), e.shape.end(), 0) != e.shape.end();
  uint64_t numel = empty ? 0 : 1;
  bool too_big = false;
  for (int64_t extent : e.shape) {
    if (empty || too_big) break;
    if (numel > max_numel / static_cast<uint64_t>(extent)) too_big = true;
    else numel *= static_cast<uint64_t>(extent);
  }

  const nlohmann::ordered_json& offsets = value["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned())
    fail("\"data_offsets\" is ", offsets.dump(), ", not [begin, end] with integers >= 0");
  e.begin = offsets[0].get<uint64_t>();
  e.end = offsets[1].get<uint64_t>();
  if (e.begin > e.end) fail("data_offsets [", e.begin, ", ", e.end, "] run backwards");
  if (e.end > buffer_size)
    fail("data_offsets [", e.begin, ", ", e.end, "] reach past the ", buffer_size,
         "-byte data buffer (file truncated?)");
  if (too_big || numel * e.dtype->size != e.end - e.begin)
    fail("shape ", to_string(e.shape), " of ", e.dtype->name, " needs ",
         too_big ? std::string("over 2^64") : std::to_string(numel * e.dtype->size),
         " bytes, but data_offsets [", e.begin, ", ", e.end, "] hold ", e.end - e.begin);
  return e;
}

}  // namespace detail

// Reads the safetensors file at `path`; tensors come back in the order of the header, all as
// Tensor<float>. Throws trit::Error naming `path` (and the tensor) when the file
// is missing, truncated, malformed, or holds an unsupported dtype.
inline SafetensorsFile load_safetensors(const std::string& path) {
  const std::vector<char> bytes = read_file(path);
  check(bytes.size() >= 8, path, "not a safetensors file: ", bytes.size(),
        " bytes, too short for the 8-byte header length");
  const uint64_t header_size = detail::load_le<uint64_t>(bytes.data());
  check(header_size <= kSafetensorsMaxHeader, path, "not a safetensors file: header length ",
        header_size, " exceeds the ", kSafetensorsMaxHeader, "-byte limit");
  check(header_size <= bytes.size() - 8, path, "truncated safetensors file: header length ",
        header_size, " but only ", bytes.size() - 8, " bytes follow it");
  const char* buffer = bytes.data() + 8 + header_size;
  const uint64_t buffer_size = bytes.size() - 8 - header_size;

  // ordered_json keeps the tensors in header order. JSON parsers keep the last of duplicate
  // keys silently; two tensors of one name are an error here, caught as the keys go by.
  std::set<std::string> names;
  auto no_duplicates = [&](int depth, nlohmann::ordered_json::parse_event_t event,
                           nlohmann::ordered_json& parsed) {
    if (depth == 1 && event == nlohmann::ordered_json::parse_event_t::key)
      check(names.insert(parsed.get<std::string>()).second, path, "tensor '",
            parsed.get<std::string>(), "' appears twice in the header");
    return true;
  };
  nlohmann::ordered_json header;
  try {
    header = nlohmann::ordered_json::parse(bytes.begin() + 8, bytes.begin() + 8 + header_size,
                                           no_duplicates);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path, std::string("safetensors header is not valid JSON: ") + e.what());
  }
  check(header.is_object(), path, "safetensors header is not a JSON object");

  SafetensorsFile file;
  std::vector<detail::SafetensorsEntry> entries;
  for (auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      check(value.is_object(), path, "\"__metadata__\" is not an object");
      for (auto& [key, v] : value.items()) {
        check(v.is_string(), path, "\"__metadata__\" value of \"", key, "\" is not a string");
        file.metadata[key] = v.get<std::string>();
      }
    } else {
      entries.push_back(detail::parse_safetensors_entry(path, name, value, buffer_size));
    }
  }

  // The tensors' byte ranges must tile the buffer: sorted by offset, each starts where the
  // previous one ended, and the last one ends at the end of the file.
  std::vector<const detail::SafetensorsEntry*> by_offset;
  for (const auto& e : entries) by_offset.push_back(&e);
  std::stable_sort(by_offset.begin(), by_offset.end(), [](const auto* a, const auto* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t expected = 0;
  const std::string* previous = nullptr;
  for (const auto* entry : by_offset) {
    const auto& e = *entry;
    check(e.begin >= expected, path, "tensors '", previous ? *previous : std::string(), "' and '",
          e.name, "' overlap: '", e.name, "' starts at byte ", e.begin, ", before ", expected);
    check(e.begin == expected, path, "gap in the data buffer: bytes [", expected, ", ", e.begin,
          ") before tensor '", e.name, "' belong to no tensor");
    expected = e.end;
    previous = &e.name;
  }
  check(expected == buffer_size, path, "data buffer holds ", buffer_size, " bytes but the tensors ",
        "cover ", expected, " (", buffer_size - expected, " bytes belong to no tensor)");

  for (const auto& e : entries) {
    Tensor<float> t = Tensor<float>::empty(e.shape);
    const char* p = buffer + e.begin;
    float* out = t.data();
    if (e.dtype->name == std::string_view("F32") && std::endian::native == std::endian::little) {
      std::memcpy(out, p, e.end - e.begin);
    } else {
      for (int64_t i = 0; i < t.numel(); ++i) out[i] = e.dtype->to_float(p + i * e.dtype->size);
    }
    file.tensors.emplace_back(e.name, t);
  }
  return file;
}

namespace detail {
// Tensors trit stores as I64, as PyTorch keeps them: BatchNorm's step counters.
inline bool stored_as_i64(const std::string& name) {
  const std::string suffix = "num_batches_tracked";
  return name.size() >= suffix.size() &&
         name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The order save_safetensors lays out the data of `tensors`: the I64 ones first, then the
// F32 ones, each group in the order given. Every element then sits at an offset that is a
// multiple of its size (PyTorch's loader needs that to view the bytes as int64).
inline std::vector<size_t> safetensors_data_order(
    const std::vector<std::pair<std::string, Tensor<float>>>& tensors) {
  std::vector<size_t> order;
  for (bool i64 : {true, false})
    for (size_t i = 0; i < tensors.size(); ++i)
      if (stored_as_i64(tensors[i].first) == i64) order.push_back(i);
  return order;
}
}  // namespace detail

// The JSON header save_safetensors writes for `tensors` and `metadata` (without the 8-byte
// length before it): compact, "__metadata__" first (when not empty), then the tensors in the
// order given, padded with spaces to a multiple of 8 bytes. Data offsets follow
// safetensors_data_order. Names must be distinct and non-empty; errors name `where`.
inline std::string safetensors_header(
    const std::vector<std::pair<std::string, Tensor<float>>>& tensors,
    const std::map<std::string, std::string>& metadata, const std::string& where) {
  std::vector<uint64_t> begin(tensors.size()), end(tensors.size());
  uint64_t offset = 0;
  for (size_t i : detail::safetensors_data_order(tensors)) {
    auto& [name, t] = tensors[i];
    check(t.defined(), where, "tensor '", name, "' is undefined");
    begin[i] = offset;
    offset += static_cast<uint64_t>(t.numel()) * (detail::stored_as_i64(name) ? 8 : 4);
    end[i] = offset;
  }
  // ordered_json keeps the header in the order given, so the file reads like the state_dict.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  for (size_t i = 0; i < tensors.size(); ++i) {
    auto& [name, t] = tensors[i];
    check(!name.empty() && name != "__metadata__", where, "invalid tensor name '", name, "'");
    check(!header.contains(name), where, "duplicate tensor name '", name, "'");
    header[name] = {{"dtype", detail::stored_as_i64(name) ? "I64" : "F32"},
                    {"shape", t.shape()},
                    {"data_offsets", {begin[i], end[i]}}};
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');  // the data starts 8-byte aligned
  return json;
}

// Writes `tensors` and `metadata` to `path` as safetensors (header as safetensors_header),
// atomically. Tensors named "*num_batches_tracked" are stored as I64 (values rounded), the
// rest as F32. Throws trit::Error naming `path`.
inline void save_safetensors(const std::string& path,
                             const std::vector<std::pair<std::string, Tensor<float>>>& tensors,
                             const std::map<std::string, std::string>& metadata = {}) {
  const std::string json = safetensors_header(tensors, metadata, path);
  write_file_atomically(path, [&](std::ostream& out) {
    std::string bytes;
    detail::append_le<uint64_t>(bytes, json.size());
    bytes += json;
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    for (size_t i : detail::safetensors_data_order(tensors)) {
      auto& [name, t] = tensors[i];
      bytes.clear();
      const float* data = t.data();
      if (detail::stored_as_i64(name)) {
        for (int64_t k = 0; k < t.numel(); ++k)
          detail::append_le<int64_t>(bytes, std::llround(data[k]));
      } else if constexpr (std::endian::native == std::endian::little) {
        bytes.assign(reinterpret_cast<const char*>(data), static_cast<size_t>(t.numel()) * 4);
      } else {
        for (int64_t k = 0; k < t.numel(); ++k) detail::append_le<float>(bytes, data[k]);
      }
      out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    }
  });
}

// How a file's tensors matched a module's state_dict in load_weights. Lists are sorted by
// the module's order (missing, mismatched) or the file's (unexpected).
struct LoadReport {
  std::vector<std::string> missing;     // in the module, not in the file
  std::vector<std::string> unexpected;  // in the file, not in the module
  std::vector<std::string> mismatched;  // "name: file [..] vs model [..]"
  int64_t loaded = 0;                   // tensors copied into the module

  bool complete() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  // "missing in file: a, b; unexpected in file: c; shape mismatch: d: file [2] vs model [3]",
  // only the non-empty parts; "" when complete().
  std::string to_string() const {
    std::string out;
    auto part = [&](const char* title, const std::vector<std::string>& names) {
      if (names.empty()) return;
      out += out.empty() ? "" : "; ";
      out += title;
      for (size_t i = 0; i < names.size(); ++i) out += (i ? ", " : " ") + names[i];
    };
    part("missing in file:", missing);
    part("unexpected in file:", unexpected);
    part("shape mismatch:", mismatched);
    return out;
  }
};

// Copies the tensors of `file` into the module's parameters and buffers by state_dict name,
// in place (optimizers holding the handles see the new values). Strict: any missing,
// unexpected or mis-shaped tensor raises trit::Error(`where`, ...) listing them all, and the
// module is left unchanged. Not strict: the matching tensors are loaded and the report lists
// the rest.
inline LoadReport load_weights(nn::Module<float>& module, const SafetensorsFile& file,
                               const std::string& where, bool strict = true) {
  LoadReport report;
  auto state = module.state_dict();
  std::map<std::string, const Tensor<float>*> in_file;
  for (auto& [name, t] : file.tensors) in_file[name] = &t;
  std::vector<std::pair<Tensor<float>, const Tensor<float>*>> copies;
  for (auto& [name, tensor] : state) {
    auto it = in_file.find(name);
    if (it == in_file.end()) {
      report.missing.push_back(name);
    } else if (it->second->shape() != tensor.shape()) {
      report.mismatched.push_back(name + ": file " + trit::to_string(it->second->shape()) +
                                  " vs model " + trit::to_string(tensor.shape()));
    } else {
      copies.emplace_back(tensor, it->second);
    }
  }
  std::map<std::string, bool> in_module;
  for (auto& [name, tensor] : state) in_module[name] = true;
  for (auto& [name, t] : file.tensors)
    if (!in_module.count(name)) report.unexpected.push_back(name);
  if (strict && !report.complete())
    throw Error(where, "weights do not match the model; " + report.to_string());
  for (auto& [destination, source] : copies) destination.copy_from(*source);
  report.loaded = static_cast<int64_t>(copies.size());
  return report;
}

// Reads the safetensors file at `path` into `module` (see above); errors name `path`.
inline LoadReport load_weights(nn::Module<float>& module, const std::string& path,
                               bool strict = true) {
  return load_weights(module, load_safetensors(path), path, strict);
}

// Saves module.state_dict() to `path` as safetensors, in state_dict order, with `metadata`.
inline void save_weights(const nn::Module<float>& module, const std::string& path,
                         const std::map<std::string, std::string>& metadata = {}) {
  save_safetensors(path, module.state_dict(), metadata);
}

}  // namespace trit::io
