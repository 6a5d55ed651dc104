#pragma once
// Test helpers: a Snapshot from YAML text, and the sets/maps section of rendered nft text.

#include <catch2/catch.hpp>

#include <memory>
#include <sstream>
#include <string>
#include <string_view>

#include "k8s/decode.h"
#include "k8s/store.h"

namespace kdp::proxy::test {

inline std::shared_ptr<const k8s::Snapshot> snapshotOf(std::string_view yaml) {
  auto decoded = k8s::decodeYaml(yaml, "test.yaml");
  for (const auto& e : decoded.errors) {
    FAIL(e.str());
  }
  k8s::Store store;
  k8s::Batch batch;
  for (auto& o : decoded.objects) {
    batch.upsert(std::move(o));
  }
  store.apply(std::move(batch));
  store.markSynced();
  return store.snapshot();
}

/// The elements of every set and map in rendered `nft` text, one per line as
/// `<set>: <element>`: the dynamic part of the tables, for golden comparisons.
inline std::string setsOf(const std::string& text) {
  std::istringstream in(text);
  std::string line, out, set;
  while (std::getline(in, line)) {
    if (line.rfind("\tmap ", 0) == 0 || line.rfind("\tset ", 0) == 0) {
      set = line.substr(5, line.find(" {") - 5);
    } else if (line.rfind("\tchain ", 0) == 0) {
      set.clear();
    } else if (!set.empty() && line.rfind("\t\t\t", 0) == 0) {
      std::string element = line.substr(3);
      if (!element.empty() && element.back() == ',') {
        element.pop_back();
      }
      out += set + ": " + element + "\n";
    }
  }
  return out;
}

}  // namespace kdp::proxy::test
