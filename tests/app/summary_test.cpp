#include "app/summary.h"

#include <catch2/catch.hpp>

#include <memory>
#include <string>

namespace k8s = kdp::k8s;
using kdp::Cidr;
using kdp::IpAddr;

namespace {

template <class T>
void put(k8s::Snapshot& snap, std::string key, T object) {
  snap.of<T>().set(std::move(key), std::make_shared<const T>(std::move(object)));
}

k8s::ObjectMeta meta(std::string ns, std::string name) {
  k8s::ObjectMeta m;
  m.namespace_ = std::move(ns);
  m.name = std::move(name);
  return m;
}

k8s::Endpoint endpoint(const char* ip, bool ready, bool terminating = false) {
  k8s::Endpoint e;
  e.addresses.push_back(*IpAddr::parse(ip));
  e.conditions.ready = ready;
  e.conditions.serving = ready || terminating;
  e.conditions.terminating = terminating;
  return e;
}

k8s::Snapshot buildSnapshot() {
  k8s::Snapshot snap;
  snap.version = 4;
  snap.synced = true;
  snap.namespaces = std::make_shared<const std::set<std::string, std::less<>>>(
      std::set<std::string, std::less<>>{"default", "shop"});

  put(snap, "shop", k8s::Namespace{meta("", "shop")});

  k8s::Service web;
  web.meta = meta("shop", "web");
  web.clusterIPs = {*IpAddr::parse("10.96.0.10")};
  web.ports = {{"http", k8s::Protocol::TCP, 80, {8080, ""}, 0, ""},
               {"https", k8s::Protocol::TCP, 443, {0, "https"}, 0, ""}};
  put(snap, "shop/web", web);

  k8s::Service lb;
  lb.meta = meta("shop", "edge");
  lb.type = k8s::ServiceType::LoadBalancer;
  lb.clusterIPs = {*IpAddr::parse("10.96.0.11"), *IpAddr::parse("fd00::11")};
  lb.ports = {{"", k8s::Protocol::UDP, 53, {53, ""}, 30053, ""}};
  lb.externalIPs = {*IpAddr::parse("192.0.2.1")};
  lb.loadBalancerIngress = {{IpAddr::parse("203.0.113.10"), "", k8s::LoadBalancerIpMode::VIP}};
  lb.loadBalancerSourceRanges = {*Cidr::parse("198.51.100.0/24")};
  lb.externalTrafficPolicy = k8s::TrafficPolicy::Local;
  lb.healthCheckNodePort = 32000;
  lb.sessionAffinity = k8s::SessionAffinity::ClientIP;
  put(snap, "shop/edge", lb);

  k8s::Service db;
  db.meta = meta("shop", "db");
  db.headless = true;
  db.ports = {{"pg", k8s::Protocol::TCP, 5432, {5432, ""}, 0, ""}};
  put(snap, "shop/db", db);

  k8s::Service ext;
  ext.meta = meta("default", "payments");
  ext.type = k8s::ServiceType::ExternalName;
  ext.externalName = "api.payments.example.net";
  put(snap, "default/payments", ext);

  k8s::EndpointSlice s1;
  s1.meta = meta("shop", "web-abc");
  s1.serviceName = "web";
  s1.endpoints = {endpoint("10.244.1.11", true), endpoint("10.244.2.12", true)};
  s1.ports = {{"http", k8s::Protocol::TCP, 8080, ""}, {"https", k8s::Protocol::TCP, 8443, ""}};
  put(snap, "shop/web/web-abc", s1);
  k8s::EndpointSlice s2 = s1;
  s2.meta.name = "web-def";
  s2.endpoints = {endpoint("10.244.1.13", false, true)};
  put(snap, "shop/web/web-def", s2);
  k8s::EndpointSlice orphan;
  orphan.meta = meta("shop", "manual");
  orphan.addressType = k8s::AddressType::IPv6;
  orphan.endpoints = {endpoint("fd00::5", true)};
  put(snap, "shop//manual", orphan);

  k8s::Ingress ing;
  ing.meta = meta("shop", "shop");
  ing.ingressClassName = "kube-dataplane";
  ing.tls = {{{"shop.example.com", "*.shop.example.com"}, "shop-tls"}};
  k8s::IngressBackend webHttp{"web", {0, "http"}, false, "", "", ""};
  k8s::IngressBackend api{"api", {9090, ""}, false, "", "", ""};
  ing.rules = {{"shop.example.com",
                {{"/", k8s::PathType::Prefix, webHttp}, {"/api", k8s::PathType::Exact, api}}},
               {"", {{"/static", k8s::PathType::ImplementationSpecific, webHttp}}}};
  ing.defaultBackend = k8s::IngressBackend{"", {}, true, "k8s.example.com", "StorageBucket", "b"};
  put(snap, "shop/shop", ing);

  k8s::IngressClass cls;
  cls.meta = meta("", "kube-dataplane");
  cls.controller = "kube-dataplane.io/ingress";
  cls.isDefault = true;
  put(snap, "kube-dataplane", cls);

  k8s::Secret secret;
  secret.meta = meta("shop", "shop-tls");
  secret.type = "kubernetes.io/tls";
  secret.data = {{"tls.crt", "CERT"}, {"tls.key", "SECRET-KEY-BYTES"}};
  put(snap, "shop/shop-tls", secret);

  k8s::Pod pod;
  pod.meta = meta("shop", "web-0");
  pod.nodeName = "node-a";
  pod.phase = "Running";
  pod.podIPs = {*IpAddr::parse("10.244.1.11")};
  pod.ready = true;
  put(snap, "shop/web-0", pod);

  k8s::Node node;
  node.meta = meta("", "node-a");
  node.addresses = {{"InternalIP", "192.168.1.10"}, {"Hostname", "node-a"}};
  put(snap, "node-a", node);
  return snap;
}

}  // namespace

