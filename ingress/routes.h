#pragma once
// The ingress route table: a pure compiler from a store snapshot to an immutable RouteTable, and
// the lookup the proxy runs per request. No I/O, no clocks, no Boost.
//
// Semantics (networking.k8s.io/v1 Ingress):
//  - IngressClass: an Ingress is ours when the legacy annotation kubernetes.io/ingress.class, else
//    spec.ingressClassName, names our class; an Ingress with neither is ours when our
//    IngressClass object carries ingressclass.kubernetes.io/is-default-class: "true".
//  - Hosts: exact, then wildcard ("*.foo.com" matches exactly one label more), then the rules
//    without a host. The first of those that exists is the virtual host; no fall-through.
//  - Paths: Exact (byte equality), Prefix (element-wise on '/', trailing slashes ignored),
//    ImplementationSpecific (as Prefix; "" is "/"). Longest path first; at equal length Exact
//    before Prefix.
//  - Rules of several Ingresses for one host are merged; on a conflict (same path and type) the
//    oldest Ingress wins (creationTimestamp, then namespace/name: a manifests directory has no
//    creation times).
//  - spec.defaultBackend (of the oldest Ingress that has one) serves requests no path matched.
//  - Backends: Service port by number or name, endpoints from the Service's EndpointSlices:
//    ready ones, else serving ones (terminating but still serving).
//  - TLS: spec.tls hosts map to their Secret (namespace/name); HTTP requests to a host that one
//    of its Ingresses lists under spec.tls are redirected to HTTPS unless the Ingress says
//    "kube-dataplane.io/ssl-redirect: false" (nginx.ingress.kubernetes.io/ssl-redirect also read).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/host_port.h"
#include "ingress/options.h"
#include "k8s/object_map.h"
#include "k8s/objects.h"

namespace kdp::k8s {
struct Snapshot;
struct Changes;
}

namespace kdp::ingress {

inline constexpr std::string_view kDefaultController = "kube-dataplane.io/ingress";
inline constexpr std::string_view kSslRedirectAnnotation = "kube-dataplane.io/ssl-redirect";
inline constexpr std::string_view kNginxSslRedirectAnnotation =
    "nginx.ingress.kubernetes.io/ssl-redirect";
/// Per-Ingress upstream timeouts in whole seconds (ingress-nginx's annotations are read too).
inline constexpr std::string_view kConnectTimeoutAnnotation = "kube-dataplane.io/proxy-connect-timeout";
inline constexpr std::string_view kReadTimeoutAnnotation = "kube-dataplane.io/proxy-read-timeout";
inline constexpr std::string_view kNginxConnectTimeoutAnnotation =
    "nginx.ingress.kubernetes.io/proxy-connect-timeout";
inline constexpr std::string_view kNginxReadTimeoutAnnotation =
    "nginx.ingress.kubernetes.io/proxy-read-timeout";

/// Balance (ingress/options.h) per Ingress: annotation kube-dataplane.io/load-balance (or
/// ingress-nginx's nginx.ingress.kubernetes.io/load-balance) "round_robin" | "least_request";
/// without one, CompileOptions::balance.
inline constexpr std::string_view kLoadBalanceAnnotation = "kube-dataplane.io/load-balance";
inline constexpr std::string_view kNginxLoadBalanceAnnotation =
    "nginx.ingress.kubernetes.io/load-balance";

/// One Service port an Ingress path names, resolved to endpoint addresses.
struct Backend {
  std::string namespace_;
  std::string service;
  std::string port;     // as written: a number or a name (metrics, logs)
  std::string ingress;  // namespace/name of the Ingress that names it (metrics, logs)
  std::vector<HostPort> endpoints;  // deduplicated, sorted; empty: 503
  std::vector<std::string> endpointNames;  // endpoints[i].str(), made once (pool keys, logs)
  std::chrono::seconds connectTimeout{0};  // 0: the server's default
  std::chrono::seconds readTimeout{0};     // upstream response header; 0: the server's default
  Balance balance = Balance::RoundRobin;

  /// Round-robin position shared by every worker thread. Any thread.
  std::uint64_t nextIndex() const { return next_.fetch_add(1, std::memory_order_relaxed); }

  /// The endpoint index for a new request (endpoints must not be empty). Any thread.
  std::size_t pick() const;
  /// Requests in flight to endpoint i (least_request): the proxy calls started() when it sends
  /// a request there and finished() when the response is done or failed. Any thread.
  void started(std::size_t i) const;
  void finished(std::size_t i) const;
  std::uint32_t inFlight(std::size_t i) const;

