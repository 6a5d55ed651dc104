#pragma once
// The object model: typed values for the fields of Kubernetes objects that the data plane uses.
// Decoders (k8s/decode.h) fill them with the API server's defaults applied, so that consumers
// never deal with "absent" where the API defines a default. Plain values: no I/O, no Boost.

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/ip.h"

namespace kdp::k8s {

using StringMap = std::map<std::string, std::string, std::less<>>;

/// A string in 8 bytes: null when empty, else one heap block holding the size and the bytes.
/// For the fields of objects there are many of (endpoints), mostly empty or short.
class CompactString {
 public:
  CompactString() = default;
  explicit CompactString(std::string_view text) { assign(text); }
  // NOLINTNEXTLINE(google-explicit-constructor): literals in aggregates, as for std::string
  CompactString(const char* text) { assign(text); }
  CompactString(const CompactString& other) { assign(other.view()); }
  CompactString(CompactString&&) noexcept = default;
  CompactString& operator=(const CompactString& other) {
    if (this != &other) {
      assign(other.view());
    }
    return *this;
  }
  CompactString& operator=(CompactString&&) noexcept = default;
  CompactString& operator=(std::string_view text) {
    assign(text);
    return *this;
  }
  CompactString& operator=(const char* text) {
    assign(text);
    return *this;
  }

  void assign(std::string_view text);
  std::string_view view() const noexcept;
  operator std::string_view() const noexcept { return view(); }
  operator std::string() const { return str(); }
  std::string str() const { return std::string(view()); }
  bool empty() const noexcept { return block_ == nullptr; }
  std::size_t size() const noexcept { return view().size(); }

  friend bool operator==(const CompactString& a, const CompactString& b) noexcept {
    return a.view() == b.view();
  }
  friend bool operator==(const CompactString& a, std::string_view b) noexcept {
    return a.view() == b;
  }
  friend bool operator==(const CompactString& a, const char* b) noexcept { return a.view() == b; }
  friend std::ostream& operator<<(std::ostream& out, const CompactString& s);

 private:
  std::unique_ptr<char[]> block_;  // [std::uint32_t size][bytes]
};

/// A string → string map in 8 bytes: null when empty, else one heap vector of pairs sorted by
/// key. For labels, annotations and selectors: most objects have none or a few, a std::map
/// costs 48 bytes empty and a node per entry. Reads like a const std::map; a key set twice
/// keeps the last value.
class CompactStringMap {
 public:
  using value_type = std::pair<std::string, std::string>;
  using const_iterator = const value_type*;
  using iterator = const_iterator;

  CompactStringMap() = default;
  CompactStringMap(std::initializer_list<value_type> items);
  CompactStringMap(const StringMap& map);  // NOLINT(google-explicit-constructor): a map's value
  CompactStringMap(const CompactStringMap& other);
  CompactStringMap(CompactStringMap&&) noexcept = default;
  CompactStringMap& operator=(const CompactStringMap& other);
  CompactStringMap& operator=(CompactStringMap&&) noexcept = default;

  const_iterator begin() const noexcept { return items_ ? items_->data() : nullptr; }
  const_iterator end() const noexcept { return items_ ? items_->data() + items_->size() : nullptr; }
  bool empty() const noexcept { return !items_ || items_->empty(); }
  std::size_t size() const noexcept { return items_ ? items_->size() : 0; }
  const_iterator find(std::string_view key) const noexcept;
  std::size_t count(std::string_view key) const noexcept { return find(key) != end() ? 1 : 0; }
  bool contains(std::string_view key) const noexcept { return find(key) != end(); }
  /// std::out_of_range when absent.
  const std::string& at(std::string_view key) const;

  /// Sets `key` to `value`, replacing any value it had.
  void insert_or_assign(std::string_view key, std::string_view value);
  /// The value of `key`, added empty when absent (as std::map::operator[]).
  std::string& operator[](std::string_view key);
  /// Adds `key` unless present (as std::map::emplace).
  void emplace(std::string_view key, std::string_view value);
  /// Removes `key`; returns how many entries went (0 or 1).
  std::size_t erase(std::string_view key);

  friend bool operator==(const CompactStringMap& a, const CompactStringMap& b);
  friend bool operator==(const CompactStringMap& a, const StringMap& b);

