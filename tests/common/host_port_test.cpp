#include "common/host_port.h"

#include <catch2/catch.hpp>

using kdp::parseHostPort;

TEST_CASE("address: ADDR:PORT parses IPv4 and bracketed IPv6", "[cli]") {
  CHECK(parseHostPort("127.0.0.1:9090")->str() == "127.0.0.1:9090");
  CHECK(parseHostPort("0.0.0.0:0")->port == 0);
  CHECK(parseHostPort("[::1]:65535")->str() == "[::1]:65535");
  CHECK(parseHostPort("[2001:DB8::1]:53")->str() == "[2001:db8::1]:53");
  auto bad = GENERATE(as<std::string>{}, "", "127.0.0.1", ":9090", "127.0.0.1:", "127.0.0.1:65536",
                      "127.0.0.1:090", "127.0.0.1:+1", "::1:9090", "[::1]", "[::1]9090",
                      "[127.0.0.1]:80", "[::1:80", "localhost:80", "1.2.3:80", "[fe80::1%eth0]:80");
  CAPTURE(bad);
  CHECK_FALSE(parseHostPort(bad));
}

TEST_CASE("address: ADDR[:PORT] with a default port", "[cli]") {
  CHECK(parseHostPort("10.0.0.1", 53)->str() == "10.0.0.1:53");
  CHECK(parseHostPort("10.0.0.1:5353", 53)->str() == "10.0.0.1:5353");
  CHECK(parseHostPort("fd00::1", 53)->str() == "[fd00::1]:53");
  CHECK(parseHostPort("[fd00::1]", 53)->str() == "[fd00::1]:53");
  CHECK(parseHostPort("[fd00::1]:54", 53)->str() == "[fd00::1]:54");
  CHECK_FALSE(parseHostPort("10.0.0.1:", 53));
  CHECK_FALSE(parseHostPort("dns.google", 53));
}
