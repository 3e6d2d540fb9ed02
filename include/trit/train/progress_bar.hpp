#pragma once
// ProgressBar: one status line per loop (an epoch, an evaluation pass) on stderr:
//
//   train [#####...............] 123/469 1530 img/s ETA 0:12 loss 0.412 sparsity 80%
//
// On a terminal the line is redrawn in place with '\r', at most about 10 times a second. When
// the stream is not a terminal (a log file, a pipe) it prints plain lines instead, one each
// time another 10% of the steps is done, so logs hold no '\r' clutter. finish() prints the
// final state with the elapsed time and ends the line.
//
// Rate: `items_per_step` items (e.g. images per batch) per step, shown as "<rate> <unit>/s".
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <ostream>
#include <string>

#include <unistd.h>

#include "trit/core/error.hpp"

namespace trit::train {

// True when standard error is a terminal (so '\r' redraws are safe).
inline bool stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

// "0:07", "12:34", "1:02:03" for a duration in seconds.
inline std::string format_duration(double seconds) {
  int64_t s = seconds > 0 ? static_cast<int64_t>(seconds + 0.5) : 0;
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  return buf;
}

class ProgressBar {
 public:
  using Clock = std::chrono::steady_clock;

  // `total` steps (>= 0) under `label`; each step is `items_per_step` `unit`s.
  // `out` and `is_terminal` default to stderr and whether it is a terminal.
  ProgressBar(int64_t total, std::string label, int64_t items_per_step = 1,
              std::string unit = "it", std::ostream& out = std::cerr,
              bool is_terminal = stderr_is_terminal())
      : total_(total), label_(std::move(label)), items_per_step_(items_per_step),
        unit_(std::move(unit)), out_(out), terminal_(is_terminal), start_(Clock::now()) {
    check(total >= 0, "ProgressBar", "total steps must be >= 0, got ", total);
    check(items_per_step >= 1, "ProgressBar", "items per step must be >= 1, got ",
          items_per_step);
  }
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;
  // Ends a pending '\r' line so later output starts on a fresh line.
  ~ProgressBar() {
    if (terminal_ && drawn_ && !finished_) out_ << "\n" << std::flush;
  }

  // `done` steps are complete (0..total); `extra` is appended, e.g. "loss 0.412".
  void update(int64_t done, const std::string& extra = "") {
    done_ = std::max<int64_t>(done, 0);
    extra_ = extra;
    const auto now = Clock::now();
    if (terminal_) {
      if (drawn_ && now - last_draw_ < std::chrono::milliseconds(100) && done_ < total_) return;
      last_draw_ = now;
      redraw(line(now, false));
    } else {
      // Plain lines at each further 10% of the steps.
      int64_t decile = total_ > 0 ? done_ * 10 / total_ : 10;
      if (decile <= printed_decile_) return;
      printed_decile_ = decile;
      out_ << line(now, false) << "\n" << std::flush;
    }
  }

  // Prints the final state with the elapsed time and ends the line.
  void finish(const std::string& extra) {
    extra_ = extra;
    finish();
  }
  void finish() {
    if (finished_) return;
    finished_ = true;
    std::string text = line(Clock::now(), true);
    if (terminal_) {
      redraw(text);
      out_ << "\n" << std::flush;
    } else {
      out_ << text << "\n" << std::flush;
    }
  }

  // Seconds since construction.
  double elapsed() const { return seconds_since_start(Clock::now()); }

 private:
  double seconds_since_start(Clock::time_point now) const {
    return std::chrono::duration<double>(now - start_).count();
  }

  // "label [####......] done/total rate unit/s ETA m:ss extra" (or "in m:ss" when final).
  std::string line(Clock::time_point now, bool final) const {
    const int width = 20;
    int filled = total_ > 0 ? static_cast<int>(std::min<int64_t>(done_, total_) * width / total_)
                            : width;
    std::string text = label_ + " [" + std::string(filled, '#') +
                       std::string(width - filled, '.') + "] " + std::to_string(done_) + "/" +
                       std::to_string(total_);
    double seconds = seconds_since_start(now);
    if (done_ > 0 && seconds > 0) {
      double rate = static_cast<double>(done_ * items_per_step_) / seconds;
      char buf[64];
      std::snprintf(buf, sizeof buf, rate >= 100 ? " %.0f %s/s" : " %.1f %s/s", rate,
                    unit_.c_str());
      text += buf;
      if (!final && done_ < total_)
        text += " ETA " + format_duration(seconds / done_ * (total_ - done_));
    }
    if (final) text += " in " + format_duration(seconds);
    if (!extra_.empty()) text += " " + extra_;
    return text;
  }

  void redraw(const std::string& text) {
    // Pad with spaces to wipe what remains of a longer previous line.
    size_t pad = last_length_ > text.size() ? last_length_ - text.size() : 0;
    out_ << "\r" << text << std::string(pad, ' ') << std::flush;
    last_length_ = text.size();
    drawn_ = true;
  }

  int64_t total_;
  std::string label_;
  int64_t items_per_step_;
  std::string unit_;
  std::ostream& out_;
  bool terminal_;
  Clock::time_point start_, last_draw_;
  int64_t done_ = 0;
  std::string extra_;
  int64_t printed_decile_ = 0;
  size_t last_length_ = 0;
  bool drawn_ = false, finished_ = false;
};

}  // namespace trit::train
