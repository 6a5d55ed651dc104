#include "dns/zone.h"

#include <algorithm>
#include <functional>
#include <map>

#include "common/ascii.h"
#include "dns/detail/wire.h"
#include "k8s/store.h"

namespace kdp::dns {

namespace {

using wire::nameFromText;

std::string_view protoLabel(k8s::Protocol p) {
  switch (p) {
    case k8s::Protocol::TCP: return "_tcp";
    case k8s::Protocol::UDP: return "_udp";
    case k8s::Protocol::SCTP: return "_sctp";
  }
  return "_tcp";
}

const std::string kReverseV4 = *nameFromText("in-addr.arpa");
const std::string kReverseV6 = *nameFromText("ip6.arpa");

}  // namespace

const std::string& Zone::reverseV4() { return kReverseV4; }
const std::string& Zone::reverseV6() { return kReverseV6; }

Zone::Zone(ZoneOptions options) : options_(std::move(options)) {
  apex_ = wire::lowerName(nameFromText(options_.clusterDomain).value_or(std::string(1, '\0')));
}

bool Zone::podIpExists(std::string_view ns, const IpAddr& ip) const {
  return podIps_.count(std::pair<std::string, IpAddr>(std::string(ns), ip)) != 0;
}

std::string reverseName(const IpAddr& ip) {
  std::string out;
  const auto& b = ip.bytes();
  if (ip.isV4()) {
    for (int i = 3; i >= 0; --i) {
      out += std::to_string(b[static_cast<std::size_t>(i)]);
      out += '.';
    }
    out += "in-addr.arpa.";
    return out;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 15; i >= 0; --i) {
    const std::uint8_t v = b[static_cast<std::size_t>(i)];
    out += kHex[v & 0xF];
    out += '.';
    out += kHex[v >> 4];
    out += '.';
  }
  out += "ip6.arpa.";
  return out;
}

std::string dashedIp(const IpAddr& ip) {
  std::string s = ip.str();
  std::replace(s.begin(), s.end(), ip.isV4() ? '.' : ':', '-');
  return s;
}

/// Builds a Zone; a friend of Zone.
class ZoneBuilder {
 public:
  ZoneBuilder(std::shared_ptr<Zone> zone) : zone_(std::move(zone)) {}

  Node& node(const std::string& lowerWire, bool addAncestors) {
    auto [it, inserted] = zone_->nodes_.try_emplace(lowerWire);
    if (inserted && addAncestors) {
      // Empty non-terminals up to the apex, so that they answer NODATA rather than NXDOMAIN.
      std::string_view rest = lowerWire;
      while (rest.size() > zone_->apex_.size() && rest[0] != '\0') {
        rest.remove_prefix(1u + static_cast<std::uint8_t>(rest[0]));
        if (!wire::isSubdomain(rest, zone_->apex_)) {
          break;
        }
        zone_->nodes_.try_emplace(std::string(rest));
      }
    }
    return it->second;
  }

  RRset& rrset(Node& n, std::uint16_t type) {
    for (auto& s : n.rrsets) {
      if (s.type == type) {
        return s;
      }
    }
    n.rrsets.push_back(RRset{type, 0, {}, 0, {}});
    return n.rrsets.back();
  }

  /// Appends a record tail to `set` unless an identical one is there.
  void add(RRset& set, const std::string& tail) {
    // Records are small and sets short; a linear duplicate check keeps the order stable.
    std::size_t off = 0;
    while (off + 10 <= set.tails.size()) {
      const auto rdlen = wire::getU16(reinterpret_cast<const std::uint8_t*>(set.tails.data()) +
                                      off + 8);
      const std::size_t len = 10u + rdlen;
      if (set.tails.compare(off, len, tail) == 0) {
        return;
      }
      off += len;
    }
    set.tails += tail;
    ++set.count;
  }

  std::string tail(std::uint16_t type, const std::function<void(wire::Writer&)>& rdata) const {
    std::string out;
    wire::Writer w(out);
    w.u16(type);
    w.u16(wire::kClassIN);
    w.u32(zone_->options_.ttl);
    w.rdata([&] { rdata(w); });
    return out;
  }

  std::string addressTail(const IpAddr& ip) const {
    return tail(ip.isV4() ? wire::kTypeA : wire::kTypeAAAA, [&](wire::Writer& w) {
      w.bytes(std::string_view(reinterpret_cast<const char*>(ip.bytes().data()), ip.size()));
    });
  }

