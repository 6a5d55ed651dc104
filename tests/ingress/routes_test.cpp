#include "ingress/routes.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "k8s/store.h"
#include "support/snapshot.h"

using namespace kdp;
using namespace kdp::ingress;
using k8s::PathType;

namespace {

std::shared_ptr<const RouteTable> compile(const std::string& yaml) {
  return compileRoutes(*test::snapshotOf(yaml), CompileOptions{});
}

// The Service and the backing endpoints every test names: svc-NAME on port 80 → 10.0.0.N:8080.
std::string service(const std::string& name, int n, const std::string& ns = "default") {
  return "---\napiVersion: v1\nkind: Service\nmetadata: {name: " + name + ", namespace: " + ns +
         "}\nspec: {ports: [{name: http, port: 80, targetPort: 8080}]}\n---\n"
         "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: " + name +
         "-1, namespace: " + ns + ", labels: {kubernetes.io/service-name: " + name +
         "}}\naddressType: IPv4\nports: [{name: http, port: 8080}]\nendpoints:\n"
         "- addresses: [10.0.0." + std::to_string(n) + "]\n";
}

std::string path(const std::string& p, const std::string& type, const std::string& svc) {
  return "      - {path: \"" + p + "\", pathType: " + type + ", backend: {service: {name: " +
         svc + ", port: {number: 80}}}}\n";
}

std::string ingressYaml(const std::string& name, const std::string& host, const std::string& paths,
                    const std::string& extra = "  ingressClassName: kube-dataplane\n",
                    const std::string& meta = "") {
  return "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: " + name +
         "\n  namespace: default\n" + meta + "spec:\n" + extra + "  rules:\n  - " +
         (host.empty() ? std::string() : "host: \"" + host + "\"\n    ") + "http:\n      paths:\n" +
         paths;
}

std::string routed(const RouteTable& t, std::string_view host, std::string_view p) {
  const Match m = t.match(host, p);
  return m.backend ? m.backend->service : "404";
}

}  // namespace

// The pathType examples table of the Kubernetes Ingress documentation (concepts/services-
// networking/ingress, "Examples"), row by row, each request path of a row on its own; `winner`
// is the index of the path the docs say matches ("matches /aaa prefix", "prefers Exact"), -1
// where the docs say no match ("uses default backend": the Ingress's defaultBackend answers).
TEST_CASE("routes: the Ingress API's pathType examples", "[ingress][routes]") {
  struct Row {
    std::vector<std::pair<std::string, std::string>> paths;  // path, pathType
    std::vector<std::string> requests;
    int winner;
  };
  const std::vector<Row> rows = {
      {{{"/", "Prefix"}}, {"/", "/anything/at/all", "/foo/", "/aaa/bbb/ccc"}, 0},  // (all paths)
      {{{"/foo", "Exact"}}, {"/foo"}, 0},
      {{{"/foo", "Exact"}}, {"/bar"}, -1},
      {{{"/foo", "Exact"}}, {"/foo/"}, -1},
      {{{"/foo/", "Exact"}}, {"/foo"}, -1},
      {{{"/foo", "Prefix"}}, {"/foo", "/foo/"}, 0},
      {{{"/foo/", "Prefix"}}, {"/foo", "/foo/"}, 0},
      {{{"/aaa/bb", "Prefix"}}, {"/aaa/bbb"}, -1},
      {{{"/aaa/bbb", "Prefix"}}, {"/aaa/bbb"}, 0},
      {{{"/aaa/bbb/", "Prefix"}}, {"/aaa/bbb"}, 0},      // ignores trailing slash
      {{{"/aaa/bbb", "Prefix"}}, {"/aaa/bbb/"}, 0},      // matches trailing slash
      {{{"/aaa/bbb", "Prefix"}}, {"/aaa/bbb/ccc"}, 0},   // matches subpath
      {{{"/aaa/bbb", "Prefix"}}, {"/aaa/bbbxyz"}, -1},   // does not match string prefix
      {{{"/", "Prefix"}, {"/aaa", "Prefix"}}, {"/aaa/ccc"}, 1},  // matches /aaa prefix
      {{{"/", "Prefix"}, {"/aaa", "Prefix"}, {"/aaa/bbb", "Prefix"}}, {"/aaa/bbb"}, 2},
      {{{"/", "Prefix"}, {"/aaa", "Prefix"}, {"/aaa/bbb", "Prefix"}}, {"/ccc"}, 0},
      {{{"/aaa", "Prefix"}}, {"/ccc"}, -1},                       // uses default backend
      {{{"/foo", "Prefix"}, {"/foo", "Exact"}}, {"/foo"}, 1},     // prefers Exact
  };
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const Row& row = rows[i];
    std::string paths;
    std::string yaml = service("fallback", 99);
    for (std::size_t j = 0; j < row.paths.size(); ++j) {
      paths += path(row.paths[j].first, row.paths[j].second, "s" + std::to_string(j));
      yaml += service("s" + std::to_string(j), static_cast<int>(j + 1));
    }
    auto t = compile(yaml + ingressYaml("ing", "foo.com", paths,
                                        "  ingressClassName: kube-dataplane\n  defaultBackend: "
                                        "{service: {name: fallback, port: {number: 80}}}\n"));
    for (const auto& request : row.requests) {
      INFO("row " << i + 1 << " request " << request);
      CHECK(routed(*t, "foo.com", request) ==
            (row.winner < 0 ? std::string("fallback") : "s" + std::to_string(row.winner)));
    }
  }
}

