#include "dns/component.h"

#include <malloc.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/logging.h"
#include "dns/detail/forwarder.h"
#include "dns/detail/server_metrics.h"
#include "dns/detail/wire.h"
#include "dns/server.h"
#include "dns/zone.h"
#include "k8s/store.h"

namespace kdp::dns {

namespace {

/// The watcher ("kdp/dns-watch") compiles each store update into a zone and publishes it; the
/// server's workers answer from it.
class DnsComponent : public Component {
 public:
  explicit DnsComponent(const DnsOptions& options) : options_(options) {
    zoneOptions_ = ZoneOptions{options.clusterDomain, options.ttl, options.pods, options.autopath};
    zones_ = std::make_shared<ZoneHolder>(std::make_shared<const Zone>(zoneOptions_));
    ServerOptions so;
    so.listen = options.listen;
    so.threads = options.threads != 0 ? options.threads
                                      : std::max(1u, std::thread::hardware_concurrency());
    so.upstreams = options.upstreams;
    std::string resolvConf;
    {
      std::ifstream in("/etc/resolv.conf");
      std::stringstream text;
      text << in.rdbuf();
      resolvConf = text.str();
    }
    if (so.upstreams.empty()) {
      so.upstreams = parseResolvConf(resolvConf);
    }
    if (options.autopath) {
      // The node's search domains follow the cluster ones in a pod's resolv.conf (kubelet);
      // the cluster's own domains are not repeated.
      for (auto& d : parseResolvConfSearch(resolvConf)) {
        const auto apex = wire::lowerName(*wire::nameFromText(options.clusterDomain));
        if (!wire::isSubdomain(d, apex)) {
          so.hostSearch.push_back(std::move(d));
        }
      }
    }
    // Never forward to ourselves.
    std::erase_if(so.upstreams, [&](const HostPort& up) {
      return std::find(options.listen.begin(), options.listen.end(), up) != options.listen.end();
    });
    so.cacheSize = options.cacheSize;
    upstreams_ = so.upstreams.size();
    threads_ = so.threads;
    server_ = std::make_unique<Server>(std::move(so), zones_);
  }

  ~DnsComponent() override { stop(); }

  std::string_view name() const override { return "dns"; }

  void start(k8s::Store& store) override {
    metrics_ = &ServerMetrics::get();
    server_->start();
    subscription_ = store.subscribe();
    watcher_ = std::thread([this] { watch(); });
    SPDLOG_LOGGER_INFO(log_, "dns serving listen={} threads={} upstreams={} domain={}",
                       options_.listen.empty() ? std::string("-") : options_.listen.front().str(),
                       threads_, upstreams_, options_.clusterDomain);
  }

  bool ready() const override { return ready_.load(std::memory_order_acquire); }

  void stop() override {
    if (stopped_.exchange(true)) {
      return;
    }
    stopping_.store(true);
    if (subscription_) {
      subscription_->close();
    }
    if (watcher_.joinable()) {
      watcher_.join();
    }
    server_->stop();
  }

 private:
  void watch() {
    pthread_setname_np(pthread_self(), "kdp/dns-watch");
    ZoneCompiler compiler(zoneOptions_);
    while (!stopping_.load()) {
      auto update = subscription_->next(std::chrono::milliseconds(500));
      if (!update) {
        continue;
      }
      const auto start = std::chrono::steady_clock::now();
      auto zone = compiler.update(*update);
      if (zone == zones_->load()) {
        continue;  // nothing the zone is made of changed
      }
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      metrics_->zoneBuildSeconds->observe(seconds);
      metrics_->zoneUpdates->inc();
      metrics_->zoneNames->set(static_cast<double>(zone->nodeCount()));
      const bool synced = zone->synced();
      const auto& stats = compiler.lastStats();
      const std::uint64_t version = zone->version();
      const std::size_t names = zone->nodeCount();
      zones_->publish(std::move(zone));
      server_->notifyZoneChanged();
      // From the store's change (its wall-clock time) to the zone being served.
      const double sinceChangeMs =
          update->snapshot->lastChangeTime > 0
              ? (std::chrono::duration<double>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count() -
                 update->snapshot->lastChangeTime) *
                    1000
              : 0.0;
      SPDLOG_LOGGER_INFO(log_,
                         "zone published version={} names={} seconds={:.6f} synced={} full={} "
                         "services={} changed_names={} shards={} since_change_ms={:.3f}",
                         version, names, seconds, synced, stats.full, stats.services,
                         stats.names, stats.shards, sinceChangeMs);
      if (synced && !ready_.exchange(true)) {
        SPDLOG_LOGGER_INFO(log_, "dns ready version={}", update->snapshot->version);
      }
      if (stats.full) {
        // A full compile's scratch (per-Service contributions, hash maps of nodes) is freed
        // by now; hand its pages back rather than keep them resident in this thread's arena.
        malloc_trim(0);
      }
    }
  }

  DnsOptions options_;
  ZoneOptions zoneOptions_;
  std::size_t upstreams_ = 0;
  unsigned threads_ = 0;
  std::shared_ptr<ZoneHolder> zones_;
  std::unique_ptr<Server> server_;
  std::shared_ptr<k8s::Subscription> subscription_;
  std::thread watcher_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> stopped_{false};
  ServerMetrics* metrics_ = nullptr;
  std::shared_ptr<spdlog::logger> log_ = logger("dns");
};

}  // namespace

std::unique_ptr<Component> makeComponent(const DnsOptions& options) {
  return std::make_unique<DnsComponent>(options);
}

}  // namespace kdp::dns
