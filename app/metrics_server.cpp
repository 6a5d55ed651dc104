#include "app/metrics_server.h"

#include <pthread.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_generator.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message_generator.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <chrono>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>

#include "common/logging.h"
#include "common/metrics.h"

namespace kdp::app {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kDeadline = std::chrono::seconds(10);
constexpr std::uint32_t kHeaderLimit = 8 * 1024;
constexpr std::uint64_t kBodyLimit = 4 * 1024;
constexpr std::size_t kMaxConnections = 64;
constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

}  // namespace

struct MetricsServer::Impl {
  Impl(metrics::Registry& r, std::function<bool()> f) : registry(r), ready(std::move(f)) {}

  asio::awaitable<void> acceptLoop();
  asio::awaitable<void> session(tcp::socket socket);
  http::message_generator respond(const http::request<http::string_body>& req);
  void closeAll();  // server thread

  metrics::Registry& registry;
  std::function<bool()> ready;
  std::shared_ptr<spdlog::logger> log = logger("app");

  asio::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  std::thread thread;
  std::uint16_t port = 0;

  // Server thread only.
  std::set<beast::tcp_stream*> streams;
  bool stopping = false;

  std::mutex stopMu;  // stop() from several threads
};

namespace {

void logException(spdlog::logger& log, std::exception_ptr e) {
  if (!e) {
    return;
  }
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    SPDLOG_LOGGER_ERROR(&log, "metrics server task failed err={}", x.what());
  } catch (...) {
    SPDLOG_LOGGER_ERROR(&log, "metrics server task failed err=unknown");
  }
}

constexpr std::string_view kTextContentType = "text/plain; charset=utf-8";

http::response<http::string_body> textResponse(http::status status, unsigned version,
                                               bool keepAlive, std::string body,
                                               std::string_view contentType = kTextContentType) {
  http::response<http::string_body> res{status, version};
  res.set(http::field::server, "kube-dataplane");
  res.set(http::field::content_type, contentType);
  res.keep_alive(keepAlive);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

// Closing with unread request bytes would send a reset that can destroy the error response
// before the client reads it: half-close, then read and drop what is still coming, briefly.
asio::awaitable<void> lingeringClose(beast::tcp_stream& stream) {
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream.expires_after(std::chrono::seconds(1));
  char sink[4096];
  for (std::size_t drained = 0; drained < 64 * 1024;) {
    auto [ec, n] = co_await stream.async_read_some(asio::buffer(sink), kUseTuple);
    if (ec) {
      break;
    }
    drained += n;
  }
}

}  // namespace

http::message_generator MetricsServer::Impl::respond(
    const http::request<http::string_body>& req) {
  const unsigned version = req.version();
  const bool keepAlive = req.keep_alive();
  const bool head = req.method() == http::verb::head;
  if (req.method() != http::verb::get && !head) {
    auto res = textResponse(http::status::method_not_allowed, version, keepAlive,
                            "method not allowed");
    res.set(http::field::allow, "GET, HEAD");
    return res;
  }
  std::string_view target = req.target();
  target = target.substr(0, target.find('?'));

  http::response<http::string_body> res;
  if (target == "/metrics") {
    res = textResponse(http::status::ok, version, keepAlive, registry.renderPrometheus(),
                       kMetricsContentType);
  } else if (target == "/healthz") {
    res = textResponse(http::status::ok, version, keepAlive, "ok");
  } else if (target == "/readyz") {
    const bool isReady = !ready || ready();
    res = textResponse(isReady ? http::status::ok : http::status::service_unavailable, version,
                       keepAlive, isReady ? "ok" : "not ready");
  } else {
    res = textResponse(http::status::not_found, version, keepAlive, "not found");
  }
  if (!head) {
    return res;
  }
  // HEAD: the same header, Content-Length included, and no body.
  http::response<http::empty_body> headRes{std::move(res.base())};
  return headRes;
}

