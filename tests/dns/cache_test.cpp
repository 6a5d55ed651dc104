#include "dns/detail/cache.h"

#include <catch2/catch.hpp>

#include "tests/dns/fixture.h"

using namespace kdp::dns;
using namespace kdp::dns::test;
namespace w = kdp::dns::wire;

namespace {

// An upstream-style response: the question, `answers` A records (TTL `ttl`) for `name`, or an
// NXDOMAIN with an SOA (TTL 300, MINIMUM 60) when answers == 0 and nx; OPT at the end.
std::string upstreamResponse(std::string_view name, int answers, std::uint32_t ttl, bool nx = false,
                             bool tc = false) {
  std::string m;
  w::Writer wr(m);
  wr.u16(0x4242);
  wr.u16(static_cast<std::uint16_t>(w::kFlagQR | w::kFlagRD | w::kFlagRA | w::kFlagAA |
                                    (tc ? w::kFlagTC : 0) | (nx ? w::kRcodeNxDomain : 0)));
  wr.u16(1);
  wr.u16(static_cast<std::uint16_t>(answers));
  wr.u16(nx ? 1 : 0);
  wr.u16(1);
  wr.name(*w::nameFromText(name));
  wr.u16(w::kTypeA);
  wr.u16(w::kClassIN);
  for (int i = 0; i < answers; ++i) {
    wr.pointer(12);
    wr.u16(w::kTypeA);
    wr.u16(w::kClassIN);
    wr.u32(ttl + static_cast<std::uint32_t>(i));
    wr.rdata([&] { wr.u32(0xC0000200u + static_cast<std::uint32_t>(i)); });
  }
  if (nx) {
    wr.name(*w::nameFromText("example.test"));
    wr.u16(w::kTypeSOA);
    wr.u16(w::kClassIN);
    wr.u32(300);
    wr.rdata([&] {
      wr.name(*w::nameFromText("ns.example.test"));
      wr.name(*w::nameFromText("admin.example.test"));
      wr.u32(1);
      wr.u32(3600);
      wr.u32(600);
      wr.u32(86400);
      wr.u32(60);
    });
  }
  wr.u8(0);
  wr.u16(w::kTypeOPT);
  wr.u16(4096);
  wr.u32(0);
  wr.u16(0);
  return m;
}

}  // namespace

TEST_CASE("dns cache: prepared responses keep TTLs by RFC 2308, capped at 30 s", "[dns]") {
  const auto t0 = Clock::now();
  auto pos = prepareResponse(bytes(upstreamResponse("www.example.test", 2, 300)), t0);
  REQUIRE(pos);
  CHECK(pos->keepSeconds == kMaxCacheTtl);
  CHECK(pos->ttls == std::vector<std::uint32_t>{30, 30});  // clamped to what the cache keeps
  auto shortTtl = prepareResponse(bytes(upstreamResponse("www.example.test", 1, 7)), t0);
  CHECK(shortTtl->keepSeconds == 7);
  auto nx = prepareResponse(bytes(upstreamResponse("nx.example.test", 0, 0, true)), t0);
  REQUIRE(nx);
  CHECK(nx->rcode == w::kRcodeNxDomain);
  CHECK(nx->keepSeconds == 30);  // min(SOA TTL 300, MINIMUM 60), capped
  auto nodataNoSoa = prepareResponse(bytes(upstreamResponse("x.example.test", 0, 0)), t0);
  CHECK(nodataNoSoa->keepSeconds == 0);
  auto tc = prepareResponse(bytes(upstreamResponse("www.example.test", 1, 300, false, true)), t0);
  CHECK(tc->keepSeconds == 0);
  CHECK_FALSE(prepareResponse(bytes(std::string("\1\2\3")), t0));
}

