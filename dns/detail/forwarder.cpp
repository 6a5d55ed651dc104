#include "dns/detail/forwarder.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/logging.h"

namespace kdp::dns {

namespace {

std::uint8_t* mut(std::string& s) { return reinterpret_cast<std::uint8_t*>(s.data()); }
std::span<const std::uint8_t> asBytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

/// Copies one record of `msg` with its owner and the names inside well-known rdata written out
/// (compression pointers point into `msg`, not into the message it goes to). Empty: skip it.
std::string decompressRecord(std::span<const std::uint8_t> msg, const wire::Record& r) {
  std::string out = r.name;
  wire::Writer w(out);
  w.u16(r.type);
  w.u16(r.rclass);
  w.u32(r.ttl);
  const std::uint8_t* rd = msg.data() + r.rdataOffset;
  switch (r.type) {
    case wire::kTypeCNAME:
    case wire::kTypeNS:
    case wire::kTypePTR: {
      std::size_t off = r.rdataOffset;
      auto name = wire::readName(msg, off);
      if (!name) {
        return {};
      }
      w.rdata([&] { w.name(*name); });
      return out;
    }
    case wire::kTypeA:
    case wire::kTypeAAAA:
    case wire::kTypeTXT:
      w.rdata([&] { w.bytes(std::string_view(reinterpret_cast<const char*>(rd), r.rdataLength)); });
      return out;
    default:
      return {};  // names inside other rdata may be compressed; not worth the risk
  }
}

}  // namespace

std::vector<HostPort> parseResolvConf(std::string_view text) {
  std::vector<HostPort> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) {
      eol = text.size();
    }
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    constexpr std::string_view kKey = "nameserver";
    if (!line.starts_with(kKey) || line.size() == kKey.size() ||
        (line[kKey.size()] != ' ' && line[kKey.size()] != '\t')) {
      continue;
    }
    line.remove_prefix(kKey.size());
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) {
      line.remove_prefix(1);
    }
    const std::size_t end = line.find_first_of(" \t\r#;%");
    auto ip = IpAddr::parse(line.substr(0, end));
    if (ip) {
      out.push_back(HostPort{*ip, 53});
    }
  }
  return out;
}

std::vector<std::string> parseResolvConfSearch(std::string_view text) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) {
      eol = text.size();
    }
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    constexpr std::string_view kKey = "search";
    if (!line.starts_with(kKey) || line.size() == kKey.size() ||
        (line[kKey.size()] != ' ' && line[kKey.size()] != '\t')) {
      continue;
    }
    out.clear();  // the last search line wins, as in the resolver
    line.remove_prefix(kKey.size());
    while (!line.empty()) {
      const std::size_t start = line.find_first_not_of(" \t\r");
      if (start == std::string_view::npos || line[start] == '#' || line[start] == ';') {
        break;
      }
      line.remove_prefix(start);
      const std::size_t end = std::min(line.find_first_of(" \t\r"), line.size());
      if (auto name = wire::nameFromText(line.substr(0, end)); name && name->size() > 1) {
        out.push_back(wire::lowerName(*name));
      }
      line.remove_prefix(end);
    }
  }
  return out;
}

std::string appendChase(std::string_view base, std::span<const std::uint8_t> upstream,
                        std::size_t limit, std::uint16_t& rcode) {
  auto ours = wire::parseMessage(asBytes(base));
  auto theirs = wire::parseMessage(upstream);
  if (!ours || !theirs || ours->answers.empty()) {
    return std::string(base);
  }
  const auto& last = ours->answers.back();
  const std::size_t split = last.rdataOffset + last.rdataLength;
  std::string records;
  std::uint16_t added = 0;
  for (const auto& r : theirs->answers) {
    std::string rec = decompressRecord(upstream, r);
    if (!rec.empty()) {
      records += rec;
      ++added;
    }
  }
  if (theirs->header.rcode() == wire::kRcodeNxDomain) {
    rcode = wire::kRcodeNxDomain;
  }
  std::string out(base.substr(0, split));
  out += records;
  out += base.substr(split);
  wire::putU16(mut(out) + 6, static_cast<std::uint16_t>(ours->header.ancount + added));
  std::uint16_t flags = wire::getU16(mut(out) + 2);
  flags = static_cast<std::uint16_t>((flags & ~0xF) | (rcode & 0xF));
  wire::putU16(mut(out) + 2, flags);
  if (out.size() > limit) {
    return std::string(base);  // the CNAME alone fits: the client asks the target itself
  }
  return out;
}

