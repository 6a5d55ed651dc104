#include "k8s/decode.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "k8s/detail/validate.h"
#include "k8s/detail/yaml_to_json.h"

using namespace kdp::k8s;
using kdp::Cidr;
using kdp::IpAddr;
using kdp::IpFamily;

namespace {

std::string errorsText(const DecodeResult& r) {
  std::string s;
  for (const auto& e : r.errors) {
    s += e.str() + "\n";
  }
  return s;
}

IpAddr ip(const char* text) {
  auto a = IpAddr::parse(text);
  REQUIRE(a);
  return *a;
}

template <class T>
std::vector<T> all(const DecodeResult& r) {
  std::vector<T> out;
  for (const auto& o : r.objects) {
    if (const T* t = std::get_if<T>(&o)) {
      out.push_back(*t);
    }
  }
  return out;
}

// Decodes YAML that must hold exactly one valid object of kind T.
template <class T>
T decodeOne(const std::string& yaml) {
  DecodeResult r = decodeYaml(yaml, "test.yaml");
  INFO(errorsText(r));
  REQUIRE(r.errors.empty());
  REQUIRE_FALSE(r.syntaxError);
  REQUIRE(r.objects.size() == 1);
  REQUIRE(std::holds_alternative<T>(r.objects[0]));
  // The same text as JSON takes the same path and must give the same object.
  auto converted = kdp::k8s::detail::yamlToJson(yaml);
  REQUIRE(converted.documents.size() == 1);
  DecodeResult j = decodeJson(converted.documents[0], "test.json");
  REQUIRE(j.objects.size() == 1);
  CHECK(j.objects[0] == r.objects[0]);
  return std::get<T>(r.objects[0]);
}

// Decodes YAML whose single object must be refused with an error at `field` whose message
// contains `message`.
void expectError(const std::string& yaml, const std::string& field, const std::string& message) {
  DecodeResult r = decodeYaml(yaml, "test.yaml");
  INFO(yaml);
  INFO(errorsText(r));
  CHECK_FALSE(r.syntaxError);
  CHECK(r.objects.empty());
  bool found = false;
  for (const auto& e : r.errors) {
    found = found || (e.field == field && e.message.find(message) != std::string::npos);
  }
  CHECK(found);
}

std::string service(const std::string& spec, const std::string& extra = "") {
  return "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: " + spec + "\n" + extra;
}

std::string slice(const std::string& body) {
  return "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: web-1}\n" +
         body + "\n";
}

std::string ingress(const std::string& spec) {
  return "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: web}\nspec: " + spec +
         "\n";
}

std::string ingressPath(const std::string& path) {
  return ingress("{rules: [{http: {paths: [" + path + "]}}]}");
}

// ---------------------------------------------------------------------------------------------
// Examples from the Kubernetes documentation (concepts/services-networking), one per shape.

constexpr const char* kMultiPortService = R"(
apiVersion: v1
kind: Service
metadata:
  name: my-service
spec:
  selector:
    app.kubernetes.io/name: MyApp
  ports:
    - name: http
      protocol: TCP
      port: 80
      targetPort: 9376
    - name: https
      protocol: TCP
      port: 443
      targetPort: 9377
)";

constexpr const char* kNodePortService = R"(
apiVersion: v1
kind: Service
metadata:
  name: my-service
spec:
  type: NodePort
  selector:
    app.kubernetes.io/name: MyApp
  ports:
    - port: 80
      # By default and for convenience, the `targetPort` is set to
      # the same value as the `port` field.
      targetPort: 80
      # Optional field
      # By default and for convenience, the Kubernetes control plane
      # will allocate a port from a range (default: 30000-32767)
      nodePort: 30007
)";

constexpr const char* kLoadBalancerService = R"(
apiVersion: v1
kind: Service
metadata:
  name: my-service
spec:
  selector:
    app.kubernetes.io/name: MyApp
  ports:
    - protocol: TCP
      port: 80
      targetPort: 9376
  clusterIP: 10.0.171.239
  type: LoadBalancer
status:
  loadBalancer:
    ingress:
    - ip: 192.0.2.127
)";

constexpr const char* kExternalNameService = R"(
apiVersion: v1
kind: Service
metadata:
  name: my-service
  namespace: prod
spec:
  type: ExternalName
  externalName: my.database.example.com
)";

constexpr const char* kHeadlessService = R"(
apiVersion: v1
kind: Service
metadata:
  name: nginx
  labels:
    app: nginx
spec:
  ports:
  - port: 80
    name: web
  clusterIP: None
  selector:
    app: nginx
)";

constexpr const char* kDualStackService = R"(
apiVersion: v1
kind: Service
metadata:
  name: my-service
  labels:
    app.kubernetes.io/name: MyApp
spec:
  ipFamilyPolicy: PreferDualStack
  ipFamilies:
  - IPv6
  - IPv4
  clusterIPs:
  - fd00:10:96::1234
  - 10.96.0.12
  selector:
    app.kubernetes.io/name: MyApp
  ports:
    - protocol: TCP
      port: 80
)";

constexpr const char* kEndpointSlice = R"(
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: example-abc
  labels:
    kubernetes.io/service-name: example
addressType: IPv4
ports:
  - name: http
    protocol: TCP
    port: 80
endpoints:
  - addresses:
      - "10.1.2.3"
    conditions:
      ready: true
    hostname: pod-1
    nodeName: node-1
    zone: us-west2-a
)";

constexpr const char* kSimpleFanout = R"(
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: simple-fanout-example
spec:
  rules:
  - host: foo.bar.com
    http:
      paths:
      - path: /foo
        pathType: Prefix
        backend:
          service:
            name: service1
            port:
              number: 4200
      - path: /bar
        pathType: Prefix
        backend:
          service:
            name: service2
            port:
              number: 8080
)";

constexpr const char* kNameVirtualHost = R"(
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: name-virtual-host-ingress
spec:
  rules:
  - host: foo.bar.com
    http:
      paths:
      - pathType: Prefix
        path: "/"
        backend:
          service:
            name: service1
            port:
              number: 80
  - host: bar.foo.com
    http:
      paths:
      - pathType: Prefix
        path: "/"
        backend:
          service:
            name: service2
            port:
              number: 80
  - http:
      paths:
      - pathType: Prefix
        path: "/"
        backend:
          service:
            name: service3
            port:
              name: http
)";

constexpr const char* kTlsIngress = R"(
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: tls-example-ingress
spec:
  tls:
  - hosts:
      - https-example.foo.com
    secretName: testsecret-tls
  rules:
  - host: https-example.foo.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: service1
            port:
              number: 80
)";

constexpr const char* kDefaultBackendIngress = R"(
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: test-ingress
  annotations:
    kubernetes.io/ingress.class: nginx
spec:
  defaultBackend:
    service:
      name: test
      port:
        number: 80
status:
  loadBalancer:
    ingress:
    - ip: 203.0.113.7
    - hostname: lb.example.com
)";

constexpr const char* kResourceBackendIngress = R"(
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: ingress-resource-backend
spec:
  defaultBackend:
    resource:
      apiGroup: k8s.example.com
      kind: StorageBucket
      name: static-assets
  rules:
    - http:
        paths:
          - path: /icons
            pathType: ImplementationSpecific
            backend:
              resource:
                apiGroup: k8s.example.com
                kind: StorageBucket
                name: icon-assets
)";

constexpr const char* kIngressClass = R"(
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  labels:
    app.kubernetes.io/component: controller
  name: nginx-example
  annotations:
    ingressclass.kubernetes.io/is-default-class: "true"
spec:
  controller: k8s.io/ingress-nginx
)";

// "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n" and a key, base64-encoded.
constexpr const char* kTlsSecret = R"(
apiVersion: v1
kind: Secret
metadata:
  name: testsecret-tls
  namespace: default
data:
  tls.crt: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=
  tls.key: LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCk1JSUUKLS0tLS1FTkQgUFJJVkFURSBLRVktLS0tLQo=
type: kubernetes.io/tls
)";

constexpr const char* kPod = R"(
apiVersion: v1
kind: Pod
metadata:
  name: nginx
  namespace: web
  labels:
    app: nginx
spec:
  hostname: nginx-0
  subdomain: nginx
  nodeName: node-1
  containers:
  - name: nginx
    image: nginx:1.14.2
    ports:
    - containerPort: 80
      name: http
    - containerPort: 53
      protocol: UDP
  - name: sidecar
    image: busybox
    ports:
    - containerPort: 9090
      name: metrics
status:
  phase: Running
  podIP: 10.244.1.7
  podIPs:
  - ip: 10.244.1.7
  - ip: fd00:244::7
  conditions:
  - type: Initialized
    status: "True"
  - type: Ready
    status: "True"
)";

constexpr const char* kNodeJson = R"({
  "apiVersion": "v1",
  "kind": "Node",
  "metadata": {
    "name": "node-1",
    "namespace": "ignored",
    "uid": "6b5c2f6e-0f0a-4c5b-9a0e-3f1c2d4e5f60",
    "resourceVersion": "123456",
    "creationTimestamp": "2024-01-02T03:04:05Z",
    "labels": {"kubernetes.io/hostname": "node-1", "topology.kubernetes.io/zone": "zone-a"}
  },
  "spec": {"podCIDR": "10.244.1.0/24"},
  "status": {
    "addresses": [
      {"type": "InternalIP", "address": "192.168.1.10"},
      {"type": "InternalIP", "address": "fd00::10"},
      {"type": "Hostname", "address": "node-1"}
    ]
  }
})";

}  // namespace

// =============================================================================================
// Documentation examples: decoded with the API server's defaults.

TEST_CASE("decode: Service with multiple ports", "[decode]") {
  auto s = decodeOne<Service>(kMultiPortService);
  CHECK(s.meta.name == "my-service");
  CHECK(s.meta.namespace_ == "default");
  CHECK(s.type == ServiceType::ClusterIP);
  CHECK(s.hasSelector);
  CHECK(s.selector == StringMap{{"app.kubernetes.io/name", "MyApp"}});
  REQUIRE(s.ports.size() == 2);
  CHECK(s.ports[0] == ServicePort{"http", Protocol::TCP, 80, PortRef{9376, ""}, 0, ""});
  CHECK(s.ports[1] == ServicePort{"https", Protocol::TCP, 443, PortRef{9377, ""}, 0, ""});
  CHECK(s.clusterIPs.empty());
  CHECK(s.ipFamilies.empty());
  CHECK_FALSE(s.headless);
  CHECK(s.ipFamilyPolicy == IpFamilyPolicy::SingleStack);
  CHECK(s.externalTrafficPolicy == TrafficPolicy::Cluster);
  CHECK(s.internalTrafficPolicy == TrafficPolicy::Cluster);
  CHECK(s.sessionAffinity == SessionAffinity::None);
  CHECK(s.sessionAffinityTimeoutSeconds == 10800);
}

TEST_CASE("decode: NodePort Service", "[decode]") {
  auto s = decodeOne<Service>(kNodePortService);
  CHECK(s.type == ServiceType::NodePort);
  REQUIRE(s.ports.size() == 1);
  CHECK(s.ports[0].port == 80);
  CHECK(s.ports[0].targetPort == PortRef{80, ""});
  CHECK(s.ports[0].nodePort == 30007);
  CHECK(s.ports[0].name.empty());
}

