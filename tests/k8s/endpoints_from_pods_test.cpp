#include "k8s/endpoints_from_pods.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <random>
#include <regex>
#include <string>
#include <vector>

using namespace kdp::k8s;
using kdp::IpAddr;
using kdp::IpFamily;

namespace {

IpAddr ip(const char* text) {
  auto a = IpAddr::parse(text);
  REQUIRE(a);
  return *a;
}

Service makeService(std::string name, StringMap selector, std::string ns = "default") {
  Service s;
  s.meta.name = std::move(name);
  s.meta.namespace_ = std::move(ns);
  s.hasSelector = true;
  s.selector = std::move(selector);
  ServicePort p;
  p.name = "http";
  p.port = 80;
  p.targetPort.number = 8080;
  s.ports.push_back(p);
  return s;
}

Pod makePod(std::string name, StringMap labels, std::vector<const char*> ips,
            std::string ns = "default") {
  Pod p;
  p.meta.name = std::move(name);
  p.meta.namespace_ = std::move(ns);
  p.meta.labels = std::move(labels);
  for (const char* a : ips) {
    p.podIPs.push_back(ip(a));
  }
  p.phase = "Running";
  p.ready = true;
  p.nodeName = "node-a";
  return p;
}

template <class T>
std::vector<const T*> ptrs(const std::vector<T>& v) {
  std::vector<const T*> out;
  for (const T& x : v) {
    out.push_back(&x);
  }
  return out;
}

std::vector<EndpointSlice> derive(const std::vector<Service>& services,
                                  const std::vector<Pod>& pods,
                                  const std::vector<EndpointSlice>& slices = {}) {
  return endpointSlicesFromPods(ptrs(services), ptrs(pods), ptrs(slices));
}

std::vector<std::string> podNames(const EndpointSlice& slice) {
  std::vector<std::string> out;
  for (const Endpoint& e : slice.endpoints) {
    out.push_back(e.targetPodName.str());
  }
  return out;
}

const Endpoint& endpointOf(const EndpointSlice& slice, const std::string& pod) {
  auto it = std::find_if(slice.endpoints.begin(), slice.endpoints.end(),
                         [&](const Endpoint& e) { return e.targetPodName == pod; });
  REQUIRE(it != slice.endpoints.end());
  return *it;
}

}  // namespace

TEST_CASE("endpoints from pods: selected, addressed, non-terminal pods in the namespace", "[pods]") {
  std::vector<Service> services{makeService("web", {{"app", "web"}})};
  services[0].meta.labels = {{"app", "web"}, {"team", "a"}, {std::string(kServiceNameLabel), "x"}};
  std::vector<Pod> pods{
      makePod("web-b", {{"app", "web"}, {"pod-template-hash", "1"}}, {"10.0.0.2"}),
      makePod("web-a", {{"app", "web"}}, {"10.0.0.1"}),
      makePod("db-0", {{"app", "db"}}, {"10.0.0.3"}),
      makePod("web-other-ns", {{"app", "web"}}, {"10.0.1.1"}, "other"),
      makePod("web-no-ip", {{"app", "web"}}, {}),
      makePod("web-done", {{"app", "web"}}, {"10.0.0.4"}),
      makePod("web-failed", {{"app", "web"}}, {"10.0.0.5"}),
      makePod("web-unlabelled", {}, {"10.0.0.6"}),
  };
  pods[5].phase = "Succeeded";
  pods[6].phase = "Failed";

  auto slices = derive(services, pods);
  REQUIRE(slices.size() == 1);
  const EndpointSlice& s = slices[0];
  CHECK(s.meta.namespace_ == "default");
  CHECK(s.serviceName == "web");
  CHECK(std::regex_match(s.meta.name, std::regex("web-[0-9a-f]{8}")));
  CHECK(s.addressType == AddressType::IPv4);
  // The service-name label is the slice's serviceName (not kept twice), the Service's own "x" not copied.
  CHECK(s.meta.labels.count(kServiceNameLabel) == 0);
  CHECK(s.meta.labels.at(std::string(kManagedByLabel)) == "kube-dataplane.io/manifests");
  CHECK(s.meta.labels.at("team") == "a");  // the Service's labels, as the controller copies
  CHECK(s.meta.labels.count(std::string(kHeadlessLabel)) == 0);
  REQUIRE(s.ports.size() == 1);
  CHECK(s.ports[0] == EndpointPort{"http", Protocol::TCP, 8080, ""});
  CHECK(podNames(s) == std::vector<std::string>{"web-a", "web-b"});
  const Endpoint& a = endpointOf(s, "web-a");
  CHECK(a.addresses == std::vector<IpAddr>{ip("10.0.0.1")});
  CHECK(a.nodeName == "node-a");
  CHECK(a.details().zone.empty());
  CHECK(a.hostname.empty());
  CHECK(a.conditions == EndpointConditions{true, true, false});
}

