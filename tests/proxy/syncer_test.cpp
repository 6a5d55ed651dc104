#include "proxy/syncer.h"

#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include "nft/test_netns.h"
#include "proxy/compiler.h"
#include "proxy/fixtures.h"

using namespace kdp;
using namespace kdp::proxy;

namespace {

/// Service web (ClusterIP 10.96.0.20:80) with the given endpoint IPs.
Ruleset web(std::initializer_list<const char*> ips) {
  std::string yaml = R"(
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {clusterIP: 10.96.0.20, ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: "", protocol: TCP, port: 8080}]
endpoints:
)";
  for (const char* ip : ips) {
    yaml += std::string("- {addresses: [") + ip + "]}\n";
  }
  if (ips.size() == 0) {
    yaml += "[]\n";
  }
  return compile(*kdp::test::snapshotOf(yaml), kdp::test::nodeA());
}

}  // namespace

TEST_CASE("syncer: full sync, then only element changes, endpoint counts come and go, drift",
          "[proxy][netns]") {
  if (!kdp::test::TestNetns::available()) {
    WARN("skipped: needs root, ip and nft");
    return;
  }
  kdp::test::TestNetns ns;
  auto syncer = ns.inside([] { return std::make_unique<Syncer>(); });
  auto list = [&] { return ns.exec("nft list table ip kube-dataplane"); };

  auto r = syncer->sync(web({"10.244.1.1", "10.244.1.2"}));
  REQUIRE(r.ok());
  CHECK(r->full);
  CHECK(list().find("10.244.1.2 . 8080") != std::string::npos);

  // One endpoint replaced: a few element messages, no table rewrite.
  r = syncer->sync(web({"10.244.1.1", "10.244.1.3"}));
  REQUIRE(r.ok());
  CHECK_FALSE(r->full);
  CHECK(r->messages <= 4);
  CHECK(list().find("10.244.1.2 . 8080") == std::string::npos);
  CHECK(list().find("10.244.1.3 . 8080") != std::string::npos);

  // Nothing changed: nothing sent.
  r = syncer->sync(web({"10.244.1.1", "10.244.1.3"}));
  REQUIRE(r.ok());
  CHECK(r->messages == 0);

  // A third endpoint: chain endpoints-3 and map backends-3 appear, the unused -2 ones go.
  r = syncer->sync(web({"10.244.1.1", "10.244.1.3", "10.244.1.4"}));
  REQUIRE(r.ok());
  CHECK_FALSE(r->full);
  auto text = list();
  CHECK(text.find("chain endpoints-3") != std::string::npos);
  CHECK(text.find("chain endpoints-2") == std::string::npos);
  CHECK(text.find("map backends-2") == std::string::npos);
  CHECK(text.find("10.96.0.20 . tcp . 80 : goto endpoints-3") != std::string::npos);

  // No endpoints: rejected.
  r = syncer->sync(web({}));
  INFO((r.ok() ? std::string() : r.error().message));
  REQUIRE(r.ok());
  CHECK(list().find("10.96.0.20 . tcp . 80 : goto reject-chain") != std::string::npos);

  // Someone deletes the table: drift, then a full sync brings it back.
  CHECK_FALSE(syncer->checkDrift());
  ns.exec("nft delete table ip kube-dataplane");
  CHECK(syncer->checkDrift());
  r = syncer->sync(web({"10.244.1.1"}));
  REQUIRE(r.ok());
  CHECK(r->full);
  CHECK(list().find("10.244.1.1 . 8080") != std::string::npos);
  CHECK_FALSE(syncer->checkDrift());

  // Flushed rules count as drift too.
  ns.exec("nft flush table ip kube-dataplane");
  CHECK(syncer->checkDrift());
}

TEST_CASE("syncer: cleanup removes our tables only", "[proxy][netns]") {
  if (!kdp::test::TestNetns::available()) {
    WARN("skipped: needs root, ip and nft");
    return;
  }
  kdp::test::TestNetns ns;
  ns.exec("nft add table ip other");
  auto syncer = ns.inside([] { return std::make_unique<Syncer>(); });
  REQUIRE(syncer->sync(web({"10.244.1.1"})).ok());
  auto r = ns.inside([] { return std::make_optional(cleanupTables()); });
  REQUIRE(r->ok());
  const auto tables = ns.exec("nft list tables");
  CHECK(tables.find("kube-dataplane") == std::string::npos);
  CHECK(tables.find("table ip other") != std::string::npos);
}
