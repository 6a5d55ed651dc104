#include "dns/detail/forwarder.h"

#include <catch2/catch.hpp>

#include "tests/dns/fixture.h"

using namespace kdp::dns;
using namespace kdp::dns::test;
namespace w = kdp::dns::wire;

TEST_CASE("dns forwarder: nameservers from resolv.conf", "[dns]") {
  const auto ns = parseResolvConf(
      "# comment\nsearch default.svc.cluster.local\nnameserver 10.0.0.10\nnameserver\tfd00::53 # x\n"
      "nameserver bogus\nnameservers 1.1.1.1\noptions ndots:5\nnameserver 192.0.2.1");
  REQUIRE(ns.size() == 3);
  CHECK(ns[0].str() == "10.0.0.10:53");
  CHECK(ns[1].str() == "[fd00::53]:53");
  CHECK(ns[2].str() == "192.0.2.1:53");
  CHECK(parseResolvConf("").empty());
}

TEST_CASE("dns forwarder: an out-of-zone CNAME target's records are appended", "[dns]") {
  auto zone = compileZone(*clusterSnapshot(), ZoneOptions{});
  const std::string q = makeQuery("payments.shop.svc.cluster.local", w::kTypeA, 1232);
  Answer a = answer(bytes(q), *zone, Transport::Udp);
  REQUIRE(a.externalTarget == *w::nameFromText("api.payments.example.net"));

  // Upstream's answer, compressed: a CNAME then an A.
  std::string up;
  w::Writer wr(up);
  wr.u16(1);
  wr.u16(w::kFlagQR | w::kFlagRD | w::kFlagRA);
  wr.u16(1);
  wr.u16(2);
  wr.u16(0);
  wr.u16(0);
  wr.name(*w::nameFromText("api.payments.example.net"));
  wr.u16(w::kTypeA);
  wr.u16(w::kClassIN);
  wr.pointer(12);
  wr.u16(w::kTypeCNAME);
  wr.u16(w::kClassIN);
  wr.u32(60);
  wr.rdata([&] {
    wr.u8(2);
    wr.bytes("lb");
    wr.pointer(16);  // payments.example.net
  });
  wr.bytes(std::string("\2lb\xC0\x10", 5));
  wr.u16(w::kTypeA);
  wr.u16(w::kClassIN);
  wr.u32(60);
  wr.rdata([&] { wr.u32(0xC0000232); });

  std::uint16_t rcode = 0;
  const std::string out = appendChase(a.wire, bytes(up), 1232, rcode);
  CHECK(rcode == 0);
  CHECK(render(out) ==
        "NOERROR aa | payments.shop.svc.cluster.local. 30 CNAME api.payments.example.net.; "
        "api.payments.example.net. 60 CNAME lb.payments.example.net.; "
        "lb.payments.example.net. 60 A 192.0.2.50 |  | OPT 1232");
  // Too large for the client: the CNAME alone.
  CHECK(appendChase(a.wire, bytes(up), a.wire.size() + 10, rcode) == a.wire);
  // Garbage from upstream: the CNAME alone.
  CHECK(appendChase(a.wire, bytes(std::string("xx")), 1232, rcode) == a.wire);
}

TEST_CASE("dns forwarder: search domains from resolv.conf", "[dns]") {
  CHECK(parseResolvConfSearch("search a.example Corp.Test\nnameserver 1.1.1.1\n") ==
        std::vector<std::string>{*w::nameFromText("a.example"), *w::nameFromText("corp.test")});
  CHECK(parseResolvConfSearch("search one\nsearch two three # c\n") ==
        std::vector<std::string>{*w::nameFromText("two"), *w::nameFromText("three")});
  CHECK(parseResolvConfSearch("domain x\n").empty());
}