TEST_CASE("endpoints from pods: which Services get slices", "[pods]") {
  std::vector<Pod> pods{makePod("p", {{"app", "x"}}, {"10.0.0.1"})};

  SECTION("no selector, empty selector, ExternalName: none") {
    std::vector<Service> services{makeService("a", {}), makeService("b", {}),
                                  makeService("c", {{"app", "x"}})};
    services[0].hasSelector = false;
    services[1].hasSelector = true;
    services[2].type = ServiceType::ExternalName;
    services[2].externalName = "example.com";
    CHECK(derive(services, pods).empty());
  }
  SECTION("a Service whose slices the directory lists keeps them; others still get theirs") {
    std::vector<Service> services{makeService("a", {{"app", "x"}}), makeService("b", {{"app", "x"}})};
    EndpointSlice listed;
    listed.meta.name = "a-manual";
    listed.meta.namespace_ = "default";
    listed.serviceName = "a";
    std::vector<EndpointSlice> slices{listed};
    auto out = derive(services, pods, slices);
    REQUIRE(out.size() == 1);
    CHECK(out[0].serviceName == "b");
    // The same-named Service in another namespace is not covered by it.
    listed.meta.namespace_ = "other";
    CHECK(derive(services, pods, {listed}).size() == 2);
  }
  SECTION("no matching pods: no slice (no placeholder)") {
    std::vector<Service> services{makeService("a", {{"app", "nothing"}})};
    CHECK(derive(services, pods).empty());
  }
}

TEST_CASE("endpoints from pods: ready, serving and terminating", "[pods]") {
  std::vector<Service> services{makeService("web", {{"app", "web"}})};
  std::vector<Pod> pods{
      makePod("ready", {{"app", "web"}}, {"10.0.0.1"}),
      makePod("not-ready", {{"app", "web"}}, {"10.0.0.2"}),
      makePod("running-no-condition", {{"app", "web"}}, {"10.0.0.3"}),
      makePod("no-status", {{"app", "web"}}, {"10.0.0.4"}),
      makePod("pending-no-condition", {{"app", "web"}}, {"10.0.0.5"}),
      makePod("deleting", {{"app", "web"}}, {"10.0.0.6"}),
      makePod("deleting-not-ready", {{"app", "web"}}, {"10.0.0.7"}),
  };
  pods[1].ready = false;
  pods[2].ready.reset();
  pods[3].ready.reset();
  pods[3].phase.clear();
  pods[4].ready.reset();
  pods[4].phase = "Pending";
  pods[5].meta.deleting = true;
  pods[6].meta.deleting = true;
  pods[6].ready = false;

  const bool publish = GENERATE(false, true);
  CAPTURE(publish);
  services[0].publishNotReadyAddresses = publish;
  auto slices = derive(services, pods);
  REQUIRE(slices.size() == 1);
  const EndpointSlice& s = slices[0];
  REQUIRE(s.endpoints.size() == pods.size());

  struct Want {
    const char* pod;
    bool ready, serving, terminating;
  };
  for (const Want& w : {Want{"ready", true, true, false}, Want{"not-ready", false, false, false},
                        Want{"running-no-condition", true, true, false},
                        Want{"no-status", true, true, false},
                        Want{"pending-no-condition", false, false, false},
                        Want{"deleting", false, true, true},
                        Want{"deleting-not-ready", false, false, true}}) {
    CAPTURE(w.pod);
    const Endpoint& e = endpointOf(s, w.pod);
    CHECK(e.conditions.ready == (publish || w.ready));
    CHECK(e.conditions.serving == w.serving);
    CHECK(e.conditions.terminating == w.terminating);
  }
}