struct Forwarder::Pending {
  Done done;
  Transport transport = Transport::Udp;
  Clock::time_point deadline;
  Clock::time_point tryDeadline;
  wire::Query query;              // the client's
  std::string chaseBase;          // non-empty: our CNAME reply to extend
  std::vector<wire::WireName> candidates;  // autopath: names to try in order
  std::size_t candidate = 0;
  std::string fallback;           // autopath: the reply when every candidate fails
  std::uint32_t ttl = 0;          // autopath: the CNAME's TTL
  wire::WireName qname;           // asked upstream
  std::uint16_t qtype = 0;
  std::uint16_t qclass = 0;
  std::string key;
  std::size_t upstream = 0;
  unsigned tries = 0;
  std::uint64_t seq = 0;          // the current try's (timeouts_)
  std::uint16_t id = 0;
  Fd sock;
  bool tcp = false;
  std::string tcpOut;
  std::size_t tcpOutOff = 0;
  std::string tcpIn;
};

Forwarder::Forwarder(std::vector<HostPort> upstreams, std::shared_ptr<Cache> cache,
                     ServerMetrics& metrics, Watch watch)
    : upstreams_(std::move(upstreams)),
      cache_(std::move(cache)),
      metrics_(metrics),
      watch_(std::move(watch)),
      rng_(std::random_device{}()) {}

Forwarder::~Forwarder() = default;

void Forwarder::resolve(Answer&& a, std::span<const std::uint8_t> /*msg*/, Transport transport,
                        Clock::time_point start, Done done) {
  auto p = std::make_unique<Pending>();
  p->done = std::move(done);
  p->transport = transport;
  p->query = std::move(a.query);
  p->deadline = start + kForwardBudget;
  p->qtype = p->query.question.qtype;
  if (!a.autopath.empty() && a.externalTarget.empty()) {
    p->candidates = std::move(a.autopath);
    p->fallback = std::move(a.wire);
    p->ttl = a.ttl;
    p->qclass = wire::kClassIN;
    setCandidate(*p);
  } else if (!a.externalTarget.empty()) {
    p->chaseBase = std::move(a.wire);
    p->qname = std::move(a.externalTarget);
    p->qclass = wire::kClassIN;
  } else {
    p->qname = p->query.question.name;
    p->qclass = p->query.question.qclass;
  }
  if (p->candidates.empty()) {
    p->upstream = preferred_;
  }
  this->start(std::move(p), Clock::now());
}

std::optional<std::string> Forwarder::fromCache(const Answer& a, Transport transport,
                                                Clock::time_point now) {
  if (a.disposition != Disposition::Forward || !a.autopath.empty() || !a.externalTarget.empty()) {
    return std::nullopt;
  }
  const wire::Query& q = a.query;
  const bool dnssecOk = q.edns && q.edns->dnssecOk;
  const bool cd = (q.header.flags & wire::kFlagCD) != 0;
  auto hit = cache_->find(cacheKey(q.question.name, q.question.qtype, q.question.qclass, dnssecOk, cd),
                          now);
  if (!hit) {
    return std::nullopt;  // resolve() counts the miss
  }
  metrics_.cacheHits->inc();
  return renderCached(*hit, q, now, transport);
}

void Forwarder::setCandidate(Pending& p) {
  p.qname = p.candidates[p.candidate];
  p.chaseBase = cnameReply(p.query, p.qname, p.ttl);
  p.tries = 0;
  p.upstream = preferred_;
}

