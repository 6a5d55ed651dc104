// RouteCompiler (incremental) against compileRoutes (from scratch) on random change sequences:
// after every update, both tables must route, redirect and bind certificates identically.
#include <catch2/catch.hpp>

#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "ingress/routes.h"
#include "k8s/store.h"

using namespace kdp;
using namespace kdp::ingress;

namespace {

void describeBackend(std::ostream& out, const Backend* b) {
  if (b == nullptr) {
    out << "-";
    return;
  }
  out << b->ingress << " " << b->namespace_ << "/" << b->service << ":" << b->port << " ct="
      << b->connectTimeout.count() << " rt=" << b->readTimeout.count()
      << " lb=" << static_cast<int>(b->balance) << " [";
  for (std::size_t i = 0; i < b->endpoints.size(); ++i) {
    out << b->endpoints[i].str() << "=" << b->endpointNames[i] << " ";
  }
  out << "]";
}

void describeHost(std::ostream& out, const std::string& name, const VirtualHost& vh) {
  out << "host " << name << "\n";
  for (const Route& r : vh.routes) {
    out << "  " << static_cast<int>(r.pathType) << " '" << r.path << "' redirect=" << r.sslRedirect
        << " ";
    describeBackend(out, r.backend.get());
    out << "\n";
  }
}

// Everything a table decides, as text (hosts in key order).
std::string describe(const RouteTable& t) {
  std::ostringstream out;
  for (const auto& e : t.exact) {
    describeHost(out, e.key, *e.value);
  }
  for (const auto& e : t.wildcard) {
    describeHost(out, "*." + e.key, *e.value);
  }
  if (t.anyHost) {
    describeHost(out, "(any)", *t.anyHost);
  }
  out << "default ";
  describeBackend(out, t.defaultBackend.get());
  out << "\ntls";
  for (const auto& b : *t.tls) {
    out << " " << b.host << "=" << b.secret;
  }
  out << "\nsecrets";
  for (const auto& [key, secret] : *t.secrets) {
    out << " " << key << "@" << secret.get();
  }
  out << "\ningresses " << t.ingresses << " version " << t.version << "\n";
  return out.str();
}

class Generator {
 public:
  explicit Generator(unsigned seed) : rng_(seed) {}

  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
  bool coin() { return pick(2) == 0; }
  template <class T>
  const T& oneOf(const std::vector<T>& v) {
    return v[static_cast<std::size_t>(pick(static_cast<int>(v.size())))];
  }

  std::string ns() { return oneOf<std::string>({"a", "b"}); }

  k8s::Service service(const std::string& ns, int i) {
    k8s::Service s;
    s.meta.namespace_ = ns;
    s.meta.name = "s" + std::to_string(i);
    k8s::ServicePort p;
    p.name = coin() ? "http" : "web";
    p.port = 80;
    p.targetPort.number = 8080;
    s.ports.push_back(p);
    return s;
  }

  k8s::EndpointSlice slice(const std::string& ns, int i) {
    k8s::EndpointSlice s;
    s.meta.namespace_ = ns;
    s.meta.name = "s" + std::to_string(i) + "-" + std::to_string(pick(2));
    s.serviceName = "s" + std::to_string(i);
    s.meta.labels[std::string(k8s::kServiceNameLabel)] = s.serviceName;
    k8s::EndpointPort port;
    port.name = coin() ? "http" : "web";
    port.port = 8080 + pick(2);
    s.ports.push_back(port);
    for (int k = pick(4); k > 0; --k) {
      k8s::Endpoint ep;
      ep.addresses.push_back(*IpAddr::parse("10.0." + std::to_string(i) + "." +
                                            std::to_string(pick(4) + 1)));
      ep.conditions.ready = pick(3) != 0;
      ep.conditions.serving = ep.conditions.ready || coin();
      s.endpoints.push_back(ep);
    }
    return s;
  }

  k8s::IngressBackend backend() {
    k8s::IngressBackend b;
    b.serviceName = "s" + std::to_string(pick(5));
    if (coin()) {
      b.servicePort.number = 80;
    } else {
      b.servicePort.name = oneOf<std::string>({"http", "web"});
    }
    return b;
  }

