#pragma once
// Resident memory of the test process, for tests that check memory stays flat over training
// steps. Under AddressSanitizer freed memory sits in a quarantine, so resident memory grows
// by design; there LeakSanitizer checks for leaks instead and these checks are skipped.
#include <fstream>
#include <string>

namespace trit::testing {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kResidentMemoryIsMeaningful = false;
#else
inline constexpr bool kResidentMemoryIsMeaningful = true;
#endif

// VmRSS from /proc/self/status, in KiB (-1 if unreadable).
inline long resident_kib() {
  std::ifstream status("/proc/self/status");
  std::string key;
  long value = 0;
  while (status >> key) {
    if (key == "VmRSS:") {
      status >> value;
      return value;
    }
  }
  return -1;
}

}  // namespace trit::testing
