#include "dns/zone.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <random>

#include "k8s/store.h"

#include "tests/dns/fixture.h"

using namespace kdp::dns;
using namespace kdp::dns::test;
namespace w = kdp::dns::wire;

namespace {

/// An owned copy of the node of `name`, or nullopt.
std::optional<Node> find(const Zone& z, std::string_view name) {
  auto node = z.find(w::lowerName(*w::nameFromText(name)));
  return node ? std::optional<Node>(node->materialize()) : std::nullopt;
}

}  // namespace

TEST_CASE("dns zone: reverse names and dashed addresses", "[dns]") {
  CHECK(reverseName(*kdp::IpAddr::parse("10.96.0.20")) == "20.0.96.10.in-addr.arpa.");
  CHECK(reverseName(*kdp::IpAddr::parse("2001:db8::567:89ab")) ==
        "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.");
  CHECK(dashedIp(*kdp::IpAddr::parse("10.244.1.11")) == "10-244-1-11");
  CHECK(dashedIp(*kdp::IpAddr::parse("fd00::1")) == "fd00--1");
}

TEST_CASE("dns zone: compiled names, empty non-terminals, options", "[dns]") {
  auto snap = clusterSnapshot();
  auto z = compileZone(*snap, ZoneOptions{"cluster.local", 30, PodsMode::Insecure});
  CHECK(z->synced());
  CHECK(z->version() == snap->version);
  REQUIRE(find(*z, "web.shop.svc.cluster.local"));
  CHECK(find(*z, "web.shop.svc.cluster.local")->find(w::kTypeA)->count == 1);
  CHECK(find(*z, "web.shop.svc.cluster.local")->find(w::kTypeAAAA) == nullptr);
  CHECK(find(*z, "_tcp.web.shop.svc.cluster.local") != std::nullopt);  // empty non-terminal
  CHECK(find(*z, "_tcp.web.shop.svc.cluster.local")->rrsets.empty());
  // <ns>.svc has no node: the responder answers it from the namespace set.
  CHECK(find(*z, "shop.svc.cluster.local") == std::nullopt);
  CHECK(z->namespaceExists("shop"));
  CHECK(find(*z, "idle.data.svc.cluster.local") == std::nullopt);
  CHECK(find(*z, "payments.shop.svc.cluster.local")->cnameTarget ==
        *w::nameFromText("api.payments.example.net"));
  CHECK(z->namespaceExists("empty"));
  CHECK_FALSE(z->namespaceExists("nope"));
  CHECK_FALSE(z->podIpExists("shop", *kdp::IpAddr::parse("10.244.1.21")));  // insecure: not kept

  auto v = compileZone(*snap, ZoneOptions{"cluster.local", 30, PodsMode::Verified});
  CHECK(v->podIpExists("shop", *kdp::IpAddr::parse("10.244.1.21")));
  CHECK_FALSE(v->podIpExists("data", *kdp::IpAddr::parse("10.244.1.21")));

  auto other = compileZone(*snap, ZoneOptions{"Example.Internal", 5, PodsMode::Disabled});
  REQUIRE(find(*other, "web.shop.svc.example.internal"));
  CHECK(find(*other, "web.shop.svc.cluster.local") == std::nullopt);
  CHECK(find(*other, "pod.example.internal") == std::nullopt);
  CHECK(other->apex() == *w::nameFromText("example.internal"));
}

TEST_CASE("dns zone: an unsynced snapshot compiles to an unsynced zone", "[dns]") {
  auto z = compileZone(*clusterSnapshot({}, false), ZoneOptions{});
  CHECK_FALSE(z->synced());
}