TEST_CASE("decode: LoadBalancer Service with status", "[decode]") {
  auto s = decodeOne<Service>(kLoadBalancerService);
  CHECK(s.type == ServiceType::LoadBalancer);
  CHECK(s.clusterIPs == std::vector<IpAddr>{ip("10.0.171.239")});
  CHECK(s.ipFamilies == std::vector<IpFamily>{IpFamily::V4});
  REQUIRE(s.loadBalancerIngress.size() == 1);
  CHECK(s.loadBalancerIngress[0].ip == ip("192.0.2.127"));
  CHECK(s.loadBalancerIngress[0].ipMode == LoadBalancerIpMode::VIP);
}

TEST_CASE("decode: ExternalName Service", "[decode]") {
  auto s = decodeOne<Service>(kExternalNameService);
  CHECK(s.type == ServiceType::ExternalName);
  CHECK(s.meta.namespace_ == "prod");
  CHECK(s.externalName == "my.database.example.com");
  CHECK(s.ports.empty());
  CHECK(s.clusterIPs.empty());
  CHECK_FALSE(s.hasSelector);
  // A trailing dot is allowed.
  auto dotted = decodeOne<Service>(service("{type: ExternalName, externalName: db.example.com.}"));
  CHECK(dotted.externalName == "db.example.com.");
}

TEST_CASE("decode: headless Service", "[decode]") {
  auto s = decodeOne<Service>(kHeadlessService);
  CHECK(s.headless);
  CHECK(s.clusterIPs.empty());
  CHECK(s.meta.labels == StringMap{{"app", "nginx"}});
  // Headless without ports is allowed.
  auto bare = decodeOne<Service>(service("{clusterIP: None, selector: {app: x}}"));
  CHECK(bare.headless);
  auto viaList = decodeOne<Service>(service("{clusterIPs: [None]}"));
  CHECK(viaList.headless);
}

TEST_CASE("decode: dual-stack Service", "[decode]") {
  auto s = decodeOne<Service>(kDualStackService);
  CHECK(s.ipFamilyPolicy == IpFamilyPolicy::PreferDualStack);
  CHECK(s.ipFamilies == std::vector<IpFamily>{IpFamily::V6, IpFamily::V4});
  CHECK(s.clusterIPs == std::vector<IpAddr>{ip("fd00:10:96::1234"), ip("10.96.0.12")});

  // Without a policy, two IPs read as RequireDualStack (the API server's allocator default).
  auto implicit = decodeOne<Service>(
      service("{clusterIP: 10.96.0.5, clusterIPs: [10.96.0.5, 'fd00::5'], ports: [{port: 53, "
              "protocol: UDP}]}"));
  CHECK(implicit.ipFamilyPolicy == IpFamilyPolicy::RequireDualStack);
  CHECK(implicit.ipFamilies == std::vector<IpFamily>{IpFamily::V4, IpFamily::V6});
  CHECK(implicit.ports[0].protocol == Protocol::UDP);

  // ipFamilies partly given: the rest comes from clusterIPs.
  auto partial = decodeOne<Service>(service(
      "{clusterIPs: ['fd00::5', 10.0.0.5], ipFamilies: [IPv6], ipFamilyPolicy: "
      "RequireDualStack, ports: [{port: 80}]}"));
  CHECK(partial.ipFamilies == std::vector<IpFamily>{IpFamily::V6, IpFamily::V4});
}

TEST_CASE("decode: Service defaults and optional fields", "[decode]") {
  auto s = decodeOne<Service>(service(
      "{type: LoadBalancer, clusterIP: 10.0.0.10, ports: [{name: dns, port: 53, protocol: UDP, "
      "targetPort: dns-udp, appProtocol: kubernetes.io/h2c}, {name: sctp, port: 9, protocol: "
      "SCTP, targetPort: 0}], sessionAffinity: ClientIP, externalTrafficPolicy: Local, "
      "internalTrafficPolicy: Local, healthCheckNodePort: 31000, loadBalancerSourceRanges: "
      "['10.0.0.0/8', ' 192.168.0.0/16 '], externalIPs: [203.0.113.9], "
      "publishNotReadyAddresses: true, selector: {}}",
      "status: {loadBalancer: {ingress: [{ip: 198.51.100.1, ipMode: Proxy}, {hostname: "
      "a.example.com}]}}"));
  CHECK(s.ports[0].targetPort == PortRef{0, "dns-udp"});
  CHECK(s.ports[0].appProtocol == "kubernetes.io/h2c");
  CHECK(s.ports[1].protocol == Protocol::SCTP);
  CHECK(s.ports[1].targetPort == PortRef{9, ""});
  CHECK(s.sessionAffinity == SessionAffinity::ClientIP);
  CHECK(s.sessionAffinityTimeoutSeconds == 10800);
  CHECK(s.externalTrafficPolicy == TrafficPolicy::Local);
  CHECK(s.internalTrafficPolicy == TrafficPolicy::Local);
  CHECK(s.healthCheckNodePort == 31000);
  CHECK(s.loadBalancerSourceRanges ==
        std::vector<Cidr>{*Cidr::parse("10.0.0.0/8"), *Cidr::parse("192.168.0.0/16")});
  CHECK(s.externalIPs == std::vector<IpAddr>{ip("203.0.113.9")});
  CHECK(s.publishNotReadyAddresses);
  CHECK(s.hasSelector);
  CHECK(s.selector.empty());
  REQUIRE(s.loadBalancerIngress.size() == 2);
  CHECK(s.loadBalancerIngress[0].ipMode == LoadBalancerIpMode::Proxy);
  CHECK_FALSE(s.loadBalancerIngress[1].ip);
  CHECK(s.loadBalancerIngress[1].hostname == "a.example.com");

  auto timed = decodeOne<Service>(service(
      "{ports: [{port: 80}], sessionAffinity: ClientIP, sessionAffinityConfig: {clientIP: "
      "{timeoutSeconds: 60}}}"));
  CHECK(timed.sessionAffinityTimeoutSeconds == 60);

  // ClusterIP with externalIPs is externally accessible: externalTrafficPolicy is allowed.
  auto ext = decodeOne<Service>(service(
      "{ports: [{port: 80}], externalIPs: [203.0.113.1], externalTrafficPolicy: Local}"));
  CHECK(ext.externalTrafficPolicy == TrafficPolicy::Local);

  // null is the same as absent (Go's encoding/json).
  auto nulls = decodeOne<Service>(service(
      "{type: null, clusterIP: null, ports: [{port: 80, name: null, targetPort: null}], "
      "selector: null}"));
  CHECK(nulls.type == ServiceType::ClusterIP);
  CHECK_FALSE(nulls.hasSelector);
  CHECK(nulls.ports[0].targetPort.number == 80);
}

TEST_CASE("decode: metadata fields", "[decode]") {
  auto s = decodeOne<Service>(R"(
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
  uid: 0c9e8a5e-1111-2222-3333-444455556666
  resourceVersion: "98765"
  creationTimestamp: "2024-05-06T07:08:09Z"
  deletionTimestamp: "2024-05-06T08:00:00Z"
  generateName: ignored-
  labels: {app: web, "example.com/tier": front, empty: ""}
  annotations:
    note: "free text, any length and characters: ✓"
    Example.COM/Mixed-Case: "ok"
spec:
  ports: [{port: 80}]
)");
  CHECK(s.meta.namespace_ == "shop");
  CHECK(s.meta.uid == "0c9e8a5e-1111-2222-3333-444455556666");
  CHECK(s.meta.resourceVersion == "98765");
  CHECK(s.meta.creationTimestamp == "2024-05-06T07:08:09Z");
  CHECK(s.meta.deleting);
  CHECK(s.meta.labels ==
        StringMap{{"app", "web"}, {"example.com/tier", "front"}, {"empty", ""}});
  CHECK(s.meta.annotations.at("note") == "free text, any length and characters: ✓");
  CHECK(s.meta.annotations.count("Example.COM/Mixed-Case") == 1);
}

TEST_CASE("decode: EndpointSlice from the docs", "[decode]") {
  auto es = decodeOne<EndpointSlice>(kEndpointSlice);
  CHECK(es.meta.name == "example-abc");
  CHECK(es.serviceName == "example");
  CHECK(es.meta.labels.count(kServiceNameLabel) == 0);  // kept once, as serviceName
  CHECK(es.addressType == AddressType::IPv4);
  REQUIRE(es.ports.size() == 1);
  CHECK(es.ports[0] == EndpointPort{"http", Protocol::TCP, 80, ""});
  REQUIRE(es.endpoints.size() == 1);
  const Endpoint& ep = es.endpoints[0];
  CHECK(ep.addresses == std::vector<IpAddr>{ip("10.1.2.3")});
  CHECK(ep.conditions == EndpointConditions{true, true, false});
  CHECK(ep.hostname == "pod-1");
  CHECK(ep.nodeName == "node-1");
  CHECK(ep.details().zone == "us-west2-a");
}

