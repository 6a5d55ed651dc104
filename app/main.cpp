// kube-dataplane: parse the command line, set up logging, load the source into the store, serve
// metrics, and run the components. Every failure ends in one line on stderr and an exit code;
// nothing escapes main.

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <exception>
#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "app/cli.h"
#include "app/components.h"
#include "common/logging.h"
#include "app/metrics_server.h"
#include "app/summary.h"
#include "common/metrics.h"
#include "ingress/status_writer.h"
#include "k8s/api_config.h"
#include "k8s/api_source.h"
#include "k8s/manifests_source.h"
#include "k8s/source.h"
#include "k8s/store.h"
#include "proxy/one_shot.h"  // proxy one-shot modes

namespace {

using kdp::app::Command;
using kdp::app::Options;
namespace k8s = kdp::k8s;
namespace metrics = kdp::metrics;

constexpr int kExitFailure = 1;
constexpr int kExitUsage = kdp::app::kUsageExitCode;

int failWith(const std::string& message, int code) {
  std::fprintf(stderr, "kube-dataplane: %s\n", message.c_str());
  return code;
}

/// The store's figures as metrics, read from the newest snapshot at scrape time.
std::vector<metrics::CollectorHandle> registerStoreMetrics(metrics::Registry& registry,
                                                           const k8s::Store& store,
                                                           const k8s::Source& source) {
  std::vector<metrics::CollectorHandle> handles;
  handles.push_back(registry.addCollector(
      "kube_dataplane_store_objects", "Objects in the store, by kind.", metrics::Type::Gauge,
      [&store](std::vector<metrics::Sample>& out) {
        const auto snap = store.snapshot();
        for (std::size_t k = 0; k < k8s::kKindCount; ++k) {
          const auto kind = static_cast<k8s::Kind>(k);
          out.push_back({{{"kind", std::string(k8s::kindName(kind))}},
                         static_cast<double>(snap->count(kind))});
        }
      }));
  handles.push_back(registry.addCollector(
      "kube_dataplane_store_version", "Version of the newest store snapshot.",
      metrics::Type::Gauge,
      [&store] { return static_cast<double>(store.snapshot()->version); }));
  handles.push_back(registry.addCollector(
      "kube_dataplane_store_last_change_timestamp_seconds",
      "When the store last changed, seconds since the epoch.", metrics::Type::Gauge,
      [&store] { return store.snapshot()->lastChangeTime; }));
  handles.push_back(registry.addCollector(
      "kube_dataplane_store_batches_total", "Non-empty batches applied to the store.",
      metrics::Type::Counter, [&store] { return static_cast<double>(store.stats().batches); }));
  handles.push_back(registry.addCollector(
      "kube_dataplane_decode_errors_total", "Objects or files the source refused.",
      metrics::Type::Counter,
      [&source] { return static_cast<double>(source.stats().decodeErrors); }));
  handles.push_back(registry.addCollector(
      "kube_dataplane_api_watch_events_total",
      "WATCH events received from the Kubernetes API (bookmarks included).",
      metrics::Type::Counter,
      [&source] { return static_cast<double>(source.stats().watchEvents); }));
  handles.push_back(registry.addCollector(
      "kube_dataplane_api_relists_total",
      "LISTs of a kind after its first one (a watch that expired: 410 Gone).",
      metrics::Type::Counter, [&source] { return static_cast<double>(source.stats().relists); }));
  handles.push_back(registry.addCollector(
      "kube_dataplane_api_retries_total",
      "Kubernetes API requests that failed and were retried after a backoff.",
      metrics::Type::Counter,
      [&source] { return static_cast<double>(source.stats().reconnects); }));
  return handles;
}

/// Blocks SIGINT and SIGTERM in this thread and every thread started after it, so that they are
/// taken only by waitForStopSignal().
sigset_t blockStopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  if (pthread_sigmask(SIG_BLOCK, &set, nullptr) != 0) {
    throw std::runtime_error("pthread_sigmask failed");
  }
  return set;
}

int waitForStopSignal(const sigset_t& set) {
  int sig = 0;
  // sigwait fails only for an invalid set: treat that as a stop rather than spin.
  return sigwait(&set, &sig) == 0 ? sig : SIGTERM;
}

/// One-shot modes end by themselves: a stop signal keeps its default action (terminate) there.
void unblockStopSignals(const sigset_t& set) { pthread_sigmask(SIG_UNBLOCK, &set, nullptr); }