void Forwarder::start(std::unique_ptr<Pending> p, Clock::time_point now) {
  const bool dnssecOk = p->query.edns && p->query.edns->dnssecOk;
  const bool cd = (p->query.header.flags & wire::kFlagCD) != 0;
  // Bounded by the candidates: each round either answers, sends, or moves to the next one.
  for (std::size_t round = 0; round <= p->candidates.size(); ++round) {
    p->key = cacheKey(p->qname, p->qtype, p->qclass, dnssecOk, cd);
    auto hit = cache_->find(p->key, now);
    if (!hit) {
      break;
    }
    metrics_.cacheHits->inc();
    if (!p->candidates.empty() && hit->rcode == wire::kRcodeNxDomain) {
      if (++p->candidate < p->candidates.size()) {
        setCandidate(*p);
        continue;
      }
      finish(*p, std::string(), 0);
      return;
    }
    std::string r = reply(*p, *hit, now);
    const std::uint16_t rcode = wire::getU16(mut(r) + 2) & 0xF;
    p->done(std::move(r), rcode);
    return;
  }
  metrics_.cacheMisses->inc();
  if (upstreams_.empty() || now >= p->deadline) {
    finish(*p, std::string(), 0);
    return;
  }
  Pending& ref = *p;
  for (std::size_t i = 0; i < upstreams_.size() && !ref.sock; ++i) {
    sendTry(ref, now, false);
    if (!ref.sock) {
      ++ref.upstream;
    }
  }
  if (ref.sock) {
    const int fd = ref.sock.get();
    pending_.emplace(fd, std::move(p));
  } else {
    finish(ref, std::string(), 0);
  }
}

std::string Forwarder::reply(const Pending& p, const CachedResponse& entry,
                             Clock::time_point now) const {
  if (!p.chaseBase.empty()) {
    std::uint16_t rcode = wire::getU16(reinterpret_cast<const std::uint8_t*>(p.chaseBase.data()) + 2) & 0xF;
    const std::string aged = agedWire(entry, now);
    return appendChase(p.chaseBase, asBytes(aged), responseLimit(p.query, p.transport), rcode);
  }
  return renderCached(entry, p.query, now, p.transport);
}

void Forwarder::finish(Pending& p, std::string r, std::uint16_t rcode) {
  if (r.empty()) {
    // Failure: for autopath the name asked (it does not exist), the CNAME alone for a chase,
    // SERVFAIL otherwise.
    if (!p.candidates.empty()) {
      r = p.fallback;
      rcode = wire::getU16(mut(r) + 2) & 0xF;
    } else if (!p.chaseBase.empty()) {
      r = p.chaseBase;
      rcode = wire::getU16(mut(r) + 2) & 0xF;
    } else {
      rcode = wire::kRcodeServFail;
      r = emptyResponse(p.query, rcode, false);
    }
  }
  p.done(std::move(r), rcode);
}

