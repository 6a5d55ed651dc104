#include "common/ip.h"

#include <catch2/catch.hpp>

using kdp::Cidr;
using kdp::IpAddr;

TEST_CASE("ip: parses and formats IPv4 and IPv6 canonically") {
  CHECK(IpAddr::parse("10.0.0.1")->str() == "10.0.0.1");
  CHECK(IpAddr::parse("2001:DB8:0:0::1")->str() == "2001:db8::1");
  CHECK(IpAddr::parse("::ffff:10.0.0.1")->isV6());
  CHECK(IpAddr::parse("127.0.0.5")->isLoopback());
  CHECK(IpAddr::parse("::1")->isLoopback());
}

TEST_CASE("ip: refuses what the API server refuses") {
  auto bad = GENERATE(as<std::string>{}, "", "1.2.3", "1.2.3.4.5", "01.2.3.4", "256.1.1.1",
                      "1.2.3.4/32", "fe80::1%eth0", "::g", "1.2.3.-1", " 1.2.3.4");
  CAPTURE(bad);
  CHECK_FALSE(IpAddr::parse(bad));
}

TEST_CASE("ip: CIDR parses, clears host bits and tests membership") {
  auto c = Cidr::parse("10.1.2.3/8");
  REQUIRE(c);
  CHECK(c->str() == "10.0.0.0/8");
  CHECK(c->contains(*IpAddr::parse("10.255.0.1")));
  CHECK_FALSE(c->contains(*IpAddr::parse("11.0.0.1")));
  CHECK_FALSE(c->contains(*IpAddr::parse("::1")));
  auto c6 = Cidr::parse("fd00::1/64");
  REQUIRE(c6);
  CHECK(c6->str() == "fd00::/64");
  CHECK(c6->contains(*IpAddr::parse("fd00::ffff")));
  CHECK(Cidr::parse("0.0.0.0/0")->contains(*IpAddr::parse("8.8.8.8")));
  CHECK_FALSE(Cidr::parse("10.0.0.0/33"));
  CHECK_FALSE(Cidr::parse("10.0.0.0"));
  CHECK_FALSE(Cidr::parse("10.0.0.0/08"));
}
