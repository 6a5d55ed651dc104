#pragma once
// EndpointSlices made from Pods, as the Kubernetes EndpointSlice controller makes them, for a
// manifests directory that holds Services and Pods but no EndpointSlices. Pure: no I/O, no clock.

#include <cstddef>
#include <string_view>
#include <vector>

#include "k8s/objects.h"

namespace kdp::k8s {

inline constexpr std::string_view kManagedByLabel = "endpointslice.kubernetes.io/managed-by";
/// The managed-by value of the slices made here (the controller's is
/// "endpointslice-controller.k8s.io").
inline constexpr std::string_view kManifestsManagedBy = "kube-dataplane.io/manifests";
inline constexpr std::string_view kHeadlessLabel = "service.kubernetes.io/headless";
/// The controller's default --max-endpoints-per-slice.
inline constexpr std::size_t kMaxEndpointsPerSlice = 100;

/// True when the controller makes slices for `service`: a non-empty selector and a type other
/// than ExternalName.
bool selectsPods(const Service& service);

/// True when every label of `selector` is on `labels` with the same value (an empty selector
/// matches nothing here: the controller does not select pods for it).
bool selectorMatches(const CompactStringMap& selector, const CompactStringMap& labels);

/// The slices of the Services in `services` that select pods and for which no slice in `slices`
/// carries their kubernetes.io/service-name label (a directory that lists its slices keeps them).
///
/// Per Service: the pods of its namespace that match the selector, are not terminal (phase
/// Succeeded/Failed) and have an IP; one group of slices per address family (the Service's
/// ipFamilies, both when it names none) and per distinct set of resolved ports (a targetPort
/// given by name is looked up per pod among its container ports by name and protocol; a pod
/// without it has that port left out, as FindPort does for the controller); at most
/// kMaxEndpointsPerSlice endpoints per slice, endpoints sorted by pod name. Slices are named
/// `<service>-<8 hex digits>`, a hash of (family, ports, chunk), so that pod churn updates a
/// slice in place; a name that a slice in `slices` already takes is rehashed. No placeholder
/// slice is made for a Service without endpoints. Zones are left empty.
///
/// Output is sorted by namespace, service, slice name; the same input gives the same output.
/// Any thread; the pointers are only read during the call.
std::vector<EndpointSlice> endpointSlicesFromPods(const std::vector<const Service*>& services,
                                                  const std::vector<const Pod*>& pods,
                                                  const std::vector<const EndpointSlice*>& slices);

/// The slices of one Service, ignoring whether slices for it exist. `pods` may hold pods of any
/// namespace; the Service's selector and namespace pick among them. `takenNames` are slice names
/// in the Service's namespace that must not be used (slices listed in the directory).
std::vector<EndpointSlice> endpointSlicesForService(
    const Service& service, const std::vector<const Pod*>& pods,
    const std::vector<std::string_view>& takenNames = {});

}  // namespace kdp::k8s
