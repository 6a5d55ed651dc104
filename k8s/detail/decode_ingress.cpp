// Ingress and IngressClass (networking.k8s.io/v1), validated as ValidateIngress and
// ValidateIngressClass do for the fields the data plane uses.

#include "k8s/detail/decode_kinds.h"
#include "k8s/detail/validate.h"

namespace kdp::k8s::detail {

namespace {

constexpr EnumName<PathType> kPathTypes[] = {
    {"Exact", PathType::Exact},
    {"ImplementationSpecific", PathType::ImplementationSpecific},
    {"Prefix", PathType::Prefix}};

constexpr std::size_t kMaxIngressClassControllerLength = 250;

// Ingress hosts and TLS hosts: a DNS name, possibly "*." first; never an IP address.
void checkHost(Reader& r, const Path& p, std::string_view host) {
  if (IpAddr::parse(host)) {
    r.invalid(p, host, "must be a DNS name, not an IP address");
  } else if (auto msg = checkWildcardDns1123Subdomain(host); !msg.empty()) {
    r.invalid(p, host, msg);
  }
}

void decodeBackend(Reader& r, dom::element e, const Path& p, IngressBackend& out) {
  dom::object o;
  if (r.object(e, p, o) != Read::Ok) {
    return;
  }
  bool haveService = false;
  for (auto [key, value] : o) {
    if (key == "service") {
      const Path sp = p.field("service");
      dom::object so;
      if (r.object(value, sp, so) != Read::Ok) {
        continue;
      }
      haveService = true;
      bool nameSeen = false;   // service.name given (valid or not)
      bool haveNumber = false;  // port.number given and not 0 (valid or not)
      bool havePortName = false;
      const Path portPath = sp.field("port");
      for (auto [sk, sv] : so) {
        if (sk == "name") {
          const Path np = sp.field("name");
          std::string_view name;
          Read got = r.string(sv, np, name, SIZE_MAX);
          nameSeen = got == Read::Bad || (got == Read::Ok && !name.empty());
          if (got == Read::Ok && !name.empty()) {
            if (auto msg = checkDns1035Label(name); !msg.empty()) {
              r.invalid(np, name, msg);
            } else {
              out.serviceName.assign(name);
            }
          }
        } else if (sk == "port") {
          dom::object po;
          if (r.object(sv, portPath, po) != Read::Ok) {
            havePortName = sv.type() != dom::element_type::NULL_VALUE;  // reported already
            continue;
          }
          for (auto [pk, pv] : po) {
            if (pk == "number") {
              const Path np = portPath.field("number");
              Read got = r.int32(pv, np, out.servicePort.number);
              haveNumber = got == Read::Bad || (got == Read::Ok && out.servicePort.number != 0);
              if (got == Read::Ok && out.servicePort.number != 0 &&
                  !isValidPortNumber(out.servicePort.number)) {
                r.invalid(np, out.servicePort.number, kPortRangeMessage);
              }
            } else if (pk == "name") {
              const Path np = portPath.field("name");
              std::string_view name;
              Read got = r.string(pv, np, name, SIZE_MAX);
              havePortName = got == Read::Bad || (got == Read::Ok && !name.empty());
              if (got == Read::Ok && !name.empty()) {
                if (auto msg = checkIanaSvcName(name); !msg.empty()) {
                  r.invalid(np, name, msg);
                } else {
                  out.servicePort.name.assign(name);
                }
              }
            }
          }
        }
      }
      if (!nameSeen) {
        r.required(sp.field("name"));
      }
      if (havePortName && haveNumber) {
        r.fail(portPath, "cannot set both port name & port number");
      } else if (!havePortName && !haveNumber) {
        r.fail(portPath, "port name or number is required");
      }
    } else if (key == "resource") {
      const Path rp = p.field("resource");
      dom::object ro;
      if (r.object(value, rp, ro) != Read::Ok) {
        continue;
      }
      out.isResource = true;
      for (auto [rk, rv] : ro) {
        if (rk == "apiGroup") {
          r.string(rv, rp.field("apiGroup"), out.resourceApiGroup);
        } else if (rk == "kind") {
          r.string(rv, rp.field("kind"), out.resourceKind);
        } else if (rk == "name") {
          r.string(rv, rp.field("name"), out.resourceName);
        }
      }
      if (out.resourceKind.empty()) {
        r.required(rp.field("kind"));
      }
      if (out.resourceName.empty()) {
        r.required(rp.field("name"));
      }
    }
  }
  if (haveService && out.isResource) {
    r.fail(p, "cannot set both service and resource backends");
  } else if (!haveService && !out.isResource) {
    r.fail(p, "one backend (service or resource) must be specified");
  }
}

void checkPath(Reader& r, const Path& p, const IngressPath& path) {
  static constexpr std::string_view kInvalidSequences[] = {"//", "/./", "/../", "%2f", "%2F"};
  static constexpr std::string_view kInvalidSuffixes[] = {"/..", "/."};
  const Path pp = p.field("path");
  if (!path.path.empty() && path.path.front() != '/') {
    r.invalid(pp, path.path, "must be an absolute path");
    return;
  }
  if (path.pathType == PathType::ImplementationSpecific) {
    return;
  }
  if (path.path.empty()) {
    r.invalid(pp, path.path, "must be an absolute path");
    return;
  }
  for (auto seq : kInvalidSequences) {
    if (path.path.find(seq) != std::string::npos) {
      r.invalid(pp, path.path, "must not contain '" + std::string(seq) + "'");
    }
  }
  for (auto suffix : kInvalidSuffixes) {
    if (std::string_view(path.path).ends_with(suffix)) {
      r.invalid(pp, path.path, "cannot end with '" + std::string(suffix) + "'");
    }
  }
}

void decodeHttpPaths(Reader& r, dom::element e, const Path& p, IngressRule& rule) {
  dom::array a;
  Read got = r.array(e, p, a);
  if (got == Read::Bad) {
    return;
  }
  if (got == Read::Absent || a.size() == 0) {
    r.required(p);
    return;
  }
  rule.paths.reserve(a.size());
  std::size_t i = 0;
  for (dom::element pe : a) {
    const Path pp = p.at(i++);
    dom::object o;
    if (r.object(pe, pp, o) != Read::Ok) {
      continue;
    }
    IngressPath& path = rule.paths.emplace_back();
    Read typeRead = Read::Absent;
    bool haveBackend = false;
    for (auto [key, value] : o) {
      if (key == "path") {
        r.string(value, pp.field("path"), path.path, SIZE_MAX);
      } else if (key == "pathType") {
        typeRead = r.enumeration(value, pp.field("pathType"), kPathTypes, path.pathType);
      } else if (key == "backend") {
        haveBackend = value.type() != dom::element_type::NULL_VALUE;
        decodeBackend(r, value, pp.field("backend"), path.backend);
      }
    }
    if (typeRead == Read::Absent) {
      r.fail(pp.field("pathType"), "required value: pathType must be specified");
    } else if (typeRead == Read::Ok) {
      checkPath(r, pp, path);
    }
    if (!haveBackend) {
      r.required(pp.field("backend"));
    }
  }
}

void decodeRules(Reader& r, dom::element e, const Path& p, std::vector<IngressRule>& out) {
  dom::array a;
  if (r.array(e, p, a) != Read::Ok) {
    return;
  }
  out.reserve(a.size());
  std::size_t i = 0;
  for (dom::element re : a) {
    const Path rp = p.at(i++);
    dom::object o;
    if (r.object(re, rp, o) != Read::Ok) {
      continue;
    }
    IngressRule& rule = out.emplace_back();
    for (auto [key, value] : o) {
      if (key == "host") {
        const Path hp = rp.field("host");
        std::string_view host;
        if (r.string(value, hp, host, SIZE_MAX) == Read::Ok && !host.empty()) {
          checkHost(r, hp, host);
          rule.host.assign(host);
        }
      } else if (key == "http") {
        const Path hp = rp.field("http");
        dom::object http;
        if (r.object(value, hp, http) != Read::Ok) {
          continue;
        }
        std::optional<dom::element> paths;
        for (auto [hk, hv] : http) {
          if (hk == "paths") {
            paths = hv;
          }
        }
        const Path pathsPath = hp.field("paths");
        if (!paths) {
          r.required(pathsPath);
        } else {
          decodeHttpPaths(r, *paths, pathsPath, rule);
        }
      }
    }
  }
}

void decodeTls(Reader& r, dom::element e, const Path& p, std::vector<IngressTls>& out) {
  dom::array a;
  if (r.array(e, p, a) != Read::Ok) {
    return;
  }
  out.reserve(a.size());
  std::size_t i = 0;
  for (dom::element te : a) {
    const Path tp = p.at(i++);
    dom::object o;
    if (r.object(te, tp, o) != Read::Ok) {
      continue;
    }
    IngressTls& tls = out.emplace_back();
    for (auto [key, value] : o) {
      if (key == "hosts") {
        const Path hp = tp.field("hosts");
        dom::array hosts;
        if (r.array(value, hp, hosts) != Read::Ok) {
          continue;
        }
        tls.hosts.reserve(hosts.size());
        std::size_t h = 0;
        for (dom::element he : hosts) {
          const Path hip = hp.at(h++);
          std::string_view host;
          if (r.string(he, hip, host, SIZE_MAX) == Read::Ok) {
            checkHost(r, hip, host);
            tls.hosts.emplace_back(host);
          }
        }
      } else if (key == "secretName") {
        const Path sp = tp.field("secretName");
        std::string_view name;
        if (r.string(value, sp, name, SIZE_MAX) == Read::Ok && !name.empty()) {
          if (auto msg = checkDns1123Subdomain(name); !msg.empty()) {
            r.invalid(sp, name, msg);
          } else {
            tls.secretName.assign(name);
          }
        }
      }
    }
  }
}

}  // namespace

void decodeIngress(KindContext& c, const RootFields& f, Ingress& out) {
  Reader& r = c.reader;
  decodeObjectMeta(c, f, Kind::Ingress, out.meta);

  const Path sp = c.root.field("spec");
  dom::object spec;
  const Read specRead = f.spec ? r.object(*f.spec, sp, spec) : Read::Absent;
  if (specRead == Read::Bad) {
    return;
  }
  bool rulesGiven = false;
  if (specRead == Read::Ok) {
    for (auto [key, value] : spec) {
      if (key == "ingressClassName") {
        const Path p = sp.field("ingressClassName");
        std::string_view name;
        if (r.string(value, p, name, SIZE_MAX) == Read::Ok) {
          if (auto msg = checkDns1123Subdomain(name); !msg.empty()) {
            r.invalid(p, name, msg);
          } else {
            out.ingressClassName.emplace(name);
          }
        }
      } else if (key == "defaultBackend") {
        if (value.type() != dom::element_type::NULL_VALUE) {
          decodeBackend(r, value, sp.field("defaultBackend"), out.defaultBackend.emplace());
        }
      } else if (key == "backend") {
        // The v1beta1 name: a v1 object does not have it, so this is an old manifest.
        r.fail(sp.field("backend"),
               "not a networking.k8s.io/v1 field: use defaultBackend (and "
               "service.name/service.port)");
      } else if (key == "rules") {
        rulesGiven = value.type() != dom::element_type::NULL_VALUE &&
                     (value.type() != dom::element_type::ARRAY ||
                      value.get_array().value_unsafe().size() != 0);
        decodeRules(r, value, sp.field("rules"), out.rules);
      } else if (key == "tls") {
        decodeTls(r, value, sp.field("tls"), out.tls);
      }
    }
  }
  if (!out.defaultBackend && !rulesGiven) {
    r.fail(sp, "either `defaultBackend` or `rules` must be specified");
  }

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
          decodeLoadBalancerIngress(r, lv, stp.field("loadBalancer").field("ingress"), false,
                                    out.loadBalancerIngress);
        }
      }
    }
  }
}

void decodeIngressClass(KindContext& c, const RootFields& f, IngressClass& out) {
  Reader& r = c.reader;
  decodeObjectMeta(c, f, Kind::IngressClass, out.meta);
  if (auto it = out.meta.annotations.find(kDefaultClassAnnotation);
      it != out.meta.annotations.end()) {
    out.isDefault = it->second == "true";
  }
  const Path sp = c.root.field("spec");
  dom::object spec;
  if (f.spec && r.object(*f.spec, sp, spec) == Read::Ok) {
    for (auto [key, value] : spec) {
      if (key == "controller") {
        r.string(value, sp.field("controller"), out.controller, SIZE_MAX);
      }
    }
  }
  const Path cp = sp.field("controller");
  if (out.controller.empty()) {
    r.required(cp);
  } else if (out.controller.size() > kMaxIngressClassControllerLength) {
    r.fail(cp, "too long: must have at most " +
                   std::to_string(kMaxIngressClassControllerLength) + " bytes");
  } else if (auto msg = checkDomainPrefixedPath(out.controller); !msg.empty()) {
    r.invalid(cp, out.controller, msg);
  }
}

}  // namespace kdp::k8s::detail