TEST_CASE("routes: the longest matching path wins, Exact before Prefix", "[ingress][routes]") {
  auto t = compile(service("root", 1) + service("a", 2) + service("ab", 3) + service("ex", 4) +
                   service("pre", 5) +
                   ingressYaml("ing", "foo.com",
                           path("/", "Prefix", "root") + path("/aaa", "Prefix", "a") +
                               path("/aaa/bbb", "Prefix", "ab") + path("/foo", "Prefix", "pre") +
                               path("/foo", "Exact", "ex")));
  CHECK(routed(*t, "foo.com", "/aaa/ccc") == "a");
  CHECK(routed(*t, "foo.com", "/aaa/bbb") == "ab");
  CHECK(routed(*t, "foo.com", "/aaa/bbb/c") == "ab");
  CHECK(routed(*t, "foo.com", "/ccc") == "root");
  CHECK(routed(*t, "foo.com", "/foo") == "ex");
  CHECK(routed(*t, "foo.com", "/foo/x") == "pre");
  CHECK(routed(*t, "foo.com", "/foox") == "root");
}

TEST_CASE("routes: hosts exact, wildcard of one label, no host for all", "[ingress][routes]") {
  auto t = compile(service("exact", 1) + service("wild", 2) + service("all", 3) +
                   ingressYaml("a", "foo.bar.com", path("/", "Prefix", "exact")) +
                   ingressYaml("b", "*.bar.com", path("/", "Prefix", "wild")) +
                   ingressYaml("c", "", path("/", "Prefix", "all")));
  CHECK(routed(*t, "foo.bar.com", "/") == "exact");
  CHECK(routed(*t, "baz.bar.com", "/") == "wild");
  CHECK(routed(*t, "bar.com", "/") == "all");            // wildcard needs one label
  CHECK(routed(*t, "x.foo.bar.com", "/") == "all");      // and only one
  CHECK(routed(*t, "other.org", "/x") == "all");
  CHECK(hostMatches("*.bar.com", "a.bar.com"));
  CHECK_FALSE(hostMatches("*.bar.com", "bar.com"));
  CHECK_FALSE(hostMatches("*.bar.com", "a.b.bar.com"));
  CHECK(normalizeHost("Foo.Bar.COM:8443") == "foo.bar.com");
  CHECK(normalizeHost("[::1]:80") == "[::1]");
  CHECK(normalizeHost("foo.com.") == "foo.com");
}

TEST_CASE("routes: a host without a matching path does not fall through", "[ingress][routes]") {
  auto t = compile(service("exact", 1) + service("all", 2) +
                   ingressYaml("a", "foo.com", path("/api", "Prefix", "exact")) +
                   ingressYaml("b", "", path("/", "Prefix", "all")));
  CHECK(routed(*t, "foo.com", "/api/x") == "exact");
  CHECK(routed(*t, "foo.com", "/other") == "404");
}

