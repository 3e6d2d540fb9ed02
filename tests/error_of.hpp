#pragma once
// error_of(f): the message of the trit::Error that f throws, or "" when it throws none. Tests
// of bad input check what the message names (the op, the file, the shapes).
#include <string>

#include <trit/core/error.hpp>

namespace trit::testing {

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const trit::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace trit::testing
