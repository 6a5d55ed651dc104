#pragma once
// Writes status.loadBalancer.ingress of the Ingresses of our class (only when it differs), one
// replica at a time through a coordination.k8s.io/v1 Lease, as client-go's leaderelection does
// (15 s lease, renewed every 2 s retry, given up when not renewed for 10 s). Only with the API
// source. The decisions are in ingress/status.h; this is the I/O.
//
// The leader reacts to store changes (a Subscription): a changed Ingress is looked at again at
// once, every Ingress when an IngressClass or the --publish-service Service changed, and when
// it becomes leader. A full pass every `resync` and, after a failed write, one `retry` later is
// the safety net.
//
// Status is written with GET of the Ingress, then PUT to .../status of the same JSON text with
// only the top-level "status" member replaced: RBAC grants only update on ingresses/status, and
// a PUT built from our decoded object would drop the metadata we do not decode.

#include <chrono>
#include <memory>
#include <string>

#include "ingress/status.h"
#include "k8s/api_config.h"

namespace kdp::ingress {

struct StatusWriterOptions {
  k8s::ApiConfig api;
  std::string ingressClass;
  LoadBalancerStatus publishAddresses;  // --publish-address, or
  std::string publishServiceNamespace;  // --publish-service NS/NAME
  std::string publishServiceName;
  std::string leaseNamespace;           // POD_NAMESPACE, else kube-dataplane
  std::string leaseName = "kube-dataplane-ingress-status";
  std::string identity;                 // POD_NAME, else hostname
  LeaseTiming timing;
  std::chrono::seconds resync{60};      // full pass even without a change (ingress-nginx: 60 s)
};

class StatusWriter {
 public:
  explicit StatusWriter(StatusWriterOptions options);
  ~StatusWriter();
  /// Starts the thread "kdp/status"; returns at once.
  void start(k8s::Store& store);
  /// Stops and joins. Idempotent. Does not clear any status (as ingress-nginx's default).
  void stop();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace kdp::ingress
