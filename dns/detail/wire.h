#pragma once
// DNS wire format (RFC 1035, RFC 6891): a parser for hostile input and a writer.
//
// Parsing follows STYLE.md 7: every read is checked against the remaining bytes, integers are
// copied out with memcpy, errors are returned as Result<T> (no exceptions on the packet path).
// Names are kept in wire form (length-prefixed labels, terminated by the root label) so that a
// label holding a '.' can never alias another name.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace kdp::dns::wire {

inline constexpr std::size_t kHeaderSize = 12;
inline constexpr std::size_t kMaxLabel = 63;
inline constexpr std::size_t kMaxName = 255;  // wire length, root label included
inline constexpr std::uint16_t kMinUdpSize = 512;

// Record types and classes the data plane uses.
inline constexpr std::uint16_t kTypeA = 1;
inline constexpr std::uint16_t kTypeNS = 2;
inline constexpr std::uint16_t kTypeCNAME = 5;
inline constexpr std::uint16_t kTypeSOA = 6;
inline constexpr std::uint16_t kTypePTR = 12;
inline constexpr std::uint16_t kTypeTXT = 16;
inline constexpr std::uint16_t kTypeAAAA = 28;
inline constexpr std::uint16_t kTypeSRV = 33;
inline constexpr std::uint16_t kTypeOPT = 41;
inline constexpr std::uint16_t kTypeIXFR = 251;
inline constexpr std::uint16_t kTypeAXFR = 252;
inline constexpr std::uint16_t kTypeANY = 255;
inline constexpr std::uint16_t kClassIN = 1;
inline constexpr std::uint16_t kClassANY = 255;

inline constexpr std::uint8_t kRcodeNoError = 0;
inline constexpr std::uint8_t kRcodeFormErr = 1;
inline constexpr std::uint8_t kRcodeServFail = 2;
inline constexpr std::uint8_t kRcodeNxDomain = 3;
inline constexpr std::uint8_t kRcodeNotImp = 4;
inline constexpr std::uint8_t kRcodeRefused = 5;
inline constexpr std::uint16_t kRcodeBadVers = 16;  // extended: upper 8 bits in the OPT TTL

// Header flag bits (the 16-bit flags word).
inline constexpr std::uint16_t kFlagQR = 0x8000;
inline constexpr std::uint16_t kFlagAA = 0x0400;
inline constexpr std::uint16_t kFlagTC = 0x0200;
inline constexpr std::uint16_t kFlagRD = 0x0100;
inline constexpr std::uint16_t kFlagRA = 0x0080;
inline constexpr std::uint16_t kFlagAD = 0x0020;
inline constexpr std::uint16_t kFlagCD = 0x0010;

struct Header {
  std::uint16_t id = 0;
  std::uint16_t flags = 0;
  std::uint16_t qdcount = 0;
  std::uint16_t ancount = 0;
  std::uint16_t nscount = 0;
  std::uint16_t arcount = 0;

  std::uint8_t opcode() const { return static_cast<std::uint8_t>((flags >> 11) & 0xF); }
  std::uint8_t rcode() const { return static_cast<std::uint8_t>(flags & 0xF); }
  bool qr() const { return (flags & kFlagQR) != 0; }
};

/// Reads the 12-byte header. Error when shorter.
Result<Header> readHeader(std::span<const std::uint8_t> msg);
/// Writes `h` into the first 12 bytes of `out` (which must hold them).
void writeHeader(const Header& h, std::uint8_t* out);

/// A name in wire form, uncompressed, as found (letter case kept).
using WireName = std::string;

/// Reads a possibly compressed name starting at `off`. On success `off` is just past the name
/// in the message (past the first pointer when compressed). Refuses: lengths past the end,
/// label types 0x40/0x80, labels over 63, names over 255, pointers that do not point strictly
/// backwards (which also makes loops impossible).
Result<WireName> readName(std::span<const std::uint8_t> msg, std::size_t& off);

/// Skips a possibly compressed name (same checks as readName, without copying).
Result<void> skipName(std::span<const std::uint8_t> msg, std::size_t& off);