void Forwarder::sendTry(Pending& p, Clock::time_point now, bool tcp) {
  if (p.sock) {
    watch_(p.sock.get(), 0);
    p.sock.reset();
  }
  const HostPort& up = upstreams_[p.upstream % upstreams_.size()];
  ++p.tries;
  p.tcp = tcp;
  p.tcpIn.clear();
  p.tcpOutOff = 0;
  const auto perTry = std::max<std::chrono::milliseconds>(
      kMinTryTimeout, kForwardBudget / std::max<std::size_t>(2, upstreams_.size()));
  p.tryDeadline = std::min(p.deadline, now + perTry);
  p.id = static_cast<std::uint16_t>(rng_() & 0xFFFF);

  std::string q;
  wire::Writer w(q);
  w.u16(p.id);
  w.u16(static_cast<std::uint16_t>(wire::kFlagRD | (p.query.header.flags & wire::kFlagCD)));
  w.u16(1);
  w.u16(0);
  w.u16(0);
  w.u16(1);
  w.name(p.qname);
  w.u16(p.qtype);
  w.u16(p.qclass);
  w.u8(0);
  w.u16(wire::kTypeOPT);
  w.u16(kServerUdpSize);
  w.u32(p.query.edns && p.query.edns->dnssecOk ? 0x8000u : 0u);
  w.u16(0);

  sockaddr_storage ss;
  const socklen_t len = toSockaddr(up, ss);
  Fd s(::socket(ss.ss_family, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!s) {
    metrics_.upstreamErrors->inc();
    return;
  }
  const int rc = ::connect(s.get(), reinterpret_cast<const sockaddr*>(&ss), len);
  if (rc != 0 && !(tcp && errno == EINPROGRESS)) {
    metrics_.upstreamErrors->inc();
    return;
  }
  metrics_.upstreamRequests->inc();
  if (tcp) {
    p.tcpOut.clear();
    p.tcpOut.push_back(static_cast<char>(q.size() >> 8));
    p.tcpOut.push_back(static_cast<char>(q.size() & 0xFF));
    p.tcpOut += q;
    watch_(s.get(), EPOLLIN | EPOLLOUT);
  } else {
    if (::send(s.get(), q.data(), q.size(), MSG_DONTWAIT) < 0) {
      metrics_.upstreamErrors->inc();
      return;
    }
    watch_(s.get(), EPOLLIN);
  }
  p.seq = ++nextSeq_;
  timeouts_.push(Due{p.tryDeadline, s.get(), p.seq});
  p.sock = std::move(s);
}

void Forwarder::onEvent(int fd, std::uint32_t events, Clock::time_point now) {
  auto it = pending_.find(fd);
  if (it == pending_.end()) {
    return;
  }
  Pending& p = *it->second;
  if (!p.tcp) {
    std::uint8_t buf[4096];
    for (unsigned i = 0; i < 4; ++i) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          return;
        }
        moveOn(fd, now, false);  // e.g. ECONNREFUSED: nobody listens there
        return;
      }
      complete(fd, std::span<const std::uint8_t>(buf, static_cast<std::size_t>(n)), now);
      if (pending_.find(fd) == pending_.end()) {
        return;
      }
    }
    return;
  }
  if ((events & (EPOLLERR | EPOLLHUP)) != 0 && (events & EPOLLIN) == 0) {
    moveOn(fd, now, false);
    return;
  }
  if ((events & EPOLLOUT) != 0 && p.tcpOutOff < p.tcpOut.size()) {
    const ssize_t n = ::send(fd, p.tcpOut.data() + p.tcpOutOff, p.tcpOut.size() - p.tcpOutOff,
                             MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      moveOn(fd, now, false);
      return;
    }
    if (n > 0) {
      p.tcpOutOff += static_cast<std::size_t>(n);
    }
    if (p.tcpOutOff == p.tcpOut.size()) {
      watch_(fd, EPOLLIN);
    }
  }
  if ((events & EPOLLIN) != 0) {
    char buf[16384];
    for (unsigned i = 0; i < 8; ++i) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        p.tcpIn.append(buf, static_cast<std::size_t>(n));
        if (p.tcpIn.size() > 2 + 65535) {
          moveOn(fd, now, false);
          return;
        }
        continue;
      }
      if (n == 0) {
        break;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        break;
      }
      moveOn(fd, now, false);
      return;
    }
    if (p.tcpIn.size() >= 2) {
      const std::size_t len = wire::getU16(reinterpret_cast<const std::uint8_t*>(p.tcpIn.data()));
      if (p.tcpIn.size() >= 2 + len) {
        const std::string msg = p.tcpIn.substr(2, len);
        complete(fd, asBytes(msg), now);
        return;
      }
    }
  }
}

