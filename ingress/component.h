#pragma once
// The ingress component as main runs it: the route compiler fed by the store, the certificate
// store and the proxy server.

#include <memory>

#include "common/component.h"
#include "ingress/options.h"

namespace kdp::ingress {

/// Builds the component (nothing is bound before start()). Throws std::runtime_error for a
/// --default-cert/--default-key pair that cannot be loaded.
std::unique_ptr<Component> makeComponent(const IngressOptions& options);

}  // namespace kdp::ingress