/// ASCII lower-casing of a wire name's label bytes (lengths untouched).
WireName lowerName(std::string_view wire);

/// "web.shop.svc.cluster.local" (a trailing dot is optional; "" or "." is the root) to wire
/// form. nullopt for empty labels, labels over 63, names over 255. No escapes.
std::optional<WireName> nameFromText(std::string_view text);
/// Wire form to text with a trailing dot ("." for the root); bytes outside [!-~] and '.' and
/// '\' inside labels are escaped as \DDD / \. as in zone files.
std::string nameToText(std::string_view wire);
/// The labels of a wire name (without the root), first label first. The name must be valid.
std::vector<std::string_view> labels(std::string_view wire);
/// True when `name` equals `zone` or lies below it; both lower-cased wire names.
bool isSubdomain(std::string_view name, std::string_view zone);

struct Question {
  WireName name;  // as sent
  std::uint16_t qtype = 0;
  std::uint16_t qclass = 0;
};

struct Edns {
  std::uint16_t udpSize = kMinUdpSize;  // advertised, at least 512
  std::uint8_t version = 0;
  bool dnssecOk = false;
};

/// A parsed query.
struct Query {
  Header header;
  Question question;                 // valid when header.qdcount == 1
  std::size_t questionEnd = 0;       // offset just past the question
  std::optional<Edns> edns;
};

/// Why a query could not be parsed: for a header that reads, the caller answers FORMERR.
enum class QueryError : std::uint8_t { None, NoHeader, Malformed };

/// Parses a query: header, exactly one question (qdcount != 1 is Malformed), then skims the
/// answer/authority/additional sections for an OPT record (more than one OPT, or one not at the
/// root, is Malformed). `error` tells a missing header (drop) from a malformed body (FORMERR).
Result<Query> parseQuery(std::span<const std::uint8_t> msg, QueryError* error = nullptr);

/// One resource record as found in a message (rdata by offset; names inside it may be compressed).
struct Record {
  WireName name;
  std::uint16_t type = 0;
  std::uint16_t rclass = 0;
  std::uint32_t ttl = 0;
  std::size_t rdataOffset = 0;
  std::uint16_t rdataLength = 0;
  std::size_t ttlOffset = 0;  // where the TTL sits in the message (for rewriting)
};

/// A whole message with its records (for upstream responses).
struct Message {
  Header header;
  std::vector<Question> questions;
  std::vector<Record> answers, authority, additional;
};

/// Parses every section. Same checks as parseQuery; record counts are bounded by the bytes.
Result<Message> parseMessage(std::span<const std::uint8_t> msg);

/// Appends big-endian integers and names to a byte string.
class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}

  void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u16(std::uint16_t v);
  void u32(std::uint32_t v);
  void bytes(std::string_view b) { out_.append(b); }
  /// An uncompressed wire name.
  void name(std::string_view wire) { out_.append(wire); }
  /// A compression pointer to `offset` (< 0x4000).
  void pointer(std::uint16_t offset) { u16(static_cast<std::uint16_t>(0xC000 | offset)); }
  /// Record header: owner (already written by the caller), type, class, ttl, then rdata written
  /// by `fn`, with the rdlength filled in afterwards.
  template <class Fn>
  void rdata(Fn&& fn) {
    const std::size_t at = out_.size();
    u16(0);
    fn();
    const std::size_t len = out_.size() - at - 2;
    out_[at] = static_cast<char>((len >> 8) & 0xFF);
    out_[at + 1] = static_cast<char>(len & 0xFF);
  }
  std::size_t size() const { return out_.size(); }

 private:
  std::string& out_;
};

/// Reads a big-endian u16 / u32 at `off` (caller checked the bounds).
std::uint16_t getU16(const std::uint8_t* p);
std::uint32_t getU32(const std::uint8_t* p);
/// Overwrites a big-endian u16 / u32 in place.
void putU16(std::uint8_t* p, std::uint16_t v);
void putU32(std::uint8_t* p, std::uint32_t v);

}  // namespace kdp::dns::wire
