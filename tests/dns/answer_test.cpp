#include "dns/answer.h"

#include <catch2/catch.hpp>

#include "tests/dns/fixture.h"

using namespace kdp::dns;
using namespace kdp::dns::test;
namespace w = kdp::dns::wire;

namespace {

const Zone& testZone(PodsMode pods = PodsMode::Insecure) {
  static auto insecure = compileZone(*clusterSnapshot(), ZoneOptions{"cluster.local", 30, PodsMode::Insecure});
  static auto verified = compileZone(*clusterSnapshot(), ZoneOptions{"cluster.local", 30, PodsMode::Verified});
  static auto disabled = compileZone(*clusterSnapshot(), ZoneOptions{"cluster.local", 30, PodsMode::Disabled});
  return pods == PodsMode::Insecure ? *insecure : pods == PodsMode::Verified ? *verified : *disabled;
}

std::string ask(std::string_view name, std::uint16_t qtype, PodsMode pods = PodsMode::Insecure) {
  const std::string q = makeQuery(name, qtype);
  Answer a = answer(bytes(q), testZone(pods), Transport::Udp);
  REQUIRE(a.disposition == Disposition::Reply);
  return render(a.wire);
}

const std::string kSoa = "cluster.local. 30 SOA ns.dns.cluster.local. hostmaster.cluster.local. ... 30";

}  // namespace

