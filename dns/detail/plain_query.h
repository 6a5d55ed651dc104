#pragma once
// The UDP cache-hit path's query reader: the common shape of a query, read in place (pure, no
// allocation). Anything else — rare from real resolvers — goes through wire::parseQuery and
// answer(), which decide the same for the queries accepted here (tests compare the two).

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "dns/detail/wire.h"

namespace kdp::dns {

/// A query that is not a response, has opcode QUERY, one question whose name is written out at
/// offset 12 (no compression), no answer or authority records, and either nothing after the
/// question or one OPT record at the root with EDNS version 0 ending the message.
struct PlainQuery {
  std::uint16_t id = 0;
  std::uint16_t flags = 0;
  std::string_view name;  // the question name as sent (points into the message)
  std::uint16_t qtype = 0;
  std::uint16_t qclass = 0;
  bool edns = false;
  std::uint16_t udpSize = wire::kMinUdpSize;  // advertised, at least 512
  bool dnssecOk = false;
};

/// The query when `msg` has the shape above, else nullopt (then parse it fully).
std::optional<PlainQuery> readPlainQuery(std::span<const std::uint8_t> msg);

}  // namespace kdp::dns