 private:
  mutable std::atomic<std::uint64_t> next_{0};
  // One counter per endpoint, made on first use (the table is immutable otherwise).
  mutable std::once_flag inflightOnce_;
  mutable std::unique_ptr<std::atomic<std::uint32_t>[]> inflight_;
  std::atomic<std::uint32_t>* counters() const;
};

struct Route {
  std::string path;  // as written ("" for ImplementationSpecific is kept as "")
  k8s::PathType pathType = k8s::PathType::Prefix;
  std::shared_ptr<const Backend> backend;
  bool sslRedirect = false;  // plain-HTTP requests get a 308 to https
};

/// The routes of one host (exact, wildcard, or the no-host rules), in precedence order.
struct VirtualHost {
  std::vector<Route> routes;
};

struct Match {
  const Route* route = nullptr;      // null when the default backend (or nothing) matched
  const Backend* backend = nullptr;  // null: no route and no default backend (404)
  bool sslRedirect = false;
};

/// Host name → Secret (namespace/name) from spec.tls. Hosts lowercase; "*.x" kept as written.
struct TlsBinding {
  std::string host;
  std::string secret;  // namespace/name
  bool operator==(const TlsBinding&) const = default;
};

using TlsBindings = std::vector<TlsBinding>;
using TlsSecrets = std::map<std::string, std::shared_ptr<const k8s::Secret>, std::less<>>;

/// Immutable once published. The host maps are persistent (k8s::ObjectMap): a table made from
/// the previous one by RouteCompiler shares every virtual host that did not change.
struct RouteTable {
  k8s::ObjectMap<VirtualHost> exact;     // "foo.com"
  k8s::ObjectMap<VirtualHost> wildcard;  // "*.foo.com" stored as "foo.com"
  std::shared_ptr<const VirtualHost> anyHost;  // rules without a host; null: none
  std::shared_ptr<const Backend> defaultBackend;
  /// Sorted by host; first (oldest Ingress) wins per host. Never null.
  std::shared_ptr<const TlsBindings> tls = std::make_shared<const TlsBindings>();
  /// The kubernetes.io/tls Secrets that `tls` names, by namespace/name. Never null.
  std::shared_ptr<const TlsSecrets> secrets = std::make_shared<const TlsSecrets>();
  std::size_t ingresses = 0;  // Ingresses of our class that went into the table
  std::uint64_t version = 0;  // of the snapshot it was compiled from

  /// The route for `host` (lowercase, no port) and `path` (no query). Any thread.
  Match match(std::string_view host, std::string_view path) const;
};

struct CompileOptions {
  std::string ingressClass = "kube-dataplane";
  Balance balance = Balance::RoundRobin;  // for Ingresses without a load-balance annotation
};

/// Compiles every Ingress of our class in `snapshot` from scratch. Pure; any thread.
std::shared_ptr<const RouteTable> compileRoutes(const k8s::Snapshot& snapshot,
                                                const CompileOptions& options);

/// The route compiler that keeps its indexes between store updates, so that a change costs work
/// proportional to what it touches: the virtual hosts of a changed Ingress (before and after),
/// the hosts whose routes name a changed Service or EndpointSlice, the default backend when an
/// Ingress with one changed, and the TLS bindings when an Ingress with spec.tls or a bound Secret
/// changed. An IngressClass change recompiles everything (it can change which Ingresses are
/// ours). The result equals compileRoutes() of the same snapshot. One thread at a time.
class RouteCompiler {
 public:
  explicit RouteCompiler(CompileOptions options);
  ~RouteCompiler();
  RouteCompiler(const RouteCompiler&) = delete;
  RouteCompiler& operator=(const RouteCompiler&) = delete;

  struct Result {
    std::shared_ptr<const RouteTable> table;
    bool full = false;          // compiled from scratch
    bool tlsChanged = false;    // tls or secrets differ from the previous table's
    std::size_t hostsRebuilt = 0;
  };

  /// From scratch (the first call, or `changes` null), else the previous table updated by
  /// `changes` (the keys that differ between the previous snapshot given and `snapshot`).
  Result update(const k8s::Snapshot& snapshot, const k8s::Changes* changes);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// True when `ingress` is served by our class (see above).
bool isOurs(const k8s::Ingress& ingress, const k8s::Snapshot& snapshot,
            std::string_view ingressClass);

/// Path matching on its own (exposed for tests): does `rulePath` of `type` match `requestPath`?
bool pathMatches(k8s::PathType type, std::string_view rulePath, std::string_view requestPath);

/// Host matching on its own: "foo.com" vs "foo.com", "*.foo.com" vs "bar.foo.com".
bool hostMatches(std::string_view ruleHost, std::string_view requestHost);

/// Lowercases and strips the port from a Host header value ("Foo.COM:8080" → "foo.com",
/// "[::1]:80" → "[::1]").
std::string normalizeHost(std::string_view hostHeader);

}  // namespace kdp::ingress