TEST_CASE("dns answer: the Kubernetes DNS records, table-driven", "[dns]") {
  struct Case {
    const char* name;
    std::uint16_t qtype;
    std::string want;
  };
  const std::vector<Case> cases = {
      // ClusterIP Service: A, NODATA for AAAA, case kept in the answer.
      {"web.shop.svc.cluster.local", w::kTypeA, "NOERROR aa | web.shop.svc.cluster.local. 30 A 10.96.0.20 |  | "},
      {"WeB.Shop.SVC.cluster.local", w::kTypeA, "NOERROR aa | WeB.Shop.SVC.cluster.local. 30 A 10.96.0.20 |  | "},
      {"web.shop.svc.cluster.local", w::kTypeAAAA, "NOERROR aa |  | " + kSoa + " | "},
      {"web.shop.svc.cluster.local", w::kTypeTXT, "NOERROR aa |  | " + kSoa + " | "},
      // Dual stack.
      {"dual.shop.svc.cluster.local", w::kTypeAAAA, "NOERROR aa | dual.shop.svc.cluster.local. 30 AAAA fd00::30 |  | "},
      // SRV for named ports, target's address as additional; unnamed ports have none.
      {"_http._tcp.web.shop.svc.cluster.local", w::kTypeSRV,
       "NOERROR aa | _http._tcp.web.shop.svc.cluster.local. 30 SRV 0 100 80 web.shop.svc.cluster.local. |  | "
       "web.shop.svc.cluster.local. 30 A 10.96.0.20"},
      {"_dns._udp.dual.shop.svc.cluster.local", w::kTypeSRV,
       "NOERROR aa | _dns._udp.dual.shop.svc.cluster.local. 30 SRV 0 100 53 dual.shop.svc.cluster.local. |  | "
       "dual.shop.svc.cluster.local. 30 A 10.96.0.30; dual.shop.svc.cluster.local. 30 AAAA fd00::30"},
      {"_http._udp.web.shop.svc.cluster.local", w::kTypeSRV, "NXDOMAIN aa |  | " + kSoa + " | "},
      {"_tcp.web.shop.svc.cluster.local", w::kTypeSRV, "NOERROR aa |  | " + kSoa + " | "},
      // Headless: ready endpoints of both families, hostnames, dashed IPs, SRV per endpoint.
      {"db.data.svc.cluster.local", w::kTypeA,
       "NOERROR aa | db.data.svc.cluster.local. 30 A 10.244.2.32; db.data.svc.cluster.local. 30 A 10.244.1.31 |  | "},
      {"db.data.svc.cluster.local", w::kTypeAAAA, "NOERROR aa | db.data.svc.cluster.local. 30 AAAA fd00::31 |  | "},
      {"db-0.db.data.svc.cluster.local", w::kTypeA, "NOERROR aa | db-0.db.data.svc.cluster.local. 30 A 10.244.1.31 |  | "},
      {"db-0.db.data.svc.cluster.local", w::kTypeAAAA, "NOERROR aa | db-0.db.data.svc.cluster.local. 30 AAAA fd00::31 |  | "},
      {"10-244-2-32.db.data.svc.cluster.local", w::kTypeA, "NOERROR aa | 10-244-2-32.db.data.svc.cluster.local. 30 A 10.244.2.32 |  | "},
      {"db-2.db.data.svc.cluster.local", w::kTypeA, "NXDOMAIN aa |  | " + kSoa + " | "},
      {"_postgres._tcp.db.data.svc.cluster.local", w::kTypeSRV,
       "NOERROR aa | _postgres._tcp.db.data.svc.cluster.local. 30 SRV 0 50 5432 db-0.db.data.svc.cluster.local.; "
       "_postgres._tcp.db.data.svc.cluster.local. 30 SRV 0 50 5432 10-244-2-32.db.data.svc.cluster.local. |  | "
       "db-0.db.data.svc.cluster.local. 30 A 10.244.1.31; db-0.db.data.svc.cluster.local. 30 AAAA fd00::31; "
       "10-244-2-32.db.data.svc.cluster.local. 30 A 10.244.2.32"},
      // Headless with no ready endpoint: the name does not exist; publishNotReadyAddresses publishes.
      {"idle.data.svc.cluster.local", w::kTypeA, "NXDOMAIN aa |  | " + kSoa + " | "},
      {"eager.data.svc.cluster.local", w::kTypeA, "NOERROR aa | eager.data.svc.cluster.local. 30 A 10.244.3.2 |  | "},
      // PTR for ClusterIPs (v4, v6) and headless endpoints.
      {"20.0.96.10.in-addr.arpa", w::kTypePTR, "NOERROR aa | 20.0.96.10.in-addr.arpa. 30 PTR web.shop.svc.cluster.local. |  | "},
      {"0.3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa", w::kTypePTR,
       "NOERROR aa | 0.3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa. 30 PTR dual.shop.svc.cluster.local. |  | "},
      {"31.1.244.10.in-addr.arpa", w::kTypePTR, "NOERROR aa | 31.1.244.10.in-addr.arpa. 30 PTR db-0.db.data.svc.cluster.local. |  | "},
      // ExternalName: CNAME; inside the zone the target's records follow.
      {"payments.shop.svc.cluster.local", w::kTypeA,
       "NOERROR aa | payments.shop.svc.cluster.local. 30 CNAME api.payments.example.net. |  | "},
      {"alias.shop.svc.cluster.local", w::kTypeA,
       "NOERROR aa | alias.shop.svc.cluster.local. 30 CNAME web.shop.svc.cluster.local.; web.shop.svc.cluster.local. 30 A 10.96.0.20 |  | "},
      {"alias.shop.svc.cluster.local", w::kTypeCNAME,
       "NOERROR aa | alias.shop.svc.cluster.local. 30 CNAME web.shop.svc.cluster.local. |  | "},
      // Apex, version, name server.
      {"cluster.local", w::kTypeSOA, "NOERROR aa | " + kSoa + " |  | "},
      {"cluster.local", w::kTypeNS,
       "NOERROR aa | cluster.local. 30 NS ns.dns.cluster.local. |  | ns.dns.cluster.local. 30 A 10.96.0.10"},
      {"dns-version.cluster.local", w::kTypeTXT, "NOERROR aa | dns-version.cluster.local. 30 TXT \"1.1.0\" |  | "},
      {"ns.dns.cluster.local", w::kTypeA, "NOERROR aa | ns.dns.cluster.local. 30 A 10.96.0.10 |  | "},
      // NXDOMAIN vs NODATA.
      {"nope.shop.svc.cluster.local", w::kTypeA, "NXDOMAIN aa |  | " + kSoa + " | "},
      {"web.nope.svc.cluster.local", w::kTypeA, "NXDOMAIN aa |  | " + kSoa + " | "},
      {"shop.svc.cluster.local", w::kTypeA, "NOERROR aa |  | " + kSoa + " | "},
      {"empty.svc.cluster.local", w::kTypeA, "NOERROR aa |  | " + kSoa + " | "},
      {"nope.svc.cluster.local", w::kTypeA, "NXDOMAIN aa |  | " + kSoa + " | "},
      {"svc.cluster.local", w::kTypeA, "NOERROR aa |  | " + kSoa + " | "},
      {"example.com.shop.svc.cluster.local", w::kTypeA, "NXDOMAIN aa |  | " + kSoa + " | "},
      {"other.cluster.local", w::kTypeA, "NXDOMAIN aa |  | " + kSoa + " | "},
      // Pods, insecure: any well-formed address in an existing namespace.
      {"10-244-9-9.shop.pod.cluster.local", w::kTypeA, "NOERROR aa | 10-244-9-9.shop.pod.cluster.local. 30 A 10.244.9.9 |  | "},
      {"fd00--9.shop.pod.cluster.local", w::kTypeAAAA, "NOERROR aa | fd00--9.shop.pod.cluster.local. 30 AAAA fd00::9 |  | "},
      {"10-244-9-9.shop.pod.cluster.local", w::kTypeAAAA, "NOERROR aa |  | " + kSoa + " | "},
      {"10-244-9-999.shop.pod.cluster.local", w::kTypeA, "NXDOMAIN aa |  | " + kSoa + " | "},
      {"10-244-9-9.nope.pod.cluster.local", w::kTypeA, "NXDOMAIN aa |  | " + kSoa + " | "},
      {"shop.pod.cluster.local", w::kTypeA, "NOERROR aa |  | " + kSoa + " | "},
  };
  for (const auto& c : cases) {
    INFO(c.name << " type " << c.qtype);
    CHECK(ask(c.name, c.qtype) == c.want);
  }
}

