#include "dns/detail/plain_query.h"

namespace kdp::dns {

std::optional<PlainQuery> readPlainQuery(std::span<const std::uint8_t> msg) {
  const std::uint8_t* p = msg.data();
  const std::size_t size = msg.size();
  if (size < wire::kHeaderSize + 5) {
    return std::nullopt;
  }
  PlainQuery q;
  q.id = wire::getU16(p);
  q.flags = wire::getU16(p + 2);
  const std::uint16_t arcount = wire::getU16(p + 10);
  if ((q.flags & wire::kFlagQR) != 0 || ((q.flags >> 11) & 0xF) != 0 || wire::getU16(p + 4) != 1 ||
      wire::getU16(p + 6) != 0 || wire::getU16(p + 8) != 0 || arcount > 1) {
    return std::nullopt;
  }
  // The name: plain labels only (no pointer, no other label type), within 255 bytes and the
  // message.
  std::size_t off = wire::kHeaderSize;
  for (;;) {
    if (off >= size) {
      return std::nullopt;
    }
    const std::uint8_t len = p[off];
    if (len > wire::kMaxLabel || off - wire::kHeaderSize + 1u + len > wire::kMaxName) {
      return std::nullopt;
    }
    off += 1u + len;
    if (len == 0) {
      break;
    }
  }
  q.name = std::string_view(reinterpret_cast<const char*>(p + wire::kHeaderSize),
                            off - wire::kHeaderSize);
  if (size - off < 4) {
    return std::nullopt;
  }
  q.qtype = wire::getU16(p + off);
  q.qclass = wire::getU16(p + off + 2);
  off += 4;
  if (arcount == 0) {
    return off == size ? std::optional<PlainQuery>(q) : std::nullopt;
  }
  // OPT: root owner, type, class (UDP size), TTL (extended rcode, version, DO), rdata.
  if (size - off < 11 || p[off] != 0 || wire::getU16(p + off + 1) != wire::kTypeOPT) {
    return std::nullopt;
  }
  const std::uint16_t udpSize = wire::getU16(p + off + 3);
  const std::uint32_t ttl = wire::getU32(p + off + 5);
  const std::uint16_t rdlength = wire::getU16(p + off + 9);
  if (((ttl >> 16) & 0xFF) != 0 || size - off - 11 != rdlength) {
    return std::nullopt;
  }
  q.edns = true;
  q.udpSize = udpSize < wire::kMinUdpSize ? wire::kMinUdpSize : udpSize;
  q.dnssecOk = (ttl & 0x8000) != 0;
  return q;
}

}  // namespace kdp::dns
