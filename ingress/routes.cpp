#include "ingress/routes.h"

#include <algorithm>
#include <set>
#include <tuple>

#include "common/ascii.h"
#include "k8s/store.h"

namespace kdp::ingress {

namespace {

// "/foo/" → "/foo"; "/" → "" (matches everything).
std::string_view trimSlashes(std::string_view p) {
  while (!p.empty() && p.back() == '/') {
    p.remove_suffix(1);
  }
  return p;
}

bool sslRedirectEnabled(const k8s::Ingress& ing) {
  for (auto key : {kSslRedirectAnnotation, kNginxSslRedirectAnnotation}) {
    auto it = ing.meta.annotations.find(key);
    if (it != ing.meta.annotations.end() && asciiLower(it->second) == "false") {
      return false;
    }
  }
  return true;
}

// A whole number of seconds, 1 to 3600, from the first annotation present; 0 otherwise.
std::chrono::seconds secondsAnnotation(const k8s::Ingress& ing,
                                       std::initializer_list<std::string_view> keys) {
  for (auto key : keys) {
    auto it = ing.meta.annotations.find(key);
    if (it == ing.meta.annotations.end()) {
      continue;
    }
    const std::string& v = it->second;
    if (v.empty() || v.size() > 4 || v.find_first_not_of("0123456789") != std::string::npos) {
      return std::chrono::seconds(0);
    }
    const int n = std::stoi(v);
    return std::chrono::seconds(n >= 1 && n <= 3600 ? n : 0);
  }
  return std::chrono::seconds(0);
}

std::string portText(const k8s::PortRef& ref) {
  return ref.isName() ? ref.name : std::to_string(ref.number);
}

// The endpoints of Service ns/name's port `ref`: ready, else serving.
std::vector<HostPort> resolveEndpoints(const k8s::Snapshot& snap, const std::string& ns,
                                       const std::string& name, const k8s::PortRef& ref) {
  const k8s::Service* svc = snap.service(ns, name);
  if (svc == nullptr || svc->type == k8s::ServiceType::ExternalName) {
    return {};
  }
  const k8s::ServicePort* port = nullptr;
  for (const auto& p : svc->ports) {
    if (ref.isName() ? p.name == ref.name : p.port == ref.number) {
      port = &p;
      break;
    }
  }
  if (port == nullptr || port->protocol != k8s::Protocol::TCP) {
    return {};
  }
  std::set<std::tuple<IpFamily, std::string, std::uint16_t>> seen;
  std::vector<HostPort> ready, serving;
  snap.forEachSliceOf(ns, name, [&](const k8s::EndpointSlice& slice) {
    if (slice.addressType == k8s::AddressType::FQDN) {
      return;
    }
    const auto number = k8s::targetPortIn(slice, port->name, k8s::Protocol::TCP);
    if (!number) {
      return;
    }
    for (const auto& ep : slice.endpoints) {
      const bool isReady = ep.conditions.ready;
      const bool isServing = ep.conditions.serving;
      if (!isReady && !isServing) {
        continue;
      }
      for (const auto& addr : ep.addresses) {
        HostPort hp{addr, *number};
        if (!seen.emplace(addr.family(), addr.str(), hp.port).second) {
          continue;
        }
        (isReady ? ready : serving).push_back(hp);
      }
    }
  });
  auto& chosen = ready.empty() ? serving : ready;
  std::sort(chosen.begin(), chosen.end(), [](const HostPort& a, const HostPort& b) {
    return std::make_tuple(a.ip.family(), a.ip.str(), a.port) <
           std::make_tuple(b.ip.family(), b.ip.str(), b.port);
  });
  return std::move(chosen);
}

std::shared_ptr<const Backend> makeBackend(const k8s::Snapshot& snap, const k8s::Ingress& ing,
                                           const k8s::IngressBackend& b) {
  auto out = std::make_shared<Backend>();
  out->namespace_ = ing.meta.namespace_;
  out->ingress = ing.meta.namespace_ + "/" + ing.meta.name;
  out->connectTimeout =
      secondsAnnotation(ing, {kConnectTimeoutAnnotation, kNginxConnectTimeoutAnnotation});
  out->readTimeout = secondsAnnotation(ing, {kReadTimeoutAnnotation, kNginxReadTimeoutAnnotation});
  for (auto key : {kLoadBalanceAnnotation, kNginxLoadBalanceAnnotation}) {
    if (auto it = ing.meta.annotations.find(key); it != ing.meta.annotations.end()) {
      out->balance = asciiLower(it->second) == "least_request" ? Balance::LeastRequest
                                                          : Balance::RoundRobin;
      break;
    }
  }
  if (b.isResource) {
    // Resource backends are not ours to serve: a backend without endpoints (503).
    out->service = b.resourceKind + "/" + b.resourceName;
    return out;
  }
  out->service = b.serviceName;
  out->port = portText(b.servicePort);
  out->endpoints = resolveEndpoints(snap, ing.meta.namespace_, b.serviceName, b.servicePort);
  return out;
}

// Precedence: longer path first, Exact before Prefix/ImplementationSpecific at equal length,
// then the order of insertion (oldest Ingress first) — a stable sort keeps it.
void sortRoutes(VirtualHost& vh) {
  std::stable_sort(vh.routes.begin(), vh.routes.end(), [](const Route& a, const Route& b) {
    const auto la = a.pathType == k8s::PathType::Exact ? a.path.size()
                                                       : trimSlashes(a.path).size();
    const auto lb = b.pathType == k8s::PathType::Exact ? b.path.size()
                                                       : trimSlashes(b.path).size();
    if (la != lb) {
      return la > lb;
    }
    const bool ea = a.pathType == k8s::PathType::Exact;
    const bool eb = b.pathType == k8s::PathType::Exact;
    return ea && !eb;
  });
}

// Two routes conflict when they match the same requests: same type class and same path.
bool sameMatch(const Route& a, const Route& b) {
  const bool ea = a.pathType == k8s::PathType::Exact;
  const bool eb = b.pathType == k8s::PathType::Exact;
  if (ea != eb) {
    return false;
  }
  return ea ? a.path == b.path : trimSlashes(a.path) == trimSlashes(b.path);
}

const VirtualHost* findHost(const RouteTable& t, std::string_view host) {
  if (!host.empty()) {
    if (auto it = t.exact.find(std::string(host)); it != t.exact.end()) {
      return &it->second;
    }
    if (auto dot = host.find('.'); dot != std::string_view::npos && dot > 0) {
      if (auto it = t.wildcard.find(std::string(host.substr(dot + 1))); it != t.wildcard.end()) {
        return &it->second;
      }
    }
  }
  return t.anyHost ? &*t.anyHost : nullptr;
}

}  // namespace

std::atomic<std::uint32_t>* Backend::counters() const {
  std::call_once(inflightOnce_, [this] {
    inflight_ = std::make_unique<std::atomic<std::uint32_t>[]>(endpoints.size());
  });
  return inflight_.get();
}

std::size_t Backend::pick() const {
  const std::size_t n = endpoints.size();
  const std::uint64_t rr = nextIndex();
  if (balance == Balance::RoundRobin || n <= 1) {
    return static_cast<std::size_t>(rr % n);
  }
  // Fewest in flight; the scan starts at the round-robin position so that ties rotate.
  const auto* c = counters();
  std::size_t best = static_cast<std::size_t>(rr % n);
  std::uint32_t bestLoad = c[best].load(std::memory_order_relaxed);
  for (std::size_t k = 1; k < n && bestLoad != 0; ++k) {
    const std::size_t i = static_cast<std::size_t>((rr + k) % n);
    const std::uint32_t load = c[i].load(std::memory_order_relaxed);
    if (load < bestLoad) {
      best = i;
      bestLoad = load;
    }
  }
  return best;
}

void Backend::started(std::size_t i) const {
  if (balance == Balance::LeastRequest && i < endpoints.size()) {
    counters()[i].fetch_add(1, std::memory_order_relaxed);
  }
}

void Backend::finished(std::size_t i) const {
  if (balance == Balance::LeastRequest && i < endpoints.size()) {
    counters()[i].fetch_sub(1, std::memory_order_relaxed);
  }
}

std::uint32_t Backend::inFlight(std::size_t i) const {
  return balance == Balance::LeastRequest && i < endpoints.size()
             ? counters()[i].load(std::memory_order_relaxed)
             : 0;
}

bool pathMatches(k8s::PathType type, std::string_view rulePath, std::string_view requestPath) {
  if (type == k8s::PathType::Exact) {
    return rulePath == requestPath;
  }
  const std::string_view p = trimSlashes(rulePath);
  if (p.empty()) {
    return true;  // "/" (or "" for ImplementationSpecific) matches every path
  }
  if (!requestPath.starts_with(p)) {
    return false;
  }
  return requestPath.size() == p.size() || requestPath[p.size()] == '/';
}

bool hostMatches(std::string_view ruleHost, std::string_view requestHost) {
  if (ruleHost.empty()) {
    return true;
  }
  if (ruleHost.starts_with("*.")) {
    const auto dot = requestHost.find('.');
    return dot != std::string_view::npos && dot > 0 &&
           requestHost.substr(dot + 1) == ruleHost.substr(2);
  }
  return ruleHost == requestHost;
}

std::string normalizeHost(std::string_view h) {
  if (!h.empty() && h.front() == '[') {
    const auto close = h.find(']');
    return asciiLower(close == std::string_view::npos ? h : h.substr(0, close + 1));
  }
  if (const auto colon = h.rfind(':'); colon != std::string_view::npos) {
    h = h.substr(0, colon);
  }
  while (!h.empty() && h.back() == '.') {
    h.remove_suffix(1);  // "foo.com." is "foo.com"
  }
  return asciiLower(h);
}

Match RouteTable::match(std::string_view host, std::string_view path) const {
  Match m;
  if (const VirtualHost* vh = findHost(*this, host)) {
    for (const Route& r : vh->routes) {
      if (pathMatches(r.pathType, r.path, path)) {
        m.route = &r;
        m.backend = r.backend.get();
        m.sslRedirect = r.sslRedirect;
        return m;
      }
    }
  }
  m.backend = defaultBackend.get();
  return m;
}

bool isOurs(const k8s::Ingress& ing, const k8s::Snapshot& snap, std::string_view cls) {
  if (auto it = ing.meta.annotations.find(k8s::kIngressClassAnnotation);
      it != ing.meta.annotations.end()) {
    return it->second == cls;
  }
  if (ing.ingressClassName) {
    return *ing.ingressClassName == cls;
  }
  const k8s::IngressClass* ours = snap.of<k8s::IngressClass>().get(std::string(cls));
  return ours != nullptr && ours->isDefault;
}

std::shared_ptr<const RouteTable> compileRoutes(const k8s::Snapshot& snap,
                                                const CompileOptions& options) {
  auto table = std::make_shared<RouteTable>();
  table->version = snap.version;

  // Our Ingresses, oldest first (creationTimestamp is RFC 3339 UTC, so text order is time
  // order; "" — a manifests directory — sorts first and ties go by namespace/name).
  std::vector<const k8s::Ingress*> ours;
  for (const auto& e : snap.of<k8s::Ingress>()) {
    const k8s::Ingress& ing = *e.value;
    if (!ing.meta.deleting && isOurs(ing, snap, options.ingressClass)) {
      ours.push_back(&ing);
    }
  }
  std::stable_sort(ours.begin(), ours.end(), [](const k8s::Ingress* a, const k8s::Ingress* b) {
    return std::tie(a->meta.creationTimestamp, a->meta.namespace_, a->meta.name) <
           std::tie(b->meta.creationTimestamp, b->meta.namespace_, b->meta.name);
  });
  table->ingresses = ours.size();

  std::set<std::string> tlsHostsSeen;
  for (const k8s::Ingress* ing : ours) {
    const bool redirect = sslRedirectEnabled(*ing);
    std::vector<std::string> tlsHosts;
    for (const auto& t : ing->tls) {
      for (const auto& h : t.hosts) {
        const std::string host = asciiLower(h);
        tlsHosts.push_back(host);
        if (t.secretName.empty() || !tlsHostsSeen.insert(host).second) {
          continue;  // the oldest Ingress's Secret wins for a host
        }
        const std::string key = ing->meta.namespace_ + "/" + t.secretName;
        table->tls.push_back(TlsBinding{host, key});
        if (auto s = snap.of<k8s::Secret>().find(key); s && s->type == k8s::kTlsSecretType) {
          table->secrets.emplace(key, s);
        }
      }
    }
    if (ing->defaultBackend && !table->defaultBackend) {
      table->defaultBackend = makeBackend(snap, *ing, *ing->defaultBackend);
    }
    for (const auto& rule : ing->rules) {
      const std::string host = asciiLower(rule.host);
      VirtualHost* vh = nullptr;
      if (host.empty()) {
        if (!table->anyHost) {
          table->anyHost.emplace();
        }
        vh = &*table->anyHost;
      } else if (host.starts_with("*.")) {
        vh = &table->wildcard[host.substr(2)];
      } else {
        vh = &table->exact[host];
      }
      const bool hostHasTls =
          !host.empty() && std::find(tlsHosts.begin(), tlsHosts.end(), host) != tlsHosts.end();
      for (const auto& p : rule.paths) {
        Route r;
        r.path = p.path;
        r.pathType = p.pathType;
        r.sslRedirect = redirect && hostHasTls;
        const bool conflict = std::any_of(vh->routes.begin(), vh->routes.end(),
                                          [&](const Route& o) { return sameMatch(o, r); });
        if (conflict) {
          continue;  // an older Ingress already routes this path
        }
        r.backend = makeBackend(snap, *ing, p.backend);
        vh->routes.push_back(std::move(r));
      }
    }
  }
  for (auto& [_, vh] : table->exact) {
    sortRoutes(vh);
  }
  for (auto& [_, vh] : table->wildcard) {
    sortRoutes(vh);
  }
  if (table->anyHost) {
    sortRoutes(*table->anyHost);
  }
  std::stable_sort(table->tls.begin(), table->tls.end(),
                   [](const TlsBinding& a, const TlsBinding& b) { return a.host < b.host; });
  return table;
}

}  // namespace kdp::ingress