namespace {

/// Every name and node of `z`, sorted: two zones with equal dumps answer alike.
std::vector<std::pair<std::string, Node>> dump(const Zone& z) {
  std::vector<std::pair<std::string, Node>> out;
  z.forEachNode([&](const std::string& name, const Node& node) { out.emplace_back(name, node); });
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

void requireSameZone(const Zone& incremental, const Zone& full) {
  REQUIRE(incremental.nodeCount() == full.nodeCount());
  REQUIRE(incremental.version() == full.version());
  REQUIRE(incremental.synced() == full.synced());
  REQUIRE(incremental.soaTail() == full.soaTail());
  const auto a = dump(incremental);
  const auto b = dump(full);
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    INFO(w::nameToText(a[i].first) << " vs " << w::nameToText(b[i].first));
    REQUIRE(a[i].first == b[i].first);
    REQUIRE(a[i].second == b[i].second);
  }
}

/// Random Services and EndpointSlices over a small space of names and IPs, so that changes hit
/// shared PTRs (one IP in two Services), ExternalNames, kube-dns, hostnames and removals.
class RandomCluster {
 public:
  explicit RandomCluster(unsigned seed) : rng_(seed) {}

  kdp::k8s::Batch batch() {
    kdp::k8s::Batch b;
    const int ops = pick(1, 4);
    for (int i = 0; i < ops; ++i) {
      const std::string ns = pick(0, 2) == 0 ? "kube-system" : "ns" + std::to_string(pick(0, 2));
      const std::string name = ns == "kube-system" && pick(0, 1) ? "kube-dns"
                                                                : "s" + std::to_string(pick(0, 7));
      switch (pick(0, 5)) {
        case 0: b.remove(kdp::k8s::Kind::Service, ns, name); break;
        case 1: b.remove(kdp::k8s::Kind::EndpointSlice, ns, name + "-" + std::to_string(pick(0, 1))); break;
        case 2:
        case 3: b.upsert(service(ns, name)); break;
        default: b.upsert(slice(ns, name)); break;
      }
    }
    if (pick(0, 9) == 0) {
      kdp::k8s::Pod pod;
      pod.meta.name = "p" + std::to_string(pick(0, 3));
      pod.meta.namespace_ = "ns" + std::to_string(pick(0, 2));
      pod.podIPs.push_back(ip(pick(0, 1)));
      b.upsert(std::move(pod));
    }
    return b;
  }

 private:
  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  kdp::IpAddr ip(int family) {
    return *kdp::IpAddr::parse(family == 0 ? "10.0.0." + std::to_string(pick(1, 12))
                                           : "fd00::" + std::to_string(pick(1, 12)));
  }

  kdp::k8s::Service service(const std::string& ns, const std::string& name) {
    kdp::k8s::Service s;
    s.meta.name = name;
    s.meta.namespace_ = ns;
    switch (pick(0, 3)) {
      case 0:
        s.type = kdp::k8s::ServiceType::ExternalName;
        s.externalName = pick(0, 1) ? "ext.example.net" : "s1." + ns + ".svc.cluster.local";
        break;
      case 1:
        s.headless = true;
        s.publishNotReadyAddresses = pick(0, 1) == 1;
        break;
      default:
        for (int i = pick(1, 2); i > 0; --i) s.clusterIPs.push_back(ip(i - 1));
    }
    for (int i = pick(0, 2); i > 0; --i) {
      kdp::k8s::ServicePort p;
      p.name = pick(0, 2) ? "p" + std::to_string(i) : "";
      p.port = 80 + i;
      p.protocol = pick(0, 1) ? kdp::k8s::Protocol::TCP : kdp::k8s::Protocol::UDP;
      s.ports.push_back(p);
    }
    return s;
  }