TEST_CASE("decode: EndpointSlice conditions, hints, targetRef and ports", "[decode]") {
  auto es = decodeOne<EndpointSlice>(slice(R"(addressType: IPv6
ports: [{}, {name: dns, protocol: UDP, port: 53, appProtocol: dns}]
endpoints:
- addresses: ["fd00::1", "fd00::2"]
  targetRef: {kind: Pod, name: web-7d9f-abcde, namespace: default}
  hints: {forZones: [{name: zone-a}], forNodes: [{name: node-1}]}
- addresses: ["fd00::3"]
  conditions: {ready: false}
- addresses: ["fd00::4"]
  conditions: {ready: false, serving: true, terminating: true}
- addresses: ["fd00::5"]
  conditions: {serving: false}
  targetRef: {kind: Node, name: n1}
)"));
  CHECK(es.addressType == AddressType::IPv6);
  REQUIRE(es.ports.size() == 2);
  CHECK(es.ports[0] == EndpointPort{"", Protocol::TCP, std::nullopt, ""});
  CHECK(es.ports[1] == EndpointPort{"dns", Protocol::UDP, 53, "dns"});
  REQUIRE(es.endpoints.size() == 4);
  CHECK(es.endpoints[0].addresses.size() == 2);
  CHECK(es.endpoints[0].targetPodName == "web-7d9f-abcde");
  CHECK(es.endpoints[0].details().hintsForZones == std::vector<std::string>{"zone-a"});
  CHECK(es.endpoints[0].details().hintsForNodes == std::vector<std::string>{"node-1"});
  CHECK(es.endpoints[0].conditions == EndpointConditions{true, true, false});
  CHECK(es.endpoints[1].conditions == EndpointConditions{false, false, false});
  CHECK(es.endpoints[2].conditions == EndpointConditions{false, true, true});
  CHECK(es.endpoints[3].conditions == EndpointConditions{true, false, false});
  CHECK(es.endpoints[3].targetPodName.empty());
  CHECK(es.serviceName.empty());

  auto fqdn = decodeOne<EndpointSlice>(
      slice("addressType: FQDN\nendpoints: [{addresses: [db.example.com]}]"));
  CHECK(fqdn.endpoints[0].details().fqdnAddresses == std::vector<std::string>{"db.example.com"});
  CHECK(fqdn.endpoints[0].addresses.empty());

  auto empty = decodeOne<EndpointSlice>(slice("addressType: IPv4\nendpoints: []\nports: null"));
  CHECK(empty.endpoints.empty());
}

TEST_CASE("decode: EndpointSlice v1beta1 topology", "[decode]") {
  auto es = decodeOne<EndpointSlice>(R"(
apiVersion: discovery.k8s.io/v1beta1
kind: EndpointSlice
metadata:
  name: example-abc
  namespace: shop
  labels: {kubernetes.io/service-name: example}
addressType: IPv4
endpoints:
- addresses: [10.0.0.1]
  conditions: {ready: true}
  topology:
    kubernetes.io/hostname: node-7
    topology.kubernetes.io/zone: zone-b
    topology.kubernetes.io/region: r1
- addresses: [10.0.0.2]
  nodeName: node-8
  topology: {kubernetes.io/hostname: stale-name}
)");
  CHECK(es.meta.namespace_ == "shop");
  CHECK(es.endpoints[0].nodeName == "node-7");
  CHECK(es.endpoints[0].details().zone == "zone-b");
  CHECK(es.endpoints[1].nodeName == "node-8");
}

TEST_CASE("decode: Ingress simple fanout", "[decode]") {
  auto ing = decodeOne<Ingress>(kSimpleFanout);
  CHECK_FALSE(ing.ingressClassName);
  CHECK_FALSE(ing.defaultBackend);
  REQUIRE(ing.rules.size() == 1);
  CHECK(ing.rules[0].host == "foo.bar.com");
  REQUIRE(ing.rules[0].paths.size() == 2);
  const IngressPath& p0 = ing.rules[0].paths[0];
  CHECK(p0.path == "/foo");
  CHECK(p0.pathType == PathType::Prefix);
  CHECK(p0.backend.serviceName == "service1");
  CHECK(p0.backend.servicePort == PortRef{4200, ""});
  CHECK_FALSE(p0.backend.isResource);
  CHECK(ing.rules[0].paths[1].backend.servicePort.number == 8080);
}

TEST_CASE("decode: Ingress name-based virtual hosting", "[decode]") {
  auto ing = decodeOne<Ingress>(kNameVirtualHost);
  REQUIRE(ing.rules.size() == 3);
  CHECK(ing.rules[0].host == "foo.bar.com");
  CHECK(ing.rules[1].host == "bar.foo.com");
  CHECK(ing.rules[2].host.empty());
  CHECK(ing.rules[2].paths[0].backend.servicePort == PortRef{0, "http"});
}

TEST_CASE("decode: Ingress with TLS and its Secret", "[decode]") {
  auto ing = decodeOne<Ingress>(kTlsIngress);
  REQUIRE(ing.tls.size() == 1);
  CHECK(ing.tls[0].hosts == std::vector<std::string>{"https-example.foo.com"});
  CHECK(ing.tls[0].secretName == "testsecret-tls");

  auto secret = decodeOne<Secret>(kTlsSecret);
  CHECK(secret.type == kTlsSecretType);
  CHECK(secret.data.at("tls.crt") ==
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
  CHECK(secret.data.at("tls.key") ==
        "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n");
}

TEST_CASE("decode: Ingress default backend, resource backend and status", "[decode]") {
  auto ing = decodeOne<Ingress>(kDefaultBackendIngress);
  REQUIRE(ing.defaultBackend);
  CHECK(ing.defaultBackend->serviceName == "test");
  CHECK(ing.defaultBackend->servicePort.number == 80);
  CHECK(ing.rules.empty());
  CHECK(ing.meta.annotations.at(std::string(kIngressClassAnnotation)) == "nginx");
  REQUIRE(ing.loadBalancerIngress.size() == 2);
  CHECK(ing.loadBalancerIngress[0].ip == ip("203.0.113.7"));
  CHECK(ing.loadBalancerIngress[1].hostname == "lb.example.com");

  auto res = decodeOne<Ingress>(kResourceBackendIngress);
  REQUIRE(res.defaultBackend);
  CHECK(res.defaultBackend->isResource);
  CHECK(res.defaultBackend->resourceApiGroup == "k8s.example.com");
  CHECK(res.defaultBackend->resourceKind == "StorageBucket");
  CHECK(res.defaultBackend->resourceName == "static-assets");
  const IngressPath& p = res.rules[0].paths[0];
  CHECK(p.pathType == PathType::ImplementationSpecific);
  CHECK(p.backend.isResource);
  CHECK(p.backend.resourceName == "icon-assets");

  auto classed = decodeOne<Ingress>(ingress(
      "{ingressClassName: nginx, rules: [{host: '*.example.com', http: {paths: [{path: /x, "
      "pathType: Exact, backend: {service: {name: s, port: {number: 80}}}}, {pathType: "
      "ImplementationSpecific, backend: {service: {name: s, port: {number: 80}}}}]}}]}"));
  CHECK(classed.ingressClassName == "nginx");
  CHECK(classed.rules[0].host == "*.example.com");
  CHECK(classed.rules[0].paths[0].pathType == PathType::Exact);
  CHECK(classed.rules[0].paths[1].path.empty());
}

TEST_CASE("decode: IngressClass", "[decode]") {
  auto ic = decodeOne<IngressClass>(kIngressClass);
  CHECK(ic.meta.name == "nginx-example");
  CHECK(ic.meta.namespace_.empty());
  CHECK(ic.controller == "k8s.io/ingress-nginx");
  CHECK(ic.isDefault);
  auto other = decodeOne<IngressClass>(
      "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: b, annotations: "
      "{ingressclass.kubernetes.io/is-default-class: 'True'}}\nspec: {controller: "
      "example.com/b}\n");
  CHECK_FALSE(other.isDefault);
}

TEST_CASE("decode: Secret data, stringData and type", "[decode]") {
  auto s = decodeOne<Secret>(R"(
apiVersion: v1
kind: Secret
metadata: {name: creds}
data:
  user: YWRtaW4=
  pass: cGFzc3dvcmQ=
  empty: ""
  wrapped: |
    YWJj
    ZGVm
stringData:
  pass: plain-text
  extra: "x"
)");
  CHECK(s.type == "Opaque");
  CHECK(s.data == StringMap{{"user", "admin"},
                            {"pass", "plain-text"},
                            {"empty", ""},
                            {"wrapped", "abcdef"},
                            {"extra", "x"}});
  auto binary = decodeOne<Secret>(
      "apiVersion: v1\nkind: Secret\nmetadata: {name: b}\ntype: example.com/custom\ndata: {bin: "
      "AP8A/w==}\n");
  CHECK(binary.type == "example.com/custom");
  CHECK(binary.data.at("bin") == std::string("\x00\xff\x00\xff", 4));
}

TEST_CASE("decode: Pod", "[decode]") {
  auto p = decodeOne<Pod>(kPod);
  CHECK(p.meta.namespace_ == "web");
  CHECK(p.nodeName == "node-1");
  CHECK(p.hostname == "nginx-0");
  CHECK(p.subdomain == "nginx");
  CHECK_FALSE(p.hostNetwork);
  REQUIRE(p.ports.size() == 3);
  CHECK(p.ports[0] == ContainerPort{"http", 80, Protocol::TCP});
  CHECK(p.ports[1] == ContainerPort{"", 53, Protocol::UDP});
  CHECK(p.ports[2] == ContainerPort{"metrics", 9090, Protocol::TCP});
  CHECK(p.phase == "Running");
  CHECK(p.podIPs == std::vector<IpAddr>{ip("10.244.1.7"), ip("fd00:244::7")});
  CHECK(p.ready == true);

  auto minimal = decodeOne<Pod>(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {hostNetwork: true, containers: "
      "[{name: c, image: i}]}\nstatus: {podIP: 10.0.0.9, conditions: [{type: Ready, status: "
      "'False'}]}\n");
  CHECK(minimal.hostNetwork);
  CHECK(minimal.podIPs == std::vector<IpAddr>{ip("10.0.0.9")});
  CHECK(minimal.ready == false);
  auto pending = decodeOne<Pod>(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: "
      "i}]}\nstatus: {phase: Pending, podIP: ''}\n");
  CHECK_FALSE(pending.ready);
  CHECK(pending.podIPs.empty());
}

TEST_CASE("decode: Node and Namespace", "[decode]") {
  DecodeResult r = decodeJson(kNodeJson, "api");
  INFO(errorsText(r));
  REQUIRE(r.objects.size() == 1);
  const Node& n = std::get<Node>(r.objects[0]);
  CHECK(n.meta.name == "node-1");
  CHECK(n.meta.namespace_.empty());  // cluster-scoped: the namespace is ignored
  CHECK(n.meta.labels.at(std::string(kZoneLabel)) == "zone-a");
  REQUIRE(n.addresses.size() == 3);
  CHECK(n.addresses[0].type == "InternalIP");
  CHECK(n.addresses[0].address == "192.168.1.10");
  CHECK(n.addresses[2].type == "Hostname");

  auto ns = decodeOne<Namespace>("apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n");
  CHECK(ns.meta.name == "shop");
  CHECK(ns.meta.namespace_.empty());
}

// =============================================================================================
// Streams, Lists and kinds

TEST_CASE("decode: a multi-document YAML stream with unused kinds", "[decode]") {
  std::string yaml = std::string(kMultiPortService) + "---\n" + R"(
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec: {replicas: 3}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {a: b}
---
# an empty document
---
)" + kEndpointSlice + "---\n" + kIngressClass;
  DecodeResult r = decodeYaml(yaml, "all.yaml");
  INFO(errorsText(r));
  CHECK(r.errors.empty());
  CHECK(r.skipped == 2);
  REQUIRE(r.objects.size() == 3);
  CHECK(kindOf(r.objects[0]) == Kind::Service);
  CHECK(kindOf(r.objects[1]) == Kind::EndpointSlice);
  CHECK(kindOf(r.objects[2]) == Kind::IngressClass);
}

TEST_CASE("decode: kind List expands into its items", "[decode]") {
  DecodeResult r = decodeYaml(R"(
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {name: a}
  spec: {ports: [{port: 80}]}
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: d}
- apiVersion: v1
  kind: Namespace
  metadata: {name: shop}
)",
                              "list.yaml");
  INFO(errorsText(r));
  CHECK(r.errors.empty());
  CHECK(r.skipped == 1);
  REQUIRE(r.objects.size() == 2);
  CHECK(kindOf(r.objects[1]) == Kind::Namespace);

  // Items of a kind: List must say their apiVersion, and Lists do not nest.
  r = decodeYaml("apiVersion: v1\nkind: List\nitems:\n- kind: Service\n  metadata: {name: a}\n"
                 "- kind: List\n  items: []\n",
                 "list.yaml");
  REQUIRE(r.errors.size() == 2);
  CHECK(r.errors[0].field == "items[0].apiVersion");
  CHECK(r.errors[0].document == 0);
  CHECK(r.errors[1].message.find("List inside a List") != std::string::npos);
  CHECK(r.objects.empty());

  // An empty or null List is fine.
  CHECK(decodeYaml("apiVersion: v1\nkind: List\nitems: []\n", "x").errors.empty());
  CHECK(decodeYaml("apiVersion: v1\nkind: List\nitems:\n", "x").errors.empty());
}