TEST_CASE("endpoints from pods: named targetPorts resolve per pod, one slice per port set",
          "[pods]") {
  Service svc = makeService("web", {{"app", "web"}});
  svc.ports.clear();
  ServicePort http;
  http.name = "http";
  http.port = 80;
  http.targetPort.name = "web";
  http.appProtocol = "http";
  ServicePort dns;
  dns.name = "dns";
  dns.protocol = Protocol::UDP;
  dns.port = 53;
  dns.targetPort.number = 5353;
  svc.ports = {http, dns};
  std::vector<Service> services{svc};

  std::vector<Pod> pods{
      makePod("a", {{"app", "web"}}, {"10.0.0.1"}),
      makePod("b", {{"app", "web"}}, {"10.0.0.2"}),
      makePod("c", {{"app", "web"}}, {"10.0.0.3"}),
      makePod("d", {{"app", "web"}}, {"10.0.0.4"}),
  };
  pods[0].ports = {{"metrics", 9100, Protocol::TCP}, {"web", 8080, Protocol::TCP}};
  pods[1].ports = {{"web", 9090, Protocol::TCP}};
  pods[2].ports = {{"web", 8080, Protocol::UDP}};  // wrong protocol: no TCP port named web
  pods[3].ports = {{"web", 8080, Protocol::TCP}};

  auto slices = derive(services, pods);
  REQUIRE(slices.size() == 3);
  auto byFirstPort = [&](std::optional<std::int32_t> port) -> const EndpointSlice& {
    auto it = std::find_if(slices.begin(), slices.end(), [&](const EndpointSlice& s) {
      return s.ports.size() == 2 && s.ports[0].port == port;
    });
    REQUIRE(it != slices.end());
    return *it;
  };
  const EndpointSlice& s8080 = byFirstPort(8080);
  CHECK(podNames(s8080) == std::vector<std::string>{"a", "d"});
  CHECK(s8080.ports[0] == EndpointPort{"http", Protocol::TCP, 8080, "http"});
  CHECK(s8080.ports[1] == EndpointPort{"dns", Protocol::UDP, 5353, ""});
  CHECK(podNames(byFirstPort(9090)) == std::vector<std::string>{"b"});
  auto lacking = std::find_if(slices.begin(), slices.end(),
                              [](const EndpointSlice& s) { return s.ports.size() == 1; });
  REQUIRE(lacking != slices.end());
  CHECK(podNames(*lacking) == std::vector<std::string>{"c"});
  CHECK(lacking->ports[0].name == "dns");

  std::vector<std::string> names;
  for (const auto& s : slices) {
    names.push_back(s.meta.name);
  }
  CHECK(std::is_sorted(names.begin(), names.end()));
  CHECK(std::adjacent_find(names.begin(), names.end()) == names.end());
}

TEST_CASE("endpoints from pods: one slice per address family", "[pods]") {
  std::vector<Service> services{makeService("web", {{"app", "web"}})};
  std::vector<Pod> pods{makePod("dual", {{"app", "web"}}, {"10.0.0.1", "fd00::1"}),
                        makePod("v6", {{"app", "web"}}, {"fd00::2"})};

  auto countOf = [](const std::vector<EndpointSlice>& slices, AddressType t) {
    return std::count_if(slices.begin(), slices.end(),
                         [&](const EndpointSlice& s) { return s.addressType == t; });
  };
  SECTION("no families (no cluster IP allocated): both") {
    auto slices = derive(services, pods);
    REQUIRE(slices.size() == 2);
    CHECK(countOf(slices, AddressType::IPv4) == 1);
    CHECK(countOf(slices, AddressType::IPv6) == 1);
    for (const auto& s : slices) {
      if (s.addressType == AddressType::IPv6) {
        CHECK(podNames(s) == std::vector<std::string>{"dual", "v6"});
        CHECK(endpointOf(s, "dual").addresses == std::vector<IpAddr>{ip("fd00::1")});
      } else {
        CHECK(podNames(s) == std::vector<std::string>{"dual"});
        CHECK(endpointOf(s, "dual").addresses == std::vector<IpAddr>{ip("10.0.0.1")});
      }
    }
  }
  SECTION("the Service's families only") {
    services[0].ipFamilies = {IpFamily::V4};
    auto slices = derive(services, pods);
    REQUIRE(slices.size() == 1);
    CHECK(slices[0].addressType == AddressType::IPv4);
    services[0].ipFamilies = {IpFamily::V6, IpFamily::V4};
    CHECK(derive(services, pods).size() == 2);
  }
}

