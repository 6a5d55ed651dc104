#include "dns/answer.h"

#include <algorithm>
#include <optional>

namespace kdp::dns {

namespace {

using wire::Writer;

constexpr unsigned kMaxCnameChain = 8;

/// Assembles a response: answer and authority in `body_`, additional in `extra_`, so that the
/// additional section can be dropped first when the response is too large.
class Builder {
 public:
  Builder(const wire::Query& q, bool withQuestion) : q_(q) {
    out_.assign(wire::kHeaderSize, '\0');
    if (withQuestion) {
      // Written out rather than copied: a compressed question name may point at bytes of the
      // query that the response does not have. The letter case is the client's.
      Writer w(out_);
      w.name(q.question.name);
      w.u16(q.question.qtype);
      w.u16(q.question.qclass);
      qd_ = 1;
    }
  }

  /// The records of `set`, owned by the question's name (a pointer to offset 12).
  void answerAtQuestion(const RRsetView& set) {
    forEachTail(set, [&](std::string_view tail) {
      Writer w(body_);
      w.pointer(wire::kHeaderSize);
      w.bytes(tail);
    });
    an_ += set.count;
    addAdditional(set);
  }
  /// The records of `set`, owned by `name` (wire, written out; empty: the question's name).
  void answerAt(std::string_view name, const RRsetView& set) {
    forEachTail(set, [&](std::string_view tail) {
      if (name.empty()) {
        Writer(body_).pointer(wire::kHeaderSize);
      } else {
        body_.append(name);
      }
      body_.append(tail);
    });
    an_ += set.count;
    addAdditional(set);
  }
  void authority(std::string_view owner, const std::string& tail) {
    body_.append(owner);
    body_.append(tail);
    ++ns_;
  }

  /// The finished message: header flags from the query, `aa`, `rcode`; OPT when the query had
  /// one; truncated to `limit` (additional first, then everything but the question, with TC).
  std::string finish(std::uint16_t rcode, bool aa, std::size_t limit, bool& truncated) {
    std::string opt;
    if (q_.edns) {
      Writer w(opt);
      w.u8(0);
      w.u16(wire::kTypeOPT);
      w.u16(kServerUdpSize);
      const std::uint32_t ttl = (std::uint32_t{static_cast<std::uint8_t>(rcode >> 4)} << 24) |
                                (q_.edns->dnssecOk ? 0x8000u : 0u);
      w.u32(ttl);
      w.u16(0);
    }
    truncated = false;
    std::uint16_t ar = ar_;
    const std::size_t base = out_.size() + opt.size();
    if (base + body_.size() + extra_.size() > limit) {
      extra_.clear();
      ar = 0;
      if (base + body_.size() > limit) {
        body_.clear();
        an_ = 0;
        ns_ = 0;
        truncated = true;
      }
    }
    std::uint16_t flags = wire::kFlagQR | (q_.header.flags & (0x7800 | wire::kFlagRD | wire::kFlagCD));
    flags |= wire::kFlagRA;
    if (aa) {
      flags |= wire::kFlagAA;
    }
    if (truncated) {
      flags |= wire::kFlagTC;
    }
    flags |= rcode & 0xF;
    wire::Header h{q_.header.id, flags, qd_, an_, ns_,
                   static_cast<std::uint16_t>(ar + (q_.edns ? 1 : 0))};
    wire::writeHeader(h, reinterpret_cast<std::uint8_t*>(out_.data()));
    out_ += body_;
    out_ += extra_;
    out_ += opt;
    return std::move(out_);
  }

 private:
  template <class Fn>
  static void forEachTail(const RRsetView& set, Fn&& fn) {
    std::string_view t = set.tails;
    while (t.size() >= 10) {
      const std::size_t len =
          10u + wire::getU16(reinterpret_cast<const std::uint8_t*>(t.data()) + 8);
      fn(t.substr(0, len));
      t.remove_prefix(len);
    }
  }
  void addAdditional(const RRsetView& set) {
    if (set.additionalCount != 0) {
      extra_ += set.additional;
      ar_ += set.additionalCount;
    }
  }

