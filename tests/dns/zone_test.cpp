#include "dns/zone.h"

#include <catch2/catch.hpp>

#include "tests/dns/fixture.h"

using namespace kdp::dns;
using namespace kdp::dns::test;
namespace w = kdp::dns::wire;

namespace {

const Node* find(const Zone& z, std::string_view name) {
  return z.find(w::lowerName(*w::nameFromText(name)));
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
  CHECK(find(*z, "_tcp.web.shop.svc.cluster.local") != nullptr);  // empty non-terminal
  CHECK(find(*z, "_tcp.web.shop.svc.cluster.local")->rrsets.empty());
  CHECK(find(*z, "shop.svc.cluster.local") != nullptr);
  CHECK(find(*z, "idle.data.svc.cluster.local") == nullptr);
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
  CHECK(find(*other, "web.shop.svc.cluster.local") == nullptr);
  CHECK(find(*other, "pod.example.internal") == nullptr);
  CHECK(other->apex() == *w::nameFromText("example.internal"));
}

TEST_CASE("dns zone: an unsynced snapshot compiles to an unsynced zone", "[dns]") {
  auto z = compileZone(*clusterSnapshot({}, false), ZoneOptions{});
  CHECK_FALSE(z->synced());
}