TEST_CASE("routes: rules of several Ingresses merge, the oldest wins", "[ingress][routes]") {
  const std::string older = "  creationTimestamp: \"2024-01-01T00:00:00Z\"\n";
  const std::string newer = "  creationTimestamp: \"2025-01-01T00:00:00Z\"\n";
  SECTION("by creationTimestamp") {
    auto t = compile(service("one", 1) + service("two", 2) + service("three", 3) +
                     ingressYaml("aaa-new", "foo.com",
                             path("/x", "Prefix", "one") + path("/only-new", "Exact", "three"),
                             "  ingressClassName: kube-dataplane\n", newer) +
                     ingressYaml("zzz-old", "foo.com", path("/x", "Prefix", "two"),
                             "  ingressClassName: kube-dataplane\n", older));
    CHECK(routed(*t, "foo.com", "/x") == "two");
    CHECK(routed(*t, "foo.com", "/only-new") == "three");
  }
  SECTION("by namespace/name without creation times (a manifests directory)") {
    auto t = compile(service("one", 1) + service("two", 2) +
                     ingressYaml("bbb", "foo.com", path("/x/", "Prefix", "one")) +
                     ingressYaml("aaa", "foo.com", path("/x", "Prefix", "two")));
    CHECK(routed(*t, "foo.com", "/x/y") == "two");
  }
}

TEST_CASE("routes: IngressClass selection", "[ingress][routes]") {
  const std::string defaultClass =
      "---\napiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata:\n  name: "
      "kube-dataplane\n  annotations: {ingressclass.kubernetes.io/is-default-class: \"true\"}\n"
      "spec: {controller: kube-dataplane.io/ingress}\n";
  const std::string paths = path("/", "Prefix", "s");
  const std::string objs =
      service("s", 1) + ingressYaml("named", "named.com", paths) +
      ingressYaml("other", "other.com", paths, "  ingressClassName: nginx\n") +
      ingressYaml("legacy", "legacy.com", paths, "",
              "  annotations: {kubernetes.io/ingress.class: kube-dataplane}\n") +
      ingressYaml("legacy-other", "legacy-other.com", paths, "",
              "  annotations: {kubernetes.io/ingress.class: nginx}\n") +
      ingressYaml("none", "none.com", paths, "");
  SECTION("without our class being the default") {
    auto t = compile(objs);
    CHECK(routed(*t, "named.com", "/") == "s");
    CHECK(routed(*t, "legacy.com", "/") == "s");
    CHECK(routed(*t, "other.com", "/") == "404");
    CHECK(routed(*t, "legacy-other.com", "/") == "404");
    CHECK(routed(*t, "none.com", "/") == "404");
    CHECK(t->ingresses == 2);
  }
  SECTION("with our class the default") {
    auto t = compile(objs + defaultClass);
    CHECK(routed(*t, "none.com", "/") == "s");
    CHECK(routed(*t, "other.com", "/") == "404");
    CHECK(t->ingresses == 3);
  }
  SECTION("another class name") {
    auto t = compileRoutes(*test::snapshotOf(objs), CompileOptions{"nginx"});
    CHECK(routed(*t, "other.com", "/") == "s");
    CHECK(routed(*t, "legacy-other.com", "/") == "s");
    CHECK(routed(*t, "named.com", "/") == "404");
  }
}

TEST_CASE("routes: defaultBackend serves what no rule matched", "[ingress][routes]") {
  auto t = compile(service("s", 1) + service("fallback", 2) +
                   ingressYaml("a", "foo.com", path("/aaa", "Prefix", "s"),
                           "  ingressClassName: kube-dataplane\n  defaultBackend: {service: "
                           "{name: fallback, port: {number: 80}}}\n"));
  CHECK(routed(*t, "foo.com", "/aaa") == "s");
  CHECK(routed(*t, "foo.com", "/ccc") == "fallback");
  CHECK(routed(*t, "bar.com", "/") == "fallback");
  CHECK(t->match("bar.com", "/").route == nullptr);
}

