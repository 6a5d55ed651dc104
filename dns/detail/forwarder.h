#pragma once
// Forwarding of names outside the cluster zone, one Forwarder per worker (single-threaded: it
// lives on its worker's event loop; only the Cache is shared).
//
// Each upstream query gets a fresh socket (so a random source port chosen by the kernel) and a
// random id; a response counts only when it comes from that socket, has that id and echoes the
// question. A truncated answer is retried over TCP to the same upstream; a timeout moves to the
// next upstream; after kForwardBudget the client gets SERVFAIL. Cluster names never wait here.
// Queries start at the upstream that answered last (a dead first nameserver costs one timeout,
// not one per query); try deadlines sit in a min-heap, so a wake-up costs O(log n) per timeout.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/fd.h"
#include "common/host_port.h"
#include "dns/answer.h"
#include "dns/detail/cache.h"
#include "dns/detail/server_metrics.h"

namespace kdp::dns {

inline constexpr std::chrono::milliseconds kForwardBudget{1900};
inline constexpr std::chrono::milliseconds kMinTryTimeout{250};

/// The nameservers of a resolv.conf text (port 53), in order; malformed lines are skipped.
std::vector<HostPort> parseResolvConf(std::string_view text);
/// The search domains of a resolv.conf text (the last `search` line), as lower-cased wire names.
std::vector<std::string> parseResolvConfSearch(std::string_view text);

class Forwarder {
 public:
  /// Receives the client's response and its rcode. Runs on the worker's thread.
  using Done = std::function<void(std::string reply, std::uint16_t rcode)>;
  /// Registers `fd` with the worker's loop for `events` (EPOLLIN/EPOLLOUT); 0 removes it.
  using Watch = std::function<void(int fd, std::uint32_t events)>;

  Forwarder(std::vector<HostPort> upstreams, std::shared_ptr<Cache> cache, ServerMetrics& metrics,
            Watch watch);
  ~Forwarder();

  bool enabled() const { return !upstreams_.empty(); }

  /// Resolves `a` (Disposition::Forward: the client's question; a Reply with externalTarget: the
  /// CNAME target, appended to a.wire; a Reply with autopath candidates: the first of them that
  /// exists upstream, as a CNAME from the name asked, else a.wire) from the cache or upstream;
  /// calls `done` exactly once, possibly before returning.
  void resolve(Answer&& a, std::span<const std::uint8_t> msg, Transport transport,
               Clock::time_point start, Done done);
  /// The cached response to a plain forwarded question (Disposition::Forward, no autopath or
  /// ExternalName chase), or nullopt: then resolve() it. Lets the worker batch cache hits into
  /// its sendmmsg instead of a callback and a sendto each.
  std::optional<std::string> fromCache(const Answer& a, Transport transport, Clock::time_point now);
  /// An upstream socket is ready.
  void onEvent(int fd, std::uint32_t events, Clock::time_point now);
  /// Timeouts: next upstream, or SERVFAIL past the budget.
  void onTimer(Clock::time_point now);
  /// Milliseconds until the next timeout (1000 when nothing is pending).
  int nextTimeoutMs(Clock::time_point now);
  std::size_t pendingForTest() const { return pending_.size(); }
  /// The upstream new queries start at (index into the upstreams).
  std::size_t preferredForTest() const { return preferred_; }

 private:
  struct Pending;
  void start(std::unique_ptr<Pending> p, Clock::time_point now);
  void setCandidate(Pending& p);
  void sendTry(Pending& p, Clock::time_point now, bool tcp);
  void complete(int fd, std::span<const std::uint8_t> response, Clock::time_point now);
  void fail(int fd);
  void finish(Pending& p, std::string reply, std::uint16_t rcode);
  std::string reply(const Pending& p, const CachedResponse& entry, Clock::time_point now) const;
  void moveOn(int fd, Clock::time_point now, bool timeout);

  std::vector<HostPort> upstreams_;
  std::shared_ptr<Cache> cache_;
  ServerMetrics& metrics_;
  Watch watch_;
  std::mt19937 rng_;
  std::unordered_map<int, std::unique_ptr<Pending>> pending_;  // by upstream socket
  // One entry per try; an entry whose try is over (answered, retried) is skipped when it
  // surfaces: its socket is gone or now carries another try (seq differs).
  struct Due {
    Clock::time_point at;
    int fd;
    std::uint64_t seq;
    bool operator>(const Due& o) const { return at > o.at; }
  };
  std::priority_queue<Due, std::vector<Due>, std::greater<>> timeouts_;
  std::uint64_t nextSeq_ = 0;
  std::size_t preferred_ = 0;  // the upstream that answered last
  bool live(const Due& d) const;
};

/// Appends the answer records of `upstream` (decompressed) to the answer section of `base` (our
/// CNAME reply); NXDOMAIN from upstream becomes the rcode. Pure.
std::string appendChase(std::string_view base, std::span<const std::uint8_t> upstream,
                        std::size_t limit, std::uint16_t& rcode);

}  // namespace kdp::dns
