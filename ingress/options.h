#pragma once
// The ingress proxy's startup options (command line flags).
// Parsed and validated by app/cli.cpp; plain values.

#include <cstdint>
#include <optional>
#include <string>

#include "common/host_port.h"
#include "common/ip.h"

namespace kdp::ingress {

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

}  // namespace kdp::ingress