TEST_CASE("dns answer: pod records verified and disabled", "[dns]") {
  CHECK(ask("10-244-1-21.shop.pod.cluster.local", w::kTypeA, PodsMode::Verified) ==
        "NOERROR aa | 10-244-1-21.shop.pod.cluster.local. 30 A 10.244.1.21 |  | ");
  CHECK(ask("10-244-9-9.shop.pod.cluster.local", w::kTypeA, PodsMode::Verified) ==
        "NXDOMAIN aa |  | " + kSoa + " | ");
  CHECK(ask("10-244-1-21.default.pod.cluster.local", w::kTypeA, PodsMode::Verified) ==
        "NXDOMAIN aa |  | " + kSoa + " | ");
  CHECK(ask("10-244-1-21.shop.pod.cluster.local", w::kTypeA, PodsMode::Disabled) ==
        "NXDOMAIN aa |  | " + kSoa + " | ");
}

TEST_CASE("dns answer: wire in, wire out for an A query with EDNS", "[dns]") {
  const std::string q = makeQuery("Web.shop.svc.cluster.local", w::kTypeA, 1232);
  Answer a = answer(bytes(q), testZone(), Transport::Udp);
  REQUIRE(a.disposition == Disposition::Reply);
  std::string want;
  w::Writer wr(want);
  wr.u16(0xBEEF);
  wr.u16(w::kFlagQR | w::kFlagAA | w::kFlagRD | w::kFlagRA);
  wr.u16(1);
  wr.u16(1);
  wr.u16(0);
  wr.u16(1);
  wr.name(*w::nameFromText("Web.shop.svc.cluster.local"));
  wr.u16(w::kTypeA);
  wr.u16(w::kClassIN);
  wr.bytes(std::string("\xC0\x0C\x00\x01\x00\x01\x00\x00\x00\x1E\x00\x04\x0A\x60\x00\x14", 16));
  wr.bytes(std::string("\x00\x00\x29\x04\xD0\x00\x00\x00\x00\x00\x00", 11));
  CHECK(a.wire == want);
  CHECK(a.rcode == 0);
  CHECK(a.authoritative);
}

