#include "ingress/status_writer.h"

#include <pthread.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include "common/logging.h"
#include "k8s/detail/api_http.h"
#include "k8s/store.h"

namespace kdp::ingress {

namespace asio = boost::asio;
using k8s::detail::ApiError;
using k8s::detail::ApiHttp;
using Method = ApiHttp::Method;

namespace {
constexpr std::chrono::seconds kRequestIdle{15};
using SteadyClock = std::chrono::steady_clock;

// The store calls a subscription's waker on the source's thread, possibly just after stop():
// it posts to the writer's io_context only while the writer has not stopped.
struct WakeTarget {
  std::mutex mu;
  std::function<void()> wake;  // empty once stopped
};
}  // namespace

struct StatusWriter::State {
  explicit State(StatusWriterOptions o) : options(std::move(o)), http(options.api) {}

  StatusWriterOptions options;
  ApiHttp http;
  const k8s::Store* store = nullptr;
  asio::io_context io{1};
  std::thread thread;
  std::shared_ptr<spdlog::logger> log = logger("ingress");
  std::shared_ptr<k8s::Subscription> subscription;
  std::shared_ptr<WakeTarget> wakeTarget = std::make_shared<WakeTarget>();
  asio::steady_timer wakeTimer{io};
  bool woken = false;        // something to look at: skip the wait
  bool passAll = true;       // look at every Ingress on the next pass
  std::set<std::string> pendingKeys;  // else these Ingresses
  SteadyClock::time_point nextResync{};
  SteadyClock::time_point retryAt = SteadyClock::time_point::max();
  std::string publishServiceKey;
  bool leader = false;
  std::chrono::steady_clock::time_point lastRenew{};
  bool loggedNoService = false;
  // What we wrote, per namespace/name, with the Ingress's resourceVersion then: skipped while
  // the store still has that version (the watch has not brought our write back yet).
  std::map<std::string, std::pair<std::string, LoadBalancerStatus>> written;

  std::string leasePath() const {
    return "/apis/coordination.k8s.io/v1/namespaces/" + options.leaseNamespace + "/leases";
  }

  // One round of client-go's tryAcquireOrRenew: true when we hold the Lease afterwards.
  asio::awaitable<bool> tryAcquireOrRenew() {
    const std::string target = leasePath() + "/" + options.leaseName;
    std::string body;
    const k8s::detail::BodySink sink = [&body](std::string_view piece) {
      body.append(piece);
      return body.size() < (1 << 20);
    };
    const std::string noBody;
    auto error = co_await http.send(Method::Get, target, noBody, sink, kRequestIdle);
    std::optional<LeaseRecord> current;
    if (error) {
      if (error->kind != ApiError::Kind::Http || error->status != 404) {
        SPDLOG_LOGGER_WARN(log, "ingress status lease read failed err={}", error->message);
        co_return false;
      }
    } else {
      current = decodeLease(body);
      if (!current) {
        SPDLOG_LOGGER_WARN(log, "ingress status lease: not a Lease");
        co_return false;
      }
    }
    const auto now = WallClock::now();
    const LeaseAction action = decideLease(current, options.identity, now);
    if (action == LeaseAction::Wait) {
      co_return false;
    }
    const int transitions = current ? current->transitions + (action == LeaseAction::TakeOver) : 0;
    const std::string lease =
        leaseJson(options.leaseNamespace, options.leaseName, options.identity, now, now,
                  options.timing.duration, transitions, current ? current->resourceVersion : "");
    body.clear();
    const std::string collection = leasePath();
    if (action == LeaseAction::Create) {
      error = co_await http.send(Method::Post, collection, lease, sink, kRequestIdle);
    } else {
      error = co_await http.send(Method::Put, target, lease, sink, kRequestIdle);
    }
    if (error) {
      // 409: another replica wrote it first (its resourceVersion won).
      if (!(error->kind == ApiError::Kind::Http && error->status == 409)) {
        SPDLOG_LOGGER_WARN(log, "ingress status lease write failed err={}", error->message);
      }
      co_return false;
    }
    co_return true;
  }

  asio::awaitable<bool> writeStatus(const StatusUpdate& update) {
    const std::string target = "/apis/networking.k8s.io/v1/namespaces/" + update.namespace_ +
                               "/ingresses/" + update.name;
    std::string object;
    const k8s::detail::BodySink sink = [&object](std::string_view piece) {
      object.append(piece);
      return object.size() < (16 << 20);
    };
    const std::string noBody;
    if (auto error = co_await http.send(Method::Get, target, noBody, sink, kRequestIdle)) {
      SPDLOG_LOGGER_WARN(log, "ingress status read failed err={}", error->message);
      co_return false;
    }
    const auto replaced = replaceStatusMember(object, statusJson(update.status));
    if (!replaced) {
      SPDLOG_LOGGER_WARN(log, "ingress status: {}/{} is not a JSON object", update.namespace_,
                         update.name);
      co_return false;
    }
    object.clear();
    const std::string statusTarget = target + "/status";
    if (auto error = co_await http.send(Method::Put, statusTarget, *replaced, sink, kRequestIdle)) {
      // A 409 (changed meanwhile) is retried on the next round from the newer object.
      SPDLOG_LOGGER_WARN(log, "ingress status write failed err={}", error->message);
      co_return false;
    }
    SPDLOG_LOGGER_INFO(log, "ingress status written ingress={}/{} addresses={}", update.namespace_,
                       update.name, update.status.size());
    co_return true;
  }