TEST_CASE("dns cache: replay with the client's id, case, EDNS and counted-down TTLs", "[dns]") {
  const auto t0 = Clock::now();
  auto entry = prepareResponse(bytes(upstreamResponse("www.example.test", 2, 300)), t0);
  REQUIRE(entry);
  const std::string q = makeQuery("WWW.Example.test", w::kTypeA);
  auto parsed = w::parseQuery(bytes(q));
  REQUIRE(parsed);
  const std::string r = renderCached(*entry, *parsed, t0 + std::chrono::seconds(10),
                                     Transport::Udp);
  CHECK(render(r) ==
        "NOERROR | WWW.Example.test. 20 A 192.0.2.0; WWW.Example.test. 20 A 192.0.2.1 |  | ");
  CHECK(w::getU16(reinterpret_cast<const std::uint8_t*>(r.data())) == 0xBEEF);
  const std::string qe = makeQuery("www.example.test", w::kTypeA, 1400);
  auto pe = w::parseQuery(bytes(qe));
  const std::string re = renderCached(*entry, *pe, t0 + std::chrono::seconds(400),
                                      Transport::Udp);
  CHECK(render(re) ==
        "NOERROR | www.example.test. 0 A 192.0.2.0; www.example.test. 0 A 192.0.2.1 |  | OPT 1232");

  SECTION("over the client's size: TC, question only") {
    auto big = prepareResponse(bytes(upstreamResponse("www.example.test", 40, 300)), t0);
    const std::string small = renderCached(*big, *parsed, t0, Transport::Udp);
    CHECK(render(small) == "NOERROR tc |  |  | ");
    CHECK(renderCached(*big, *parsed, t0, Transport::Tcp).size() > 512);
  }
}

TEST_CASE("dns cache: keys, expiry, capacity", "[dns]") {
  CHECK(cacheKey(*w::nameFromText("WWW.example.test"), 1, 1, false, false) ==
        cacheKey(*w::nameFromText("www.example.TEST"), 1, 1, false, false));
  CHECK(cacheKey(*w::nameFromText("www.example.test"), 1, 1, false, false) !=
        cacheKey(*w::nameFromText("www.example.test"), 28, 1, false, false));
  CHECK(cacheKey(*w::nameFromText("www.example.test"), 1, 1, true, false) !=
        cacheKey(*w::nameFromText("www.example.test"), 1, 1, false, false));

  const auto t0 = Clock::now();
  Cache cache(32);
  auto entry = std::make_shared<const CachedResponse>(
      *prepareResponse(bytes(upstreamResponse("www.example.test", 1, 5)), t0));
  cache.insert("k", entry);
  CHECK(cache.size() == 1);
  CHECK(cache.find("k", t0 + std::chrono::seconds(4)) == entry);
  CHECK(cache.find("k", t0 + std::chrono::seconds(5)) == nullptr);
  CHECK(cache.size() == 0);
  for (int i = 0; i < 1000; ++i) {
    cache.insert("key" + std::to_string(i), entry);
  }
  CHECK(cache.size() <= 32);
  CHECK(cache.size() > 0);

  Cache none(0);
  none.insert("k", entry);
  CHECK(none.find("k", t0) == nullptr);
}

TEST_CASE("dns cache: fixed-buffer keys and rendering into a buffer", "[dns]") {
  const auto name = *w::nameFromText("WwW.Example.TEST");
  const CacheKey key(name, w::kTypeAAAA, w::kClassIN, true, true);
  CHECK(key.view() == cacheKey(name, w::kTypeAAAA, w::kClassIN, true, true));
  CHECK(key.name() == *w::nameFromText("www.example.test"));

  const auto t0 = Clock::now();
  auto entry = prepareResponse(bytes(upstreamResponse("www.example.test", 2, 300)), t0);
  REQUIRE(entry);
  const std::string q = makeQuery("WWW.Example.test", w::kTypeA, 1400);
  auto parsed = w::parseQuery(bytes(q));
  REQUIRE(parsed);
  const auto target = replayTarget(*parsed, Transport::Udp);
  std::array<std::uint8_t, 512> buf{};
  const std::size_t n = renderCachedInto(*entry, target, t0 + std::chrono::seconds(3), buf);
  REQUIRE(n > 0);
  CHECK(std::string(reinterpret_cast<const char*>(buf.data()), n) ==
        renderCached(*entry, *parsed, t0 + std::chrono::seconds(3), Transport::Udp));
  // Too small a buffer: 0, the caller renders a string instead.
  CHECK(renderCachedInto(*entry, target, t0, std::span<std::uint8_t>(buf.data(), 40)) == 0);
}

