#include "k8s/api_source.h"

// GCC 12 flags Asio's coroutine frame allocator (aligned_alloc, freed by the frame's own
// operator delete) as mismatched once the coroutine is inlined: a false positive.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <pthread.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>
#include <variant>

#include "common/logging.h"
#include "k8s/decode.h"
#include "k8s/detail/api_http.h"
#include "k8s/detail/backoff.h"
#include "k8s/detail/json_decode.h"
#include "k8s/detail/json_stream.h"
#include "k8s/detail/kind_state.h"
#include "k8s/store.h"

namespace kdp::k8s {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using detail::ApiError;

namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr int kPageSize = 500;
constexpr auto kListIdle = 60s;
constexpr auto kBackoffInitial = 500ms;
constexpr auto kBackoffCap = 30s;
/// WATCH requests ask the server to end the stream after 5..10 minutes (as client-go), so that
/// load spreads over apiservers; the stream then resumes from the last resourceVersion.
constexpr int kWatchMinSeconds = 300;
/// A stream that ends this soon without an event counts as a failure (no hot loop on a server
/// that closes streams at once).
constexpr auto kShortWatch = 1s;

/// Where a kind is listed and watched.
struct KindSpec {
  Kind kind = Kind::Service;
  std::string path;           // "/api/v1/services"
  std::string fieldSelector;  // "" or "type=kubernetes.io/tls"
};

std::string percentEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || u == '-' ||
        u == '.' || u == '_' || u == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

std::optional<KindSpec> fixedSpec(Kind kind) {
  switch (kind) {
    case Kind::Namespace: return KindSpec{kind, "/api/v1/namespaces", ""};
    case Kind::Service: return KindSpec{kind, "/api/v1/services", ""};
    case Kind::Secret:
      return KindSpec{kind, "/api/v1/secrets", "type=" + std::string(kTlsSecretType)};
    case Kind::Pod: return KindSpec{kind, "/api/v1/pods", ""};
    case Kind::Node: return KindSpec{kind, "/api/v1/nodes", ""};
    case Kind::Ingress: return KindSpec{kind, "/apis/networking.k8s.io/v1/ingresses", ""};
    case Kind::IngressClass:
      return KindSpec{kind, "/apis/networking.k8s.io/v1/ingressclasses", ""};
    case Kind::EndpointSlice: return std::nullopt;  // discovered
  }
  return std::nullopt;
}

struct Listed {
  std::vector<Object> objects;
  std::vector<DecodeError> errors;
  std::string resourceVersion;
};

enum class WatchEnd { Closed, Expired, Failed };

class ApiSourceImpl final : public ApiSource {
 public:
  ApiSourceImpl(ApiConfig config, std::vector<Kind> kinds) : config_(std::move(config)) {
    for (Kind k : kinds) {
      if (std::find(kinds_.begin(), kinds_.end(), k) == kinds_.end()) {
        kinds_.push_back(k);
      }
    }
  }
  ~ApiSourceImpl() override { stop(); }

