#pragma once
// Whole-file reads and crash-safe writes: the one place trit writes a file.
//
// write_file_atomically(path, ...) writes the new contents to "<path>.tmp.<pid>" in the same
// directory, flushes and fsyncs it, then renames it over `path` (rename within a directory is
// atomic on POSIX). A reader therefore sees either the complete old file or the complete new
// one, never a half-written file, even if the program is killed mid-write. On any failure the
// temporary file is removed, the old file is left untouched, and trit::Error names `path`.
//
// read_file(path) returns the bytes of a file, or throws trit::Error naming `path` and the
// reason (missing, a directory, unreadable).
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <functional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trit/core/error.hpp"

namespace trit::io {

namespace detail {
// fsync the file or directory at `path`; returns false (errno set) on failure.
inline bool fsync_path(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) return false;
  bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}
inline std::string parent_directory(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}
}  // namespace detail

// Replaces the file at `path` with what `write` puts into the stream (binary mode). If `write`
// throws, or any step fails, the old file (if any) stays as it was and trit::Error(path, ...)
// is thrown.
inline void write_file_atomically(const std::string& path,
                                  const std::function<void(std::ostream&)>& write) {
  const std::string temp = path + ".tmp." + std::to_string(::getpid());
  auto fail = [&](const std::string& why) {
    std::remove(temp.c_str());
    throw Error(path, "cannot write file: " + why);
  };
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) fail(std::string("cannot create ") + temp + ": " + std::strerror(errno));
    try {
      write(out);
    } catch (const std::exception& e) {
      out.close();
      fail(e.what());
    } catch (...) {
      out.close();
      fail("unknown exception while writing");
    }
    out.flush();
    if (!out) fail("write error (disk full?)");
    out.close();
    if (out.fail()) fail("error closing the file");
  }
  // The data must be on disk before the rename makes it visible under `path`.
  if (!detail::fsync_path(temp, false)) fail(std::string("fsync: ") + std::strerror(errno));
  if (std::rename(temp.c_str(), path.c_str()) != 0)
    fail(std::string("rename: ") + std::strerror(errno));
  // Make the rename itself durable; failure here cannot lose data any more, so it is ignored.
  detail::fsync_path(detail::parent_directory(path), true);
}

// Same, for contents already in memory.
inline void write_file_atomically(const std::string& path, std::string_view bytes) {
  write_file_atomically(path, [&](std::ostream& out) {
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  });
}

// All bytes of the file at `path`.
inline std::vector<char> read_file(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0)
    throw Error(path, std::string("cannot read file: ") + std::strerror(errno));
  check(!S_ISDIR(info.st_mode), path, "cannot read file: it is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path, std::string("cannot open file: ") + std::strerror(errno));
  std::vector<char> bytes;
  char chunk[1 << 16];
  // Read in chunks rather than trusting the size from stat (pipes, files that change).
  while (in.read(chunk, sizeof chunk) || in.gcount() > 0)
    bytes.insert(bytes.end(), chunk, chunk + in.gcount());
  check(in.eof() && !in.bad(), path, "read error");
  return bytes;
}

}  // namespace trit::io