TEST_CASE("decode: API List responses without item kinds", "[decode]") {
  const char* json = R"({"kind":"ServiceList","apiVersion":"v1","metadata":{"resourceVersion":"5"},
    "items":[{"metadata":{"name":"a","namespace":"x"},"spec":{"ports":[{"port":80}]}},
             {"metadata":{"name":"b","namespace":"x"},"spec":{"ports":[{"port":0}]}},
             {"metadata":{"name":"c","namespace":"x"},"spec":{"ports":[{"port":81}]}}]})";
  DecodeResult r = decodeJson(json, "api");
  REQUIRE(r.objects.size() == 2);
  CHECK(metaOf(r.objects[0]).name == "a");
  CHECK(metaOf(r.objects[1]).name == "c");
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].document == 1);  // JSON Lists: the item index
  CHECK(r.errors[0].kind == "Service");
  CHECK(r.errors[0].str() ==
        "api[doc 1] Service x/b: spec.ports[0].port: invalid value 0: must be between 1 and "
        "65535, inclusive");

  // itemKind names items of any list, and a single object without kind.
  const char* slices = R"({"kind":"List","items":[{"metadata":{"name":"s"},"addressType":"IPv4",
    "endpoints":[{"addresses":["10.0.0.1"]}]}]})";
  r = decodeJson(slices, "api", Kind::EndpointSlice);
  INFO(errorsText(r));
  REQUIRE(r.objects.size() == 1);
  CHECK(kindOf(r.objects[0]) == Kind::EndpointSlice);
  r = decodeJson(R"({"metadata":{"name":"n1"}})", "api", Kind::Node);
  REQUIRE(r.objects.size() == 1);
  CHECK(kindOf(r.objects[0]) == Kind::Node);

  // Lists of kinds we do not use are skipped item by item.
  r = decodeJson(R"({"kind":"DeploymentList","apiVersion":"apps/v1","items":[{},{}]})", "api");
  CHECK(r.errors.empty());
  CHECK(r.skipped == 2);
}

TEST_CASE("decode: a List read item by item equals its items read one by one", "[decode]") {
  std::vector<std::string> itemTexts = {
      R"({"metadata":{"name":"a","namespace":"x"},"spec":{"ports":[{"port":80}]}})",
      R"({"metadata":{"name":"b","namespace":"x","annotations":{"q":"\"]}"}},"spec":{"ports":[{"port":81,"name":"h"}]}})",
      R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"c"},"spec":{"clusterIP":"None"}})",
      R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"}})",
      R"({"metadata":{"name":"e"},"spec":{"ports":[{"port":0}]}})",
  };
  std::string list = R"({"kind":"ServiceList","apiVersion":"v1","metadata":{"resourceVersion":"7"},"items":[)";
  for (std::size_t i = 0; i < itemTexts.size(); ++i) {
    list += (i ? ",\n  " : "") + itemTexts[i];
  }
  list += "]}";
  DecodeResult all = decodeJson(list, "api");
  DecodeResult expected;
  for (std::size_t i = 0; i < itemTexts.size(); ++i) {
    DecodeResult one = decodeJson(itemTexts[i], "api", Kind::Service);
    for (auto& o : one.objects) {
      expected.objects.push_back(std::move(o));
    }
    for (auto& e : one.errors) {
      e.document = static_cast<int>(i);
      expected.errors.push_back(std::move(e));
    }
    expected.skipped += one.skipped;
  }
  CHECK(all.objects == expected.objects);
  CHECK(errorsText(all) == errorsText(expected));
  CHECK(all.skipped == 1);
  CHECK(all.objects.size() == 3);

  // The same List with its items in a YAML document: items show in the field path.
  DecodeResult yaml = decodeYaml(list, "list.yaml");
  CHECK(yaml.objects == expected.objects);
  REQUIRE(yaml.errors.size() == 1);
  CHECK(yaml.errors[0].field == "items[4].spec.ports[0].port");
}

TEST_CASE("decode: syntax errors anywhere in a List refuse all of it", "[decode]") {
  const std::string good = R"({"metadata":{"name":"a"},"spec":{"ports":[{"port":80}]}})";
  for (const std::string& json : {
           // in an item
           R"({"kind":"ServiceList","items":[)" + good + R"(,{"metadata":{"name":"b"},"spec":{"ports":[{"port":80,}]}},)" + good + "]}",
           // between items, and in the envelope around them
           R"({"kind":"ServiceList","items":[)" + good + "," + good + ",]}",
           R"({"kind":"ServiceList" "items":[)" + good + "]}",
           R"({"kind":"ServiceList","metadata":{"continue":},"items":[)" + good + "]}",
           R"({"kind":"ServiceList","items":[)" + good + "]} trailing",
           R"({"kind":"ServiceList","items":[)" + good + "," + good.substr(0, 30),
           // invalid UTF-8 inside the last item
           R"({"kind":"ServiceList","items":[)" + good + ",{\"metadata\":{\"name\":\"\xff\"}}]}",
       }) {
    CAPTURE(json);
    DecodeResult r = decodeJson(json, "api");
    CHECK(r.syntaxError);
    CHECK(r.objects.empty());
    CHECK(r.errors.size() == 1);
    CHECK(r.skipped == 0);
  }
  // An object that has "items" but is no List is read whole.
  DecodeResult r = decodeJson(R"({"apiVersion":"v1","kind":"Service","items":[1],"metadata":{"name":"s"},"spec":{"ports":[{"port":80}]}})",
                              "api");
  INFO(errorsText(r));
  CHECK(r.objects.size() == 1);
  // Items that are not objects.
  r = decodeJson(R"({"kind":"List","items":[1,"x",null,[]]})", "api");
  CHECK(r.objects.empty());
  CHECK(r.errors.size() == 4);
}

TEST_CASE("decode: apiVersion must match the kind's group", "[decode]") {
  auto [apiVersion, kind, outcome] = GENERATE(table<std::string, std::string, std::string>({
      {"v1", "Service", "ok"},
      {"v2", "Service", "unsupported"},
      {"serving.knative.dev/v1", "Service", "skipped"},
      {"networking.k8s.io/v1", "Ingress", "ok"},
      {"networking.k8s.io/v1beta1", "Ingress", "unsupported"},
      {"extensions/v1beta1", "Ingress", "unsupported"},
      {"example.com/v1", "Ingress", "skipped"},
      {"networking.k8s.io/v1beta1", "IngressClass", "unsupported"},
      {"discovery.k8s.io/v1", "EndpointSlice", "ok"},
      {"discovery.k8s.io/v1beta1", "EndpointSlice", "ok"},
      {"discovery.k8s.io/v2", "EndpointSlice", "unsupported"},
      {"v1", "EndpointSlice", "skipped"},
      {"v1beta1", "Node", "unsupported"},
  }));
  std::string body;
  if (kind == "Service") {
    body = "spec: {ports: [{port: 80}]}\n";
  } else if (kind == "Ingress") {
    body = "spec: {defaultBackend: {service: {name: s, port: {number: 80}}}}\n";
  } else if (kind == "IngressClass") {
    body = "spec: {controller: example.com/c}\n";
  } else if (kind == "EndpointSlice") {
    body = "addressType: IPv4\n";
  }
  std::string yaml = "apiVersion: " + apiVersion + "\nkind: " + kind + "\nmetadata: {name: x}\n" + body;
  DecodeResult r = decodeYaml(yaml, "v.yaml");
  CAPTURE(apiVersion, kind);
  INFO(errorsText(r));
  if (outcome == "ok") {
    CHECK(r.objects.size() == 1);
    CHECK(r.errors.empty());
  } else if (outcome == "skipped") {
    CHECK(r.objects.empty());
    CHECK(r.errors.empty());
    CHECK(r.skipped == 1);
  } else {
    CHECK(r.objects.empty());
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].field == "apiVersion");
    CHECK(r.errors[0].message.find("unsupported apiVersion") != std::string::npos);
  }
}

TEST_CASE("decode: a bad object among good ones leaves the good ones decoded", "[decode]") {
  std::string yaml = std::string(kMultiPortService) + "---\n" +
                     service("{ports: [{port: 80, protocol: tcp}]}") + "---\n" +
                     kEndpointSlice + "---\n" + slice("addressType: IPv4\nendpoints: [{addresses: "
                                                      "['fd00::1']}]") +
                     "---\n" + kPod;
  DecodeResult r = decodeYaml(yaml, "mixed.yaml");
  CHECK_FALSE(r.syntaxError);
  REQUIRE(r.objects.size() == 3);
  CHECK(kindOf(r.objects[0]) == Kind::Service);
  CHECK(kindOf(r.objects[1]) == Kind::EndpointSlice);
  CHECK(kindOf(r.objects[2]) == Kind::Pod);
  REQUIRE(r.errors.size() == 2);
  CHECK(r.errors[0].str() ==
        "mixed.yaml[doc 1] Service default/web: spec.ports[0].protocol: unsupported value "
        "\"tcp\": supported values: \"SCTP\", \"TCP\", \"UDP\"");
  CHECK(r.errors[1].str() ==
        "mixed.yaml[doc 3] EndpointSlice default/web-1: endpoints[0].addresses[0]: invalid value "
        "\"fd00::1\": must be a valid IPv4 address");

  // The same inside a kind: List: the item shows in the field path.
  r = decodeYaml("apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Service, metadata: "
                 "{name: a}, spec: {ports: [{port: 80}]}}\n- {apiVersion: v1, kind: Service, "
                 "metadata: {name: b}, spec: {ports: [{port: -1}]}}\n- {apiVersion: v1, kind: "
                 "Namespace, metadata: {name: c}}\n",
                 "list.yaml");
  REQUIRE(r.objects.size() == 2);
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].str() ==
        "list.yaml[doc 0] Service default/b: items[1].spec.ports[0].port: invalid value -1: must "
        "be between 1 and 65535, inclusive");
}

TEST_CASE("decode: a YAML syntax error anywhere refuses the whole stream", "[decode]") {
  std::string yaml = std::string(kMultiPortService) + "---\n" + kEndpointSlice +
                     "---\napiVersion: v1\nkind: Service\nmetadata: {name: x\nspec: {}\n";
  DecodeResult r = decodeYaml(yaml, "broken.yaml");
  CHECK(r.syntaxError);
  CHECK(r.objects.empty());
  CHECK(r.skipped == 0);
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].document == 2);
  CHECK(r.errors[0].message.starts_with("invalid YAML: line "));
  CHECK(r.errors[0].str().starts_with("broken.yaml[doc 2]: invalid YAML: line "));
}

TEST_CASE("decode: DecodeError::str omits what is empty", "[decode]") {
  CHECK(DecodeError{"web.yaml", 1, "Service", "default", "web", "spec.ports[0].port", "bad"}
            .str() == "web.yaml[doc 1] Service default/web: spec.ports[0].port: bad");
  CHECK(DecodeError{"n.yaml", 0, "Node", "", "n1", "metadata.labels[a]", "bad"}.str() ==
        "n.yaml[doc 0] Node n1: metadata.labels[a]: bad");
  CHECK(DecodeError{"", -1, "Service", "default", "web", "", "bad"}.str() ==
        "Service default/web: bad");
  CHECK(DecodeError{"api", -1, "", "", "", "", "invalid JSON"}.str() == "api: invalid JSON");
  CHECK(DecodeError{"", 3, "", "", "", "kind", "required value"}.str() ==
        "[doc 3]: kind: required value");
  CHECK(DecodeError{"", -1, "", "", "", "", "bare"}.str() == "bare");
  CHECK(DecodeError{"x.yaml", -1, "Service", "default", "", "metadata.name", "required value"}
            .str() == "x.yaml Service: metadata.name: required value");
}

// =============================================================================================
// Validation: what the API server refuses, the decoder refuses, naming the field.