  void startAsync(Store& store) override {
    http_ = std::make_unique<detail::ApiHttp>(config_);  // throws for a bad PEM
    store_ = &store;
    runtime_ = std::make_unique<Runtime>();
    runtime_->firstSync.expires_at(asio::steady_timer::time_point::max());
    pendingFirstLists_ = kinds_.size();
    if (kinds_.empty()) {
      store.markSynced();
      setState(SyncState::Synced, {});
    }
    for (Kind kind : kinds_) {
      asio::co_spawn(runtime_->io, reflect(kind), asio::detached);
    }
    thread_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "kdp/api");
      runtime_->io.run();
    });
  }

  SyncState waitSynced(std::chrono::milliseconds timeout) override {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return state_ != SyncState::Pending; });
    return state_;
  }

  std::string error() const override {
    std::lock_guard lock(mu_);
    return error_;
  }

  void stop() override {
    if (!runtime_) {
      return;
    }
    runtime_->io.stop();
    if (thread_.joinable()) {
      thread_.join();
    }
    // Destroys the reflectors' coroutine frames (and their connections) before what they use.
    runtime_.reset();
  }

  SourceStats stats() const override {
    SourceStats s;
    s.decodeErrors = decodeErrors_.load();
    s.skippedObjects = skipped_.load();
    s.reloads = reloads_.load();
    s.watchEvents = watchEvents_.load();
    s.relists = relists_.load();
    s.reconnects = reconnects_.load();
    return s;
  }

 private:
  struct Runtime {
    asio::io_context io{1};
    asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
    asio::steady_timer firstSync{io};  // cancelled when every kind has listed once
  };

  void setState(SyncState state, std::string error) {
    {
      std::lock_guard lock(mu_);
      if (state_ != SyncState::Pending) {
        return;
      }
      state_ = state;
      error_ = std::move(error);
    }
    cv_.notify_all();
  }

  double random() { return std::uniform_real_distribution<double>(0, 1)(rng_); }

  asio::awaitable<void> sleep(std::chrono::milliseconds d) {
    asio::steady_timer timer(co_await asio::this_coro::executor, d);
    co_await timer.async_wait(kUseTuple);
  }

  void apply(Batch&& batch) {
    if (!batch.empty() && store_->apply(std::move(batch)) > 0) {
      ++reloads_;
    }
  }

  void countDecode(const DecodeResult& r) {
    for (const DecodeError& e : r.errors) {
      ++decodeErrors_;
      SPDLOG_LOGGER_WARN(log_, "object refused error=\"{}\"", e.str());
    }
    skipped_ += r.skipped;
  }

  /// After a failed request: true when the source gives up (a configuration error before the
  /// first full state), else waits out the backoff.
  asio::awaitable<bool> failedAttempt(const ApiError& error, Kind kind, bool listed,
                                      detail::Backoff& backoff) {
    if (!listed && error.isConfiguration()) {
      // main prints the reason as the program's one line.
      log_->debug("cannot start kind={} error=\"{}\"", kindName(kind), error.message);
      setState(SyncState::Failed, config_.origin + ": " + error.message);
      co_return true;
    }
    ++reconnects_;
    const auto delay = backoff.next(random());
    SPDLOG_LOGGER_WARN(log_, "request failed kind={} retry_in_ms={} error=\"{}\"", kindName(kind),
                       delay.count(), error.message);
    co_await sleep(delay);
    co_return false;
  }

  asio::awaitable<std::variant<KindSpec, ApiError>> resolveSpec(Kind kind) {
    if (auto spec = fixedSpec(kind)) {
      co_return *spec;
    }
    // EndpointSlices: discovery.k8s.io/v1 (Kubernetes 1.21+), else v1beta1.
    std::string body;
    // Named, not temporaries: GCC 12 destroys temporaries of a co_await expression twice.
    std::string target = "/apis/discovery.k8s.io";
    const detail::BodySink sink = [&](std::string_view b) {
      body.append(b);
      return body.size() < (1 << 20);
    };
    auto error = co_await http_->get(target, sink, kListIdle);
    if (error) {
      co_return *error;
    }
    const auto versions = decodeApiGroupVersions(body);
    for (std::string_view v : {"v1", "v1beta1"}) {
      if (std::find(versions.begin(), versions.end(), v) != versions.end()) {
        SPDLOG_LOGGER_INFO(log_, "discovered kind=EndpointSlice version=discovery.k8s.io/{}", v);
        co_return KindSpec{kind, "/apis/discovery.k8s.io/" + std::string(v) + "/endpointslices",
                           ""};
      }
    }
    co_return ApiError{ApiError::Kind::Http, 404,
                       "https://" + config_.hostPort() +
                           ": the server serves EndpointSlices neither as discovery.k8s.io/v1 "
                           "nor as v1beta1"};
  }

  std::string selectorParam(const KindSpec& spec) const {
    return spec.fieldSelector.empty() ? std::string()
                                      : "&fieldSelector=" + percentEncode(spec.fieldSelector);
  }

  /// Every page of a LIST. A page is held as text only until it is decoded.
  asio::awaitable<std::variant<Listed, ApiError>> listAll(const KindSpec& spec) {
    Listed out;
    std::string continueToken;
    int restarts = 0;
    while (true) {
      std::string target = spec.path + "?limit=" + std::to_string(kPageSize) + selectorParam(spec);
      if (!continueToken.empty()) {
        target += "&continue=" + percentEncode(continueToken);
      }
      std::string body;
      bool tooLarge = false;
      const detail::BodySink sink = [&](std::string_view b) {
        if (body.size() + b.size() > detail::kMaxJsonTextBytes) {
          tooLarge = true;
          return false;
        }
        body.append(b);
        return true;
      };
      std::string request = target;
      auto error = co_await http_->get(request, sink, kListIdle);
      if (tooLarge) {
        co_return ApiError{ApiError::Kind::Protocol, 0,
                           "https://" + config_.hostPort() + ": GET " + target +
                               ": a LIST page larger than " +
                               std::to_string(detail::kMaxJsonTextBytes) + " bytes"};
      }
      if (error) {
        // The continue token expired while paging (410): start the LIST again.
        if (error->kind == ApiError::Kind::Http && error->status == 410 &&
            !continueToken.empty() && restarts++ < 3) {
          out = Listed{};
          continueToken.clear();
          continue;
        }
        co_return *error;
      }
      ListMeta meta;
      DecodeResult page = decodeApiList(body, spec.kind, meta);
      body = std::string();
      if (page.syntaxError) {
        co_return ApiError{ApiError::Kind::Protocol, 0,
                           "https://" + config_.hostPort() + ": GET " + target + ": " +
                               (page.errors.empty() ? "undecodable" : page.errors.front().str())};
      }
      countDecode(page);
      log_->debug("list page kind={} items={} more={}", kindName(spec.kind),
                          page.objects.size(), !meta.continueToken.empty());
      if (out.objects.empty()) {
        out.objects = std::move(page.objects);
      } else {
        std::move(page.objects.begin(), page.objects.end(), std::back_inserter(out.objects));
      }
      std::move(page.errors.begin(), page.errors.end(), std::back_inserter(out.errors));
      out.resourceVersion = std::move(meta.resourceVersion);
      continueToken = std::move(meta.continueToken);
      if (continueToken.empty()) {
        co_return out;
      }
    }
  }

  /// One WATCH request from the state's resourceVersion; events go to the store as they come.
  asio::awaitable<std::pair<WatchEnd, std::string>> watch(const KindSpec& spec,
                                                          detail::KindState& state,
                                                          std::size_t& events) {
    const int timeoutSeconds =
        kWatchMinSeconds + static_cast<int>(random() * kWatchMinSeconds);
    const std::string target = spec.path + "?watch=1&allowWatchBookmarks=true&resourceVersion=" +
                               percentEncode(state.resourceVersion()) +
                               "&timeoutSeconds=" + std::to_string(timeoutSeconds) +
                               selectorParam(spec);
    detail::JsonStreamFramer framer(detail::kMaxJsonTextBytes);
    WatchEnd end = WatchEnd::Closed;
    std::string why;
    const detail::BodySink sink = [&](std::string_view bytes) {
      Batch batch;
      const auto status = framer.feed(bytes, [&](std::string_view document) {
        if (end != WatchEnd::Closed) {
          return;
        }
        WatchEvent event;
        std::string error;
        if (!decodeWatchEvent(document, spec.kind, event, error)) {
          end = WatchEnd::Failed;
          why = "undecodable watch event: " + error;
          return;
        }
        ++watchEvents_;
        ++events;
        if (event.type == WatchEventType::Error) {
          end = event.errorCode == 410 ? WatchEnd::Expired : WatchEnd::Failed;
          why = "watch error " + std::to_string(event.errorCode) + " " + event.errorReason +
                ": " + event.errorMessage;
          return;
        }
        countDecode(event.result);
        state.applyEvent(std::move(event), batch);
      });
      if (status != detail::JsonStreamFramer::Status::Ok && end == WatchEnd::Closed) {
        end = WatchEnd::Failed;
        why = status == detail::JsonStreamFramer::Status::TooLarge
                  ? "a watch event larger than " + std::to_string(detail::kMaxJsonTextBytes) +
                        " bytes"
                  : "the watch stream is not a sequence of JSON objects";
      }
      apply(std::move(batch));  // the events before an error are good
      return end == WatchEnd::Closed;
    };
    const std::chrono::seconds maxIdle(timeoutSeconds + 60);
    std::string request = target;
    auto error = co_await http_->get(request, sink, maxIdle);
    if (end != WatchEnd::Closed) {
      co_return std::pair{end, "https://" + config_.hostPort() + ": " + why};
    }
    if (error) {
      const bool gone = error->kind == ApiError::Kind::Http && error->status == 410;
      co_return std::pair{gone ? WatchEnd::Expired : WatchEnd::Failed, error->message};
    }
    co_return std::pair{WatchEnd::Closed, std::string()};
  }

  /// The first LIST of one kind: held until every kind has one, then all go to the store as one
  /// version and the store is marked synced.
  asio::awaitable<void> firstListDone(Batch&& batch) {
    firstBatch_.append(std::move(batch));
    if (--pendingFirstLists_ == 0) {
      store_->apply(std::move(firstBatch_));
      store_->markSynced();
      setState(SyncState::Synced, {});
      const auto snap = store_->snapshot();
      SPDLOG_LOGGER_INFO(log_, "synced version={} services={} endpointslices={} ingresses={}",
                         snap->version, snap->count(Kind::Service),
                         snap->count(Kind::EndpointSlice), snap->count(Kind::Ingress));
      runtime_->firstSync.cancel();
      co_return;
    }
    co_await runtime_->firstSync.async_wait(kUseTuple);
  }

  asio::awaitable<void> reflect(Kind kind) {
    detail::KindState state(kind);
    detail::Backoff backoff(kBackoffInitial, kBackoffCap);
    std::optional<KindSpec> spec;
    bool listed = false;
    bool needList = true;
    while (true) {
      if (!spec) {
        auto resolved = co_await resolveSpec(kind);
        if (auto* error = std::get_if<ApiError>(&resolved)) {
          if (co_await failedAttempt(*error, kind, listed, backoff)) {
            co_return;
          }
          continue;
        }
        spec = std::get<KindSpec>(std::move(resolved));
      }
      if (needList) {
        auto result = co_await listAll(*spec);
        if (auto* error = std::get_if<ApiError>(&result)) {
          if (co_await failedAttempt(*error, kind, listed, backoff)) {
            co_return;
          }
          continue;
        }
        Listed& list = std::get<Listed>(result);
        const std::size_t count = list.objects.size();
        Batch batch;
        state.applyList(std::move(list.objects), list.errors, std::move(list.resourceVersion),
                        batch);
        needList = false;
        backoff.reset();
        SPDLOG_LOGGER_INFO(log_, "listed kind={} objects={} resource_version={}", kindName(kind),
                           count, state.resourceVersion());
        if (!listed) {
          listed = true;
          co_await firstListDone(std::move(batch));
        } else {
          ++relists_;
          apply(std::move(batch));
        }
      }
      const auto started = std::chrono::steady_clock::now();
      std::size_t events = 0;
      auto [end, why] = co_await watch(*spec, state, events);
      switch (end) {
        case WatchEnd::Expired:
          SPDLOG_LOGGER_INFO(log_, "relisting kind={} reason=\"{}\"", kindName(kind), why);
          needList = true;
          break;
        case WatchEnd::Closed:
          if (events > 0 || std::chrono::steady_clock::now() - started > kShortWatch) {
            backoff.reset();
            break;
          }
          why = "https://" + config_.hostPort() + ": the watch stream ended at once";
          [[fallthrough]];
        case WatchEnd::Failed: {
          const ApiError error{ApiError::Kind::Network, 0, why};
          (void)co_await failedAttempt(error, kind, true, backoff);
          break;
        }
      }
    }
  }

  ApiConfig config_;
  std::vector<Kind> kinds_;
  std::shared_ptr<spdlog::logger> log_ = kdp::logger("k8s");
  std::unique_ptr<detail::ApiHttp> http_;
  Store* store_ = nullptr;
  std::mt19937_64 rng_{std::random_device{}()};

  // The io thread's own.
  std::size_t pendingFirstLists_ = 0;
  Batch firstBatch_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  SyncState state_ = SyncState::Pending;
  std::string error_;

  std::atomic<std::uint64_t> decodeErrors_{0}, skipped_{0}, reloads_{0}, watchEvents_{0},
      relists_{0}, reconnects_{0};

  std::unique_ptr<Runtime> runtime_;  // after everything the coroutines use
  std::thread thread_;
};

}  // namespace

void ApiSource::start(Store& store) {
  startAsync(store);
  while (true) {
    switch (waitSynced(std::chrono::seconds(1))) {
      case SyncState::Synced: return;
      case SyncState::Failed: throw std::runtime_error(error());
      case SyncState::Pending: break;
    }
  }
}

std::unique_ptr<ApiSource> makeApiSource(ApiConfig config, std::vector<Kind> kinds) {
  return std::make_unique<ApiSourceImpl>(std::move(config), std::move(kinds));
}

}  // namespace kdp::k8s