TEST_CASE("endpoints from pods: hostname, node, hostNetwork, headless label", "[pods]") {
  std::vector<Service> services{makeService("db", {{"app", "db"}})};
  services[0].headless = true;
  std::vector<Pod> pods{makePod("db-0", {{"app", "db"}}, {"10.0.0.1"}),
                        makePod("db-1", {{"app", "db"}}, {"10.0.0.2"}),
                        makePod("db-host", {{"app", "db"}}, {"192.168.1.10"})};
  pods[0].hostname = "db-0";
  pods[0].subdomain = "db";
  pods[1].hostname = "db-1";
  pods[1].subdomain = "other";
  pods[1].nodeName = "node-b";
  pods[2].hostNetwork = true;  // its pod IP is the node's: included, as the controller does
  auto slices = derive(services, pods);
  REQUIRE(slices.size() == 1);
  const EndpointSlice& s = slices[0];
  CHECK(s.meta.labels.count(std::string(kHeadlessLabel)) == 1);
  CHECK(endpointOf(s, "db-0").hostname == "db-0");
  CHECK(endpointOf(s, "db-1").hostname.empty());
  CHECK(endpointOf(s, "db-1").nodeName == "node-b");
  CHECK(endpointOf(s, "db-host").addresses == std::vector<IpAddr>{ip("192.168.1.10")});
}

TEST_CASE("endpoints from pods: deterministic, names stable under pod churn", "[pods]") {
  std::vector<Service> services{makeService("web", {{"app", "web"}}),
                                makeService("api", {{"app", "api"}}),
                                makeService("web", {{"app", "web"}}, "shop")};
  std::vector<Pod> pods;
  for (int i = 0; i < 20; ++i) {
    const std::string n = std::to_string(i);
    pods.push_back(makePod("web-" + n, {{"app", "web"}}, {"10.0.0.1"}));
    pods.push_back(makePod("api-" + n, {{"app", "api"}}, {"10.0.1.1"}));
    pods.push_back(makePod("web-" + n, {{"app", "web"}}, {"10.0.2.1"}, "shop"));
  }
  auto first = derive(services, pods);
  REQUIRE(first.size() == 3);
  CHECK(first[0].serviceName == "api");
  CHECK(first[1].meta.namespace_ == "default");
  CHECK(first[2].meta.namespace_ == "shop");

  std::mt19937 rng(42);
  auto shuffledPods = pods;
  auto shuffledServices = services;
  std::shuffle(shuffledPods.begin(), shuffledPods.end(), rng);
  std::shuffle(shuffledServices.begin(), shuffledServices.end(), rng);
  CHECK(derive(shuffledServices, shuffledPods) == first);

  pods.pop_back();
  pods.push_back(makePod("web-new", {{"app", "web"}}, {"10.0.0.9"}));
  auto second = derive(services, pods);
  REQUIRE(second.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(second[i].meta.name == first[i].meta.name);
  }
  CHECK(second[1] != first[1]);
  CHECK(second[2] != first[2]);
}

TEST_CASE("endpoints from pods: at most 100 endpoints per slice, sorted by pod name", "[pods]") {
  std::vector<Service> services{makeService("big", {{"app", "big"}})};
  std::vector<Pod> pods;
  for (int i = 249; i >= 0; --i) {
    char name[16];
    std::snprintf(name, sizeof name, "big-%03d", i);
    pods.push_back(makePod(name, {{"app", "big"}}, {"10.1.0.1"}));
  }
  auto slices = derive(services, pods);
  REQUIRE(slices.size() == 3);
  std::vector<std::size_t> sizes;
  std::vector<std::string> all;
  for (const auto& s : slices) {
    sizes.push_back(s.endpoints.size());
    auto names = podNames(s);
    CHECK(std::is_sorted(names.begin(), names.end()));
    all.insert(all.end(), names.begin(), names.end());
  }
  std::sort(sizes.begin(), sizes.end());
  CHECK(sizes == std::vector<std::size_t>{50, 100, 100});
  std::sort(all.begin(), all.end());
  CHECK(std::adjacent_find(all.begin(), all.end()) == all.end());
  CHECK(all.size() == 250);
}

TEST_CASE("endpoints from pods: a name taken by a listed slice is not reused", "[pods]") {
  std::vector<Service> services{makeService("web", {{"app", "web"}})};
  std::vector<Pod> pods{makePod("p", {{"app", "web"}}, {"10.0.0.1"})};
  auto plain = derive(services, pods);
  REQUIRE(plain.size() == 1);

  EndpointSlice squatter;
  squatter.meta.name = plain[0].meta.name;
  squatter.meta.namespace_ = "default";
  squatter.serviceName = "other";
  auto out = derive(services, pods, {squatter});
  REQUIRE(out.size() == 1);
  CHECK(out[0].meta.name != plain[0].meta.name);
  CHECK(std::regex_match(out[0].meta.name, std::regex("web-[0-9a-f]{8}")));
  CHECK(out[0].endpoints == plain[0].endpoints);
}
