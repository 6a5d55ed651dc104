#pragma once
// The long-running proxy: subscribes to the store and keeps the kernel's kube-dataplane tables
// equal to the compiled Ruleset, on one thread of its own ("kdp/proxy-sync").

#include <memory>

#include "common/component.h"
#include "proxy/options.h"

namespace kdp::proxy {

/// Builds the proxy component (nothing starts until start()). Main thread.
std::unique_ptr<Component> makeComponent(const ProxyOptions& options);

}  // namespace kdp::proxy