 private:
  std::unique_ptr<std::vector<value_type>> items_;
};

enum class Kind : std::uint8_t {
  Namespace,
  Service,
  EndpointSlice,
  Ingress,
  IngressClass,
  Secret,
  Pod,
  Node,
};
inline constexpr std::size_t kKindCount = 8;
std::string_view kindName(Kind kind);  // "Service", ...
std::optional<Kind> kindFromName(std::string_view name);

enum class Protocol : std::uint8_t { TCP, UDP, SCTP };
std::string_view protocolName(Protocol p);

struct ObjectMeta {
  std::string name;
  std::string namespace_;  // "default" for namespaced kinds given without one; "" for cluster-scoped
  // Compact: "" in a manifests directory, and not used on any hot path.
  CompactString uid;
  CompactString resourceVersion;
  CompactString creationTimestamp;  // RFC 3339 as given
  bool deleting = false;          // metadata.deletionTimestamp is set
  CompactStringMap labels;
  CompactStringMap annotations;

  bool operator==(const ObjectMeta&) const = default;
};

/// targetPort and Ingress backend ports: a number or an IANA_SVC_NAME.
struct PortRef {
  std::int32_t number = 0;  // 0 when given by name
  std::string name;

  bool isName() const { return !name.empty(); }
  bool operator==(const PortRef&) const = default;
};

// ---------------------------------------------------------------------------------------------
// Service (v1)

enum class ServiceType : std::uint8_t { ClusterIP, NodePort, LoadBalancer, ExternalName };
enum class TrafficPolicy : std::uint8_t { Cluster, Local };
enum class IpFamilyPolicy : std::uint8_t { SingleStack, PreferDualStack, RequireDualStack };
enum class SessionAffinity : std::uint8_t { None, ClientIP };
enum class LoadBalancerIpMode : std::uint8_t { VIP, Proxy };

struct ServicePort {
  std::string name;
  Protocol protocol = Protocol::TCP;
  std::int32_t port = 0;
  PortRef targetPort;           // defaults to `port`
  std::int32_t nodePort = 0;    // 0: none allocated
  CompactString appProtocol;

  bool operator==(const ServicePort&) const = default;
};

struct LoadBalancerIngress {
  std::optional<IpAddr> ip;
  std::string hostname;
  LoadBalancerIpMode ipMode = LoadBalancerIpMode::VIP;  // the API's default when ip is set

  bool operator==(const LoadBalancerIngress&) const = default;
};

struct Service {
  ObjectMeta meta;
  ServiceType type = ServiceType::ClusterIP;
  bool headless = false;                 // clusterIP: None
  std::vector<IpAddr> clusterIPs;        // primary first; empty when headless or not allocated
  std::vector<IpFamily> ipFamilies;      // from the spec, else from clusterIPs
  IpFamilyPolicy ipFamilyPolicy = IpFamilyPolicy::SingleStack;
  std::vector<ServicePort> ports;
  bool hasSelector = false;              // selector given (possibly empty map)
  CompactStringMap selector;
  std::vector<IpAddr> externalIPs;
  CompactString externalName;            // type ExternalName only
  TrafficPolicy externalTrafficPolicy = TrafficPolicy::Cluster;
  TrafficPolicy internalTrafficPolicy = TrafficPolicy::Cluster;
  SessionAffinity sessionAffinity = SessionAffinity::None;
  std::int32_t sessionAffinityTimeoutSeconds = 10800;  // the API default for ClientIP
  std::vector<Cidr> loadBalancerSourceRanges;
  std::vector<LoadBalancerIngress> loadBalancerIngress;  // status.loadBalancer.ingress
  std::int32_t healthCheckNodePort = 0;
  bool publishNotReadyAddresses = false;

  bool operator==(const Service&) const = default;
};

// ---------------------------------------------------------------------------------------------
// EndpointSlice (discovery.k8s.io/v1)

enum class AddressType : std::uint8_t { IPv4, IPv6, FQDN };

/// With the API's reading of absent fields: ready absent = true; serving absent = ready;
/// terminating absent = false.
struct EndpointConditions {
  bool ready = true;
  bool serving = true;
  bool terminating = false;

  bool operator==(const EndpointConditions&) const = default;
};

/// An endpoint's addresses: the usual single one inline, several in one heap array. 18 bytes
/// with alignment 1, so that an Endpoint's conditions share its last word.
class AddressList {
 public:
  AddressList() noexcept : one_() {}
  AddressList(std::initializer_list<IpAddr> ips);
  AddressList(const AddressList& other);
  AddressList(AddressList&& other) noexcept;
  AddressList& operator=(const AddressList& other);
  AddressList& operator=(AddressList&& other) noexcept;
  ~AddressList() { clear(); }

