#pragma once
// A small cluster for the dns tests, decoded from YAML as the manifests source would.

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "dns/detail/wire.h"
#include "k8s/decode.h"
#include "k8s/store.h"

namespace kdp::dns::test {

inline constexpr std::string_view kClusterYaml = R"(
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Namespace
metadata: {name: empty}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  clusterIP: 10.96.0.20
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: https, port: 443}
---
apiVersion: v1
kind: Service
metadata: {name: dual, namespace: shop}
spec:
  clusterIPs: [10.96.0.30, "fd00::30"]
  ipFamilyPolicy: RequireDualStack
  ipFamilies: [IPv4, IPv6]
  ports: [{name: dns, port: 53, protocol: UDP}]
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: data}
spec:
  clusterIP: None
  ports: [{name: postgres, port: 5432}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: db-1
  namespace: data
  labels: {kubernetes.io/service-name: db}
addressType: IPv4
ports: [{name: postgres, protocol: TCP, port: 5432}]
endpoints:
- {addresses: [10.244.1.31], hostname: db-0, conditions: {ready: true}}
- {addresses: [10.244.2.32], conditions: {ready: true}}
- {addresses: [10.244.2.33], hostname: db-2, conditions: {ready: false}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: db-2
  namespace: data
  labels: {kubernetes.io/service-name: db}
addressType: IPv6
ports: [{name: postgres, protocol: TCP, port: 5432}]
endpoints:
- {addresses: ["fd00::31"], hostname: db-0, conditions: {ready: true}}
---
apiVersion: v1
kind: Service
metadata: {name: idle, namespace: data}
spec:
  clusterIP: None
  ports: [{name: postgres, port: 5432}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: idle-1
  namespace: data
  labels: {kubernetes.io/service-name: idle}
addressType: IPv4
endpoints:
- {addresses: [10.244.3.1], conditions: {ready: false}}
---
apiVersion: v1
kind: Service
metadata: {name: eager, namespace: data}
spec:
  clusterIP: None
  publishNotReadyAddresses: true
  ports: [{port: 5432}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: eager-1
  namespace: data
  labels: {kubernetes.io/service-name: eager}
addressType: IPv4
endpoints:
- {addresses: [10.244.3.2], conditions: {ready: false}}
---
apiVersion: v1
kind: Service
metadata: {name: payments, namespace: shop}
spec: {type: ExternalName, externalName: api.payments.example.net}
---
apiVersion: v1
kind: Service
metadata: {name: alias, namespace: shop}
spec: {type: ExternalName, externalName: web.shop.svc.cluster.local}
---
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system}
spec:
  clusterIP: 10.96.0.10
  ports: [{name: dns, port: 53, protocol: UDP}]
---
apiVersion: v1
kind: Pod
metadata: {name: api-0, namespace: shop}
spec: {containers: [{name: api, image: x}]}
status: {phase: Running, podIP: 10.244.1.21}
)";

/// A synced snapshot of kClusterYaml (plus `extraYaml`).
inline std::shared_ptr<const k8s::Snapshot> clusterSnapshot(std::string_view extraYaml = {},
                                                            bool synced = true) {
  k8s::Store store;
  k8s::Batch batch;
  for (std::string_view text : {kClusterYaml, extraYaml}) {
    if (text.empty()) {
      continue;
    }
    auto decoded = k8s::decodeYaml(text, "test.yaml");
    if (!decoded.errors.empty()) {
      throw std::runtime_error(decoded.errors.front().str());
    }
    for (auto& o : decoded.objects) {
      batch.upsert(std::move(o));
    }
  }
  store.apply(std::move(batch));
  if (synced) {
    store.markSynced();
  }
  return store.snapshot();
}

/// A query for `name` (text) and `qtype`, id 0xBEEF, RD set; with EDNS when udpSize != 0.
inline std::string makeQuery(std::string_view name, std::uint16_t qtype, std::uint16_t udpSize = 0,
                             std::uint16_t qclass = wire::kClassIN) {
  std::string out;
  wire::Writer w(out);
  w.u16(0xBEEF);
  w.u16(wire::kFlagRD);
  w.u16(1);
  w.u16(0);
  w.u16(0);
  w.u16(udpSize != 0 ? 1 : 0);
  w.name(*wire::nameFromText(name));
  w.u16(qtype);
  w.u16(qclass);
  if (udpSize != 0) {
    w.u8(0);
    w.u16(wire::kTypeOPT);
    w.u16(udpSize);
    w.u32(0);
    w.u16(0);
  }
  return out;
}

inline std::span<const std::uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

/// A response as one line of text: "NOERROR aa tc | answers | authority | additional", records as
/// "name ttl TYPE rdata" joined by "; ". Names as sent (case kept). Throws on a malformed message.
inline std::string render(std::string_view msgText) {
  const auto msg = bytes(msgText);
  auto m = wire::parseMessage(msg);
  if (!m) {
    throw std::runtime_error("unparseable response: " + m.error().message);
  }
  static const char* kRcodes[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"};
  std::uint16_t rcode = m->header.rcode();
  for (const auto& r : m->additional) {
    if (r.type == wire::kTypeOPT) {
      rcode = static_cast<std::uint16_t>(rcode | ((r.ttl >> 24) << 4));
    }
  }
  std::string out = rcode < 6 ? kRcodes[rcode] : (rcode == 16 ? "BADVERS" : std::to_string(rcode));
  if (m->header.flags & wire::kFlagAA) out += " aa";
  if (m->header.flags & wire::kFlagTC) out += " tc";
  auto name = [&](std::size_t off) {
    auto n = wire::readName(msg, off);
    return n ? wire::nameToText(*n) : std::string("?");
  };
  auto section = [&](const std::vector<wire::Record>& recs) {
    std::string s;
    for (const auto& r : recs) {
      if (!s.empty()) s += "; ";
      if (r.type == wire::kTypeOPT) {
        s += "OPT " + std::to_string(r.rclass);
        continue;
      }
      s += wire::nameToText(r.name) + " " + std::to_string(r.ttl) + " ";
      const std::uint8_t* p = msg.data() + r.rdataOffset;
      switch (r.type) {
        case wire::kTypeA: s += "A " + IpAddr::fromBytes(IpFamily::V4, p).str(); break;
        case wire::kTypeAAAA: s += "AAAA " + IpAddr::fromBytes(IpFamily::V6, p).str(); break;
        case wire::kTypeCNAME: s += "CNAME " + name(r.rdataOffset); break;
        case wire::kTypePTR: s += "PTR " + name(r.rdataOffset); break;
        case wire::kTypeNS: s += "NS " + name(r.rdataOffset); break;
        case wire::kTypeTXT: s += "TXT \"" + std::string(reinterpret_cast<const char*>(p) + 1, p[0]) + "\""; break;
        case wire::kTypeSRV:
          s += "SRV " + std::to_string(wire::getU16(p)) + " " + std::to_string(wire::getU16(p + 2)) +
               " " + std::to_string(wire::getU16(p + 4)) + " " + name(r.rdataOffset + 6);
          break;
        case wire::kTypeSOA: {
          std::size_t off = r.rdataOffset;
          auto mname = wire::readName(msg, off);
          auto rname = wire::readName(msg, off);
          s += "SOA " + wire::nameToText(*mname) + " " + wire::nameToText(*rname) + " ... " +
               std::to_string(wire::getU32(msg.data() + off + 16));
          break;
        }
        default: s += "TYPE" + std::to_string(r.type);
      }
    }
    return s;
  };
  out += " | " + section(m->answers) + " | " + section(m->authority) + " | " + section(m->additional);
  return out;
}

}  // namespace kdp::dns::test