/// The Ingress status writer's options when `ingress` publishes an address and reads the API;
/// with --manifests the publish flags are accepted and nothing is written (said once).
std::optional<kdp::ingress::StatusWriterOptions> ingressStatusWriterOptions(
    const Options& options, const std::optional<k8s::ApiConfig>& apiConfig) {
  const auto& ingress = options.ingress;
  const bool ingressOn = options.command == Command::Ingress ||
                         (options.command == Command::Run && (ingress.http || ingress.https));
  if (!ingressOn || (ingress.publishAddresses.empty() && ingress.publishServiceName.empty())) {
    return std::nullopt;
  }
  if (!apiConfig) {
    SPDLOG_LOGGER_INFO(kdp::logger("app"), "ingress status is written only with the Kubernetes API source: "
                            "--publish-address/--publish-service ignored with --manifests");
    return std::nullopt;
  }
  kdp::ingress::StatusWriterOptions out;
  out.api = *apiConfig;
  out.ingressClass = ingress.ingressClass;
  out.publishAddresses = ingress.publishAddresses;
  out.publishServiceNamespace = ingress.publishServiceNamespace;
  out.publishServiceName = ingress.publishServiceName;
  const char* podNamespace = std::getenv("POD_NAMESPACE");
  out.leaseNamespace = podNamespace && *podNamespace ? podNamespace : "kube-dataplane";
  if (const char* podName = std::getenv("POD_NAME"); podName && *podName) {
    out.identity = podName;
  } else {
    // Outside a pod the hostname alone is not unique between processes of one host.
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    out.identity = std::string(host) + "_" + std::to_string(getpid());
  }
  return out;
}

/// The source the options name: --manifests DIR, --kubeconfig FILE, or in a pod the in-cluster
/// config.
struct ChosenSource {
  std::unique_ptr<k8s::Source> source;
  k8s::ApiSource* api = nullptr;            // set for the API source
  std::optional<k8s::ApiConfig> apiConfig;  // kept for the Ingress status writer
};

/// The source, or the exit code after the message was printed.
std::variant<ChosenSource, int> chooseSource(const Options& options) {
  ChosenSource out;
  if (!options.source.manifestsDir.empty()) {
    out.source = k8s::makeManifestsSource(options.source.manifestsDir);
    return out;
  }
  k8s::ApiConfig config;
  try {
    config = options.source.kubeconfig.empty()
                 ? k8s::inClusterConfig(k8s::processEnv, k8s::readWholeFile)
                 : k8s::loadKubeconfig(options.source.kubeconfig);
  } catch (const k8s::ApiConfigError& e) {
    // No source flag outside a pod is a usage error; a broken file or mount is not.
    const bool noSource = options.source.kubeconfig.empty() && !k8s::inCluster(k8s::processEnv);
    return failWith(e.what(), noSource ? kExitUsage : kExitFailure);
  }
  out.apiConfig = config;
  auto apiSource = k8s::makeApiSource(std::move(config), kdp::app::kindsNeeded(options));
  out.api = apiSource.get();
  out.source = std::move(apiSource);
  return out;
}

