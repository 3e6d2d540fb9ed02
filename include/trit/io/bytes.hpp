#pragma once
// Little-endian byte strings for trit's binary files (checkpoints, .trit models): a writer
// that appends values, a bounds-checked reader, and zlib's CRC-32.
//
// ByteReader never trusts a length it reads: every read first checks that the bytes are
// there, so a corrupt or truncated file raises trit::Error naming the file ("truncated or
// corrupt file: ...") instead of reading past the end or allocating a huge buffer.
#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>

#include "trit/core/error.hpp"

namespace trit::io::detail {

// Appends little-endian encodings to a byte string (`out`).
class ByteWriter {
 public:
  template <class U>
  void scalar(U value) {
    static_assert(std::is_trivially_copyable_v<U>);
    char bytes[sizeof(U)];
    std::memcpy(bytes, &value, sizeof(U));
    if constexpr (std::endian::native == std::endian::big) std::reverse(bytes, bytes + sizeof(U));
    out.append(bytes, sizeof(U));
  }
  // u32 length, then the bytes. `path` names the file in the error for a too long string.
  void string(const std::string& s, const std::string& path) {
    check(s.size() <= std::numeric_limits<uint32_t>::max(), path, "string too long to save");
    scalar<uint32_t>(static_cast<uint32_t>(s.size()));
    out.append(s);
  }
  // LEB128: 7 bits per byte, low bits first, high bit set on all bytes but the last
  // (1 byte for values < 128, at most 10 for a u64). For counts, lengths and sizes.
  void varint(uint64_t value) {
    while (value >= 0x80) {
      out.push_back(static_cast<char>((value & 0x7f) | 0x80));
      value >>= 7;
    }
    out.push_back(static_cast<char>(value));
  }
  // varint length, then the bytes (the .trit format's strings).
  void varint_string(std::string_view s) {
    varint(s.size());
    out.append(s);
  }
  template <class T>
  void elements(const T* data, int64_t n) {
    if constexpr (std::endian::native == std::endian::little) {
      out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n) * sizeof(T));
    } else {
      for (int64_t i = 0; i < n; ++i) scalar<T>(data[i]);
    }
  }
  std::string out;
};

// Reads little-endian values from the byte range [begin, begin + size); every read is
// bounds-checked first. `path` names the file in errors and must outlive the reader.
class ByteReader {
 public:
  ByteReader(const char* begin, size_t size, const std::string& path)
      : p_(begin), left_(size), path_(path) {}

  size_t remaining() const { return left_; }
  // Where the next read starts.
  const char* position() const { return p_; }
  void need(size_t n, const char* what) const {
    check(n <= left_, path_, "truncated or corrupt file: ", what, " needs ", n, " bytes, only ",
          left_, " left");
  }
  template <class U>
  U scalar(const char* what) {
    need(sizeof(U), what);
    char bytes[sizeof(U)];
    std::memcpy(bytes, p_, sizeof(U));
    if constexpr (std::endian::native == std::endian::big) std::reverse(bytes, bytes + sizeof(U));
    advance(sizeof(U));
    U value;
    std::memcpy(&value, bytes, sizeof(U));
    return value;
  }
  // A LEB128 value (ByteWriter::varint); more than 10 bytes, or bits beyond 64, are corrupt.
  uint64_t varint(const char* what) {
    uint64_t value = 0;
    for (int shift = 0;; shift += 7) {
      const uint8_t byte = scalar<uint8_t>(what);
      check(shift < 63 || byte <= 1, path_, "corrupt file: ", what, " does not fit 64 bits");
      value |= uint64_t(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return value;
    }
  }
  // n bytes as a string (checked).
  std::string bytes(size_t n, const char* what) {
    need(n, what);
    std::string s(p_, n);
    advance(n);
    return s;
  }
  // A string written by ByteWriter::varint_string.
  std::string varint_string(const char* what) { return bytes(varint(what), what); }
  std::string string(const char* what) {
    uint32_t n = scalar<uint32_t>(what);
    need(n, what);
    std::string s(p_, n);
    advance(n);
    return s;
  }
  template <class T>
  void elements(T* data, int64_t n, const char* what) {
    // The caller bounded n by remaining() / sizeof(T), so the product cannot overflow.
    need(static_cast<size_t>(n) * sizeof(T), what);
    if constexpr (std::endian::native == std::endian::little) {
      std::memcpy(data, p_, static_cast<size_t>(n) * sizeof(T));
      advance(static_cast<size_t>(n) * sizeof(T));
    } else {
      for (int64_t i = 0; i < n; ++i) data[i] = scalar<T>(what);
    }
  }
  // Skips n bytes (checked).
  void skip(size_t n, const char* what) {
    need(n, what);
    advance(n);
  }

 private:
  void advance(size_t n) {
    p_ += n;
    left_ -= n;
  }
  const char* p_;
  size_t left_;
  const std::string& path_;
};

// zlib's CRC-32 of `size` bytes at `data`.
inline uint32_t crc32_of(const char* data, size_t size) {
  uLong crc = ::crc32(0L, Z_NULL, 0);
  // zlib takes uInt lengths: feed large buffers in pieces.
  while (size > 0) {
    uInt piece = static_cast<uInt>(std::min<size_t>(size, 1u << 30));
    crc = ::crc32(crc, reinterpret_cast<const Bytef*>(data), piece);
    data += piece;
    size -= piece;
  }
  return static_cast<uint32_t>(crc);
}

}  // namespace trit::io::detail
