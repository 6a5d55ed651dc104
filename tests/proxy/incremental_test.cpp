#include "proxy/incremental.h"
#include "proxy/stale_flows.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <string>

#include "k8s/decode.h"
#include "k8s/store.h"
#include "proxy/compiler.h"

using namespace kdp;
using namespace kdp::proxy;

namespace {

NodeInfo node() {
  NodeInfo n;
  n.name = "node-a";
  n.zone = "zone-a";
  n.nodeIps = {*IpAddr::parse("192.0.2.10"), *IpAddr::parse("2001:db8::10")};
  n.nodePortIps = n.nodeIps;
  n.clusterCidrs = {*Cidr::parse("10.244.0.0/16")};
  n.serviceCidrs = {*Cidr::parse("10.96.0.0/16")};
  return n;
}

/// The model with its chains in name order, so that it compares with compile() (whose endpoint
/// chains come in another order).
Ruleset normalized(Ruleset rs) {
  for (auto& t : rs.tables) {
    std::stable_partition(t.chains.begin(), t.chains.end(), [](const Chain& c) {
      return !c.name.starts_with("endpoints-");
    });
    auto dynamic = std::find_if(t.chains.begin(), t.chains.end(), [](const Chain& c) {
      return c.name.starts_with("endpoints-");
    });
    std::sort(dynamic, t.chains.end(),
              [](const Chain& a, const Chain& b) { return a.name < b.name; });
  }
  return rs;
}

/// `model` with `change` applied the way the kernel applies it: elements of `before` not in
/// `after` deleted, elements of `after` not in `before` added; backends maps dropped with their
/// endpoint count.
template <class K, class V>
const K& keyOf(const std::pair<const K, V>& e) {
  return e.first;
}
template <class K>
const K& keyOf(const K& e) {
  return e;
}

template <class C>
void applyDiff(C& into, const C& before, const C& after) {
  for (const auto& e : before) {
    if (std::find(after.begin(), after.end(), e) == after.end()) {
      REQUIRE(into.erase(keyOf(e)) == 1);
    }
  }
  for (const auto& e : after) {
    if (std::find(before.begin(), before.end(), e) == before.end()) {
      into.insert(e);
    }
  }
}

void applyChange(Table& t, const TableChange& c) {
  applyDiff(t.serviceIps, c.before.serviceIps, c.after.serviceIps);
  applyDiff(t.noEndpointServices, c.before.noEndpointServices, c.after.noEndpointServices);
  applyDiff(t.masqueradeServices, c.before.masqueradeServices, c.after.masqueradeServices);
  applyDiff(t.clusterIps, c.before.clusterIps, c.after.clusterIps);
  applyDiff(t.firewallIps, c.before.firewallIps, c.after.firewallIps);
  applyDiff(t.firewallAllow, c.before.firewallAllow, c.after.firewallAllow);
  applyDiff(t.hairpin, c.before.hairpin, c.after.hairpin);
  static const std::map<BackendKey, Backend> kEmpty;
  auto of = [](const auto& byCount, std::uint32_t n) -> const std::map<BackendKey, Backend>& {
    auto it = byCount.find(n);
    return it == byCount.end() ? kEmpty : it->second;
  };
  for (const auto& [maps, counts] : detail::backendMaps()) {
    for (std::uint32_t n : c.after.*counts) {
      applyDiff((t.*maps)[n], of(c.before.*maps, n), of(c.after.*maps, n));
    }
    std::erase_if(t.*maps, [&](const auto& kv) { return (c.after.*counts).count(kv.first) == 0; });
    t.*counts = c.after.*counts;
  }
  t.chains = c.after.chains;
}

/// A random cluster of a few Services in two namespaces, and random edits to it. Services share
/// endpoint addresses (hairpin reference counts) and, now and then, an externalIP (a clash).
class RandomCluster {
 public:
  explicit RandomCluster(unsigned seed) : rng_(seed) {}

