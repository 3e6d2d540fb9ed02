#pragma once
// trit::Error: the one exception type trit throws for bad input.
//
// Contract: `what()` reads "<where>: <what>", where `where` names the boundary the bad value
// entered through (an op such as "conv2d", a file path, a flag such as "--lr") and `what`
// says what is wrong with it, with the offending values. Programs catch it, print
// "error: <what()>" on stderr and exit 1.
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace trit {

class Error : public std::runtime_error {
 public:
  Error(std::string where, const std::string& what)
      : std::runtime_error(where.empty() ? what : where + ": " + what), where_(std::move(where)) {}

  // The boundary (op, file, flag) the error was raised at.
  const std::string& where() const noexcept { return where_; }

 private:
  std::string where_;
};

// Builds a message from any streamable pieces: error_message("got ", n, " dims").
template <class... Parts>
std::string error_message(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

// Throws trit::Error(where, message) when `condition` is false. Hot paths call this on every
// element access or op, so nothing is built (no std::string) unless the check fails.
template <class... Parts>
void check(bool condition, std::string_view where, const Parts&... parts) {
  if (!condition) [[unlikely]]
    throw Error(std::string(where), error_message(parts...));
}

}  // namespace trit
