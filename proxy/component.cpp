#include "proxy/component.h"

#include <pthread.h>

#include <atomic>
#include <cassert>
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>

#include "common/logging.h"
#include "common/metrics.h"
#include "k8s/store.h"
#include "proxy/compiler.h"
#include "proxy/incremental.h"
#include "proxy/flow_cleaner.h"
#include "proxy/health_server.h"
#include "proxy/local_addresses.h"
#include "proxy/syncer.h"

namespace kdp::proxy {

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// How often our tables are checked against what we applied (someone may flush them): a
// deleted table is back within this plus one sync.
constexpr auto kDriftCheckInterval = 400ms;
// Wait after a failed sync before the next (full) attempt.
constexpr auto kRetryDelay = 500ms;

struct Metrics {
  metrics::Histogram& fullSync;
  metrics::Histogram& partialSync;
  metrics::Counter& failures;
  metrics::Counter& driftRepairs;
  metrics::Histogram& programmingLatency;
  metrics::Gauge& elements;
  metrics::Gauge& lastSync;
  std::map<std::string, metrics::Gauge*> elementsByKind;  // by set or map kind
  metrics::Gauge* rules = nullptr;

  static Metrics make(metrics::Registry& r) {
    const char* kSync = "kube_dataplane_proxy_sync_duration_seconds";
    const char* kSyncHelp = "Time to compile and apply one sync, by mode (full or partial).";
    return Metrics{
        r.histogram(kSync, kSyncHelp, metrics::latencyBuckets(), {{"mode", "full"}}),
        r.histogram(kSync, kSyncHelp, metrics::latencyBuckets(), {{"mode", "partial"}}),
        r.counter("kube_dataplane_proxy_sync_failures_total",
                  "Syncs the kernel refused or that could not be sent."),
        r.counter("kube_dataplane_proxy_drift_repairs_total",
                  "Times our tables were found changed by someone else and rewritten."),
        r.histogram("kube_dataplane_proxy_network_programming_duration_seconds",
                    "From the last store change to the kernel's ack.",
                    metrics::latencyBuckets()),
        r.gauge("kube_dataplane_proxy_elements", "Set and map elements applied."),
        r.gauge("kube_dataplane_proxy_last_sync_timestamp_seconds",
                "When the last successful sync ended, seconds since the epoch."),
        {},
        &r.gauge("kube_dataplane_proxy_rules", "Rules in our tables (all families)."),
    };
  }

  void setCounts(metrics::Registry& r, const Ruleset& rs) {
    std::map<std::string, std::size_t> counts{
        {kServiceIps, 0}, {kNoEndpointServices, 0}, {kMasqueradeServices, 0},
        {kClusterIps, 0}, {kFirewallIps, 0},        {kFirewallAllow, 0},
        {kHairpin, 0},    {"backends", 0}};
    std::size_t ruleCount = 0;
    for (const auto& t : rs.tables) {
      counts[kServiceIps] += t.serviceIps.size();
      counts[kNoEndpointServices] += t.noEndpointServices.size();
      counts[kMasqueradeServices] += t.masqueradeServices.size();
      counts[kClusterIps] += t.clusterIps.size();
      counts[kFirewallIps] += t.firewallIps.size();
      counts[kFirewallAllow] += t.firewallAllow.size();
      counts[kHairpin] += t.hairpin.size();
      for (const auto& [n, els] : t.backends) {
        counts["backends"] += els.size();
      }
      for (const auto& [n, els] : t.affinityBackends) {
        counts["backends"] += els.size();
      }
      for (const auto& c : t.chains) {
        ruleCount += c.rules.size();
      }
    }
    for (const auto& [kind, n] : counts) {
      auto& g = elementsByKind[kind];
      if (g == nullptr) {
        g = &r.gauge("kube_dataplane_proxy_elements_by_kind",
                     "Set and map elements applied, by set kind.", {{"kind", kind}});
      }
      g->set(static_cast<double>(n));
    }
    rules->set(static_cast<double>(ruleCount));
  }
};

class ProxyComponent final : public Component {
 public:
  explicit ProxyComponent(ProxyOptions options) : options_(std::move(options)) {}
  ~ProxyComponent() override { stop(); }

  std::string_view name() const override { return "proxy"; }

  void start(k8s::Store& store) override {
    syncer_ = std::make_unique<Syncer>();  // throws when netlink is unavailable
    metrics_ = std::make_unique<Metrics>(Metrics::make(metrics::defaultRegistry()));
    flowCleaner_ = std::make_unique<FlowCleaner>(metrics::defaultRegistry().counter(
        "kube_dataplane_proxy_conntrack_entries_deleted_total",
        "Stale UDP conntrack entries deleted (their endpoint or destination went away)."));
    // Interface addresses are read once: --nodeport-addresses picks NodePort addresses from them.
    localAddresses_ = localAddresses();
    health_ = std::make_unique<HealthServer>(
        makeNodeInfo(*store.snapshot(), options_, localAddresses_).nodePortIps, options_.healthz);
    health_->queued();  // as kube-proxy: unhealthy if the first sync never comes
    sub_ = store.subscribe();
    thread_ = std::thread([this] { run(); });
  }

  bool ready() const override { return ready_.load(std::memory_order_acquire); }