  std::string service(int i) {
    const char* types[] = {"ClusterIP", "NodePort", "LoadBalancer"};
    const std::string type = types[pick(3)];
    std::string y = "apiVersion: v1\nkind: Service\nmetadata: {name: svc-" + std::to_string(i) +
                    ", namespace: " + ns(i) + "}\nspec:\n  type: " + type + "\n";
    y += "  clusterIPs: [10.96.0." + std::to_string(i + 1) + "]\n";
    if (pick(3) == 0) {
      y = replaceAll(y, "  clusterIPs: [10.96.0." + std::to_string(i + 1) + "]\n",
                     "  clusterIPs: [10.96.0." + std::to_string(i + 1) + ", fd00::" +
                         std::to_string(i + 1) + "]\n  ipFamilyPolicy: RequireDualStack\n");
    }
    if (pick(4) == 0) {
      y += "  externalIPs: [198.51.100." + std::to_string(pick(4) + 1) + "]\n";
    }
    if (pick(3) == 0) {
      y += "  sessionAffinity: ClientIP\n";
    }
    if (type != "ClusterIP" && pick(2) == 0) {
      y += "  externalTrafficPolicy: Local\n";
    }
    if (pick(5) == 0) {
      y += "  internalTrafficPolicy: Local\n";
    }
    if (type == "LoadBalancer" && pick(2) == 0) {
      y += "  loadBalancerSourceRanges: [203.0.113.0/24]\n";
    }
    y += "  ports:\n  - {name: http, port: 80, targetPort: 8080" +
         (type != "ClusterIP" ? ", nodePort: " + std::to_string(30000 + i) : std::string()) +
         "}\n";
    if (pick(2) == 0) {
      y += "  - {name: dns, protocol: UDP, port: 53, targetPort: dns}\n";
    }
    if (type == "LoadBalancer") {
      y += "status: {loadBalancer: {ingress: [{ip: 203.0.113." + std::to_string(i + 1) + "}]}}\n";
    }
    return y;
  }

  std::string slice(int i, int s) {
    std::string y = "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: svc-" +
                    std::to_string(i) + "-" + std::to_string(s) + ", namespace: " + ns(i) +
                    ", labels: {kubernetes.io/service-name: svc-" + std::to_string(i) +
                    "}}\naddressType: " + (s == 2 ? "IPv6" : "IPv4") +
                    "\nports: [{name: http, protocol: TCP, port: 8080}, {name: dns, protocol: UDP, "
                    "port: 5353}]\n";
    const int n = pick(6);
    if (n == 0) {
      return y + "endpoints: []\n";
    }
    y += "endpoints:\n";
    const bool hinted = pick(3) == 0;
    for (int e = 0; e < n; ++e) {
      // Few distinct addresses, so that Services share some.
      const std::string ip = s == 2 ? "fd00:244::" + std::to_string(pick(12) + 1)
                                    : "10.244." + std::to_string(pick(2)) + "." +
                                          std::to_string(pick(12) + 1);
      const int state = pick(5);
      y += "- {addresses: [\"" + ip + "\"], nodeName: node-" + (pick(2) ? "a" : "b") +
           ", conditions: {ready: " + (state != 0 ? "true" : "false") +
           ", serving: true, terminating: " + (state == 0 ? "true" : "false") + "}" +
           (hinted ? std::string(", hints: {forZones: [{name: zone-") + (pick(2) ? "a" : "b") +
                         "}]}"
                   : std::string()) +
           "}\n";
    }
    return y;
  }

  /// One random edit as a store batch.
  k8s::Batch edit() {
    k8s::Batch batch;
    const int i = pick(kServices);
    switch (pick(6)) {
      case 0: add(batch, service(i)); break;
      case 1: batch.remove(k8s::Kind::Service, ns(i), "svc-" + std::to_string(i)); break;
      case 2:
        batch.remove(k8s::Kind::EndpointSlice, ns(i),
                     "svc-" + std::to_string(i) + "-" + std::to_string(pick(3)));
        break;
      default: add(batch, slice(i, pick(3))); break;
    }
    if (pick(3) == 0) {  // a burst: a second edit in the same store version
      const int j = pick(kServices);
      add(batch, slice(j, pick(3)));
    }
    return batch;
  }

  k8s::Batch initial() {
    k8s::Batch batch;
    for (int i = 0; i < kServices; ++i) {
      add(batch, service(i));
      for (int s = 0; s < 3; ++s) {
        if (pick(2) == 0) {
          add(batch, slice(i, s));
        }
      }
    }
    return batch;
  }

  static constexpr int kServices = 16;

