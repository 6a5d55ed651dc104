#pragma once
// A coordination.k8s.io/v1 Lease as leader election reads it, and the API's MicroTime. Decoded
// here (kdp_k8s holds simdjson, PRIVATE: its headers must not be compiled elsewhere with other
// definitions).

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace kdp::k8s {

using WallClock = std::chrono::system_clock;

struct LeaseRecord {
  std::string holder;                       // spec.holderIdentity
  std::optional<WallClock::time_point> renewTime;
  std::chrono::seconds duration{0};         // spec.leaseDurationSeconds
  int transitions = 0;                      // spec.leaseTransitions
  std::string resourceVersion;              // metadata.resourceVersion, for the conditional PUT
};

/// Reads a Lease object's JSON; nullopt when it is not one.
std::optional<LeaseRecord> decodeLease(std::string_view json);

/// RFC 3339 MicroTime "2026-11-22T12:00:00.123456Z" both ways.
std::string formatMicroTime(WallClock::time_point t);
std::optional<WallClock::time_point> parseMicroTime(std::string_view text);

}  // namespace kdp::k8s
