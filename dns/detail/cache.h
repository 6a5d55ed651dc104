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

/// What of the client's query a replayed entry needs.
struct ReplayTarget {
  std::uint16_t id = 0;
  std::uint16_t flags = 0;       // RD and CD are echoed
  std::string_view name;         // the question name as sent (wire, letter case kept)
  bool edns = false;
  bool dnssecOk = false;
  std::size_t limit = wire::kMinUdpSize;  // the largest response the client accepts
};
ReplayTarget replayTarget(const wire::Query& query, Transport transport);

/// The client's response from an entry: the client's id, RD/CD and question bytes (letter case),
/// AA cleared, TTLs counted down, OPT added when the client sent one, TC when over its size.
std::string renderCached(const CachedResponse& entry, const wire::Query& query,
                         Clock::time_point now, Transport transport);
/// The same, written into `out`: its length, or 0 when it does not fit there (the caller then
/// takes renderCached()). No allocation.
std::size_t renderCachedInto(const CachedResponse& entry, const ReplayTarget& target,
                             Clock::time_point now, std::span<std::uint8_t> out);

/// A cache key in a fixed buffer: lower-cased name, type, class, and the DO/CD bits.
class CacheKey {
 public:
  /// `name`: a valid wire name (at most 255 bytes).
  CacheKey(std::string_view name, std::uint16_t qtype, std::uint16_t qclass, bool dnssecOk,
           bool checkingDisabled);
  std::string_view view() const { return {bytes_.data(), size_}; }
  /// The lower-cased name (the key's first bytes).
  std::string_view name() const { return {bytes_.data(), nameSize_}; }

 private:
  std::array<char, wire::kMaxName + 5> bytes_;
  std::uint16_t size_ = 0;
  std::uint16_t nameSize_ = 0;
};

/// The cache key of a question as a string (see CacheKey).
std::string cacheKey(std::string_view name, std::uint16_t qtype, std::uint16_t qclass,
                     bool dnssecOk, bool checkingDisabled);

class Cache {
 public:
  /// `capacity` entries in all (0: the cache keeps nothing).
  explicit Cache(std::size_t capacity);

  /// The live entry under `key`, or null (an expired one is removed). Any thread.
  std::shared_ptr<const CachedResponse> find(std::string_view key, Clock::time_point now);
  /// Stores `entry` (when cacheable); at capacity an entry of the shard is evicted, expired ones
  /// first. Any thread.
  void insert(const std::string& key, std::shared_ptr<const CachedResponse> entry);
  std::size_t size() const { return size_.load(std::memory_order_relaxed); }
  std::size_t capacity() const { return capacity_; }

 private:
  static constexpr std::size_t kShards = 16;
  struct SeededHash {
    using is_transparent = void;  // find() by string_view, without a std::string
    std::uint64_t k0, k1;
    std::size_t operator()(std::string_view s) const noexcept;
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, std::shared_ptr<const CachedResponse>, SeededHash,
                       std::equal_to<>>
        map;
  };
  std::size_t shardOf(std::string_view key) const;

  const std::size_t capacity_;
  std::size_t perShard_ = 0;
  SeededHash hash_;
  std::array<Shard, kShards> shards_;
  std::atomic<std::size_t> size_{0};
};

std::shared_ptr<Cache> makeCache(std::size_t capacity);

/// A worker's own front of the shared Cache for its UDP hits: no lock, no reference count, no
/// allocation once warm. The shared Cache stays the source of truth: a miss here asks it, and a
/// local entry is used only until its own expiry (never longer than the shared one would be), so
/// TTLs and the RFC 2308 caps hold. A newer shared entry for the same key is seen once the local
/// one expires or is displaced. Two-way set-associative with a cheap hash: a collision costs a
/// trip to the shared cache, never more (so clients aiming at one set gain nothing). One thread.
class WorkerCache {
 public:
  /// `capacity`: the shared cache's (bounds the local table; 0: nothing is kept). The table
  /// starts small when first used and doubles while live entries keep pushing each other out, so
  /// a server that forwards little pays little.
  WorkerCache(std::shared_ptr<Cache> shared, std::size_t capacity);

  /// The live entry for `key` (here, else from the shared cache), or null. The pointer is valid
  /// until the next find().
  const CachedResponse* find(std::string_view key, Clock::time_point now);

  /// Sets in the table now (0 before the first entry).
  std::size_t sets() const { return slots_.size() / 2; }

 private:
  struct Slot {
    std::string key;
    std::shared_ptr<const CachedResponse> entry;
    Clock::time_point expires;
    std::uint32_t lastUse = 0;
  };
  void grow(Clock::time_point now);

  std::shared_ptr<Cache> shared_;
  std::vector<Slot> slots_;  // sets of two; empty until the first entry
  std::size_t setMask_ = 0;
  std::size_t maxSets_ = 0;
  // Live entries pushed out in the current window of lookups (a table's worth of them, started
  // at windowStart_): a rate, so that rare collisions over a long life do not add up to growth.
  std::size_t liveEvictions_ = 0;
  std::uint32_t windowStart_ = 0;
  std::uint32_t tick_ = 0;
};

}  // namespace kdp::dns