  k8s::Ingress ingress(const std::string& ns, int i) {
    k8s::Ingress ing;
    ing.meta.namespace_ = ns;
    ing.meta.name = "i" + std::to_string(i);
    ing.meta.creationTimestamp = oneOf<std::string>(
        {"", "2024-01-01T00:00:01Z", "2024-01-01T00:00:02Z", "2024-01-01T00:00:03Z"});
    switch (pick(6)) {
      case 0: ing.ingressClassName = "kube-dataplane"; break;
      case 1: ing.ingressClassName = "other"; break;
      case 2: ing.meta.annotations[std::string(k8s::kIngressClassAnnotation)] = "kube-dataplane"; break;
      case 3: ing.meta.annotations[std::string(k8s::kIngressClassAnnotation)] = "other"; break;
      default: break;  // none: ours when our class is the default
    }
    if (pick(4) == 0) {
      ing.meta.annotations[std::string(kSslRedirectAnnotation)] = "false";
    }
    if (pick(5) == 0) {
      ing.meta.annotations[std::string(kLoadBalanceAnnotation)] = "least_request";
    }
    if (pick(5) == 0) {
      ing.meta.annotations[std::string(kReadTimeoutAnnotation)] = std::to_string(pick(3) + 1);
    }
    ing.meta.deleting = pick(10) == 0;
    const std::vector<std::string> hosts = {"", "foo.com", "*.foo.com", "bar.com", "Foo.com",
                                            "x.foo.com"};
    for (int r = pick(4); r > 0; --r) {
      k8s::IngressRule rule;
      rule.host = oneOf(hosts);
      for (int p = pick(3) + 1; p > 0; --p) {
        k8s::IngressPath path;
        path.pathType = static_cast<k8s::PathType>(pick(3));
        path.path = oneOf<std::string>({"/", "/a", "/a/", "/a/b", "/c"});
        if (path.pathType == k8s::PathType::ImplementationSpecific && coin()) {
          path.path = "";
        }
        path.backend = backend();
        if (pick(12) == 0) {
          path.backend = {};
          path.backend.isResource = true;
          path.backend.resourceKind = "Bucket";
          path.backend.resourceName = "b";
        }
        rule.paths.push_back(path);
      }
      ing.rules.push_back(rule);
    }
    if (pick(4) == 0) {
      ing.defaultBackend = backend();
    }
    for (int t = pick(3); t > 0; --t) {
      k8s::IngressTls tls;
      for (int h = pick(3) + 1; h > 0; --h) {
        std::string host = oneOf(hosts);
        if (!host.empty()) {
          tls.hosts.push_back(host);
        }
      }
      tls.secretName = oneOf<std::string>({"", "t0", "t1"});
      ing.tls.push_back(tls);
    }
    return ing;
  }

  k8s::Secret secret(const std::string& ns, int i) {
    k8s::Secret s;
    s.meta.namespace_ = ns;
    s.meta.name = "t" + std::to_string(i);
    s.type = pick(4) == 0 ? "Opaque" : std::string(k8s::kTlsSecretType);
    s.data["tls.crt"] = "crt" + std::to_string(pick(100));
    s.data["tls.key"] = "key";
    return s;
  }

  k8s::IngressClass ingressClass() {
    k8s::IngressClass c;
    c.meta.name = "kube-dataplane";
    c.controller = std::string(kDefaultController);
    c.isDefault = coin();
    return c;
  }

