#pragma once
// The dns component as main runs it (common/component.h).

#include <memory>

#include "common/component.h"
#include "dns/options.h"

namespace kdp::dns {

/// The cluster DNS server for `options`: answers the cluster zone compiled from the store, and
/// forwards other names to --upstream (default: the nameservers of /etc/resolv.conf) through a
/// cache. Throws std::runtime_error for options it refuses. Main thread.
std::unique_ptr<Component> makeComponent(const DnsOptions& options);

}  // namespace kdp::dns
