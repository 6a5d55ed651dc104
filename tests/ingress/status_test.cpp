#include "ingress/status.h"

#include <catch2/catch.hpp>

#include <string>

#include "k8s/store.h"
#include "support/snapshot.h"

using namespace kdp;
using namespace kdp::ingress;
using namespace std::chrono_literals;

namespace {

k8s::LoadBalancerIngress ipEntry(const char* text) {
  k8s::LoadBalancerIngress e;
  e.ip = IpAddr::parse(text);
  return e;
}

constexpr const char* kIngresses = R"(
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: ours, namespace: web}
spec:
  ingressClassName: kube-dataplane
  defaultBackend: {service: {name: s, port: {number: 80}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: done, namespace: web}
spec:
  ingressClassName: kube-dataplane
  defaultBackend: {service: {name: s, port: {number: 80}}}
status:
  loadBalancer:
    ingress: [{ip: 203.0.113.7}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: theirs, namespace: web}
spec:
  ingressClassName: nginx
  defaultBackend: {service: {name: s, port: {number: 80}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: legacy
  namespace: web
  annotations: {kubernetes.io/ingress.class: kube-dataplane}
spec:
  defaultBackend: {service: {name: s, port: {number: 80}}}
)";

}  // namespace

TEST_CASE("ingress status: publish addresses parse as IP or hostname", "[ingress][status]") {
  CHECK(parsePublishAddress("203.0.113.1")->ip == IpAddr::parse("203.0.113.1"));
  CHECK(parsePublishAddress("2001:db8::1")->ip == IpAddr::parse("2001:db8::1"));
  CHECK(parsePublishAddress("lb.example.com")->hostname == "lb.example.com");
  CHECK_FALSE(parsePublishAddress("lb.example.com")->ip);
  for (const char* bad : {"", "1.2.3.4/32", "Upper.example", "a..b", "-a.b", "a.b.", "a\"b",
                          "a_b"}) {
    INFO(bad);
    CHECK_FALSE(parsePublishAddress(bad));
  }
}

TEST_CASE("ingress status: desired only for our class, updates only where it differs",
          "[ingress][status]") {
  const auto snapshot = test::snapshotOf(kIngresses);
  const LoadBalancerStatus published{ipEntry("203.0.113.7")};
  const auto* ours = snapshot->of<k8s::Ingress>().get(
      k8s::storeKey(k8s::Kind::Ingress, "web", "ours"));
  const auto* theirs = snapshot->of<k8s::Ingress>().get(
      k8s::storeKey(k8s::Kind::Ingress, "web", "theirs"));
  REQUIRE(ours);
  REQUIRE(theirs);
  CHECK(desiredStatus(*ours, *snapshot, "kube-dataplane", published) == published);
  CHECK_FALSE(desiredStatus(*theirs, *snapshot, "kube-dataplane", published));
  CHECK(desiredStatus(*theirs, *snapshot, "nginx", published) == published);

  auto updates = statusUpdates(*snapshot, "kube-dataplane", published);
  REQUIRE(updates.size() == 2);  // "done" already carries it, "theirs" is another class's
  CHECK(updates[0].name == "legacy");
  CHECK(updates[1].name == "ours");
  CHECK(updates[1].namespace_ == "web");
  CHECK(updates[1].status == published);

  // A new address: "done" differs now too.
  CHECK(statusUpdates(*snapshot, "kube-dataplane", {ipEntry("198.51.100.1")}).size() == 3);
}

TEST_CASE("ingress status: a store change looks at the changed Ingresses, or at all",
          "[ingress][status]") {
  const auto snapshot = test::snapshotOf(kIngresses);
  const LoadBalancerStatus published{ipEntry("203.0.113.7")};
  // Only the keys given; "theirs" is not ours, "done" carries it already, absent keys skipped.
  auto updates = statusUpdates(*snapshot, {"web/done", "web/gone", "web/ours", "web/theirs"},
                               "kube-dataplane", published);
  REQUIRE(updates.size() == 1);
  CHECK(updates[0].name == "ours");
  CHECK(statusUpdates(*snapshot, std::vector<std::string>{}, "kube-dataplane", published).empty());

  k8s::Changes changes;
  changes.keys[static_cast<std::size_t>(k8s::Kind::Ingress)] = {"web/a", "web/b"};
  changes.keys[static_cast<std::size_t>(k8s::Kind::Service)] = {"ing/other"};
  auto scope = statusScope(changes, "");
  CHECK_FALSE(scope.all);
  CHECK(scope.ingressKeys == std::vector<std::string>{"web/a", "web/b"});
  CHECK_FALSE(statusScope(changes, "ing/lb").all);  // another Service
  changes.keys[static_cast<std::size_t>(k8s::Kind::Service)] = {"ing/lb", "ing/other"};
  CHECK(statusScope(changes, "ing/lb").all);        // the published Service
  CHECK_FALSE(statusScope(changes, "").all);        // --publish-address: Services do not matter
  changes.keys[static_cast<std::size_t>(k8s::Kind::Service)].clear();
  changes.keys[static_cast<std::size_t>(k8s::Kind::IngressClass)] = {"kube-dataplane"};
  CHECK(statusScope(changes, "").all);              // the default class may have moved
  CHECK(statusScope(k8s::Changes{}, "").ingressKeys.empty());
}

TEST_CASE("ingress status: a publish Service's addresses", "[ingress][status]") {
  const auto snapshot = test::snapshotOf(R"(
apiVersion: v1
kind: Service
metadata: {name: lb, namespace: ing}
spec: {type: LoadBalancer, clusterIP: 10.96.0.10, externalIPs: [192.0.2.5], ports: [{port: 80}]}
status: {loadBalancer: {ingress: [{ip: 203.0.113.9}, {hostname: lb.example.com}]}}
---
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: ing}
spec: {clusterIP: 10.96.0.11, externalIPs: [192.0.2.5, 192.0.2.6], ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: plain, namespace: ing}
spec: {clusterIP: 10.96.0.12, ports: [{port: 80}]}
)");
  auto service = [&](const char* name) {
    return *snapshot->of<k8s::Service>().get(k8s::storeKey(k8s::Kind::Service, "ing", name));
  };
  const auto lb = publishedByService(service("lb"));
  REQUIRE(lb.size() == 2);
  CHECK(lb[0].ip == IpAddr::parse("203.0.113.9"));
  CHECK(lb[1].hostname == "lb.example.com");
  CHECK(publishedByService(service("ext")) ==
        LoadBalancerStatus{ipEntry("192.0.2.5"), ipEntry("192.0.2.6")});
  CHECK(publishedByService(service("plain")) == LoadBalancerStatus{ipEntry("10.96.0.12")});
}

