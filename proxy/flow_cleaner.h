#pragma once
// After each sync, forgets the UDP flows that point at endpoints which are gone (see
// proxy/stale_flows.h), on a thread of its own ("kdp/proxy-flows") so that a large conntrack
// dump never delays the next sync. The conntrack socket is opened in the caller's network
// namespace (the proxy's).

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "proxy/stale_flows.h"

namespace kdp::metrics {
class Counter;
}

namespace kdp::proxy {

class FlowCleaner {
 public:
  /// Opens the conntrack socket (throws std::runtime_error when it cannot) and starts the thread.
  explicit FlowCleaner(metrics::Counter& deleted);
  ~FlowCleaner();  // stops and joins
  FlowCleaner(const FlowCleaner&) = delete;
  FlowCleaner& operator=(const FlowCleaner&) = delete;

  /// The UDP destinations of the ruleset the kernel now holds (udpDestinations()); only the
  /// newest one waiting is looked at. Any thread.
  void applied(UdpDestinations destinations);

 private:
  void run();

  struct Io;
  std::unique_ptr<Io> io_;
  metrics::Counter& deleted_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<UdpDestinations> pending_;  // guarded by mu_
  bool stopping_ = false;                   // guarded by mu_
  std::thread thread_;
};

}  // namespace kdp::proxy
