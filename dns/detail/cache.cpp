#include "dns/detail/cache.h"

#include <algorithm>
#include <cstring>
#include <random>
#include <utility>

namespace kdp::dns {

namespace {

std::uint8_t* mut(std::string& s) { return reinterpret_cast<std::uint8_t*>(s.data()); }

// SipHash-2-4 (Aumasson, Bernstein): a keyed hash, so that clients cannot aim at one bucket.
std::uint64_t rotl(std::uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

std::uint64_t sipHash(std::uint64_t k0, std::uint64_t k1, const std::uint8_t* in, std::size_t len) {
  std::uint64_t v0 = 0x736f6d6570736575ULL ^ k0;
  std::uint64_t v1 = 0x646f72616e646f6dULL ^ k1;
  std::uint64_t v2 = 0x6c7967656e657261ULL ^ k0;
  std::uint64_t v3 = 0x7465646279746573ULL ^ k1;
  auto round = [&] {
    v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32);
    v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;
    v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;
    v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32);
  };
  const std::size_t full = len & ~std::size_t{7};
  for (std::size_t i = 0; i < full; i += 8) {
    std::uint64_t m;
    std::memcpy(&m, in + i, 8);  // little-endian hosts; the hash need not be portable
    v3 ^= m;
    round();
    round();
    v0 ^= m;
  }
  std::uint64_t b = std::uint64_t{len} << 56;
  for (std::size_t i = 0; i < (len & 7); ++i) {
    b |= std::uint64_t{in[full + i]} << (8 * i);
  }
  v3 ^= b;
  round();
  round();
  v0 ^= b;
  v2 ^= 0xff;
  round();
  round();
  round();
  round();
  return v0 ^ v1 ^ v2 ^ v3;
}

}  // namespace

Result<CachedResponse> prepareResponse(std::span<const std::uint8_t> response,
                                       Clock::time_point now) {
  auto m = wire::parseMessage(response);
  if (!m) {
    return m.error();
  }
  CachedResponse c;
  c.stored = now;
  c.rcode = m->header.rcode();
  c.wire.assign(reinterpret_cast<const char*>(response.data()), response.size());
  std::size_t end = response.size();
  std::uint16_t arcount = m->header.arcount;
  // Drop the OPT record when it is the last one (where every server puts it).
  if (!m->additional.empty() && m->additional.back().type == wire::kTypeOPT) {
    const auto& opt = m->additional.back();
    const std::size_t start = opt.ttlOffset >= 5 ? opt.ttlOffset - 5 : 0;  // root owner, type, class
    if (opt.rdataOffset + opt.rdataLength == response.size() && start >= wire::kHeaderSize &&
        response[start] == 0) {
      end = start;
      --arcount;
      m->additional.pop_back();
    }
  }
  c.wire.resize(end);
  wire::putU16(mut(c.wire), 0);
  wire::putU16(mut(c.wire) + 10, arcount);
  std::uint32_t minAnswer = UINT32_MAX;
  std::optional<std::uint32_t> negative;
  for (const auto* section : {&m->answers, &m->authority, &m->additional}) {
    for (const auto& r : *section) {
      if (r.type == wire::kTypeOPT) {
        continue;
      }
      c.ttlOffsets.push_back(static_cast<std::uint32_t>(r.ttlOffset));
      c.ttls.push_back(r.ttl);
      if (section == &m->answers) {
        minAnswer = std::min(minAnswer, r.ttl);
      }
      if (section == &m->authority && r.type == wire::kTypeSOA && r.rdataLength >= 22) {
        // RFC 2308: the negative TTL is min(SOA TTL, SOA MINIMUM).
        const std::uint32_t minimum =
            wire::getU32(response.data() + r.rdataOffset + r.rdataLength - 4);
        negative = std::min(r.ttl, minimum);
      }
    }
  }
  const bool truncated = (m->header.flags & wire::kFlagTC) != 0;
  if (!truncated && c.rcode == wire::kRcodeNoError && !m->answers.empty()) {
    c.keepSeconds = std::min(minAnswer, kMaxCacheTtl);
  } else if (!truncated && (c.rcode == wire::kRcodeNxDomain ||
                            (c.rcode == wire::kRcodeNoError && m->answers.empty())) &&
             negative) {
    c.keepSeconds = std::min(*negative, kMaxCacheTtl);
  }
  // Clients see at most what the cache keeps (as CoreDNS's cache answers).
  if (c.keepSeconds != 0) {
    for (auto& ttl : c.ttls) {
      ttl = std::min(ttl, c.keepSeconds);
    }
  }
  return c;
}

