#pragma once
// Test helper shared by the components' unit tests: a synced store Snapshot from YAML text.

#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <string_view>

#include "k8s/decode.h"
#include "k8s/store.h"

namespace kdp::test {

/// The objects of `yaml` in a store of their own, as one batch, marked synced. A decode error
/// fails the calling test.
inline std::shared_ptr<const k8s::Snapshot> snapshotOf(std::string_view yaml) {
  auto decoded = k8s::decodeYaml(yaml, "test.yaml");
  INFO((decoded.errors.empty() ? std::string() : decoded.errors.front().str()));
  REQUIRE(decoded.errors.empty());
  k8s::Store store;
  k8s::Batch batch;
  for (auto& o : decoded.objects) {
    batch.upsert(std::move(o));
  }
  store.apply(std::move(batch));
  store.markSynced();
  return store.snapshot();
}

}  // namespace kdp::test
