#pragma once
// The DNS server's startup options (command line flags).
// Parsed and validated by app/cli.cpp; plain values.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/host_port.h"

namespace kdp::dns {

/// DNS pod records (`--pods`): as CoreDNS's kubernetes plugin `pods` option.
enum class PodsMode : std::uint8_t { Insecure, Verified, Disabled };

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

}  // namespace kdp::dns
