#include "app/cli.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "common/version.h"

using kdp::Cidr;
using kdp::IpAddr;
using kdp::app::CliExit;
using kdp::app::Command;
using kdp::app::Options;

namespace {

std::variant<Options, CliExit> parse(std::vector<std::string> args) {
  args.insert(args.begin(), "kube-dataplane");
  std::vector<const char*> argv;
  for (const auto& a : args) {
    argv.push_back(a.c_str());
  }
  return kdp::app::parseCommandLine(static_cast<int>(argv.size()), argv.data());
}

Options ok(std::vector<std::string> args) {
  auto r = parse(std::move(args));
  if (auto* e = std::get_if<CliExit>(&r)) {
    FAIL("unexpected exit " << e->code << ": " << e->err);
  }
  return std::get<Options>(r);
}

CliExit exitOf(std::vector<std::string> args) {
  auto r = parse(std::move(args));
  REQUIRE(std::holds_alternative<CliExit>(r));
  return std::get<CliExit>(r);
}

IpAddr ip(const char* s) {
  return *IpAddr::parse(s);
}

}  // namespace

TEST_CASE("cli: proxy flags", "[cli]") {
  auto o = ok({"proxy", "--manifests", "examples", "--node-name", "node-a", "--node-ip",
               "10.0.0.1,fd00::1", "--cluster-cidr", "10.244.0.0/16,fd00:10:244::/56",
               "--service-cidr=10.96.0.0/12", "--nodeport-addresses", "10.0.0.0/8,127.0.0.0/8",
               "--masquerade-all", "--dry-run"});
  CHECK(o.command == Command::Proxy);
  CHECK(o.source.manifestsDir == "examples");
  CHECK(o.source.kubeconfig.empty());
  CHECK(o.proxy.nodeName == "node-a");
  CHECK(o.proxy.nodeIPs == std::vector<IpAddr>{ip("10.0.0.1"), ip("fd00::1")});
  CHECK(o.proxy.clusterCIDRs ==
        std::vector<Cidr>{*Cidr::parse("10.244.0.0/16"), *Cidr::parse("fd00:10:244::/56")});
  CHECK(o.proxy.serviceCIDRs == std::vector<Cidr>{*Cidr::parse("10.96.0.0/12")});
  CHECK(o.proxy.nodePortAddresses.size() == 2);
  CHECK(o.proxy.masqueradeAll);
  CHECK(o.proxy.mode == kdp::app::ProxyMode::DryRun);
  CHECK_FALSE(o.metrics);
  CHECK(o.logLevel == kdp::LogLevel::Info);
  CHECK(o.logFormat == kdp::LogFormat::Text);
}

TEST_CASE("cli: repeatable flags take several values, comma-separated or given again", "[cli]") {
  auto o = ok({"proxy", "--node-name", "n", "--node-ip", "10.0.0.1", "--node-ip", "fd00::1"});
  CHECK(o.proxy.nodeIPs == std::vector<IpAddr>{ip("10.0.0.1"), ip("fd00::1")});
  CHECK(o.proxy.mode == kdp::app::ProxyMode::Sync);

  auto d = ok({"dns", "--listen", "127.0.0.1:53,[::1]:53", "--listen", "10.0.0.1:5353",
               "--upstream", "8.8.8.8", "--upstream", "1.1.1.1:5353,[2001:db8::1]:53,fd00::53"});
  REQUIRE(d.dns.listen.size() == 3);
  CHECK(d.dns.listen[0].str() == "127.0.0.1:53");
  CHECK(d.dns.listen[1].str() == "[::1]:53");
  CHECK(d.dns.listen[2].str() == "10.0.0.1:5353");
  REQUIRE(d.dns.upstreams.size() == 4);
  CHECK(d.dns.upstreams[0].str() == "8.8.8.8:53");
  CHECK(d.dns.upstreams[1].str() == "1.1.1.1:5353");
  CHECK(d.dns.upstreams[2].str() == "[2001:db8::1]:53");
  CHECK(d.dns.upstreams[3].str() == "[fd00::53]:53");
}

