#pragma once
// Ingress status (status.loadBalancer.ingress) and the Lease that lets one replica write it:
// the decisions, pure. The writer that does the requests is ingress/status_writer.h.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "k8s/lease.h"
#include "k8s/objects.h"
#include "k8s/store.h"

namespace kdp::ingress {

using LoadBalancerStatus = std::vector<k8s::LoadBalancerIngress>;

/// "203.0.113.1" → ip, "lb.example.com" → hostname; nullopt for anything else.
std::optional<k8s::LoadBalancerIngress> parsePublishAddress(std::string_view text);

/// What a --publish-service Service publishes, as ingress-nginx does: its
/// status.loadBalancer.ingress, else its externalIPs, else its ClusterIPs (none when headless).
LoadBalancerStatus publishedByService(const k8s::Service& service);

/// The status an Ingress should carry: `published` when it is of our class, nullopt when it is
/// not ours (then it is left alone).
std::optional<LoadBalancerStatus> desiredStatus(const k8s::Ingress& ingress,
                                                const k8s::Snapshot& snapshot,
                                                std::string_view ingressClass,
                                                const LoadBalancerStatus& published);

struct StatusUpdate {
  std::string namespace_;
  std::string name;
  std::string resourceVersion;  // of the Ingress as the store has it
  LoadBalancerStatus status;
};

/// Every Ingress of our class whose decoded status differs from `published`.
std::vector<StatusUpdate> statusUpdates(const k8s::Snapshot& snapshot,
                                        std::string_view ingressClass,
                                        const LoadBalancerStatus& published);
/// The same for the Ingresses under these store keys only (keys not in `snapshot` are skipped).
std::vector<StatusUpdate> statusUpdates(const k8s::Snapshot& snapshot,
                                        const std::vector<std::string>& ingressKeys,
                                        std::string_view ingressClass,
                                        const LoadBalancerStatus& published);

/// Which Ingresses a store change makes the writer look at again.
struct StatusScope {
  bool all = false;                      // every Ingress
  std::vector<std::string> ingressKeys;  // else these (sorted, unique)
};
/// An IngressClass change can change which Ingresses are ours (the default class), a change of
/// the --publish-service Service (its store key; empty with --publish-address) what we
/// publish: both → all. Otherwise only the changed Ingresses.
StatusScope statusScope(const k8s::Changes& changes, std::string_view publishServiceKey);

/// {"loadBalancer":{"ingress":[{"ip":"..."},{"hostname":"..."}]}}
std::string statusJson(const LoadBalancerStatus& status);

/// `object` (a JSON object as the API server sent it) with its top-level "status" member's value
/// replaced by `status` (added when absent); every other byte is kept. nullopt when `object` is
/// not a JSON object.
std::optional<std::string> replaceStatusMember(std::string_view object, std::string_view status);

// --- Lease (coordination.k8s.io/v1), as client-go's leaderelection uses it ---

using k8s::LeaseRecord;
using k8s::WallClock;
using k8s::decodeLease;
using k8s::formatMicroTime;
using k8s::parseMicroTime;

struct LeaseTiming {
  std::chrono::seconds duration{15};  // leaseDurationSeconds
  std::chrono::seconds renew{10};     // a leader renews at least this often
  std::chrono::seconds retry{2};      // everyone looks again this often
};

enum class LeaseAction {
  Create,    // no Lease yet: POST one
  Renew,     // ours: PUT a new renewTime
  TakeOver,  // someone else's and expired (or no holder): PUT ourselves as holder
  Wait,      // someone else holds it
};

LeaseAction decideLease(const std::optional<LeaseRecord>& current, std::string_view me,
                        WallClock::time_point now);

/// The Lease as JSON for POST (no resourceVersion) or PUT (with the one read).
std::string leaseJson(std::string_view namespace_, std::string_view name, std::string_view me,
                      WallClock::time_point acquire, WallClock::time_point renew,
                      std::chrono::seconds duration, int transitions,
                      std::string_view resourceVersion);

}  // namespace kdp::ingress
