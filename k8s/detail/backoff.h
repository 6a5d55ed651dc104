#pragma once
// Capped exponential backoff with jitter, as client-go's reflector waits between failed
// list/watch attempts: never a hot loop, never more than the cap. Pure: the random fraction is
// the caller's.

#include <algorithm>
#include <chrono>

namespace kdp::k8s::detail {

class Backoff {
 public:
  using Duration = std::chrono::milliseconds;

  Backoff(Duration initial, Duration cap) : initial_(initial), cap_(cap), next_(initial) {}

  /// The delay before the next attempt: the current step scaled by (0.5 + random/2), random in
  /// [0, 1]; then the step doubles up to the cap.
  Duration next(double random) {
    const Duration step = next_;
    next_ = std::min(cap_, next_ * 2);
    const double scale = 0.5 + std::clamp(random, 0.0, 1.0) / 2;
    return std::max(Duration(1), Duration(static_cast<Duration::rep>(
                                     static_cast<double>(step.count()) * scale)));
  }
  /// After a success: start again from the initial delay.
  void reset() { next_ = initial_; }

 private:
  Duration initial_, cap_, next_;
};

}  // namespace kdp::k8s::detail