void Forwarder::complete(int fd, std::span<const std::uint8_t> response, Clock::time_point now) {
  auto it = pending_.find(fd);
  if (it == pending_.end()) {
    return;
  }
  Pending& p = *it->second;
  auto m = wire::parseMessage(response);
  // Only the answer to our question counts: id, QR, the same question (case aside).
  if (!m || m->header.id != p.id || !m->header.qr() || m->questions.size() != 1 ||
      m->questions[0].qtype != p.qtype || m->questions[0].qclass != p.qclass ||
      wire::lowerName(m->questions[0].name) != wire::lowerName(p.qname)) {
    metrics_.upstreamErrors->inc();
    if (p.tcp) {
      moveOn(fd, now, false);
    }
    return;  // UDP: keep waiting for the real one until the timeout
  }
  if ((m->header.flags & wire::kFlagTC) != 0 && !p.tcp) {
    metrics_.upstreamTcpRetries->inc();
    auto node = pending_.extract(it);
    sendTry(p, now, true);
    if (p.sock) {
      node.key() = p.sock.get();
      pending_.insert(std::move(node));
    } else {
      finish(p, std::string(), 0);
    }
    return;
  }
  const auto rcode = m->header.rcode();
  if (rcode == wire::kRcodeServFail || rcode == wire::kRcodeRefused) {
    metrics_.upstreamErrors->inc();
    moveOn(fd, now, false);
    return;
  }
  auto prepared = prepareResponse(response, now);
  if (!prepared) {
    moveOn(fd, now, false);
    return;
  }
  preferred_ = p.upstream % upstreams_.size();
  auto entry = std::make_shared<const CachedResponse>(std::move(*prepared));
  cache_->insert(p.key, entry);
  metrics_.cacheEntries->set(static_cast<double>(cache_->size()));
  if (!p.candidates.empty() && rcode == wire::kRcodeNxDomain) {
    auto owned = std::move(it->second);
    watch_(fd, 0);
    pending_.erase(it);
    owned->sock.reset();
    if (++owned->candidate < owned->candidates.size()) {
      setCandidate(*owned);
      start(std::move(owned), now);
    } else {
      finish(*owned, std::string(), 0);
    }
    return;
  }
  std::string r = reply(p, *entry, now);
  const std::uint16_t rc = wire::getU16(mut(r) + 2) & 0xF;
  auto owned = std::move(it->second);
  watch_(fd, 0);
  pending_.erase(it);
  finish(*owned, std::move(r), rc);
}

void Forwarder::moveOn(int fd, Clock::time_point now, bool timeout) {
  auto it = pending_.find(fd);
  if (it == pending_.end()) {
    return;
  }
  Pending& p = *it->second;
  if (timeout) {
    metrics_.upstreamTimeouts->inc();
  } else {
    metrics_.upstreamErrors->inc();
  }
  if (now >= p.deadline || p.tries >= 2 * upstreams_.size() + 2) {
    fail(fd);
    return;
  }
  ++p.upstream;
  auto node = pending_.extract(it);
  sendTry(p, now, false);
  if (p.sock) {
    node.key() = p.sock.get();
    pending_.insert(std::move(node));
  } else {
    finish(p, std::string(), 0);
  }
}

void Forwarder::fail(int fd) {
  auto it = pending_.find(fd);
  if (it == pending_.end()) {
    return;
  }
  auto owned = std::move(it->second);
  watch_(fd, 0);
  pending_.erase(it);
  KDP_LOG_RATE_LIMITED(logger("dns"), spdlog::level::warn, 1,
                       "upstream failed name={} type={} tries={}", wire::nameToText(owned->qname),
                       owned->qtype, owned->tries);
  finish(*owned, std::string(), 0);
}

bool Forwarder::live(const Due& d) const {
  auto it = pending_.find(d.fd);
  return it != pending_.end() && it->second->seq == d.seq;
}

void Forwarder::onTimer(Clock::time_point now) {
  while (!timeouts_.empty() && timeouts_.top().at <= now) {
    const Due d = timeouts_.top();
    timeouts_.pop();
    if (live(d)) {
      moveOn(d.fd, now, true);  // a new try pushes its own (later) deadline
    }
  }
}

int Forwarder::nextTimeoutMs(Clock::time_point now) {
  while (!timeouts_.empty() && !live(timeouts_.top())) {
    timeouts_.pop();
  }
  const Clock::time_point next =
      timeouts_.empty() ? now + std::chrono::seconds(1) : std::min(now + std::chrono::seconds(1), timeouts_.top().at);
  return static_cast<int>(std::max<std::int64_t>(
      0, std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1));
}

}  // namespace kdp::dns
