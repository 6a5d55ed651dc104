#include "dns/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <optional>
#include <unordered_map>

#include "common/fd.h"
#include "common/logging.h"
#include "dns/answer.h"
#include "dns/detail/cache.h"
#include "dns/detail/forwarder.h"
#include "dns/detail/plain_query.h"
#include "dns/detail/server_metrics.h"

namespace kdp::dns {

ZoneHolder::ZoneHolder(std::shared_ptr<const Zone> initial) : zone_(std::move(initial)) {}

void ZoneHolder::publish(std::shared_ptr<const Zone> zone) {
  zone_.store(std::move(zone), std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
}

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kUdpBatch = 32;
constexpr std::size_t kUdpBuffer = 4096;  // larger queries are not legitimate
constexpr std::size_t kMaxTcpOutput = 256 * 1024;
constexpr unsigned kMaxUdpRoundsPerWake = 16;  // then let TCP and timers run

// epoll tags: the kind in the upper 32 bits, the fd below.
enum class Tag : std::uint32_t { Wake = 1, Udp, Listen, Conn, Upstream };
std::uint64_t tag(Tag t, int fd) {
  return (std::uint64_t{static_cast<std::uint32_t>(t)} << 32) | static_cast<std::uint32_t>(fd);
}

std::optional<IpAddr> ipOf(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) {
    sockaddr_in sin;
    std::memcpy(&sin, &ss, sizeof sin);
    return IpAddr::fromBytes(IpFamily::V4, reinterpret_cast<const std::uint8_t*>(&sin.sin_addr));
  }
  if (ss.ss_family == AF_INET6) {
    sockaddr_in6 sin6;
    std::memcpy(&sin6, &ss, sizeof sin6);
    return IpAddr::fromBytes(IpFamily::V6, reinterpret_cast<const std::uint8_t*>(&sin6.sin6_addr));
  }
  return std::nullopt;
}

Fd bindSocket(const HostPort& hp, int type) {
  sockaddr_storage ss;
  const socklen_t len = toSockaddr(hp, ss);
  Fd fd(::socket(ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) {
    throw std::runtime_error("socket for " + hp.str() + ": " + std::strerror(errno));
  }
  const int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    throw std::runtime_error("SO_REUSEPORT on " + hp.str() + ": " + std::strerror(errno));
  }
  if (ss.ss_family == AF_INET6) {
    ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  }
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    const int err = errno;
    throw std::runtime_error("cannot listen on " + hp.str() + (type == SOCK_STREAM ? "/tcp" : "/udp") +
                             ": " + std::strerror(err));
  }
  if (type == SOCK_STREAM) {
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::listen(fd.get(), 1024) != 0) {
      throw std::runtime_error("listen on " + hp.str() + ": " + std::strerror(errno));
    }
  }
  return fd;
}

}  // namespace