TEST_CASE("dns answer: protocol errors and dispositions", "[dns]") {
  const Zone& zone = testZone();
  SECTION("shorter than a header, or a response: dropped") {
    CHECK(answer(bytes(std::string(11, '\0')), zone, Transport::Udp).disposition == Disposition::Drop);
    std::string q = makeQuery("web.shop.svc.cluster.local", w::kTypeA);
    q[2] = static_cast<char>(q[2] | 0x80);
    CHECK(answer(bytes(q), zone, Transport::Udp).disposition == Disposition::Drop);
  }
  SECTION("two questions, no question, garbage: FORMERR with the id") {
    std::string q = makeQuery("web.shop.svc.cluster.local", w::kTypeA);
    q[5] = 2;
    Answer a = answer(bytes(q), zone, Transport::Udp);
    REQUIRE(a.disposition == Disposition::Reply);
    CHECK(render(a.wire) == "FORMERR |  |  | ");
    CHECK(a.wire.substr(0, 2) == "\xBE\xEF");
    q[5] = 0;
    CHECK(render(answer(bytes(q), zone, Transport::Udp).wire) == "FORMERR |  |  | ");
    std::string g = q.substr(0, 12) + std::string("\x05" "ab", 3);
    g[5] = 1;
    CHECK(render(answer(bytes(g), zone, Transport::Udp).wire) == "FORMERR |  |  | ");
  }
  SECTION("opcodes other than QUERY: NOTIMP") {
    std::string q = makeQuery("web.shop.svc.cluster.local", w::kTypeA);
    q[2] = static_cast<char>(q[2] | (2 << 3));  // STATUS
    CHECK(render(answer(bytes(q), zone, Transport::Udp).wire) == "NOTIMP |  |  | ");
  }
  SECTION("zone transfers and other classes: REFUSED") {
    CHECK(ask("cluster.local", w::kTypeAXFR) == "REFUSED |  |  | ");
    CHECK(ask("cluster.local", w::kTypeIXFR) == "REFUSED |  |  | ");
    const std::string q = makeQuery("web.shop.svc.cluster.local", w::kTypeA, 0, 3 /* CH */);
    CHECK(render(answer(bytes(q), zone, Transport::Udp).wire) == "REFUSED |  |  | ");
  }
  SECTION("EDNS version 1: BADVERS") {
    std::string q = makeQuery("web.shop.svc.cluster.local", w::kTypeA, 1232);
    q[q.size() - 5] = 1;  // version byte of the OPT TTL
    CHECK(render(answer(bytes(q), zone, Transport::Udp).wire) == "BADVERS |  |  | OPT 1232");
  }
  SECTION("names outside the zone and unknown reverse names are forwarded") {
    const std::string q = makeQuery("example.com", w::kTypeA);
    CHECK(answer(bytes(q), zone, Transport::Udp).disposition == Disposition::Forward);
    const std::string r = makeQuery("1.0.0.127.in-addr.arpa", w::kTypePTR);
    CHECK(answer(bytes(r), zone, Transport::Udp).disposition == Disposition::Forward);
  }
  SECTION("before the first full load: SERVFAIL for cluster names, never NXDOMAIN") {
    auto unsynced = compileZone(*clusterSnapshot({}, false), ZoneOptions{});
    const std::string q = makeQuery("web.shop.svc.cluster.local", w::kTypeA);
    Answer a = answer(bytes(q), *unsynced, Transport::Udp);
    CHECK(render(a.wire) == "SERVFAIL |  |  | ");
    const Zone empty(ZoneOptions{});
    CHECK(render(answer(bytes(q), empty, Transport::Udp).wire) == "SERVFAIL |  |  | ");
    const std::string f = makeQuery("example.com", w::kTypeA);
    CHECK(answer(bytes(f), empty, Transport::Udp).disposition == Disposition::Forward);
  }
  SECTION("ExternalName out of the zone is marked for the upstream path") {
    const std::string q = makeQuery("payments.shop.svc.cluster.local", w::kTypeA);
    Answer a = answer(bytes(q), zone, Transport::Udp);
    CHECK(a.externalTarget == *w::nameFromText("api.payments.example.net"));
  }
}

