#pragma once
// Which components a command runs, built from their options.

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "app/cli.h"
#include "common/component.h"
#include "k8s/objects.h"

namespace kdp::app {

/// Thrown for a component whose issue has not landed yet.
struct NotBuilt : std::runtime_error {
  explicit NotBuilt(const std::string& component)
      : std::runtime_error("the " + component + " component is not built yet") {}
};

/// `proxy`, `dns`, `ingress`: that component. `run`: each component whose flags are given
/// (proxy: --node-name; dns: --listen; ingress: --http or --https); none is fine (the store and
/// metrics alone). Throws NotBuilt, or std::runtime_error for options a component refuses.
std::vector<std::unique_ptr<Component>> makeComponents(const Options& options);

/// The kinds the components of `options` read from the store, which the Kubernetes API source
/// lists and watches (and RBAC must allow): Services and EndpointSlices for all; Nodes for the
/// proxy (topology); Pods for dns --pods verified; Ingresses, IngressClasses and TLS Secrets for
/// ingress. `run` without components: all but Pods.
std::vector<k8s::Kind> kindsNeeded(const Options& options);

}  // namespace kdp::app
