#pragma once
// A human summary of a store snapshot, for `kube-dataplane run --dry-run`: what was loaded.

#include <string>

#include "k8s/store.h"

namespace kdp::app {

/// Counts per kind, then one line per object (EndpointSlices summed up per Service, Ingress
/// rules and TLS one per line below their Ingress). Secret data is never printed, only its type
/// and keys. Pure; output ends with a newline. Example lines:
///
///   Service default/web ClusterIP 10.96.0.10 ports=http:80/TCP->8080,https:443/TCP->https endpoints=3/3 ready
///   EndpointSlices default/web slices=1 endpoints=3 ready=3 addressType=IPv4 ports=http:8080/TCP
///   Ingress default/web class=kube-dataplane
///     example.com/api Prefix -> api:http
std::string summarize(const k8s::Snapshot& snapshot);

}  // namespace kdp::app