TEST_CASE("cli: proxy modes", "[cli]") {
  CHECK(ok({"proxy", "--node-name", "n", "--node-ip", "10.0.0.1", "--once"}).proxy.mode ==
        kdp::app::ProxyMode::Once);
  // --cleanup needs no node.
  CHECK(ok({"proxy", "--cleanup"}).proxy.mode == kdp::app::ProxyMode::Cleanup);
}

TEST_CASE("cli: dns flags and defaults", "[cli]") {
  auto d = ok({"dns", "--listen", "[::]:53"});
  CHECK(d.command == Command::Dns);
  CHECK(d.dns.clusterDomain == "cluster.local");
  CHECK(d.dns.ttl == 30);
  CHECK(d.dns.pods == kdp::app::PodsMode::Insecure);
  CHECK(d.dns.threads == 0);
  CHECK(d.dns.cacheSize == 10000);
  CHECK_FALSE(d.dns.autopath);
  CHECK(d.dns.upstreams.empty());

  auto e = ok({"dns", "--listen", "127.0.0.1:0", "--cluster-domain", "Example.ORG.", "--ttl", "0",
               "--pods", "verified", "--threads", "4", "--cache-size", "0", "--autopath",
               "--metrics", "[::1]:9090", "--log-level", "debug", "--log-format", "json"});
  CHECK(e.dns.listen[0].port == 0);
  CHECK(e.dns.clusterDomain == "example.org");
  CHECK(e.dns.ttl == 0);
  CHECK(e.dns.pods == kdp::app::PodsMode::Verified);
  CHECK(e.dns.threads == 4);
  CHECK(e.dns.cacheSize == 0);
  CHECK(e.dns.autopath);
  REQUIRE(e.metrics);
  CHECK(e.metrics->str() == "[::1]:9090");
  CHECK(e.logLevel == kdp::LogLevel::Debug);
  CHECK(e.logFormat == kdp::LogFormat::Json);
}

TEST_CASE("cli: ingress flags and defaults", "[cli]") {
  auto i = ok({"ingress", "--http", "0.0.0.0:80", "--https", "0.0.0.0:443"});
  CHECK(i.ingress.http->str() == "0.0.0.0:80");
  CHECK(i.ingress.https->str() == "0.0.0.0:443");
  CHECK(i.ingress.ingressClass == "kube-dataplane");
  CHECK(i.ingress.accessLog.kind == kdp::app::AccessLog::Kind::Stdout);
  CHECK(i.ingress.maxBodySize == 1 << 20);
  CHECK(i.ingress.publishAddresses.empty());

  auto j = ok({"ingress", "--http", "127.0.0.1:8080", "--https", "[::1]:8443", "--ingress-class",
               "edge", "--threads", "2", "--publish-service", "ingress/edge", "--access-log",
               "/var/log/access.log", "--default-cert", "c.pem", "--default-key", "k.pem",
               "--max-body-size", "10m"});
  CHECK(j.ingress.ingressClass == "edge");
  CHECK(j.ingress.threads == 2);
  CHECK(j.ingress.publishServiceNamespace == "ingress");
  CHECK(j.ingress.publishServiceName == "edge");
  CHECK(j.ingress.accessLog ==
        kdp::app::AccessLog{kdp::app::AccessLog::Kind::File, "/var/log/access.log"});
  CHECK(j.ingress.defaultCert == "c.pem");
  CHECK(j.ingress.defaultKey == "k.pem");
  CHECK(j.ingress.maxBodySize == 10u << 20);

  auto k = ok({"ingress", "--http", "127.0.0.1:80", "--https", "127.0.0.1:443",
               "--publish-address", "203.0.113.1,2001:db8::1", "--publish-address", "lb.example.com",
               "--access-log", "off", "--max-body-size", "0"});
  REQUIRE(k.ingress.publishAddresses.size() == 3);
  CHECK(*k.ingress.publishAddresses[0].ip == ip("203.0.113.1"));
  CHECK(*k.ingress.publishAddresses[1].ip == ip("2001:db8::1"));
  CHECK(k.ingress.publishAddresses[2].hostname == "lb.example.com");
  CHECK(k.ingress.accessLog.kind == kdp::app::AccessLog::Kind::Off);
  CHECK(k.ingress.maxBodySize == 0);
  CHECK_FALSE(k.ingress.accessLog.json);
  CHECK(k.ingress.maxConnections == 50000);
  CHECK(k.ingress.loadBalance == kdp::ingress::Balance::RoundRobin);
  CHECK(k.ingress.upstreamConnectTimeout == std::chrono::seconds(5));
  CHECK(k.ingress.upstreamReadTimeout == std::chrono::seconds(60));
  CHECK(k.ingress.clientHeaderTimeout == std::chrono::seconds(20));
  CHECK(k.ingress.clientIdleTimeout == std::chrono::seconds(60));

  auto l = ok({"ingress", "--http", "127.0.0.1:80", "--https", "127.0.0.1:443",
               "--access-log-format", "json", "--max-connections", "100", "--load-balance",
               "least-request", "--upstream-connect-timeout", "2", "--upstream-read-timeout",
               "30", "--client-header-timeout", "5", "--client-idle-timeout", "15"});
  CHECK(l.ingress.accessLog.kind == kdp::app::AccessLog::Kind::Stdout);
  CHECK(l.ingress.accessLog.json);
  CHECK(l.ingress.maxConnections == 100);
  CHECK(l.ingress.loadBalance == kdp::ingress::Balance::LeastRequest);
  CHECK(l.ingress.upstreamConnectTimeout == std::chrono::seconds(2));
  CHECK(l.ingress.upstreamReadTimeout == std::chrono::seconds(30));
  CHECK(l.ingress.clientHeaderTimeout == std::chrono::seconds(5));
  CHECK(l.ingress.clientIdleTimeout == std::chrono::seconds(15));
}