TEST_CASE("dns answer: TC when the answer exceeds the client's UDP size", "[dns]") {
  std::string yaml = R"(
apiVersion: v1
kind: Service
metadata: {name: big, namespace: shop}
spec: {clusterIP: None, ports: [{name: p, port: 1}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: big-1, namespace: shop, labels: {kubernetes.io/service-name: big}}
addressType: IPv4
ports: [{name: p, protocol: TCP, port: 1}]
endpoints:
)";
  for (int i = 1; i <= 60; ++i) {
    yaml += "- {addresses: [10.1.0." + std::to_string(i) + "]}\n";
  }
  auto zone = compileZone(*clusterSnapshot(yaml), ZoneOptions{});
  const std::string plain = makeQuery("big.shop.svc.cluster.local", w::kTypeA);
  Answer udp = answer(bytes(plain), *zone, Transport::Udp);
  CHECK(udp.truncated);
  CHECK(udp.wire.size() <= 512);
  CHECK(render(udp.wire) == "NOERROR aa tc |  |  | ");
  Answer tcp = answer(bytes(plain), *zone, Transport::Tcp);
  CHECK_FALSE(tcp.truncated);
  CHECK(tcp.wire.size() == 12 + 32 + 60 * 16);
  const std::string edns = makeQuery("big.shop.svc.cluster.local", w::kTypeA, 4096);
  Answer big = answer(bytes(edns), *zone, Transport::Udp);
  CHECK_FALSE(big.truncated);
  // SRV: the additional section goes first when the answer alone fits.
  const std::string srv = makeQuery("_p._tcp.big.shop.svc.cluster.local", w::kTypeSRV, 4096);
  Answer s = answer(bytes(srv), *zone, Transport::Udp);
  CHECK_FALSE(s.truncated);
  CHECK(s.wire.size() <= 4096);
  CHECK(render(s.wire).ends_with(" |  | OPT 1232"));
  CHECK(answer(bytes(srv), *zone, Transport::Tcp).wire.size() > 4096);
}