  std::optional<LoadBalancerStatus> published(const k8s::Snapshot& snapshot) {
    if (options.publishServiceName.empty()) {
      return options.publishAddresses;
    }
    const auto* service = snapshot.of<k8s::Service>().get(k8s::storeKey(
        k8s::Kind::Service, options.publishServiceNamespace, options.publishServiceName));
    if (!service) {
      if (!loggedNoService) {
        SPDLOG_LOGGER_WARN(log, "ingress status: --publish-service {}/{} not found",
                           options.publishServiceNamespace, options.publishServiceName);
        loggedNoService = true;
      }
      return std::nullopt;  // nothing to publish yet: leave statuses as they are
    }
    loggedNoService = false;
    return publishedByService(*service);
  }

  void wake() {
    woken = true;
    wakeTimer.cancel();
  }

  // The Lease, every retry period; the status passes run in reconcileLoop.
  asio::awaitable<void> leaseLoop() {
    asio::steady_timer timer(io);
    while (true) {
      const bool held = co_await tryAcquireOrRenew();
      const auto now = SteadyClock::now();
      if (held) {
        lastRenew = now;
        if (!leader) {
          SPDLOG_LOGGER_INFO(log, "ingress status lease acquired lease={}/{} identity={}",
                             options.leaseNamespace, options.leaseName, options.identity);
          leader = true;
          passAll = true;  // what changed while another replica led is unknown here
          wake();
        }
      } else if (leader && now - lastRenew > options.timing.renew) {
        SPDLOG_LOGGER_INFO(log, "ingress status lease lost lease={}/{}", options.leaseNamespace,
                           options.leaseName);
        leader = false;
      }
      timer.expires_after(options.timing.retry);
      co_await timer.async_wait(asio::use_awaitable);
    }
  }

  // Waits for a store change, a resync or a retry, then writes what differs (when leader).
  asio::awaitable<void> reconcileLoop() {
    nextResync = SteadyClock::now() + options.resync;
    while (true) {
      auto now = SteadyClock::now();
      const auto due = std::min(nextResync, retryAt);
      if (!woken && now < due) {
        boost::system::error_code ignored;  // cancelled: woken
        wakeTimer.expires_at(due);
        co_await wakeTimer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
        continue;
      }
      woken = false;
      if (auto update = subscription->take()) {
        auto scope = statusScope(update->changes, publishServiceKey);
        passAll = passAll || scope.all;
        pendingKeys.insert(scope.ingressKeys.begin(), scope.ingressKeys.end());
      }
      if (now >= nextResync || now >= retryAt) {
        passAll = true;
        nextResync = now + options.resync;
        retryAt = SteadyClock::time_point::max();
      }
      if (!leader) {
        // Becoming leader starts with a full pass.
        passAll = false;
        pendingKeys.clear();
        continue;
      }
      co_await reconcile();
    }
  }

  asio::awaitable<void> reconcile() {
    const auto snapshot = store->snapshot();
    const auto addresses = published(*snapshot);
    const bool all = std::exchange(passAll, false);
    const std::vector<std::string> keys(pendingKeys.begin(), pendingKeys.end());
    pendingKeys.clear();
    if (!addresses) {
      co_return;  // the --publish-service Service's arrival is a change that looks at all
    }
    // Forget what we wrote for Ingresses that are gone.
    std::erase_if(written, [&](const auto& entry) {
      return (all || std::binary_search(keys.begin(), keys.end(), entry.first)) &&
             !snapshot->of<k8s::Ingress>().get(entry.first);
    });
    const auto updates = all ? statusUpdates(*snapshot, options.ingressClass, *addresses)
                             : statusUpdates(*snapshot, keys, options.ingressClass, *addresses);
    for (const auto& update : updates) {
      const std::string key = update.namespace_ + "/" + update.name;
      auto it = written.find(key);
      if (it != written.end() && it->second.first == update.resourceVersion &&
          it->second.second == update.status) {
        continue;  // written; the watch has not brought our write back yet
      }
      if (co_await writeStatus(update)) {
        written[key] = {update.resourceVersion, update.status};
      } else {
        retryAt = std::min(retryAt, SteadyClock::now() + options.timing.retry);
      }
    }
  }
};

StatusWriter::StatusWriter(StatusWriterOptions options)
    : state_(std::make_unique<State>(std::move(options))) {}

StatusWriter::~StatusWriter() { stop(); }

void StatusWriter::start(k8s::Store& store) {
  State& st = *state_;
  st.store = &store;
  if (!st.options.publishServiceName.empty()) {
    st.publishServiceKey = k8s::storeKey(k8s::Kind::Service, st.options.publishServiceNamespace,
                                         st.options.publishServiceName);
  }
  st.wakeTarget->wake = [&st] { asio::post(st.io, [&st] { st.wake(); }); };
  st.subscription = store.subscribe();
  st.subscription->setWaker([target = st.wakeTarget] {
    std::lock_guard lock(target->mu);
    if (target->wake) {
      target->wake();
    }
  });
  asio::co_spawn(st.io, st.leaseLoop(), asio::detached);
  asio::co_spawn(st.io, st.reconcileLoop(), asio::detached);
  st.thread = std::thread([&st] {
    pthread_setname_np(pthread_self(), "kdp/status");
    st.io.run();
  });
}

void StatusWriter::stop() {
  if (!state_ || !state_->thread.joinable()) {
    return;
  }
  {
    std::lock_guard lock(state_->wakeTarget->mu);
    state_->wakeTarget->wake = nullptr;
  }
  state_->subscription->close();
  state_->io.stop();
  state_->thread.join();
}

}  // namespace kdp::ingress
