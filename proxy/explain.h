#pragma once
// What a new connection meets in a Ruleset: an operator's tool (`proxy explain`, which kube-proxy
// does not have). Pure: follows the same sets, maps and chains the kernel would, in hook order,
// and says which Service, rule path and endpoint set apply.

#include <cstdint>
#include <string>

#include "common/ip.h"
#include "proxy/ruleset.h"

namespace kdp::proxy {

struct Probe {
  IpAddr src;
  IpAddr dst;
  std::uint16_t port = 0;
  std::uint8_t proto = kProtoTcp;
};

/// Several lines of text: the path through our chains and the outcome (DNAT to which endpoints,
/// masqueraded or not; rejected; dropped; not ours). Any thread.
std::string explain(const Ruleset& ruleset, const Probe& probe);

}  // namespace kdp::proxy
