#pragma once
// One typed decoder per kind: walks the top-level fields of one object, fills the struct of
// k8s/objects.h with the API server's defaults and records in the Reader every error that would
// make the API server refuse the object. The caller drops the object when reader.ok() is false.

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "k8s/detail/json_reader.h"
#include "k8s/objects.h"

namespace kdp::k8s::detail {

/// The top-level fields of an object, found in one pass (absent fields are nullopt).
struct RootFields {
  std::optional<dom::element> kind, apiVersion, metadata, spec, status;
  std::optional<dom::element> data, stringData, type;                // Secret
  std::optional<dom::element> addressType, endpoints, ports;         // EndpointSlice
  std::optional<dom::element> items;                                 // List

  static RootFields scan(dom::object object);
};

/// Context of one decoding: `apiVersion` is what the object carried (checked by the caller),
/// "" when it had none (an item of an API List).
struct KindContext {
  Reader& reader;
  const Path& root;
  std::string_view apiVersion;
};

/// metadata: name (validated per kind), namespace ("default" when absent for namespaced kinds),
/// uid, resourceVersion, creationTimestamp, deletionTimestamp, labels and annotations.
void decodeObjectMeta(KindContext& c, const RootFields& f, Kind kind, ObjectMeta& meta);

void decodeNamespace(KindContext& c, const RootFields& f, Namespace& out);
void decodeService(KindContext& c, const RootFields& f, Service& out);
void decodeEndpointSlice(KindContext& c, const RootFields& f, EndpointSlice& out);
void decodeIngress(KindContext& c, const RootFields& f, Ingress& out);
void decodeIngressClass(KindContext& c, const RootFields& f, IngressClass& out);
void decodeSecret(KindContext& c, const RootFields& f, Secret& out);
void decodePod(KindContext& c, const RootFields& f, Pod& out);
void decodeNode(KindContext& c, const RootFields& f, Node& out);

/// status.loadBalancer.ingress of Services and Ingresses (IngressLoadBalancerIngress has no
/// ipMode; `allowIpMode` false refuses it there).
void decodeLoadBalancerIngress(Reader& r, dom::element e, const Path& p, bool allowIpMode,
                               std::vector<LoadBalancerIngress>& out);

/// Port numbers: 1..65535.
bool isValidPortNumber(std::int64_t port);
inline constexpr std::string_view kPortRangeMessage = "must be between 1 and 65535, inclusive";

/// Finds duplicates among `keys` (pairs of key and index) in O(n log n) and calls
/// dup(index) for each later occurrence. Sorts `keys`.
template <class Key, class F>
void forEachDuplicate(std::vector<std::pair<Key, std::size_t>>& keys, F&& dup) {
  std::sort(keys.begin(), keys.end());
  for (std::size_t i = 1; i < keys.size(); ++i) {
    if (keys[i].first == keys[i - 1].first) {
      dup(keys[i].second);
    }
  }
}

}  // namespace kdp::k8s::detail
