#include "dns/detail/wire.h"

#include <cstring>

namespace kdp::dns::wire {

std::uint16_t getU16(const std::uint8_t* p) {
  std::uint8_t b[2];
  std::memcpy(b, p, 2);
  return static_cast<std::uint16_t>((b[0] << 8) | b[1]);
}

std::uint32_t getU32(const std::uint8_t* p) {
  std::uint8_t b[4];
  std::memcpy(b, p, 4);
  return (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8) |
         std::uint32_t{b[3]};
}

void putU16(std::uint8_t* p, std::uint16_t v) {
  const std::uint8_t b[2] = {static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
  std::memcpy(p, b, 2);
}

void putU32(std::uint8_t* p, std::uint32_t v) {
  const std::uint8_t b[4] = {static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16),
                             static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
  std::memcpy(p, b, 4);
}

void Writer::u16(std::uint16_t v) {
  out_.push_back(static_cast<char>((v >> 8) & 0xFF));
  out_.push_back(static_cast<char>(v & 0xFF));
}

void Writer::u32(std::uint32_t v) {
  u16(static_cast<std::uint16_t>(v >> 16));
  u16(static_cast<std::uint16_t>(v & 0xFFFF));
}

Result<Header> readHeader(std::span<const std::uint8_t> msg) {
  if (msg.size() < kHeaderSize) {
    return Error{"truncated header"};
  }
  const std::uint8_t* p = msg.data();
  Header h;
  h.id = getU16(p);
  h.flags = getU16(p + 2);
  h.qdcount = getU16(p + 4);
  h.ancount = getU16(p + 6);
  h.nscount = getU16(p + 8);
  h.arcount = getU16(p + 10);
  return h;
}

void writeHeader(const Header& h, std::uint8_t* out) {
  putU16(out, h.id);
  putU16(out + 2, h.flags);
  putU16(out + 4, h.qdcount);
  putU16(out + 6, h.ancount);
  putU16(out + 8, h.nscount);
  putU16(out + 10, h.arcount);
}

namespace {

// Walks a name; appends its labels to `out` when non-null. Pointers must point strictly before
// the pointer itself, so every jump goes backwards and a loop cannot be built; the hop count is
// bounded anyway (at most 127 labels fit in 255 bytes).
Result<void> walkName(std::span<const std::uint8_t> msg, std::size_t& off, WireName* out) {
  std::size_t pos = off;
  std::size_t wireLen = 0;
  bool jumped = false;
  for (unsigned hops = 0; hops < 256; ++hops) {
    if (pos >= msg.size()) {
      return Error{"name runs past the end"};
    }
    const std::uint8_t len = msg[pos];
    if ((len & 0xC0) == 0xC0) {
      if (msg.size() - pos < 2) {
        return Error{"compression pointer runs past the end"};
      }
      const std::size_t target = getU16(msg.data() + pos) & 0x3FFF;
      if (target >= pos) {
        return Error{"compression pointer does not point backwards"};
      }
      if (!jumped) {
        off = pos + 2;
        jumped = true;
      }
      pos = target;
      continue;
    }
    if ((len & 0xC0) != 0) {
      return Error{"unsupported label type"};
    }
    if (len > kMaxLabel) {
      return Error{"label longer than 63"};  // unreachable with the type check; kept for clarity
    }
    wireLen += 1u + len;
    if (wireLen > kMaxName) {
      return Error{"name longer than 255"};
    }
    if (len == 0) {
      if (out != nullptr) {
        out->push_back('\0');
      }
      if (!jumped) {
        off = pos + 1;
      }
      return {};
    }
    if (msg.size() - pos - 1 < len) {
      return Error{"label runs past the end"};
    }
    if (out != nullptr) {
      out->append(reinterpret_cast<const char*>(msg.data() + pos), 1u + len);
    }
    pos += 1u + len;
  }
  return Error{"too many labels"};
}

}  // namespace

Result<WireName> readName(std::span<const std::uint8_t> msg, std::size_t& off) {
  WireName name;
  name.reserve(64);
  std::size_t o = off;
  if (auto r = walkName(msg, o, &name); !r) {
    return r.error();
  }
  off = o;
  return name;
}

Result<void> skipName(std::span<const std::uint8_t> msg, std::size_t& off) {
  std::size_t o = off;
  if (auto r = walkName(msg, o, nullptr); !r) {
    return r;
  }
  off = o;
  return {};
}

WireName lowerName(std::string_view wire) {
  WireName out(wire);
  std::size_t i = 0;
  while (i < out.size()) {
    const auto len = static_cast<std::uint8_t>(out[i]);
    if (len == 0) {
      break;
    }
    for (std::size_t j = i + 1; j <= i + len && j < out.size(); ++j) {
      const char c = out[j];
      if (c >= 'A' && c <= 'Z') {
        out[j] = static_cast<char>(c - 'A' + 'a');
      }
    }
    i += 1u + len;
  }
  return out;
}

std::optional<WireName> nameFromText(std::string_view text) {
  if (!text.empty() && text.back() == '.') {
    text.remove_suffix(1);
  }
  WireName out;
  if (!text.empty()) {
    std::size_t start = 0;
    while (true) {
      const std::size_t dot = text.find('.', start);
      const std::string_view label =
          text.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
      if (label.empty() || label.size() > kMaxLabel) {
        return std::nullopt;
      }
      out.push_back(static_cast<char>(label.size()));
      out.append(label);
      if (dot == std::string_view::npos) {
        break;
      }
      start = dot + 1;
    }
  }
  out.push_back('\0');
  if (out.size() > kMaxName) {
    return std::nullopt;
  }
  return out;
}

std::string nameToText(std::string_view wire) {
  std::string out;
  std::size_t i = 0;
  while (i < wire.size()) {
    const auto len = static_cast<std::uint8_t>(wire[i]);
    if (len == 0) {
      break;
    }
    for (std::size_t j = i + 1; j <= i + len && j < wire.size(); ++j) {
      const auto c = static_cast<unsigned char>(wire[j]);
      if (c == '.' || c == '\\') {
        out.push_back('\\');
        out.push_back(static_cast<char>(c));
      } else if (c < '!' || c > '~') {
        char buf[5];
        buf[0] = '\\';
        buf[1] = static_cast<char>('0' + c / 100);
        buf[2] = static_cast<char>('0' + (c / 10) % 10);
        buf[3] = static_cast<char>('0' + c % 10);
        out.append(buf, 4);
      } else {
        out.push_back(static_cast<char>(c));
      }
    }
    out.push_back('.');
    i += 1u + len;
  }
  if (out.empty()) {
    out.push_back('.');
  }
  return out;
}

std::vector<std::string_view> labels(std::string_view wire) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < wire.size()) {
    const auto len = static_cast<std::uint8_t>(wire[i]);
    if (len == 0 || wire.size() - i - 1 < len) {
      break;
    }
    out.push_back(wire.substr(i + 1, len));
    i += 1u + len;
  }
  return out;
}

