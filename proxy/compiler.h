#pragma once
// Services + EndpointSlices → the desired nftables state (proxy/ruleset.h). Pure: no netlink,
// no clock, no randomness; the same snapshot and options give the same Ruleset.
//
// The Kubernetes semantics live here (kube-proxy's nftables mode is the reference):
//  - a destination is a (ClusterIP | NodePort address | LB ingress IP | externalIP, proto, port);
//    ClusterIPs use the internal traffic policy, the others the external one;
//  - endpoints: Ready ones, else serving+terminating ones; topology hints for the node's zone when
//    every endpoint has hints and one names the zone (policy Cluster only); policy Local keeps
//    this node's endpoints;
//  - a destination without endpoints is rejected (ICMP port unreachable), or dropped when policy
//    Local leaves none here while other nodes have some;
//  - masquerade: ClusterIP traffic from outside --cluster-cidr, external traffic under policy
//    Cluster, everything with --masquerade-all, and hairpin traffic.

#include <string>
#include <vector>

#include "common/ip.h"
#include "proxy/options.h"
#include "proxy/ruleset.h"

namespace kdp::k8s {
struct Snapshot;
}

namespace kdp::proxy {

/// What the compiler needs to know about the node it programs.
struct NodeInfo {
  std::string name;
  std::string zone;                   // Node label topology.kubernetes.io/zone; "" when unknown
  std::vector<IpAddr> nodeIps;        // --node-ip
  std::vector<IpAddr> nodePortIps;    // addresses NodePorts answer on
  std::vector<Cidr> clusterCidrs;     // --cluster-cidr
  std::vector<Cidr> serviceCidrs;     // --service-cidr: traffic to unallocated ClusterIPs drops
  bool masqueradeAll = false;

  bool operator==(const NodeInfo&) const = default;
};

/// The node as the options and the snapshot describe it: zone from the Node object named
/// --node-name; NodePort addresses are the node IPs (and `localAddresses`, the addresses the
/// node's interfaces hold) inside --nodeport-addresses, or the node IPs when that flag is empty;
/// never loopback.
NodeInfo makeNodeInfo(const k8s::Snapshot& snapshot, const ProxyOptions& options,
                      const std::vector<IpAddr>& localAddresses = {});

/// The whole desired state for `node`. One table per family of the node's IPs. Any thread.
Ruleset compile(const k8s::Snapshot& snapshot, const NodeInfo& node);

}  // namespace kdp::proxy
