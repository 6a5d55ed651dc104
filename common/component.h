#pragma once
// A data-plane component (proxy, dns, ingress) as main runs it: built from its options, started
// on the shared store once the source has delivered its first full state, stopped on SIGTERM.

#include <string_view>

namespace kdp::k8s {
class Store;
}

namespace kdp {

class Component {
 public:
  virtual ~Component() = default;

  virtual std::string_view name() const = 0;
  /// Subscribes to the store and starts serving on threads of its own; returns without waiting
  /// for them. Throws std::runtime_error with a one-line message when it cannot start (a port in
  /// use, no permission). Main thread.
  virtual void start(k8s::Store& store) = 0;
  /// True once it serves its first full state (/readyz). Any thread.
  virtual bool ready() const = 0;
  /// Stops serving and joins its threads. Idempotent. Main thread.
  virtual void stop() = 0;
};

}  // namespace kdp
