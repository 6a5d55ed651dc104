#include "dns/detail/plain_query.h"

#include <catch2/catch.hpp>

#include "tests/dns/fixture.h"

using namespace kdp::dns;
using namespace kdp::dns::test;
namespace w = kdp::dns::wire;

namespace {

std::uint8_t* mut(std::string& s) { return reinterpret_cast<std::uint8_t*>(s.data()); }

// Whatever readPlainQuery accepts, parseQuery reads the same way.
void checkAgrees(const std::string& msg) {
  auto plain = readPlainQuery(bytes(msg));
  REQUIRE(plain);
  auto full = w::parseQuery(bytes(msg));
  REQUIRE(full);
  CHECK(plain->id == full->header.id);
  CHECK(plain->flags == full->header.flags);
  CHECK(plain->name == full->question.name);
  CHECK(plain->qtype == full->question.qtype);
  CHECK(plain->qclass == full->question.qclass);
  CHECK(plain->edns == full->edns.has_value());
  if (full->edns) {
    CHECK(plain->udpSize == full->edns->udpSize);
    CHECK(plain->dnssecOk == full->edns->dnssecOk);
  }
}

}  // namespace

TEST_CASE("dns plain query: the common shapes read in place, as the full parser reads them", "[dns]") {
  checkAgrees(makeQuery("WwW.Example.test", w::kTypeA));
  checkAgrees(makeQuery("www.example.test", w::kTypeAAAA, 1232));
  checkAgrees(makeQuery("www.example.test", w::kTypeA, 100));  // size below 512 counts as 512
  checkAgrees(makeQuery(".", w::kTypeNS));
  std::string dnssec = makeQuery("www.example.test", w::kTypeA, 4096);
  w::putU32(mut(dnssec) + dnssec.size() - 6, 0x8000);  // DO
  checkAgrees(dnssec);
  CHECK(readPlainQuery(bytes(dnssec))->dnssecOk);
  std::string withOption = makeQuery("www.example.test", w::kTypeA, 1232);
  w::putU16(mut(withOption) + withOption.size() - 2, 4);  // an (empty) EDNS option
  withOption += std::string("\0\12\0\0", 4);
  checkAgrees(withOption);
  std::string longest;
  for (int i = 0; i < 3; ++i) longest += std::string(63, 'a') + ".";
  longest += std::string(61, 'b');  // 255 bytes in wire form
  checkAgrees(makeQuery(longest, w::kTypeA));
}

TEST_CASE("dns plain query: anything else is left to the full parser", "[dns]") {
  const std::string q = makeQuery("www.example.test", w::kTypeA, 1232);
  auto variant = [&](auto&& edit) {
    std::string m = q;
    edit(m);
    return readPlainQuery(bytes(m));
  };
  CHECK_FALSE(readPlainQuery(bytes(q.substr(0, 11))));
  for (std::size_t n = 0; n < q.size(); ++n) {
    CHECK_FALSE(readPlainQuery(bytes(q.substr(0, n))));  // every truncation
  }
  CHECK_FALSE(variant([](std::string& m) { m += '\0'; }));  // trailing byte
  CHECK_FALSE(variant([](std::string& m) { w::putU16(mut(m) + 2, w::kFlagQR); }));
  CHECK_FALSE(variant([](std::string& m) { w::putU16(mut(m) + 2, 0x2800); }));  // opcode 5
  CHECK_FALSE(variant([](std::string& m) { w::putU16(mut(m) + 4, 2); }));
  CHECK_FALSE(variant([](std::string& m) { w::putU16(mut(m) + 6, 1); }));
  CHECK_FALSE(variant([](std::string& m) { w::putU16(mut(m) + 8, 1); }));
  CHECK_FALSE(variant([](std::string& m) { w::putU16(mut(m) + 10, 2); }));
  CHECK_FALSE(variant([](std::string& m) { m[12] = static_cast<char>(0xC0); }));  // pointer
  CHECK_FALSE(variant([](std::string& m) { m[12] = 64; }));                       // label > 63
  CHECK_FALSE(variant([&](std::string& m) { m[m.size() - 11] = 1; }));  // OPT not at the root
  CHECK_FALSE(variant([&](std::string& m) { m[m.size() - 5] = 1; }));   // EDNS version 1
  CHECK_FALSE(variant([&](std::string& m) { m[m.size() - 1] = 1; }));   // rdata past the end
  std::string tooLong;
  for (int i = 0; i < 4; ++i) tooLong += std::string(63, 'a') + ".";
  std::string m = q.substr(0, 12) + std::string(tooLong.size() + 1, '\0');
  for (std::size_t i = 0; i < 4; ++i) {
    m[12 + 64 * i] = 63;
    std::fill_n(m.begin() + 13 + static_cast<std::ptrdiff_t>(64 * i), 63, 'a');
  }
  w::putU16(mut(m) + 10, 0);
  m += std::string("\0\1\0\1", 4);
  CHECK_FALSE(readPlainQuery(bytes(m)));  // 257 bytes: over 255
  CHECK_FALSE(w::parseQuery(bytes(m)));
}
