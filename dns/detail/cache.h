#pragma once
// The cache of forwarded answers, shared by the workers: sharded, each shard a mutex and a hash
// map with a secret seed (keys are client data), a size bound, per-entry expiry.
//
// Entries are upstream responses made ready to replay (prepareResponse): OPT removed, TTL
// positions noted, the TTL to keep them chosen by RFC 2308 (negative answers: the SOA's TTL
// capped by its MINIMUM) and capped at kMaxCacheTtl, as CoreDNS's `cache 30` does. renderCached()
// turns an entry into the client's answer: its id and question case, TTLs counted down.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "dns/answer.h"
#include "dns/detail/wire.h"

namespace kdp::dns {

using Clock = std::chrono::steady_clock;

inline constexpr std::uint32_t kMaxCacheTtl = 30;

struct CachedResponse {
  std::string wire;                     // id 0, no OPT
  std::vector<std::uint32_t> ttlOffsets;
  std::vector<std::uint32_t> ttls;
  std::uint16_t rcode = 0;
  std::uint32_t keepSeconds = 0;        // 0: not cacheable
  Clock::time_point stored;
};

/// Reads an upstream response for replay (pure). Error when it does not parse.
Result<CachedResponse> prepareResponse(std::span<const std::uint8_t> response,
                                       Clock::time_point now);

/// The entry's message with its TTLs counted down to `now` (still id 0, no OPT).
std::string agedWire(const CachedResponse& entry, Clock::time_point now);

/// The client's response from an entry: the client's id, RD/CD and question bytes (letter case),
/// AA cleared, TTLs counted down, OPT added when the client sent one, TC when over its size.
std::string renderCached(const CachedResponse& entry, const wire::Query& query,
                         Clock::time_point now, Transport transport);

/// The cache key of a question: lower-cased name, type, class, and the DO/CD bits.
std::string cacheKey(std::string_view name, std::uint16_t qtype, std::uint16_t qclass,
                     bool dnssecOk, bool checkingDisabled);

class Cache {
 public:
  /// `capacity` entries in all (0: the cache keeps nothing).
  explicit Cache(std::size_t capacity);

  /// The live entry under `key`, or null (an expired one is removed). Any thread.
  std::shared_ptr<const CachedResponse> find(const std::string& key, Clock::time_point now);
  /// Stores `entry` (when cacheable); at capacity an entry of the shard is evicted, expired ones
  /// first. Any thread.
  void insert(const std::string& key, std::shared_ptr<const CachedResponse> entry);
  std::size_t size() const { return size_.load(std::memory_order_relaxed); }
  std::size_t capacity() const { return capacity_; }

 private:
  static constexpr std::size_t kShards = 16;
  struct SeededHash {
    std::uint64_t k0, k1;
    std::size_t operator()(const std::string& s) const noexcept;
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, std::shared_ptr<const CachedResponse>, SeededHash> map;
  };
  std::size_t shardOf(const std::string& key) const;

  const std::size_t capacity_;
  std::size_t perShard_ = 0;
  SeededHash hash_;
  std::array<Shard, kShards> shards_;
  std::atomic<std::size_t> size_{0};
};

std::shared_ptr<Cache> makeCache(std::size_t capacity);

}  // namespace kdp::dns
