#include "app/cli.h"

#include <CLI/CLI.hpp>

#include <charconv>
#include <stdexcept>
#include <utility>

#include "common/version.h"
#include "ingress/status.h"

namespace kdp::app {

namespace {

constexpr std::string_view kProgram = "kube-dataplane";

/// A bad flag or value; its message is the one line after "kube-dataplane: ".
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] void fail(std::string message) {
  throw UsageError(std::move(message));
}

/// A value quoted for an error line: control characters escaped so the message stays one line,
/// long values cut.
std::string quote(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  constexpr std::size_t kMax = 120;
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size() && i < kMax; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7F) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    } else if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > kMax) {
    out += "...";
  }
  out += '"';
  return out;
}

// The flags as given, one string per occurrence; validated after CLI11 has split argv.
struct Raw {
  std::vector<std::string> manifests, kubeconfig, metrics, logLevel, logFormat;
  std::vector<std::string> nodeName, nodeIp, clusterCidr, serviceCidr, nodeportAddresses;
  bool masqueradeAll = false, dryRun = false, once = false, cleanup = false;
  std::vector<std::string> listen, clusterDomain, upstream, ttl, pods, threads, cacheSize;
  bool autopath = false;
  std::vector<std::string> http, https, ingressClass, publishAddress, publishService, accessLog,
      defaultCert, defaultKey, maxBodySize, maxConnections, loadBalance, accessLogFormat,
      upstreamConnectTimeout, upstreamReadTimeout, clientHeaderTimeout, clientIdleTimeout;
  std::vector<std::string> explainSrc, explainDst, explainProto, healthz;
  const CLI::App* explain = nullptr;  // `proxy explain`, when built
};

// --- building the CLI11 app -------------------------------------------------------------------

CLI::Option* value(CLI::App* app, const std::string& name, std::vector<std::string>& into,
                   const std::string& type, const std::string& help, const std::string& group) {
  return app->add_option(name, into, help)
      ->type_name(type)
      ->group(group)
      ->expected(1)
      ->allow_extra_args(false)  // one value per occurrence, taken verbatim ("[::1]" too)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
}

CLI::Option* flag(CLI::App* app, const std::string& name, bool& into, const std::string& help,
                  const std::string& group) {
  return app->add_flag(name, into, help)->group(group)->disable_flag_override();
}

void addCommon(CLI::App* app, Raw& r) {
  value(app, "--manifests", r.manifests, "DIR",
        "Read objects from the YAML manifests in DIR (re-read on change)", "Source");
  value(app, "--kubeconfig", r.kubeconfig, "FILE",
        "Watch the Kubernetes API with this kubeconfig (default: in-cluster config)", "Source");
  value(app, "--metrics", r.metrics, "ADDR:PORT",
        "Serve Prometheus /metrics, /healthz and /readyz on ADDR:PORT", "Common");
  value(app, "--log-level", r.logLevel, "LEVEL", "trace|debug|info|warn|error|off (default info)",
        "Common");
  value(app, "--log-format", r.logFormat, "FORMAT", "text|json (default text)", "Common");
}

void addProxy(CLI::App* app, Raw& r, bool run) {
  const std::string g = "Proxy";
  value(app, "--node-name", r.nodeName, "NAME", "This node's name", g);
  value(app, "--node-ip", r.nodeIp, "IP[,IP6]", "This node's addresses, one per family", g);
  value(app, "--cluster-cidr", r.clusterCidr, "CIDR[,CIDR6]", "The pod network, one per family",
        g);
  value(app, "--service-cidr", r.serviceCidr, "CIDR[,CIDR6]",
        "The cluster IP range, one per family", g);
  value(app, "--nodeport-addresses", r.nodeportAddresses, "CIDR,...",
        "Serve NodePorts only on local addresses in these ranges (default: all)", g);
  flag(app, "--masquerade-all", r.masqueradeAll, "SNAT all traffic to service IPs", g);
  value(app, "--healthz", r.healthz, "ADDR:PORT",
        "Serve kube-proxy's /healthz and /livez (200 while syncs keep up, else 503)", g);
  if (run) {
    flag(app, "--dry-run", r.dryRun, "Load the source, print a summary of it and exit", "Common");
    return;
  }
  flag(app, "--dry-run", r.dryRun, "Print the nftables ruleset (nft -f syntax) and exit", g);
  flag(app, "--once", r.once, "Apply one full sync to the kernel and exit", g);
  flag(app, "--cleanup", r.cleanup, "Delete kube-dataplane's nftables tables and exit", g);
  // `proxy explain --src IP --dst IP:PORT ...`: the proxy's flags may follow it (fallthrough).
  CLI::App* explain = app->add_subcommand(
      "explain", "Say which Service, rule path and endpoints a new connection would meet");
  explain->fallthrough();
  explain->allow_extras();
  value(explain, "--src", r.explainSrc, "IP", "The connection's source address", "Explain");
  value(explain, "--dst", r.explainDst, "IP:PORT", "Its destination ([IPv6]:PORT)", "Explain");
  value(explain, "--proto", r.explainProto, "PROTO", "tcp|udp|sctp (tcp)", "Explain");
  r.explain = explain;
}

