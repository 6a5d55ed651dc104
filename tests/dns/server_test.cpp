#include "dns/server.h"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "common/fd.h"
#include "dns/answer.h"
#include "dns/detail/forwarder.h"
#include "tests/dns/fixture.h"

using namespace kdp::dns;
using namespace kdp::dns::test;
namespace w = kdp::dns::wire;
using namespace std::chrono_literals;

namespace {

/// A loopback port free for UDP and TCP at the time of the call.
std::uint16_t freePort() {
  for (int i = 0; i < 50; ++i) {
    kdp::Fd t(::socket(AF_INET, SOCK_STREAM, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(t.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::getsockname(t.get(), reinterpret_cast<sockaddr*>(&a), &len);
    kdp::Fd u(::socket(AF_INET, SOCK_DGRAM, 0));
    if (::bind(u.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
      return ntohs(a.sin_port);
    }
  }
  FAIL("no free port");
  return 0;
}

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

/// One UDP exchange; "" after `timeout`.
std::string udpAsk(std::uint16_t port, const std::string& q, std::chrono::milliseconds timeout = 2s) {
  kdp::Fd s(::socket(AF_INET, SOCK_DGRAM, 0));
  auto a = loopback(port);
  ::sendto(s.get(), q.data(), q.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
  pollfd p{s.get(), POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) {
    return {};
  }
  char buf[65536];
  const ssize_t n = ::recv(s.get(), buf, sizeof buf, 0);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

/// Reads exactly n bytes with a 2 s bound.
bool readFull(int fd, std::string& out, std::size_t n) {
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) != 1) {
      continue;
    }
    char buf[4096];
    const ssize_t r = ::recv(fd, buf, std::min(sizeof buf, n - out.size()), 0);
    if (r <= 0) {
      return false;
    }
    out.append(buf, static_cast<std::size_t>(r));
  }
  return out.size() == n;
}

std::string framed(const std::string& q) {
  std::string f;
  f.push_back(static_cast<char>(q.size() >> 8));
  f.push_back(static_cast<char>(q.size() & 0xFF));
  return f + q;
}

struct Running {
  std::shared_ptr<ZoneHolder> zones;
  std::unique_ptr<Server> server;
  std::uint16_t port = 0;

  explicit Running(std::vector<kdp::HostPort> upstreams = {}, unsigned threads = 2,
                   bool autopath = false) {
    ZoneOptions zo;
    zo.autopath = autopath;
    // A pod at 127.0.0.1 (the tests' client address) in namespace shop.
    zones = std::make_shared<ZoneHolder>(compileZone(*clusterSnapshot(R"(
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: shop}
spec: {containers: [{name: c, image: x}]}
status: {phase: Running, podIP: 127.0.0.1}
)"), zo));
    port = freePort();
    ServerOptions o;
    o.listen = {kdp::HostPort{*kdp::IpAddr::parse("127.0.0.1"), port}};
    o.threads = threads;
    o.upstreams = std::move(upstreams);
    o.tcpIdleTimeoutMs = 300;
    o.hostSearch = {*w::nameFromText("corp.test")};
    server = std::make_unique<Server>(std::move(o), zones);
    server->start();
  }
  ~Running() { server->stop(); }
};

}  // namespace

TEST_CASE("dns server: UDP answers, and a published zone is served at once", "[dns]") {
  Running r;
  const std::string q = makeQuery("web.shop.svc.cluster.local", w::kTypeA);
  CHECK(render(udpAsk(r.port, q)) == "NOERROR aa | web.shop.svc.cluster.local. 30 A 10.96.0.20 |  | ");

  const std::string nq = makeQuery("new.shop.svc.cluster.local", w::kTypeA);
  CHECK(render(udpAsk(r.port, nq)).starts_with("NXDOMAIN"));
  auto next = compileZone(*clusterSnapshot(R"(
apiVersion: v1
kind: Service
metadata: {name: new, namespace: shop}
spec: {clusterIP: 10.96.0.99, ports: [{port: 80}]}
)"),
                          ZoneOptions{});
  const auto t0 = std::chrono::steady_clock::now();
  r.zones->publish(next);
  r.server->notifyZoneChanged();
  // The very next query sees it (each worker compares the generation on every wake-up).
  CHECK(render(udpAsk(r.port, nq)) == "NOERROR aa | new.shop.svc.cluster.local. 30 A 10.96.0.99 |  | ");
  CHECK(std::chrono::steady_clock::now() - t0 < 10ms);
}

TEST_CASE("dns server: several queries on one TCP connection, idle connections closed", "[dns]") {
  Running r;
  kdp::Fd s(::socket(AF_INET, SOCK_STREAM, 0));
  auto a = loopback(r.port);
  REQUIRE(::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  const std::string q1 = makeQuery("web.shop.svc.cluster.local", w::kTypeA);
  const std::string q2 = makeQuery("nope.shop.svc.cluster.local", w::kTypeA);
  // Both in one write, the second split across two writes' worth of bytes.
  const std::string both = framed(q1) + framed(q2);
  REQUIRE(::send(s.get(), both.data(), both.size(), 0) == static_cast<ssize_t>(both.size()));
  for (const char* want : {"NOERROR", "NXDOMAIN"}) {
    std::string len;
    REQUIRE(readFull(s.get(), len, 2));
    std::string msg;
    REQUIRE(readFull(s.get(), msg, w::getU16(reinterpret_cast<const std::uint8_t*>(len.data()))));
    CHECK(render(msg).starts_with(want));
  }
  // A query in two halves.
  const std::string f = framed(q1);
  ::send(s.get(), f.data(), 5, 0);
  std::this_thread::sleep_for(20ms);  // let the first half arrive alone (not a synchronisation)
  ::send(s.get(), f.data() + 5, f.size() - 5, 0);
  std::string len;
  REQUIRE(readFull(s.get(), len, 2));
  std::string msg;
  REQUIRE(readFull(s.get(), msg, w::getU16(reinterpret_cast<const std::uint8_t*>(len.data()))));
  CHECK(render(msg).starts_with("NOERROR aa"));
  // Idle: the server closes the connection after its timeout (300 ms here; swept each second).
  pollfd p{s.get(), POLLIN, 0};
  REQUIRE(::poll(&p, 1, 3000) == 1);
  char c;
  CHECK(::recv(s.get(), &c, 1, 0) == 0);
}

TEST_CASE("dns server: hostile datagrams get FORMERR or nothing, and the server keeps serving", "[dns]") {
  Running r(/*upstreams=*/{}, 1);
  CHECK(udpAsk(r.port, std::string(5, '\0'), 200ms).empty());
  std::string junk = makeQuery("web.shop.svc.cluster.local", w::kTypeA);
  junk[12] = 0x3F;  // a label length running past the end
  CHECK(render(udpAsk(r.port, junk)) == "FORMERR |  |  | ");
  const std::string q = makeQuery("web.shop.svc.cluster.local", w::kTypeA);
  CHECK(render(udpAsk(r.port, q)).starts_with("NOERROR aa"));
}

TEST_CASE("dns server: forwarding, caching, and an upstream that never answers", "[dns]") {
  // A fake upstream on loopback: answers www.example.test A with 192.0.2.1 and counts queries;
  // swallows everything else.
  kdp::Fd up(::socket(AF_INET, SOCK_DGRAM, 0));
  auto ua = loopback(0);
  REQUIRE(::bind(up.get(), reinterpret_cast<sockaddr*>(&ua), sizeof ua) == 0);
  socklen_t ulen = sizeof ua;
  ::getsockname(up.get(), reinterpret_cast<sockaddr*>(&ua), &ulen);
  std::atomic<bool> stop{false};
  std::atomic<int> seen{0};
  std::thread upstream([&] {
    while (!stop.load()) {
      pollfd p{up.get(), POLLIN, 0};
      if (::poll(&p, 1, 50) != 1) {
        continue;
      }
      char buf[2048];
      sockaddr_storage from{};
      socklen_t flen = sizeof from;
      const ssize_t n = ::recvfrom(up.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &flen);
      if (n <= 0) {
        continue;
      }
      ++seen;
      auto q = w::parseQuery(std::span<const std::uint8_t>(reinterpret_cast<std::uint8_t*>(buf), static_cast<std::size_t>(n)));
      if (!q || w::lowerName(q->question.name) == *w::nameFromText("hang.example.test")) {
        continue;
      }
      if (w::lowerName(q->question.name) != *w::nameFromText("www.example.test")) {
        std::string nx(buf, q->questionEnd);
        w::putU16(reinterpret_cast<std::uint8_t*>(nx.data()) + 2,
                  w::kFlagQR | w::kFlagRD | w::kFlagRA | w::kRcodeNxDomain);
        w::putU16(reinterpret_cast<std::uint8_t*>(nx.data()) + 10, 0);
        ::sendto(up.get(), nx.data(), nx.size(), 0, reinterpret_cast<sockaddr*>(&from), flen);
        continue;
      }
      std::string resp(buf, q->questionEnd);
      w::putU16(reinterpret_cast<std::uint8_t*>(resp.data()) + 2, w::kFlagQR | w::kFlagRD | w::kFlagRA);
      w::putU16(reinterpret_cast<std::uint8_t*>(resp.data()) + 6, 1);
      w::putU16(reinterpret_cast<std::uint8_t*>(resp.data()) + 10, 0);
      w::Writer wr(resp);
      wr.pointer(12);
      wr.u16(w::kTypeA);
      wr.u16(w::kClassIN);
      wr.u32(120);
      wr.rdata([&] { wr.u32(0xC0000201); });
      ::sendto(up.get(), resp.data(), resp.size(), 0, reinterpret_cast<sockaddr*>(&from), flen);
    }
  });
  {
    Running r({kdp::HostPort{*kdp::IpAddr::parse("127.0.0.1"), ntohs(ua.sin_port)}}, 1, true);
    // Autopath: the node's search domain first (NXDOMAIN upstream), then the bare name.
    const std::string ap = makeQuery("www.example.test.shop.svc.cluster.local", w::kTypeA);
    CHECK(render(udpAsk(r.port, ap)) ==
          "NOERROR aa | www.example.test.shop.svc.cluster.local. 30 CNAME www.example.test.; "
          "www.example.test. 30 A 192.0.2.1 |  | ");
    CHECK(seen.load() == 2);
    seen = 0;
    const std::string q = makeQuery("WWW.example.test", w::kTypeA);
    CHECK(render(udpAsk(r.port, q)) == "NOERROR | WWW.example.test. 30 A 192.0.2.1 |  | ");
    CHECK(render(udpAsk(r.port, q)) == "NOERROR | WWW.example.test. 30 A 192.0.2.1 |  | ");
    CHECK(seen.load() == 0);  // both from the cache: autopath resolved www.example.test already

    // Never answered: SERVFAIL within the budget, and cluster names meanwhile at once.
    const auto t0 = std::chrono::steady_clock::now();
    kdp::Fd s(::socket(AF_INET, SOCK_DGRAM, 0));
    auto a = loopback(r.port);
    const std::string slow = makeQuery("hang.example.test", w::kTypeA);
    ::sendto(s.get(), slow.data(), slow.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
    const std::string fast = makeQuery("web.shop.svc.cluster.local", w::kTypeA);
    CHECK(render(udpAsk(r.port, fast, 200ms)).starts_with("NOERROR aa"));
    CHECK(std::chrono::steady_clock::now() - t0 < 200ms);
    pollfd p{s.get(), POLLIN, 0};
    REQUIRE(::poll(&p, 1, 3000) == 1);
    char buf[512];
    const ssize_t n = ::recv(s.get(), buf, sizeof buf, 0);
    REQUIRE(n > 0);
    CHECK(render(std::string(buf, static_cast<std::size_t>(n))) == "SERVFAIL |  |  | ");
    const auto took = std::chrono::steady_clock::now() - t0;
    CHECK(took < 2s);
    CHECK(took >= kForwardBudget - 100ms);
  }
  stop = true;
  upstream.join();
}

TEST_CASE("dns server: after a dead first upstream, queries start at the one that answered", "[dns]") {
  // Upstream 1 never answers; upstream 2 answers every query NXDOMAIN.
  kdp::Fd dead(::socket(AF_INET, SOCK_DGRAM, 0));
  kdp::Fd up(::socket(AF_INET, SOCK_DGRAM, 0));
  auto da = loopback(0);
  auto ua = loopback(0);
  REQUIRE(::bind(dead.get(), reinterpret_cast<sockaddr*>(&da), sizeof da) == 0);
  REQUIRE(::bind(up.get(), reinterpret_cast<sockaddr*>(&ua), sizeof ua) == 0);
  socklen_t len = sizeof da;
  ::getsockname(dead.get(), reinterpret_cast<sockaddr*>(&da), &len);
  len = sizeof ua;
  ::getsockname(up.get(), reinterpret_cast<sockaddr*>(&ua), &len);
  std::atomic<bool> stop{false};
  std::thread upstream([&] {
    while (!stop.load()) {
      pollfd p{up.get(), POLLIN, 0};
      if (::poll(&p, 1, 50) != 1) {
        continue;
      }
      char buf[2048];
      sockaddr_storage from{};
      socklen_t flen = sizeof from;
      const ssize_t n = ::recvfrom(up.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &flen);
      auto q = n > 0 ? w::parseQuery(std::span<const std::uint8_t>(reinterpret_cast<std::uint8_t*>(buf),
                                                                   static_cast<std::size_t>(n)))
                     : kdp::Result<w::Query>(kdp::Error{"short"});
      if (!q) {
        continue;
      }
      std::string nx(buf, q->questionEnd);
      w::putU16(reinterpret_cast<std::uint8_t*>(nx.data()) + 2,
                w::kFlagQR | w::kFlagRD | w::kFlagRA | w::kRcodeNxDomain);
      w::putU16(reinterpret_cast<std::uint8_t*>(nx.data()) + 10, 0);
      ::sendto(up.get(), nx.data(), nx.size(), 0, reinterpret_cast<sockaddr*>(&from), flen);
    }
  });
  {
    Running r({kdp::HostPort{*kdp::IpAddr::parse("127.0.0.1"), ntohs(da.sin_port)},
               kdp::HostPort{*kdp::IpAddr::parse("127.0.0.1"), ntohs(ua.sin_port)}},
              1);
    auto t0 = std::chrono::steady_clock::now();
    CHECK(render(udpAsk(r.port, makeQuery("one.example.test", w::kTypeA), 3s)) == "NXDOMAIN |  |  | ");
    CHECK(std::chrono::steady_clock::now() - t0 >= kMinTryTimeout);  // waited for the dead one
    t0 = std::chrono::steady_clock::now();
    CHECK(render(udpAsk(r.port, makeQuery("two.example.test", w::kTypeA), 3s)) == "NXDOMAIN |  |  | ");
    CHECK(std::chrono::steady_clock::now() - t0 < kMinTryTimeout);  // straight to the live one
  }
  stop = true;
  upstream.join();
}