  void addAddress(const std::string& name, const IpAddr& ip) {
    Node& n = node(name, true);
    add(rrset(n, ip.isV4() ? wire::kTypeA : wire::kTypeAAAA), addressTail(ip));
  }

  void addPtr(const IpAddr& ip, const std::string& target) {
    auto name = nameFromText(reverseName(ip));
    if (!name) {
      return;
    }
    Node& n = node(*name, false);
    add(rrset(n, wire::kTypePTR), tail(wire::kTypePTR, [&](wire::Writer& w) { w.name(target); }));
  }

  struct SrvTarget {
    std::uint16_t port;
    std::string target;            // wire
    std::vector<IpAddr> addresses;  // for the additional section
  };

  void addSrv(const std::string& name, std::vector<SrvTarget> targets) {
    if (targets.empty()) {
      return;
    }
    Node& n = node(name, true);
    RRset& set = rrset(n, wire::kTypeSRV);
    const auto weight = static_cast<std::uint16_t>(std::max<std::size_t>(1, 100 / targets.size()));
    for (const auto& t : targets) {
      add(set, tail(wire::kTypeSRV, [&](wire::Writer& w) {
            w.u16(0);  // priority
            w.u16(weight);
            w.u16(t.port);
            w.name(t.target);
          }));
      for (const auto& ip : t.addresses) {
        std::string rec = t.target + addressTail(ip);
        if (set.additional.find(rec) == std::string::npos) {
          set.additional += rec;
          ++set.additionalCount;
        }
      }
    }
  }

  void compile(const k8s::Snapshot& snap) {
    Zone& z = *zone_;
    const std::string& domain = z.options_.clusterDomain;
    z.synced_ = snap.synced;
    z.version_ = snap.version;
    z.serial_ = snap.lastChangeTime > 0 ? static_cast<std::uint32_t>(snap.lastChangeTime)
                                        : static_cast<std::uint32_t>(snap.version);
    for (const auto& ns : *snap.namespaces) {
      z.namespaces_.insert(ns);
    }

    // Apex: SOA and NS; the name server's own name answers with the kube-dns Service's IPs.
    const std::string nsName = *nameFromText("ns.dns." + domain);
    const std::string mbox = *nameFromText("hostmaster." + domain);
    z.soaTail_ = tail(wire::kTypeSOA, [&](wire::Writer& w) {
      w.name(nsName);
      w.name(mbox);
      w.u32(z.serial_);
      w.u32(7200);
      w.u32(1800);
      w.u32(86400);
      w.u32(z.options_.ttl);
    });
    Node& apex = node(z.apex_, false);
    RRset& soa = rrset(apex, wire::kTypeSOA);
    add(soa, z.soaTail_);
    RRset& ns = rrset(apex, wire::kTypeNS);
    add(ns, tail(wire::kTypeNS, [&](wire::Writer& w) { w.name(nsName); }));
    if (const auto* kubeDns = snap.service("kube-system", "kube-dns");
        kubeDns != nullptr && !kubeDns->headless) {
      for (const auto& ip : kubeDns->clusterIPs) {
        addAddress(nsName, ip);
        ns.additional += nsName + addressTail(ip);
        ++ns.additionalCount;
      }
    }
    Node& version = node(*nameFromText("dns-version." + domain), true);
    add(rrset(version, wire::kTypeTXT), tail(wire::kTypeTXT, [](wire::Writer& w) {
          w.u8(5);
          w.bytes("1.1.0");
        }));
    node(*nameFromText("svc." + domain), true);
    if (z.options_.pods != PodsMode::Disabled) {
      node(*nameFromText("pod." + domain), true);
    }

    for (const auto& entry : snap.of<k8s::Service>()) {
      compileService(snap, *entry.value);
    }

    if (z.options_.autopath) {
      for (const auto& entry : snap.of<k8s::Pod>()) {
        if (entry.value->hostNetwork) {
          continue;  // the node's address: not one pod's search path
        }
        for (const auto& ip : entry.value->podIPs) {
          z.podNamespaces_.emplace(ip, entry.value->meta.namespace_);
        }
      }
    }
    if (z.options_.pods == PodsMode::Verified) {
      for (const auto& entry : snap.of<k8s::Pod>()) {
        for (const auto& ip : entry.value->podIPs) {
          z.podIps_.emplace(entry.value->meta.namespace_, ip);
        }
      }
    }
  }