TEST_CASE("decode: Service validation", "[decode]") {
  auto [spec, field, message] = GENERATE(table<std::string, std::string, std::string>({
      {"{ports: [{port: 0}]}", "spec.ports[0].port", "must be between 1 and 65535"},
      {"{ports: [{port: 70000}]}", "spec.ports[0].port", "must be between 1 and 65535"},
      {"{ports: [{name: a}]}", "spec.ports[0].port", "must be between 1 and 65535"},
      {"{ports: [{port: '80'}]}", "spec.ports[0].port", "expected integer, got string"},
      {"{ports: [{port: 1e30}]}", "spec.ports[0].port", "expected an integer, got 1e+30"},
      {"{ports: [{port: 80.5}]}", "spec.ports[0].port", "expected an integer, got 80.5"},
      {"{ports: [{port: 99999999999}]}", "spec.ports[0].port", "32-bit integer"},
      {"{ports: [{port: 99999999999999999999999}]}", "spec.ports[0].port", "expected an integer"},
      {"{ports: [{port: true}]}", "spec.ports[0].port", "expected integer, got boolean"},
      {"{ports: [{port: 80, protocol: tcp}]}", "spec.ports[0].protocol", "unsupported value \"tcp\""},
      {"{ports: [{port: 80, protocol: 6}]}", "spec.ports[0].protocol", "expected string"},
      {"{ports: [{port: 80, targetPort: '8080'}]}", "spec.ports[0].targetPort", "at least one letter"},
      {"{ports: [{port: 80, targetPort: web-server-http-1}]}", "spec.ports[0].targetPort", "no more than 15"},
      {"{ports: [{port: 80, targetPort: Http}]}", "spec.ports[0].targetPort", "alpha-numeric"},
      {"{ports: [{port: 80, targetPort: a--b}]}", "spec.ports[0].targetPort", "consecutive hyphens"},
      {"{ports: [{port: 80, targetPort: -web}]}", "spec.ports[0].targetPort", "begin or end with a hyphen"},
      {"{ports: [{port: 80, targetPort: -1}]}", "spec.ports[0].targetPort", "between 1 and 65535"},
      {"{ports: [{port: 80, targetPort: 65536}]}", "spec.ports[0].targetPort", "between 1 and 65535"},
      {"{ports: [{port: 80, targetPort: [1]}]}", "spec.ports[0].targetPort", "expected integer or string, got array"},
      {"{ports: [{port: 80}, {port: 81}]}", "spec.ports[0].name", "required value"},
      {"{ports: [{name: a, port: 80}, {port: 81}]}", "spec.ports[1].name", "required value"},
      {"{ports: [{name: a, port: 80}, {name: a, port: 81}]}", "spec.ports[1].name", "duplicate value"},
      {"{ports: [{name: a, port: 80}, {name: b, port: 80}]}", "spec.ports[1]", "duplicate value: port 80/TCP"},
      {"{ports: [{name: Web, port: 80}]}", "spec.ports[0].name", "RFC 1123 label"},
      {"{ports: [{port: 80, nodePort: 30000}]}", "spec.ports[0].nodePort", "may not be used when `type` is 'ClusterIP'"},
      {"{type: NodePort, ports: [{port: 80, nodePort: 70000}]}", "spec.ports[0].nodePort", "between 1 and 65535"},
      {"{type: NodePort, ports: [{name: a, port: 80, nodePort: 30001}, {name: b, port: 81, nodePort: 30001}]}", "spec.ports[1].nodePort", "duplicate"},
      {"{ports: [{port: 80, appProtocol: 'not valid'}]}", "spec.ports[0].appProtocol", "qualified name"},
      {"{type: clusterIP, ports: [{port: 80}]}", "spec.type", "unsupported value \"clusterIP\""},
      {"{}", "spec.ports", "required value"},
      {"{ports: []}", "spec.ports", "required value"},
      {"{ports: {port: 80}}", "spec.ports", "expected array, got object"},
      {"{ports: [80]}", "spec.ports[0]", "expected object, got integer"},
      {"[]", "spec", "expected object, got array"},
      {"{type: ExternalName}", "spec.externalName", "required value"},
      {"{type: ExternalName, externalName: not_valid.example.com}", "spec.externalName", "RFC 1123 subdomain"},
      {"{type: ExternalName, externalName: db.example.com, clusterIP: 10.0.0.1}", "spec.clusterIP", "may not be set for ExternalName"},
      {"{type: ExternalName, externalName: db.example.com, ipFamilyPolicy: SingleStack}", "spec.ipFamilyPolicy", "may not be set for ExternalName"},
      {"{clusterIP: 10.0.0.300, ports: [{port: 80}]}", "spec.clusterIP", "must be a valid IP address"},
      {"{clusterIP: 010.0.0.1, ports: [{port: 80}]}", "spec.clusterIP", "must be a valid IP address"},
      {"{clusterIP: 10.0.0.1, clusterIPs: [10.0.0.2], ports: [{port: 80}]}", "spec.clusterIPs[0]", "must be equal to clusterIP"},
      {"{clusterIPs: [10.0.0.1, 10.0.0.2], ipFamilyPolicy: RequireDualStack, ports: [{port: 80}]}", "spec.clusterIPs[1]", "one IP for each IP family"},
      {"{clusterIPs: [10.0.0.1, 'fd00::1', 10.0.0.3], ports: [{port: 80}]}", "spec.clusterIPs", "at most 2"},
      {"{clusterIPs: [None, 10.0.0.1], ports: [{port: 80}]}", "spec.clusterIPs", "more than one value"},
      {"{clusterIPs: [10.0.0.1, 'fd00::1'], ipFamilyPolicy: SingleStack, ports: [{port: 80}]}", "spec.ipFamilyPolicy", "must be RequireDualStack or PreferDualStack"},
      {"{ipFamilyPolicy: singleStack, ports: [{port: 80}]}", "spec.ipFamilyPolicy", "unsupported value"},
      {"{ipFamilies: [IPv4, IPv4], ports: [{port: 80}]}", "spec.ipFamilies[1]", "duplicate"},
      {"{ipFamilies: [IPv5], ports: [{port: 80}]}", "spec.ipFamilies[0]", "unsupported value \"IPv5\""},
      {"{clusterIP: 10.0.0.1, ipFamilies: [IPv6], ports: [{port: 80}]}", "spec.ipFamilies[0]", "must match"},
      {"{clusterIP: None, type: NodePort, ports: [{port: 80}]}", "spec.clusterIP", "may not be set to 'None'"},
      {"{externalIPs: [127.0.0.1], ports: [{port: 80}]}", "spec.externalIPs[0]", "loopback"},
      {"{externalIPs: [0.0.0.0], ports: [{port: 80}]}", "spec.externalIPs[0]", "unspecified"},
      {"{externalIPs: ['fe80::1'], ports: [{port: 80}]}", "spec.externalIPs[0]", "link-local"},
      {"{externalIPs: [not-an-ip], ports: [{port: 80}]}", "spec.externalIPs[0]", "must be a valid IP address"},
      {"{externalTrafficPolicy: Local, ports: [{port: 80}]}", "spec.externalTrafficPolicy", "externally-accessible"},
      {"{type: NodePort, externalTrafficPolicy: local, ports: [{port: 80}]}", "spec.externalTrafficPolicy", "unsupported value"},
      {"{internalTrafficPolicy: Nearby, ports: [{port: 80}]}", "spec.internalTrafficPolicy", "unsupported value"},
      {"{sessionAffinity: Sticky, ports: [{port: 80}]}", "spec.sessionAffinity", "unsupported value"},
      {"{sessionAffinity: ClientIP, sessionAffinityConfig: {clientIP: {timeoutSeconds: 0}}, ports: [{port: 80}]}", "spec.sessionAffinityConfig.clientIP.timeoutSeconds", "greater than 0"},
      {"{sessionAffinity: ClientIP, sessionAffinityConfig: {clientIP: {timeoutSeconds: 86401}}, ports: [{port: 80}]}", "spec.sessionAffinityConfig.clientIP.timeoutSeconds", "less than 86400"},
      {"{sessionAffinityConfig: {clientIP: {timeoutSeconds: 10}}, ports: [{port: 80}]}", "spec.sessionAffinityConfig", "must not be set when sessionAffinity is None"},
      {"{loadBalancerSourceRanges: [10.0.0.0/8], ports: [{port: 80}]}", "spec.loadBalancerSourceRanges", "only be used when `type` is 'LoadBalancer'"},
      {"{type: LoadBalancer, loadBalancerSourceRanges: [10.0.0.0/33], ports: [{port: 80}]}", "spec.loadBalancerSourceRanges[0]", "valid CIDR"},
      {"{healthCheckNodePort: 30000, ports: [{port: 80}]}", "spec.healthCheckNodePort", "may only be set when"},
      {"{selector: {app: 1}, ports: [{port: 80}]}", "spec.selector[app]", "expected string, got integer"},
      {"{selector: {app: -bad}, ports: [{port: 80}]}", "spec.selector[app]", "must be at most 63 characters"},
      {"{selector: [app], ports: [{port: 80}]}", "spec.selector", "expected object, got array"},
      {"{publishNotReadyAddresses: 'yes', ports: [{port: 80}]}", "spec.publishNotReadyAddresses", "expected boolean, got string"},
  }));
  expectError(service(spec), field, message);
}

TEST_CASE("decode: Service status validation", "[decode]") {
  auto [status, field, message] = GENERATE(table<std::string, std::string, std::string>({
      {"{loadBalancer: {ingress: [{ip: 1.2.3.4, ipMode: vip}]}}", "status.loadBalancer.ingress[0].ipMode", "unsupported value"},
      {"{loadBalancer: {ingress: [{ipMode: VIP, hostname: a.b}]}}", "status.loadBalancer.ingress[0].ipMode", "may not be specified when `ip` is empty"},
      {"{loadBalancer: {ingress: [{hostname: 1.2.3.4}]}}", "status.loadBalancer.ingress[0].hostname", "not an IP address"},
      {"{loadBalancer: {ingress: [{ip: 1.2.3}]}}", "status.loadBalancer.ingress[0].ip", "valid IP address"},
      {"{loadBalancer: {ingress: {ip: 1.2.3.4}}}", "status.loadBalancer.ingress", "expected array"},
  }));
  expectError(service("{ports: [{port: 80}]}", "status: " + status), field, message);
}

