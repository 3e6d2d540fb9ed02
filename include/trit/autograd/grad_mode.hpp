#pragma once
// Grad mode: whether ops record the graph. NoGradGuard turns recording off for its scope
// (evaluation, weight updates); the previous mode comes back when it is destroyed.
namespace trit {

namespace detail {
inline bool& grad_mode_flag() {
  thread_local bool enabled = true;
  return enabled;
}
}  // namespace detail

inline bool is_grad_enabled() { return detail::grad_mode_flag(); }

class NoGradGuard {
 public:
  NoGradGuard() : previous_(detail::grad_mode_flag()) { detail::grad_mode_flag() = false; }
  ~NoGradGuard() { detail::grad_mode_flag() = previous_; }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace trit