TEST_CASE("summary: counts, then one line per object", "[summary]") {
  const auto text = kdp::app::summarize(buildSnapshot());
  CHECK(text ==
        "store version 4, synced\n"
        "objects: Namespace=1 Service=4 EndpointSlice=3 Ingress=1 IngressClass=1 Secret=1 Pod=1 "
        "Node=1 total=13\n"
        "namespaces: default shop\n"
        "\n"
        "Namespace shop\n"
        "Service default/payments ExternalName -> api.payments.example.net\n"
        "Service shop/db ClusterIP None ports=pg:5432/TCP->5432 endpoints=0/0 ready\n"
        "Service shop/edge LoadBalancer 10.96.0.11,fd00::11 ports=53/UDP->53 nodePorts=30053 "
        "externalIPs=192.0.2.1 lb=203.0.113.10 sourceRanges=198.51.100.0/24 "
        "externalTrafficPolicy=Local healthCheckNodePort=32000 sessionAffinity=ClientIP/10800s "
        "endpoints=0/0 ready\n"
        "Service shop/web ClusterIP 10.96.0.10 ports=http:80/TCP->8080,https:443/TCP->https "
        "endpoints=2/3 ready\n"
        "EndpointSlices shop/web slices=2 endpoints=3 ready=2 terminating=1 addressType=IPv4 "
        "ports=http:8080/TCP,https:8443/TCP\n"
        "EndpointSlice shop/manual service=- slices=1 endpoints=1 ready=1 addressType=IPv6\n"
        "Ingress shop/shop class=kube-dataplane\n"
        "  tls shop.example.com,*.shop.example.com secret=shop-tls\n"
        "  shop.example.com/ Prefix -> web:http\n"
        "  shop.example.com/api Exact -> api:9090\n"
        "  */static ImplementationSpecific -> web:http\n"
        "  default -> resource:k8s.example.com/StorageBucket/b\n"
        "IngressClass kube-dataplane controller=kube-dataplane.io/ingress default\n"
        "Secret shop/shop-tls kubernetes.io/tls keys=tls.crt,tls.key\n"
        "Pod shop/web-0 node=node-a ips=10.244.1.11 phase=Running ready\n"
        "Node node-a InternalIP=192.168.1.10 Hostname=node-a\n");
  CHECK(text.find("SECRET-KEY-BYTES") == std::string::npos);
}

TEST_CASE("summary: an empty snapshot", "[summary]") {
  CHECK(kdp::app::summarize(k8s::Snapshot{}) ==
        "store version 0\n"
        "objects: Namespace=0 Service=0 EndpointSlice=0 Ingress=0 IngressClass=0 Secret=0 Pod=0 "
        "Node=0 total=0\n"
        "namespaces: -\n"
        "\n");
}
