#pragma once
// run_program: the conventions every trit program keeps, in one place. Parses the flags with
// CLI11, then runs the program's body:
//   --help                 prints the flags, exit 0
//   a usage error          "error: <what>" on stderr, exit 2
//   any other error        "error: <what>" on stderr (trit::Error says where), exit 1
// `after_parse` may check flags that depend on each other and throw a CLI::ParseError.
// Programs only: this header needs CLI11 (Debian's libcli11-dev).
#include <cstdio>
#include <exception>
#include <functional>

#include <CLI/CLI.hpp>

namespace trit {

inline int run_program(CLI::App& app, int argc, char** argv, const std::function<int()>& body,
                       const std::function<void()>& after_parse = {}) {
  try {
    app.parse(argc, argv);
    if (after_parse) after_parse();
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "error: %s\n(run with --help for the flags)\n", e.what());
    return 2;
  }
  try {
    return body();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}

}  // namespace trit