  const IpAddr* data() const noexcept { return size_ > 1 ? many() : &one_; }
  const IpAddr* begin() const noexcept { return data(); }
  const IpAddr* end() const noexcept { return data() + size_; }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  const IpAddr& front() const noexcept { return *data(); }
  const IpAddr& operator[](std::size_t i) const noexcept { return data()[i]; }
  const IpAddr& at(std::size_t i) const;  // std::out_of_range past the end
  /// At most 255 addresses (the API allows 100).
  void push_back(const IpAddr& ip);
  void clear() noexcept;

  friend bool operator==(const AddressList& a, const AddressList& b) noexcept;
  friend bool operator==(const AddressList& a, const std::vector<IpAddr>& b) noexcept;

 private:
  IpAddr* many() const noexcept;
  void setMany(IpAddr* array) noexcept;

  union {
    IpAddr one_;                                // size_ <= 1
    unsigned char manyBytes_[sizeof(IpAddr*)];  // size_ > 1: an owning IpAddr[size_]
  };
  std::uint8_t size_ = 0;
};

/// What few endpoints carry, apart so that the usual endpoint stays small; the endpoints of a
/// decoded slice with equal details share one.
struct EndpointDetails {
  std::vector<std::string> fqdnAddresses;  // addressType FQDN (deprecated; kept, not used)
  std::string zone;
  std::vector<std::string> hintsForZones;
  std::vector<std::string> hintsForNodes;

  bool empty() const {
    return fqdnAddresses.empty() && zone.empty() && hintsForZones.empty() && hintsForNodes.empty();
  }
  bool operator==(const EndpointDetails&) const = default;
};

/// An immutable EndpointDetails shared by reference count, in 8 bytes (a std::shared_ptr takes
/// 16, and there is one per endpoint). Null when there are none. Copies on any thread.
class SharedDetails {
 public:
  SharedDetails() = default;
  explicit SharedDetails(EndpointDetails details);
  SharedDetails(const SharedDetails& other) noexcept;
  SharedDetails(SharedDetails&& other) noexcept : block_(std::exchange(other.block_, nullptr)) {}
  SharedDetails& operator=(SharedDetails other) noexcept {
    std::swap(block_, other.block_);
    return *this;
  }
  ~SharedDetails() { reset(); }

  void reset() noexcept;
  const EndpointDetails* get() const noexcept;
  const EndpointDetails& operator*() const noexcept { return *get(); }
  const EndpointDetails* operator->() const noexcept { return get(); }
  explicit operator bool() const noexcept { return block_ != nullptr; }
  /// The same allocation (or both null).
  friend bool operator==(const SharedDetails& a, const SharedDetails& b) noexcept {
    return a.block_ == b.block_;
  }
  friend bool operator==(const SharedDetails& a, std::nullptr_t) noexcept {
    return a.block_ == nullptr;
  }

 private:
  struct Block;
  Block* block_ = nullptr;
};

struct Endpoint {
  AddressList addresses;  // addressType IPv4/IPv6
  EndpointConditions conditions;
  CompactString hostname;
  CompactString nodeName;
  CompactString targetPodName;  // targetRef kind Pod: name, for DNS/debugging
  /// Null when every field of it is empty (see details()).
  SharedDetails extra;

  /// The details, empty ones when there are none.
  const EndpointDetails& details() const;
  /// Sets the details (null when `d` is empty).
  void setDetails(EndpointDetails d);

  /// Compares the details by value.
  bool operator==(const Endpoint& other) const;
};

struct EndpointPort {
  std::string name;                  // "" = unnamed
  Protocol protocol = Protocol::TCP;
  std::optional<std::int32_t> port;  // absent: "all ports" per the API; unusable for the proxy
  CompactString appProtocol;

  bool operator==(const EndpointPort&) const = default;
};

inline constexpr std::string_view kServiceNameLabel = "kubernetes.io/service-name";

struct EndpointSlice;
/// The port number, in `slice`, that Service port `portName`/`protocol` resolves to: the
/// EndpointSlice controller names each slice port after the Service port it carries. Null when
/// the slice does not carry it (or carries no usable number).
std::optional<std::uint16_t> targetPortIn(const EndpointSlice& slice, std::string_view portName,
                                          Protocol protocol);

struct EndpointSlice {
  ObjectMeta meta;
  AddressType addressType = AddressType::IPv4;
  std::vector<Endpoint> endpoints;
  std::vector<EndpointPort> ports;
  /// Label kubernetes.io/service-name ("" when absent); kept here only, not in meta.labels.
  std::string serviceName;

  bool operator==(const EndpointSlice&) const = default;
};

// ---------------------------------------------------------------------------------------------
// Ingress and IngressClass (networking.k8s.io/v1)

enum class PathType : std::uint8_t { Exact, Prefix, ImplementationSpecific };

struct IngressBackend {
  // Exactly one of service or resource is set (validated).
  std::string serviceName;
  PortRef servicePort;
  bool isResource = false;
  std::string resourceApiGroup, resourceKind, resourceName;

