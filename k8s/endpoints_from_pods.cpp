#include "k8s/endpoints_from_pods.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>

namespace kdp::k8s {

namespace {

/// Readiness of a Pod as the controller reads it (the Ready condition). In a manifests directory
/// a Pod is often written without any status: a Pod that reports no Ready condition counts as
/// ready when its phase is Running or absent, so that a hand-written Pod with just an IP serves.
/// A Pending Pod without the condition is not ready.
bool podReady(const Pod& pod) {
  if (pod.ready) {
    return *pod.ready;
  }
  return pod.phase.empty() || pod.phase == "Running";
}

/// A terminal Pod (Succeeded or Failed) never backs a Service (ShouldPodBeInEndpoints).
bool podTerminal(const Pod& pod) {
  return pod.phase == "Succeeded" || pod.phase == "Failed";
}

/// The port a Pod serves servicePort on (podutil.FindPort): a named targetPort is the first
/// container port with that name and the service port's protocol; nullopt when there is none.
std::optional<std::int32_t> findPort(const Pod& pod, const ServicePort& servicePort) {
  if (servicePort.targetPort.isName()) {
    for (const ContainerPort& cp : pod.ports) {
      if (cp.name == servicePort.targetPort.name && cp.protocol == servicePort.protocol) {
        return cp.containerPort;
      }
    }
    return std::nullopt;
  }
  // The decoder defaults targetPort to port; keep that reading for hand-built objects too.
  return servicePort.targetPort.number != 0 ? servicePort.targetPort.number : servicePort.port;
}

void appendField(std::string& out, std::string_view field) {
  out.append(std::to_string(field.size())).append(":").append(field);
}

/// An unambiguous text of a resolved port set: the group key and part of the slice name's hash.
std::string portsKey(const std::vector<EndpointPort>& ports) {
  std::string key;
  for (const EndpointPort& p : ports) {
    appendField(key, p.name);
    appendField(key, protocolName(p.protocol));
    appendField(key, p.port ? std::to_string(*p.port) : std::string());
    appendField(key, p.appProtocol);
  }
  return key;
}

/// FNV-1a, 64 bits: stable across runs and builds, unlike std::hash.
std::uint64_t fnv1a(std::string_view text) {
  std::uint64_t h = 1469598103934665603ULL;
  for (char c : text) {
    h ^= static_cast<std::uint8_t>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

std::string hex8(std::uint64_t h) {
  static constexpr char kDigits[] = "0123456789abcdef";
  const auto folded = static_cast<std::uint32_t>(h ^ (h >> 32));
  std::string out(8, '0');
  for (int i = 7; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = kDigits[(folded >> (4 * (7 - i))) & 0xF];
  }
  return out;
}

AddressType addressTypeOf(IpFamily family) {
  return family == IpFamily::V4 ? AddressType::IPv4 : AddressType::IPv6;
}

std::vector<AddressType> addressTypesOf(const Service& service) {
  std::vector<AddressType> types;
  for (IpFamily f : service.ipFamilies) {
    AddressType t = addressTypeOf(f);
    if (std::find(types.begin(), types.end(), t) == types.end()) {
      types.push_back(t);
    }
  }
  if (types.empty()) {
    // As the controller does for a Service without families (no clusterIP allocated, as in a
    // manifests directory): both, so that every pod IP is used.
    types = {AddressType::IPv4, AddressType::IPv6};
  }
  return types;
}

/// The labels of a slice made for `service`, but the service-name label (EndpointSlice::serviceName).
CompactStringMap sliceLabels(const Service& service) {
  CompactStringMap labels;
  // The controller copies the Service's labels (so that label-based filters such as
  // service.kubernetes.io/service-proxy-name apply to its slices), then sets its own.
  for (const auto& [k, v] : service.meta.labels) {
    if (k != kServiceNameLabel && k != kManagedByLabel && k != kHeadlessLabel) {
      labels.emplace(k, v);
    }
  }
  // The controller marks slices of a Service without a cluster IP as headless; in a manifests
  // directory an absent clusterIP means "not allocated", so only clusterIP: None counts here.
  if (service.headless) {
    labels.emplace(kHeadlessLabel, "");
  }
  labels.insert_or_assign(kManagedByLabel, kManifestsManagedBy);
  return labels;
}

struct Group {
  std::vector<EndpointPort> ports;
  std::vector<Endpoint> endpoints;
};

}  // namespace

bool selectsPods(const Service& service) {
  return service.hasSelector && !service.selector.empty() &&
         service.type != ServiceType::ExternalName;
}

bool selectorMatches(const CompactStringMap& selector, const CompactStringMap& labels) {
  if (selector.empty()) {
    return false;
  }
  return std::all_of(selector.begin(), selector.end(), [&](const auto& kv) {
    auto it = labels.find(kv.first);
    return it != labels.end() && it->second == kv.second;
  });
}

std::vector<EndpointSlice> endpointSlicesForService(
    const Service& service, const std::vector<const Pod*>& pods,
    const std::vector<std::string_view>& takenNames) {
  std::vector<EndpointSlice> out;
  if (!selectsPods(service)) {
    return out;
  }

  std::vector<const Pod*> selected;
  for (const Pod* pod : pods) {
    if (pod->meta.namespace_ == service.meta.namespace_ && !pod->podIPs.empty() &&
        !podTerminal(*pod) && selectorMatches(service.selector, pod->meta.labels)) {
      selected.push_back(pod);
    }
  }
  std::sort(selected.begin(), selected.end(),
            [](const Pod* a, const Pod* b) { return a->meta.name < b->meta.name; });

  const std::vector<AddressType> types = addressTypesOf(service);
  std::map<std::pair<AddressType, std::string>, Group> groups;
  for (const Pod* pod : selected) {
    std::vector<EndpointPort> ports;
    for (const ServicePort& sp : service.ports) {
      if (auto number = findPort(*pod, sp)) {
        ports.push_back(EndpointPort{sp.name, sp.protocol, *number, sp.appProtocol});
      }
    }
    std::string key = portsKey(ports);

    const bool ready = podReady(*pod);
    Endpoint ep;
    // The controller: ready is never true while terminating unless publishNotReadyAddresses.
    ep.conditions.ready = service.publishNotReadyAddresses || (ready && !pod->meta.deleting);
    ep.conditions.serving = ready;
    ep.conditions.terminating = pod->meta.deleting;
    if (!pod->hostname.empty() && pod->subdomain == service.meta.name) {
      ep.hostname = pod->hostname;
    }
    ep.nodeName = pod->nodeName;
    ep.targetPodName = pod->meta.name;

    for (AddressType type : types) {
      // The API allows one pod IP per family; a hostNetwork pod's IP is its node's.
      auto ip = std::find_if(pod->podIPs.begin(), pod->podIPs.end(), [&](const IpAddr& a) {
        return addressTypeOf(a.family()) == type;
      });
      if (ip == pod->podIPs.end()) {
        continue;
      }
      Group& group = groups[{type, key}];
      if (group.endpoints.empty()) {
        group.ports = ports;
      }
      Endpoint copy = ep;
      copy.addresses = {*ip};
      group.endpoints.push_back(std::move(copy));
    }
  }

  std::set<std::string, std::less<>> used(takenNames.begin(), takenNames.end());
  const CompactStringMap labels = sliceLabels(service);
  for (auto& [groupKey, group] : groups) {
    const auto& [type, key] = groupKey;
    for (std::size_t first = 0, chunk = 0; first < group.endpoints.size();
         first += kMaxEndpointsPerSlice, ++chunk) {
      std::string seed;
      seed.push_back(static_cast<char>('0' + static_cast<int>(type)));
      appendField(seed, key);
      appendField(seed, std::to_string(chunk));
      std::string name = service.meta.name + "-" + hex8(fnv1a(seed));
      for (int salt = 1; used.count(name) != 0; ++salt) {
        name = service.meta.name + "-" + hex8(fnv1a(seed + "#" + std::to_string(salt)));
      }
      used.insert(name);

      EndpointSlice slice;
      slice.meta.name = std::move(name);
      slice.meta.namespace_ = service.meta.namespace_;
      slice.meta.labels = labels;
      slice.addressType = type;
      slice.serviceName = service.meta.name;
      slice.ports = group.ports;
      const std::size_t last = std::min(group.endpoints.size(), first + kMaxEndpointsPerSlice);
      slice.endpoints.assign(group.endpoints.begin() + static_cast<std::ptrdiff_t>(first),
                             group.endpoints.begin() + static_cast<std::ptrdiff_t>(last));
      out.push_back(std::move(slice));
    }
  }
  std::sort(out.begin(), out.end(), [](const EndpointSlice& a, const EndpointSlice& b) {
    return a.meta.name < b.meta.name;
  });
  return out;
}

std::vector<EndpointSlice> endpointSlicesFromPods(const std::vector<const Service*>& services,
                                                  const std::vector<const Pod*>& pods,
                                                  const std::vector<const EndpointSlice*>& slices) {
  // Services whose slices the directory lists, and the slice names taken per namespace.
  std::set<std::pair<std::string_view, std::string_view>> listed;
  std::map<std::string_view, std::vector<std::string_view>> taken;
  for (const EndpointSlice* slice : slices) {
    if (!slice->serviceName.empty()) {
      listed.emplace(slice->meta.namespace_, slice->serviceName);
    }
    taken[slice->meta.namespace_].push_back(slice->meta.name);
  }
  std::map<std::string_view, std::vector<const Pod*>> podsByNamespace;
  for (const Pod* pod : pods) {
    podsByNamespace[pod->meta.namespace_].push_back(pod);
  }

  static const std::vector<const Pod*> kNoPods;
  static const std::vector<std::string_view> kNoNames;
  std::vector<EndpointSlice> out;
  for (const Service* service : services) {
    if (!selectsPods(*service) ||
        listed.count({service->meta.namespace_, service->meta.name}) != 0) {
      continue;
    }
    auto podsIt = podsByNamespace.find(service->meta.namespace_);
    auto takenIt = taken.find(service->meta.namespace_);
    auto made = endpointSlicesForService(
        *service, podsIt == podsByNamespace.end() ? kNoPods : podsIt->second,
        takenIt == taken.end() ? kNoNames : takenIt->second);
    out.insert(out.end(), std::make_move_iterator(made.begin()),
               std::make_move_iterator(made.end()));
  }
  std::sort(out.begin(), out.end(), [](const EndpointSlice& a, const EndpointSlice& b) {
    return std::tie(a.meta.namespace_, a.serviceName, a.meta.name) <
           std::tie(b.meta.namespace_, b.serviceName, b.meta.name);
  });
  return out;
}

}  // namespace kdp::k8s