TEST_CASE("dns answer: autopath answers a pod's first search-path query with the final answer", "[dns]") {
  ZoneOptions o;
  o.autopath = true;
  auto zone = compileZone(*clusterSnapshot(), o);
  const std::vector<w::WireName> hostSearch = {*w::nameFromText("corp.test")};
  QueryContext pod{*kdp::IpAddr::parse("10.244.1.21"), &hostSearch};  // api-0 in shop
  auto ask = [&](std::string_view name, std::uint16_t qtype, const QueryContext& ctx) {
    const std::string q = makeQuery(name, qtype);
    return answer(bytes(q), *zone, Transport::Udp, ctx);
  };

  SECTION("the rest of the search path inside the zone: CNAME and records at once") {
    Answer a = ask("db.Data.shop.svc.cluster.local", w::kTypeA, pod);
    CHECK(render(a.wire) ==
          "NOERROR aa | db.Data.shop.svc.cluster.local. 30 CNAME db.data.svc.cluster.local.; "
          "db.data.svc.cluster.local. 30 A 10.244.2.32; db.data.svc.cluster.local. 30 A 10.244.1.31 |  | ");
    CHECK(a.autopath.empty());
    Answer e = ask("payments.shop.shop.svc.cluster.local", w::kTypeA, pod);
    CHECK(render(e.wire) ==
          "NOERROR aa | payments.shop.shop.svc.cluster.local. 30 CNAME payments.shop.svc.cluster.local.; "
          "payments.shop.svc.cluster.local. 30 CNAME api.payments.example.net. |  | ");
    CHECK(e.externalTarget == *w::nameFromText("api.payments.example.net"));
  }
  SECTION("outside the zone: the candidates for the forwarder, NXDOMAIN as the fallback") {
    Answer a = ask("example.com.shop.svc.cluster.local", w::kTypeAAAA, pod);
    CHECK(render(a.wire).starts_with("NXDOMAIN aa"));
    CHECK(a.autopath ==
          std::vector<w::WireName>{*w::nameFromText("example.com.corp.test"), *w::nameFromText("example.com")});
    CHECK(a.ttl == 30);
  }
  SECTION("not applied: unknown client, other namespace, names that exist, autopath off") {
    CHECK(ask("example.com.shop.svc.cluster.local", w::kTypeA, QueryContext{*kdp::IpAddr::parse("10.9.9.9"), &hostSearch}).autopath.empty());
    CHECK(ask("example.com.data.svc.cluster.local", w::kTypeA, pod).autopath.empty());
    CHECK(render(ask("web.shop.svc.cluster.local", w::kTypeA, pod).wire) ==
          "NOERROR aa | web.shop.svc.cluster.local. 30 A 10.96.0.20 |  | ");
    const std::string q = makeQuery("db.data.shop.svc.cluster.local", w::kTypeA);
    CHECK(render(answer(bytes(q), testZone(), Transport::Udp, pod).wire).starts_with("NXDOMAIN"));
  }
}

TEST_CASE("dns answer: a compressed question is echoed written out (found by the fuzzer)", "[dns]") {
  // The question's name ends in a pointer to offset 4 of the header (qdcount's high byte, 0:
  // the root). Copied verbatim, the pointer would land on the response's own header.
  std::string q = makeQuery("web.shop.svc.cluster.local", w::kTypeA).substr(0, 12);
  q += std::string("\3web\4shop\3svc\7cluster\5local\xC0\x04\0\1\0\1", 33);
  Answer a = answer(bytes(q), testZone(), Transport::Udp);
  REQUIRE(a.disposition == Disposition::Reply);
  CHECK(render(a.wire) == "NOERROR aa | web.shop.svc.cluster.local. 30 A 10.96.0.20 |  | ");
  // The fuzzer's own input: a pointer back into the question whose labels run on past it.
  const std::uint8_t crash[] = {
      0x12, 0x71, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x30,
      0x70, 0x2d, 0x31, 0x04, 0x73, 0x68, 0x6f, 0x70, 0x03, 0x70, 0x6f, 0x64, 0x07, 0x63, 0x6c,
      0x34, 0x34, 0x34, 0x34, 0x34, 0x34, 0x34, 0x34, 0x34, 0x34, 0x80, 0x80, 0x80, 0x80, 0x34,
      0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
      0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x34, 0x34, 0x34,
      0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
      0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x27, 0x01, 0x01, 0x01, 0x01, 0x01,
      0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
      0x01, 0x01, 0x01, 0x2f, 0x01, 0x01, 0x01, 0x01, 0xc0, 0x26, 0x34, 0x34, 0x34, 0x34, 0x00,
      0x00, 0x01, 0x00, 0x00, 0x08, 0x65, 0x78, 0x91, 0x61, 0x74, 0x64, 0x67, 0x00, 0x00, 0x01,
      0x61, 0x61, 0x00, 0x01};
  Answer c = answer(std::span<const std::uint8_t>(crash, sizeof crash), testZone(), Transport::Udp);
  if (c.disposition == Disposition::Reply) {
    CHECK(w::parseMessage(bytes(c.wire)));
  }
}