/// One event loop: UDP and TCP sockets, upstream sockets of its forwarder. Everything here runs
/// on the worker's own thread, except wake().
class Worker {
 public:
  Worker(unsigned index, const ServerOptions& options, std::shared_ptr<ZoneHolder> zones,
         std::shared_ptr<Cache> cache, std::atomic<bool>& stopping)
      : index_(index),
        options_(options),
        zones_(std::move(zones)),
        stopping_(stopping),
        metrics_(ServerMetrics::get()),
        hits_(cache, options.upstreams.empty() ? 0 : options.cacheSize) {
    epoll_ = Fd(::epoll_create1(EPOLL_CLOEXEC));
    wake_ = Fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!epoll_ || !wake_) {
      throw std::runtime_error(std::string("epoll/eventfd: ") + std::strerror(errno));
    }
    add(wake_.get(), Tag::Wake, EPOLLIN);
    for (const auto& hp : options.listen) {
      udp_.push_back(bindSocket(hp, SOCK_DGRAM));
      add(udp_.back().get(), Tag::Udp, EPOLLIN);
      listeners_.push_back(bindSocket(hp, SOCK_STREAM));
      add(listeners_.back().get(), Tag::Listen, EPOLLIN);
    }
    forwarder_ = std::make_unique<Forwarder>(
        options.upstreams, std::move(cache), metrics_,
        [this](int fd, std::uint32_t events) {
          if (events == 0) {
            ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
            return;
          }
          epoll_event ev{};
          ev.events = events;
          ev.data.u64 = tag(Tag::Upstream, fd);
          if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0 && errno == EEXIST) {
            ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev);
          }
        });
  }

  void wake() {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_.get(), &one, sizeof one);
  }

  void run() {
    char name[16];
    std::snprintf(name, sizeof name, "kdp/dns-%u", index_);
    pthread_setname_np(pthread_self(), name);
    refreshZone();
    std::array<epoll_event, 64> events;
    auto nextSweep = Clock::now() + std::chrono::seconds(1);
    while (!stopping_.load(std::memory_order_acquire)) {
      const auto now = Clock::now();
      int timeout = static_cast<int>(
          std::chrono::duration_cast<std::chrono::milliseconds>(nextSweep - now).count());
      timeout = std::clamp(std::min(timeout, forwarder_->nextTimeoutMs(now)), 0, 1000);
      const int n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()),
                                 timeout);
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        KDP_LOG_RATE_LIMITED(log_, spdlog::level::warn, 1, "epoll_wait failed err={}",
                             std::strerror(errno));
        continue;
      }
      refreshZone();
      for (int i = 0; i < n; ++i) {
        const auto kind = static_cast<Tag>(events[static_cast<std::size_t>(i)].data.u64 >> 32);
        const int fd = static_cast<int>(events[static_cast<std::size_t>(i)].data.u64 & 0xFFFFFFFF);
        const std::uint32_t ev = events[static_cast<std::size_t>(i)].events;
        switch (kind) {
          case Tag::Wake: {
            std::uint64_t v;
            [[maybe_unused]] auto r = ::read(wake_.get(), &v, sizeof v);
            break;
          }
          case Tag::Udp: serveUdp(fd); break;
          case Tag::Listen: accept(fd); break;
          case Tag::Conn: serveConn(fd, ev); break;
          case Tag::Upstream: forwarder_->onEvent(fd, ev, Clock::now()); break;
        }
      }
      const auto after = Clock::now();
      forwarder_->onTimer(after);
      if (after >= nextSweep) {
        sweepIdle(after);
        nextSweep = after + std::chrono::seconds(1);
      }
    }
    conns_.clear();
  }

 private:
  struct Conn {
    Fd fd;
    std::string in;
    std::string out;
    std::size_t outOff = 0;
    Clock::time_point lastActive;
    bool writing = false;   // EPOLLOUT registered
    unsigned pending = 0;   // forwarded queries not answered yet
    bool closed = false;    // peer done; close once pending answers are written
    std::optional<IpAddr> client;
  };

  bool needsForwarder(const Answer& a) const {
    return a.disposition == Disposition::Forward ||
           ((!a.externalTarget.empty() || !a.autopath.empty()) && forwarder_->enabled());
  }

  void add(int fd, Tag t, std::uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = tag(t, fd);
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
      throw std::runtime_error(std::string("epoll_ctl: ") + std::strerror(errno));
    }
  }

  void refreshZone() {
    const auto gen = zones_->generation();
    if (gen != zoneGen_ || !zone_) {
      zone_ = zones_->load();
      zoneGen_ = gen;
    }
  }

  void serveUdp(int fd) {
    std::array<mmsghdr, kUdpBatch> in{};
    std::array<iovec, kUdpBatch> iov{};
    std::array<sockaddr_storage, kUdpBatch> peers{};
    for (std::size_t i = 0; i < kUdpBatch; ++i) {
      iov[i] = {udpBuf_[i].data(), kUdpBuffer};
      in[i].msg_hdr.msg_iov = &iov[i];
      in[i].msg_hdr.msg_iovlen = 1;
      in[i].msg_hdr.msg_name = &peers[i];
      in[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
    }
    for (unsigned round = 0; round < kMaxUdpRoundsPerWake; ++round) {
      for (std::size_t i = 0; i < kUdpBatch; ++i) {
        in[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
        in[i].msg_hdr.msg_flags = 0;
      }
      const int n = ::recvmmsg(fd, in.data(), kUdpBatch, MSG_DONTWAIT, nullptr);
      if (n <= 0) {
        const int err = errno;
        if (n < 0 && err != EAGAIN && err != EWOULDBLOCK && err != EINTR) {
          metrics_.udpRecvErrors->inc();
          KDP_LOG_RATE_LIMITED(log_, spdlog::level::warn, 1, "udp receive failed err={}",
                               std::strerror(err));
        }
        return;
      }
      std::array<std::string, kUdpBatch> replies;
      std::array<mmsghdr, kUdpBatch> out{};
      std::array<iovec, kUdpBatch> outIov{};
      unsigned nOut = 0;
      for (int i = 0; i < n; ++i) {
        const auto idx = static_cast<std::size_t>(i);
        const auto start = Clock::now();
        if ((in[idx].msg_hdr.msg_flags & MSG_TRUNC) != 0) {
          metrics_.dropped->inc();
          continue;
        }
        const std::span<const std::uint8_t> msg(udpBuf_[idx].data(), in[idx].msg_len);
        if (const std::size_t size = replayFromCache(msg, start, replyBuf_[nOut])) {
          outIov[nOut] = {replyBuf_[nOut].data(), size};
          out[nOut].msg_hdr.msg_iov = &outIov[nOut];
          out[nOut].msg_hdr.msg_iovlen = 1;
          out[nOut].msg_hdr.msg_name = &peers[idx];
          out[nOut].msg_hdr.msg_namelen = in[idx].msg_hdr.msg_namelen;
          ++nOut;
          continue;
        }
        QueryContext ctx;
        if (zone_->options().autopath) {
          ctx.client = ipOf(peers[idx]);
          ctx.hostSearch = &options_.hostSearch;
        }
        Answer a = answer(msg, *zone_, Transport::Udp, ctx);
        if (a.disposition == Disposition::Drop) {
          metrics_.dropped->inc();
          continue;
        }
        bool cached = false;
        if (a.disposition == Disposition::Forward) {
          // A cache hit joins the sendmmsg batch below (no callback, no sendto of its own).
          if (auto hit = forwarder_->fromCache(a, Transport::Udp, start)) {
            a.rcode = wire::getU16(reinterpret_cast<const std::uint8_t*>(hit->data()) + 2) & 0xF;
            a.wire = std::move(*hit);
            cached = true;
          }
        }
        if (!cached && needsForwarder(a)) {
          const sockaddr_storage peer = peers[idx];
          const socklen_t peerLen = in[idx].msg_hdr.msg_namelen;
          const int sock = fd;
          const std::uint16_t qtype = a.qtype;
          forwarder_->resolve(std::move(a), msg, Transport::Udp, start,
                              [this, sock, peer, peerLen, qtype, start](std::string reply,
                                                                       std::uint16_t rcode) {
                                ::sendto(sock, reply.data(), reply.size(), MSG_DONTWAIT,
                                         reinterpret_cast<const sockaddr*>(&peer), peerLen);
                                metrics_.record(false, qtype, rcode, reply.size(), start);
                              });
          continue;
        }
        metrics_.record(false, a.qtype, a.rcode, a.wire.size(), start);
        replies[nOut] = std::move(a.wire);
        outIov[nOut] = {replies[nOut].data(), replies[nOut].size()};
        out[nOut].msg_hdr.msg_iov = &outIov[nOut];
        out[nOut].msg_hdr.msg_iovlen = 1;
        out[nOut].msg_hdr.msg_name = &peers[idx];
        out[nOut].msg_hdr.msg_namelen = in[idx].msg_hdr.msg_namelen;
        ++nOut;
      }
      unsigned sent = 0;
      for (unsigned attempt = 0; sent < nOut && attempt < 4; ++attempt) {
        const int s = ::sendmmsg(fd, out.data() + sent, nOut - sent, MSG_DONTWAIT);
        if (s < 0) {
          if (errno == EINTR) {
            continue;
          }
          metrics_.udpSendErrors->inc(nOut - sent);
          KDP_LOG_RATE_LIMITED(log_, spdlog::level::warn, 1, "udp send failed err={}",
                               std::strerror(errno));
          break;
        }
        sent += static_cast<unsigned>(s);
      }
      if (static_cast<std::size_t>(n) < kUdpBatch) {
        return;
      }
    }
  }

  /// The UDP cache-hit path: a plain query (readPlainQuery) for a name outside the zone whose
  /// answer this worker's cache holds, written straight into `out` — no allocation, no lock.
  /// 0: anything else (then answer() and the forwarder take it, deciding the same).
  std::size_t replayFromCache(std::span<const std::uint8_t> msg, Clock::time_point now,
                              std::span<std::uint8_t> out) {
    auto q = readPlainQuery(msg);
    if (!q || q->qtype == wire::kTypeAXFR || q->qtype == wire::kTypeIXFR ||
        q->qtype == wire::kTypeOPT ||
        (q->qclass != wire::kClassIN && q->qclass != wire::kClassANY)) {
      return 0;
    }
    const CacheKey key(q->name, q->qtype, q->qclass, q->dnssecOk, (q->flags & wire::kFlagCD) != 0);
    if (wire::isSubdomain(key.name(), zone_->apex()) ||
        wire::isSubdomain(key.name(), Zone::reverseV4()) ||
        wire::isSubdomain(key.name(), Zone::reverseV6())) {
      return 0;  // the zone's (reverse names it lacks go upstream: answer() decides)
    }
    const CachedResponse* hit = hits_.find(key.view(), now);
    if (hit == nullptr) {
      return 0;
    }
    ReplayTarget target;
    target.id = q->id;
    target.flags = q->flags;
    target.name = q->name;
    target.edns = q->edns;
    target.dnssecOk = q->dnssecOk;
    target.limit = q->edns ? q->udpSize : wire::kMinUdpSize;
    const std::size_t size = renderCachedInto(*hit, target, now, out);
    if (size == 0) {
      return 0;
    }
    metrics_.cacheHits->inc();
    metrics_.record(false, q->qtype, wire::getU16(out.data() + 2) & 0xF, size, now);
    return size;
  }

  void accept(int listenFd) {
    for (unsigned i = 0; i < 64; ++i) {
      sockaddr_storage peer{};
      socklen_t peerLen = sizeof peer;
      Fd c(::accept4(listenFd, reinterpret_cast<sockaddr*>(&peer), &peerLen,
                     SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (!c) {
        const int err = errno;
        if (err != EAGAIN && err != EWOULDBLOCK && err != EINTR) {
          metrics_.tcpAcceptErrors->inc();
          KDP_LOG_RATE_LIMITED(log_, spdlog::level::warn, 1, "tcp accept failed err={}",
                               std::strerror(err));
        }
        return;
      }
      if (conns_.size() >= options_.maxTcpConnectionsPerWorker) {
        metrics_.tcpRefused->inc();
        continue;  // closes it
      }
      const int one = 1;
      ::setsockopt(c.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      const int fd = c.get();
      auto conn = std::make_unique<Conn>();
      conn->fd = std::move(c);
      conn->lastActive = Clock::now();
      conn->client = ipOf(peer);
      add(fd, Tag::Conn, EPOLLIN | EPOLLRDHUP);
      conns_.emplace(fd, std::move(conn));
      metrics_.tcpConnections->inc();
    }
  }

  void closeConn(int fd) {
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
    conns_.erase(fd);  // closes the fd
  }

  void serveConn(int fd, std::uint32_t events) {
    auto it = conns_.find(fd);
    if (it == conns_.end()) {
      return;
    }
    Conn& c = *it->second;
    if ((events & (EPOLLERR | EPOLLHUP)) != 0) {
      closeConn(fd);
      return;
    }
    if ((events & EPOLLIN) != 0 && !c.closed) {
      char buf[16384];
      for (unsigned i = 0; i < 8; ++i) {
        const ssize_t r = ::read(fd, buf, sizeof buf);
        if (r > 0) {
          c.in.append(buf, static_cast<std::size_t>(r));
          c.lastActive = Clock::now();
          if (static_cast<std::size_t>(r) < sizeof buf) {
            break;
          }
          continue;
        }
        if (r == 0) {
          c.closed = true;
          break;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
          break;
        }
        closeConn(fd);
        return;
      }
      // Every complete message in the buffer (RFC 7766: pipelined queries).
      std::size_t off = 0;
      while (c.in.size() - off >= 2) {
        const std::size_t len = wire::getU16(reinterpret_cast<const std::uint8_t*>(c.in.data()) + off);
        if (c.in.size() - off - 2 < len) {
          break;
        }
        const auto start = Clock::now();
        const std::span<const std::uint8_t> msg(
            reinterpret_cast<const std::uint8_t*>(c.in.data()) + off + 2, len);
        off += 2 + len;
        QueryContext ctx;
        if (zone_->options().autopath) {
          ctx.client = c.client;
          ctx.hostSearch = &options_.hostSearch;
        }
        Answer a = answer(msg, *zone_, Transport::Tcp, ctx);
        if (a.disposition == Disposition::Drop) {
          metrics_.dropped->inc();
          continue;
        }
        if (needsForwarder(a)) {
          ++c.pending;
          const std::uint16_t qtype = a.qtype;
          forwarder_->resolve(std::move(a), msg, Transport::Tcp, start,
                              [this, fd, qtype, start](std::string reply, std::uint16_t rcode) {
                                metrics_.record(true, qtype, rcode, reply.size(), start);
                                auto it2 = conns_.find(fd);
                                if (it2 == conns_.end()) {
                                  return;
                                }
                                --it2->second->pending;
                                queue(*it2->second, reply);
                                flush(fd);
                              });
          continue;
        }
        metrics_.record(true, a.qtype, a.rcode, a.wire.size(), start);
        queue(c, a.wire);
      }
      c.in.erase(0, off);
      if (c.out.size() - c.outOff > kMaxTcpOutput) {
        closeConn(fd);  // the client does not read its answers
        return;
      }
    }
    if (!flush(fd)) {
      return;
    }
    if ((c.closed || (events & EPOLLRDHUP) != 0) && c.pending == 0 && c.outOff == c.out.size()) {
      closeConn(fd);
    }
  }

  static void queue(Conn& c, const std::string& reply) {
    if (reply.size() > 65535) {
      return;
    }
    c.out.push_back(static_cast<char>((reply.size() >> 8) & 0xFF));
    c.out.push_back(static_cast<char>(reply.size() & 0xFF));
    c.out += reply;
  }

  /// Writes what it can; registers EPOLLOUT for the rest. False when the connection was closed.
  bool flush(int fd) {
    auto it = conns_.find(fd);
    if (it == conns_.end()) {
      return false;
    }
    Conn& c = *it->second;
    while (c.outOff < c.out.size()) {
      const ssize_t w = ::send(fd, c.out.data() + c.outOff, c.out.size() - c.outOff,
                               MSG_DONTWAIT | MSG_NOSIGNAL);
      if (w > 0) {
        c.outOff += static_cast<std::size_t>(w);
        continue;
      }
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        break;
      }
      if (w < 0 && errno == EINTR) {
        continue;
      }
      closeConn(fd);
      return false;
    }
    if (c.outOff == c.out.size()) {
      c.out.clear();
      c.outOff = 0;
    }
    const bool wantWrite = !c.out.empty();
    if (wantWrite != c.writing) {
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP | (wantWrite ? EPOLLOUT : 0u);
      ev.data.u64 = tag(Tag::Conn, fd);
      ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev);
      c.writing = wantWrite;
    }
    return true;
  }

  void sweepIdle(Clock::time_point now) {
    const auto idle = std::chrono::milliseconds(options_.tcpIdleTimeoutMs);
    std::vector<int> expired;
    for (const auto& [fd, c] : conns_) {
      if (c->pending == 0 && now - c->lastActive > idle) {
        expired.push_back(fd);
      }
    }
    for (int fd : expired) {
      metrics_.tcpIdleClosed->inc();
      closeConn(fd);
    }
  }

  const unsigned index_;
  const ServerOptions& options_;
  std::shared_ptr<ZoneHolder> zones_;
  std::atomic<bool>& stopping_;
  ServerMetrics& metrics_;
  std::shared_ptr<spdlog::logger> log_ = logger("dns");
  Fd epoll_;
  Fd wake_;
  std::vector<Fd> udp_;
  std::vector<Fd> listeners_;
  std::unordered_map<int, std::unique_ptr<Conn>> conns_;
  std::shared_ptr<const Zone> zone_;
  std::uint64_t zoneGen_ = 0;
  std::unique_ptr<Forwarder> forwarder_;
  WorkerCache hits_;
  std::array<std::array<std::uint8_t, kUdpBuffer>, kUdpBatch> udpBuf_{};
  std::array<std::array<std::uint8_t, kUdpBuffer>, kUdpBatch> replyBuf_{};
};

Server::Server(ServerOptions options, std::shared_ptr<ZoneHolder> zones)
    : options_(std::move(options)), zones_(std::move(zones)) {
  if (options_.threads == 0) {
    options_.threads = 1;
  }
  cache_ = makeCache(options_.cacheSize);
}

Server::~Server() { stop(); }

void Server::start() {
  for (unsigned i = 0; i < options_.threads; ++i) {
    workers_.push_back(std::make_unique<Worker>(i, options_, zones_, cache_, stopping_));
  }
  for (auto& w : workers_) {
    threads_.emplace_back([&w] { w->run(); });
  }
}

void Server::notifyZoneChanged() {
  for (auto& w : workers_) {
    w->wake();
  }
}

void Server::stop() {
  if (stopping_.exchange(true)) {
    return;
  }
  notifyZoneChanged();
  for (auto& t : threads_) {
    t.join();
  }
  threads_.clear();
  workers_.clear();
}

}  // namespace kdp::dns
