#pragma once
// The proxy's startup options (command line flags).
// Parsed and validated by app/cli.cpp; plain values.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/host_port.h"
#include "common/ip.h"

namespace kdp::proxy {

/// What the proxy does: keep syncing, print the ruleset, sync once, delete its tables, or say
/// what a new connection would meet (`proxy explain`).
enum class ProxyMode : std::uint8_t { Sync, DryRun, Once, Cleanup, Explain };

/// `proxy explain --src IP --dst IP:PORT [--proto tcp|udp|sctp]`.
struct ExplainOptions {
  IpAddr src;
  IpAddr dst;
  std::uint16_t port = 0;
  std::uint8_t proto = 6;  // IPPROTO_TCP
};

struct ProxyOptions {
  std::string nodeName;                 // --node-name (required by `proxy` unless --cleanup)
  std::vector<IpAddr> nodeIPs;          // --node-ip IP[,IP6]: at most one per family
  std::vector<Cidr> clusterCIDRs;       // --cluster-cidr CIDR[,CIDR6]: at most one per family
  std::vector<Cidr> serviceCIDRs;       // --service-cidr CIDR[,CIDR6]: at most one per family
  std::vector<Cidr> nodePortAddresses;  // --nodeport-addresses CIDR,...: empty = all addresses
  bool masqueradeAll = false;           // --masquerade-all
  std::optional<HostPort> healthz;      // --healthz ADDR:PORT: kube-proxy's /healthz and /livez
  ProxyMode mode = ProxyMode::Sync;     // --dry-run | --once | --cleanup | explain
  ExplainOptions explain;               // mode Explain
};

}  // namespace kdp::proxy
