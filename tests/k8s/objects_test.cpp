#include "k8s/objects.h"

#include <catch2/catch.hpp>

#include <stdexcept>
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

TEST_CASE("CompactStringMap: sorted by key, empty without a vector, value semantics", "[objects]") {
  CompactStringMap m;
  CHECK(m.empty());
  CHECK(m.begin() == m.end());
  CHECK(m.find("a") == m.end());
  CHECK(m == StringMap{});
  CHECK(sizeof m == sizeof(void*));
  m.insert_or_assign("b", "2");
  m.insert_or_assign("a", "1");
  m.emplace("a", "ignored");  // as std::map: present keys stay
  m.insert_or_assign("c", "3");
  m.insert_or_assign("c", "three");  // the last value wins
  std::vector<std::string> keys;
  for (const auto& [k, v] : m) {
    keys.push_back(k + "=" + v);
  }
  CHECK(keys == std::vector<std::string>{"a=1", "b=2", "c=three"});
  CHECK(m.at("b") == "2");
  CHECK_THROWS_AS(m.at("z"), std::out_of_range);
  CHECK(m.count("c") == 1);
  CHECK(m == StringMap{{"a", "1"}, {"b", "2"}, {"c", "three"}});
  CHECK(m == CompactStringMap(StringMap{{"c", "three"}, {"a", "1"}, {"b", "2"}}));
  CompactStringMap copy = m;
  CHECK(copy == m);
  CHECK(m.erase("b") == 1);
  CHECK(m.erase("b") == 0);
  CHECK_FALSE(copy == m);
  CHECK(m.erase("a") + m.erase("c") == 2);
  CHECK(m.empty());
  CHECK(m == CompactStringMap{});
  CompactStringMap listed{{"x", "1"}, {"w", "2"}, {"x", "3"}};
  CHECK(listed == StringMap{{"w", "2"}, {"x", "3"}});
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
  {
    Endpoint c = a;  // shares a's details
    CHECK(c.extra == a.extra);
    Endpoint d = std::move(c);
    CHECK(d.extra == a.extra);
    CHECK(c.extra == nullptr);  // NOLINT(bugprone-use-after-move): moved-from is null
  }
  CHECK(a.details().zone == "zone-a");  // still alive after the copies went
  CHECK(sizeof(Endpoint) <= 56);
  b.hostname = "web-0";
  CHECK(a != b);
}
