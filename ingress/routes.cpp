#include "ingress/routes.h"

#include <algorithm>
#include <map>
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
                                           const k8s::IngressBackend& b, Balance balance) {
  auto out = std::make_shared<Backend>();
  out->balance = balance;
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
  out->endpointNames.reserve(out->endpoints.size());
  for (const auto& ep : out->endpoints) {
    out->endpointNames.push_back(ep.str());
  }
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
    if (const VirtualHost* vh = t.exact.get(host)) {
      return vh;
    }
    if (auto dot = host.find('.'); dot != std::string_view::npos && dot > 0) {
      if (const VirtualHost* vh = t.wildcard.get(host.substr(dot + 1))) {
        return vh;
      }
    }
  }
  return t.anyHost.get();
}

// Age order of Ingresses: creationTimestamp (RFC 3339 UTC, so text order is time order; "" —
// a manifests directory — sorts first), then namespace, then name.
using AgeKey = std::tuple<std::string, std::string, std::string>;

AgeKey ageOf(const k8s::Ingress& ing) {
  return {ing.meta.creationTimestamp, ing.meta.namespace_, ing.meta.name};
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

// What the compiler remembers of one Ingress of ours, to undo its part on a change.
struct IngressInfo {
  std::shared_ptr<const k8s::Ingress> object;
  std::vector<std::string> hosts;     // its rules' hosts, lowercase, unique ("" = no host)
  std::vector<std::string> services;  // namespace/name of every Service it names, unique
};

struct RouteCompiler::State {
  CompileOptions options;
  bool compiled = false;
  std::map<AgeKey, IngressInfo> ours;                     // oldest first
  std::map<std::string, std::set<AgeKey>> hostUsers;      // rule host → Ingresses
  std::map<std::string, std::set<AgeKey>> serviceUsers;   // namespace/name → Ingresses
  std::set<AgeKey> withDefault;                           // Ingresses with spec.defaultBackend
  std::set<AgeKey> withTls;                               // Ingresses with spec.tls
  std::map<std::string, AgeKey, std::less<>> byKey;       // store key → age key
  // The table being built: persistent maps, shared with the tables already published.
  k8s::ObjectMap<VirtualHost> exact, wildcard;
  std::shared_ptr<const VirtualHost> anyHost;
  std::shared_ptr<const Backend> defaultBackend;
  std::shared_ptr<const TlsBindings> tls = std::make_shared<const TlsBindings>();
  std::shared_ptr<const TlsSecrets> secrets = std::make_shared<const TlsSecrets>();

  void clear() {
    State fresh;
    fresh.options = options;
    *this = std::move(fresh);
  }

  void add(const std::string& key, std::shared_ptr<const k8s::Ingress> ing,
           std::set<std::string>& dirtyHosts, bool& dirtyDefault, bool& dirtyTls) {
    const AgeKey age = ageOf(*ing);
    IngressInfo info;
    info.object = std::move(ing);
    const k8s::Ingress& in = *info.object;
    std::set<std::string> hosts, services;
    for (const auto& rule : in.rules) {
      hosts.insert(asciiLower(rule.host));
      for (const auto& p : rule.paths) {
        if (!p.backend.isResource) {
          services.insert(in.meta.namespace_ + "/" + p.backend.serviceName);
        }
      }
    }
    if (in.defaultBackend && !in.defaultBackend->isResource) {
      services.insert(in.meta.namespace_ + "/" + in.defaultBackend->serviceName);
    }
    info.hosts.assign(hosts.begin(), hosts.end());
    info.services.assign(services.begin(), services.end());
    for (const auto& h : info.hosts) {
      hostUsers[h].insert(age);
      dirtyHosts.insert(h);
    }
    for (const auto& svc : info.services) {
      serviceUsers[svc].insert(age);
    }
    if (in.defaultBackend) {
      withDefault.insert(age);
      dirtyDefault = true;
    }
    if (!in.tls.empty()) {
      withTls.insert(age);
      dirtyTls = true;
    }
    byKey.emplace(key, age);
    ours.emplace(age, std::move(info));
  }

  void remove(const std::string& key, std::set<std::string>& dirtyHosts, bool& dirtyDefault,
              bool& dirtyTls) {
    auto k = byKey.find(key);
    if (k == byKey.end()) {
      return;
    }
    const AgeKey age = k->second;
    byKey.erase(k);
    auto it = ours.find(age);
    const IngressInfo& info = it->second;
    for (const auto& h : info.hosts) {
      eraseUser(hostUsers, h, age);
      dirtyHosts.insert(h);
    }
    for (const auto& svc : info.services) {
      eraseUser(serviceUsers, svc, age);
    }
    dirtyDefault |= withDefault.erase(age) != 0;
    dirtyTls |= withTls.erase(age) != 0;
    ours.erase(it);
  }

  static void eraseUser(std::map<std::string, std::set<AgeKey>>& index, const std::string& key,
                        const AgeKey& age) {
    auto it = index.find(key);
    if (it != index.end()) {
      it->second.erase(age);
      if (it->second.empty()) {
        index.erase(it);
      }
    }
  }

  // The routes of one rule host from every Ingress that has rules for it, oldest first: on a
  // conflict (same path and type) the older Ingress's route stays.
  void rebuildHost(const k8s::Snapshot& snap, const std::string& host) {
    std::shared_ptr<VirtualHost> vh;
    if (auto users = hostUsers.find(host); users != hostUsers.end()) {
      vh = std::make_shared<VirtualHost>();
      for (const AgeKey& age : users->second) {
        const k8s::Ingress& ing = *ours.at(age).object;
        const bool redirect = sslRedirectEnabled(ing);
        bool hostHasTls = false;
        for (const auto& t : ing.tls) {
          for (const auto& h : t.hosts) {
            hostHasTls |= !host.empty() && asciiLower(h) == host;
          }
        }
        for (const auto& rule : ing.rules) {
          if (asciiLower(rule.host) != host) {
            continue;
          }
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
            r.backend = makeBackend(snap, ing, p.backend, options.balance);
            vh->routes.push_back(std::move(r));
          }
        }
      }
      sortRoutes(*vh);
    }
    if (host.empty()) {
      anyHost = std::move(vh);
    } else if (host.starts_with("*.")) {
      vh ? (void)wildcard.set(host.substr(2), std::move(vh)) : (void)wildcard.erase(host.substr(2));
    } else {
      vh ? (void)exact.set(host, std::move(vh)) : (void)exact.erase(host);
    }
  }

  // spec.defaultBackend of the oldest Ingress that has one.
  void rebuildDefault(const k8s::Snapshot& snap) {
    defaultBackend.reset();
    if (!withDefault.empty()) {
      const k8s::Ingress& ing = *ours.at(*withDefault.begin()).object;
      defaultBackend = makeBackend(snap, ing, *ing.defaultBackend, options.balance);
    }
  }

  // Host → Secret: the oldest Ingress that lists the host with a secretName wins.
  void rebuildTls(const k8s::Snapshot& snap) {
    auto bindings = std::make_shared<TlsBindings>();
    auto bound = std::make_shared<TlsSecrets>();
    std::set<std::string> seen;
    for (const AgeKey& age : withTls) {
      const k8s::Ingress& ing = *ours.at(age).object;
      for (const auto& t : ing.tls) {
        for (const auto& h : t.hosts) {
          std::string host = asciiLower(h);
          if (t.secretName.empty() || !seen.insert(host).second) {
            continue;
          }
          std::string key = ing.meta.namespace_ + "/" + t.secretName;
          if (auto s = snap.of<k8s::Secret>().find(key); s && s->type == k8s::kTlsSecretType) {
            bound->emplace(key, s);
          }
          bindings->push_back(TlsBinding{std::move(host), std::move(key)});
        }
      }
    }
    std::stable_sort(bindings->begin(), bindings->end(),
                     [](const TlsBinding& a, const TlsBinding& b) { return a.host < b.host; });
    tls = std::move(bindings);
    secrets = std::move(bound);
  }

  bool secretBound(std::string_view key) const {
    return std::any_of(tls->begin(), tls->end(),
                       [&](const TlsBinding& b) { return b.secret == key; });
  }
};