  kdp::k8s::EndpointSlice slice(const std::string& ns, const std::string& service) {
    kdp::k8s::EndpointSlice sl;
    sl.meta.name = service + "-" + std::to_string(pick(0, 1));
    sl.meta.namespace_ = ns;
    sl.serviceName = service;
    sl.meta.labels.emplace(std::string(kdp::k8s::kServiceNameLabel), service);
    const int family = pick(0, 1);
    sl.addressType = family == 0 ? kdp::k8s::AddressType::IPv4 : kdp::k8s::AddressType::IPv6;
    for (int i = pick(0, 4); i > 0; --i) {
      kdp::k8s::Endpoint ep;
      ep.addresses.push_back(ip(family));
      ep.conditions.ready = pick(0, 3) != 0;
      if (pick(0, 2) == 0) ep.hostname = "h" + std::to_string(pick(0, 2));
      sl.endpoints.push_back(std::move(ep));
    }
    if (pick(0, 1)) {
      kdp::k8s::EndpointPort p;
      p.name = "p1";
      p.port = 8080;
      sl.ports.push_back(p);
    }
    return sl;
  }

  std::mt19937 rng_;
};

}  // namespace

TEST_CASE("dns zone: incremental updates equal a full compile", "[dns]") {
  for (const bool autopath : {false, true}) {
    for (unsigned seed = 1; seed <= 20; ++seed) {
      INFO("seed " << seed << " autopath " << autopath);
      const ZoneOptions options{"cluster.local", 30,
                                autopath ? PodsMode::Insecure : PodsMode::Verified, autopath};
      kdp::k8s::Store store;
      auto sub = store.subscribe();
      ZoneCompiler compiler(options);
      RandomCluster cluster(seed);
      for (int step = 0; step < 60; ++step) {
        store.apply(cluster.batch());
        if (step == 5) {
          store.markSynced();
        }
        // Sometimes several batches coalesce into one update.
        if (step % 3 != 0) {
          continue;
        }
        auto update = sub->take();
        if (!update) {
          continue;
        }
        auto incremental = compiler.update(*update);
        auto full = compileZone(*update->snapshot, options);
        requireSameZone(*incremental, *full);
        if (autopath) {
          for (int i = 1; i <= 12; ++i) {
            const auto ip = *kdp::IpAddr::parse("10.0.0." + std::to_string(i));
            const auto* a = incremental->podNamespace(ip);
            const auto* b = full->podNamespace(ip);
            REQUIRE((a == nullptr) == (b == nullptr));
            if (a) REQUIRE(*a == *b);
          }
        } else {
          for (int i = 1; i <= 12; ++i) {
            const auto ip = *kdp::IpAddr::parse("10.0.0." + std::to_string(i));
            REQUIRE(incremental->podIpExists("ns1", ip) == full->podIpExists("ns1", ip));
          }
        }
      }
    }
  }
}

TEST_CASE("dns zone: an update shares the shards it does not change", "[dns]") {
  kdp::k8s::Store store;
  auto sub = store.subscribe();
  kdp::k8s::Batch b;
  for (int i = 0; i < 200; ++i) {
    kdp::k8s::Service s;
    s.meta.name = "s" + std::to_string(i);
    s.meta.namespace_ = "ns";
    s.clusterIPs.push_back(*kdp::IpAddr::parse("10.1." + std::to_string(i / 250) + "." +
                                               std::to_string(i % 250 + 1)));
    b.upsert(std::move(s));
  }
  store.apply(std::move(b));
  store.markSynced();
  ZoneCompiler compiler(ZoneOptions{});
  auto first = compiler.update(*sub->take());
  CHECK(compiler.lastStats().full);
  CHECK(find(*first, "s7.ns.svc.cluster.local") != std::nullopt);

  kdp::k8s::Batch change;
  change.remove(kdp::k8s::Kind::Service, "ns", "s7");
  store.apply(std::move(change));
  auto second = compiler.update(*sub->take());
  CHECK_FALSE(compiler.lastStats().full);
  CHECK(compiler.lastStats().services == 1);
  // s7's name and PTR, the apex (its SOA serial): three shards at most, not all of them.
  CHECK(compiler.lastStats().shards <= 3);
  CHECK(find(*second, "s7.ns.svc.cluster.local") == std::nullopt);
  CHECK(find(*first, "s7.ns.svc.cluster.local") != std::nullopt);  // the old zone is untouched
  CHECK(second->nodeCount() + 2 == first->nodeCount());

  // An update that changes nothing the zone is made of keeps the zone.
  kdp::k8s::Batch pod;
  kdp::k8s::Pod p;
  p.meta.name = "p";
  p.meta.namespace_ = "ns";
  pod.upsert(std::move(p));
  store.apply(std::move(pod));
  CHECK(compiler.update(*sub->take()) == second);
}

