#include "ingress/server.h"

#include <pthread.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <openssl/ssl.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <array>
#include <atomic>
#include <chrono>
#include <charconv>
#include <ctime>
#include <stdexcept>
#include <iterator>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "common/logging.h"
#include "common/metrics.h"
#include "ingress/detail/http_util.h"
#include "ingress/routes.h"
#include "tls/context.h"
#include "tls/sni.h"

namespace kdp::ingress {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

using detail::connectionHas;
using detail::isIdempotent;
using detail::removeHopByHop;
using detail::validHostHeader;

namespace {

// Every I/O object and coroutine runs on its worker's io_context: the concrete executor type
// saves the type-erased any_io_executor's copies and indirect calls on every operation.
using Executor = asio::io_context::executor_type;
template <class T = void>
using Task = asio::awaitable<T, Executor>;
using Socket = asio::basic_stream_socket<tcp, Executor>;
using Acceptor = asio::basic_socket_acceptor<tcp, Executor>;
using Timer = asio::basic_waitable_timer<Clock, asio::wait_traits<Clock>, Executor>;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable_t<Executor>{});

constexpr auto kHandshakeTimeout = std::chrono::seconds(10);
constexpr auto kBodyTimeout = std::chrono::seconds(60);    // each body read or write
constexpr std::size_t kPoolMaxIdle = 64;  // per endpoint and worker
constexpr std::uint32_t kHeaderLimit = 32 * 1024;
constexpr std::uint32_t kUpstreamHeaderLimit = 64 * 1024;
constexpr std::size_t kBodyChunk = 64 * 1024;
constexpr unsigned kMaxAttempts = 3;
constexpr auto kTunnelIdle = std::chrono::minutes(10);  // an Upgrade tunnel with no traffic

// The header fields of one request and of its response, bump-allocated from the connection's
// blocks and released together when the next request starts (Beast's basic_fields allocates
// every field separately: the client's, five X-Forwarded-*, the upstream's). The first block is
// kept for the connection's life; a request whose headers outgrow it gets more, freed at reset.
class FieldArena {
 public:
  FieldArena() = default;
  FieldArena(const FieldArena&) = delete;
  FieldArena& operator=(const FieldArena&) = delete;
  ~FieldArena() {
    reset();
    ::operator delete(first_);
  }

  void* allocate(std::size_t n, std::size_t align) {
    auto at = (reinterpret_cast<std::uintptr_t>(cur_) + align - 1) & ~(std::uintptr_t{align} - 1);
    if (cur_ == nullptr || at + n > reinterpret_cast<std::uintptr_t>(end_)) {
      grow(n + align);
      at = (reinterpret_cast<std::uintptr_t>(cur_) + align - 1) & ~(std::uintptr_t{align} - 1);
    }
    cur_ = reinterpret_cast<char*>(at + n);
    return reinterpret_cast<void*>(at);
  }
  // Only when nothing allocated from it is alive (no parser or message of the last request).
  void reset() {
    while (extra_ != nullptr) {
      Extra* next = extra_->next;
      ::operator delete(extra_);
      extra_ = next;
    }
    cur_ = first_;
    end_ = first_ == nullptr ? nullptr : first_ + kFirstBlock;
  }

 private:
  static constexpr std::size_t kFirstBlock = 4096;
  struct Extra {
    Extra* next;
  };
  void grow(std::size_t need) {
    if (first_ == nullptr) {
      first_ = static_cast<char*>(::operator new(kFirstBlock));
      cur_ = first_;
      end_ = first_ + kFirstBlock;
      if (need <= kFirstBlock) {
        return;
      }
    }
    const std::size_t size = std::max(need, kFirstBlock) + sizeof(Extra);
    auto* e = static_cast<Extra*>(::operator new(size));
    e->next = extra_;
    extra_ = e;
    cur_ = reinterpret_cast<char*>(e + 1);
    end_ = reinterpret_cast<char*>(e) + size;
  }

  char* first_ = nullptr;
  char* cur_ = nullptr;
  char* end_ = nullptr;
  Extra* extra_ = nullptr;
};

template <class T>
struct FieldAllocator {
  using value_type = T;
  explicit FieldAllocator(FieldArena& a) noexcept : arena(&a) {}
  template <class U>
  FieldAllocator(const FieldAllocator<U>& o) noexcept : arena(o.arena) {}
  T* allocate(std::size_t n) { return static_cast<T*>(arena->allocate(n * sizeof(T), alignof(T))); }
  void deallocate(T*, std::size_t) noexcept {}  // released by FieldArena::reset
  friend bool operator==(const FieldAllocator& a, const FieldAllocator& b) {
    return a.arena == b.arena;
  }
  FieldArena* arena;
};

using Fields = http::basic_fields<FieldAllocator<char>>;
using RequestParser = http::request_parser<http::buffer_body, FieldAllocator<char>>;
using ResponseParser = http::response_parser<http::buffer_body, FieldAllocator<char>>;
using Request = http::request<http::buffer_body, Fields>;
using Response = http::response<http::buffer_body, Fields>;
template <bool isRequest>
using Parser = http::parser<isRequest, http::buffer_body, FieldAllocator<char>>;
template <bool isRequest>
using Serializer = http::serializer<isRequest, http::buffer_body, Fields>;
// A parser whose message's fields live in `arena`.
template <class P>
void emplaceParser(std::optional<P>& p, FieldArena& arena) {
  p.emplace(std::piecewise_construct, std::make_tuple(),
            std::make_tuple(FieldAllocator<char>(arena)));
}

// Timeouts: one deadline per socket, in ticks of a coarse per-worker clock, checked by one timer
// per worker (DeadlineList::tick) instead of a timer armed and cancelled around every operation
// (Beast's tcp_stream: a timer-queue insert and removal, a cancelled handler and a clock read
// each time). A deadline that passes cancels the socket's pending operation, which then
// completes with operation_aborted; TcpStream::result maps that to beast::error::timeout. The
// socket stays open, so a 408 can still be written. Deadlines are never early and at most two
// ticks late; a passed deadline keeps cancelling until the socket is re-armed.
constexpr auto kTick = std::chrono::milliseconds(250);
constexpr std::uint64_t kPoolIdleTicks = std::chrono::seconds(30) / kTick;  // pooled, idle
constexpr std::uint64_t kNever = ~std::uint64_t{0};
class DeadlineList;

class TcpStream : public Socket {
 public:
  explicit TcpStream(Socket&& s) : Socket(std::move(s)) {}
  explicit TcpStream(asio::io_context& ioc) : Socket(ioc) {}
  TcpStream(const TcpStream&) = delete;
  TcpStream& operator=(const TcpStream&) = delete;
  ~TcpStream();

  void attach(DeadlineList& list);  // once, before the first expires_after
  void expires_after(Clock::duration d);
  void expires_never() {
    due_ = kNever;
    fired_ = false;
  }
  Socket& socket() { return *this; }
  // An operation cancelled because this socket's deadline passed timed out.
  beast::error_code result(beast::error_code ec) const {
    return fired_ && ec == asio::error::operation_aborted ? beast::error::timeout : ec;
  }

 private:
  friend class DeadlineList;
  DeadlineList* list_ = nullptr;
  TcpStream* prev_ = nullptr;
  TcpStream* next_ = nullptr;
  std::uint64_t due_ = kNever;
  bool fired_ = false;
};

// A worker's sockets with deadlines (an intrusive list: linking and unlinking allocate
// nothing) and its tick count.
class DeadlineList {
 public:
  DeadlineList() = default;
  DeadlineList(const DeadlineList&) = delete;
  DeadlineList& operator=(const DeadlineList&) = delete;
  ~DeadlineList() {
    while (head_ != nullptr) {
      unlink(*head_);
    }
  }

