#include "app/metrics_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>

#include "common/fd.h"
#include "common/metrics.h"

using kdp::Fd;
using kdp::IpAddr;
using kdp::HostPort;
using kdp::app::MetricsServer;

namespace {

struct Response {
  int status = 0;
  std::string headers;  // lower-cased
  std::string body;

  bool hasHeader(const std::string& line) const { return headers.find(line) != std::string::npos; }
};

/// A plain blocking HTTP/1.1 client over one TCP connection, with a 5 s receive timeout so that a
/// broken server fails the test instead of hanging it.
class Client {
 public:
  explicit Client(std::uint16_t port, bool v6 = false) {
    fd_ = Fd(::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0));
    REQUIRE(fd_.valid());
    timeval tv{5, 0};
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int rc = 0;
    if (v6) {
      sockaddr_in6 a{};
      a.sin6_family = AF_INET6;
      a.sin6_port = htons(port);
      a.sin6_addr = in6addr_loopback;
      rc = ::connect(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
    } else {
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(port);
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      rc = ::connect(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
    }
    REQUIRE(rc == 0);
  }

  void send(const std::string& data) {
    REQUIRE(::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(data.size()));
  }

  /// Reads one response; `head` for a response to HEAD (no body whatever Content-Length says).
  Response read(bool head = false) {
    Response r;
    std::size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      REQUIRE(fill());
    }
    std::string head_text = buf_.substr(0, end + 2);
    buf_.erase(0, end + 4);
    r.status = std::stoi(head_text.substr(9, 3));
    for (char& c : head_text) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    r.headers = head_text;
    std::size_t length = 0;
    if (auto pos = head_text.find("content-length: "); pos != std::string::npos) {
      length = std::stoul(head_text.substr(pos + 16));
    }
    if (head) {
      length = 0;
    }
    while (buf_.size() < length) {
      REQUIRE(fill());
    }
    r.body = buf_.substr(0, length);
    buf_.erase(0, length);
    return r;
  }

  Response request(const std::string& method, const std::string& target) {
    send(method + " " + target + " HTTP/1.1\r\nHost: test\r\n\r\n");
    return read(method == "HEAD");
  }

  /// True when the server closed the connection (EOF) before sending anything more.
  bool closedByPeer() {
    char c;
    return ::recv(fd_.get(), &c, 1, 0) == 0;
  }

 private:
  bool fill() {
    char tmp[4096];
    const ssize_t n = ::recv(fd_.get(), tmp, sizeof tmp, 0);
    if (n <= 0) {
      return false;
    }
    buf_.append(tmp, static_cast<std::size_t>(n));
    return true;
  }

  Fd fd_;
  std::string buf_;
};

HostPort loopback(const char* ip = "127.0.0.1") {
  return HostPort{*IpAddr::parse(ip), 0};
}

}  // namespace

TEST_CASE("metrics server: /metrics, /healthz, /readyz and errors over loopback",
          "[metrics_server]") {
  kdp::metrics::Registry registry;
  registry.counter("kdp_test_requests_total", "Test counter.").inc(7);
  std::atomic<bool> ready{false};
  MetricsServer server(registry, [&ready] { return ready.load(); });
  server.start(loopback());
  REQUIRE(server.port() != 0);

  Client c(server.port());

  auto m = c.request("GET", "/metrics");
  CHECK(m.status == 200);
  CHECK(m.hasHeader("content-type: text/plain; version=0.0.4"));
  CHECK(m.body ==
        "# HELP kdp_test_requests_total Test counter.\n"
        "# TYPE kdp_test_requests_total counter\n"
        "kdp_test_requests_total 7\n");

  // The same connection stays open (keep-alive) for the next requests.
  auto h = c.request("GET", "/healthz");
  CHECK(h.status == 200);
  CHECK(h.body == "ok");

  auto notReady = c.request("GET", "/readyz");
  CHECK(notReady.status == 503);
  CHECK(notReady.body == "not ready");
  ready = true;
  auto isReady = c.request("GET", "/readyz");
  CHECK(isReady.status == 200);
  CHECK(isReady.body == "ok");

  auto missing = c.request("GET", "/nope");
  CHECK(missing.status == 404);

  auto query = c.request("GET", "/metrics?name[]=x");
  CHECK(query.status == 200);

  auto post = c.request("POST", "/metrics");
  CHECK(post.status == 405);
  CHECK(post.hasHeader("allow: get, head"));

  auto head = c.request("HEAD", "/healthz");
  CHECK(head.status == 200);
  CHECK(head.hasHeader("content-length: 2"));
  CHECK(head.body.empty());

  // Still in sync after HEAD: the next response is parsed from the right place.
  CHECK(c.request("GET", "/healthz").body == "ok");

  server.stop();
  server.stop();  // idempotent
}

TEST_CASE("metrics server: Connection: close and HTTP/1.0 end the connection",
          "[metrics_server]") {
  kdp::metrics::Registry registry;
  MetricsServer server(registry, nullptr);
  server.start(loopback());

  Client c(server.port());
  c.send("GET /readyz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  auto r = c.read();
  CHECK(r.status == 200);  // a null predicate means ready
  CHECK(r.hasHeader("connection: close"));
  CHECK(c.closedByPeer());

  Client d(server.port());
  d.send("GET /healthz HTTP/1.0\r\n\r\n");
  CHECK(d.read().body == "ok");
  CHECK(d.closedByPeer());
}

TEST_CASE("metrics server: oversized and malformed requests get 400 and a close",
          "[metrics_server]") {
  kdp::metrics::Registry registry;
  MetricsServer server(registry, nullptr);
  server.start(loopback());

  Client big(server.port());
  big.send("GET /metrics HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(16 * 1024, 'a') +
           "\r\n\r\n");
  CHECK(big.read().status == 400);
  CHECK(big.closedByPeer());

  Client junk(server.port());
  junk.send("NOT HTTP AT ALL\r\n\r\n");
  CHECK(junk.read().status == 400);
  CHECK(junk.closedByPeer());

  Client body(server.port());
  body.send("POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n");
  CHECK(body.read().status == 400);
}

TEST_CASE("metrics server: stop() closes idle connections and returns", "[metrics_server]") {
  kdp::metrics::Registry registry;
  MetricsServer server(registry, nullptr);
  server.start(loopback());
  Client idle(server.port());
  CHECK(idle.request("GET", "/healthz").status == 200);
  const auto t0 = std::chrono::steady_clock::now();
  server.stop();
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2));
  CHECK(idle.closedByPeer());
}

TEST_CASE("metrics server: a port in use is one clear error", "[metrics_server]") {
  kdp::metrics::Registry registry;
  MetricsServer first(registry, nullptr);
  first.start(loopback());
  MetricsServer second(registry, nullptr);
  const HostPort taken{*IpAddr::parse("127.0.0.1"), first.port()};
  try {
    second.start(taken);
    FAIL("bind should fail");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).starts_with("--metrics " + taken.str() + ": bind: "));
  }
}

TEST_CASE("metrics server: IPv6 loopback", "[metrics_server]") {
  // Skipped where the machine has no ::1 (some containers).
  Fd probe(::socket(AF_INET6, SOCK_STREAM, 0));
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  if (!probe.valid() || ::bind(probe.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    WARN("no IPv6 loopback here; skipped");
    return;
  }
  kdp::metrics::Registry registry;
  MetricsServer server(registry, nullptr);
  server.start(loopback("::1"));
  Client c(server.port(), true);
  CHECK(c.request("GET", "/healthz").body == "ok");
}