void addThreads(CLI::App* app, Raw& r, const std::string& group) {
  value(app, "--threads", r.threads, "N", "Worker threads (default: one per CPU)", group);
}

void addDns(CLI::App* app, Raw& r, bool run) {
  const std::string g = "DNS";
  value(app, "--listen", r.listen, "ADDR:PORT", "Serve DNS (UDP and TCP) here; repeatable", g);
  value(app, "--cluster-domain", r.clusterDomain, "DOMAIN", "The cluster domain (cluster.local)",
        g);
  value(app, "--upstream", r.upstream, "ADDR[:PORT]",
        "Forward other names here (default: /etc/resolv.conf); repeatable", g);
  value(app, "--ttl", r.ttl, "SECONDS", "TTL of cluster records, 0-3600 (30)", g);
  value(app, "--pods", r.pods, "MODE", "Pod records: insecure|verified|disabled (insecure)", g);
  if (!run) {
    addThreads(app, r, g);
  }
  value(app, "--cache-size", r.cacheSize, "N", "Forwarder cache entries, 0 = none (10000)", g);
  flag(app, "--autopath", r.autopath, "Answer search-path queries on the server side", g);
}

void addIngress(CLI::App* app, Raw& r, bool run) {
  const std::string g = "Ingress";
  value(app, "--http", r.http, "ADDR:PORT", "Serve HTTP here", g);
  value(app, "--https", r.https, "ADDR:PORT", "Serve HTTPS here", g);
  value(app, "--ingress-class", r.ingressClass, "NAME",
        "Serve Ingresses of this class (kube-dataplane)", g);
  if (!run) {
    addThreads(app, r, g);
  }
  value(app, "--publish-address", r.publishAddress, "IP|HOST",
        "Address to write to Ingress status (repeatable, comma list)",
        g);
  value(app, "--publish-service", r.publishService, "NS/NAME",
        "Write this Service's load balancer address to Ingress status", g);
  value(app, "--access-log", r.accessLog, "stdout|off|FILE", "Access log (stdout)", g);
  value(app, "--default-cert", r.defaultCert, "FILE",
        "PEM certificate for hosts without an Ingress TLS secret", g);
  value(app, "--default-key", r.defaultKey, "FILE", "PEM key of --default-cert", g);
  value(app, "--max-body-size", r.maxBodySize, "BYTES",
        "Largest request body, with k/m/g suffixes; 0 = no limit (1m)", g);
  value(app, "--access-log-format", r.accessLogFormat, "FORMAT",
        "text|json: one line per request (text)", g);
  value(app, "--max-connections", r.maxConnections, "N",
        "Client connections open at once; more are closed at accept (50000)", g);
  value(app, "--load-balance", r.loadBalance, "POLICY",
        "round-robin|least-request, for Ingresses without a load-balance annotation "
        "(round-robin)", g);
  value(app, "--upstream-connect-timeout", r.upstreamConnectTimeout, "SECONDS",
        "Connecting to an endpoint, 1-3600 (5); an Ingress annotation overrides it", g);
  value(app, "--upstream-read-timeout", r.upstreamReadTimeout, "SECONDS",
        "Waiting for an upstream's response header, 1-3600 (60); an annotation overrides it", g);
  value(app, "--client-header-timeout", r.clientHeaderTimeout, "SECONDS",
        "A connection's first request header, from accept, 1-3600 (20)", g);
  value(app, "--client-idle-timeout", r.clientIdleTimeout, "SECONDS",
        "An idle keep-alive connection until its next request header, 1-3600 (60)", g);
}