  bool operator==(const IngressBackend&) const = default;
};

struct IngressPath {
  std::string path;  // "" allowed only for ImplementationSpecific
  PathType pathType = PathType::Prefix;
  IngressBackend backend;

  bool operator==(const IngressPath&) const = default;
};

struct IngressRule {
  std::string host;  // "" = all hosts; may start with "*."
  std::vector<IngressPath> paths;

  bool operator==(const IngressRule&) const = default;
};

struct IngressTls {
  std::vector<std::string> hosts;
  std::string secretName;

  bool operator==(const IngressTls&) const = default;
};

inline constexpr std::string_view kIngressClassAnnotation = "kubernetes.io/ingress.class";
inline constexpr std::string_view kDefaultClassAnnotation =
    "ingressclass.kubernetes.io/is-default-class";

struct Ingress {
  ObjectMeta meta;
  std::optional<std::string> ingressClassName;  // spec.ingressClassName
  std::optional<IngressBackend> defaultBackend;
  std::vector<IngressRule> rules;
  std::vector<IngressTls> tls;
  std::vector<LoadBalancerIngress> loadBalancerIngress;  // status

  bool operator==(const Ingress&) const = default;
};

struct IngressClass {
  ObjectMeta meta;
  std::string controller;
  bool isDefault = false;  // annotation ingressclass.kubernetes.io/is-default-class: "true"

  bool operator==(const IngressClass&) const = default;
};

// ---------------------------------------------------------------------------------------------
// Secret, Pod, Node, Namespace (v1)

inline constexpr std::string_view kTlsSecretType = "kubernetes.io/tls";

struct Secret {
  ObjectMeta meta;
  std::string type = "Opaque";
  StringMap data;  // base64-decoded bytes; stringData merged over data as the API does

  bool operator==(const Secret&) const = default;
};

struct ContainerPort {
  std::string name;
  std::int32_t containerPort = 0;
  Protocol protocol = Protocol::TCP;

  bool operator==(const ContainerPort&) const = default;
};

struct Pod {
  ObjectMeta meta;
  std::string nodeName;
  std::string hostname;
  std::string subdomain;
  bool hostNetwork = false;
  std::vector<ContainerPort> ports;  // of all containers, in order
  std::string phase;                 // status.phase; "" when absent
  std::vector<IpAddr> podIPs;        // status.podIPs, else status.podIP
  std::optional<bool> ready;         // status condition Ready; absent when not reported

  bool operator==(const Pod&) const = default;
};

struct NodeAddress {
  std::string type;  // InternalIP, ExternalIP, Hostname, ...
  std::string address;

  bool operator==(const NodeAddress&) const = default;
};

inline constexpr std::string_view kZoneLabel = "topology.kubernetes.io/zone";

struct Node {
  ObjectMeta meta;
  std::vector<NodeAddress> addresses;

  bool operator==(const Node&) const = default;
};

struct Namespace {
  ObjectMeta meta;

  bool operator==(const Namespace&) const = default;
};

/// Any object the data plane uses. The alternative index equals static_cast<size_t>(Kind).
using Object = std::variant<Namespace, Service, EndpointSlice, Ingress, IngressClass, Secret, Pod,
                            Node>;

Kind kindOf(const Object& object);
const ObjectMeta& metaOf(const Object& object);

/// An immutable object allocated as its own kind (an EndpointSlice does not pay for the largest
/// alternative of Object), shared by a source and the store's snapshots. Same alternative order
/// as Object.
using SharedObject =
    std::variant<std::shared_ptr<const Namespace>, std::shared_ptr<const Service>,
                 std::shared_ptr<const EndpointSlice>, std::shared_ptr<const Ingress>,
                 std::shared_ptr<const IngressClass>, std::shared_ptr<const Secret>,
                 std::shared_ptr<const Pod>, std::shared_ptr<const Node>>;

/// Moves `object` into an allocation of its own kind.
SharedObject share(Object&& object);
Kind kindOf(const SharedObject& object);
const ObjectMeta& metaOf(const SharedObject& object);
/// Same kind and equal values (the pointers need not be the same).
bool sameValue(const SharedObject& a, const SharedObject& b);

/// True for kinds that live in a namespace.
constexpr bool isNamespaced(Kind kind) {
  return kind != Kind::Namespace && kind != Kind::Node && kind != Kind::IngressClass;
}

}  // namespace kdp::k8s