TEST_CASE("decode: metadata validation", "[decode]") {
  auto [meta, field, message] = GENERATE(table<std::string, std::string, std::string>({
      {"{}", "metadata.name", "required value"},
      {"{name: ''}", "metadata.name", "required value"},
      {"{name: My_Service}", "metadata.name", "RFC 1035 label"},
      {"{name: 1web}", "metadata.name", "RFC 1035 label"},
      {"{name: web.x}", "metadata.name", "RFC 1035 label"},
      {"{name: 42}", "metadata.name", "expected string, got integer"},
      {"{name: web, namespace: Bad}", "metadata.namespace", "RFC 1123 label"},
      {"{name: web, namespace: [x]}", "metadata.namespace", "expected string, got array"},
      {"{name: web, labels: {app: 1}}", "metadata.labels[app]", "expected string, got integer"},
      {"{name: web, labels: {version: 1.0}}", "metadata.labels[version]", "expected string, got integer"},
      {"{name: web, labels: {enabled: true}}", "metadata.labels[enabled]", "expected string, got boolean"},
      {"{name: web, labels: {'bad key!': x}}", "metadata.labels[bad key!]", "qualified name"},
      {"{name: web, labels: {'Bad.Prefix/k': x}}", "metadata.labels[Bad.Prefix/k]", "prefix part"},
      {"{name: web, labels: {a: " + std::string(64, 'v') + "}}", "metadata.labels[a]", "at most 63"},
      {"{name: web, labels: [a]}", "metadata.labels", "expected object, got array"},
      {"{name: web, annotations: {a: [1]}}", "metadata.annotations[a]", "expected string, got array"},
      {"{name: web, annotations: {'-a': x}}", "metadata.annotations[-a]", "qualified name"},
      {"{name: web, uid: {}}", "metadata.uid", "expected string, got object"},
      {"{name: web, resourceVersion: " + std::string(30, '1') + "}", "metadata.resourceVersion", "expected string, got number"},
      {"{name: web, resourceVersion: 12345}", "metadata.resourceVersion", "expected string, got integer"},
      {"{name: web, resourceVersion: '" + std::string(2000, '1') + "'}", "metadata.resourceVersion", "too long"},
      {"{name: web, deletionTimestamp: 5}", "metadata.deletionTimestamp", "expected string"},
      {"[web]", "metadata", "expected object, got array"},
      {"web", "metadata", "expected object, got string"},
  }));
  expectError("apiVersion: v1\nkind: Service\nmetadata: " + meta + "\nspec: {ports: [{port: 80}]}\n",
              field, message);
}

TEST_CASE("decode: object names follow each kind's rule", "[decode]") {
  // Pods and most kinds take DNS-1123 subdomains; Namespaces DNS-1123 labels.
  auto pod = decodeOne<Pod>("apiVersion: v1\nkind: Pod\nmetadata: {name: 1web.a-b}\nspec: "
                            "{containers: [{name: c, image: i}]}\n");
  CHECK(pod.meta.name == "1web.a-b");
  expectError("apiVersion: v1\nkind: Namespace\nmetadata: {name: a.b}\n", "metadata.name",
              "RFC 1123 label");
  expectError("apiVersion: v1\nkind: Pod\nmetadata: {name: Web}\nspec: {containers: [{name: c, "
              "image: i}]}\n",
              "metadata.name", "RFC 1123 subdomain");
  expectError("apiVersion: v1\nkind: Node\nmetadata: {name: '" + std::string(254, 'a') + "'}\n",
              "metadata.name", "RFC 1123 subdomain");
  expectError("apiVersion: v1\nkind: Namespace\nmetadata: {name: " + std::string(64, 'a') + "}\n",
              "metadata.name", "RFC 1123 label");
}

TEST_CASE("decode: EndpointSlice validation", "[decode]") {
  std::string many, manyEndpoints, manyPorts, manyZones;
  for (int i = 0; i < 101; ++i) {
    many += std::string(i ? "," : "") + "10.0.0." + std::to_string(i % 250 + 1);
    manyPorts += std::string(i ? "," : "") + "{name: p" + std::to_string(i) + ", port: 80}";
  }
  for (int i = 0; i < 1001; ++i) {
    manyEndpoints += std::string(i ? "," : "") + "{addresses: [10.0.0.1]}";
  }
  for (int i = 0; i < 9; ++i) {
    manyZones += std::string(i ? "," : "") + "{name: z" + std::to_string(i) + "}";
  }
  auto [body, field, message] = GENERATE_COPY(table<std::string, std::string, std::string>({
      {"endpoints: []", "addressType", "required value"},
      {"addressType: ipv4", "addressType", "unsupported value \"ipv4\""},
      {"addressType: IPv4\nendpoints: [{addresses: ['fd00::1']}]", "endpoints[0].addresses[0]", "must be a valid IPv4 address"},
      {"addressType: IPv6\nendpoints: [{addresses: [10.0.0.1]}]", "endpoints[0].addresses[0]", "must be a valid IPv6 address"},
      {"addressType: IPv4\nendpoints: [{addresses: [10.0.0.1/32]}]", "endpoints[0].addresses[0]", "IPv4"},
      {"addressType: FQDN\nendpoints: [{addresses: [Not_A_Name]}]", "endpoints[0].addresses[0]", "RFC 1123 subdomain"},
      {"addressType: IPv4\nendpoints: [{addresses: []}]", "endpoints[0].addresses", "at least 1"},
      {"addressType: IPv4\nendpoints: [{addresses: [" + many + "]}]", "endpoints[0].addresses", "at most 100"},
      {"addressType: IPv4\nendpoints: [{conditions: {}}]", "endpoints[0].addresses", "required value"},
      {"addressType: IPv4\nendpoints: [{addresses: [null]}]", "endpoints[0].addresses[0]", "required value"},
      {"addressType: IPv4\nendpoints: [{addresses: [10.0.0.1], conditions: {ready: 'true'}}]", "endpoints[0].conditions.ready", "expected boolean, got string"},
      {"addressType: IPv4\nendpoints: [{addresses: [10.0.0.1], conditions: []}]", "endpoints[0].conditions", "expected object"},
      {"addressType: IPv4\nendpoints: [{addresses: [10.0.0.1], hostname: Pod_1}]", "endpoints[0].hostname", "RFC 1123 label"},
      {"addressType: IPv4\nendpoints: [{addresses: [10.0.0.1], nodeName: Node_1}]", "endpoints[0].nodeName", "RFC 1123 subdomain"},
      {"addressType: IPv4\nendpoints: [{addresses: [10.0.0.1], hints: {forZones: [" + manyZones + "]}}]", "endpoints[0].hints.forZones", "at most 8"},
      {"addressType: IPv4\nendpoints: [{addresses: [10.0.0.1], hints: {forZones: [{}]}}]", "endpoints[0].hints.forZones[0].name", "required value"},
      {"addressType: IPv4\nendpoints: [" + manyEndpoints + "]", "endpoints", "too many: 1001"},
      {"addressType: IPv4\nendpoints: {}", "endpoints", "expected array"},
      {"addressType: IPv4\nports: [" + manyPorts + "]", "ports", "at most 100"},
      {"addressType: IPv4\nports: [{port: 0}]", "ports[0].port", "between 1 and 65535"},
      {"addressType: IPv4\nports: [{port: 65536}]", "ports[0].port", "between 1 and 65535"},
      {"addressType: IPv4\nports: [{name: a, port: 80}, {name: a, port: 81}]", "ports[1].name", "duplicate value"},
      {"addressType: IPv4\nports: [{name: a}, {}, {}]", "ports[2].name", "duplicate value"},
      {"addressType: IPv4\nports: [{protocol: ICMP}]", "ports[0].protocol", "unsupported value"},
      {"addressType: IPv4\nports: [{name: A}]", "ports[0].name", "RFC 1123 label"},
  }));
  expectError(slice(body), field, message);
}

TEST_CASE("decode: Ingress validation", "[decode]") {
  const std::string backend = "backend: {service: {name: s, port: {number: 80}}}";
  auto [yaml, field, message] = GENERATE_COPY(table<std::string, std::string, std::string>({
      {ingressPath("{path: /, " + backend + "}"), "spec.rules[0].http.paths[0].pathType", "pathType must be specified"},
      {ingressPath("{path: /, pathType: prefix, " + backend + "}"), "spec.rules[0].http.paths[0].pathType", "unsupported value \"prefix\""},
      {ingressPath("{path: foo, pathType: Prefix, " + backend + "}"), "spec.rules[0].http.paths[0].path", "must be an absolute path"},
      {ingressPath("{pathType: Exact, " + backend + "}"), "spec.rules[0].http.paths[0].path", "must be an absolute path"},
      {ingressPath("{path: foo, pathType: ImplementationSpecific, " + backend + "}"), "spec.rules[0].http.paths[0].path", "must be an absolute path"},
      {ingressPath("{path: /a//b, pathType: Exact, " + backend + "}"), "spec.rules[0].http.paths[0].path", "must not contain '//'"},
      {ingressPath("{path: /a/%2F, pathType: Prefix, " + backend + "}"), "spec.rules[0].http.paths[0].path", "must not contain '%2F'"},
      {ingressPath("{path: /a/.., pathType: Prefix, " + backend + "}"), "spec.rules[0].http.paths[0].path", "cannot end with '/..'"},
      {ingressPath("{path: /a/., pathType: Prefix, " + backend + "}"), "spec.rules[0].http.paths[0].path", "cannot end with '/.'"},
      {ingressPath("{path: /, pathType: Prefix}"), "spec.rules[0].http.paths[0].backend", "required value"},
      {ingressPath("{path: /, pathType: Prefix, backend: {}}"), "spec.rules[0].http.paths[0].backend", "one backend (service or resource) must be specified"},
      {ingressPath("{path: /, pathType: Prefix, backend: {service: {name: s, port: {number: 80}}, resource: {kind: K, name: n}}}"), "spec.rules[0].http.paths[0].backend", "cannot set both service and resource"},
      {ingressPath("{path: /, pathType: Prefix, backend: {service: {name: s, port: {number: 80, name: http}}}}"), "spec.rules[0].http.paths[0].backend.service.port", "cannot set both port name & port number"},
      {ingressPath("{path: /, pathType: Prefix, backend: {service: {name: s}}}"), "spec.rules[0].http.paths[0].backend.service.port", "port name or number is required"},
      {ingressPath("{path: /, pathType: Prefix, backend: {service: {name: s, port: {number: 0}}}}"), "spec.rules[0].http.paths[0].backend.service.port", "port name or number is required"},
      {ingressPath("{path: /, pathType: Prefix, backend: {service: {name: s, port: {number: 65536}}}}"), "spec.rules[0].http.paths[0].backend.service.port.number", "between 1 and 65535"},
      {ingressPath("{path: /, pathType: Prefix, backend: {service: {name: s, port: {name: HTTP}}}}"), "spec.rules[0].http.paths[0].backend.service.port.name", "alpha-numeric"},
      {ingressPath("{path: /, pathType: Prefix, backend: {service: {port: {number: 80}}}}"), "spec.rules[0].http.paths[0].backend.service.name", "required value"},
      {ingressPath("{path: /, pathType: Prefix, backend: {service: {name: 1svc, port: {number: 80}}}}"), "spec.rules[0].http.paths[0].backend.service.name", "RFC 1035 label"},
      {ingressPath("{path: /, pathType: Prefix, backend: {resource: {name: n}}}"), "spec.rules[0].http.paths[0].backend.resource.kind", "required value"},
      {ingress("{rules: [{host: 1.2.3.4, http: {paths: [{path: /, pathType: Prefix, " + backend + "}]}}]}"), "spec.rules[0].host", "must be a DNS name, not an IP address"},
      {ingress("{rules: [{host: 'foo.*.com', http: {paths: [{path: /, pathType: Prefix, " + backend + "}]}}]}"), "spec.rules[0].host", "RFC 1123 subdomain"},
      {ingress("{rules: [{host: '*', http: {paths: [{path: /, pathType: Prefix, " + backend + "}]}}]}"), "spec.rules[0].host", "RFC 1123 subdomain"},
      {ingress("{rules: [{host: 'Foo.com', http: {paths: [{path: /, pathType: Prefix, " + backend + "}]}}]}"), "spec.rules[0].host", "RFC 1123 subdomain"},
      {ingress("{rules: [{host: a.com, http: {}}]}"), "spec.rules[0].http.paths", "required value"},
      {ingress("{rules: [{host: a.com, http: {paths: []}}]}"), "spec.rules[0].http.paths", "required value"},
      {ingress("{}"), "spec", "either `defaultBackend` or `rules` must be specified"},
      {ingress("{rules: []}"), "spec", "either `defaultBackend` or `rules` must be specified"},
      {ingress("{backend: {serviceName: s, servicePort: 80}}"), "spec.backend", "not a networking.k8s.io/v1 field"},
      {ingress("{ingressClassName: Nginx, defaultBackend: {service: {name: s, port: {number: 80}}}}"), "spec.ingressClassName", "RFC 1123 subdomain"},
      {ingress("{tls: [{hosts: [1.2.3.4]}], defaultBackend: {service: {name: s, port: {number: 80}}}}"), "spec.tls[0].hosts[0]", "not an IP address"},
      {ingress("{tls: [{secretName: Bad_Name}], defaultBackend: {service: {name: s, port: {number: 80}}}}"), "spec.tls[0].secretName", "RFC 1123 subdomain"},
      {ingress("{tls: {hosts: []}, defaultBackend: {service: {name: s, port: {number: 80}}}}"), "spec.tls", "expected array"},
  }));
  expectError(yaml, field, message);
}