// --- validation -------------------------------------------------------------------------------

/// The one value of a non-repeatable flag, or nullopt when not given.
std::optional<std::string> single(const std::string& name, const std::vector<std::string>& v) {
  if (v.empty()) {
    return std::nullopt;
  }
  if (v.size() > 1) {
    fail(name + ": given more than once");
  }
  if (v[0].empty()) {
    fail(name + ": empty value");
  }
  return v[0];
}

/// The comma-separated items of every occurrence of a flag, in order.
std::vector<std::string> list(const std::string& name, const std::vector<std::string>& v,
                              bool repeatable) {
  if (!repeatable && v.size() > 1) {
    fail(name + ": given more than once");
  }
  std::vector<std::string> items;
  for (const auto& occurrence : v) {
    std::string_view rest = occurrence;
    while (true) {
      const auto comma = rest.find(',');
      const auto item = rest.substr(0, comma);
      if (item.empty()) {
        fail(name + ": empty item in " + quote(occurrence));
      }
      items.emplace_back(item);
      if (comma == std::string_view::npos) {
        break;
      }
      rest.remove_prefix(comma + 1);
    }
  }
  return items;
}

IpAddr parseIp(const std::string& name, const std::string& text) {
  auto ip = IpAddr::parse(text);
  if (!ip) {
    fail(name + ": " + quote(text) + " is not an IP address");
  }
  return *ip;
}

Cidr parseCidr(const std::string& name, const std::string& text) {
  auto cidr = Cidr::parse(text);
  if (!cidr) {
    fail(name + ": " + quote(text) + " is not a CIDR (e.g. 10.0.0.0/8 or fd00::/64)");
  }
  return *cidr;
}

HostPort parseAddr(const std::string& name, const std::string& text,
                   std::optional<std::uint16_t> defaultPort = std::nullopt) {
  auto hp = parseHostPort(text, defaultPort);
  if (!hp) {
    fail(name + ": " + quote(text) +
         (defaultPort ? " is not ADDR[:PORT] (e.g. 10.0.0.1, 10.0.0.1:53 or [fd00::1]:53)"
                      : " is not ADDR:PORT (e.g. 127.0.0.1:9090 or [::1]:9090)"));
  }
  return *hp;
}

std::uint64_t parseNumber(const std::string& name, const std::string& text, std::uint64_t min,
                          std::uint64_t max) {
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec == std::errc::result_out_of_range ||
      (ec == std::errc{} && p == text.data() + text.size() && (v < min || v > max))) {
    fail(name + ": " + quote(text) + " is out of range " + std::to_string(min) + "-" +
         std::to_string(max));
  }
  if (ec != std::errc{} || p != text.data() + text.size()) {
    fail(name + ": " + quote(text) + " is not a number");
  }
  return v;
}

/// 1048576, 512k, 10m, 1g (binary multiples).
std::uint64_t parseSize(const std::string& name, const std::string& text) {
  constexpr std::uint64_t kMaxSize = std::uint64_t{1} << 40;
  std::string_view digits = text;
  std::uint64_t unit = 1;
  switch (text.back()) {
    case 'k': case 'K': unit = 1 << 10; break;
    case 'm': case 'M': unit = 1 << 20; break;
    case 'g': case 'G': unit = 1 << 30; break;
    default: break;
  }
  if (unit != 1) {
    digits.remove_suffix(1);
  }
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (digits.empty() || ec != std::errc{} || p != digits.data() + digits.size()) {
    fail(name + ": " + quote(text) + " is not a size (e.g. 1048576, 512k, 10m)");
  }
  if (v > kMaxSize / unit) {
    fail(name + ": " + quote(text) + " is larger than 1024g");
  }
  return v * unit;
}

