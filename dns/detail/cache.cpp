#include "dns/detail/cache.h"

#include <algorithm>
#include <cstring>
#include <random>

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

std::string renderCached(const CachedResponse& entry, const wire::Query& query,
                         Clock::time_point now, Transport transport) {
  std::string out = agedWire(entry, now);
  std::uint16_t flags = wire::getU16(mut(out) + 2);
  flags = static_cast<std::uint16_t>(flags & ~(wire::kFlagAA | wire::kFlagRD | wire::kFlagCD));
  flags |= query.header.flags & (wire::kFlagRD | wire::kFlagCD);
  wire::putU16(mut(out), query.header.id);
  wire::putU16(mut(out) + 2, flags);
  // The question's letter case as the client wrote it, when the stored question is the same
  // name written out at offset 12 (it is for every answer the forwarder accepted).
  const std::string& name = query.question.name;
  if (out.size() >= wire::kHeaderSize + name.size() &&
      wire::lowerName(std::string_view(out).substr(wire::kHeaderSize, name.size())) ==
          wire::lowerName(name)) {
    std::memcpy(out.data() + wire::kHeaderSize, name.data(), name.size());
  }
  std::string opt;
  if (query.edns) {
    wire::Writer w(opt);
    w.u8(0);
    w.u16(wire::kTypeOPT);
    w.u16(kServerUdpSize);
    w.u32(query.edns->dnssecOk ? 0x8000u : 0u);
    w.u16(0);
  }
  const std::size_t limit = responseLimit(query, transport);
  if (out.size() + opt.size() > limit) {
    // Header and question only, with TC: the client retries over TCP.
    out.resize(std::min(out.size(), wire::kHeaderSize + name.size() + 4));
    wire::putU16(mut(out) + 2, static_cast<std::uint16_t>(flags | wire::kFlagTC));
    wire::putU16(mut(out) + 6, 0);
    wire::putU16(mut(out) + 8, 0);
    wire::putU16(mut(out) + 10, 0);
  }
  if (!opt.empty()) {
    out += opt;
    wire::putU16(mut(out) + 10, static_cast<std::uint16_t>(wire::getU16(mut(out) + 10) + 1));
  }
  return out;
}

std::string cacheKey(std::string_view name, std::uint16_t qtype, std::uint16_t qclass,
                     bool dnssecOk, bool checkingDisabled) {
  std::string key = wire::lowerName(name);
  wire::Writer w(key);
  w.u16(qtype);
  w.u16(qclass);
  w.u8(static_cast<std::uint8_t>((dnssecOk ? 1 : 0) | (checkingDisabled ? 2 : 0)));
  return key;
}

std::size_t Cache::SeededHash::operator()(const std::string& s) const noexcept {
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

std::size_t Cache::shardOf(const std::string& key) const { return hash_(key) >> 7 & (kShards - 1); }

std::shared_ptr<const CachedResponse> Cache::find(const std::string& key, Clock::time_point now) {
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

}  // namespace kdp::dns
