#include "k8s/objects.h"

#include <catch2/catch.hpp>

#include <string>
#include <utility>
#include <vector>

using namespace kdp;
using namespace kdp::k8s;

namespace {
IpAddr ip(const char* text) {
  return *IpAddr::parse(text);
}
}  // namespace

TEST_CASE("CompactString: empty without a block, compares and converts as its text", "[objects]") {
  CompactString s;
  CHECK(s.empty());
  CHECK(s.size() == 0);
  CHECK(s == "");
  s = std::string("node-a");
  CHECK(s == "node-a");
  CHECK(s.size() == 6);
  CHECK(std::string(s) == "node-a");
  CompactString copy = s;
  CHECK(copy == s);
  CompactString moved = std::move(copy);
  CHECK(moved == "node-a");
  s = "";
  CHECK(s.empty());
  CHECK(s != moved);
}

TEST_CASE("AddressList: one address inline, several on the heap, value semantics", "[objects]") {
  AddressList list;
  CHECK(list.empty());
  CHECK(list.begin() == list.end());
  list.push_back(ip("10.0.0.1"));
  CHECK(list.size() == 1);
  CHECK(list.front() == ip("10.0.0.1"));
  CHECK(list == std::vector<IpAddr>{ip("10.0.0.1")});
  list.push_back(ip("fd00::1"));
  list.push_back(ip("10.0.0.3"));
  CHECK(list == std::vector<IpAddr>{ip("10.0.0.1"), ip("fd00::1"), ip("10.0.0.3")});
  CHECK(list.at(2) == ip("10.0.0.3"));
  CHECK_THROWS_AS(list.at(3), std::out_of_range);

  AddressList copy = list;
  CHECK(copy == list);
  CHECK(copy.data() != list.data());
  AddressList moved = std::move(copy);
  CHECK(moved == list);
  CHECK(copy.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  moved = AddressList{ip("10.0.0.9")};
  CHECK(moved == std::vector<IpAddr>{ip("10.0.0.9")});
  moved = list;
  CHECK(moved == list);
  list.clear();
  CHECK(list.empty());
  CHECK(moved.size() == 3);
}

TEST_CASE("Endpoint: details compared by value, empty ones not allocated", "[objects]") {
  Endpoint a;
  a.addresses = {ip("10.0.0.1")};
  a.setDetails(EndpointDetails{});
  CHECK(a.extra == nullptr);
  CHECK(a.details().zone.empty());
  Endpoint b = a;
  EndpointDetails zone;
  zone.zone = "zone-a";
  a.setDetails(zone);
  CHECK(a != b);
  b.setDetails(zone);  // another allocation, same value
  CHECK(a.extra != b.extra);
  CHECK(a == b);
  b.hostname = "web-0";
  CHECK(a != b);
}