TEST_CASE("cli: run takes the flags of all three, none required", "[cli]") {
  auto r = ok({"run", "--manifests", "examples", "--dry-run"});
  CHECK(r.command == Command::Run);
  CHECK(r.dryRun);
  CHECK(r.proxy.mode == kdp::app::ProxyMode::Sync);

  auto s = ok({"run", "--kubeconfig", "/etc/kube.conf", "--node-name", "n", "--node-ip",
               "10.0.0.1", "--listen", "127.0.0.1:53", "--http", "127.0.0.1:80", "--threads",
               "3", "--ingress-class", "x", "--metrics", "127.0.0.1:0"});
  CHECK(s.source.kubeconfig == "/etc/kube.conf");
  CHECK(s.proxy.nodeName == "n");
  CHECK(s.dns.listen.size() == 1);
  CHECK(s.ingress.http);
  CHECK(s.dns.threads == 3);
  CHECK(s.ingress.threads == 3);
  CHECK(s.metrics->port == 0);
  CHECK_FALSE(s.dryRun);
}

TEST_CASE("cli: --help and --version print to stdout and exit 0", "[cli]") {
  auto h = exitOf({"--help"});
  CHECK(h.code == 0);
  CHECK(h.err.empty());
  CHECK(h.out.find("proxy") != std::string::npos);
  CHECK(h.out.find("ingress") != std::string::npos);

  auto p = exitOf({"proxy", "--help"});
  CHECK(p.code == 0);
  CHECK(p.out.find("--node-ip") != std::string::npos);
  CHECK(p.out.find("--manifests") != std::string::npos);
  CHECK(p.out.find("--listen") == std::string::npos);

  auto r = exitOf({"run", "-h"});
  CHECK(r.code == 0);
  CHECK(r.out.find("--node-ip") != std::string::npos);
  CHECK(r.out.find("--listen") != std::string::npos);
  CHECK(r.out.find("--publish-service") != std::string::npos);

  auto v = exitOf({"--version"});
  CHECK(v.code == 0);
  CHECK(v.out == std::string("kube-dataplane ") + kdp::kVersion + "\n");
}

TEST_CASE("cli: no subcommand prints help and exits 2", "[cli]") {
  auto e = exitOf({});
  CHECK(e.code == 2);
  CHECK(e.out.empty());
  CHECK(e.err.find("Subcommands") != std::string::npos);
}