TEST_CASE("routes: backends resolve ports by number and name; ready, else serving",
          "[ingress][routes]") {
  const std::string objs = R"(
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: admin, port: 81, targetPort: 9000}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-a, namespace: shop, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}, {name: admin, port: 9000}]
endpoints:
- addresses: [10.0.0.2]
- addresses: [10.0.0.1]
- addresses: [10.0.0.3]
  conditions: {ready: false, serving: true, terminating: true}
- addresses: [10.0.0.4]
  conditions: {ready: false, serving: false}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-b, namespace: shop, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}, {name: admin, port: 9000}]
endpoints:
- addresses: [10.0.0.1]
---
apiVersion: v1
kind: Service
metadata: {name: draining, namespace: shop}
spec: {ports: [{port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: draining-a, namespace: shop, labels: {kubernetes.io/service-name: draining}}
addressType: IPv4
ports: [{port: 80}]
endpoints:
- addresses: [10.0.1.1]
  conditions: {ready: false, serving: true, terminating: true}
- addresses: [10.0.1.2]
  conditions: {ready: false, serving: false, terminating: true}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop, namespace: shop}
spec:
  ingressClassName: kube-dataplane
  rules:
  - host: shop.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {name: http}}}}
      - {path: /admin, pathType: Prefix, backend: {service: {name: web, port: {number: 81}}}}
      - {path: /draining, pathType: Prefix, backend: {service: {name: draining, port: {number: 80}}}}
      - {path: /missing, pathType: Prefix, backend: {service: {name: nope, port: {number: 80}}}}
      - {path: /badport, pathType: Prefix, backend: {service: {name: web, port: {number: 99}}}}
)";
  auto t = compile(objs);
  auto eps = [&](std::string_view p) {
    std::vector<std::string> out;
    for (const auto& hp : t->match("shop.com", p).backend->endpoints) {
      out.push_back(hp.str());
    }
    return out;
  };
  CHECK(eps("/") == std::vector<std::string>{"10.0.0.1:8080", "10.0.0.2:8080"});
  CHECK(eps("/admin") == std::vector<std::string>{"10.0.0.1:9000", "10.0.0.2:9000"});
  CHECK(eps("/draining") == std::vector<std::string>{"10.0.1.1:80"});
  CHECK(eps("/missing").empty());
  CHECK(eps("/badport").empty());
  const Backend& b = *t->match("shop.com", "/").backend;
  CHECK(b.namespace_ == "shop");
  CHECK(b.service == "web");
  CHECK(b.ingress == "shop/shop");
  CHECK(b.nextIndex() == 0);
  CHECK(b.nextIndex() == 1);
}

TEST_CASE("routes: TLS hosts map to Secrets and redirect plain HTTP", "[ingress][routes]") {
  const std::string secret = R"(
---
apiVersion: v1
kind: Secret
metadata: {name: tls, namespace: default}
type: kubernetes.io/tls
stringData: {tls.crt: "x", tls.key: "y"}
)";
  const std::string tls =
      "  ingressClassName: kube-dataplane\n  tls:\n  - hosts: [foo.com, \"*.foo.com\"]\n"
      "    secretName: tls\n";
  SECTION("redirect on") {
    auto t = compile(service("s", 1) + secret + ingressYaml("a", "foo.com", path("/", "Prefix", "s"), tls) +
                     ingressYaml("b", "plain.com", path("/", "Prefix", "s")));
    REQUIRE(t->tls->size() == 2);
    CHECK((*t->tls)[0].host == "*.foo.com");
    CHECK((*t->tls)[1].host == "foo.com");
    CHECK((*t->tls)[1].secret == "default/tls");
    CHECK(t->secrets->count("default/tls") == 1);
    CHECK(t->match("foo.com", "/").sslRedirect);
    CHECK_FALSE(t->match("plain.com", "/").sslRedirect);
  }
  SECTION("redirect off by annotation") {
    auto t = compile(service("s", 1) + secret +
                     ingressYaml("a", "foo.com", path("/", "Prefix", "s"), tls,
                             "  annotations: {kube-dataplane.io/ssl-redirect: \"false\"}\n"));
    CHECK_FALSE(t->match("foo.com", "/").sslRedirect);
  }
}

