#pragma once
// The command line (DESIGN.md "The command line" is the contract):
//
//   kube-dataplane proxy|dns|ingress|run [source] [common] [component flags]
//
// parseCommandLine() is pure: no I/O, no exit(). It returns the parsed Options, or what to print
// and the exit code (help and --version: 0 on stdout; a bad flag or value: one line on stderr
// naming the flag, exit 2). Values are validated here (IPs, CIDRs, ADDR:PORT, enums, numeric
// ranges); files and directories are opened later, by whoever uses them.

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "app/address.h"
#include "app/log_options.h"
#include "common/ip.h"

namespace kdp::app {

enum class Command : std::uint8_t { Proxy, Dns, Ingress, Run };

/// What the proxy does: keep syncing, print the ruleset, sync once, or delete its tables.
enum class ProxyMode : std::uint8_t { Sync, DryRun, Once, Cleanup };

/// DNS pod records (`--pods`): as CoreDNS's kubernetes plugin `pods` option.
enum class PodsMode : std::uint8_t { Insecure, Verified, Disabled };

struct SourceOptions {
  std::string manifestsDir;  // --manifests DIR
  std::string kubeconfig;    // --kubeconfig FILE
  // Both empty: in-cluster configuration.
};

struct ProxyOptions {
  std::string nodeName;                 // --node-name (required by `proxy` unless --cleanup)
  std::vector<IpAddr> nodeIPs;          // --node-ip IP[,IP6]: at most one per family
  std::vector<Cidr> clusterCIDRs;       // --cluster-cidr CIDR[,CIDR6]: at most one per family
  std::vector<Cidr> serviceCIDRs;       // --service-cidr CIDR[,CIDR6]: at most one per family
  std::vector<Cidr> nodePortAddresses;  // --nodeport-addresses CIDR,...: empty = all addresses
  bool masqueradeAll = false;           // --masquerade-all
  ProxyMode mode = ProxyMode::Sync;     // --dry-run | --once | --cleanup
};

struct DnsOptions {
  std::vector<HostPort> listen;           // --listen ADDR:PORT, repeatable (required by `dns`)
  std::string clusterDomain = "cluster.local";  // lower case, no trailing dot
  std::vector<HostPort> upstreams;        // --upstream ADDR[:PORT] (port 53); empty = resolv.conf
  std::uint32_t ttl = 30;                 // --ttl, 0-3600
  PodsMode pods = PodsMode::Insecure;     // --pods
  unsigned threads = 0;                   // --threads, 0 = one per CPU
  std::size_t cacheSize = 10000;          // --cache-size entries, 0 = no cache
  bool autopath = false;                  // --autopath
};

struct AccessLog {
  enum class Kind : std::uint8_t { Stdout, Off, File };
  Kind kind = Kind::Stdout;
  std::string path;  // Kind::File
  bool operator==(const AccessLog&) const = default;
};

struct IngressOptions {
  std::optional<HostPort> http;            // --http ADDR:PORT (required by `ingress`)
  std::optional<HostPort> https;           // --https ADDR:PORT (required by `ingress`)
  std::string ingressClass = "kube-dataplane";  // --ingress-class
  unsigned threads = 0;                    // --threads, 0 = one per CPU
  std::optional<IpAddr> publishAddress;    // --publish-address IP
  std::string publishServiceNamespace;     // --publish-service NS/NAME
  std::string publishServiceName;
  AccessLog accessLog;                     // --access-log stdout|off|FILE
  std::string defaultCert;                 // --default-cert FILE (with --default-key)
  std::string defaultKey;                  // --default-key FILE (with --default-cert)
  std::uint64_t maxBodySize = 1 << 20;     // --max-body-size BYTES[k|m|g], 0 = no limit
};

struct Options {
  Command command = Command::Run;
  SourceOptions source;
  std::optional<HostPort> metrics;  // --metrics ADDR:PORT
  LogLevel logLevel = LogLevel::Info;
  LogFormat logFormat = LogFormat::Text;
  bool dryRun = false;              // `run --dry-run` (for `proxy`, see proxy.mode)
  ProxyOptions proxy;
  DnsOptions dns;
  IngressOptions ingress;
};

/// The program stops here: print `out` to stdout and `err` to stderr, exit with `code`.
struct CliExit {
  int code = 0;
  std::string out;
  std::string err;
};

inline constexpr int kUsageExitCode = 2;

/// Parses argv (argv[0] is the program and is ignored). Never throws for bad input.
std::variant<Options, CliExit> parseCommandLine(int argc, const char* const* argv);

std::string_view commandName(Command command);

}  // namespace kdp::app