 private:
  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
  static std::string ns(int i) { return i % 2 ? "shop" : "default"; }
  static std::string replaceAll(std::string s, const std::string& from, const std::string& to) {
    if (auto p = s.find(from); p != std::string::npos) {
      s.replace(p, from.size(), to);
    }
    return s;
  }
  static void add(k8s::Batch& batch, const std::string& yaml) {
    auto decoded = k8s::decodeYaml(yaml, "random.yaml");
    for (const auto& e : decoded.errors) {
      FAIL(e.str() << "\n" << yaml);
    }
    for (auto& o : decoded.objects) {
      batch.upsert(std::move(o));
    }
  }

  std::mt19937 rng_;
};

}  // namespace

TEST_CASE("incremental: the model equals a full compile after random change sequences",
          "[proxy]") {
  const NodeInfo n = node();
  std::size_t steps = 0;
  for (unsigned seed = 1; seed <= 12; ++seed) {
    RandomCluster cluster(seed);
    k8s::Store store;
    store.apply(cluster.initial());
    auto sub = store.subscribe();
    IncrementalCompiler compiler;
    auto first = sub->take();
    REQUIRE(first);
    auto change = compiler.update(*first->snapshot, first->changes, n);
    CHECK(change.full);
    CHECK(normalized(compiler.ruleset()) == normalized(compile(*first->snapshot, n)));
    UdpDestinations udp;
    updateUdpDestinations(udp, change, compiler.ruleset());
    CHECK(udp == udpDestinations(compiler.ruleset()));

    for (int step = 0; step < 60; ++step) {
      Ruleset previous = compiler.ruleset();
      if (store.apply(cluster.edit()) == 0) {
        continue;
      }
      auto update = sub->take();
      REQUIRE(update);
      change = compiler.update(*update->snapshot, update->changes, n);
      INFO("seed " << seed << " step " << step);
      REQUIRE_FALSE(change.full);
      const Ruleset expected = normalized(compile(*update->snapshot, n));
      REQUIRE(normalized(compiler.ruleset()) == expected);
      // The change, applied to the previous model, gives the new one.
      REQUIRE(change.tables.size() == previous.tables.size());
      for (std::size_t i = 0; i < previous.tables.size(); ++i) {
        applyChange(previous.tables[i], change.tables[i]);
        // owners are not sent to the kernel; compare the rest.
        previous.tables[i].owners = compiler.ruleset().tables[i].owners;
      }
      CHECK(normalized(previous) == expected);
      // The flow cleaner's UDP destinations, kept up to date from the change alone.
      updateUdpDestinations(udp, change, compiler.ruleset());
      REQUIRE(udp == udpDestinations(compiler.ruleset()));
      ++steps;
    }
  }
  CHECK(steps > 300);
}

TEST_CASE("incremental: one slice change touches only its Service's elements", "[proxy]") {
  RandomCluster cluster(7);
  k8s::Store store;
  store.apply(cluster.initial());
  auto sub = store.subscribe();
  IncrementalCompiler compiler;
  auto first = sub->take();
  compiler.update(*first->snapshot, first->changes, node());

  k8s::Batch batch;
  auto decoded = k8s::decodeYaml(cluster.slice(3, 0), "x.yaml");
  batch.upsert(std::move(decoded.objects.at(0)));
  if (store.apply(std::move(batch)) == 0) {
    return;
  }
  auto update = sub->take();
  const auto change = compiler.update(*update->snapshot, update->changes, node());
  CHECK(change.servicesRecompiled == 1);
  for (const auto& t : change.tables) {
    for (const auto& [k, v] : t.after.owners) {
      CHECK(v.rfind("shop/svc-3:", 0) == 0);
    }
  }
}

TEST_CASE("incremental: a different node means a full recompile", "[proxy]") {
  RandomCluster cluster(3);
  k8s::Store store;
  store.apply(cluster.initial());
  auto sub = store.subscribe();
  auto first = sub->take();
  IncrementalCompiler compiler;
  CHECK(compiler.update(*first->snapshot, first->changes, node()).full);
  NodeInfo other = node();
  other.zone = "zone-b";
  CHECK(compiler.update(*first->snapshot, k8s::Changes{}, other).full);
  CHECK(normalized(compiler.ruleset()) == normalized(compile(*first->snapshot, other)));
  CHECK(serviceKeyOfSlice("ns/web/web-abc") == "ns/web");
}