  // One random write: an upsert or a removal of one object of any kind the compiler reads.
  void change(k8s::Batch& batch) {
    const std::string n = ns();
    const int i = pick(8);
    const bool remove = pick(5) == 0;
    switch (pick(11)) {
      case 0:
      case 1:
        remove ? batch.remove(k8s::Kind::Service, n, "s" + std::to_string(i % 5))
               : batch.upsert(service(n, i % 5));
        break;
      case 2:
      case 3:
        if (remove) {
          batch.remove(k8s::Kind::EndpointSlice, n,
                       "s" + std::to_string(i % 5) + "-" + std::to_string(pick(2)));
        } else {
          batch.upsert(slice(n, i % 5));
        }
        break;
      case 4:
      case 5:
      case 6:
      case 7:
        remove ? batch.remove(k8s::Kind::Ingress, n, "i" + std::to_string(i))
               : batch.upsert(ingress(n, i));
        break;
      case 8:
      case 9:
        remove ? batch.remove(k8s::Kind::Secret, n, "t" + std::to_string(i % 2))
               : batch.upsert(secret(n, i % 2));
        break;
      default:
        remove ? batch.remove(k8s::Kind::IngressClass, "", "kube-dataplane")
               : batch.upsert(ingressClass());
    }
  }

 private:
  std::mt19937 rng_;
};

}  // namespace

TEST_CASE("route compiler: incremental equals from scratch on random changes",
          "[ingress][routes][incremental]") {
  for (unsigned seed = 1; seed <= 40; ++seed) {
    Generator gen(seed);
    k8s::Store store;
    auto sub = store.subscribe();
    RouteCompiler compiler(CompileOptions{});
    std::size_t incremental = 0;
    for (int step = 0; step < 150; ++step) {
      // Several batches between two takes: the store coalesces their changes.
      for (int b = gen.pick(3) + 1; b > 0; --b) {
        k8s::Batch batch;
        for (int c = gen.pick(3) + 1; c > 0; --c) {
          gen.change(batch);
        }
        store.apply(std::move(batch));
      }
      auto update = sub->take();
      if (!update) {
        continue;  // nothing changed
      }
      const auto result = compiler.update(*update->snapshot, &update->changes);
      incremental += result.full ? 0 : 1;
      const auto expected = compileRoutes(*update->snapshot, CompileOptions{});
      INFO("seed " << seed << " step " << step);
      REQUIRE(describe(*result.table) == describe(*expected));
    }
    CHECK(incremental > 50);  // most updates took the incremental path
  }
}

TEST_CASE("route compiler: work is proportional to the change", "[ingress][routes][incremental]") {
  k8s::Store store;
  auto sub = store.subscribe();
  k8s::Batch batch;
  Generator gen(7);
  for (int i = 0; i < 200; ++i) {
    k8s::Service s = gen.service("a", 0);
    s.meta.name = "svc" + std::to_string(i);
    batch.upsert(s);
    k8s::Ingress ing;
    ing.meta.namespace_ = "a";
    ing.meta.name = "ing" + std::to_string(i);
    ing.ingressClassName = "kube-dataplane";
    k8s::IngressRule rule;
    rule.host = "h" + std::to_string(i) + ".com";
    k8s::IngressPath path;
    path.path = "/";
    path.backend.serviceName = s.meta.name;
    path.backend.servicePort.number = 80;
    rule.paths.push_back(path);
    ing.rules.push_back(rule);
    batch.upsert(ing);
  }
  store.apply(std::move(batch));
  RouteCompiler compiler(CompileOptions{});
  auto first = compiler.update(*sub->take()->snapshot, nullptr);
  CHECK(first.full);
  CHECK(first.hostsRebuilt == 200);

  // One Service changes: one host is rebuilt, every other virtual host is shared.
  k8s::Batch one;
  k8s::Service changed = gen.service("a", 0);
  changed.meta.name = "svc17";
  changed.ports[0].name = "other";
  one.upsert(changed);
  store.apply(std::move(one));
  auto update = sub->take();
  auto next = compiler.update(*update->snapshot, &update->changes);
  CHECK_FALSE(next.full);
  CHECK(next.hostsRebuilt == 1);
  CHECK_FALSE(next.tlsChanged);
  CHECK(next.table->exact.find("h3.com") == first.table->exact.find("h3.com"));
  CHECK(next.table->exact.find("h17.com") != first.table->exact.find("h17.com"));
  CHECK(describe(*next.table) == describe(*compileRoutes(*update->snapshot, CompileOptions{})));
}
