#pragma once
// The connection tracking table of the caller's network namespace over ctnetlink (libmnl): list
// the entries of one family and protocol, delete entries by their original tuple. Used to drop
// stale UDP flows whose endpoint went away (a UDP "connection" otherwise keeps its DNAT to the
// dead endpoint until it idles out, and a DNS client retrying from the same port never does).
//
// Hand-written over libmnl (linked already for nftables) rather than libnetfilter-conntrack: we
// need one dump and one delete by tuple, about 200 lines, and no new dependency.
// Not thread-safe: one owner thread.

#include <compare>
#include <cstdint>
#include <span>
#include <vector>

#include "common/ip.h"
#include "common/result.h"
#include "nft/handles.h"

namespace kdp::nft {

/// One direction of a conntrack entry.
struct ConntrackTuple {
  IpAddr src;
  IpAddr dst;
  std::uint16_t srcPort = 0;
  std::uint16_t dstPort = 0;

  auto operator<=>(const ConntrackTuple&) const = default;
};

struct ConntrackEntry {
  std::uint8_t proto = 0;   // IPPROTO_*
  ConntrackTuple original;  // as the client sent it (destination: the Service)
  ConntrackTuple reply;     // as the answer comes back (source: the endpoint after DNAT)
  std::uint16_t zone = 0;

  auto operator<=>(const ConntrackEntry&) const = default;
};

class Conntrack {
 public:
  /// Opens and binds a NETLINK_NETFILTER socket; throws std::runtime_error when it cannot.
  Conntrack();

  /// The entries of `family` with protocol `proto` (the kernel dumps the family; we filter).
  Result<std::vector<ConntrackEntry>> list(IpFamily family, std::uint8_t proto);

  /// Deletes entries by original tuple and zone; entries already gone count as deleted.
  /// Returns how many the kernel removed.
  Result<std::size_t> erase(std::span<const ConntrackEntry> entries);

 private:
  MnlSocket sock_;
  std::uint32_t portId_ = 0;
  std::uint32_t seq_ = 1;
};

}  // namespace kdp::nft
