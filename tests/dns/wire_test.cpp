#include "dns/detail/wire.h"

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

using namespace kdp::dns::wire;

namespace {

std::vector<std::uint8_t> bytesOf(std::string_view s) {
  return {s.begin(), s.end()};
}

// A query header with one question for `name` (wire) and qtype.
std::string query(std::string_view name, std::uint16_t qtype, std::uint16_t arcount = 0) {
  std::string out;
  Writer w(out);
  w.u16(0x1234);
  w.u16(kFlagRD);
  w.u16(1);
  w.u16(0);
  w.u16(0);
  w.u16(arcount);
  w.name(name);
  w.u16(qtype);
  w.u16(kClassIN);
  return out;
}

void addOpt(std::string& out, std::uint16_t size, std::uint8_t version = 0) {
  Writer w(out);
  w.u8(0);
  w.u16(kTypeOPT);
  w.u16(size);
  w.u32(std::uint32_t{version} << 16);
  w.u16(0);
}

}  // namespace

TEST_CASE("dns wire: names from and to text", "[dns]") {
  auto n = nameFromText("Web.shop.svc.cluster.local.");
  REQUIRE(n);
  CHECK(*n == std::string("\3Web\4shop\3svc\7cluster\5local\0", 28));
  CHECK(nameToText(*n) == "Web.shop.svc.cluster.local.");
  CHECK(lowerName(*n) == std::string("\3web\4shop\3svc\7cluster\5local\0", 28));
  CHECK(nameFromText("") == std::string(1, '\0'));
  CHECK(nameToText(std::string(1, '\0')) == ".");
  CHECK_FALSE(nameFromText("a..b"));
  CHECK_FALSE(nameFromText(std::string(64, 'a') + ".com"));
  CHECK(nameFromText(std::string(63, 'a') + ".com"));
  std::string longName;
  for (int i = 0; i < 50; ++i) {
    longName += "abcd.";
  }
  CHECK_FALSE(nameFromText(longName + "abcdef"));  // 256 bytes in wire form
  CHECK(nameToText(std::string("\3a.b\1\\\1\x01\0", 9)) == "a\\.b.\\\\.\\001.");
  CHECK(isSubdomain(*nameFromText("a.cluster.local"), *nameFromText("cluster.local")));
  CHECK(isSubdomain(*nameFromText("cluster.local"), *nameFromText("cluster.local")));
  CHECK_FALSE(isSubdomain(*nameFromText("xcluster.local"), *nameFromText("cluster.local")));
  CHECK(isSubdomain(*nameFromText("x.y"), *nameFromText("")));
}

TEST_CASE("dns wire: a query parses with its question and EDNS", "[dns]") {
  auto q = query(*nameFromText("Web.Shop.svc.cluster.local"), kTypeA, 1);
  addOpt(q, 4096);
  const auto b = bytesOf(q);
  auto r = parseQuery(b);
  REQUIRE(r);
  CHECK(r->header.id == 0x1234);
  CHECK(r->question.name == *nameFromText("Web.Shop.svc.cluster.local"));
  CHECK(r->question.qtype == kTypeA);
  REQUIRE(r->edns);
  CHECK(r->edns->udpSize == 4096);
  CHECK(r->questionEnd == b.size() - 11);

  SECTION("a small advertised size reads as 512") {
    auto q2 = query(*nameFromText("a"), kTypeA, 1);
    addOpt(q2, 100);
    auto r2 = parseQuery(bytesOf(q2));
    REQUIRE(r2);
    CHECK(r2->edns->udpSize == 512);
  }
}