template <class E, std::size_t N>
E parseEnum(const std::string& name, const std::string& text,
            const std::pair<std::string_view, E> (&choices)[N]) {
  std::string all;
  for (const auto& [word, e] : choices) {
    if (text == word) {
      return e;
    }
    all += all.empty() ? "" : "|";
    all += word;
  }
  fail(name + ": " + quote(text) + " is not one of " + all);
}

/// At most one address (or prefix) per family: IP[,IP6].
template <class T>
void onePerFamily(const std::string& name, const std::vector<T>& values) {
  if (values.size() > 2) {
    fail(name + ": at most one IPv4 and one IPv6 value");
  }
  if (values.size() == 2 && values[0].family() == values[1].family()) {
    fail(name + ": two " + std::string(values[0].family() == IpFamily::V4 ? "IPv4" : "IPv6") +
         " values; give at most one per family");
  }
}

bool isDnsLabel(std::string_view s) {
  if (s.empty() || s.size() > 63 || s.front() == '-' || s.back() == '-') {
    return false;
  }
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
      return false;
    }
  }
  return true;
}

/// RFC 1123 subdomain, as Kubernetes validates object names: lower-case labels joined by dots.
bool isDnsSubdomain(std::string_view s) {
  if (s.empty() || s.size() > 253) {
    return false;
  }
  while (true) {
    const auto dot = s.find('.');
    if (!isDnsLabel(s.substr(0, dot))) {
      return false;
    }
    if (dot == std::string_view::npos) {
      return true;
    }
    s.remove_prefix(dot + 1);
  }
}