namespace {

kdp::k8s::Service clusterIpService(const std::string& ns, const std::string& name,
                                   const std::string& ip) {
  kdp::k8s::Service s;
  s.meta.name = name;
  s.meta.namespace_ = ns;
  s.clusterIPs.push_back(*kdp::IpAddr::parse(ip));
  return s;
}

kdp::k8s::Service headlessService(const std::string& ns, const std::string& name) {
  kdp::k8s::Service s;
  s.meta.name = name;
  s.meta.namespace_ = ns;
  s.headless = true;
  return s;
}

kdp::k8s::EndpointSlice oneEndpoint(const std::string& ns, const std::string& service,
                                    const std::string& hostname, const std::string& ip) {
  kdp::k8s::EndpointSlice sl;
  sl.meta.name = service + "-1";
  sl.meta.namespace_ = ns;
  sl.serviceName = service;
  sl.meta.labels.emplace(std::string(kdp::k8s::kServiceNameLabel), service);
  kdp::k8s::Endpoint ep;
  ep.addresses.push_back(*kdp::IpAddr::parse(ip));
  ep.hostname = hostname;
  sl.endpoints.push_back(std::move(ep));
  return sl;
}

/// The PTR targets of `ip` (text), in record order; empty when the name does not exist.
std::vector<std::string> ptrTargets(const Zone& z, const std::string& ip) {
  std::vector<std::string> out;
  const auto node = find(z, reverseName(*kdp::IpAddr::parse(ip)));
  if (!node) {
    return out;
  }
  const RRset* set = node->find(w::kTypePTR);
  REQUIRE(set != nullptr);
  for (std::string_view t = set->tails; !t.empty();) {
    const std::size_t len = 10u + w::getU16(reinterpret_cast<const std::uint8_t*>(t.data()) + 8);
    out.push_back(w::nameToText(t.substr(10, len - 10)));
    t.remove_prefix(len);
  }
  return out;
}

/// Applies `batch`, updates the zone incrementally and checks it against a full compile.
std::shared_ptr<const Zone> step(kdp::k8s::Store& store, kdp::k8s::Subscription& sub,
                                 ZoneCompiler& compiler, kdp::k8s::Batch batch) {
  store.apply(std::move(batch));
  auto update = sub.take();
  REQUIRE(update);
  auto incremental = compiler.update(*update);
  requireSameZone(*incremental, *compileZone(*update->snapshot, ZoneOptions{}));
  return incremental;
}

}  // namespace