RouteCompiler::RouteCompiler(CompileOptions options) : state_(std::make_unique<State>()) {
  state_->options = std::move(options);
}

RouteCompiler::~RouteCompiler() = default;

RouteCompiler::Result RouteCompiler::update(const k8s::Snapshot& snap,
                                            const k8s::Changes* changes) {
  State& st = *state_;
  Result result;
  std::set<std::string> dirtyHosts;
  bool dirtyDefault = false;
  bool dirtyTls = false;
  const bool full =
      !st.compiled || changes == nullptr || !changes->of(k8s::Kind::IngressClass).empty();
  auto consider = [&](const std::string& key, std::shared_ptr<const k8s::Ingress> ing) {
    if (ing && !ing->meta.deleting && isOurs(*ing, snap, st.options.ingressClass)) {
      st.add(key, std::move(ing), dirtyHosts, dirtyDefault, dirtyTls);
    }
  };
  if (full) {
    st.clear();
    for (const auto& e : snap.of<k8s::Ingress>()) {
      consider(e.key, e.value);
    }
    for (const auto& [host, _] : st.hostUsers) {
      dirtyHosts.insert(host);
    }
    dirtyDefault = dirtyTls = true;
    result.full = true;
  } else {
    for (const auto& key : changes->of(k8s::Kind::Ingress)) {
      st.remove(key, dirtyHosts, dirtyDefault, dirtyTls);
      consider(key, snap.of<k8s::Ingress>().find(key));
    }
    // A Service or its EndpointSlices changed: the hosts whose routes name it.
    auto touchService = [&](std::string_view svc) {
      auto users = st.serviceUsers.find(std::string(svc));
      if (users == st.serviceUsers.end()) {
        return;
      }
      for (const AgeKey& age : users->second) {
        for (const auto& h : st.ours.at(age).hosts) {
          dirtyHosts.insert(h);
        }
        dirtyDefault |= st.withDefault.count(age) != 0;
      }
    };
    for (const auto& key : changes->of(k8s::Kind::Service)) {
      touchService(key);
    }
    for (const auto& key : changes->of(k8s::Kind::EndpointSlice)) {
      // "namespace/service/slice": the Service is everything before the last '/'.
      const auto slash = key.rfind('/');
      if (slash != std::string::npos) {
        touchService(std::string_view(key).substr(0, slash));
      }
    }
    for (const auto& key : changes->of(k8s::Kind::Secret)) {
      dirtyTls |= st.secretBound(key);
    }
  }
  for (const auto& host : dirtyHosts) {
    st.rebuildHost(snap, host);
  }
  if (dirtyDefault) {
    st.rebuildDefault(snap);
  }
  if (dirtyTls) {
    const auto before = st.tls;
    const auto secretsBefore = st.secrets;
    st.rebuildTls(snap);
    result.tlsChanged = *before != *st.tls || *secretsBefore != *st.secrets || full;
  }
  st.compiled = true;

  auto table = std::make_shared<RouteTable>();
  table->version = snap.version;
  table->exact = st.exact;
  table->wildcard = st.wildcard;
  table->anyHost = st.anyHost;
  table->defaultBackend = st.defaultBackend;
  table->tls = st.tls;
  table->secrets = st.secrets;
  table->ingresses = st.ours.size();
  result.table = std::move(table);
  result.hostsRebuilt = dirtyHosts.size();
  return result;
}

std::shared_ptr<const RouteTable> compileRoutes(const k8s::Snapshot& snap,
                                                const CompileOptions& options) {
  RouteCompiler compiler(options);
  return compiler.update(snap, nullptr).table;
}

}  // namespace kdp::ingress
