#pragma once
// Finding a dataset's folder on disk. The search order, first match wins:
//   1. `explicit_dir` (a --data DIR flag), when not empty: it must exist;
//   2. $TRIT_DATA/<name>, then $TRIT_DATA itself, when the variable is set;
//   3. <system_root>/<name>, by default /usr/share/datasets/<name>, where Debian's
//      dataset-fashion-mnist package installs Fashion-MNIST.
#include <cstdlib>
#include <filesystem>
#include <string>

#include "trit/core/error.hpp"

namespace trit::data {

// The folder holding dataset `name` (e.g. "fashion-mnist"), searched as above. Throws
// trit::Error naming the places tried and how to get the data when none exists.
inline std::string find_dataset_dir(const std::string& name, const std::string& explicit_dir = "",
                                     const std::string& system_root = "/usr/share/datasets") {
  namespace fs = std::filesystem;
  std::error_code ec;
  auto is_dir = [&](const std::string& p) { return !p.empty() && fs::is_directory(p, ec); };
  if (!explicit_dir.empty()) {
    check(is_dir(explicit_dir), explicit_dir, "data folder for ", name, " not found");
    return explicit_dir;
  }
  std::string tried;
  if (const char* env = std::getenv("TRIT_DATA"); env && *env) {
    std::string root = env;
    if (is_dir(root + "/" + name)) return root + "/" + name;
    if (is_dir(root)) return root;
    tried += "$TRIT_DATA=" + root + " (no such folder), ";
  }
  std::string system_dir = system_root + "/" + name;
  if (is_dir(system_dir)) return system_dir;
  tried += system_dir;
  std::string how = name == "fashion-mnist"
                        ? "install it with: sudo apt-get install dataset-fashion-mnist (or bash "
                          "datasets/install-deps.sh), or pass --data DIR / set TRIT_DATA"
                        : "see datasets/README.md; pass --data DIR or set TRIT_DATA to the folder "
                          "holding it";
  throw Error(name, "dataset not found (tried " + tried + "); " + how);
}

}  // namespace trit::data