TEST_CASE("decode: IngressClass, Secret, Pod and kind validation", "[decode]") {
  const std::string ic = "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: c}\n";
  const std::string secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n";
  const std::string pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n";
  auto [yaml, field, message] = GENERATE_COPY(table<std::string, std::string, std::string>({
      {ic + "spec: {}", "spec.controller", "required value"},
      {ic + "spec: {controller: nginx}", "spec.controller", "domain-prefixed path"},
      {ic + "spec: {controller: 'example.com/" + std::string(250, 'a') + "'}", "spec.controller", "too long"},
      {secret + "data: {a: '!!!!'}", "data[a]", "invalid base64"},
      {secret + "data: {a: YWJj}\nstringData: {b: 1}", "stringData[b]", "expected string, got integer"},
      {secret + "data: {a: YWJ}", "data[a]", "invalid base64"},
      {secret + "data: {a: YQ}", "data[a]", "invalid base64"},
      {secret + "data: {a: 'YQ==YQ=='}", "data[a]", "invalid base64"},
      {secret + "data: {a: 'YW-j'}", "data[a]", "invalid base64"},
      {secret + "data: {a: 5}", "data[a]", "expected string, got integer"},
      {secret + "data: {'bad/key': YWJj}", "data[bad/key]", "config key"},
      {secret + "data: {'..': YWJj}", "data[..]", "must not be"},
      {secret + "type: kubernetes.io/tls\ndata: {tls.crt: YWJj}", "data[tls.key]", "required value"},
      {secret + "data: []", "data", "expected object, got array"},
      {secret + "type: 5", "type", "expected string"},
      {pod + "spec: {}", "spec.containers", "required value"},
      {pod + "spec: {containers: [{image: nginx}]}", "spec.containers[0].name", "required value"},
      {pod + "spec: {containers: [{name: c}]}", "spec.containers[0].image", "required value"},
      {pod + "spec: {containers: [{name: c, image: i}, {name: c, image: i}]}", "spec.containers[1].name", "duplicate value"},
      {pod + "spec: {containers: [{name: c, image: i, ports: [{containerPort: 0}]}]}", "spec.containers[0].ports[0].containerPort", "between 1 and 65535"},
      {pod + "spec: {containers: [{name: c, image: i, ports: [{name: http}]}]}", "spec.containers[0].ports[0].containerPort", "required value"},
      {pod + "spec: {containers: [{name: c, image: i, ports: [{name: http, containerPort: 80}]}, {name: d, image: i, ports: [{name: http, containerPort: 81}]}]}", "spec.containers[1].ports[0].name", "duplicate port name"},
      {pod + "spec: {containers: [{name: c, image: i, ports: [{containerPort: 80, protocol: http}]}]}", "spec.containers[0].ports[0].protocol", "unsupported value"},
      {pod + "spec: {containers: [{name: c, image: i, ports: [{containerPort: 80, hostPort: 70000}]}]}", "spec.containers[0].ports[0].hostPort", "between 1 and 65535"},
      {pod + "spec: {hostname: Web_1, containers: [{name: c, image: i}]}", "spec.hostname", "RFC 1123 label"},
      {pod + "spec: {hostNetwork: 1, containers: [{name: c, image: i}]}", "spec.hostNetwork", "expected boolean"},
      {pod + "spec: {containers: [{name: c, image: i}]}\nstatus: {podIP: bad}", "status.podIP", "valid IP address"},
      {pod + "spec: {containers: [{name: c, image: i}]}\nstatus: {podIPs: [{ip: 1.2.3.4.5}]}", "status.podIPs[0].ip", "valid IP address"},
      {pod + "spec: {containers: [{name: c, image: i}]}\nstatus: {conditions: {}}", "status.conditions", "expected array"},
      {"apiVersion: v1\nkind: Node\nmetadata: {name: n}\nstatus: {addresses: [{type: 1}]}", "status.addresses[0].type", "expected string"},
      {"apiVersion: v1\nmetadata: {name: n}", "kind", "required value"},
      {"kind: Service\nmetadata: {name: n}", "apiVersion", "required value"},
      {"apiVersion: v1\nkind: 5\nmetadata: {name: n}", "kind", "expected string, got integer"},
      {"apiVersion: 1\nkind: Service\nmetadata: {name: n}", "apiVersion", "expected string, got integer"},
      {"[1, 2]", "", "expected a JSON object, got array"},
      {"just text", "", "expected a JSON object, got string"},
  }));
  expectError(yaml, field, message);
}

TEST_CASE("decode: errors per object are capped", "[decode]") {
  std::string ports;
  for (int i = 0; i < 40; ++i) {
    ports += std::string(i ? "," : "") + "{name: p" + std::to_string(i) + ", port: 0}";
  }
  DecodeResult r = decodeYaml(service("{ports: [" + ports + "]}"), "x.yaml");
  CHECK(r.objects.empty());
  REQUIRE(r.errors.size() == 17);
  CHECK(r.errors.back().message.find("more errors") != std::string::npos);
}

// =============================================================================================
// Hostile inputs: each gives an error, never a crash.

TEST_CASE("decode: huge numbers", "[decode]") {
  // JSON: beyond 64 bits is not a number simdjson reads: the text is refused.
  DecodeResult r = decodeJson(
      R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"a"},"spec":{"ports":[{"port":99999999999999999999}]}})",
      "api");
  CHECK(r.syntaxError);
  CHECK(r.objects.empty());
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].str().starts_with("api: invalid JSON: "));

  for (const char* port : {"99999999999", "-1", "2147483648", "-2147483649", "1e30", "1.0",
                           "18446744073709551615"}) {
    std::string json = std::string(R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"a"},"spec":{"ports":[{"port":)") +
                       port + "}]}}";
    r = decodeJson(json, "api");
    CAPTURE(port);
    CHECK_FALSE(r.syntaxError);
    CHECK(r.objects.empty());
    REQUIRE_FALSE(r.errors.empty());
    CHECK(r.errors[0].field == "spec.ports[0].port");
  }
}

TEST_CASE("decode: a 10 MB string is refused where it does not belong, without a crash",
          "[decode]") {
  const std::string big(10 << 20, 'a');
  // In an annotation: over the API's 256 KiB total.
  DecodeResult r = decodeYaml(service("{ports: [{port: 80}]}") + "---\n" +
                                  "apiVersion: v1\nkind: Service\nmetadata: {name: big, "
                                  "annotations: {note: " + big + "}}\nspec: {ports: [{port: 80}]}\n",
                              "big.yaml");
  REQUIRE(r.objects.size() == 1);
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].field == "metadata.annotations");
  CHECK(r.errors[0].message.find("262144") != std::string::npos);

  // Just under the limit is fine.
  std::string under(kdp::k8s::detail::kTotalAnnotationSizeLimit - 4, 'b');
  auto ok = decodeOne<Service>("apiVersion: v1\nkind: Service\nmetadata: {name: ok, annotations: "
                               "{note: " + under + "}}\nspec: {ports: [{port: 80}]}\n");
  CHECK(ok.meta.annotations.at("note").size() == under.size());

  // As a name, a label, a port name, an IP, a host: refused, and the error stays short.
  const std::string json = R"({"apiVersion":"v1","kind":"Service","metadata":{"name":")" + big +
                           R"("},"spec":{"ports":[{"port":80,"name":")" + big +
                           R"("}],"clusterIP":")" + big + R"("}})";
  r = decodeJson(json, "api");
  CHECK(r.objects.empty());
  REQUIRE(r.errors.size() >= 3);
  for (const auto& e : r.errors) {
    CHECK(e.str().size() < 1200);
  }
  // In a kind we skip: skipped, not copied.
  r = decodeJson(R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"x":")" +
                     big + R"("}})",
                 "api");
  CHECK(r.errors.empty());
  CHECK(r.skipped == 1);
  // In a Secret: over the 1 MiB Secret limit, and never quoted in the error.
  r = decodeJson(R"({"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"},"stringData":{"x":")" +
                     big + R"("}})",
                 "api");
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].field == "data");
  CHECK(r.errors[0].message.find("aaaa") == std::string::npos);
}

TEST_CASE("decode: YAML alias bombs are refused", "[decode]") {
  std::string bomb = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lol}\ndata:\n"
                     "  a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n";
  char prev = 'a';
  for (char c = 'b'; c <= 'i'; ++c, ++prev) {
    bomb += std::string("  ") + c + ": &" + c + " [";
    for (int i = 0; i < 9; ++i) {
      bomb += std::string(i ? "," : "") + "*" + prev;
    }
    bomb += "]\n";
  }
  DecodeResult r = decodeYaml(std::string(kMultiPortService) + "---\n" + bomb, "lol.yaml");
  CHECK(r.syntaxError);
  CHECK(r.objects.empty());
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].document == 1);
  CHECK(r.errors[0].message.find("bytes of JSON") != std::string::npos);
}

TEST_CASE("decode: deeply nested input is refused", "[decode]") {
  std::string deep = std::string(100000, '[') + std::string(100000, ']');
  DecodeResult r = decodeJson(deep, "api");
  CHECK(r.syntaxError);
  CHECK(r.errors.size() == 1);
  r = decodeYaml(deep, "deep.yaml");
  CHECK(r.syntaxError);
  CHECK(r.errors.size() == 1);
  // Inside a field we do not read: the text as a whole is refused.
  std::string nested = R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"a"},"spec":{"x":)" +
                       std::string(500, '[') + std::string(500, ']') + "}}";
  r = decodeJson(nested, "api");
  CHECK(r.syntaxError);
  // Moderate nesting in unknown fields is fine.
  std::string moderate = R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"a"},"spec":{"ports":[{"port":80}],"x":)" +
                         std::string(50, '[') + std::string(50, ']') + "}}";
  r = decodeJson(moderate, "api");
  CHECK(r.objects.size() == 1);
}

TEST_CASE("decode: truncated JSON is a syntax error at every length", "[decode]") {
  const std::string json =
      R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"web","labels":{"a":"b"}},"spec":{"clusterIP":"10.0.0.1","ports":[{"port":80,"targetPort":"http"}]}})";
  REQUIRE(decodeJson(json, "api").objects.size() == 1);
  for (std::size_t n = 0; n < json.size(); ++n) {
    DecodeResult r = decodeJson(json.substr(0, n), "api");
    CAPTURE(n);
    CHECK(r.syntaxError);
    CHECK(r.objects.empty());
    CHECK(r.errors.size() == 1);
  }
}

