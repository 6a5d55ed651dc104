// Service (v1): spec with the API server's defaults, validated as ValidateService does for the
// fields the data plane uses; status.loadBalancer.ingress.

#include "k8s/detail/decode_kinds.h"
#include "k8s/detail/validate.h"

namespace kdp::k8s::detail {

namespace {

constexpr EnumName<ServiceType> kServiceTypes[] = {{"ClusterIP", ServiceType::ClusterIP},
                                                   {"ExternalName", ServiceType::ExternalName},
                                                   {"LoadBalancer", ServiceType::LoadBalancer},
                                                   {"NodePort", ServiceType::NodePort}};
constexpr EnumName<TrafficPolicy> kTrafficPolicies[] = {{"Cluster", TrafficPolicy::Cluster},
                                                        {"Local", TrafficPolicy::Local}};
constexpr EnumName<IpFamilyPolicy> kIpFamilyPolicies[] = {
    {"PreferDualStack", IpFamilyPolicy::PreferDualStack},
    {"RequireDualStack", IpFamilyPolicy::RequireDualStack},
    {"SingleStack", IpFamilyPolicy::SingleStack}};
constexpr EnumName<IpFamily> kIpFamilies[] = {{"IPv4", IpFamily::V4}, {"IPv6", IpFamily::V6}};
constexpr EnumName<SessionAffinity> kSessionAffinities[] = {
    {"ClientIP", SessionAffinity::ClientIP}, {"None", SessionAffinity::None}};
constexpr EnumName<LoadBalancerIpMode> kIpModes[] = {{"Proxy", LoadBalancerIpMode::Proxy},
                                                     {"VIP", LoadBalancerIpMode::VIP}};

constexpr std::int32_t kMaxClientIpAffinitySeconds = 86400;

std::string_view typeName(ServiceType t) {
  switch (t) {
    case ServiceType::ClusterIP: return "ClusterIP";
    case ServiceType::NodePort: return "NodePort";
    case ServiceType::LoadBalancer: return "LoadBalancer";
    case ServiceType::ExternalName: return "ExternalName";
  }
  return "";
}

// ValidateNonSpecialIP: externalIPs may not be addresses that never leave the host or link.
std::string_view specialIpMessage(const IpAddr& ip) {
  const auto& b = ip.bytes();
  if (ip.isUnspecified()) {
    return "may not be unspecified (0.0.0.0 or ::)";
  }
  if (ip.isLoopback()) {
    return "may not be in the loopback range (127.0.0.0/8, ::1/128)";
  }
  if (ip.isV4() ? (b[0] == 169 && b[1] == 254) : (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)) {
    return "may not be in the link-local range (169.254.0.0/16, fe80::/10)";
  }
  if (ip.isV4() ? (b[0] == 224 && b[1] == 0 && b[2] == 0) : (b[0] == 0xff && (b[1] & 0x0f) == 2)) {
    return "may not be in the link-local multicast range (224.0.0.0/24, ff02::/16)";
  }
  return {};
}

void decodeServicePorts(Reader& r, dom::element e, const Path& pp, Service& s) {
  dom::array a;
  if (r.array(e, pp, a) != Read::Ok) {
    return;
  }
  s.ports.reserve(a.size());
  std::size_t i = 0;
  for (dom::element pe : a) {
    const Path ip = pp.at(i++);
    dom::object o;
    if (r.object(pe, ip, o) != Read::Ok) {
      continue;
    }
    ServicePort& port = s.ports.emplace_back();
    Read portRead = Read::Absent;
    for (auto [key, value] : o) {
      if (key == "name") {
        const Path np = ip.field("name");
        std::string_view name;
        if (r.string(value, np, name, SIZE_MAX) == Read::Ok && !name.empty()) {
          if (auto msg = checkDns1123Label(name); !msg.empty()) {
            r.invalid(np, name, msg);
          } else {
            port.name.assign(name);
          }
        }
      } else if (key == "protocol") {
        r.protocol(value, ip.field("protocol"), port.protocol);
      } else if (key == "port") {
        portRead = r.int32(value, ip.field("port"), port.port);
      } else if (key == "targetPort") {
        const Path tp = ip.field("targetPort");
        if (r.intOrString(value, tp, port.targetPort) == Read::Ok) {
          if (port.targetPort.isName()) {
            if (auto msg = checkIanaSvcName(port.targetPort.name); !msg.empty()) {
              r.invalid(tp, port.targetPort.name, msg);
            }
          } else if (port.targetPort.number != 0 && !isValidPortNumber(port.targetPort.number)) {
            r.invalid(tp, port.targetPort.number, kPortRangeMessage);
          }
        }
      } else if (key == "nodePort") {
        const Path np = ip.field("nodePort");
        if (r.int32(value, np, port.nodePort) == Read::Ok && port.nodePort != 0) {
          if (!isValidPortNumber(port.nodePort)) {
            r.invalid(np, port.nodePort, kPortRangeMessage);
          } else if (s.type == ServiceType::ClusterIP || s.type == ServiceType::ExternalName) {
            r.fail(np, "forbidden: may not be used when `type` is '" +
                           std::string(typeName(s.type)) + "'");
          }
        }
      } else if (key == "appProtocol") {
        const Path ap = ip.field("appProtocol");
        std::string_view app;
        if (r.string(value, ap, app, SIZE_MAX) == Read::Ok && !app.empty()) {
          if (auto msg = checkQualifiedName(app); !msg.empty()) {
            r.invalid(ap, app, msg);
          } else {
            port.appProtocol.assign(app);
          }
        }
      }
    }
    if (portRead != Read::Bad && !isValidPortNumber(port.port)) {
      r.invalid(ip.field("port"), port.port, kPortRangeMessage);
    }
    // SetDefaults_Service: targetPort 0 or "" reads as `port`.
    if (port.targetPort.number == 0 && port.targetPort.name.empty()) {
      port.targetPort.number = port.port;
    }
  }

  std::vector<std::pair<std::string_view, std::size_t>> names;
  std::vector<std::pair<std::pair<std::int32_t, Protocol>, std::size_t>> numbers, nodePorts;
  names.reserve(s.ports.size());
  numbers.reserve(s.ports.size());
  for (std::size_t k = 0; k < s.ports.size(); ++k) {
    const ServicePort& port = s.ports[k];
    if (port.name.empty()) {
      if (s.ports.size() > 1) {
        r.required(pp.at(k).field("name"));
      }
    } else {
      names.emplace_back(port.name, k);
    }
    numbers.push_back({{port.port, port.protocol}, k});
    if (port.nodePort != 0) {
      nodePorts.push_back({{port.nodePort, port.protocol}, k});
    }
  }
  forEachDuplicate(names, [&](std::size_t k) {
    r.invalid(pp.at(k).field("name"), s.ports[k].name, "duplicate value");
  });
  forEachDuplicate(numbers, [&](std::size_t k) {
    r.fail(pp.at(k), "duplicate value: port " + std::to_string(s.ports[k].port) + "/" +
                         std::string(protocolName(s.ports[k].protocol)));
  });
  forEachDuplicate(nodePorts, [&](std::size_t k) {
    r.invalid(pp.at(k).field("nodePort"), s.ports[k].nodePort, "duplicate value");
  });
}

}  // namespace

void decodeLoadBalancerIngress(Reader& r, dom::element e, const Path& p, bool allowIpMode,
                               std::vector<LoadBalancerIngress>& out) {
  dom::array a;
  if (r.array(e, p, a) != Read::Ok) {
    return;
  }
  out.reserve(a.size());
  std::size_t i = 0;
  for (dom::element ie : a) {
    const Path ip = p.at(i++);
    dom::object o;
    if (r.object(ie, ip, o) != Read::Ok) {
      continue;
    }
    LoadBalancerIngress& ing = out.emplace_back();
    bool ipModeGiven = false;
    for (auto [key, value] : o) {
      if (key == "ip") {
        if (value.type() == dom::element_type::STRING &&
            value.get_string().value_unsafe().empty()) {
          continue;  // "" is the same as absent
        }
        IpAddr addr;
        if (r.ip(value, ip.field("ip"), addr) == Read::Ok) {
          ing.ip = addr;
        }
      } else if (key == "hostname") {
        const Path hp = ip.field("hostname");
        std::string_view host;
        if (r.string(value, hp, host, SIZE_MAX) == Read::Ok && !host.empty()) {
          if (IpAddr::parse(host)) {
            r.invalid(hp, host, "must be a DNS name, not an IP address");
          } else if (auto msg = checkDns1123Subdomain(host); !msg.empty()) {
            r.invalid(hp, host, msg);
          } else {
            ing.hostname.assign(host);
          }
        }
      } else if (key == "ipMode" && allowIpMode) {
        ipModeGiven = r.enumeration(value, ip.field("ipMode"), kIpModes, ing.ipMode) == Read::Ok;
      }
    }
    if (ipModeGiven && !ing.ip) {
      r.fail(ip.field("ipMode"), "forbidden: may not be specified when `ip` is empty");
    }
  }
}

void decodeService(KindContext& c, const RootFields& f, Service& s) {
  Reader& r = c.reader;
  decodeObjectMeta(c, f, Kind::Service, s.meta);

  const Path sp = c.root.field("spec");
  dom::object spec;
  const Read specRead = f.spec ? r.object(*f.spec, sp, spec) : Read::Absent;
  if (specRead == Read::Bad) {
    return;
  }

  // One pass collects the raw fields; the checks below need several of them at once.
  std::string_view clusterIP, externalName;
  std::vector<std::string_view> clusterIPs;
  bool clusterIPsGiven = false;
  std::vector<IpFamily> families;
  std::optional<IpFamilyPolicy> policy;
  std::optional<TrafficPolicy> externalPolicy;
  std::optional<dom::element> ports;
  bool affinityConfigGiven = false;
  std::optional<std::int32_t> affinityTimeout;
  if (specRead == Read::Ok) {
    for (auto [key, value] : spec) {
      const Path p = sp.field(key);
      if (key == "type") {
        r.enumeration(value, p, kServiceTypes, s.type);
      } else if (key == "clusterIP") {
        r.string(value, p, clusterIP, SIZE_MAX);
      } else if (key == "clusterIPs") {
        dom::array a;
        if (r.array(value, p, a) == Read::Ok) {
          std::size_t i = 0;
          for (dom::element ie : a) {
            std::string_view ip;
            if (r.string(ie, p.at(i++), ip, SIZE_MAX) == Read::Ok) {
              clusterIPs.push_back(ip);
            }
          }
          clusterIPsGiven = !clusterIPs.empty();
        }
      } else if (key == "ipFamilies") {
        dom::array a;
        if (r.array(value, p, a) == Read::Ok) {
          std::size_t i = 0;
          for (dom::element fe : a) {
            IpFamily fam{};
            if (r.enumeration(fe, p.at(i++), kIpFamilies, fam) == Read::Ok) {
              families.push_back(fam);
            }
          }
        }
      } else if (key == "ipFamilyPolicy") {
        IpFamilyPolicy v{};
        if (r.enumeration(value, p, kIpFamilyPolicies, v) == Read::Ok) {
          policy = v;
        }
      } else if (key == "ports") {
        ports = value;
      } else if (key == "selector") {
        s.hasSelector = value.type() != dom::element_type::NULL_VALUE;
        StringPairs pairs;
        r.stringMap(value, p, [&](std::string_view k, std::string_view v, const Path& kp) {
          if (auto msg = checkQualifiedName(k); !msg.empty()) {
            r.invalid(kp, k, msg);
          } else if (auto vmsg = checkLabelValue(v); !vmsg.empty()) {
            r.invalid(kp, v, vmsg);
          } else {
            pairs.emplace_back(k, v);
          }
        });
        assignPairs(s.selector, pairs);
      } else if (key == "externalIPs") {
        dom::array a;
        if (r.array(value, p, a) == Read::Ok) {
          s.externalIPs.reserve(a.size());
          std::size_t i = 0;
          for (dom::element ie : a) {
            const Path ep = p.at(i++);
            IpAddr ip;
            if (r.ip(ie, ep, ip) == Read::Ok) {
              if (auto msg = specialIpMessage(ip); !msg.empty()) {
                r.invalid(ep, ip.str(), msg);
              } else {
                s.externalIPs.push_back(ip);
              }
            }
          }
        }
      } else if (key == "externalName") {
        r.string(value, p, externalName, SIZE_MAX);
      } else if (key == "externalTrafficPolicy") {
        TrafficPolicy v{};
        if (r.enumeration(value, p, kTrafficPolicies, v) == Read::Ok) {
          externalPolicy = v;
        }
      } else if (key == "internalTrafficPolicy") {
        r.enumeration(value, p, kTrafficPolicies, s.internalTrafficPolicy);
      } else if (key == "sessionAffinity") {
        r.enumeration(value, p, kSessionAffinities, s.sessionAffinity);
      } else if (key == "sessionAffinityConfig") {
        dom::object config;
        if (r.object(value, p, config) != Read::Ok) {
          continue;
        }
        affinityConfigGiven = true;
        for (auto [ck, cv] : config) {
          dom::object clientIP;
          if (ck != "clientIP" || r.object(cv, p.field("clientIP"), clientIP) != Read::Ok) {
            continue;
          }
          for (auto [tk, tv] : clientIP) {
            std::int32_t t = 0;
            if (tk == "timeoutSeconds" &&
                r.int32(tv, p.field("clientIP").field("timeoutSeconds"), t) == Read::Ok) {
              affinityTimeout = t;
            }
          }
        }
      } else if (key == "loadBalancerSourceRanges") {
        dom::array a;
        if (r.array(value, p, a) == Read::Ok) {
          std::size_t i = 0;
          for (dom::element ce : a) {
            const Path cp = p.at(i++);
            std::string_view text;
            if (r.string(ce, cp, text, SIZE_MAX) != Read::Ok) {
              continue;
            }
            // The API trims spaces here (service.GetLoadBalancerSourceRanges).
            while (!text.empty() && text.front() == ' ') {
              text.remove_prefix(1);
            }
            while (!text.empty() && text.back() == ' ') {
              text.remove_suffix(1);
            }
            if (auto cidr = Cidr::parse(text)) {
              s.loadBalancerSourceRanges.push_back(*cidr);
            } else {
              r.invalid(cp, text, "must be a valid CIDR (e.g. 10.0.0.0/8 or fd00::/64)");
            }
          }
        }
      } else if (key == "healthCheckNodePort") {
        r.int32(value, p, s.healthCheckNodePort);
      } else if (key == "publishNotReadyAddresses") {
        r.boolean(value, p, s.publishNotReadyAddresses);
      }
    }
  }
  const bool externalNameType = s.type == ServiceType::ExternalName;

  // clusterIP and clusterIPs: clusterIPs[0] must agree with clusterIP; "None" makes it headless.
  if (clusterIPsGiven) {
    if (!clusterIP.empty() && clusterIPs[0] != clusterIP) {
      r.invalid(sp.field("clusterIPs").at(0), clusterIPs[0],
                "must be equal to clusterIP " + quote(clusterIP));
    }
  } else if (!clusterIP.empty()) {
    clusterIPs.push_back(clusterIP);
  }
  const std::string_view ipsField = clusterIPsGiven ? "clusterIPs" : "clusterIP";
  if (!clusterIPs.empty() && externalNameType) {
    r.fail(sp.field(ipsField), "forbidden: may not be set for ExternalName services");
  } else if (clusterIPs.size() > 2) {
    r.fail(sp.field("clusterIPs"), "too many: " + std::to_string(clusterIPs.size()) +
                                       ": must have at most 2 items");
  } else if (!clusterIPs.empty() && clusterIPs[0] == "None") {
    s.headless = true;
    if (clusterIPs.size() > 1) {
      r.fail(sp.field("clusterIPs"), "must not have more than one value when the first is 'None'");
    }
    if (s.type == ServiceType::NodePort || s.type == ServiceType::LoadBalancer) {
      r.invalid(sp.field(ipsField), "None",
                "may not be set to 'None' for " + std::string(typeName(s.type)) + " services");
    }
  } else {
    s.clusterIPs.reserve(clusterIPs.size());
    const Path ipsPath = sp.field(ipsField);
    for (std::size_t i = 0; i < clusterIPs.size(); ++i) {
      if (auto ip = IpAddr::parse(clusterIPs[i])) {
        s.clusterIPs.push_back(*ip);
      } else {
        r.invalid(clusterIPsGiven ? ipsPath.at(i) : ipsPath, clusterIPs[i],
                  "must be a valid IP address (e.g. 10.9.8.7 or 2001:db8::ffff) or 'None'");
      }
    }
    if (s.clusterIPs.size() == 2 && s.clusterIPs[0].family() == s.clusterIPs[1].family()) {
      r.invalid(sp.field("clusterIPs").at(1), clusterIPs[1],
                "may specify no more than one IP for each IP family");
    }
  }

  // ipFamilies: at most one of each, matching clusterIPs; derived from clusterIPs when absent.
  if (!families.empty() && externalNameType) {
    r.fail(sp.field("ipFamilies"), "forbidden: may not be set for ExternalName services");
  } else if (families.size() > 2) {
    r.fail(sp.field("ipFamilies"),
           "too many: " + std::to_string(families.size()) + ": must have at most 2 items");
  } else if (families.size() == 2 && families[0] == families[1]) {
    r.fail(sp.field("ipFamilies").at(1), "duplicate value");
  } else {
    for (std::size_t i = 0; i < families.size() && i < s.clusterIPs.size(); ++i) {
      if (families[i] != s.clusterIPs[i].family()) {
        r.fail(sp.field("ipFamilies").at(i),
               "must match the IP family of clusterIPs[" + std::to_string(i) + "]");
      }
    }
  }
  s.ipFamilies = std::move(families);
  for (std::size_t i = s.ipFamilies.size(); i < s.clusterIPs.size(); ++i) {
    s.ipFamilies.push_back(s.clusterIPs[i].family());
  }

  // ipFamilyPolicy: as the API server's allocator defaults it when absent.
  const bool multiFamily = s.clusterIPs.size() == 2 || s.ipFamilies.size() == 2;
  if (policy) {
    if (externalNameType) {
      r.fail(sp.field("ipFamilyPolicy"), "forbidden: may not be set for ExternalName services");
    } else if (*policy == IpFamilyPolicy::SingleStack && multiFamily) {
      r.invalid(sp.field("ipFamilyPolicy"), "SingleStack",
                "must be RequireDualStack or PreferDualStack when multiple IP families are "
                "specified");
    }
    s.ipFamilyPolicy = *policy;
  } else {
    s.ipFamilyPolicy = multiFamily ? IpFamilyPolicy::RequireDualStack : IpFamilyPolicy::SingleStack;
  }

  // Ports, after `type` is known (nodePort depends on it).
  if (ports) {
    decodeServicePorts(r, *ports, sp.field("ports"), s);
  }
  if (s.ports.empty() && !s.headless && !externalNameType) {
    r.required(sp.field("ports"));
  }

  // externalName: required for ExternalName (a DNS name, a trailing dot allowed), else unused.
  if (externalNameType) {
    const Path p = sp.field("externalName");
    std::string_view clean = externalName;
    if (clean.ends_with('.')) {
      clean.remove_suffix(1);
    }
    if (externalName.empty()) {
      r.required(p);
    } else if (auto msg = checkDns1123Subdomain(clean); !msg.empty()) {
      r.invalid(p, externalName, msg);
    } else {
      s.externalName.assign(externalName);
    }
  }

  // Traffic policies: externalTrafficPolicy only where traffic comes from outside.
  const bool externallyAccessible =
      s.type == ServiceType::LoadBalancer || s.type == ServiceType::NodePort ||
      (s.type == ServiceType::ClusterIP && !s.externalIPs.empty());
  if (externalPolicy) {
    if (!externallyAccessible) {
      r.invalid(sp.field("externalTrafficPolicy"),
                *externalPolicy == TrafficPolicy::Local ? "Local" : "Cluster",
                "may only be set for externally-accessible services");
    }
    s.externalTrafficPolicy = *externalPolicy;
  }

  // Session affinity: ClientIP gets the 3-hour default timeout; None takes no config.
  if (s.sessionAffinity == SessionAffinity::ClientIP) {
    if (affinityTimeout) {
      if (*affinityTimeout <= 0 || *affinityTimeout > kMaxClientIpAffinitySeconds) {
        r.invalid(sp.field("sessionAffinityConfig").field("clientIP").field("timeoutSeconds"),
                  *affinityTimeout, "must be greater than 0 and less than 86400");
      } else {
        s.sessionAffinityTimeoutSeconds = *affinityTimeout;
      }
    }
  } else if (affinityConfigGiven) {
    r.fail(sp.field("sessionAffinityConfig"),
           "forbidden: must not be set when sessionAffinity is None");
  }

  if (!s.loadBalancerSourceRanges.empty() && s.type != ServiceType::LoadBalancer) {
    r.fail(sp.field("loadBalancerSourceRanges"),
           "forbidden: may only be used when `type` is 'LoadBalancer'");
  }
  if (s.healthCheckNodePort != 0) {
    const Path p = sp.field("healthCheckNodePort");
    if (!isValidPortNumber(s.healthCheckNodePort)) {
      r.invalid(p, s.healthCheckNodePort, kPortRangeMessage);
    } else if (s.type != ServiceType::LoadBalancer ||
               s.externalTrafficPolicy != TrafficPolicy::Local) {
      r.fail(p, "forbidden: may only be set when `type` is 'LoadBalancer' and "
                "`externalTrafficPolicy` is 'Local'");
    }
  }

  // status.loadBalancer.ingress
  const Path stp = c.root.field("status");
  dom::object status;
  if (f.status && r.object(*f.status, stp, status) == Read::Ok) {
    for (auto [key, value] : status) {
      dom::object lb;
      if (key != "loadBalancer" || r.object(value, stp.field("loadBalancer"), lb) != Read::Ok) {
        continue;
      }
      for (auto [lk, lv] : lb) {
        if (lk == "ingress") {
          decodeLoadBalancerIngress(r, lv, stp.field("loadBalancer").field("ingress"), true,
                                    s.loadBalancerIngress);
        }
      }
    }
  }
}

}  // namespace kdp::k8s::detail