TEST_CASE("dns zone: a PTR two Services share keeps each owner's record through updates",
          "[dns]") {
  kdp::k8s::Store store;
  auto sub = store.subscribe();
  ZoneCompiler compiler(ZoneOptions{});
  kdp::k8s::Batch first;
  first.upsert(clusterIpService("x", "a", "10.0.0.1"));
  first.upsert(clusterIpService("y", "b", "10.0.0.1"));
  first.upsert(headlessService("x", "h"));
  first.upsert(oneEndpoint("x", "h", "h0", "10.0.0.1"));
  store.apply(std::move(first));
  store.markSynced();
  auto z = compiler.update(*sub->take());
  CHECK(ptrTargets(*z, "10.0.0.1") == std::vector<std::string>{
                                           "a.x.svc.cluster.local.", "h0.h.x.svc.cluster.local.",
                                           "b.y.svc.cluster.local."});

  kdp::k8s::Batch removeA;
  removeA.remove(kdp::k8s::Kind::Service, "x", "a");
  z = step(store, *sub, compiler, std::move(removeA));
  CHECK(ptrTargets(*z, "10.0.0.1") ==
        std::vector<std::string>{"h0.h.x.svc.cluster.local.", "b.y.svc.cluster.local."});

  // b moves to another IP: 10.0.0.1 keeps the headless endpoint's record only.
  kdp::k8s::Batch moveB;
  moveB.upsert(clusterIpService("y", "b", "10.0.0.2"));
  z = step(store, *sub, compiler, std::move(moveB));
  CHECK(ptrTargets(*z, "10.0.0.1") == std::vector<std::string>{"h0.h.x.svc.cluster.local."});
  CHECK(ptrTargets(*z, "10.0.0.2") == std::vector<std::string>{"b.y.svc.cluster.local."});

  // The endpoint's slice goes: the name goes with its last owner.
  kdp::k8s::Batch removeSlice;
  removeSlice.remove(kdp::k8s::Kind::EndpointSlice, "x", "h-1");
  z = step(store, *sub, compiler, std::move(removeSlice));
  CHECK(ptrTargets(*z, "10.0.0.1").empty());

  // Two owners again, the second added by an update while the first is unchanged.
  kdp::k8s::Batch readd;
  readd.upsert(clusterIpService("x", "a", "10.0.0.2"));
  z = step(store, *sub, compiler, std::move(readd));
  CHECK(ptrTargets(*z, "10.0.0.2") ==
        std::vector<std::string>{"a.x.svc.cluster.local.", "b.y.svc.cluster.local."});
  kdp::k8s::Batch changeA;
  changeA.upsert(clusterIpService("x", "a", "10.0.0.3"));
  z = step(store, *sub, compiler, std::move(changeA));
  CHECK(ptrTargets(*z, "10.0.0.2") == std::vector<std::string>{"b.y.svc.cluster.local."});
  CHECK(ptrTargets(*z, "10.0.0.3") == std::vector<std::string>{"a.x.svc.cluster.local."});
}

TEST_CASE("dns zone: Services named outside the API server's rules publish no names", "[dns]") {
  // Only a caller that skips the decoders' validation can make these: "a.b" would otherwise own
  // the name of b's endpoint "a", and "Web" the name of "web".
  kdp::k8s::Store store;
  auto sub = store.subscribe();
  ZoneCompiler compiler(ZoneOptions{});
  kdp::k8s::Batch first;
  first.upsert(clusterIpService("ns", "a.b", "10.0.0.5"));
  first.upsert(headlessService("ns", "b"));
  first.upsert(oneEndpoint("ns", "b", "a", "10.0.0.6"));
  first.upsert(clusterIpService("ns", "Web", "10.0.0.7"));
  first.upsert(clusterIpService("ns", "web", "10.0.0.8"));
  first.upsert(clusterIpService("Ns", "web", "10.0.0.9"));
  store.apply(std::move(first));
  store.markSynced();
  auto z = compiler.update(*sub->take());
  REQUIRE(find(*z, "a.b.ns.svc.cluster.local"));
  CHECK(find(*z, "a.b.ns.svc.cluster.local")->find(w::kTypeA)->count == 1);
  CHECK(ptrTargets(*z, "10.0.0.6") == std::vector<std::string>{"a.b.ns.svc.cluster.local."});
  CHECK(find(*z, "web.ns.svc.cluster.local")->find(w::kTypeA)->count == 1);
  CHECK(ptrTargets(*z, "10.0.0.8") == std::vector<std::string>{"web.ns.svc.cluster.local."});
  for (const char* ip : {"10.0.0.5", "10.0.0.7", "10.0.0.9"}) {
    CHECK(ptrTargets(*z, ip).empty());
  }

  kdp::k8s::Batch change;
  change.upsert(oneEndpoint("ns", "b", "a", "10.0.0.10"));
  change.remove(kdp::k8s::Kind::Service, "ns", "Web");
  change.upsert(clusterIpService("ns", "a.b", "10.0.0.11"));
  z = step(store, *sub, compiler, std::move(change));
  CHECK(ptrTargets(*z, "10.0.0.10") == std::vector<std::string>{"a.b.ns.svc.cluster.local."});
  CHECK(ptrTargets(*z, "10.0.0.6").empty());
  CHECK(find(*z, "web.ns.svc.cluster.local")->find(w::kTypeA)->count == 1);
}

