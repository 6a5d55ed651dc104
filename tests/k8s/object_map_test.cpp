#include "k8s/object_map.h"

#include <catch2/catch.hpp>

#include <map>
#include <random>
#include <string>

using kdp::k8s::ObjectMap;

namespace {

std::string keyOf(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "k%06d", i);
  return buf;
}

template <class T>
std::map<std::string, T> contents(const ObjectMap<T>& m) {
  std::map<std::string, T> out;
  for (const auto& e : m) {
    out.emplace(e.key, *e.value);
  }
  return out;
}

}  // namespace

TEST_CASE("object map: agrees with std::map under random inserts and erases", "[store]") {
  std::mt19937 rng(42);
  ObjectMap<int> map;
  std::map<std::string, int> model;
  for (int step = 0; step < 20000; ++step) {
    int k = static_cast<int>(rng() % 3000);
    if (rng() % 3 == 0) {
      auto removed = map.erase(keyOf(k));
      CHECK((removed != nullptr) == (model.erase(keyOf(k)) == 1));
    } else {
      map.set(keyOf(k), std::make_shared<const int>(step));
      model[keyOf(k)] = step;
    }
  }
  REQUIRE(map.size() == model.size());
  CHECK(contents(map) == model);
  for (int k = 0; k < 3000; ++k) {
    auto it = model.find(keyOf(k));
    const int* v = map.get(keyOf(k));
    REQUIRE((v != nullptr) == (it != model.end()));
    if (v) {
      CHECK(*v == it->second);
    }
  }
}

TEST_CASE("object map: a copy is isolated from later writes", "[store]") {
  ObjectMap<int> map;
  for (int i = 0; i < 1000; ++i) {
    map.set(keyOf(i), std::make_shared<const int>(i));
  }
  const ObjectMap<int> before = map;
  const auto expected = contents(before);
  for (int i = 0; i < 1000; i += 7) {
    map.set(keyOf(i), std::make_shared<const int>(-i));
  }
  for (int i = 1; i < 1000; i += 5) {
    map.erase(keyOf(i));
  }
  map.set("zzz", std::make_shared<const int>(1));
  CHECK(contents(before) == expected);
  CHECK(before.size() == 1000);
  CHECK(*map.get(keyOf(7)) == -7);
  CHECK(map.get(keyOf(1)) == nullptr);
}

TEST_CASE("object map: prefix ranges and lower bounds", "[store]") {
  ObjectMap<int> map;
  for (std::string k : {"a/x/1", "a/x/2", "a/xy/1", "a/y/1", "b/x/1"}) {
    map.set(k, std::make_shared<const int>(1));
  }
  std::vector<std::string> got;
  map.forEachWithPrefix("a/x/", [&](const auto& e) { got.push_back(e.key); });
  CHECK(got == std::vector<std::string>{"a/x/1", "a/x/2"});
  got.clear();
  map.forEachWithPrefix("c/", [&](const auto& e) { got.push_back(e.key); });
  CHECK(got.empty());
  CHECK(map.lowerBound("a/z")->key == "b/x/1");
  CHECK(map.lowerBound("c") == map.end());
  map.erase("a/x/1");
  map.erase("a/x/2");
  map.forEachWithPrefix("a/x/", [&](const auto& e) { got.push_back(e.key); });
  CHECK(got.empty());
  CHECK(ObjectMap<int>().begin() == ObjectMap<int>().end());
}
