#include "proxy/flow_cleaner.h"

#include <pthread.h>

#include "common/logging.h"
#include "common/metrics.h"
#include "nft/conntrack.h"

namespace kdp::proxy {

struct FlowCleaner::Io {
  nft::Conntrack conntrack;
  UdpDestinations cleaned;  // the destinations the conntrack table was last cleaned for
};

FlowCleaner::FlowCleaner(metrics::Counter& deleted)
    : io_(std::make_unique<Io>()), deleted_(deleted), thread_([this] { run(); }) {}

FlowCleaner::~FlowCleaner() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

void FlowCleaner::applied(UdpDestinations destinations) {
  {
    std::lock_guard lock(mu_);
    pending_ = std::move(destinations);
  }
  cv_.notify_one();
}

void FlowCleaner::run() {
  ::pthread_setname_np(::pthread_self(), "kdp/proxy-flows");
  auto log = logger("proxy");
  for (;;) {
    UdpDestinations now;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || pending_.has_value(); });
      if (stopping_) {
        return;
      }
      now = std::move(*pending_);
      pending_.reset();
    }
    if (now == io_->cleaned) {
      continue;  // no UDP destination or endpoint changed: no entry can have become stale
    }
    bool ok = true;
    for (IpFamily family : {IpFamily::V4, IpFamily::V6}) {
      auto entries = io_->conntrack.list(family, kProtoUdp);
      if (!entries) {
        ok = false;
        KDP_LOG_RATE_LIMITED(log, spdlog::level::warn, 1, "conntrack list failed err={}",
                             entries.error().message);
        continue;
      }
      const auto stale = staleUdpEntries(*entries, io_->cleaned, now);
      if (stale.empty()) {
        continue;
      }
      auto n = io_->conntrack.erase(stale);
      if (!n) {
        ok = false;
        KDP_LOG_RATE_LIMITED(log, spdlog::level::warn, 1, "conntrack delete failed err={}",
                             n.error().message);
        continue;
      }
      deleted_.inc(*n);
      SPDLOG_LOGGER_INFO(log, "deleted stale UDP conntrack entries family={} entries={}",
                         family == IpFamily::V4 ? "ipv4" : "ipv6", *n);
    }
    if (ok) {
      io_->cleaned = std::move(now);  // on failure the next ruleset retries
    }
  }
}

}  // namespace kdp::proxy