asio::awaitable<void> MetricsServer::Impl::session(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  streams.insert(&stream);
  struct Untrack {
    Impl& impl;
    beast::tcp_stream* s;
    ~Untrack() { impl.streams.erase(s); }
  } untrack{*this, &stream};

  beast::flat_buffer buffer(kHeaderLimit + kBodyLimit);
  while (!stopping) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(kHeaderLimit);
    parser.body_limit(kBodyLimit);
    stream.expires_after(kDeadline);
    auto [ec, n] = co_await http::async_read(stream, buffer, parser, kUseTuple);
    if (ec == http::error::end_of_stream) {
      beast::error_code ignored;
      stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
      co_return;
    }
    if (ec) {
      // A request we cannot read (too large, malformed): say so once, then close. Timeouts,
      // resets and stop() just close.
      if (ec.category() == http::make_error_code(http::error::end_of_stream).category()) {
        stream.expires_after(kDeadline);
        auto [wec, wn] = co_await beast::async_write(
            stream,
            http::message_generator(textResponse(http::status::bad_request, 11, false,
                                                 "bad request")),
            kUseTuple);
        if (!wec) {
          co_await lingeringClose(stream);
        }
      }
      co_return;
    }
    http::message_generator msg = respond(parser.get());
    const bool keepAlive = msg.keep_alive();
    stream.expires_after(kDeadline);
    auto [wec, wn] = co_await beast::async_write(stream, std::move(msg), kUseTuple);
    if (wec) {
      co_return;
    }
    if (!keepAlive) {
      beast::error_code ignored;
      stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
      co_return;
    }
  }
}

asio::awaitable<void> MetricsServer::Impl::acceptLoop() {
  asio::steady_timer backoff(ioc);
  while (!stopping) {
    auto [ec, socket] = co_await acceptor.async_accept(kUseTuple);
    if (stopping || ec == asio::error::operation_aborted) {
      co_return;
    }
    if (ec) {
      // Out of descriptors and the like: wait a little rather than spin on the same error.
      KDP_LOG_RATE_LIMITED(log, spdlog::level::warn, 1, "metrics accept failed err={}",
                           ec.message());
      backoff.expires_after(std::chrono::milliseconds(100));
      co_await backoff.async_wait(kUseTuple);
      continue;
    }
    if (streams.size() >= kMaxConnections) {
      KDP_LOG_RATE_LIMITED(log, spdlog::level::warn, 1,
                           "metrics connection refused reason=too-many-connections max={}",
                           kMaxConnections);
      continue;  // the socket closes as it goes out of scope
    }
    asio::co_spawn(ioc, session(std::move(socket)),
                   [this](std::exception_ptr e) { logException(*log, e); });
  }
}

void MetricsServer::Impl::closeAll() {
  stopping = true;
  beast::error_code ignored;
  acceptor.close(ignored);
  // Pending reads and writes complete with operation_aborted; each session then ends and
  // unregisters itself (later, from its own completion, so this loop is safe).
  for (auto* s : streams) {
    s->socket().close(ignored);
  }
}

MetricsServer::MetricsServer(metrics::Registry& registry, std::function<bool()> ready)
    : impl_(std::make_unique<Impl>(registry, std::move(ready))) {}

MetricsServer::~MetricsServer() {
  stop();
}

void MetricsServer::start(const HostPort& address) {
  Impl& i = *impl_;
  if (i.thread.joinable()) {
    throw std::logic_error("MetricsServer::start called twice");
  }
  beast::error_code ec;
  const auto ip = asio::ip::make_address(address.ip.str(), ec);
  const tcp::endpoint endpoint(ip, address.port);
  auto check = [&](const char* what) {
    if (ec) {
      beast::error_code ignored;
      i.acceptor.close(ignored);
      throw std::runtime_error("--metrics " + address.str() + ": " + what + ": " + ec.message());
    }
  };
  check("address");
  i.acceptor.open(endpoint.protocol(), ec);
  check("socket");
  i.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  check("setsockopt");
  i.acceptor.bind(endpoint, ec);
  check("bind");
  i.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  check("listen");
  i.port = i.acceptor.local_endpoint(ec).port();
  check("getsockname");

  asio::co_spawn(i.ioc, i.acceptLoop(), [&i](std::exception_ptr e) { logException(*i.log, e); });
  i.thread = std::thread([&i] {
    ::pthread_setname_np(::pthread_self(), "kdp/metrics");
    // A handler that throws must not take the process down: log it and go on serving.
    while (true) {
      try {
        i.ioc.run();
        return;
      } catch (const std::exception& e) {
        SPDLOG_LOGGER_ERROR(i.log, "metrics server handler failed err={}", e.what());
      }
    }
  });
  SPDLOG_LOGGER_INFO(i.log, "metrics server listening addr={}",
                     HostPort{address.ip, i.port}.str());
}

std::uint16_t MetricsServer::port() const {
  return impl_->port;
}

void MetricsServer::stop() {
  Impl& i = *impl_;
  std::lock_guard lock(i.stopMu);
  if (!i.thread.joinable()) {
    return;
  }
  asio::post(i.ioc, [&i] { i.closeAll(); });
  i.thread.join();
}

}  // namespace kdp::app
