// `kube-dataplane proxy explain`: the command line, and the one-shot run on a manifests directory.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "app/cli.h"
#include "k8s/manifests_source.h"
#include "proxy/one_shot.h"

using kdp::IpAddr;
using kdp::app::CliExit;
using kdp::app::Options;
using kdp::proxy::ProxyMode;

namespace {

std::variant<Options, CliExit> parseArgs(std::vector<std::string> args) {
  args.insert(args.begin(), "kube-dataplane");
  std::vector<const char*> argv;
  for (const auto& a : args) {
    argv.push_back(a.c_str());
  }
  return kdp::app::parseCommandLine(static_cast<int>(argv.size()), argv.data());
}

std::string usageError(std::vector<std::string> args) {
  auto r = parseArgs(std::move(args));
  REQUIRE(std::holds_alternative<CliExit>(r));
  CHECK(std::get<CliExit>(r).code == 2);
  return std::get<CliExit>(r).err;
}

const std::vector<std::string> kNode = {"--node-name", "node-a", "--node-ip", "192.0.2.10"};

std::vector<std::string> explainArgs(std::vector<std::string> more) {
  std::vector<std::string> a = {"proxy", "explain"};
  a.insert(a.end(), kNode.begin(), kNode.end());
  a.insert(a.end(), more.begin(), more.end());
  return a;
}

}  // namespace

TEST_CASE("cli: proxy explain takes --src, --dst and --proto, proxy flags around it", "[proxy]") {
  auto r = parseArgs(explainArgs({"--src", "10.244.1.5", "--dst", "10.96.0.53:53", "--proto", "udp"}));
  REQUIRE(std::holds_alternative<Options>(r));
  const auto& p = std::get<Options>(r).proxy;
  CHECK(p.mode == ProxyMode::Explain);
  CHECK(p.explain.src == *IpAddr::parse("10.244.1.5"));
  CHECK(p.explain.dst == *IpAddr::parse("10.96.0.53"));
  CHECK(p.explain.port == 53);
  CHECK(p.explain.proto == 17);
  CHECK(p.nodeName == "node-a");

  // Proxy flags before the subcommand, IPv6, tcp by default.
  r = parseArgs({"proxy", "--node-name", "n", "--node-ip", "fd00::1", "explain", "--src",
                 "fd00::5", "--dst", "[fd00:96::1]:443"});
  REQUIRE(std::holds_alternative<Options>(r));
  CHECK(std::get<Options>(r).proxy.explain.proto == 6);
  CHECK(std::get<Options>(r).proxy.explain.port == 443);

  CHECK(usageError(explainArgs({"--dst", "10.96.0.1:80"})) == "kube-dataplane: --src is required\n");
  CHECK(usageError(explainArgs({"--src", "10.0.0.1"})) == "kube-dataplane: --dst is required\n");
  CHECK(usageError(explainArgs({"--src", "10.0.0.1", "--dst", "10.96.0.1"})).find(
            "--dst: \"10.96.0.1\" is not ADDR:PORT") != std::string::npos);
  CHECK(usageError(explainArgs({"--src", "10.0.0.1", "--dst", "10.96.0.1:80", "--proto", "icmp"})) ==
        "kube-dataplane: --proto: \"icmp\" is not one of tcp|udp|sctp\n");
  CHECK(usageError(explainArgs({"--src", "fd00::1", "--dst", "10.96.0.1:80"})).find(
            "different address families") != std::string::npos);
  CHECK(usageError(explainArgs({"--src", "10.0.0.1", "--dst", "10.96.0.1:80", "--once"})) ==
        "kube-dataplane: --once: cannot be combined with explain\n");
}

TEST_CASE("proxy explain: loads the manifests once and prints the path", "[proxy]") {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("kdp-explain-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "svc.yaml") << R"(apiVersion: v1
kind: Service
metadata: {name: dns, namespace: kube-system}
spec: {clusterIP: 10.96.0.10, ports: [{name: dns, port: 53, protocol: UDP, targetPort: 5353}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: dns-1, namespace: kube-system, labels: {kubernetes.io/service-name: dns}}
addressType: IPv4
ports: [{name: dns, protocol: UDP, port: 5353}]
endpoints:
- {addresses: [10.244.1.7], nodeName: node-a}
)";
  auto r = parseArgs(explainArgs({"--manifests", dir.string(), "--src", "10.244.1.5", "--dst",
                                  "10.96.0.10:53", "--proto", "udp"}));
  REQUIRE(std::holds_alternative<Options>(r));
  const auto& o = std::get<Options>(r);
  // Capture stdout in a file for the run.
  const auto outFile = dir / "out.txt";
  std::fflush(stdout);
  const int saved = ::dup(1);
  std::FILE* f = std::fopen(outFile.c_str(), "w");
  REQUIRE(f != nullptr);
  ::dup2(::fileno(f), 1);
  const int rc =
      kdp::proxy::runOneShot(o.proxy, kdp::k8s::makeManifestsSource(o.source.manifestsDir));
  std::fflush(stdout);
  ::dup2(saved, 1);
  ::close(saved);
  std::fclose(f);
  std::ifstream in(outFile);
  const std::string out((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::filesystem::remove_all(dir);
  CHECK(rc == 0);
  CHECK(out.find("connection 10.244.1.5 -> 10.96.0.10:53/udp") != std::string::npos);
  CHECK(out.find("(Service kube-system/dns:dns)") != std::string::npos);
  CHECK(out.find("slot 0: 10.244.1.7:5353") != std::string::npos);
  CHECK(out.find("=> DNAT, source kept") != std::string::npos);
}
