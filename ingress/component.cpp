#include "ingress/component.h"

#include <pthread.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <atomic>
#include <chrono>
#include <ctime>
#include <stdexcept>
#include <thread>

#include "common/logging.h"
#include "common/metrics.h"
#include "ingress/routes.h"
#include "ingress/server.h"
#include "k8s/store.h"
#include "tls/sni.h"

namespace kdp::ingress {

namespace {

namespace asio = boost::asio;

tls::CertificatePtr defaultCertificate(const IngressOptions& o) {
  if (o.defaultCert.empty() != o.defaultKey.empty()) {
    throw std::runtime_error("--default-cert and --default-key go together");
  }
  if (!o.defaultCert.empty()) {
    auto c = tls::loadCertificateFiles(o.defaultCert, o.defaultKey);
    if (!c) {
      throw std::runtime_error("--default-cert " + o.defaultCert + ": " + c.error().message);
    }
    return std::move(c.value());
  }
  return tls::generateSelfSigned("kube-dataplane ingress default certificate");
}

class IngressComponent final : public Component {
 public:
  explicit IngressComponent(const IngressOptions& options)
      : options_(options),
        certs_(defaultCertificate(options)),
        server_(options, certs_),
        compileSeconds_(metrics::defaultRegistry().histogram(
            "kube_dataplane_ingress_route_compile_seconds",
            "Time to compile the route table from a store snapshot.",
            metrics::latencyBuckets())),
        tableVersion_(metrics::defaultRegistry().gauge(
            "kube_dataplane_ingress_route_table_version",
            "Store version of the route table in force.")),
        routedIngresses_(metrics::defaultRegistry().gauge(
            "kube_dataplane_ingress_ingresses", "Ingresses of our class in the route table.")),
        certErrors_(metrics::defaultRegistry().counter(
            "kube_dataplane_ingress_certificate_errors_total",
            "TLS Secrets refused (bad PEM, key not matching); the previous certificate stays.")),
        certExpiry_(metrics::defaultRegistry().addCollector(
            "kube_dataplane_ingress_certificate_expiry_seconds",
            "Seconds until each certificate in use expires (its notAfter), by Secret "
            "(namespace/name; \"\" is the default certificate); negative once expired.",
            metrics::Type::Gauge, [this](std::vector<metrics::Sample>& out) {
              const auto now = static_cast<std::int64_t>(std::time(nullptr));
              for (const auto& [secret, cert] : *certs_.inUse()) {
                out.push_back(metrics::Sample{{{"secret", secret}},
                                              static_cast<double>(cert->notAfterUnix() - now)});
              }
            })) {}

  ~IngressComponent() override { stop(); }

  std::string_view name() const override { return "ingress"; }

  void start(k8s::Store& store) override {
    server_.start();
    sub_ = store.subscribe();
    work_.emplace(asio::make_work_guard(sync_));
    syncThread_ = std::thread([this] {
      ::pthread_setname_np(::pthread_self(), "kdp/ingress-sync");
      for (;;) {
        try {
          sync_.run();
          return;
        } catch (const std::exception& e) {
          SPDLOG_LOGGER_ERROR(log_, "ingress sync failed err={}", e.what());
        }
      }
    });
    // The store calls the waker on its writer's thread: post a drain to our own thread.
    sub_->setWaker([this] { asio::post(sync_, [this] { drain(); }); });
    asio::post(sync_, [this] { drain(); });  // the first update is pending already
  }

  bool ready() const override { return ready_.load(std::memory_order_acquire); }

  void stop() override {
    if (stopped_) {
      return;
    }
    stopped_ = true;
    if (sub_) {
      sub_->close();
    }
    work_.reset();
    sync_.stop();
    if (syncThread_.joinable()) {
      syncThread_.join();
    }
    server_.stop();
  }

 private:
  // Sync thread: compiles the newest snapshot (coalesced by the store) and publishes it.
  void drain() {
    auto update = sub_->take();
    if (!update) {
      return;
    }
    const auto t0 = std::chrono::steady_clock::now();
    // Incremental after the first update: the changed keys say what to recompile.
    const auto result = compiler_.update(*update->snapshot, &update->changes);
    const auto& table = result.table;
    if (result.tlsChanged) {
      std::vector<tls::SniBinding> bindings;
      bindings.reserve(table->tls->size());
      for (const auto& b : *table->tls) {
        bindings.push_back(tls::SniBinding{b.host, b.secret});
      }
      const auto errorsBefore = certs_.errors();
      certs_.update(bindings, *table->secrets);
      certErrors_.inc(certs_.errors() - errorsBefore);
    }
    const std::size_t ingresses = table->ingresses;
    const std::size_t tlsHosts = table->tls->size();
    const std::uint64_t version = table->version;
    server_.setTable(table);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    compileSeconds_.observe(seconds);
    tableVersion_.set(static_cast<double>(version));
    routedIngresses_.set(static_cast<double>(ingresses));
    ready_.store(true, std::memory_order_release);
    SPDLOG_LOGGER_INFO(log_,
                       "routes updated version={} ingresses={} tlsHosts={} full={} "
                       "hostsRebuilt={} seconds={:.6f}",
                       version, ingresses, tlsHosts, result.full, result.hostsRebuilt, seconds);
  }

  IngressOptions options_;
  tls::CertStore certs_;
  RouteCompiler compiler_{CompileOptions{options_.ingressClass, options_.loadBalance}};
  Server server_;
  metrics::Histogram& compileSeconds_;
  metrics::Gauge& tableVersion_;
  metrics::Gauge& routedIngresses_;
  metrics::Counter& certErrors_;
  metrics::CollectorHandle certExpiry_;
  std::shared_ptr<spdlog::logger> log_ = logger("ingress");
  std::shared_ptr<k8s::Subscription> sub_;
  asio::io_context sync_{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread syncThread_;
  std::atomic<bool> ready_{false};
  bool stopped_ = false;
};

}  // namespace

std::unique_ptr<Component> makeComponent(const IngressOptions& options) {
  return std::make_unique<IngressComponent>(options);
}

}  // namespace kdp::ingress
