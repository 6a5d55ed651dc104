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

std::vector<k8s::Kind> kindsNeeded(const Options& options) {
  using k8s::Kind;
  const bool run = options.command == Command::Run;
  const bool proxy = options.command == Command::Proxy || (run && !options.proxy.nodeName.empty());
  const bool dns = options.command == Command::Dns || (run && !options.dns.listen.empty());
  const bool ingress = options.command == Command::Ingress ||
                       (run && (options.ingress.http || options.ingress.https));
  if (!proxy && !dns && !ingress) {
    return {Kind::Service, Kind::EndpointSlice, Kind::Ingress, Kind::IngressClass, Kind::Secret,
            Kind::Node};
  }
  std::vector<Kind> kinds{Kind::Service, Kind::EndpointSlice};
  if (proxy) {
    kinds.push_back(Kind::Node);
  }
  if (dns && options.dns.pods == PodsMode::Verified) {
    kinds.push_back(Kind::Pod);
  }
  if (ingress) {
    kinds.insert(kinds.end(), {Kind::Ingress, Kind::IngressClass, Kind::Secret});
  }
  return kinds;
}

}  // namespace kdp::app