bool isSubdomain(std::string_view name, std::string_view zone) {
  if (zone.size() > name.size()) {
    return false;
  }
  // Walk name's label boundaries; the suffix must start at one.
  std::size_t i = 0;
  while (i < name.size()) {
    if (name.size() - i == zone.size()) {
      return name.substr(i) == zone;
    }
    const auto len = static_cast<std::uint8_t>(name[i]);
    if (len == 0) {
      break;
    }
    i += 1u + len;
  }
  return false;
}

namespace {

Result<Question> readQuestion(std::span<const std::uint8_t> msg, std::size_t& off) {
  Question q;
  auto name = readName(msg, off);
  if (!name) {
    return name.error();
  }
  if (msg.size() - off < 4) {
    return Error{"question runs past the end"};
  }
  q.name = std::move(*name);
  q.qtype = getU16(msg.data() + off);
  q.qclass = getU16(msg.data() + off + 2);
  off += 4;
  return q;
}

Result<Record> readRecord(std::span<const std::uint8_t> msg, std::size_t& off) {
  Record r;
  auto name = readName(msg, off);
  if (!name) {
    return name.error();
  }
  if (msg.size() - off < 10) {
    return Error{"record header runs past the end"};
  }
  r.name = std::move(*name);
  const std::uint8_t* p = msg.data() + off;
  r.type = getU16(p);
  r.rclass = getU16(p + 2);
  r.ttlOffset = off + 4;
  r.ttl = getU32(p + 4);
  r.rdataLength = getU16(p + 8);
  off += 10;
  if (msg.size() - off < r.rdataLength) {
    return Error{"rdata runs past the end"};
  }
  r.rdataOffset = off;
  off += r.rdataLength;
  return r;
}

}  // namespace

Result<Query> parseQuery(std::span<const std::uint8_t> msg, QueryError* error) {
  auto fail = [&](QueryError e, const char* what) -> Result<Query> {
    if (error != nullptr) {
      *error = e;
    }
    return Error{what};
  };
  auto header = readHeader(msg);
  if (!header) {
    return fail(QueryError::NoHeader, "truncated header");
  }
  Query q;
  q.header = *header;
  if (q.header.qdcount != 1) {
    return fail(QueryError::Malformed, "not exactly one question");
  }
  std::size_t off = kHeaderSize;
  auto question = readQuestion(msg, off);
  if (!question) {
    return fail(QueryError::Malformed, "bad question");
  }
  q.question = std::move(*question);
  q.questionEnd = off;
  const std::size_t records =
      std::size_t{q.header.ancount} + q.header.nscount + q.header.arcount;
  for (std::size_t i = 0; i < records; ++i) {
    auto rec = readRecord(msg, off);
    if (!rec) {
      return fail(QueryError::Malformed, "bad record");
    }
    if (rec->type == kTypeOPT) {
      const bool inAdditional = i >= std::size_t{q.header.ancount} + q.header.nscount;
      if (q.edns || rec->name.size() != 1 || !inAdditional) {
        return fail(QueryError::Malformed, "bad OPT record");
      }
      Edns e;
      e.udpSize = rec->rclass < kMinUdpSize ? kMinUdpSize : rec->rclass;
      e.version = static_cast<std::uint8_t>((rec->ttl >> 16) & 0xFF);
      e.dnssecOk = (rec->ttl & 0x8000) != 0;
      q.edns = e;
    }
  }
  if (error != nullptr) {
    *error = QueryError::None;
  }
  return q;
}

Result<Message> parseMessage(std::span<const std::uint8_t> msg) {
  auto header = readHeader(msg);
  if (!header) {
    return header.error();
  }
  Message m;
  m.header = *header;
  std::size_t off = kHeaderSize;
  for (unsigned i = 0; i < m.header.qdcount; ++i) {
    auto q = readQuestion(msg, off);
    if (!q) {
      return q.error();
    }
    m.questions.push_back(std::move(*q));
  }
  auto section = [&](std::uint16_t count, std::vector<Record>& out) -> Result<void> {
    for (unsigned i = 0; i < count; ++i) {
      auto r = readRecord(msg, off);
      if (!r) {
        return r.error();
      }
      out.push_back(std::move(*r));
    }
    return {};
  };
  if (auto r = section(m.header.ancount, m.answers); !r) {
    return r.error();
  }
  if (auto r = section(m.header.nscount, m.authority); !r) {
    return r.error();
  }
  if (auto r = section(m.header.arcount, m.additional); !r) {
    return r.error();
  }
  return m;
}

}  // namespace kdp::dns::wire
