#pragma once
// The DNS server: N worker threads ("kdp/dns-N"), each with its own epoll loop, its own
// SO_REUSEPORT UDP socket and TCP listener per --listen address (the kernel spreads queries and
// connections over them), answering from the current zone.
//
// The zone is published through a ZoneHolder: the watcher stores a new shared_ptr<const Zone>
// and bumps a generation number; each worker compares the generation once per wake-up and takes
// its own reference when it changed, so readers never lock and an old zone dies when the last
// worker lets go of it.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/host_port.h"
#include "dns/zone.h"

namespace kdp::dns {

class Cache;

/// The current zone, shared by the watcher (writer) and the workers (readers). Thread-safe.
class ZoneHolder {
 public:
  explicit ZoneHolder(std::shared_ptr<const Zone> initial);

  /// Publishes `zone`. Any thread (the watcher).
  void publish(std::shared_ptr<const Zone> zone);
  /// The current zone. Any thread.
  std::shared_ptr<const Zone> load() const { return zone_.load(std::memory_order_acquire); }
  /// Bumped by every publish(); cheap to poll.
  std::uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  std::atomic<std::shared_ptr<const Zone>> zone_;
  std::atomic<std::uint64_t> generation_{0};
};

/// Startup-only settings (refused at runtime, STYLE.md 9).
struct ServerOptions {
  std::vector<HostPort> listen;
  unsigned threads = 1;
  std::vector<HostPort> upstreams;  // empty: names outside the zone get SERVFAIL
  std::size_t cacheSize = 10000;    // forwarded answers kept; 0: no cache
  std::vector<std::string> hostSearch;  // --autopath: the node's search domains (wire, lower)
  int tcpIdleTimeoutMs = 10000;
  std::size_t maxTcpConnectionsPerWorker = 1024;
};

class Worker;

class Server {
 public:
  Server(ServerOptions options, std::shared_ptr<ZoneHolder> zones);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds every socket (throws std::runtime_error naming the address on failure), then starts
  /// the workers. Main thread.
  void start();
  /// Wakes every worker so that it picks up a newly published zone at once. Any thread.
  void notifyZoneChanged();
  /// Stops and joins the workers; closes the sockets. Idempotent. Main thread.
  void stop();

 private:
  ServerOptions options_;
  std::shared_ptr<ZoneHolder> zones_;
  std::shared_ptr<Cache> cache_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopping_{false};
};

}  // namespace kdp::dns
