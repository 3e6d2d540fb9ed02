#pragma once
// InterruptFlag: Ctrl-C as a request to stop cleanly.
//
// While an InterruptFlag exists, the first SIGINT only sets a flag (and prints a one-line
// notice); the training loop polls requested() after each batch, saves a checkpoint and
// leaves. A second SIGINT restores the default action and re-raises it, so a stuck program
// still dies on the second Ctrl-C. The destructor restores whatever handler was installed
// before. One InterruptFlag at a time (a second one throws trit::Error).
//
//   trit::train::InterruptFlag interrupt;
//   for (auto& batch : loader) { ...; if (interrupt.requested()) break; }
#include <atomic>
#include <csignal>

#include <signal.h>
#include <unistd.h>

#include "trit/core/error.hpp"

namespace trit::train {

namespace detail {
// Shared with the signal handler, which may only touch lock-free atomics.
static_assert(std::atomic<bool>::is_always_lock_free, "signal-safe flag needs lock-free atomics");
inline std::atomic<bool> interrupt_requested{false};
inline std::atomic<bool> interrupt_installed{false};

extern "C" inline void interrupt_handler(int signal_number) {
  if (interrupt_requested.exchange(true)) {
    // Second Ctrl-C: behave as if no handler were installed.
    std::signal(signal_number, SIG_DFL);
    std::raise(signal_number);
    return;
  }
  static const char notice[] =
      "\ninterrupt: stopping after the current batch (Ctrl-C again to quit now)\n";
  ssize_t ignored = ::write(STDERR_FILENO, notice, sizeof notice - 1);
  (void)ignored;
}
}  // namespace detail

class InterruptFlag {
 public:
  // Installs the SIGINT handler and clears any earlier request.
  InterruptFlag() {
    check(!detail::interrupt_installed.exchange(true), "InterruptFlag",
          "only one InterruptFlag may be installed at a time");
    detail::interrupt_requested = false;
    struct sigaction action {};
    action.sa_handler = detail::interrupt_handler;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;  // a blocking read is resumed, not failed with EINTR
    if (::sigaction(SIGINT, &action, &previous_) != 0) {
      detail::interrupt_installed = false;
      throw Error("InterruptFlag", "cannot install the SIGINT handler");
    }
  }
  InterruptFlag(const InterruptFlag&) = delete;
  InterruptFlag& operator=(const InterruptFlag&) = delete;
  // Restores the handler that was there before.
  ~InterruptFlag() {
    ::sigaction(SIGINT, &previous_, nullptr);
    detail::interrupt_installed = false;
  }

  // True once Ctrl-C was pressed (or SIGINT raised) since construction.
  bool requested() const { return detail::interrupt_requested.load(); }
  // Forget a request (e.g. after handling it and deciding to go on).
  void clear() { detail::interrupt_requested = false; }

 private:
  struct sigaction previous_ {};
};

}  // namespace trit::train