std::string parseDomain(const std::string& name, const std::string& text) {
  std::string d;
  for (char c : text) {
    d += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  if (d.ends_with('.')) {
    d.pop_back();
  }
  if (!isDnsSubdomain(d)) {
    fail(name + ": " + quote(text) + " is not a DNS domain");
  }
  return d;
}

void need(const std::string& name, bool given) {
  if (!given) {
    fail(name + " is required");
  }
}

void exclusive(const std::string& a, bool aGiven, const std::string& b, bool bGiven) {
  if (aGiven && bGiven) {
    fail(b + ": cannot be combined with " + a);
  }
}

Options validate(Command command, const Raw& r) {
  Options o;
  o.command = command;
  const bool run = command == Command::Run;
  const bool proxy = command == Command::Proxy || run;
  const bool dns = command == Command::Dns || run;
  const bool ingress = command == Command::Ingress || run;

  // Source and common flags.
  exclusive("--manifests", !r.manifests.empty(), "--kubeconfig", !r.kubeconfig.empty());
  if (auto v = single("--manifests", r.manifests)) {
    o.source.manifestsDir = *v;
  }
  if (auto v = single("--kubeconfig", r.kubeconfig)) {
    o.source.kubeconfig = *v;
  }
  if (auto v = single("--metrics", r.metrics)) {
    o.metrics = parseAddr("--metrics", *v);
  }
  if (auto v = single("--log-level", r.logLevel)) {
    static constexpr std::pair<std::string_view, LogLevel> kLevels[] = {
        {"trace", LogLevel::Trace}, {"debug", LogLevel::Debug}, {"info", LogLevel::Info},
        {"warn", LogLevel::Warn},   {"error", LogLevel::Error}, {"off", LogLevel::Off}};
    o.logLevel = parseEnum("--log-level", *v, kLevels);
  }
  if (auto v = single("--log-format", r.logFormat)) {
    static constexpr std::pair<std::string_view, LogFormat> kFormats[] = {
        {"text", LogFormat::Text}, {"json", LogFormat::Json}};
    o.logFormat = parseEnum("--log-format", *v, kFormats);
  }

  if (proxy) {
    auto& p = o.proxy;
    if (auto v = single("--node-name", r.nodeName)) {
      if (!isDnsSubdomain(*v)) {
        fail("--node-name: " + quote(*v) + " is not a valid node name");
      }
      p.nodeName = *v;
    }
    for (const auto& s : list("--node-ip", r.nodeIp, true)) {
      p.nodeIPs.push_back(parseIp("--node-ip", s));
    }
    onePerFamily("--node-ip", p.nodeIPs);
    for (const auto& s : list("--cluster-cidr", r.clusterCidr, false)) {
      p.clusterCIDRs.push_back(parseCidr("--cluster-cidr", s));
    }
    onePerFamily("--cluster-cidr", p.clusterCIDRs);
    for (const auto& s : list("--service-cidr", r.serviceCidr, false)) {
      p.serviceCIDRs.push_back(parseCidr("--service-cidr", s));
    }
    onePerFamily("--service-cidr", p.serviceCIDRs);
    for (const auto& s : list("--nodeport-addresses", r.nodeportAddresses, false)) {
      p.nodePortAddresses.push_back(parseCidr("--nodeport-addresses", s));
    }
    p.masqueradeAll = r.masqueradeAll;
    if (auto v = single("--healthz", r.healthz)) {
      p.healthz = parseAddr("--healthz", *v);
    }
    exclusive("--dry-run", r.dryRun, "--once", r.once);
    exclusive("--dry-run", r.dryRun, "--cleanup", r.cleanup);
    exclusive("--once", r.once, "--cleanup", r.cleanup);
    if (r.explain != nullptr && r.explain->parsed()) {
      exclusive("explain", true, "--dry-run", r.dryRun);
      exclusive("explain", true, "--once", r.once);
      exclusive("explain", true, "--cleanup", r.cleanup);
      p.mode = ProxyMode::Explain;
      auto src = single("--src", r.explainSrc);
      auto dst = single("--dst", r.explainDst);
      need("--src", src.has_value());
      need("--dst", dst.has_value());
      p.explain.src = parseIp("--src", *src);
      const HostPort hp = parseAddr("--dst", *dst);
      p.explain.dst = hp.ip;
      p.explain.port = hp.port;
      if (p.explain.src.family() != p.explain.dst.family()) {
        fail("--src: " + quote(*src) + " and --dst are of different address families");
      }
      if (auto v = single("--proto", r.explainProto)) {
        static constexpr std::pair<std::string_view, std::uint8_t> kProtos[] = {
            {"tcp", 6}, {"udp", 17}, {"sctp", 132}};
        p.explain.proto = parseEnum("--proto", *v, kProtos);
      }
    } else if (r.dryRun && !run) {
      p.mode = ProxyMode::DryRun;
    } else if (r.once) {
      p.mode = ProxyMode::Once;
    } else if (r.cleanup) {
      p.mode = ProxyMode::Cleanup;
    }
    o.dryRun = r.dryRun;
    if (command == Command::Proxy && p.mode != ProxyMode::Cleanup) {
      need("--node-name", !p.nodeName.empty());
      need("--node-ip", !p.nodeIPs.empty());
    }
  }

  if (dns || ingress) {
    if (auto v = single("--threads", r.threads)) {
      const auto n = static_cast<unsigned>(parseNumber("--threads", *v, 0, 1024));
      o.dns.threads = n;
      o.ingress.threads = n;
    }
  }

  if (dns) {
    auto& d = o.dns;
    for (const auto& s : list("--listen", r.listen, true)) {
      d.listen.push_back(parseAddr("--listen", s));
    }
    if (auto v = single("--cluster-domain", r.clusterDomain)) {
      d.clusterDomain = parseDomain("--cluster-domain", *v);
    }
    for (const auto& s : list("--upstream", r.upstream, true)) {
      d.upstreams.push_back(parseAddr("--upstream", s, 53));
    }
    if (auto v = single("--ttl", r.ttl)) {
      d.ttl = static_cast<std::uint32_t>(parseNumber("--ttl", *v, 0, 3600));
    }
    if (auto v = single("--pods", r.pods)) {
      static constexpr std::pair<std::string_view, PodsMode> kModes[] = {
          {"insecure", PodsMode::Insecure},
          {"verified", PodsMode::Verified},
          {"disabled", PodsMode::Disabled}};
      d.pods = parseEnum("--pods", *v, kModes);
    }
    if (auto v = single("--cache-size", r.cacheSize)) {
      d.cacheSize = static_cast<std::size_t>(parseNumber("--cache-size", *v, 0, 100'000'000));
    }
    d.autopath = r.autopath;
    if (command == Command::Dns) {
      need("--listen", !d.listen.empty());
    }
  }

  if (ingress) {
    auto& i = o.ingress;
    if (auto v = single("--http", r.http)) {
      i.http = parseAddr("--http", *v);
    }
    if (auto v = single("--https", r.https)) {
      i.https = parseAddr("--https", *v);
    }
    if (auto v = single("--ingress-class", r.ingressClass)) {
      if (!isDnsSubdomain(*v)) {
        fail("--ingress-class: " + quote(*v) + " is not a valid IngressClass name");
      }
      i.ingressClass = *v;
    }
    exclusive("--publish-address", !r.publishAddress.empty(), "--publish-service",
              !r.publishService.empty());
    for (const auto& given : r.publishAddress) {
      for (std::size_t start = 0; start <= given.size();) {
        const std::size_t comma = std::min(given.find(',', start), given.size());
        const std::string item = given.substr(start, comma - start);
        auto address = kdp::ingress::parsePublishAddress(item);
        if (!address) {
          fail("--publish-address: " + quote(item) + " is not an IP address or hostname");
        } else {
          i.publishAddresses.push_back(*address);
        }
        start = comma + 1;
      }
    }
    if (auto v = single("--publish-service", r.publishService)) {
      const auto slash = v->find('/');
      if (slash == std::string::npos || !isDnsLabel(v->substr(0, slash)) ||
          !isDnsLabel(v->substr(slash + 1))) {
        fail("--publish-service: " + quote(*v) + " is not NAMESPACE/NAME");
      }
      i.publishServiceNamespace = v->substr(0, slash);
      i.publishServiceName = v->substr(slash + 1);
    }
    if (auto v = single("--access-log", r.accessLog)) {
      if (*v == "stdout") {
        i.accessLog = {AccessLog::Kind::Stdout, ""};
      } else if (*v == "off") {
        i.accessLog = {AccessLog::Kind::Off, ""};
      } else {
        i.accessLog = {AccessLog::Kind::File, *v};
      }
    }
    if (auto v = single("--default-cert", r.defaultCert)) {
      i.defaultCert = *v;
    }
    if (auto v = single("--default-key", r.defaultKey)) {
      i.defaultKey = *v;
    }
    if (!i.defaultCert.empty() || !i.defaultKey.empty()) {
      need("--default-cert", !i.defaultCert.empty());
      need("--default-key", !i.defaultKey.empty());
    }
    if (auto v = single("--max-body-size", r.maxBodySize)) {
      i.maxBodySize = parseSize("--max-body-size", *v);
    }
    if (auto v = single("--access-log-format", r.accessLogFormat)) {
      static constexpr std::pair<std::string_view, bool> kFormats[] = {{"text", false},
                                                                       {"json", true}};
      i.accessLog.json = parseEnum("--access-log-format", *v, kFormats);
    }
    if (auto v = single("--max-connections", r.maxConnections)) {
      i.maxConnections =
          static_cast<std::size_t>(parseNumber("--max-connections", *v, 1, 10'000'000));
    }
    if (auto v = single("--load-balance", r.loadBalance)) {
      static constexpr std::pair<std::string_view, ingress::Balance> kPolicies[] = {
          {"round-robin", ingress::Balance::RoundRobin},
          {"least-request", ingress::Balance::LeastRequest}};
      i.loadBalance = parseEnum("--load-balance", *v, kPolicies);
    }
    auto seconds = [](const std::string& name, const std::vector<std::string>& raw,
                      std::chrono::seconds& into) {
      if (auto v = single(name, raw)) {
        into = std::chrono::seconds(parseNumber(name, *v, 1, 3600));
      }
    };
    seconds("--upstream-connect-timeout", r.upstreamConnectTimeout, i.upstreamConnectTimeout);
    seconds("--upstream-read-timeout", r.upstreamReadTimeout, i.upstreamReadTimeout);
    seconds("--client-header-timeout", r.clientHeaderTimeout, i.clientHeaderTimeout);
    seconds("--client-idle-timeout", r.clientIdleTimeout, i.clientIdleTimeout);
    if (command == Command::Ingress) {
      need("--http", i.http.has_value());
      need("--https", i.https.has_value());
    }
  }
  return o;
}

/// The first argument CLI11 could not place.
std::string describeExtra(const std::string& arg, bool topLevel) {
  if (arg.starts_with('-') && arg.size() > 1) {
    return "unknown flag " + arg.substr(0, arg.find('='));
  }
  return topLevel ? "unknown command " + quote(arg) : "unexpected argument " + quote(arg);
}

/// CLI11's own errors, as one line naming the flag.
std::string describeParseError(const CLI::ParseError& e) {
  std::string what = e.what();
  if (const auto nl = what.find('\n'); nl != std::string::npos) {
    what.resize(nl);
  }
  if (e.get_name() == "ArgumentMismatch") {
    // "--ttl: 1 required SECONDS missing"; "masquerade-all was given a disallowed flag override"
    if (what.starts_with('-')) {
      return what.substr(0, what.find(':')) + " needs a value";
    }
    if (const auto pos = what.find(" was given a disallowed flag override");
        pos != std::string::npos) {
      return "--" + what.substr(0, pos) + " takes no value";
    }
  }
  return what;
}

}  // namespace