  const wire::Query& q_;
  std::string out_;
  std::string body_;
  std::string extra_;
  std::uint16_t qd_ = 0, an_ = 0, ns_ = 0, ar_ = 0;
};

Answer reply(Answer a, Builder& b, std::uint16_t rcode, bool aa, Transport t) {
  a.disposition = Disposition::Reply;
  a.rcode = rcode;
  a.authoritative = aa;
  a.wire = b.finish(rcode, aa, responseLimit(a.query, t), a.truncated);
  return a;
}

/// Pod names: <a-b-c-d | v6 with dashes>.<ns>.pod.<zone>. nullopt: not a well-formed pod IP.
std::optional<IpAddr> podIp(std::string_view label) {
  if (label.empty() || label.size() > 45) {
    return std::nullopt;
  }
  std::string text(label);
  const auto dashes = std::count(text.begin(), text.end(), '-');
  const bool v4 = dashes == 3 && text.find("--") == std::string::npos;
  std::replace(text.begin(), text.end(), '-', v4 ? '.' : ':');
  auto ip = IpAddr::parse(text);
  if (!ip || ip->isV4() != v4) {
    return std::nullopt;
  }
  return ip;
}

RRset cnameSet(std::string_view target, std::uint32_t ttl) {
  RRset set;
  set.type = wire::kTypeCNAME;
  set.count = 1;
  Writer w(set.tails);
  w.u16(wire::kTypeCNAME);
  w.u16(wire::kClassIN);
  w.u32(ttl);
  w.u16(static_cast<std::uint16_t>(target.size()));
  w.bytes(target);
  return set;
}

enum class Follow : std::uint8_t { Answered, NoData, NxDomain, External, Loop };

/// Appends the records of `node` (owned by `owner`, a wire name written out) for `qtype`,
/// following ExternalName CNAMEs inside the zone. External: `external` names the target.
Follow follow(Builder& b, const Zone& zone, std::string owner, NodeView node,
              std::uint16_t qtype, std::string& external) {
  for (unsigned hop = 0; hop < kMaxCnameChain; ++hop) {
    if (!node.cnameTarget.empty() && qtype != wire::kTypeCNAME) {
      b.answerAt(owner, *node.find(wire::kTypeCNAME));
      const std::string_view target = node.cnameTarget;
      if (!wire::isSubdomain(target, zone.apex())) {
        external = std::string(target);
        return Follow::External;
      }
      const auto next = zone.find(target);
      if (!next) {
        return Follow::NxDomain;
      }
      owner = std::string(target);
      node = *next;
      continue;
    }
    bool any = false;
    node.forEachRRset([&](const RRsetView& set) {
      if (set.type == qtype || qtype == wire::kTypeANY) {
        b.answerAt(owner, set);
        any = true;
      }
    });
    return any ? Follow::Answered : Follow::NoData;
  }
  return Follow::Loop;
}

}  // namespace

std::size_t responseLimit(const wire::Query& query, Transport transport) {
  if (transport == Transport::Tcp) {
    return 65535;
  }
  return query.edns ? query.edns->udpSize : wire::kMinUdpSize;
}

std::string emptyResponse(const wire::Query& query, std::uint16_t rcode, bool authoritative) {
  Builder b(query, query.questionEnd > wire::kHeaderSize);
  bool truncated = false;
  return b.finish(rcode, authoritative, 65535, truncated);
}

std::string cnameReply(const wire::Query& query, std::string_view target, std::uint32_t ttl) {
  Builder b(query, true);
  b.answerAtQuestion(cnameSet(target, ttl).view());
  bool truncated = false;
  return b.finish(wire::kRcodeNoError, true, 65535, truncated);
}

Answer answer(std::span<const std::uint8_t> msg, const Zone& zone, Transport transport,
              const QueryContext& context) {
  Answer a;
  wire::QueryError err = wire::QueryError::None;
  auto parsed = wire::parseQuery(msg, &err);
  if (!parsed) {
    if (err == wire::QueryError::NoHeader) {
      return a;  // Drop
    }
    auto header = wire::readHeader(msg);
    if (header->qr()) {
      return a;
    }
    a.query.header = *header;
    a.query.questionEnd = 0;
    Builder b(a.query, false);
    return reply(std::move(a), b, wire::kRcodeFormErr, false, transport);
  }
  a.query = std::move(*parsed);
  const wire::Query& q = a.query;
  if (q.header.qr()) {
    return a;
  }
  a.qtype = q.question.qtype;
  Builder b(q, true);
  if (q.header.opcode() != 0) {
    return reply(std::move(a), b, wire::kRcodeNotImp, false, transport);
  }
  if (q.edns && q.edns->version != 0) {
    return reply(std::move(a), b, wire::kRcodeBadVers, false, transport);
  }
  const std::uint16_t qtype = q.question.qtype;
  if (qtype == wire::kTypeAXFR || qtype == wire::kTypeIXFR) {
    return reply(std::move(a), b, wire::kRcodeRefused, false, transport);
  }
  if (qtype == wire::kTypeOPT) {
    return reply(std::move(a), b, wire::kRcodeFormErr, false, transport);
  }
  if (q.question.qclass != wire::kClassIN && q.question.qclass != wire::kClassANY) {
    return reply(std::move(a), b, wire::kRcodeRefused, false, transport);
  }

  const std::string name = wire::lowerName(q.question.name);
  const bool cluster = wire::isSubdomain(name, zone.apex());
  const bool reverse = !cluster && (wire::isSubdomain(name, Zone::reverseV4()) ||
                                    wire::isSubdomain(name, Zone::reverseV6()));
  if (!cluster && !reverse) {
    a.disposition = Disposition::Forward;
    return a;
  }
  if (!zone.synced()) {
    if (reverse) {
      a.disposition = Disposition::Forward;
      return a;
    }
    return reply(std::move(a), b, wire::kRcodeServFail, false, transport);
  }

  const auto node = zone.find(name);
  if (reverse && !node) {
    // Not a cluster address: the rest of the reverse tree is upstream's (CoreDNS fallthrough).
    a.disposition = Disposition::Forward;
    return a;
  }
  const std::string& soaOwner =
      cluster ? zone.apex()
              : (wire::isSubdomain(name, Zone::reverseV4()) ? Zone::reverseV4() : Zone::reverseV6());
  auto negative = [&](std::uint16_t rcode) {
    b.authority(soaOwner, zone.soaTail());
    return reply(std::move(a), b, rcode, true, transport);
  };

  if (!node) {
    // Dynamic names: <ns>.svc / <ns>.pod (NODATA when the namespace exists) and pod records.
    const auto labels = wire::labels(name);
    const std::size_t apexLabels = wire::labels(zone.apex()).size();
    const std::size_t extra = labels.size() - apexLabels;
    const PodsMode pods = zone.options().pods;
    if (extra == 2 && (labels[1] == "svc" || (labels[1] == "pod" && pods != PodsMode::Disabled)) &&
        zone.namespaceExists(labels[0])) {
      return negative(wire::kRcodeNoError);
    }
    if (extra == 3 && labels[2] == "pod" && pods != PodsMode::Disabled &&
        zone.namespaceExists(labels[1])) {
      auto ip = podIp(labels[0]);
      if (ip && (pods == PodsMode::Insecure || zone.podIpExists(labels[1], *ip))) {
        const std::uint16_t want = ip->isV4() ? wire::kTypeA : wire::kTypeAAAA;
        if (qtype == want || qtype == wire::kTypeANY) {
          RRset set;
          set.type = want;
          set.count = 1;
          Writer w(set.tails);
          w.u16(want);
          w.u16(wire::kClassIN);
          w.u32(zone.options().ttl);
          w.u16(static_cast<std::uint16_t>(ip->size()));
          w.bytes(std::string_view(reinterpret_cast<const char*>(ip->bytes().data()), ip->size()));
          b.answerAtQuestion(set.view());
          return reply(std::move(a), b, wire::kRcodeNoError, true, transport);
        }
        return negative(wire::kRcodeNoError);
      }
    }
    if (cluster && zone.options().autopath && context.client) {
      if (const std::string* ns = zone.podNamespace(*context.client)) {
        auto first = wire::nameFromText(*ns + ".svc");
        const std::string firstDomain = first->substr(0, first->size() - 1) + zone.apex();
        if (name.size() > firstDomain.size() && wire::isSubdomain(name, firstDomain)) {
          // The base name's labels, without the root: candidates are base + each domain.
          const std::string base = name.substr(0, name.size() - firstDomain.size());
          const std::string svcDomain = std::string("\3svc") + zone.apex();
          for (const std::string* domain : {&svcDomain, &zone.apex()}) {
            const std::string candidate = base + *domain;
            const auto found =
                candidate.size() <= wire::kMaxName ? zone.find(candidate) : std::nullopt;
            if (!found) {
              continue;
            }
            b.answerAtQuestion(cnameSet(candidate, zone.options().ttl).view());
            std::string external;
            const Follow f = follow(b, zone, candidate, *found, qtype, external);
            if (f == Follow::External) {
              a.externalTarget = external;
            }
            if (f == Follow::NxDomain || f == Follow::NoData) {
              b.authority(soaOwner, zone.soaTail());
            }
            return reply(std::move(a), b,
                         f == Follow::NxDomain ? wire::kRcodeNxDomain
                         : f == Follow::Loop   ? wire::kRcodeServFail
                                               : wire::kRcodeNoError,
                         true, transport);
          }
          if (context.hostSearch != nullptr) {
            for (const auto& domain : *context.hostSearch) {
              std::string candidate = base + domain;
              if (candidate.size() <= wire::kMaxName && !wire::isSubdomain(candidate, zone.apex())) {
                a.autopath.push_back(std::move(candidate));
              }
            }
          }
          std::string bare = base + std::string(1, '\0');
          if (!wire::isSubdomain(bare, zone.apex())) {
            a.autopath.push_back(std::move(bare));
          }
          a.ttl = zone.options().ttl;
        }
      }
    }
    return negative(wire::kRcodeNxDomain);
  }

  // Records of the name, and ExternalName CNAME chains followed inside the zone.
  std::string external;
  switch (follow(b, zone, std::string(), *node, qtype, external)) {
    case Follow::Answered:
      return reply(std::move(a), b, wire::kRcodeNoError, true, transport);
    case Follow::NoData:
      return negative(wire::kRcodeNoError);
    case Follow::NxDomain:
      return negative(wire::kRcodeNxDomain);
    case Follow::External:
      a.externalTarget = std::move(external);
      return reply(std::move(a), b, wire::kRcodeNoError, true, transport);
    case Follow::Loop:
      break;
  }
  return reply(std::move(a), b, wire::kRcodeServFail, false, transport);
}

}  // namespace kdp::dns
