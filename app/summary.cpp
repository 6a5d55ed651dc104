#include "app/summary.h"

#include <map>
#include <utility>

namespace kdp::app {

namespace {

using k8s::Snapshot;

template <class Range, class Fn>
std::string join(const Range& range, Fn&& fn, std::string_view sep = ",") {
  std::string out;
  for (const auto& item : range) {
    if (!out.empty()) {
      out += sep;
    }
    out += fn(item);
  }
  return out;
}

std::string ipText(const IpAddr& ip) {
  return ip.str();
}

std::string objectName(const k8s::ObjectMeta& meta) {
  return meta.namespace_.empty() ? meta.name : meta.namespace_ + "/" + meta.name;
}

std::string_view serviceTypeName(k8s::ServiceType t) {
  switch (t) {
    case k8s::ServiceType::ClusterIP: return "ClusterIP";
    case k8s::ServiceType::NodePort: return "NodePort";
    case k8s::ServiceType::LoadBalancer: return "LoadBalancer";
    case k8s::ServiceType::ExternalName: return "ExternalName";
  }
  return "ClusterIP";
}

std::string_view pathTypeName(k8s::PathType t) {
  switch (t) {
    case k8s::PathType::Exact: return "Exact";
    case k8s::PathType::Prefix: return "Prefix";
    case k8s::PathType::ImplementationSpecific: return "ImplementationSpecific";
  }
  return "Prefix";
}

std::string_view addressTypeName(k8s::AddressType t) {
  switch (t) {
    case k8s::AddressType::IPv4: return "IPv4";
    case k8s::AddressType::IPv6: return "IPv6";
    case k8s::AddressType::FQDN: return "FQDN";
  }
  return "IPv4";
}

std::string portRefText(const k8s::PortRef& p) {
  return p.isName() ? p.name : std::to_string(p.number);
}

std::string lbText(const k8s::LoadBalancerIngress& lb) {
  std::string s = lb.ip ? lb.ip->str() : lb.hostname;
  if (lb.ip && lb.ipMode == k8s::LoadBalancerIpMode::Proxy) {
    s += "(Proxy)";
  }
  return s;
}

std::string backendText(const k8s::IngressBackend& b) {
  if (b.isResource) {
    return "resource:" + (b.resourceApiGroup.empty() ? "" : b.resourceApiGroup + "/") +
           b.resourceKind + "/" + b.resourceName;
  }
  return b.serviceName + ":" + portRefText(b.servicePort);
}

/// The EndpointSlices of one Service, summed up.
struct SliceGroup {
  std::size_t slices = 0;
  std::size_t endpoints = 0;
  std::size_t ready = 0;
  std::size_t terminating = 0;
  std::vector<std::string> addressTypes;
  std::vector<std::string> ports;
};

void addUnique(std::vector<std::string>& v, std::string s) {
  for (const auto& x : v) {
    if (x == s) {
      return;
    }
  }
  v.push_back(std::move(s));
}

void addSlice(SliceGroup& g, const k8s::EndpointSlice& s) {
  ++g.slices;
  addUnique(g.addressTypes, std::string(addressTypeName(s.addressType)));
  for (const auto& e : s.endpoints) {
    ++g.endpoints;
    g.ready += e.conditions.ready ? 1 : 0;
    g.terminating += e.conditions.terminating ? 1 : 0;
  }
  for (const auto& p : s.ports) {
    std::string text = p.name.empty() ? "" : p.name + ":";
    text += p.port ? std::to_string(*p.port) : std::string("*");
    text += "/";
    text += k8s::protocolName(p.protocol);
    addUnique(g.ports, std::move(text));
  }
}

/// EndpointSlices by the Service they name (namespace, service), and those naming none.
struct Slices {
  std::map<std::pair<std::string, std::string>, SliceGroup> byService;
  std::vector<std::pair<std::string, SliceGroup>> unlabelled;  // "ns/name"
};

Slices groupSlices(const Snapshot& snap) {
  Slices out;
  for (const auto& entry : snap.of<k8s::EndpointSlice>()) {
    const auto& s = *entry.value;
    if (s.serviceName.empty()) {
      addSlice(out.unlabelled.emplace_back(objectName(s.meta), SliceGroup{}).second, s);
    } else {
      addSlice(out.byService[{s.meta.namespace_, s.serviceName}], s);
    }
  }
  return out;
}

void serviceLine(std::string& out, const k8s::Service& s, const Slices& slices) {
  out += "Service " + objectName(s.meta) + " " + std::string(serviceTypeName(s.type));
  if (s.type == k8s::ServiceType::ExternalName) {
    out += " -> " + s.externalName.str() + "\n";
    return;
  }
  if (s.headless) {
    out += " None";
  } else if (s.clusterIPs.empty()) {
    out += " -";
  } else {
    out += " " + join(s.clusterIPs, ipText);
  }
  if (!s.ports.empty()) {
    out += " ports=" + join(s.ports, [](const k8s::ServicePort& p) {
      std::string text = p.name.empty() ? "" : p.name + ":";
      return text + std::to_string(p.port) + "/" + std::string(k8s::protocolName(p.protocol)) +
             "->" + portRefText(p.targetPort);
    });
  }
  std::vector<std::string> nodePorts;
  for (const auto& p : s.ports) {
    if (p.nodePort != 0) {
      nodePorts.push_back(std::to_string(p.nodePort));
    }
  }
  if (!nodePorts.empty()) {
    out += " nodePorts=" + join(nodePorts, [](const std::string& x) { return x; });
  }
  if (!s.externalIPs.empty()) {
    out += " externalIPs=" + join(s.externalIPs, ipText);
  }
  if (!s.loadBalancerIngress.empty()) {
    out += " lb=" + join(s.loadBalancerIngress, lbText);
  }
  if (!s.loadBalancerSourceRanges.empty()) {
    out += " sourceRanges=" +
           join(s.loadBalancerSourceRanges, [](const Cidr& c) { return c.str(); });
  }
  if (s.externalTrafficPolicy == k8s::TrafficPolicy::Local) {
    out += " externalTrafficPolicy=Local";
  }
  if (s.internalTrafficPolicy == k8s::TrafficPolicy::Local) {
    out += " internalTrafficPolicy=Local";
  }
  if (s.healthCheckNodePort != 0) {
    out += " healthCheckNodePort=" + std::to_string(s.healthCheckNodePort);
  }
  if (s.sessionAffinity == k8s::SessionAffinity::ClientIP) {
    out += " sessionAffinity=ClientIP/" + std::to_string(s.sessionAffinityTimeoutSeconds) + "s";
  }
  if (s.publishNotReadyAddresses) {
    out += " publishNotReadyAddresses";
  }
  std::size_t ready = 0;
  std::size_t total = 0;
  if (auto it = slices.byService.find({s.meta.namespace_, s.meta.name});
      it != slices.byService.end()) {
    ready = it->second.ready;
    total = it->second.endpoints;
  }
  out += " endpoints=" + std::to_string(ready) + "/" + std::to_string(total) + " ready\n";
}

void sliceLine(std::string& out, std::string head, const SliceGroup& g) {
  out += head + " slices=" + std::to_string(g.slices) +
         " endpoints=" + std::to_string(g.endpoints) + " ready=" + std::to_string(g.ready);
  if (g.terminating != 0) {
    out += " terminating=" + std::to_string(g.terminating);
  }
  out += " addressType=" + join(g.addressTypes, [](const std::string& x) { return x; });
  if (!g.ports.empty()) {
    out += " ports=" + join(g.ports, [](const std::string& x) { return x; });
  }
  out += "\n";
}

void sliceLines(std::string& out, const Slices& slices) {
  for (const auto& [key, g] : slices.byService) {
    sliceLine(out, "EndpointSlices " + key.first + "/" + key.second, g);
  }
  for (const auto& [name, g] : slices.unlabelled) {
    sliceLine(out, "EndpointSlice " + name + " service=-", g);
  }
}

void ingressLines(std::string& out, const k8s::Ingress& ing) {
  out += "Ingress " + objectName(ing.meta);
  if (ing.ingressClassName) {
    out += " class=" + *ing.ingressClassName;
  } else if (auto it = ing.meta.annotations.find(k8s::kIngressClassAnnotation);
             it != ing.meta.annotations.end()) {
    out += " class=" + it->second + "(annotation)";
  } else {
    out += " class=-";
  }
  if (!ing.loadBalancerIngress.empty()) {
    out += " lb=" + join(ing.loadBalancerIngress, lbText);
  }
  out += "\n";
  for (const auto& tls : ing.tls) {
    out += "  tls " + (tls.hosts.empty() ? std::string("*") : join(tls.hosts, [](const auto& h) {
      return h;
    })) + " secret=" + (tls.secretName.empty() ? "-" : tls.secretName) + "\n";
  }
  for (const auto& rule : ing.rules) {
    const std::string host = rule.host.empty() ? "*" : rule.host;
    for (const auto& p : rule.paths) {
      out += "  " + host + p.path + " " + std::string(pathTypeName(p.pathType)) + " -> " +
             backendText(p.backend) + "\n";
    }
  }
  if (ing.defaultBackend) {
    out += "  default -> " + backendText(*ing.defaultBackend) + "\n";
  }
}

}  // namespace

std::string summarize(const Snapshot& snap) {
  std::string out;
  out += "store version " + std::to_string(snap.version) + (snap.synced ? ", synced" : "") + "\n";

  const std::size_t counts[k8s::kKindCount] = {
      snap.of<k8s::Namespace>().size(),     snap.of<k8s::Service>().size(),
      snap.of<k8s::EndpointSlice>().size(), snap.of<k8s::Ingress>().size(),
      snap.of<k8s::IngressClass>().size(),  snap.of<k8s::Secret>().size(),
      snap.of<k8s::Pod>().size(),           snap.of<k8s::Node>().size()};
  std::size_t total = 0;
  out += "objects:";
  for (std::size_t k = 0; k < k8s::kKindCount; ++k) {
    out += " " + std::string(k8s::kindName(static_cast<k8s::Kind>(k))) + "=" +
           std::to_string(counts[k]);
    total += counts[k];
  }
  out += " total=" + std::to_string(total) + "\n";
  out += "namespaces: " +
         (snap.namespaces->empty() ? std::string("-")
                                   : join(*snap.namespaces, [](const auto& n) { return n; }, " ")) +
         "\n";

  const auto slices = groupSlices(snap);
  out += "\n";
  for (const auto& e : snap.of<k8s::Namespace>()) {
    out += "Namespace " + e.value->meta.name + "\n";
  }
  for (const auto& e : snap.of<k8s::Service>()) {
    serviceLine(out, *e.value, slices);
  }
  sliceLines(out, slices);
  for (const auto& e : snap.of<k8s::Ingress>()) {
    ingressLines(out, *e.value);
  }
  for (const auto& e : snap.of<k8s::IngressClass>()) {
    const auto& c = *e.value;
    out += "IngressClass " + c.meta.name + " controller=" +
           (c.controller.empty() ? "-" : c.controller) + (c.isDefault ? " default" : "") + "\n";
  }
  for (const auto& e : snap.of<k8s::Secret>()) {
    const auto& s = *e.value;
    out += "Secret " + objectName(s.meta) + " " + s.type + " keys=" +
           (s.data.empty() ? std::string("-")
                           : join(s.data, [](const auto& kv) { return kv.first; })) +
           "\n";
  }
  for (const auto& e : snap.of<k8s::Pod>()) {
    const auto& p = *e.value;
    out += "Pod " + objectName(p.meta);
    out += " node=" + (p.nodeName.empty() ? std::string("-") : p.nodeName);
    out += " ips=" + (p.podIPs.empty() ? std::string("-") : join(p.podIPs, ipText));
    if (!p.phase.empty()) {
      out += " phase=" + p.phase;
    }
    if (p.ready) {
      out += *p.ready ? " ready" : " not-ready";
    }
    if (p.hostNetwork) {
      out += " hostNetwork";
    }
    out += "\n";
  }
  for (const auto& e : snap.of<k8s::Node>()) {
    const auto& n = *e.value;
    out += "Node " + n.meta.name;
    for (const auto& a : n.addresses) {
      out += " " + a.type + "=" + a.address;
    }
    out += "\n";
  }
  return out;
}

}  // namespace kdp::app