std::string_view commandName(Command command) {
  switch (command) {
    case Command::Proxy: return "proxy";
    case Command::Dns: return "dns";
    case Command::Ingress: return "ingress";
    case Command::Run: return "run";
  }
  return "run";
}

std::variant<Options, CliExit> parseCommandLine(int argc, const char* const* argv) {
  const std::string program(kProgram);
  CLI::App app("The Kubernetes service data plane: proxy, DNS and ingress in one program.",
               program);
  app.set_version_flag("--version", program + " " + kVersion, "Print the version and exit");
  app.require_subcommand(0, 1);
  app.allow_extras();
  app.get_formatter()->column_width(34);

  Raw raw;
  struct Sub {
    Command command;
    CLI::App* app;
  };
  std::vector<Sub> subs;
  auto add = [&](Command command, const char* description) {
    CLI::App* sub = app.add_subcommand(std::string(commandName(command)), description);
    sub->allow_extras();
    addCommon(sub, raw);
    const bool run = command == Command::Run;
    if (command == Command::Proxy || run) {
      addProxy(sub, raw, run);
    }
    if (command == Command::Dns || run) {
      addDns(sub, raw, run);
    }
    if (command == Command::Ingress || run) {
      addIngress(sub, raw, run);
    }
    if (run) {
      addThreads(sub, raw, "Common");
    }
    subs.push_back({command, sub});
  };
  add(Command::Proxy, "Program Services into nftables (replaces kube-proxy)");
  add(Command::Dns, "Serve cluster DNS (replaces CoreDNS for a node's pods)");
  add(Command::Ingress, "Proxy HTTP and HTTPS by Ingress rules");
  add(Command::Run, "All components on one shared store");

  auto usage = [&](std::string message) {
    return CliExit{kUsageExitCode, "", program + ": " + message + "\n"};
  };

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    return CliExit{0, app.help(), ""};
  } catch (const CLI::CallForAllHelp&) {
    return CliExit{0, app.help("", CLI::AppFormatMode::All), ""};
  } catch (const CLI::CallForVersion& e) {
    return CliExit{0, std::string(e.what()) + "\n", ""};
  } catch (const CLI::ParseError& e) {
    return usage(describeParseError(e));
  } catch (const std::exception& e) {
    return usage(e.what());
  }

  if (const auto extra = app.remaining(); !extra.empty()) {
    return usage(describeExtra(extra.front(), true));
  }
  for (const auto& sub : subs) {
    if (!sub.app->parsed()) {
      continue;
    }
    if (const auto extra = sub.app->remaining(); !extra.empty()) {
      return usage(describeExtra(extra.front(), false));
    }
    if (raw.explain != nullptr && raw.explain->parsed()) {
      if (const auto extra = raw.explain->remaining(); !extra.empty()) {
        return usage(describeExtra(extra.front(), false));
      }
    }
    try {
      return validate(sub.command, raw);
    } catch (const UsageError& e) {
      return usage(e.what());
    }
  }
  return CliExit{kUsageExitCode, "", app.help()};
}

}  // namespace kdp::app
