// EndpointSlice (discovery.k8s.io/v1, and v1beta1 with its `topology` map): the hot path of a
// large cluster's LIST, so it avoids copies — strings are built once from the parsed text and
// vectors are sized from the array counts the DOM already holds.

#include "k8s/detail/decode_kinds.h"
#include "k8s/detail/validate.h"

namespace kdp::k8s::detail {

namespace {

constexpr std::size_t kMaxEndpoints = 1000;
constexpr std::size_t kMaxPorts = 100;
constexpr std::size_t kMaxAddresses = 100;
constexpr std::size_t kMaxZoneHints = 8;
constexpr std::size_t kMaxNodeHints = 8;

constexpr std::string_view kHostnameTopologyKey = "kubernetes.io/hostname";

constexpr EnumName<AddressType> kAddressTypes[] = {
    {"FQDN", AddressType::FQDN}, {"IPv4", AddressType::IPv4}, {"IPv6", AddressType::IPv6}};

std::string tooMany(std::size_t n, std::size_t max) {
  return "too many: " + std::to_string(n) + ": must have at most " + std::to_string(max) +
         " items";
}

void decodeAddresses(Reader& r, dom::element e, const Path& p, std::optional<AddressType> type,
                     Endpoint& out, EndpointDetails& details) {
  dom::array a;
  if (r.array(e, p, a) != Read::Ok) {
    return;
  }
  const std::size_t n = a.size();
  if (n == 0) {
    r.fail(p, "must contain at least 1 address");
    return;
  }
  if (n > kMaxAddresses) {
    r.fail(p, tooMany(n, kMaxAddresses));
    return;
  }
  if (!type) {
    return;  // addressType is missing or bad: reported once at the top
  }
  if (*type == AddressType::FQDN) {
    details.fqdnAddresses.reserve(n);
  }
  std::size_t i = 0;
  for (dom::element ae : a) {
    const Path ap = p.at(i++);
    std::string_view text;
    if (r.string(ae, ap, text, SIZE_MAX) != Read::Ok) {
      if (ae.type() == dom::element_type::NULL_VALUE) {
        r.required(ap);
      }
      continue;
    }
    if (*type == AddressType::FQDN) {
      if (auto msg = checkDns1123Subdomain(text); !msg.empty()) {
        r.invalid(ap, text, msg);
      } else {
        details.fqdnAddresses.emplace_back(text);
      }
      continue;
    }
    auto ip = IpAddr::parse(text);
    const bool v4 = *type == AddressType::IPv4;
    if (!ip || ip->isV4() != v4) {
      r.invalid(ap, text, v4 ? "must be a valid IPv4 address" : "must be a valid IPv6 address");
      continue;
    }
    out.addresses.push_back(*ip);
  }
}

void decodeHintNames(Reader& r, dom::element e, const Path& p, std::size_t max,
                     std::vector<std::string>& out) {
  dom::array a;
  if (r.array(e, p, a) != Read::Ok) {
    return;
  }
  if (a.size() > max) {
    r.fail(p, tooMany(a.size(), max));
    return;
  }
  out.reserve(a.size());
  std::size_t i = 0;
  for (dom::element he : a) {
    const Path hp = p.at(i++);
    dom::object o;
    if (r.object(he, hp, o) != Read::Ok) {
      continue;
    }
    bool named = false;
    for (auto [key, value] : o) {
      std::string_view name;
      if (key == "name" && r.string(value, hp.field("name"), name) == Read::Ok && !name.empty()) {
        out.emplace_back(name);
        named = true;
      }
    }
    if (!named) {
      r.required(hp.field("name"));
    }
  }
}

/// The details of a slice's endpoints: equal ones are shared (a slice's endpoints mostly sit in
/// one or a few zones).
using DetailsMade = std::vector<SharedDetails>;

void decodeEndpoint(Reader& r, dom::element e, const Path& p, std::optional<AddressType> type,
                    Endpoint& out, DetailsMade& made) {
  dom::object o;
  if (r.object(e, p, o) != Read::Ok) {
    return;
  }
  EndpointDetails details;
  bool haveAddresses = false;
  std::optional<bool> ready, serving, terminating;
  std::string_view topologyNode, topologyZone;
  for (auto [key, value] : o) {
    if (key == "addresses") {
      haveAddresses = value.type() != dom::element_type::NULL_VALUE;
      decodeAddresses(r, value, p.field("addresses"), type, out, details);
    } else if (key == "conditions") {
      const Path cp = p.field("conditions");
      dom::object co;
      if (r.object(value, cp, co) != Read::Ok) {
        continue;
      }
      for (auto [ck, cv] : co) {
        bool b = false;
        if (ck == "ready") {
          if (r.boolean(cv, cp.field("ready"), b) == Read::Ok) {
            ready = b;
          }
        } else if (ck == "serving") {
          if (r.boolean(cv, cp.field("serving"), b) == Read::Ok) {
            serving = b;
          }
        } else if (ck == "terminating") {
          if (r.boolean(cv, cp.field("terminating"), b) == Read::Ok) {
            terminating = b;
          }
        }
      }
    } else if (key == "nodeName") {
      const Path np = p.field("nodeName");
      std::string_view s;
      if (r.string(value, np, s, SIZE_MAX) == Read::Ok && !s.empty()) {
        if (auto msg = checkDns1123Subdomain(s); !msg.empty()) {
          r.invalid(np, s, msg);
        } else {
          out.nodeName.assign(s);
        }
      }
    } else if (key == "hostname") {
      const Path hp = p.field("hostname");
      std::string_view s;
      if (r.string(value, hp, s, SIZE_MAX) == Read::Ok && !s.empty()) {
        if (auto msg = checkDns1123Label(s); !msg.empty()) {
          r.invalid(hp, s, msg);
        } else {
          out.hostname.assign(s);
        }
      }
    } else if (key == "zone") {
      r.string(value, p.field("zone"), details.zone);
    } else if (key == "targetRef") {
      const Path tp = p.field("targetRef");
      dom::object ref;
      if (r.object(value, tp, ref) != Read::Ok) {
        continue;
      }
      std::string_view kind, name;
      for (auto [rk, rv] : ref) {
        if (rk == "kind") {
          r.string(rv, tp.field("kind"), kind);
        } else if (rk == "name") {
          r.string(rv, tp.field("name"), name);
        }
      }
      if (kind == "Pod") {
        out.targetPodName.assign(name);
      }
    } else if (key == "hints") {
      const Path hp = p.field("hints");
      dom::object hints;
      if (r.object(value, hp, hints) != Read::Ok) {
        continue;
      }
      for (auto [hk, hv] : hints) {
        if (hk == "forZones") {
          decodeHintNames(r, hv, hp.field("forZones"), kMaxZoneHints, details.hintsForZones);
        } else if (hk == "forNodes") {
          decodeHintNames(r, hv, hp.field("forNodes"), kMaxNodeHints, details.hintsForNodes);
        }
      }
    } else if (key == "topology" || key == "deprecatedTopology") {
      // v1beta1 carried node and zone in this map; v1 moved them to nodeName and zone.
      r.stringMap(value, p.field(key), [&](std::string_view k, std::string_view v, const Path&) {
        if (k == kHostnameTopologyKey) {
          topologyNode = v;
        } else if (k == kZoneLabel) {
          topologyZone = v;
        }
      });
    }
  }
  if (!haveAddresses) {
    r.required(p.field("addresses"));
  }
  if (out.nodeName.empty() && !topologyNode.empty()) {
    out.nodeName.assign(topologyNode);
  }
  if (details.zone.empty() && !topologyZone.empty()) {
    details.zone.assign(topologyZone);
  }
  if (!details.empty()) {
    auto same = std::find_if(made.begin(), made.end(), [&](const auto& d) { return *d == details; });
    if (same != made.end()) {
      out.extra = *same;
    } else {
      out.setDetails(std::move(details));
      made.push_back(out.extra);
    }
  }
  // Absent conditions, as consumers of the API read them (see EndpointConditions).
  out.conditions.ready = ready.value_or(true);
  out.conditions.serving = serving.value_or(out.conditions.ready);
  out.conditions.terminating = terminating.value_or(false);
}

void decodeEndpointPorts(Reader& r, dom::element e, const Path& p, std::vector<EndpointPort>& out) {
  dom::array a;
  if (r.array(e, p, a) != Read::Ok) {
    return;
  }
  if (a.size() > kMaxPorts) {
    r.fail(p, tooMany(a.size(), kMaxPorts));
    return;
  }
  out.reserve(a.size());
  std::vector<std::pair<std::string_view, std::size_t>> names;
  std::size_t i = 0;
  for (dom::element pe : a) {
    const Path pp = p.at(i++);
    dom::object o;
    if (r.object(pe, pp, o) != Read::Ok) {
      continue;
    }
    EndpointPort& port = out.emplace_back();
    for (auto [key, value] : o) {
      if (key == "name") {
        const Path np = pp.field("name");
        std::string_view name;
        if (r.string(value, np, name, SIZE_MAX) == Read::Ok && !name.empty()) {
          if (auto msg = checkDns1123Label(name); !msg.empty()) {
            r.invalid(np, name, msg);
          } else {
            port.name.assign(name);
          }
        }
      } else if (key == "protocol") {
        r.protocol(value, pp.field("protocol"), port.protocol);
      } else if (key == "port") {
        const Path np = pp.field("port");
        std::int32_t n = 0;
        if (r.int32(value, np, n) == Read::Ok) {
          if (!isValidPortNumber(n)) {
            r.invalid(np, n, kPortRangeMessage);
          } else {
            port.port = n;
          }
        }
      } else if (key == "appProtocol") {
        const Path ap = pp.field("appProtocol");
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
    names.emplace_back(port.name, out.size() - 1);
  }
  forEachDuplicate(names, [&](std::size_t k) {
    r.invalid(p.at(k).field("name"), out[k].name, "duplicate value");
  });
}

}  // namespace

void decodeEndpointSlice(KindContext& c, const RootFields& f, EndpointSlice& out) {
  Reader& r = c.reader;
  decodeObjectMeta(c, f, Kind::EndpointSlice, out.meta);
  if (auto it = out.meta.labels.find(kServiceNameLabel); it != out.meta.labels.end()) {
    out.serviceName = it->second;
    out.meta.labels.erase(kServiceNameLabel);  // kept once, as serviceName
  }

  std::optional<AddressType> type;
  const Path tp = c.root.field("addressType");
  AddressType t{};
  Read got = f.addressType ? r.enumeration(*f.addressType, tp, kAddressTypes, t) : Read::Absent;
  if (got == Read::Ok) {
    type = t;
    out.addressType = t;
  } else if (got == Read::Absent) {
    r.required(tp);
  }

  if (f.endpoints) {
    const Path ep = c.root.field("endpoints");
    dom::array a;
    if (r.array(*f.endpoints, ep, a) == Read::Ok) {
      const std::size_t n = a.size();
      if (n > kMaxEndpoints) {
        r.fail(ep, tooMany(n, kMaxEndpoints));
      } else {
        out.endpoints.reserve(n);
        DetailsMade made;
        std::size_t i = 0;
        for (dom::element ee : a) {
          decodeEndpoint(r, ee, ep.at(i++), type, out.endpoints.emplace_back(), made);
        }
      }
    }
  }
  if (f.ports) {
    decodeEndpointPorts(r, *f.ports, c.root.field("ports"), out.ports);
  }
}

}  // namespace kdp::k8s::detail