std::string agedWire(const CachedResponse& entry, Clock::time_point now) {
  std::string out = entry.wire;
  const auto elapsed = static_cast<std::uint32_t>(std::max<std::int64_t>(
      0, std::chrono::duration_cast<std::chrono::seconds>(now - entry.stored).count()));
  for (std::size_t i = 0; i < entry.ttlOffsets.size(); ++i) {
    const std::uint32_t ttl = entry.ttls[i] > elapsed ? entry.ttls[i] - elapsed : 0;
    wire::putU32(mut(out) + entry.ttlOffsets[i], ttl);
  }
  return out;
}

ReplayTarget replayTarget(const wire::Query& query, Transport transport) {
  ReplayTarget t;
  t.id = query.header.id;
  t.flags = query.header.flags;
  t.name = query.question.name;
  t.edns = query.edns.has_value();
  t.dnssecOk = query.edns && query.edns->dnssecOk;
  t.limit = responseLimit(query, transport);
  return t;
}

namespace {

constexpr std::size_t kOptSize = 11;  // root owner, type, class, TTL, empty rdata

std::uint8_t asciiLower(std::uint8_t c) {
  return c >= 'A' && c <= 'Z' ? static_cast<std::uint8_t>(c + ('a' - 'A')) : c;
}

// Wire names compared without case: label lengths (≤ 63) never fall in 'A'..'Z', so every byte
// may be lowered alike.
bool sameNameIgnoringCase(const std::uint8_t* a, std::string_view b) {
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (asciiLower(a[i]) != asciiLower(static_cast<std::uint8_t>(b[i]))) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::size_t renderCachedInto(const CachedResponse& entry, const ReplayTarget& target,
                             Clock::time_point now, std::span<std::uint8_t> out) {
  const std::size_t opt = target.edns ? kOptSize : 0;
  const std::string_view name = target.name;
  const bool truncate = entry.wire.size() + opt > target.limit;
  // Over the client's size: header and question only, with TC (the client retries over TCP).
  const std::size_t body =
      truncate ? std::min(entry.wire.size(), wire::kHeaderSize + name.size() + 4) : entry.wire.size();
  if (body < wire::kHeaderSize || body + opt > out.size()) {
    return 0;
  }
  std::uint8_t* p = out.data();
  std::memcpy(p, entry.wire.data(), body);
  const auto elapsed = static_cast<std::uint32_t>(std::max<std::int64_t>(
      0, std::chrono::duration_cast<std::chrono::seconds>(now - entry.stored).count()));
  for (std::size_t i = 0; i < entry.ttlOffsets.size(); ++i) {
    if (entry.ttlOffsets[i] + 4 <= body) {
      wire::putU32(p + entry.ttlOffsets[i], entry.ttls[i] > elapsed ? entry.ttls[i] - elapsed : 0);
    }
  }
  std::uint16_t flags = wire::getU16(p + 2);
  flags = static_cast<std::uint16_t>(flags & ~(wire::kFlagAA | wire::kFlagRD | wire::kFlagCD));
  flags |= target.flags & (wire::kFlagRD | wire::kFlagCD);
  if (truncate) {
    flags |= wire::kFlagTC;
    wire::putU16(p + 6, 0);
    wire::putU16(p + 8, 0);
    wire::putU16(p + 10, 0);
  }
  wire::putU16(p, target.id);
  wire::putU16(p + 2, flags);
  // The question's letter case as the client wrote it, when the stored question is the same
  // name written out at offset 12 (it is for every answer the forwarder accepted).
  if (body >= wire::kHeaderSize + name.size() && sameNameIgnoringCase(p + wire::kHeaderSize, name)) {
    std::memcpy(p + wire::kHeaderSize, name.data(), name.size());
  }
  std::size_t size = body;
  if (target.edns) {
    p[size] = 0;
    wire::putU16(p + size + 1, wire::kTypeOPT);
    wire::putU16(p + size + 3, kServerUdpSize);
    wire::putU32(p + size + 5, target.dnssecOk ? 0x8000u : 0u);
    wire::putU16(p + size + 9, 0);
    size += kOptSize;
    wire::putU16(p + 10, static_cast<std::uint16_t>(wire::getU16(p + 10) + 1));
  }
  return size;
}

std::string renderCached(const CachedResponse& entry, const wire::Query& query,
                         Clock::time_point now, Transport transport) {
  std::string out(entry.wire.size() + kOptSize, '\0');
  const std::size_t n = renderCachedInto(entry, replayTarget(query, transport), now,
                                         std::span<std::uint8_t>(mut(out), out.size()));
  out.resize(n);
  return out;
}

CacheKey::CacheKey(std::string_view name, std::uint16_t qtype, std::uint16_t qclass,
                   bool dnssecOk, bool checkingDisabled) {
  nameSize_ = static_cast<std::uint16_t>(std::min(name.size(), wire::kMaxName));
  for (std::size_t i = 0; i < nameSize_; ++i) {
    bytes_[i] = static_cast<char>(asciiLower(static_cast<std::uint8_t>(name[i])));
  }
  auto* p = reinterpret_cast<std::uint8_t*>(bytes_.data()) + nameSize_;
  wire::putU16(p, qtype);
  wire::putU16(p + 2, qclass);
  p[4] = static_cast<std::uint8_t>((dnssecOk ? 1 : 0) | (checkingDisabled ? 2 : 0));
  size_ = static_cast<std::uint16_t>(nameSize_ + 5);
}

std::string cacheKey(std::string_view name, std::uint16_t qtype, std::uint16_t qclass,
                     bool dnssecOk, bool checkingDisabled) {
  return std::string(CacheKey(name, qtype, qclass, dnssecOk, checkingDisabled).view());
}

std::size_t Cache::SeededHash::operator()(std::string_view s) const noexcept {
  return static_cast<std::size_t>(
      sipHash(k0, k1, reinterpret_cast<const std::uint8_t*>(s.data()), s.size()));
}

Cache::Cache(std::size_t capacity) : capacity_(capacity) {
  perShard_ = (capacity + kShards - 1) / kShards;
  std::random_device rd;
  hash_.k0 = (std::uint64_t{rd()} << 32) | rd();
  hash_.k1 = (std::uint64_t{rd()} << 32) | rd();
  for (auto& s : shards_) {
    s.map = decltype(s.map)(16, hash_);
  }
}

std::size_t Cache::shardOf(std::string_view key) const { return hash_(key) >> 7 & (kShards - 1); }

std::shared_ptr<const CachedResponse> Cache::find(std::string_view key, Clock::time_point now) {
  if (capacity_ == 0) {
    return nullptr;
  }
  Shard& s = shards_[shardOf(key)];
  std::lock_guard lock(s.mu);
  auto it = s.map.find(key);
  if (it == s.map.end()) {
    return nullptr;
  }
  if (now >= it->second->stored + std::chrono::seconds(it->second->keepSeconds)) {
    s.map.erase(it);
    size_.fetch_sub(1, std::memory_order_relaxed);
    return nullptr;
  }
  return it->second;
}

void Cache::insert(const std::string& key, std::shared_ptr<const CachedResponse> entry) {
  if (capacity_ == 0 || entry->keepSeconds == 0) {
    return;
  }
  Shard& s = shards_[shardOf(key)];
  std::lock_guard lock(s.mu);
  auto it = s.map.find(key);
  if (it != s.map.end()) {
    it->second = std::move(entry);
    return;
  }
  if (s.map.size() >= perShard_) {
    // Evict: an expired entry among the first few, else the first one (arbitrary, O(1)).
    const auto now = entry->stored;
    auto victim = s.map.begin();
    unsigned looked = 0;
    for (auto i = s.map.begin(); i != s.map.end() && looked < 8; ++i, ++looked) {
      if (now >= i->second->stored + std::chrono::seconds(i->second->keepSeconds)) {
        victim = i;
        break;
      }
    }
    s.map.erase(victim);
    size_.fetch_sub(1, std::memory_order_relaxed);
  }
  s.map.emplace(key, std::move(entry));
  size_.fetch_add(1, std::memory_order_relaxed);
}

std::shared_ptr<Cache> makeCache(std::size_t capacity) { return std::make_shared<Cache>(capacity); }

namespace {

// Two slots per set; 64 sets at the first entry, doubled while live entries push each other
// out, up to as many sets as the shared cache has entries (rounded up to a power of two) and at
// most 8,192 (16,384 slots: ~1 MB per worker at most, besides the entries it shares).
constexpr std::size_t kMaxWorkerSets = 8192;
constexpr std::size_t kFirstWorkerSets = 64;

}  // namespace

WorkerCache::WorkerCache(std::shared_ptr<Cache> shared, std::size_t capacity)
    : shared_(std::move(shared)) {
  if (capacity == 0) {
    return;
  }
  maxSets_ = 1;
  while (maxSets_ < capacity && maxSets_ < kMaxWorkerSets) {
    maxSets_ <<= 1;
  }
}

void WorkerCache::grow(Clock::time_point now) {
  const std::size_t sets =
      slots_.empty() ? std::min(kFirstWorkerSets, maxSets_) : 2 * (setMask_ + 1);
  std::vector<Slot> old = std::exchange(slots_, std::vector<Slot>(2 * sets));
  setMask_ = sets - 1;
  liveEvictions_ = 0;
  windowStart_ = tick_;
  for (Slot& s : old) {
    if (!s.entry || now >= s.expires) {
      continue;
    }
    Slot* set = &slots_[2 * (std::hash<std::string_view>{}(s.key) & setMask_)];
    Slot* free = !set[0].entry ? &set[0] : !set[1].entry ? &set[1] : nullptr;
    if (free != nullptr) {
      *free = std::move(s);
    }
  }
}

const CachedResponse* WorkerCache::find(std::string_view key, Clock::time_point now) {
  if (maxSets_ == 0) {
    return nullptr;
  }
  ++tick_;
  if (!slots_.empty()) {
    Slot* set = &slots_[2 * (std::hash<std::string_view>{}(key) & setMask_)];
    for (Slot* s = set; s != set + 2; ++s) {
      if (s->entry && s->key == key) {
        if (now < s->expires) {
          s->lastUse = tick_;
          return s->entry.get();
        }
        s->entry.reset();  // expired here: the shared cache may hold a newer one
      }
    }
  }
  auto entry = shared_->find(key, now);
  if (!entry) {
    return nullptr;
  }
  // Live entries pushed out by one lookup in 16 within a window of a table's worth of lookups:
  // the working set does not fit (two-way sets lose some at any size; a table that holds it
  // loses few).
  if (slots_.empty() || (liveEvictions_ >= slots_.size() / 16 && setMask_ + 1 < maxSets_)) {
    grow(now);
  } else if (tick_ - windowStart_ >= slots_.size()) {
    windowStart_ = tick_;
    liveEvictions_ = 0;
  }
  Slot* set = &slots_[2 * (std::hash<std::string_view>{}(key) & setMask_)];
  // Replace the empty slot, else the one used least recently.
  Slot* victim = !set[0].entry                         ? &set[0]
                 : !set[1].entry                       ? &set[1]
                 : set[0].lastUse - set[1].lastUse > (1u << 31) ? &set[0]
                                                                : &set[1];
  if (victim->entry && now < victim->expires) {
    ++liveEvictions_;
  }
  victim->key.assign(key);
  victim->expires = entry->stored + std::chrono::seconds(entry->keepSeconds);
  victim->lastUse = tick_;
  victim->entry = std::move(entry);
  return victim->entry.get();
}

}  // namespace kdp::dns
