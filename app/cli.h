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

#include "common/host_port.h"
#include "common/log_options.h"
#include "common/ip.h"
#include "dns/options.h"
#include "ingress/options.h"
#include "proxy/options.h"

namespace kdp::app {

enum class Command : std::uint8_t { Proxy, Dns, Ingress, Run };

using dns::DnsOptions;
using dns::PodsMode;
using ingress::AccessLog;
using ingress::IngressOptions;
using proxy::ProxyMode;
using proxy::ProxyOptions;

struct SourceOptions {
  std::string manifestsDir;  // --manifests DIR
  std::string kubeconfig;    // --kubeconfig FILE
  // Both empty: in-cluster configuration.
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
