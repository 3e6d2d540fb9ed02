#pragma once
// Reading a whole data file into memory, plain or gzip-compressed: zlib's gzread inflates a
// .gz file and passes any other file through unchanged, so every loader in trit/data accepts
// both. A size cap keeps a wrong or corrupt file from exhausting memory.
#include <zlib.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "trit/core/error.hpp"

namespace trit::data {

// Default cap on the decompressed size of one data file (CIFAR-10's largest is 30 MB,
// Fashion-MNIST's 47 MB).
inline constexpr uint64_t kMaxFileBytes = uint64_t(2) << 30;

// The decompressed bytes of `path`. Throws trit::Error(path, ...) when the file is missing, is
// not a regular file, cannot be read, is a corrupt or truncated gzip stream, or holds more
// than `max_bytes` bytes.
inline std::vector<uint8_t> read_file(const std::string& path, uint64_t max_bytes = kMaxFileBytes) {
  std::error_code ec;
  check(std::filesystem::exists(path, ec), path, "file not found");
  check(std::filesystem::is_regular_file(path, ec), path, "not a regular file");
  errno = 0;
  gzFile file = gzopen(path.c_str(), "rb");
  check(file != nullptr, path, "cannot open: ", errno ? std::strerror(errno) : "out of memory");

  std::vector<uint8_t> bytes;
  const unsigned chunk = 1u << 20;
  std::string failure;
  for (;;) {
    size_t old = bytes.size();
    bytes.resize(old + chunk);
    int got = gzread(file, bytes.data() + old, chunk);
    if (got < 0) {
      int code = 0;
      failure = gzerror(file, &code);
      if (failure.rfind(path + ": ", 0) == 0) failure.erase(0, path.size() + 2);  // zlib adds it
      break;
    }
    bytes.resize(old + static_cast<size_t>(got));
    if (got == 0) break;
    if (bytes.size() > max_bytes) {
      failure = error_message("more than ", max_bytes, " bytes; not a data file of this kind?");
      break;
    }
  }
  // gzclose reports a gzip stream that ended early (Z_BUF_ERROR) even when gzread did not.
  int closed = gzclose(file);
  if (failure.empty() && closed == Z_BUF_ERROR) failure = "unexpected end of file";
  if (failure.empty() && closed != Z_OK) failure = error_message("zlib error ", closed);
  if (!failure.empty()) throw Error(path, "cannot read (truncated or corrupt?): " + failure);
  bytes.shrink_to_fit();
  return bytes;
}

// `base` + ".gz" when that file exists, else `base` when it exists, else throws naming both.
inline std::string find_plain_or_gz(const std::string& base) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(base + ".gz", ec)) return base + ".gz";
  if (std::filesystem::is_regular_file(base, ec)) return base;
  throw Error(base, "file not found (neither " + base + ".gz nor " + base + " exists)");
}

}  // namespace trit::data