TEST_CASE("dns wire: hostile queries are refused", "[dns]") {
  QueryError err = QueryError::None;

  SECTION("shorter than a header") {
    const std::vector<std::uint8_t> b(11, 0);
    CHECK_FALSE(parseQuery(b, &err));
    CHECK(err == QueryError::NoHeader);
  }
  SECTION("no question / two questions") {
    auto q = query(*nameFromText("a"), kTypeA);
    auto b = bytesOf(q);
    b[5] = 0;
    CHECK_FALSE(parseQuery(b, &err));
    CHECK(err == QueryError::Malformed);
    b[5] = 2;
    CHECK_FALSE(parseQuery(b, &err));
  }
  SECTION("label length past the end") {
    std::string q = query("", kTypeA).substr(0, 12);
    q += std::string("\x10" "abc", 4);
    CHECK_FALSE(parseQuery(bytesOf(q), &err));
    CHECK(err == QueryError::Malformed);
  }
  SECTION("question type past the end") {
    auto q = query(*nameFromText("a.b"), kTypeA);
    q.resize(q.size() - 3);
    CHECK_FALSE(parseQuery(bytesOf(q), &err));
  }
  SECTION("pointer to itself, forward pointer, pointer loop") {
    std::string base = query("", kTypeA).substr(0, 12);
    CHECK_FALSE(parseQuery(bytesOf(base + std::string("\xC0\x0C\0\1\0\1", 6))));
    CHECK_FALSE(parseQuery(bytesOf(base + std::string("\xC0\x0E\1a\0\0\1\0\1", 9))));
    // A label then a pointer back to that label: loops unless pointers must go backwards.
    CHECK_FALSE(parseQuery(bytesOf(base + std::string("\1a\xC0\x0C\0\1\0\1", 8))));
    std::size_t off = 12;
    const auto loop = bytesOf(base + std::string("\1a\xC0\x0C", 4));
    CHECK_FALSE(readName(loop, off));
  }
  SECTION("a truncated pointer") {
    std::string q = query("", kTypeA).substr(0, 12) + std::string("\xC0", 1);
    CHECK_FALSE(parseQuery(bytesOf(q)));
  }
  SECTION("label types 0x40 and 0x80") {
    std::string base = query("", kTypeA).substr(0, 12);
    CHECK_FALSE(parseQuery(bytesOf(base + std::string("\x41" "a\0\0\1\0\1", 7))));
    CHECK_FALSE(parseQuery(bytesOf(base + std::string("\x81" "a\0\0\1\0\1", 7))));
  }
  SECTION("a name over 255 bytes, also when built from pointers") {
    std::string q = query("", kTypeA).substr(0, 12);
    for (int i = 0; i < 5; ++i) {
      q += std::string(1, '\x3F') + std::string(63, 'x');
    }
    q += std::string("\0\0\1\0\1", 5);
    CHECK_FALSE(parseQuery(bytesOf(q)));
    // 4 labels of 63 (256 bytes with the lengths) reached through a chain of pointers.
    std::string m = query("", kTypeA).substr(0, 12);
    m += std::string(1, '\x3F') + std::string(63, 'y') + std::string("\0", 1);  // at 12
    m += std::string(1, '\x3F') + std::string(63, 'y') + std::string("\xC0\x0C", 2);  // at 77
    m += std::string(1, '\x3F') + std::string(63, 'y') + std::string("\xC0\x4D", 2);  // at 143
    std::size_t off = 143;
    CHECK(readName(bytesOf(m), off));  // 3*64 + 1 = 193
    m += std::string(1, '\x3F') + std::string(63, 'y') + std::string("\xC0\x8F", 2);  // at 209
    off = 209;
    CHECK_FALSE(readName(bytesOf(m), off));  // 257
  }
  SECTION("two OPT records, OPT not at the root, records past the end") {
    auto q = query(*nameFromText("a"), kTypeA, 2);
    addOpt(q, 1232);
    addOpt(q, 1232);
    CHECK_FALSE(parseQuery(bytesOf(q), &err));
    CHECK(err == QueryError::Malformed);
    auto q2 = query(*nameFromText("a"), kTypeA, 1);
    Writer w(q2);
    w.name(*nameFromText("a"));
    w.u16(kTypeOPT);
    w.u16(1232);
    w.u32(0);
    w.u16(0);
    CHECK_FALSE(parseQuery(bytesOf(q2)));
    auto q3 = query(*nameFromText("a"), kTypeA, 1);
    addOpt(q3, 1232);
    q3.back() = 5;  // rdlength 5, nothing follows
    CHECK_FALSE(parseQuery(bytesOf(q3)));
    auto q4 = query(*nameFromText("a"), kTypeA, 3);  // records announced, none present
    CHECK_FALSE(parseQuery(bytesOf(q4)));
  }
}

TEST_CASE("dns wire: a compressed response parses and the writer round-trips", "[dns]") {
  std::string m;
  Writer w(m);
  m.assign(12, '\0');
  writeHeader(Header{7, kFlagQR | kFlagAA, 1, 2, 0, 0}, reinterpret_cast<std::uint8_t*>(m.data()));
  w.name(*nameFromText("www.example.com"));
  w.u16(kTypeA);
  w.u16(kClassIN);
  w.pointer(12);
  w.u16(kTypeCNAME);
  w.u16(kClassIN);
  w.u32(300);
  w.rdata([&] {
    w.u8(3);
    w.bytes("web");
    w.pointer(16);  // "example.com"
  });
  w.bytes(std::string("\3web\xC0\x10", 6));
  w.u16(kTypeA);
  w.u16(kClassIN);
  w.u32(60);
  w.rdata([&] { w.u32(0x0A000001); });
  const auto b = bytesOf(m);
  auto r = parseMessage(b);
  REQUIRE(r);
  CHECK(r->header.id == 7);
  REQUIRE(r->answers.size() == 2);
  CHECK(r->answers[0].name == *nameFromText("www.example.com"));
  CHECK(r->answers[0].ttl == 300);
  std::size_t off = r->answers[0].rdataOffset;
  auto target = readName(b, off);
  REQUIRE(target);
  CHECK(*target == *nameFromText("web.example.com"));
  CHECK(r->answers[1].name == *nameFromText("web.example.com"));
  CHECK(getU32(b.data() + r->answers[1].rdataOffset) == 0x0A000001);
  CHECK(r->answers[1].ttlOffset == r->answers[1].rdataOffset - 6);
}
