#pragma once
// The proxy's startup options (command line flags).
// Parsed and validated by app/cli.cpp; plain values.

#include <cstdint>
#include <string>
#include <vector>

#include "common/ip.h"

namespace kdp::proxy {

/// What the proxy does: keep syncing, print the ruleset, sync once, or delete its tables.
enum class ProxyMode : std::uint8_t { Sync, DryRun, Once, Cleanup };

struct ProxyOptions {
  std::string nodeName;                 // --node-name (required by `proxy` unless --cleanup)
  std::vector<IpAddr> nodeIPs;          // --node-ip IP[,IP6]: at most one per family
  std::vector<Cidr> clusterCIDRs;       // --cluster-cidr CIDR[,CIDR6]: at most one per family
  std::vector<Cidr> serviceCIDRs;       // --service-cidr CIDR[,CIDR6]: at most one per family
  std::vector<Cidr> nodePortAddresses;  // --nodeport-addresses CIDR,...: empty = all addresses
  bool masqueradeAll = false;           // --masquerade-all
  ProxyMode mode = ProxyMode::Sync;     // --dry-run | --once | --cleanup
};

}  // namespace kdp::proxy