  void compileService(const k8s::Snapshot& snap, const k8s::Service& svc) {
    const std::string base = svc.meta.name + "." + svc.meta.namespace_ + ".svc." +
                             zone_->options_.clusterDomain;
    auto baseWire = nameFromText(asciiLower(base));
    if (!baseWire) {
      return;
    }
    if (svc.type == k8s::ServiceType::ExternalName) {
      auto target = nameFromText(svc.externalName);
      if (!target || svc.externalName.empty()) {
        return;
      }
      Node& n = node(*baseWire, true);
      n.cnameTarget = wire::lowerName(*target);
      add(rrset(n, wire::kTypeCNAME),
          tail(wire::kTypeCNAME, [&](wire::Writer& w) { w.name(*target); }));
      return;
    }
    if (!svc.headless) {
      if (svc.clusterIPs.empty()) {
        return;
      }
      for (const auto& ip : svc.clusterIPs) {
        addAddress(*baseWire, ip);
        addPtr(ip, *baseWire);
      }
      for (const auto& port : svc.ports) {
        if (port.name.empty()) {
          continue;
        }
        auto srvName = nameFromText(asciiLower("_" + port.name + "." +
                                               std::string(protoLabel(port.protocol)) + "." +
                                               base));
        if (srvName) {
          addSrv(*srvName, {SrvTarget{static_cast<std::uint16_t>(port.port), *baseWire,
                                      svc.clusterIPs}});
        }
      }
      return;
    }

    // Headless: the endpoints DNS publishes, by hostname (or dashed IP), in key order.
    struct Ep {
      std::string host;  // wire, lower-cased
      std::vector<IpAddr> addresses;
    };
    std::map<std::string, Ep> endpoints;  // by host label
    // Named ports by SRV name, with the targets in endpoint order.
    std::map<std::string, std::vector<SrvTarget>> srv;
    snap.forEachSliceOf(svc.meta.namespace_, svc.meta.name, [&](const k8s::EndpointSlice& slice) {
      if (slice.addressType == k8s::AddressType::FQDN) {
        return;
      }
      for (const auto& ep : slice.endpoints) {
        if (!(ep.conditions.ready || svc.publishNotReadyAddresses) || ep.addresses.empty()) {
          continue;
        }
        for (const auto& ip : ep.addresses) {
          const std::string label = ep.hostname.empty() ? dashedIp(ip) : asciiLower(ep.hostname);
          auto hostWire = nameFromText(label + "." + asciiLower(base));
          if (!hostWire || label.find('.') != std::string::npos) {
            continue;
          }
          Ep& e = endpoints[label];
          e.host = *hostWire;
          if (std::find(e.addresses.begin(), e.addresses.end(), ip) == e.addresses.end()) {
            e.addresses.push_back(ip);
          }
          for (const auto& port : slice.ports) {
            if (port.name.empty() || !port.port) {
              continue;
            }
            auto srvName = nameFromText(asciiLower("_" + port.name + "." +
                                                   std::string(protoLabel(port.protocol)) + "." +
                                                   base));
            if (!srvName) {
              continue;
            }
            auto& targets = srv[*srvName];
            auto it = std::find_if(targets.begin(), targets.end(), [&](const SrvTarget& t) {
              return t.target == *hostWire && t.port == static_cast<std::uint16_t>(*port.port);
            });
            if (it == targets.end()) {
              targets.push_back(SrvTarget{static_cast<std::uint16_t>(*port.port), *hostWire, {ip}});
            } else if (std::find(it->addresses.begin(), it->addresses.end(), ip) ==
                       it->addresses.end()) {
              it->addresses.push_back(ip);
            }
          }
        }
      }
    });
    // No published endpoint: the name does not exist (NXDOMAIN), as CoreDNS answers.
    for (const auto& [label, ep] : endpoints) {
      for (const auto& ip : ep.addresses) {
        addAddress(*baseWire, ip);
        addAddress(ep.host, ip);
        addPtr(ip, ep.host);
      }
    }
    for (auto& [name, targets] : srv) {
      addSrv(name, std::move(targets));
    }
  }

 private:
  std::shared_ptr<Zone> zone_;
};

std::shared_ptr<const Zone> compileZone(const k8s::Snapshot& snapshot, const ZoneOptions& options) {
  auto zone = std::make_shared<Zone>(options);
  ZoneBuilder(zone).compile(snapshot);
  return zone;
}

}  // namespace kdp::dns