  std::uint64_t now() const { return now_; }
  void link(TcpStream& s) {
    s.list_ = this;
    s.next_ = head_;
    if (head_ != nullptr) {
      head_->prev_ = &s;
    }
    head_ = &s;
  }
  void unlink(TcpStream& s) {
    (s.prev_ != nullptr ? s.prev_->next_ : head_) = s.next_;
    if (s.next_ != nullptr) {
      s.next_->prev_ = s.prev_;
    }
    s.prev_ = s.next_ = nullptr;
    s.list_ = nullptr;
  }
  // One tick: every socket whose deadline has passed has its pending operation cancelled, at
  // every tick until it is re-armed: the tick may find the socket between two operations (a
  // composed read's next read_some still queued), and the operation started after that must
  // fail too, as with an expired timer.
  void tick() {
    ++now_;
    for (TcpStream* s = head_; s != nullptr; s = s->next_) {
      if (s->due_ <= now_) {
        s->fired_ = true;
        beast::error_code ignored;
        s->cancel(ignored);
      }
    }
  }

 private:
  TcpStream* head_ = nullptr;
  std::uint64_t now_ = 0;
};

TcpStream::~TcpStream() {
  if (list_ != nullptr) {
    list_->unlink(*this);
  }
}

void TcpStream::attach(DeadlineList& list) {
  list.link(*this);
}

void TcpStream::expires_after(Clock::duration d) {
  // Rounded up, plus one: the current tick may be about to end.
  const auto ticks = static_cast<std::uint64_t>((d + kTick - Clock::duration(1)) / kTick) + 1;
  due_ = list_->now() + ticks;
  fired_ = false;
}

using TlsStream = beast::ssl_stream<TcpStream>;

// The Date header's value, remade at most once per second per thread.
const std::string& httpDate() {
  thread_local std::time_t last = 0;
  thread_local std::string text;
  const std::time_t now = std::time(nullptr);
  if (now != last) {
    text = detail::formatHttpDate(now);
    last = now;
  }
  return text;
}

// One direction of an Upgrade tunnel: the bytes already buffered, then everything `from` sends,
// until either side closes or idles out; then `stop` cancels the other direction.
template <class From, class To, class Stop>
Task<std::uint64_t> pump(From& from, To& to, beast::flat_buffer& pending, Stop stop) {
  std::uint64_t total = 0;
  if (pending.size() != 0) {
    beast::get_lowest_layer(to).expires_after(kTunnelIdle);
    auto [ec, n] = co_await asio::async_write(to, pending.data(), kUseTuple);
    pending.consume(pending.size());
    if (ec) {
      stop();
      co_return total;
    }
    total += n;
  }
  std::array<char, 16 * 1024> buf;
  for (;;) {
    beast::get_lowest_layer(from).expires_after(kTunnelIdle);
    auto [rec, rn] = co_await from.async_read_some(asio::buffer(buf), kUseTuple);
    if (rec) {
      break;
    }
    beast::get_lowest_layer(to).expires_after(kTunnelIdle);
    auto [wec, wn] = co_await asio::async_write(to, asio::buffer(buf.data(), rn), kUseTuple);
    if (wec) {
      break;
    }
    total += wn;
  }
  stop();
  co_return total;
}

template <class Stream>
void closeWrite(Stream& s) {
  beast::error_code ignored;
  beast::get_lowest_layer(s).socket().shutdown(Socket::shutdown_send, ignored);
}

// A pooled connection that the upstream closed (or that has stray bytes) is not reusable:
// a non-blocking peek tells without waiting. Only connections checked in before the current
// deadline tick (idle 0-250 ms at least) are peeked: a busy connection saves the syscall, and a
// close that races a reuse within it is caught by the retry of a request that failed before its
// body was sent.
bool stillUsable(Socket& s) {
  char c;
  const ssize_t n = ::recv(s.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

// Writing to a plain TCP stream: first one non-blocking sendmsg (sendNow), which takes a small
// message whole on a connection that is keeping up (the usual case) with no timer, reactor
// operation or coroutine; whatever the kernel did not take goes asynchronously (writeRest).
template <std::size_t N>
std::size_t sendNow(TcpStream& stream, const std::array<asio::const_buffer, N>& buffers,
                    beast::error_code& ec) {
  std::array<iovec, N> iov;
  for (std::size_t i = 0; i < N; ++i) {
    iov[i] = {const_cast<void*>(buffers[i].data()), buffers[i].size()};
  }
  msghdr msg{};
  msg.msg_iov = iov.data();
  msg.msg_iovlen = N;
  const ssize_t sent = ::sendmsg(stream.native_handle(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    ec = beast::error_code(errno, boost::system::system_category());
  }
  return sent > 0 ? static_cast<std::size_t>(sent) : 0;
}

template <std::size_t N>
Task<beast::error_code> writeRest(TcpStream& stream, const std::array<asio::const_buffer, N>& buffers,
                                  std::size_t done, Clock::duration timeout) {
  beast::buffers_suffix<std::array<asio::const_buffer, N>> rest(buffers);
  rest.consume(done);
  stream.expires_after(timeout);
  auto [ec, n] = co_await asio::async_write(stream, rest, kUseTuple);
  co_return ec;
}

struct Upstream {
  Upstream(asio::io_context& ioc, DeadlineList& deadlines) : stream(ioc) {
    stream.attach(deadlines);
  }
  TcpStream stream;
  beast::flat_buffer buffer;
  std::uint64_t idleSince = 0;  // in deadline ticks
};
using UpstreamPtr = std::unique_ptr<Upstream>;

// What a client connection reuses from request to request: the header text it writes (the
// upstream request, then the response) and the body relay's chunk, allocated at first use (most
// requests and responses never need it; uninitialised: it is always written before it is read).
struct ConnScratch {
  FieldArena fields;
  std::string head;
  std::unique_ptr<char[]> chunkStore;
  char* chunk() {
    if (!chunkStore) {
      chunkStore.reset(new char[kBodyChunk]);
    }
    return chunkStore.get();
  }
};

struct ConnInfo {
  std::string clientIp;
  std::uint16_t localPort = 0;
  bool tls = false;
};

struct RelayResult {
  beast::error_code readEc;
  beast::error_code writeEc;
  std::uint64_t bytes = 0;
};

// Streams the body of the message `p` is reading from `in` into `out` through `sr` (which has
// written the header already), one chunk at a time: a read waits for the previous write, so a
// slow reader slows the writer down (backpressure) and no more than one chunk is held.
template <bool isRequest, class In, class Out>
Task<RelayResult> relayBody(In& in, beast::flat_buffer& inBuf,
                                       Parser<isRequest>& p, Out& out,
                                       Serializer<isRequest>& sr,
                                       char* chunk) {
  RelayResult r;
  for (;;) {
    auto& body = p.get().body();
    body.data = chunk;
    body.size = kBodyChunk;
    beast::get_lowest_layer(in).expires_after(kBodyTimeout);
    auto [rec, rn] = co_await http::async_read(in, inBuf, p, kUseTuple);
    if (rec == http::error::need_buffer) {
      rec = {};
    }
    if (rec) {
      r.readEc = rec;
      co_return r;
    }
    body.size = kBodyChunk - body.size;
    body.data = chunk;
    body.more = !p.is_done();
    r.bytes += body.size;
    beast::get_lowest_layer(out).expires_after(kBodyTimeout);
    auto [wec, wn] = co_await http::async_write(out, sr, kUseTuple);
    if (wec == http::error::need_buffer) {
      wec = {};
    }
    if (wec) {
      r.writeEc = wec;
      co_return r;
    }
    if (p.is_done()) {
      co_return r;
    }
  }
}

struct Metrics {
  explicit Metrics(metrics::Registry& r)
      : connections(r.gauge("kube_dataplane_ingress_connections_active",
                            "Client connections open now.")),
        tlsHandshakes(r.counter("kube_dataplane_ingress_tls_handshakes_total",
                                "TLS handshakes completed.")),
        tlsErrors(r.counter("kube_dataplane_ingress_tls_handshake_errors_total",
                            "TLS handshakes that failed or timed out.")),
        connectErrors(r.counter("kube_dataplane_ingress_upstream_errors_total",
                                "Upstream failures by kind.", {{"kind", "connect"}})),
        upstreamTimeouts(r.counter("kube_dataplane_ingress_upstream_errors_total",
                                   "Upstream failures by kind.", {{"kind", "timeout"}})),
        upstreamResets(r.counter("kube_dataplane_ingress_upstream_errors_total",
                                 "Upstream failures by kind.", {{"kind", "reset"}})),
        retries(r.counter("kube_dataplane_ingress_upstream_retries_total",
                          "Requests retried on another connection or endpoint.")),
        pooledReuse(r.counter("kube_dataplane_ingress_upstream_reused_total",
                              "Requests sent on a pooled keep-alive upstream connection.")),
        refused(r.counter("kube_dataplane_ingress_connections_refused_total",
                          "Client connections closed at accept: over the connection limit.")),
        registry(r) {}
  metrics::Gauge& connections;
  metrics::Counter& tlsHandshakes;
  metrics::Counter& tlsErrors;
  metrics::Counter& connectErrors;
  metrics::Counter& upstreamTimeouts;
  metrics::Counter& upstreamResets;
  metrics::Counter& retries;
  metrics::Counter& pooledReuse;
  metrics::Counter& refused;
  metrics::Registry& registry;
};

// The per-Ingress series, with ingress-nginx's meanings (nginx_ingress_controller_requests,
// _request_duration_seconds, _response_duration_seconds, _request_size, _response_size):
// labels namespace, ingress, service ("" for requests no Ingress answered) and status.
struct BackendSeries {
  metrics::Histogram* duration = nullptr;  // client request header → end of the response
  metrics::Histogram* upstream = nullptr;  // upstream request sent → its response header
  metrics::Histogram* requestSize = nullptr;
  metrics::Histogram* responseSize = nullptr;
};

// One per worker: registering a series takes the registry's lock, so each worker looks its
// series up once and then only increments. A request whose Backend belongs to the newest route
// table finds its series by the Backend's address (resolved once per table version and status);
// others (a request that started before a swap, local answers) by name.
class SeriesCache {
 public:
  explicit SeriesCache(metrics::Registry& r) : registry_(r) {}

  // The route table requests are matched in from now on. Its Backends stay alive while it is
  // held here, so their addresses cannot be reused by another Backend while cached.
  void useTable(const std::shared_ptr<const RouteTable>& t) {
    if (t != table_) {
      table_ = t;
      byBackend_.clear();
    }
  }

  void record(const RouteTable* table, const Backend* b, unsigned status, double seconds,
              double upstreamSeconds, std::uint64_t requestBytes, std::uint64_t responseBytes) {
    if (b == nullptr || table == nullptr || table != table_.get()) {
      observe(lookup(b), seconds, upstreamSeconds, requestBytes, responseBytes);
      counter(b, status).inc();
      return;
    }
    Resolved& r = byBackend_[b];
    if (r.series == nullptr) {
      r.series = &lookup(b);
    }
    observe(*r.series, seconds, upstreamSeconds, requestBytes, responseBytes);
    for (const auto& [st, c] : r.counters) {
      if (st == status) {
        c->inc();
        return;
      }
    }
    metrics::Counter& c = counter(b, status);
    r.counters.emplace_back(status, &c);
    c.inc();
  }

 private:
  struct Resolved {
    BackendSeries* series = nullptr;
    std::vector<std::pair<unsigned, metrics::Counter*>> counters;  // by status: a few
  };

  static void observe(const BackendSeries& s, double seconds, double upstreamSeconds,
                      std::uint64_t requestBytes, std::uint64_t responseBytes) {
    s.duration->observe(seconds);
    if (upstreamSeconds >= 0) {
      s.upstream->observe(upstreamSeconds);
    }
    s.requestSize->observe(static_cast<double>(requestBytes));
    s.responseSize->observe(static_cast<double>(responseBytes));
  }

  // The series by name (registered on first use).
  BackendSeries& lookup(const Backend* b) {
    // The key is built in a reused buffer, and labels only for a new series: a request that
    // finds its series allocates nothing here.
    std::string& key = key_;
    key.clear();
    if (b != nullptr) {
      key.append(b->ingress).append(1, '\0').append(b->service);
    }
    auto sit = series_.find(key);
    if (sit == series_.end()) {
      const metrics::Labels labels = baseLabels(b);
      BackendSeries& s = series_[key];
      s.duration = &registry_.histogram(
          "kube_dataplane_ingress_request_duration_seconds",
          "Time from a request's header to the end of its response.", metrics::latencyBuckets(),
          labels);
      s.upstream = &registry_.histogram(
          "kube_dataplane_ingress_upstream_response_duration_seconds",
          "Time from sending a request upstream to the upstream's response header.",
          metrics::latencyBuckets(), labels);
      s.requestSize = &registry_.histogram("kube_dataplane_ingress_request_size_bytes",
                                           "Request body bytes received from clients.",
                                           sizeBuckets(), labels);
      s.responseSize = &registry_.histogram("kube_dataplane_ingress_response_size_bytes",
                                            "Response body bytes sent to clients.",
                                            sizeBuckets(), labels);
      sit = series_.find(key);
    }
    return sit->second;
  }

  // The requests counter by name (registered on first use).
  metrics::Counter& counter(const Backend* b, unsigned status) {
    std::string& key = key_;
    key.clear();
    if (b != nullptr) {
      key.append(b->ingress).append(1, '\0').append(b->service);
    }
    char digits[8];
    const auto end = std::to_chars(digits, digits + sizeof digits, status).ptr;
    key.append(1, '\0').append(digits, end);
    auto cit = requests_.find(key);
    if (cit == requests_.end()) {
      metrics::Labels labels = baseLabels(b);
      labels.emplace_back("status", std::to_string(status));
      cit = requests_.emplace(key, &registry_.counter(
                                       "kube_dataplane_ingress_requests_total",
                                       "Requests answered, by Ingress, Service and status.",
                                       labels))
                .first;
    }
    return *cit->second;
  }

  static metrics::Labels baseLabels(const Backend* b) {
    if (b == nullptr) {
      return {{"namespace", ""}, {"ingress", ""}, {"service", ""}};
    }
    const auto slash = b->ingress.find('/');
    return {{"namespace", b->namespace_},
            {"ingress", slash == std::string::npos ? b->ingress : b->ingress.substr(slash + 1)},
            {"service", b->service}};
  }
  static std::vector<double> sizeBuckets() { return metrics::exponentialBuckets(64, 4, 10); }

  metrics::Registry& registry_;
  std::string key_;
  std::unordered_map<std::string, BackendSeries> series_;
  std::unordered_map<std::string, metrics::Counter*> requests_;
  std::shared_ptr<const RouteTable> table_;
  std::unordered_map<const Backend*, Resolved> byBackend_;
};

}  // namespace

namespace {

struct Worker {
  Worker(Server::Impl& i, unsigned n, metrics::Registry& r) : impl(i), index(n), series(r) {}
  ~Worker() { pool.clear(); }  // before the io_context the pooled sockets belong to

  Server::Impl& impl;
  unsigned index;
  DeadlineList deadlines;  // outlives every socket below (the pool's, and the io_context's)
  SeriesCache series;
  std::unordered_map<std::string, std::vector<UpstreamPtr>> pool;  // by endpoint "ip:port"
  // One thread runs it and every socket and timer is used only on that thread (stop() posts;
  // sockets are destroyed after the thread is joined): no locking in the reactor's I/O.
  asio::io_context ioc{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  std::optional<Acceptor> http;
  std::optional<Acceptor> https;
  std::thread thread;
};

// Lets the worker's other ready handlers run first. A read that starts right after its request or
// response went out would find nothing (Asio's read tries recv before waiting: one EAGAIN
// syscall per read); when other connections have work queued, the answer has usually come by
// the time they are done, and the read takes it at once. With nothing else queued it costs a
// post and no syscall.
auto yieldBeforeRead(Worker& w) {
  return asio::post(w.ioc.get_executor(), asio::use_awaitable_t<Executor>{});
}

// The worker's deadline clock: runs until the io_context stops.
Task<> tickDeadlines(Worker& w) {
  Timer timer(w.ioc);
  for (;;) {
    timer.expires_after(kTick);
    auto [ec] = co_await timer.async_wait(kUseTuple);
    if (ec) {
      co_return;
    }
    w.deadlines.tick();
  }
}

struct AccessLogLine {
  const ConnInfo* conn = nullptr;
  std::string_view method, target, host;
  unsigned version = 11;
  unsigned status = 0;
  std::uint64_t bytesOut = 0;
  std::uint64_t bytesIn = 0;
  double seconds = 0;
  double upstreamSeconds = -1;  // -1: no upstream response
  const Backend* backend = nullptr;
  std::string_view upstream;  // the endpoint's name, owned by the Backend
};

}  // namespace

struct Server::Impl {
  Impl(const IngressOptions& o, tls::CertStore& c)
      : options(o), certs(c), metrics(metrics::defaultRegistry()) {}

  Task<> acceptLoop(Worker& w, Acceptor& acceptor, bool tls);
  Task<> plainSession(Worker& w, Socket socket, ConnInfo info);
  Task<> tlsSession(Worker& w, Socket socket, ConnInfo info);
  template <class Stream>
  Task<> serve(Worker& w, Stream& stream, const ConnInfo& info);
  template <class Stream>
  Task<bool> handle(Worker& w, Stream& client, beast::flat_buffer& cbuf,
                               RequestParser& parser, const ConnInfo& info,
                               ConnScratch& scratch);
  template <class Stream>
  Task<bool> respondLocal(Stream& client, http::status status, unsigned version,
                                     bool keepAlive, std::string body,
                                     std::string_view location = {});
  UpstreamPtr takePooled(Worker& w, const std::string& key);
  Task<UpstreamPtr> connectUpstream(Worker& w, const HostPort& ep, beast::error_code& ec,
                                    Clock::duration connectTimeout);
  void checkin(Worker& w, const std::string& key, UpstreamPtr up);
  void bind(std::optional<Acceptor>& acceptor, asio::io_context& ioc, const HostPort& at,
            std::uint16_t& port, const char* flag);
  void accessLog(const AccessLogLine& l);

  IngressOptions options;
  tls::CertStore& certs;
  Metrics metrics;
  std::shared_ptr<spdlog::logger> log = logger("ingress");
  std::shared_ptr<spdlog::logger> access;  // null: access log off
  ssl::context sslCtx{ssl::context::tls_server};
  std::atomic<std::shared_ptr<const RouteTable>> table;
  std::atomic<std::size_t> connections{0};
  std::uint16_t httpPort = 0;
  std::uint16_t httpsPort = 0;
  std::vector<std::unique_ptr<Worker>> workers;
  bool started = false;
};

namespace {

void logException(spdlog::logger& log, std::exception_ptr e) {
  if (!e) {
    return;
  }
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    KDP_LOG_RATE_LIMITED(&log, spdlog::level::err, 5, "ingress task failed err={}", x.what());
  } catch (...) {
    KDP_LOG_RATE_LIMITED(&log, spdlog::level::err, 5, "ingress task failed err=unknown");
  }
}

struct ConnectionGuard {
  explicit ConnectionGuard(Server::Impl& i) : impl(i) {}
  ~ConnectionGuard();
  Server::Impl& impl;
};

}  // namespace

ConnectionGuard::~ConnectionGuard() {
  impl.connections.fetch_sub(1, std::memory_order_relaxed);
  impl.metrics.connections.dec();
}

void Server::Impl::accessLog(const AccessLogLine& l) {
  if (!access) {
    return;
  }
  const std::string upstreamName =
      l.backend ? l.backend->namespace_ + "-" + l.backend->service + "-" + l.backend->port : "-";
  if (!options.accessLog.json) {
    access->info("{} - [{}] \"{} {} HTTP/{}.{}\" {} {} {:.3f} \"{}\" ingress={} upstream={} addr={}",
                 l.conn->clientIp, httpDate(), l.method, l.target, l.version / 10, l.version % 10,
                 l.status, l.bytesOut, l.seconds, l.host, l.backend ? l.backend->ingress : "-",
                 upstreamName, l.upstream.empty() ? "-" : l.upstream);
    return;
  }
  // One JSON object per line; request fields are escaped (they are the client's bytes).
  spdlog::memory_buf_t b;
  auto field = [&b](std::string_view name, std::string_view value) {
    b.append(name);
    b.push_back('"');
    appendJsonEscaped(b, value);
    b.push_back('"');
  };
  field("{\"time\":", httpDate());
  field(",\"remote_addr\":", l.conn->clientIp);
  field(",\"method\":", l.method);
  field(",\"target\":", l.target);
  fmt::format_to(std::back_inserter(b), ",\"protocol\":\"HTTP/{}.{}\",\"status\":{}", l.version / 10,
                 l.version % 10, l.status);
  fmt::format_to(std::back_inserter(b), ",\"bytes_sent\":{},\"bytes_received\":{},\"duration\":{:.6f}",
                 l.bytesOut, l.bytesIn, l.seconds);
  field(",\"host\":", l.host);
  field(",\"ingress\":", l.backend ? std::string_view(l.backend->ingress) : "");
  field(",\"upstream\":", l.backend ? std::string_view(upstreamName) : "");
  field(",\"upstream_addr\":", l.upstream);
  if (l.upstreamSeconds >= 0) {
    fmt::format_to(std::back_inserter(b), ",\"upstream_duration\":{:.6f}", l.upstreamSeconds);
  }
  b.push_back('}');
  access->info(std::string_view(b.data(), b.size()));
}

template <class Stream>
Task<bool> Server::Impl::respondLocal(Stream& client, http::status status,
                                                 unsigned version, bool keepAlive,
                                                 std::string body, std::string_view location) {
  http::response<http::string_body> res{status, version < 10 ? 11 : version};
  res.set(http::field::server, "kube-dataplane");
  res.set(http::field::date, httpDate());
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  if (!location.empty()) {
    res.set(http::field::location, location);
  }
  res.keep_alive(keepAlive);
  res.body() = std::move(body);
  res.prepare_payload();
  beast::get_lowest_layer(client).expires_after(kBodyTimeout);
  auto [ec, n] = co_await http::async_write(client, res, kUseTuple);
  co_return !ec && keepAlive;
}

// An idle pooled connection to the endpoint `key`, or null. Not a coroutine: a reused
// connection costs no coroutine frame or resumption.
UpstreamPtr Server::Impl::takePooled(Worker& w, const std::string& key) {
  auto it = w.pool.find(key);
  if (it == w.pool.end()) {
    return nullptr;
  }
  auto& idle = it->second;
  const std::uint64_t now = w.deadlines.now();
  while (!idle.empty()) {
    UpstreamPtr up = std::move(idle.back());
    idle.pop_back();
    const std::uint64_t idleTicks = now - up->idleSince;
    if (idleTicks < kPoolIdleTicks && (idleTicks == 0 || stillUsable(up->stream.socket()))) {
      metrics.pooledReuse.inc();
      return up;
    }
  }
  return nullptr;
}

Task<UpstreamPtr> Server::Impl::connectUpstream(Worker& w, const HostPort& ep,
                                                beast::error_code& ec,
                                                Clock::duration connectTimeout) {
  auto up = std::make_unique<Upstream>(w.ioc, w.deadlines);
  const tcp::endpoint endpoint(asio::ip::make_address(ep.ip.str(), ec), ep.port);
  if (ec) {
    co_return nullptr;
  }
  up->stream.expires_after(connectTimeout);
  auto [cec] = co_await up->stream.async_connect(endpoint, kUseTuple);
  if (cec) {
    ec = cec;
    co_return nullptr;
  }
  beast::error_code ignored;
  up->stream.socket().set_option(tcp::no_delay(true), ignored);
  co_return up;
}

void Server::Impl::checkin(Worker& w, const std::string& key, UpstreamPtr up) {
  auto& idle = w.pool[key];
  if (idle.size() >= kPoolMaxIdle) {
    return;
  }
  up->stream.expires_never();
  up->idleSince = w.deadlines.now();
  idle.push_back(std::move(up));
}

template <class Stream>
Task<bool> Server::Impl::handle(Worker& w, Stream& client, beast::flat_buffer& cbuf,
                                           RequestParser& parser, const ConnInfo& info,
                                           ConnScratch& scratch) {
  const auto started = Clock::now();
  Request& req = parser.get();
  const unsigned version = req.version();
  const bool clientKeepAlive = req.keep_alive();
  const bool head = req.method() == http::verb::head;
  const std::string method(req.method_string());
  std::string target(req.target());
  std::string hostHeader(req[http::field::host]);
  // Absolute-form targets (RFC 9112 3.2.2): the authority is the host, the rest the target.
  if (target.starts_with("http://") || target.starts_with("https://")) {
    const auto authStart = target.find("//") + 2;
    const auto pathStart = target.find('/', authStart);
    hostHeader = target.substr(authStart, pathStart == std::string::npos ? std::string::npos
                                                                         : pathStart - authStart);
    target = pathStart == std::string::npos ? "/" : target.substr(pathStart);
    req.target(target);
    req.set(http::field::host, hostHeader);
  }
  AccessLogLine line;
  line.conn = &info;
  line.method = method;
  line.target = target;
  line.host = hostHeader;
  line.version = version;
  const RouteTable* matchedIn = nullptr;  // the table the request was routed by, once it was
  auto finish = [&](unsigned status, bool ok) {
    line.status = status;
    line.seconds = std::chrono::duration<double>(Clock::now() - started).count();
    w.series.record(matchedIn, line.backend, status, line.seconds, line.upstreamSeconds, line.bytesIn,
                    line.bytesOut);
    accessLog(line);
    return ok;
  };
  // Without the rest of the request body read, the connection cannot carry another request.
  const bool canKeep = clientKeepAlive && parser.is_done();
  auto local = [&](http::status st, std::string body,
                   std::string location = {}) -> Task<bool> {
    const bool ok = co_await respondLocal(client, st, version, canKeep, std::move(body), location);
    co_return finish(static_cast<unsigned>(st), ok);
  };

  if (hostHeader.empty() && version >= 11) {
    co_return co_await local(http::status::bad_request, "missing Host header\n");
  }
  const std::string host = normalizeHost(hostHeader);
  const std::string_view path = std::string_view(target).substr(0, target.find('?'));
  const std::shared_ptr<const RouteTable> routes = table.load();
  w.series.useTable(routes);
  matchedIn = routes.get();
  if (!routes) {
    co_return co_await local(http::status::service_unavailable, "not ready\n");
  }
  const Match m = routes->match(host, path);
  if (!info.tls && m.sslRedirect && options.https) {
    std::string location = "https://" + host;
    if (httpsPort != 443) {
      location += ":" + std::to_string(httpsPort);
    }
    location += target;
    co_return co_await local(http::status::permanent_redirect, "", location);
  }
  if (m.backend == nullptr) {
    co_return co_await local(http::status::not_found, "404 page not found\n");
  }
  const Backend& be = *m.backend;
  line.backend = &be;
  if (be.endpoints.empty()) {
    co_return co_await local(http::status::service_unavailable,
                             "503 no endpoints for service\n");
  }

  // The request as the upstream gets it.
  const bool expectContinue = beast::iequals(req[http::field::expect], "100-continue");
  req.erase(http::field::expect);
  const std::string upgrade(req[http::field::upgrade]);
  const bool wantsUpgrade = !upgrade.empty() && connectionHas(req, "upgrade");
  removeHopByHop(req);
  if (wantsUpgrade) {
    req.set(http::field::upgrade, upgrade);
    req.set(http::field::connection, "Upgrade");
  }
  req.version(11);
  req.set("X-Forwarded-For", info.clientIp);
  req.set("X-Real-IP", info.clientIp);
  req.set("X-Forwarded-Proto", info.tls ? "https" : "http");
  req.set("X-Forwarded-Host", hostHeader);
  req.set("X-Forwarded-Port", std::to_string(info.localPort));
  const bool idempotent = isIdempotent(req.method());
  const bool hasBody = !parser.is_done();
  // A request without a body (most) goes upstream as one contiguous buffer in one write.
  scratch.head.clear();
  if (!hasBody) {
    detail::appendHeader(scratch.head, req.base());
  }

  // Counts the request against its endpoint (least_request) until the response is done.
  struct InFlight {
    InFlight(const Backend& b, std::size_t i) : backend(b), index(i) {}
    ~InFlight() { backend.finished(index); }
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;
    const Backend& backend;
    std::size_t index;
  };
  std::optional<InFlight> inflight;
  UpstreamPtr up;
  std::optional<ResponseParser> rp;
  http::status failure = http::status::bad_gateway;
  bool bodySent = false;
  const HostPort* chosen = nullptr;
  const std::string* chosenName = nullptr;
  const std::size_t n = be.endpoints.size();
  const std::size_t first = be.pick();
  const Clock::duration connectTimeout =
      be.connectTimeout.count() != 0 ? Clock::duration(be.connectTimeout)
                                    : Clock::duration(options.upstreamConnectTimeout);
  const Clock::duration readTimeout =
      be.readTimeout.count() != 0 ? Clock::duration(be.readTimeout)
                                 : Clock::duration(options.upstreamReadTimeout);
  for (unsigned attempt = 0; attempt < kMaxAttempts; ++attempt) {
    if (attempt > 0) {
      metrics.retries.inc();
    }
    const std::size_t index = (first + attempt) % n;
    chosen = &be.endpoints[index];
    chosenName = &be.endpointNames[index];
    line.upstream = *chosenName;
    be.started(index);
    inflight.emplace(be, index);
    beast::error_code ec;
    up = takePooled(w, *chosenName);
    const bool reused = up != nullptr;
    if (!reused) {
      up = co_await connectUpstream(w, *chosen, ec, connectTimeout);
    }
    if (!up) {
      // Nothing was sent: any request may go to the next endpoint.
      metrics.connectErrors.inc();
      KDP_LOG_RATE_LIMITED(log, spdlog::level::warn, 5,
                           "upstream connect failed endpoint={} service={}/{} err={}",
                           *chosenName, be.namespace_, be.service, ec.message());
      failure = http::status::bad_gateway;
      continue;
    }
    std::optional<Serializer<true>> sr;
    beast::error_code wec;
    up->stream.expires_after(readTimeout);
    if (hasBody) {
      sr.emplace(req);
      auto [hec, hn] = co_await http::async_write_header(up->stream, *sr, kUseTuple);
      wec = hec;
    } else {
      const std::array out{asio::const_buffer(asio::buffer(scratch.head))};
      const std::size_t done = sendNow(up->stream, out, wec);
      if (!wec && done != scratch.head.size()) {
        wec = co_await writeRest(up->stream, out, done, readTimeout);
      }
    }
    if (wec) {
      up.reset();
      metrics.upstreamResets.inc();
      failure = http::status::bad_gateway;
      continue;  // nothing of the body was read yet: safe to resend
    }
    if (hasBody) {
      if (expectContinue && !bodySent) {
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        beast::get_lowest_layer(client).expires_after(kBodyTimeout);
        auto [cec, cn] = co_await asio::async_write(client, asio::buffer(kContinue), kUseTuple);
        if (cec) {
          co_return finish(499, false);
        }
      }
      bodySent = true;
      RelayResult r = co_await relayBody(client, cbuf, parser, up->stream, *sr, scratch.chunk());
      line.bytesIn = r.bytes;
      if (r.readEc) {
        // The client's body broke off or is over the limit.
        up.reset();
        if (r.readEc == http::error::body_limit) {
          co_await respondLocal(client, http::status::payload_too_large, version, false,
                                "413 request body too large\n");
          co_return finish(413, false);
        }
        co_return finish(499, false);
      }
      if (r.writeEc) {
        up.reset();
        metrics.upstreamResets.inc();
        failure = http::status::bad_gateway;
        break;
      }
    }
    const auto sent = Clock::now();
    emplaceParser(rp, scratch.fields);
    rp->header_limit(kUpstreamHeaderLimit);
    rp->body_limit(boost::none);
    if (head) {
      rp->skip(true);
    }
    up->stream.expires_after(readTimeout);
    if (up->buffer.size() == 0) {
      co_await yieldBeforeRead(w);
    }
    auto [rec, rn] = co_await http::async_read_header(up->stream, up->buffer, *rp, kUseTuple);
    rec = up->stream.result(rec);
    // Interim responses (100 Continue, 103 Early Hints) are dropped; the final one follows.
    for (int interim = 0; !rec && interim < 8 && rp->get().result_int() / 100 == 1 &&
                          rp->get().result() != http::status::switching_protocols;
         ++interim) {
      emplaceParser(rp, scratch.fields);
      rp->header_limit(kUpstreamHeaderLimit);
      rp->body_limit(boost::none);
      if (head) {
        rp->skip(true);
      }
      auto [rec2, rn2] = co_await http::async_read_header(up->stream, up->buffer, *rp, kUseTuple);
      rec = up->stream.result(rec2);
    }
    if (!rec) {
      line.upstreamSeconds = std::chrono::duration<double>(Clock::now() - sent).count();
    }
    if (rec) {
      up.reset();
      rp.reset();
      if (rec == beast::error::timeout) {
        metrics.upstreamTimeouts.inc();
        failure = http::status::gateway_timeout;
        break;
      }
      metrics.upstreamResets.inc();
      failure = http::status::bad_gateway;
      if (!bodySent && (idempotent || reused)) {
        continue;  // a stale pooled connection, or an endpoint that went away
      }
      break;
    }
    break;
  }
  if (!up || !rp) {
    KDP_LOG_RATE_LIMITED(log, spdlog::level::warn, 5,
                         "upstream failed status={} service={}/{} endpoint={}",
                         static_cast<unsigned>(failure), be.namespace_, be.service,
                         line.upstream);
    const bool ok = co_await respondLocal(client, failure, version, canKeep && !bodySent,
                                          std::string(obsolete_reason(failure)) + "\n");
    co_return finish(static_cast<unsigned>(failure), ok);
  }

  // The response as the client gets it.
  Response& res = rp->get();
  const unsigned status = res.result_int();
  const bool upstreamKeepAlive = rp->keep_alive();
  if (status == 101) {
    // Switching protocols (WebSocket and other Upgrades): pass the 101 on, then relay bytes
    // both ways until either side closes. The connection is the tunnel's from here on.
    const std::string resUpgrade(res[http::field::upgrade]);
    if (!wantsUpgrade || resUpgrade.empty()) {
      co_await respondLocal(client, http::status::bad_gateway, version, false,
                            "502 unexpected 101 from upstream\n");
      co_return finish(502, false);
    }
    removeHopByHop(res);
    res.set(http::field::upgrade, resUpgrade);
    res.set(http::field::connection, "Upgrade");
    res.version(11);
    if (res.find(http::field::server) == res.end()) {
      res.set(http::field::server, "kube-dataplane");
    }
    Serializer<false> us{res};
    beast::get_lowest_layer(client).expires_after(kBodyTimeout);
    auto [uec, un] = co_await http::async_write_header(client, us, kUseTuple);
    if (uec) {
      co_return finish(101, false);
    }
    using namespace asio::experimental::awaitable_operators;
    Upstream& u = *up;
    auto stop = [&client, &u] {
      beast::error_code ignored;
      beast::get_lowest_layer(client).cancel(ignored);
      u.stream.cancel(ignored);
    };
    auto [down, upBytes] = co_await (pump(u.stream, client, u.buffer, stop) &&
                                     pump(client, u.stream, cbuf, stop));
    line.bytesOut = down;
    (void)upBytes;
    co_return finish(101, false);
  }
  removeHopByHop(res);
  res.version(version);
  bool keep = clientKeepAlive;
  const bool noBody = head || status / 100 == 1 || status == 204 || status == 304;
  if (!noBody && !rp->is_done()) {
    if (version < 11) {
      // An HTTP/1.0 client reads the body to the end of the connection.
      if (res.chunked()) {
        res.chunked(false);
      }
      keep = keep && rp->content_length().has_value();
    } else if (!rp->content_length() && !res.chunked()) {
      res.chunked(true);  // the upstream ends its body by closing: chunk it for the client
    }
  }
  if (res.find(http::field::server) == res.end()) {
    res.set(http::field::server, "kube-dataplane");
  }
  if (res.find(http::field::date) == res.end()) {
    res.set(http::field::date, httpDate());
  }
  res.keep_alive(keep);
  // A response with no body, or whose whole body came with its header (most small ones): one
  // contiguous header and the body straight from the upstream's buffer, in one write.
  const auto length = rp->content_length();
  if (noBody ? rp->is_done() : !res.chunked() && length && up->buffer.size() >= *length) {
    const std::size_t bodyBytes = noBody ? 0 : static_cast<std::size_t>(*length);
    scratch.head.clear();
    detail::appendHeader(scratch.head, res.base());
    const std::array<asio::const_buffer, 2> out{asio::buffer(scratch.head),
                                                asio::buffer(up->buffer.data(), bodyBytes)};
    beast::error_code fec;
    if constexpr (std::is_same_v<Stream, TcpStream>) {
      const std::size_t done = sendNow(client, out, fec);
      if (!fec && done != scratch.head.size() + bodyBytes) {
        fec = co_await writeRest(client, out, done, kBodyTimeout);
      }
    } else {
      beast::get_lowest_layer(client).expires_after(kBodyTimeout);
      auto [tec, tn] = co_await asio::async_write(client, out, kUseTuple);
      fec = tec;
    }
    up->buffer.consume(bodyBytes);
    line.bytesOut = bodyBytes;
    if (!fec && upstreamKeepAlive && up->buffer.size() == 0) {
      checkin(w, *chosenName, std::move(up));
    }
    co_return finish(status, !fec && keep);
  }
  Serializer<false> rs{res};
  // When body bytes came with the header (a small response), the header goes out with the
  // first chunk in one write; otherwise at once, so that a streamed response is not held.
  const bool bodyBuffered = !noBody && (rp->is_done() || up->buffer.size() != 0);
  if (!bodyBuffered) {
    beast::get_lowest_layer(client).expires_after(kBodyTimeout);
    auto [hec, hn] = co_await http::async_write_header(client, rs, kUseTuple);
    if (hec) {
      co_return finish(status, false);
    }
  }
  bool ok = true;
  if (!noBody && !rp->is_done()) {
    RelayResult r = co_await relayBody(up->stream, up->buffer, *rp, client, rs, scratch.chunk());
    line.bytesOut = r.bytes;
    if (r.readEc) {
      // The upstream broke off mid-body (or timed out): the client cannot get a whole
      // response; closing tells it so.
      metrics.upstreamResets.inc();
      ok = false;
    }
    if (r.writeEc) {
      ok = false;
    }
  } else if (!noBody) {
    // A complete empty body (Content-Length: 0, or chunked with no data): finish framing.
    res.body().data = nullptr;
    res.body().size = 0;
    res.body().more = false;
    beast::get_lowest_layer(client).expires_after(kBodyTimeout);
    auto [bec, bn] = co_await http::async_write(client, rs, kUseTuple);
    ok = !bec;
  }
  if (ok && rp->is_done() && upstreamKeepAlive && up->buffer.size() == 0) {
    checkin(w, *chosenName, std::move(up));
  }
  co_return finish(status, ok && keep);
}

template <class Stream>
Task<> Server::Impl::serve(Worker& w, Stream& stream, const ConnInfo& info) {
  beast::flat_buffer buffer;
  ConnScratch scratch;
  for (std::uint64_t n = 0;; ++n) {
    // The last request's parsers are gone: its fields' memory is free for this one.
    scratch.fields.reset();
    RequestParser parser(std::piecewise_construct, std::make_tuple(),
                         std::make_tuple(FieldAllocator<char>(scratch.fields)));
    parser.header_limit(kHeaderLimit);
    if (options.maxBodySize != 0) {
      parser.body_limit(options.maxBodySize);
    } else {
      parser.body_limit(boost::none);
    }
    // The deadline covers the whole header: a client trickling bytes (slowloris) is cut off.
    beast::get_lowest_layer(stream).expires_after(n == 0 ? options.clientHeaderTimeout
                                                            : options.clientIdleTimeout);
    auto [readEc, bytes] = co_await http::async_read_header(stream, buffer, parser, kUseTuple);
    const beast::error_code ec = beast::get_lowest_layer(stream).result(readEc);
    if (n > 0 && ec == beast::error::timeout && buffer.size() == 0) {
      co_return;  // an idle keep-alive connection
    }
    if (ec) {
      if (ec.category() == http::make_error_code(http::error::end_of_stream).category() &&
          ec != http::error::end_of_stream && ec != http::error::partial_message) {
        http::status st = http::status::bad_request;
        if (ec == http::error::header_limit) {
          st = http::status::request_header_fields_too_large;
        } else if (ec == http::error::body_limit) {
          st = http::status::payload_too_large;
        }
        co_await respondLocal(stream, st, 11, false,
                              std::string(obsolete_reason(st)) + "\n");
        w.series.record(nullptr, nullptr, static_cast<unsigned>(st), 0, -1, 0, 0);
      } else if (ec == beast::error::timeout && buffer.size() != 0) {
        co_await respondLocal(stream, http::status::request_timeout, 11, false,
                              "408 request timeout\n");
        w.series.record(nullptr, nullptr, 408, 0, -1, 0, 0);
      }
      co_return;
    }
    // Both Content-Length and Transfer-Encoding (RFC 9112 6.3: a smuggling vector): refuse.
    if (parser.get().find(http::field::content_length) != parser.get().end() &&
        parser.get().find(http::field::transfer_encoding) != parser.get().end()) {
      co_await respondLocal(stream, http::status::bad_request, 11, false,
                            "400 bad request: Content-Length with Transfer-Encoding\n");
      w.series.record(nullptr, nullptr, 400, 0, -1, 0, 0);
      co_return;
    }
    // A Transfer-Encoding whose final coding is not chunked leaves the body's length unknown
    // (RFC 9112 6.3), and more than one Host is ambiguous (RFC 9112 3.2): both 400, close.
    const auto& fields = parser.get();
    const bool badTe = fields.find(http::field::transfer_encoding) != fields.end() &&
                       !parser.chunked();
    if (badTe || fields.count(http::field::host) > 1 ||
        !validHostHeader(fields[http::field::host])) {
      co_await respondLocal(stream, http::status::bad_request, 11, false,
                            badTe ? "400 bad request: Transfer-Encoding\n"
                                  : "400 bad request: Host\n");
      w.series.record(nullptr, nullptr, 400, 0, -1, 0, 0);
      co_return;
    }
    const bool keep = co_await handle(w, stream, buffer, parser, info, scratch);
    if (!keep) {
      co_return;
    }
  }
}

Task<> Server::Impl::plainSession(Worker& w, Socket socket, ConnInfo info) {
  ConnectionGuard guard(*this);
  TcpStream stream(std::move(socket));
  stream.attach(w.deadlines);
  co_await serve(w, stream, info);
  closeWrite(stream);
}

Task<> Server::Impl::tlsSession(Worker& w, Socket socket, ConnInfo info) {
  ConnectionGuard guard(*this);
  TlsStream stream(std::move(socket), sslCtx);
  beast::get_lowest_layer(stream).attach(w.deadlines);
  beast::get_lowest_layer(stream).expires_after(kHandshakeTimeout);
  auto [hec] = co_await stream.async_handshake(ssl::stream_base::server, kUseTuple);
  if (hec) {
    metrics.tlsErrors.inc();
    SPDLOG_LOGGER_DEBUG(log, "tls handshake failed client={} err={}", info.clientIp,
                        hec.message());
    co_return;
  }
  metrics.tlsHandshakes.inc();
  co_await serve(w, stream, info);
  // Send close_notify and do not wait for the client's (as nginx does): the connection is done
  // either way, and waiting costs another read per connection.
  SSL_set_shutdown(stream.native_handle(), SSL_get_shutdown(stream.native_handle()) |
                                               SSL_RECEIVED_SHUTDOWN);
  beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(1));
  auto [sec] = co_await stream.async_shutdown(kUseTuple);
  (void)sec;
}

Task<> Server::Impl::acceptLoop(Worker& w, Acceptor& acceptor, bool tls) {
  Timer backoff(w.ioc);
  for (;;) {
    // The client's address comes with accept and the local port is the listener's: no
    // getpeername/getsockname per connection.
    tcp::endpoint peer;
    auto [ec, socket] = co_await acceptor.async_accept(peer, kUseTuple);
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) {
      co_return;
    }
    if (ec) {
      KDP_LOG_RATE_LIMITED(log, spdlog::level::warn, 1, "ingress accept failed err={}",
                           ec.message());
      backoff.expires_after(std::chrono::milliseconds(50));
      co_await backoff.async_wait(kUseTuple);
      continue;
    }
    if (connections.fetch_add(1, std::memory_order_relaxed) >= options.maxConnections) {
      connections.fetch_sub(1, std::memory_order_relaxed);
      metrics.refused.inc();
      KDP_LOG_RATE_LIMITED(log, spdlog::level::warn, 1,
                           "ingress connection refused reason=too-many-connections max={}",
                           options.maxConnections);
      continue;
    }
    metrics.connections.inc();
    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    auto onDone = [this](std::exception_ptr e) { logException(*log, e); };
    ConnInfo info;
    info.clientIp = peer.address().to_string();
    info.localPort = tls ? httpsPort : httpPort;
    info.tls = tls;
    if (tls) {
      asio::co_spawn(w.ioc, tlsSession(w, std::move(socket), std::move(info)), onDone);
    } else {
      asio::co_spawn(w.ioc, plainSession(w, std::move(socket), std::move(info)), onDone);
    }
  }
}

void Server::Impl::bind(std::optional<Acceptor>& acceptor, asio::io_context& ioc,
                        const HostPort& at, std::uint16_t& port, const char* flag) {
  beast::error_code ec;
  auto fail = [&](const char* what) {
    throw std::runtime_error(std::string(flag) + " " + at.str() + ": " + what + ": " +
                             ec.message());
  };
  const auto ip = asio::ip::make_address(at.ip.str(), ec);
  if (ec) {
    fail("address");
  }
  // Every worker binds the same port (SO_REUSEPORT: the kernel spreads connections); port 0
  // means the first worker's choice.
  const tcp::endpoint endpoint(ip, port != 0 ? port : at.port);
  acceptor.emplace(ioc);
  acceptor->open(endpoint.protocol(), ec);
  if (ec) {
    fail("socket");
  }
  acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  int one = 1;
  if (::setsockopt(acceptor->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
    ec = beast::error_code(errno, boost::system::system_category());
    fail("setsockopt");
  }
  acceptor->bind(endpoint, ec);
  if (ec) {
    fail("bind");
  }
  acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    fail("listen");
  }
  port = acceptor->local_endpoint(ec).port();
}

Server::Server(const IngressOptions& options, tls::CertStore& certs)
    : impl_(std::make_unique<Impl>(options, certs)) {
  tls::configureServerContext(impl_->sslCtx.native_handle(), certs);
  const auto& al = options.accessLog;
  if (al.kind == AccessLog::Kind::Stdout) {
    impl_->access = std::make_shared<spdlog::logger>(
        "ingress-access", std::make_shared<spdlog::sinks::stdout_sink_mt>());
  } else if (al.kind == AccessLog::Kind::File) {
    try {
      impl_->access = std::make_shared<spdlog::logger>(
          "ingress-access", std::make_shared<spdlog::sinks::basic_file_sink_mt>(al.path));
    } catch (const std::exception& e) {
      throw std::runtime_error("--access-log " + al.path + ": " + e.what());
    }
  }
  if (impl_->access) {
    impl_->access->set_pattern("%v");
    impl_->access->set_level(spdlog::level::info);
    impl_->access->flush_on(spdlog::level::info);
  }
}

Server::~Server() {
  stop();
}

void Server::setTable(std::shared_ptr<const RouteTable> table) {
  impl_->table.store(std::move(table));
}

std::uint16_t Server::httpPort() const {
  return impl_->httpPort;
}
std::uint16_t Server::httpsPort() const {
  return impl_->httpsPort;
}

void Server::start() {
  Impl& i = *impl_;
  if (i.started) {
    throw std::logic_error("ingress Server::start called twice");
  }
  i.started = true;
  unsigned threads = i.options.threads;
  if (threads == 0) {
    threads = std::max(1U, std::thread::hardware_concurrency());
  }
  for (unsigned n = 0; n < threads; ++n) {
    auto w = std::make_unique<Worker>(i, n, i.metrics.registry);
    if (i.options.http) {
      i.bind(w->http, w->ioc, *i.options.http, i.httpPort, "--http");
    }
    if (i.options.https) {
      i.bind(w->https, w->ioc, *i.options.https, i.httpsPort, "--https");
    }
    i.workers.push_back(std::move(w));
  }
  for (auto& wp : i.workers) {
    Worker& w = *wp;
    auto onDone = [&i](std::exception_ptr e) { logException(*i.log, e); };
    asio::co_spawn(w.ioc, tickDeadlines(w), onDone);
    if (w.http) {
      asio::co_spawn(w.ioc, i.acceptLoop(w, *w.http, false), onDone);
    }
    if (w.https) {
      asio::co_spawn(w.ioc, i.acceptLoop(w, *w.https, true), onDone);
    }
    w.thread = std::thread([&w, &i] {
      const std::string name = "kdp/ingress-" + std::to_string(w.index);
      ::pthread_setname_np(::pthread_self(), name.c_str());
      // A handler that throws must not take the process down: log it and go on serving.
      for (;;) {
        try {
          w.ioc.run();
          return;
        } catch (const std::exception& e) {
          KDP_LOG_RATE_LIMITED(i.log, spdlog::level::err, 5, "ingress handler failed err={}",
                               e.what());
        }
      }
    });
  }
  SPDLOG_LOGGER_INFO(i.log, "ingress listening http={} https={} threads={}",
                     i.options.http ? HostPort{i.options.http->ip, i.httpPort}.str() : "-",
                     i.options.https ? HostPort{i.options.https->ip, i.httpsPort}.str() : "-",
                     threads);
}

void Server::stop() {
  Impl& i = *impl_;
  for (auto& wp : i.workers) {
    Worker& w = *wp;
    asio::post(w.ioc, [&w] {
      beast::error_code ignored;
      if (w.http) {
        w.http->close(ignored);
      }
      if (w.https) {
        w.https->close(ignored);
      }
      w.pool.clear();
      w.ioc.stop();
    });
  }
  for (auto& wp : i.workers) {
    if (wp->thread.joinable()) {
      wp->thread.join();
    }
  }
  // Destroying each io_context destroys the sessions still suspended in it.
  i.workers.clear();
}

}  // namespace kdp::ingress