TEST_CASE("decode: garbage bytes and mutated documents never crash", "[decode]") {
  std::uint64_t x = 0x9E3779B97F4A7C15ull;
  auto next = [&] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  // Pure garbage.
  for (int i = 0; i < 200; ++i) {
    std::string g(next() % 512, '\0');
    for (char& c : g) {
      c = static_cast<char>(next());
    }
    DecodeResult j = decodeJson(g, "api");
    CHECK((j.syntaxError || !j.errors.empty() || j.objects.empty()));
    DecodeResult y = decodeYaml(g, "g.yaml");
    if (y.syntaxError) {
      CHECK(y.objects.empty());
      CHECK(y.errors.size() == 1);
    }
  }
  // Valid documents with a few bytes flipped, dropped or duplicated.
  const std::vector<std::string> seeds = {kMultiPortService, kDualStackService, kEndpointSlice,
                                          kSimpleFanout,     kResourceBackendIngress,
                                          kTlsSecret,        kPod,
                                          kNodeJson};
  static constexpr char kAlphabet[] = "{}[]:,\"'-&*!|>#\n 0123456789aZ.\\/\x00\xff";
  const std::string alphabet(kAlphabet, sizeof kAlphabet - 1);
  for (const auto& seed : seeds) {
    for (int i = 0; i < 300; ++i) {
      std::string m = seed;
      const int edits = 1 + static_cast<int>(next() % 4);
      for (int e = 0; e < edits && !m.empty(); ++e) {
        const std::size_t pos = next() % m.size();
        switch (next() % 3) {
          case 0: m[pos] = alphabet[next() % alphabet.size()]; break;
          case 1: m.erase(pos, 1 + next() % 8); break;
          default: m.insert(pos, m.substr(pos, 1 + next() % 16)); break;
        }
      }
      DecodeResult y = decodeYaml(m, "m.yaml");
      DecodeResult j = decodeJson(m, "m.json");
      for (const auto* r : {&y, &j}) {
        if (r->syntaxError) {
          CHECK(r->objects.empty());
          CHECK(r->errors.size() == 1);
        }
        for (const auto& err : r->errors) {
          CHECK_FALSE(err.str().empty());
        }
      }
    }
  }
}

TEST_CASE("decode: invalid UTF-8 and odd encodings", "[decode]") {
  DecodeResult r = decodeJson("{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"\xff\"}}", "api");
  CHECK(r.syntaxError);
  r = decodeYaml("apiVersion: v1\nkind: Service\nmetadata: {name: \"\xc3\x28\"}\n", "x.yaml");
  CHECK(r.objects.empty());
  CHECK_FALSE(r.errors.empty());
  r = decodeJson("", "api");
  CHECK(r.syntaxError);
  r = decodeYaml("", "empty.yaml");
  CHECK_FALSE(r.syntaxError);
  CHECK(r.errors.empty());
  CHECK(r.objects.empty());
  r = decodeJson("null", "api");
  CHECK(r.objects.empty());
  CHECK(r.errors.size() == 1);
}

// =============================================================================================
// Scale: a cluster-sized LIST. The timing run is hidden: `kdp_tests "[.decode-perf]"`.

namespace {

std::string serviceList(int n) {
  std::string s = R"({"kind":"ServiceList","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[)";
  s.reserve(static_cast<std::size_t>(n) * 1100);
  for (int i = 0; i < n; ++i) {
    const std::string name = "svc-" + std::to_string(i);
    const std::string ns = "ns-" + std::to_string(i % 50);
    const std::string ip = "10." + std::to_string(96 + i / 65536) + "." +
                           std::to_string((i / 256) % 256) + "." + std::to_string(i % 256);
    if (i) {
      s += ',';
    }
    s += R"({"metadata":{"name":")" + name + R"(","namespace":")" + ns +
         R"(","uid":"0c9e8a5e-1111-2222-3333-)" + std::to_string(100000000000 + i) +
         R"(","resourceVersion":")" + std::to_string(1000 + i) +
         R"(","creationTimestamp":"2024-05-06T07:08:09Z","labels":{"app":")" + name +
         R"(","app.kubernetes.io/part-of":"shop","tier":"backend"},"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"apiVersion\":\"v1\",\"kind\":\"Service\"}"}},)" +
         R"("spec":{"ports":[{"name":"http","protocol":"TCP","port":80,"targetPort":8080},{"name":"metrics","protocol":"TCP","port":9090,"targetPort":"metrics"}],)" +
         R"("selector":{"app":")" + name + R"("},"clusterIP":")" + ip + R"(","clusterIPs":[")" +
         ip + R"("],"type":"ClusterIP","sessionAffinity":"None","ipFamilies":["IPv4"],)" +
         R"("ipFamilyPolicy":"SingleStack","internalTrafficPolicy":"Cluster"},"status":{"loadBalancer":{}}})";
  }
  s += "]}";
  return s;
}

std::string endpointSliceList(int n, int endpointsPerSlice) {
  std::string s = R"({"kind":"EndpointSliceList","apiVersion":"discovery.k8s.io/v1","metadata":{"resourceVersion":"1"},"items":[)";
  s.reserve(static_cast<std::size_t>(n) * (700 + 330 * endpointsPerSlice));
  for (int i = 0; i < n; ++i) {
    const std::string svc = "svc-" + std::to_string(i);
    const std::string ns = "ns-" + std::to_string(i % 50);
    if (i) {
      s += ',';
    }
    s += R"({"metadata":{"name":")" + svc + R"(-x7k2p","generateName":")" + svc +
         R"(-","namespace":")" + ns + R"(","uid":"1d9e8a5e-1111-2222-3333-)" +
         std::to_string(100000000000 + i) + R"(","resourceVersion":")" + std::to_string(5000 + i) +
         R"(","labels":{"endpointslice.kubernetes.io/managed-by":"endpointslice-controller.k8s.io","kubernetes.io/service-name":")" +
         svc + R"("},"ownerReferences":[{"apiVersion":"v1","kind":"Service","name":")" + svc +
         R"(","uid":"x","controller":true,"blockOwnerDeletion":true}]},"addressType":"IPv4","endpoints":[)";
    for (int e = 0; e < endpointsPerSlice; ++e) {
      const int k = i * endpointsPerSlice + e;
      if (e) {
        s += ',';
      }
      s += R"({"addresses":["10.244.)" + std::to_string((k / 256) % 256) + "." +
           std::to_string(k % 256) +
           R"("],"conditions":{"ready":true,"serving":true,"terminating":false},"nodeName":"ip-10-0-)" +
           std::to_string(k % 100) + R"(-7.ec2.internal","zone":"us-east-1a","targetRef":{"kind":"Pod","namespace":")" +
           ns + R"(","name":")" + svc + "-7d9f8b6c5d-" + std::to_string(10000 + e) +
           R"(","uid":"2e9e8a5e-1111-2222-3333-444455556666"}})";
    }
    s += R"(],"ports":[{"name":"http","protocol":"TCP","port":8080},{"name":"metrics","protocol":"TCP","port":9090}]})";
  }
  s += "]}";
  return s;
}

}  // namespace

TEST_CASE("decode: a 10,000-Service and 10,000-EndpointSlice LIST decodes completely",
          "[decode]") {
  const std::string services = serviceList(10000);
  const std::string slices = endpointSliceList(10000, 10);
  DecodeResult s = decodeJson(services, "api");
  INFO(errorsText(s));
  CHECK(s.errors.empty());
  REQUIRE(s.objects.size() == 10000);
  const Service& last = std::get<Service>(s.objects.back());
  CHECK(last.meta.name == "svc-9999");
  CHECK(last.ports[1].targetPort.name == "metrics");

  DecodeResult e = decodeJson(slices, "api");
  INFO(errorsText(e));
  CHECK(e.errors.empty());
  REQUIRE(e.objects.size() == 10000);
  std::size_t endpoints = 0;
  for (const auto& o : e.objects) {
    endpoints += std::get<EndpointSlice>(o).endpoints.size();
  }
  CHECK(endpoints == 100000);
  const auto& es = std::get<EndpointSlice>(e.objects[7]);
  CHECK(es.serviceName == "svc-7");
  CHECK(es.endpoints[3].targetPodName == "svc-7-7d9f8b6c5d-10003");
}

TEST_CASE("decode: throughput of a cluster-sized LIST", "[.decode-perf]") {
  const std::string services = serviceList(10000);
  const std::string slices = endpointSliceList(10000, 10);
  auto timeIt = [](const std::string& text) {
    double best = 1e9;
    for (int i = 0; i < 5; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      DecodeResult r = decodeJson(text, "api");
      auto t1 = std::chrono::steady_clock::now();
      REQUIRE(r.objects.size() == 10000);
      best = std::min(best, std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
    return best;
  };
  // The first run includes growing this thread's parser; report it too.
  auto t0 = std::chrono::steady_clock::now();
  DecodeResult cold = decodeJson(services, "api");
  auto t1 = std::chrono::steady_clock::now();
  const double coldMs = std::chrono::duration<double, std::milli>(t1 - t0).count();
  const double svcMs = timeIt(services);
  const double epsMs = timeIt(slices);
  const double mb = 1024.0 * 1024.0;
  std::printf("decode perf: 10k Services %.1f MB in %.1f ms (%.0f MB/s; cold %.1f ms)\n",
              services.size() / mb, svcMs, services.size() / mb / (svcMs / 1000), coldMs);
  std::printf("decode perf: 10k EndpointSlices / 100k endpoints %.1f MB in %.1f ms (%.0f MB/s)\n",
              slices.size() / mb, epsMs, slices.size() / mb / (epsMs / 1000));
  std::printf("decode perf: total %.1f ms\n", svcMs + epsMs);
  // Both on a fresh thread: its parser starts empty, as on a source's first LIST.
  double freshMs = 0;
  std::thread([&] {
    auto a = std::chrono::steady_clock::now();
    DecodeResult s1 = decodeJson(services, "api");
    DecodeResult s2 = decodeJson(slices, "api");
    auto b = std::chrono::steady_clock::now();
    freshMs = std::chrono::duration<double, std::milli>(b - a).count();
  }).join();
  std::printf("decode perf: total on a fresh thread %.1f ms\n", freshMs);
  CHECK(svcMs + epsMs < 150);
}

TEST_CASE("decode: labels, annotations and selector in any key order; a repeated key keeps the last",
          "[decode]") {
  const char* json = R"({"kind":"Service","apiVersion":"v1",
    "metadata":{"name":"a","namespace":"x","labels":{"z":"1","a":"2","m":"3","a":"4"},
                "annotations":{"y/b":"1","x/a":"2","y/b":"3"}},
    "spec":{"selector":{"tier":"web","app":"shop","tier":"api"},"ports":[{"port":80}]}})";
  DecodeResult r = decodeJson(json, "api");
  REQUIRE(r.errors.empty());
  REQUIRE(r.objects.size() == 1);
  const auto& s = std::get<Service>(r.objects[0]);
  CHECK(s.meta.labels == StringMap{{"a", "4"}, {"m", "3"}, {"z", "1"}});
  CHECK(s.meta.annotations == StringMap{{"x/a", "2"}, {"y/b", "3"}});
  CHECK(s.selector == StringMap{{"app", "shop"}, {"tier", "api"}});
  std::string keys;
  for (const auto& [k, v] : s.meta.labels) {
    keys += k;
  }
  CHECK(keys == "amz");
}