TEST_CASE("routes: the examples directory compiles", "[ingress][routes]") {
  auto t = compile(service("web", 1, "shop") + R"(
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: kube-dataplane
  annotations: {ingressclass.kubernetes.io/is-default-class: "true"}
spec: {controller: kube-dataplane.io/ingress}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: admin, namespace: shop}
spec:
  defaultBackend: {service: {name: web, port: {number: 80}}}
  rules:
  - host: admin.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: admin, port: {number: 8000}}}}
)");
  CHECK(t->ingresses == 1);
  CHECK(routed(*t, "admin.example.com", "/x") == "admin");
  CHECK(t->match("admin.example.com", "/x").backend->endpoints.empty());
  CHECK(routed(*t, "elsewhere", "/") == "web");
}

TEST_CASE("routes: per-Ingress upstream timeouts from annotations", "[ingress][routes]") {
  const std::string paths = path("/", "Prefix", "s");
  auto t = compile(
      service("s", 1) +
      ingressYaml("a", "a.com", paths, "  ingressClassName: kube-dataplane\n",
                  "  annotations: {kube-dataplane.io/proxy-read-timeout: \"5\", "
                  "nginx.ingress.kubernetes.io/proxy-connect-timeout: \"2\"}\n") +
      ingressYaml("b", "b.com", paths, "  ingressClassName: kube-dataplane\n",
                  "  annotations: {kube-dataplane.io/proxy-read-timeout: \"5s\", "
                  "kube-dataplane.io/proxy-connect-timeout: \"99999\"}\n") +
      ingressYaml("c", "c.com", paths));
  CHECK(t->match("a.com", "/").backend->readTimeout == std::chrono::seconds(5));
  CHECK(t->match("a.com", "/").backend->connectTimeout == std::chrono::seconds(2));
  CHECK(t->match("b.com", "/").backend->readTimeout == std::chrono::seconds(0));
  CHECK(t->match("b.com", "/").backend->connectTimeout == std::chrono::seconds(0));
  CHECK(t->match("c.com", "/").backend->readTimeout == std::chrono::seconds(0));
}

TEST_CASE("routes: round robin and least request", "[ingress][routes]") {
  std::string slice;
  for (int i = 1; i <= 3; ++i) {
    slice += "- addresses: [10.0.0." + std::to_string(i) + "]\n";
  }
  const std::string objs =
      "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: default}\n"
      "spec: {ports: [{name: http, port: 80}]}\n---\napiVersion: discovery.k8s.io/v1\n"
      "kind: EndpointSlice\nmetadata: {name: s-1, namespace: default, labels: "
      "{kubernetes.io/service-name: s}}\naddressType: IPv4\nports: [{name: http, port: 80}]\n"
      "endpoints:\n" + slice;
  SECTION("round robin gives every endpoint its turn") {
    auto t = compile(objs + ingressYaml("a", "a.com", path("/", "Prefix", "s")));
    const Backend& b = *t->match("a.com", "/").backend;
    CHECK(b.balance == Balance::RoundRobin);
    std::vector<std::size_t> picks;
    for (int i = 0; i < 6; ++i) {
      picks.push_back(b.pick());
    }
    CHECK(picks == std::vector<std::size_t>{0, 1, 2, 0, 1, 2});
  }
  SECTION("least request avoids busy endpoints") {
    auto t = compile(objs + ingressYaml("a", "a.com", path("/", "Prefix", "s"),
                                        "  ingressClassName: kube-dataplane\n",
                                        "  annotations: {nginx.ingress.kubernetes.io/load-balance: "
                                        "least_request}\n"));
    const Backend& b = *t->match("a.com", "/").backend;
    REQUIRE(b.balance == Balance::LeastRequest);
    b.started(0);
    b.started(0);
    b.started(1);
    for (int i = 0; i < 5; ++i) {
      CHECK(b.pick() == 2);
    }
    b.started(2);
    b.started(2);
    CHECK(b.pick() == 1);
    b.finished(0);
    b.finished(0);
    CHECK(b.pick() == 0);
    CHECK(b.inFlight(2) == 2);
  }
}