TEST_CASE("ingress status: JSON and the textual status replacement", "[ingress][status]") {
  k8s::LoadBalancerIngress host;
  host.hostname = "lb.example.com";
  const std::string status = statusJson({ipEntry("203.0.113.1"), host});
  CHECK(status ==
        R"({"loadBalancer":{"ingress":[{"ip":"203.0.113.1"},{"hostname":"lb.example.com"}]}})");
  CHECK(statusJson({}) == R"({"loadBalancer":{"ingress":[]}})");

  // Everything but status kept byte for byte, including what we do not decode; strings with
  // braces, quotes and a "status" key inside metadata are not mistaken for the member.
  const std::string object =
      R"({"kind":"Ingress","metadata":{"name":"a","finalizers":["x/y"],"annotations":)"
      R"({"status":"}{\"status\":1"}},"spec":{"rules":[]},"status":{"loadBalancer":{}}})";
  CHECK(*replaceStatusMember(object, "S") ==
        R"({"kind":"Ingress","metadata":{"name":"a","finalizers":["x/y"],"annotations":)"
        R"({"status":"}{\"status\":1"}},"spec":{"rules":[]},"status":S})");
  CHECK(*replaceStatusMember(R"( { "a" : 1 , "status" : null } )", "S") ==
        R"( { "a" : 1 , "status" : S } )");
  CHECK(*replaceStatusMember(R"({"a":true})", "S") == R"({"a":true,"status":S})");
  CHECK(*replaceStatusMember("{}", "S") == R"({"status":S})");
  CHECK(*replaceStatusMember(R"({"status":{"x":[1,"]"]} ,"b":2})", "S") ==
        R"({"status":S ,"b":2})");
  CHECK_FALSE(replaceStatusMember(R"({"a":1} x)", "S"));
  CHECK_FALSE(replaceStatusMember("[1]", "S"));
  CHECK_FALSE(replaceStatusMember(R"({"a":"unterminated)", "S"));
  CHECK_FALSE(replaceStatusMember(R"({"a":{)", "S"));
}

TEST_CASE("ingress status: lease decisions", "[ingress][status]") {
  const auto now = WallClock::time_point(1'800'000'000s);
  CHECK(decideLease(std::nullopt, "me", now) == LeaseAction::Create);

  LeaseRecord lease{"other", now - 10s, 15s, 3, "42"};
  CHECK(decideLease(lease, "me", now) == LeaseAction::Wait);
  CHECK(decideLease(lease, "other", now) == LeaseAction::Renew);
  lease.renewTime = now - 16s;  // expired
  CHECK(decideLease(lease, "me", now) == LeaseAction::TakeOver);
  lease.renewTime = now - 15s;  // exactly at the end: still held
  CHECK(decideLease(lease, "me", now) == LeaseAction::Wait);
  lease.holder.clear();  // released
  CHECK(decideLease(lease, "me", now) == LeaseAction::TakeOver);
  lease.holder = "other";
  lease.renewTime.reset();
  CHECK(decideLease(lease, "me", now) == LeaseAction::TakeOver);
}

TEST_CASE("ingress status: lease JSON round trip and MicroTime", "[ingress][status]") {
  const auto t = WallClock::time_point(1'800'000'000s) + 123456us;
  CHECK(formatMicroTime(t) == "2027-01-15T08:00:00.123456Z");
  CHECK(parseMicroTime("2027-01-15T08:00:00.123456Z") == t);
  CHECK(parseMicroTime("2027-01-15T08:00:00Z") == t - 123456us);
  CHECK_FALSE(parseMicroTime("2027-01-15 08:00:00Z"));
  CHECK_FALSE(parseMicroTime("2027-01-15T08:00:00.1+01:00"));

  const std::string json =
      leaseJson("kube-dataplane", "kube-dataplane-ingress-status", "pod-a", t, t, 15s, 2, "77");
  const auto lease = decodeLease(json);
  REQUIRE(lease);
  CHECK(lease->holder == "pod-a");
  CHECK(lease->renewTime == t);
  CHECK(lease->duration == 15s);
  CHECK(lease->transitions == 2);
  CHECK(lease->resourceVersion == "77");
  CHECK(json.find(R"("namespace":"kube-dataplane")") != std::string::npos);
  CHECK(leaseJson("n", "l", "me", t, t, 15s, 0, "").find("resourceVersion") == std::string::npos);
  CHECK_FALSE(decodeLease(R"({"kind":"Service"})"));
  CHECK_FALSE(decodeLease("not json"));
}
