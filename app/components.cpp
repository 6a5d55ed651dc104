#include "app/components.h"

#include "dns/component.h"
#include "ingress/component.h"
#include "proxy/component.h"

namespace kdp::app {

std::vector<std::unique_ptr<Component>> makeComponents(const Options& options) {
  std::vector<std::unique_ptr<Component>> components;
  const bool run = options.command == Command::Run;
  // Each component's issue replaces its throw with `components.push_back(<ns>::makeComponent(...))`.
  if (options.command == Command::Proxy || (run && !options.proxy.nodeName.empty())) {
    components.push_back(proxy::makeComponent(options.proxy));
  }
  if (options.command == Command::Dns || (run && !options.dns.listen.empty())) {
    components.push_back(dns::makeComponent(options.dns));
  }
  if (options.command == Command::Ingress ||
      (run && (options.ingress.http || options.ingress.https))) {
    components.push_back(ingress::makeComponent(options.ingress));
  }
  return components;
}

}  // namespace kdp::app