int runMain(const Options& options, const sigset_t& stopSignals) {
  auto log = kdp::logger("app");

  // --- proxy one-shot modes (--dry-run, --once, --cleanup, explain): proxy/one_shot.h ---
  // From the manifests or from the API (one LIST of every kind the proxy reads, no WATCH kept).
  if (options.command == Command::Proxy && options.proxy.mode != kdp::proxy::ProxyMode::Sync) {
    std::unique_ptr<k8s::Source> oneShotSource;
    if (options.proxy.mode != kdp::proxy::ProxyMode::Cleanup) {
      auto chosen = chooseSource(options);
      if (const int* exitCode = std::get_if<int>(&chosen)) {
        return *exitCode;
      }
      oneShotSource = std::move(std::get<ChosenSource>(chosen).source);
    }
    unblockStopSignals(stopSignals);
    return kdp::proxy::runOneShot(options.proxy, std::move(oneShotSource));
  }
  // --- end proxy one-shot modes ---

  auto chosen = chooseSource(options);
  if (const int* exitCode = std::get_if<int>(&chosen)) {
    return *exitCode;
  }
  std::unique_ptr<k8s::Source> source = std::move(std::get<ChosenSource>(chosen).source);
  k8s::ApiSource* api = std::get<ChosenSource>(chosen).api;
  const std::optional<k8s::ApiConfig> apiConfig = std::get<ChosenSource>(chosen).apiConfig;

  std::vector<std::unique_ptr<kdp::Component>> components;
  try {
    components = kdp::app::makeComponents(options);
  } catch (const kdp::app::NotBuilt& e) {
    return failWith(e.what(), kExitUsage);
  } catch (const std::runtime_error& e) {
    return failWith(e.what(), kExitFailure);
  }

  k8s::Store store;

  if (options.dryRun) {
    unblockStopSignals(stopSignals);
    try {
      source->start(store);
    } catch (const std::runtime_error& e) {
      return failWith(e.what(), kExitFailure);
    }
    source->stop();
    const auto stats = source->stats();
    std::string out = kdp::app::summarize(*store.snapshot());
    out += "\nfiles=" + std::to_string(stats.files) +
           " decodeErrors=" + std::to_string(stats.decodeErrors) +
           " skippedObjects=" + std::to_string(stats.skippedObjects) + "\n";
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
    return 0;
  }

  auto& registry = metrics::defaultRegistry();
  metrics::registerProcessMetrics(registry);
  const auto storeMetrics = registerStoreMetrics(registry, store, *source);

  std::unique_ptr<kdp::app::MetricsServer> server;
  if (options.metrics) {
    server = std::make_unique<kdp::app::MetricsServer>(
        registry, [&store, &components] {
          return store.snapshot()->synced &&
                 std::all_of(components.begin(), components.end(),
                             [](const auto& c) { return c->ready(); });
        });
    try {
      server->start(*options.metrics);
    } catch (const std::runtime_error& e) {
      return failWith(e.what(), kExitFailure);
    }
  }

  try {
    if (api) {
      // Waits for the first full state but still stops on SIGTERM: an unreachable API server
      // is retried for as long as it takes.
      api->startAsync(store);
      while (true) {
        const auto state = api->waitSynced(std::chrono::milliseconds(100));
        if (state == k8s::ApiSource::SyncState::Synced) {
          break;
        }
        const timespec now{0, 0};
        const bool stopping = state == k8s::ApiSource::SyncState::Pending &&
                              sigtimedwait(&stopSignals, nullptr, &now) > 0;
        if (state == k8s::ApiSource::SyncState::Failed || stopping) {
          source->stop();
          if (server) {
            server->stop();
          }
          if (stopping) {
            SPDLOG_LOGGER_INFO(log, "stopped before the first full state");
            return 0;
          }
          return failWith(api->error(), kExitFailure);
        }
      }
    } else {
      source->start(store);
    }
  } catch (const std::runtime_error& e) {
    return failWith(e.what(), kExitFailure);
  }
  {
    const auto snap = store.snapshot();
    const auto stats = source->stats();
    SPDLOG_LOGGER_INFO(log,
                       "loaded version={} services={} endpointslices={} ingresses={} secrets={} "
                       "files={} decode_errors={}",
                       snap->version, snap->count(k8s::Kind::Service),
                       snap->count(k8s::Kind::EndpointSlice), snap->count(k8s::Kind::Ingress),
                       snap->count(k8s::Kind::Secret), stats.files, stats.decodeErrors);
  }

  std::unique_ptr<kdp::ingress::StatusWriter> statusWriter;
  auto stopAll = [&] {
    if (statusWriter) {
      statusWriter->stop();
    }
    for (auto it = components.rbegin(); it != components.rend(); ++it) {
      (*it)->stop();
    }
    if (server) {
      server->stop();
    }
    source->stop();
  };
  for (auto& component : components) {
    try {
      component->start(store);
    } catch (const std::runtime_error& e) {
      stopAll();
      return failWith(std::string(component->name()) + ": " + e.what(), kExitFailure);
    }
  }

  if (auto writerOptions = ingressStatusWriterOptions(options, apiConfig)) {
    statusWriter = std::make_unique<kdp::ingress::StatusWriter>(std::move(*writerOptions));
    statusWriter->start(store);
  }

  const int sig = waitForStopSignal(stopSignals);
  SPDLOG_LOGGER_INFO(log, "stopping signal={}", sig == SIGINT ? "SIGINT" : "SIGTERM");
  stopAll();
  SPDLOG_LOGGER_INFO(log, "stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    // First of all, so that a stop signal arriving during startup is taken by
    // waitForStopSignal() (a clean stop) instead of killing the process; every thread inherits it.
    const sigset_t stopSignals = blockStopSignals();
    auto parsed = kdp::app::parseCommandLine(argc, argv);
    if (auto* exit = std::get_if<kdp::app::CliExit>(&parsed)) {
      std::fputs(exit->out.c_str(), stdout);
      std::fputs(exit->err.c_str(), stderr);
      return exit->code;
    }
    const auto& options = std::get<Options>(parsed);
    if (options.command == Command::Dns || options.command == Command::Run) {
      // glibc's static defaults, fixed: it otherwise raises both thresholds as large blocks are
      // freed (the manifests load's file and parser buffers, the dns zone compile's scratch). A
      // raised mmap threshold puts those buffers in the heap, where they leave holes among the
      // long-lived objects; a raised trim threshold keeps the freed top of a thread's arena
      // resident (malloc_trim never trims it). Together ≈ 6 MB of a 10,000-Service dns at rest.
      // Only where dns runs: proxy and ingress alone keep the allocator as they were measured.
      mallopt(M_MMAP_THRESHOLD, 128 * 1024);
      mallopt(M_TRIM_THRESHOLD, 128 * 1024);
    }
    kdp::setupLogging(options.logLevel, options.logFormat);
    // A peer closing a socket must not kill the process; writes report EPIPE instead.
    std::signal(SIGPIPE, SIG_IGN);
    return runMain(options, stopSignals);
  } catch (const std::exception& e) {
    return failWith(e.what(), kExitFailure);
  } catch (...) {
    return failWith("unexpected error", kExitFailure);
  }
}