  void stop() override {
    stopping_.store(true);
    if (sub_) {
      sub_->close();
    }
    if (thread_.joinable()) {
      thread_.join();
    }
    flowCleaner_.reset();
    health_.reset();
  }

 private:
  /// The health check ports: all Services' when `touched` is null (first or full sync, node
  /// changed), else only the touched Services' entries are redone.
  void updateHealthChecks(const k8s::Snapshot& snap, const NodeInfo& node,
                          const std::set<std::string>* touched) {
    if (touched == nullptr) {
      healthChecks_.clear();
      for (const auto& entry : snap.of<k8s::Service>()) {
        if (auto hc = healthCheckService(snap, *entry.value, node)) {
          healthChecks_.insert_or_assign(entry.key, std::move(*hc));
        }
      }
    } else {
      for (const auto& key : *touched) {
        const k8s::Service* svc = snap.of<k8s::Service>().get(key);
        auto hc = svc == nullptr ? std::nullopt : healthCheckService(snap, *svc, node);
        if (hc) {
          healthChecks_.insert_or_assign(key, std::move(*hc));
        } else {
          healthChecks_.erase(key);
        }
      }
    }
    std::vector<HealthCheckService> all;
    all.reserve(healthChecks_.size());
    for (const auto& [key, hc] : healthChecks_) {
      all.push_back(hc);
    }
    health_->setServices(std::move(all));
  }

  void run() {
    ::pthread_setname_np(::pthread_self(), "kdp/proxy-sync");
    auto log = logger("proxy");
    std::shared_ptr<const k8s::Snapshot> snap;
    k8s::Changes changes;  // since the last compile
    bool dirty = false;
    auto lastDriftCheck = Clock::now();
    while (!stopping_.load()) {
      // Bursts are coalesced by the subscription: one update stands for every version that
      // landed while we were busy.
      if (auto update = sub_->next(kDriftCheckInterval)) {
        snap = update->snapshot;
        changes.merge(update->changes);
        dirty = true;
        health_->queued();
      }
      if (stopping_.load()) {
        break;
      }
      if (Clock::now() - lastDriftCheck >= kDriftCheckInterval) {
        lastDriftCheck = Clock::now();
        if (ready() && !syncer_->needsFullSync() && syncer_->checkDrift()) {
          metrics_->driftRepairs.inc();
          SPDLOG_LOGGER_WARN(log, "tables changed by someone else; rewriting them");
          dirty = true;
        }
      }
      if (!dirty || !snap) {
        continue;
      }
      const auto started = Clock::now();
      const NodeInfo node = makeNodeInfo(*snap, options_, localAddresses_);
      // Only the Services the changes name are recompiled, and only their element differences
      // are sent (whole tables on the first sync, after a failure, after drift).
      const RulesetChange change = compiler_.update(*snap, changes, node);
      const std::set<std::string> touched = servicesNamedBy(changes);
      changes = k8s::Changes{};
      const Ruleset& desired = compiler_.ruleset();
      auto result = syncer_->apply(change, desired);
      const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
      if (!result) {
        metrics_->failures.inc();
        KDP_LOG_RATE_LIMITED(log, spdlog::level::warn, 5,
                             "nft commit failed err={} next=full", result.error().message);
        std::this_thread::sleep_for(kRetryDelay);
        continue;
      }
      dirty = false;
      health_->updated();
      updateHealthChecks(*snap, node, change.full ? nullptr : &touched);
      if (result->full) {
        udp_ = udpDestinations(desired);  // a failed sync's change was never looked at
      } else {
        updateUdpDestinations(udp_, change, desired);
      }
      if (result->messages > 0 && change.touches(kProtoUdp)) {
        // A copy of the UDP destinations only: the model changes under the cleaner's thread.
        flowCleaner_->applied(udp_);
      }
      (result->full ? metrics_->fullSync : metrics_->partialSync).observe(seconds);
      metrics_->elements.set(static_cast<double>(desired.elementCount()));
      metrics_->setCounts(metrics::defaultRegistry(), desired);
      const double now =
          std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
              .count();
      metrics_->lastSync.set(now);
      if (snap->lastChangeTime > 0 && result->messages > 0) {
        metrics_->programmingLatency.observe(std::max(0.0, now - snap->lastChangeTime));
      }
      SPDLOG_LOGGER_DEBUG(log, "synced version={} full={} messages={} elements={} seconds={:.4f}",
                          snap->version, result->full, result->messages,
                          desired.elementCount(), seconds);
      if (!ready()) {
        SPDLOG_LOGGER_INFO(log, "first sync applied version={} elements={} seconds={:.4f}",
                           snap->version, desired.elementCount(), seconds);
        ready_.store(true, std::memory_order_release);
      }
    }
  }

  const ProxyOptions options_;
  std::unique_ptr<Syncer> syncer_;
  IncrementalCompiler compiler_;  // sync thread only
  std::map<std::string, HealthCheckService> healthChecks_;  // by Service key; sync thread only
  UdpDestinations udp_;  // of compiler_'s model; sync thread only
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<FlowCleaner> flowCleaner_;
  std::unique_ptr<HealthServer> health_;
  std::vector<IpAddr> localAddresses_;
  std::shared_ptr<k8s::Subscription> sub_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> ready_{false};
};

}  // namespace

std::unique_ptr<Component> makeComponent(const ProxyOptions& options) {
  return std::make_unique<ProxyComponent>(options);
}

}  // namespace kdp::proxy