TEST_CASE("cli: a bad flag or value is one line naming it, exit 2", "[cli]") {
  struct Case {
    std::vector<std::string> args;
    std::string message;  // after "kube-dataplane: "
  };
  const std::vector<std::string> proxy = {"proxy", "--node-name", "n"};
  auto px = [&](std::vector<std::string> more) {
    auto a = proxy;
    a.insert(a.end(), more.begin(), more.end());
    return a;
  };
  const std::vector<Case> cases = {
      {px({"--node-ip", "1.2.3"}), "--node-ip: \"1.2.3\" is not an IP address"},
      {px({"--node-ip", "10.0.0.1,10.0.0.2"}),
       "--node-ip: two IPv4 values; give at most one per family"},
      {px({"--node-ip", "10.0.0.1,fd00::1,fd00::2"}),
       "--node-ip: at most one IPv4 and one IPv6 value"},
      {px({"--node-ip", "10.0.0.1,"}), "--node-ip: empty item in \"10.0.0.1,\""},
      {px({"--node-ip"}), "--node-ip needs a value"},
      {{"proxy", "--node-ip", "10.0.0.1"}, "--node-name is required"},
      {{"proxy", "--node-name", "n"}, "--node-ip is required"},
      {{"proxy", "--node-name", "Bad_Name", "--node-ip", "10.0.0.1"},
       "--node-name: \"Bad_Name\" is not a valid node name"},
      {px({"--node-ip", "10.0.0.1", "--cluster-cidr", "10.0.0.0/33"}),
       "--cluster-cidr: \"10.0.0.0/33\" is not a CIDR (e.g. 10.0.0.0/8 or fd00::/64)"},
      {px({"--node-ip", "10.0.0.1", "--service-cidr", "10.96.0.0/12", "--service-cidr",
           "fd00::/108"}),
       "--service-cidr: given more than once"},
      {px({"--node-ip", "10.0.0.1", "--nodeport-addresses", "10.0.0.1"}),
       "--nodeport-addresses: \"10.0.0.1\" is not a CIDR (e.g. 10.0.0.0/8 or fd00::/64)"},
      {px({"--node-ip", "10.0.0.1", "--dry-run", "--once"}),
       "--once: cannot be combined with --dry-run"},
      {{"proxy", "--cleanup", "--once"}, "--cleanup: cannot be combined with --once"},
      {px({"--node-ip", "10.0.0.1", "--masquerade-all=yes"}), "--masquerade-all takes no value"},
      {{"dns", "--listen", "127.0.0.1:53", "--autopath=false"}, "--autopath takes no value"},
      {px({"--node-ip", "10.0.0.1", "--bogus"}), "unknown flag --bogus"},
      {px({"--node-ip", "10.0.0.1", "--bogus=1"}), "unknown flag --bogus"},
      {px({"--node-ip", "10.0.0.1", "stray"}), "unexpected argument \"stray\""},
      {px({"--node-ip", "10.0.0.1", "--listen", "127.0.0.1:53"}), "unknown flag --listen"},
      {{"--bogus", "proxy"}, "unknown flag --bogus"},
      {{"frobnicate"}, "unknown command \"frobnicate\""},
      {{"proxy", "dns"}, "unexpected argument \"dns\""},
      {{"run", "--once"}, "unknown flag --once"},
      {{"run", "--manifests", "a", "--kubeconfig", "b"},
       "--kubeconfig: cannot be combined with --manifests"},
      {{"run", "--manifests", ""}, "--manifests: empty value"},
      {{"run", "--manifests", "a", "--manifests", "b"}, "--manifests: given more than once"},
      {{"run", "--metrics", "127.0.0.1"},
       "--metrics: \"127.0.0.1\" is not ADDR:PORT (e.g. 127.0.0.1:9090 or [::1]:9090)"},
      {{"run", "--metrics", "127.0.0.1:65536"},
       "--metrics: \"127.0.0.1:65536\" is not ADDR:PORT (e.g. 127.0.0.1:9090 or [::1]:9090)"},
      {{"run", "--metrics", "::1:9090"},
       "--metrics: \"::1:9090\" is not ADDR:PORT (e.g. 127.0.0.1:9090 or [::1]:9090)"},
      {{"run", "--metrics", "localhost:9090"},
       "--metrics: \"localhost:9090\" is not ADDR:PORT (e.g. 127.0.0.1:9090 or [::1]:9090)"},
      {{"run", "--log-level", "verbose"},
       "--log-level: \"verbose\" is not one of trace|debug|info|warn|error|off"},
      {{"run", "--log-format", "xml"}, "--log-format: \"xml\" is not one of text|json"},
      {{"dns"}, "--listen is required"},
      {{"dns", "--listen", "127.0.0.1:53", "--ttl", "3601"},
       "--ttl: \"3601\" is out of range 0-3600"},
      {{"dns", "--listen", "127.0.0.1:53", "--ttl", "-1"}, "--ttl: \"-1\" is not a number"},
      {{"dns", "--listen", "127.0.0.1:53", "--ttl", "30s"}, "--ttl: \"30s\" is not a number"},
      {{"dns", "--listen", "127.0.0.1:53", "--ttl", "99999999999999999999999"},
       "--ttl: \"99999999999999999999999\" is out of range 0-3600"},
      {{"dns", "--listen", "127.0.0.1:53", "--pods", "all"},
       "--pods: \"all\" is not one of insecure|verified|disabled"},
      {{"dns", "--listen", "127.0.0.1:53", "--threads", "0x4"},
       "--threads: \"0x4\" is not a number"},
      {{"dns", "--listen", "127.0.0.1:53", "--threads", "5000"},
       "--threads: \"5000\" is out of range 0-1024"},
      {{"dns", "--listen", "127.0.0.1:53", "--cluster-domain", "a..b"},
       "--cluster-domain: \"a..b\" is not a DNS domain"},
      {{"dns", "--listen", "127.0.0.1:53", "--upstream", "dns.google"},
       "--upstream: \"dns.google\" is not ADDR[:PORT] (e.g. 10.0.0.1, 10.0.0.1:53 or "
       "[fd00::1]:53)"},
      {{"dns", "--listen", "127.0.0.1:53\n"},
       "--listen: \"127.0.0.1:53\\x0a\" is not ADDR:PORT (e.g. 127.0.0.1:9090 or [::1]:9090)"},
      {{"ingress", "--http", "127.0.0.1:80"}, "--https is required"},
      {{"ingress", "--https", "127.0.0.1:443", "--http", "[::1]"},
       "--http: \"[::1]\" is not ADDR:PORT (e.g. 127.0.0.1:9090 or [::1]:9090)"},
      {{"run", "--publish-address", "1.2.3.4", "--publish-service", "a/b"},
       "--publish-service: cannot be combined with --publish-address"},
      {{"run", "--publish-service", "edge"}, "--publish-service: \"edge\" is not NAMESPACE/NAME"},
      {{"run", "--publish-address", "1.2.3.4/32"},
       "--publish-address: \"1.2.3.4/32\" is not an IP address or hostname"},
      {{"run", "--default-cert", "c.pem"}, "--default-key is required"},
      {{"run", "--default-key", "k.pem"}, "--default-cert is required"},
      {{"run", "--max-body-size", "10x"},
       "--max-body-size: \"10x\" is not a size (e.g. 1048576, 512k, 10m)"},
      {{"run", "--max-body-size", "2000g"}, "--max-body-size: \"2000g\" is larger than 1024g"},
      {{"run", "--ingress-class", "Edge"},
       "--ingress-class: \"Edge\" is not a valid IngressClass name"},
      {{"run", "--access-log", ""}, "--access-log: empty value"},
      {{"run", "--access-log-format", "xml"},
       "--access-log-format: \"xml\" is not one of text|json"},
      {{"run", "--load-balance", "random"},
       "--load-balance: \"random\" is not one of round-robin|least-request"},
      {{"run", "--max-connections", "0"}, "--max-connections: \"0\" is out of range 1-10000000"},
      {{"run", "--upstream-read-timeout", "0"},
       "--upstream-read-timeout: \"0\" is out of range 1-3600"},
      {{"run", "--client-idle-timeout", "1m"},
       "--client-idle-timeout: \"1m\" is not a number"},
  };
  for (const auto& c : cases) {
    std::string joined;
    for (const auto& a : c.args) {
      joined += a + " ";
    }
    CAPTURE(joined);
    auto e = exitOf(c.args);
    CHECK(e.code == 2);
    CHECK(e.out.empty());
    CHECK(std::count(e.err.begin(), e.err.end(), '\n') == 1);
    CHECK(e.err.starts_with("kube-dataplane: "));
    CHECK(e.err.ends_with("\n"));
    if (!c.message.empty()) {
      CHECK(e.err == "kube-dataplane: " + c.message + "\n");
    }
  }
}