TEST_CASE("dns cache: a worker's cache serves the shared entries until they expire", "[dns]") {
  const auto t0 = Clock::now();
  auto shared = std::make_shared<Cache>(64);
  WorkerCache local(shared, 64);
  const std::string key = cacheKey(*w::nameFromText("www.example.test"), 1, 1, false, false);
  CHECK(local.find(key, t0) == nullptr);
  auto first = std::make_shared<const CachedResponse>(
      *prepareResponse(bytes(upstreamResponse("www.example.test", 1, 5)), t0));
  shared->insert(key, first);
  CHECK(local.find(key, t0) == first.get());
  // Kept here: a newer shared entry is not looked at while the local one lives...
  auto second = std::make_shared<const CachedResponse>(
      *prepareResponse(bytes(upstreamResponse("www.example.test", 1, 20)), t0 + std::chrono::seconds(4)));
  shared->insert(key, second);
  CHECK(local.find(key, t0 + std::chrono::seconds(4)) == first.get());
  // ...and never past its own expiry (the RFC 2308 / 30 s caps of the shared entry hold).
  CHECK(local.find(key, t0 + std::chrono::seconds(5)) == second.get());
  CHECK(local.find(key, t0 + std::chrono::seconds(24)) == nullptr);

  // Many keys over few sets (the shared cache large enough to keep them all): every answer is
  // the right one (collisions only cost a shared lookup).
  auto big = std::make_shared<Cache>(4096);
  WorkerCache small(big, 8);
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 50; ++i) {
      const std::string k = "key" + std::to_string(i);
      auto e = std::make_shared<const CachedResponse>(
          *prepareResponse(bytes(upstreamResponse("n" + std::to_string(i) + ".example.test", 1, 30)), t0));
      if (round == 0) {
        big->insert(k, e);
      }
      const CachedResponse* got = small.find(k, t0 + std::chrono::seconds(1));
      REQUIRE(got != nullptr);
      CHECK(got->wire == e->wire);
    }
  }
  WorkerCache none(shared, 0);
  CHECK(none.find(key, t0) == nullptr);
}

TEST_CASE("dns cache: a worker's cache grows to hold a working set larger than its first table",
          "[dns]") {
  const auto t0 = Clock::now();
  auto shared = std::make_shared<Cache>(4096);
  WorkerCache local(shared, 4096);
  constexpr int kKeys = 1000;  // far more than the first table's 128 slots
  std::vector<std::shared_ptr<const CachedResponse>> first;
  auto response = [&](int i) {
    return std::make_shared<const CachedResponse>(*prepareResponse(
        bytes(upstreamResponse("n" + std::to_string(i) + ".example.test", 1, 30)), t0));
  };
  for (int i = 0; i < kKeys; ++i) {
    first.push_back(response(i));
    shared->insert("key" + std::to_string(i), first.back());
  }
  for (int round = 0; round < 6; ++round) {
    for (int i = 0; i < kKeys; ++i) {
      REQUIRE(local.find("key" + std::to_string(i), t0) != nullptr);
    }
  }
  // Newer shared entries are not looked at while the local ones live: what still answers with
  // the first generation is held by the worker.
  for (int i = 0; i < kKeys; ++i) {
    shared->insert("key" + std::to_string(i), response(i));
  }
  int localHits = 0;
  for (int i = 0; i < kKeys; ++i) {
    localHits += local.find("key" + std::to_string(i), t0) == first[static_cast<std::size_t>(i)].get();
  }
  CHECK(localHits >= kKeys * 9 / 10);
}

TEST_CASE("dns cache: a worker's cache does not grow from rare evictions over a long life",
          "[dns]") {
  const auto t0 = Clock::now();
  auto shared = std::make_shared<Cache>(4096);
  WorkerCache local(shared, 4096);
  auto put = [&](const std::string& key, int i) {
    shared->insert(key, std::make_shared<const CachedResponse>(*prepareResponse(
                            bytes(upstreamResponse("n" + std::to_string(i) + ".example.test", 1, 30)), t0)));
  };
  constexpr int kHot = 20;  // fits the first table (64 sets) with room to spare
  for (int i = 0; i < kHot; ++i) {
    put("hot" + std::to_string(i), i);
  }
  // 20,000 lookups of the hot keys, and every 100th a key asked once: once the sets fill up,
  // each one-off pushes out a live entry, 1 % of the lookups. Counted over the table's life
  // (200 evictions) that would have doubled the table twice; as a rate it is no reason to grow.
  for (int n = 0; n < 20000; ++n) {
    if (n % 100 == 99) {
      const std::string once = "once" + std::to_string(n);
      put(once, n);
      REQUIRE(local.find(once, t0) != nullptr);
    } else {
      REQUIRE(local.find("hot" + std::to_string(n % kHot), t0) != nullptr);
    }
  }
  CHECK(local.sets() == 64);
}