TEST_CASE("dns zone: updates that rewrite most shards repack the zone into one block", "[dns]") {
  kdp::k8s::Store store;
  auto sub = store.subscribe();
  ZoneCompiler compiler(ZoneOptions{});
  auto ipOf = [](int i, int round) {
    return "10." + std::to_string(round) + "." + std::to_string(i / 250) + "." +
           std::to_string(i % 250 + 1);
  };
  kdp::k8s::Batch first;
  for (int i = 0; i < 300; ++i) {
    first.upsert(clusterIpService("ns", "s" + std::to_string(i), ipOf(i, 0)));
  }
  store.apply(std::move(first));
  store.markSynced();
  auto z = compiler.update(*sub->take());
  REQUIRE(compiler.lastStats().full);
  int repacks = 0;
  for (int round = 1; round <= 2; ++round) {
    for (int from = 0; from < 300; from += 50) {
      kdp::k8s::Batch b;
      for (int i = from; i < from + 50; ++i) {
        b.upsert(clusterIpService("ns", "s" + std::to_string(i), ipOf(i, round)));
      }
      z = step(store, *sub, compiler, std::move(b));
      repacks += compiler.lastStats().repacked ? 1 : 0;
    }
  }
  CHECK(repacks >= 1);
  CHECK(ptrTargets(*z, ipOf(7, 2)) == std::vector<std::string>{"s7.ns.svc.cluster.local."});
  CHECK(ptrTargets(*z, ipOf(7, 1)).empty());
}

TEST_CASE("dns zone: large rrsets keep their counts and sizes through the compact encoding",
          "[dns]") {
  // 1,200 endpoints: counts above 127 and sizes above 16,383 take two and three varint bytes.
  kdp::k8s::Store store;
  kdp::k8s::Batch b;
  kdp::k8s::Service svc = headlessService("ns", "big");
  b.upsert(std::move(svc));
  kdp::k8s::EndpointSlice sl = oneEndpoint("ns", "big", "", "10.2.0.1");
  sl.endpoints.clear();
  kdp::k8s::EndpointPort port;
  port.name = "http";
  port.port = 8080;
  sl.ports.push_back(port);
  for (int i = 0; i < 1200; ++i) {
    kdp::k8s::Endpoint ep;
    ep.addresses.push_back(*kdp::IpAddr::parse("10.2." + std::to_string(i / 250) + "." +
                                               std::to_string(i % 250 + 1)));
    sl.endpoints.push_back(std::move(ep));
  }
  b.upsert(std::move(sl));
  store.apply(std::move(b));
  store.markSynced();
  auto z = compileZone(*store.snapshot(), ZoneOptions{});
  const auto node = find(*z, "big.ns.svc.cluster.local");
  REQUIRE(node);
  const RRset* a = node->find(w::kTypeA);
  REQUIRE(a != nullptr);
  CHECK(a->count == 1200);
  CHECK(a->tails.size() == 1200u * 14);
  const auto srv = find(*z, "_http._tcp.big.ns.svc.cluster.local");
  REQUIRE(srv);
  REQUIRE(srv->find(w::kTypeSRV) != nullptr);
  CHECK(srv->find(w::kTypeSRV)->count == 1200);
  CHECK(srv->find(w::kTypeSRV)->additionalCount == 1200);
  CHECK(srv->find(w::kTypeSRV)->additional.size() > 16384);
  CHECK(ptrTargets(*z, "10.2.4.200").size() == 1);
  CHECK(z->nodeCount() == 1200 * 2 + 3 + 4);  // hosts, PTRs; base, _tcp, SRV; the apex's four
}
