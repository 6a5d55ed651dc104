#include "nft/conntrack.h"
#include "nft/netlink.h"

#include <arpa/inet.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <string>

namespace kdp::nft {

namespace {

constexpr int kTimeoutSeconds = 5;
// Deletes sent before their ACKs are read: bounded so the ACKs fit the receive buffer.
constexpr std::size_t kDeletesInFlight = 256;

std::string errnoText(int err) { return std::strerror(err); }

/// Attributes of one nest (or message) by type; absent ones stay null.
template <int Max>
struct Attrs {
  const nlattr* at[Max + 1] = {};

  static int collect(const nlattr* a, void* data) {
    auto* self = static_cast<Attrs*>(data);
    const int type = mnl_attr_get_type(a);
    if (type >= 0 && type <= Max) {
      self->at[type] = a;
    }
    return MNL_CB_OK;
  }
  bool parseNested(const nlattr* nest) {
    return nest != nullptr && mnl_attr_parse_nested(nest, collect, this) >= 0;
  }
};

std::uint16_t port16(const nlattr* a) {
  return a == nullptr ? 0 : ntohs(mnl_attr_get_u16(a));
}

bool parseTuple(const nlattr* nest, IpFamily family, std::uint8_t& proto, ConntrackTuple& out) {
  Attrs<CTA_TUPLE_MAX> tuple;
  Attrs<CTA_IP_MAX> ip;
  Attrs<CTA_PROTO_MAX> l4;
  if (!tuple.parseNested(nest) || !ip.parseNested(tuple.at[CTA_TUPLE_IP]) ||
      !l4.parseNested(tuple.at[CTA_TUPLE_PROTO]) || l4.at[CTA_PROTO_NUM] == nullptr) {
    return false;
  }
  const bool v4 = family == IpFamily::V4;
  const nlattr* src = ip.at[v4 ? CTA_IP_V4_SRC : CTA_IP_V6_SRC];
  const nlattr* dst = ip.at[v4 ? CTA_IP_V4_DST : CTA_IP_V6_DST];
  const std::size_t len = v4 ? 4 : 16;
  if (src == nullptr || dst == nullptr || mnl_attr_get_payload_len(src) != len ||
      mnl_attr_get_payload_len(dst) != len) {
    return false;
  }
  out.src = IpAddr::fromBytes(family, static_cast<const std::uint8_t*>(mnl_attr_get_payload(src)));
  out.dst = IpAddr::fromBytes(family, static_cast<const std::uint8_t*>(mnl_attr_get_payload(dst)));
  proto = mnl_attr_get_u8(l4.at[CTA_PROTO_NUM]);
  out.srcPort = port16(l4.at[CTA_PROTO_SRC_PORT]);
  out.dstPort = port16(l4.at[CTA_PROTO_DST_PORT]);
  return true;
}

nlmsghdr* putHeader(char* buf, std::uint16_t msgType, std::uint16_t flags, std::uint32_t seq,
                    IpFamily family) {
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = static_cast<std::uint16_t>((NFNL_SUBSYS_CTNETLINK << 8) | msgType);
  nlh->nlmsg_flags = flags;
  nlh->nlmsg_seq = seq;
  auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
  nfg->nfgen_family = family == IpFamily::V4 ? AF_INET : AF_INET6;
  nfg->version = NFNETLINK_V0;
  nfg->res_id = 0;
  return nlh;
}

void putTuple(nlmsghdr* nlh, std::uint16_t type, std::uint8_t proto, const ConntrackTuple& t) {
  const bool v4 = t.src.isV4();
  nlattr* tuple = mnl_attr_nest_start(nlh, type);
  nlattr* ip = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
  mnl_attr_put(nlh, v4 ? CTA_IP_V4_SRC : CTA_IP_V6_SRC, t.src.size(), t.src.bytes().data());
  mnl_attr_put(nlh, v4 ? CTA_IP_V4_DST : CTA_IP_V6_DST, t.dst.size(), t.dst.bytes().data());
  mnl_attr_nest_end(nlh, ip);
  nlattr* l4 = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
  mnl_attr_put_u8(nlh, CTA_PROTO_NUM, proto);
  mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(t.srcPort));
  mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(t.dstPort));
  mnl_attr_nest_end(nlh, l4);
  mnl_attr_nest_end(nlh, tuple);
}

}  // namespace

Conntrack::Conntrack() : sock_(openNetfilterSocket("conntrack netlink", kTimeoutSeconds)) {
  portId_ = mnl_socket_get_portid(sock_.get());
  seq_ = static_cast<std::uint32_t>(std::time(nullptr));
}

Result<std::vector<ConntrackEntry>> Conntrack::list(IpFamily family, std::uint8_t proto) {
  std::vector<char> buf(64 * 1024);  // a dump part is at most a page or two
  const std::uint32_t seq = seq_++;
  nlmsghdr* nlh = putHeader(buf.data(), IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, seq, family);
  if (mnl_socket_sendto(sock_.get(), nlh, nlh->nlmsg_len) < 0) {
    return Error{"conntrack dump: " + errnoText(errno)};
  }
  struct Dump {
    IpFamily family;
    std::uint8_t proto;
    std::vector<ConntrackEntry> entries;
  } dump{family, proto, {}};
  auto cb = [](const nlmsghdr* msg, void* data) -> int {
    auto* d = static_cast<Dump*>(data);
    Attrs<CTA_MAX> attrs;
    if (mnl_attr_parse(msg, sizeof(nfgenmsg), Attrs<CTA_MAX>::collect, &attrs) < 0) {
      return MNL_CB_OK;  // not ours to judge: skip what we cannot read
    }
    ConntrackEntry e;
    std::uint8_t replyProto = 0;
    if (!parseTuple(attrs.at[CTA_TUPLE_ORIG], d->family, e.proto, e.original) ||
        !parseTuple(attrs.at[CTA_TUPLE_REPLY], d->family, replyProto, e.reply) ||
        e.proto != d->proto) {
      return MNL_CB_OK;
    }
    if (attrs.at[CTA_ZONE] != nullptr) {
      e.zone = ntohs(mnl_attr_get_u16(attrs.at[CTA_ZONE]));
    }
    d->entries.push_back(e);
    return MNL_CB_OK;
  };
  for (;;) {
    const ssize_t n = mnl_socket_recvfrom(sock_.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return Error{"conntrack dump: " + errnoText(errno)};
    }
    const int r = mnl_cb_run(buf.data(), static_cast<std::size_t>(n), seq, portId_, cb, &dump);
    if (r == MNL_CB_ERROR) {
      return Error{"conntrack dump: " + errnoText(errno)};
    }
    if (r == MNL_CB_STOP) {
      return std::move(dump.entries);
    }
  }
}

Result<std::size_t> Conntrack::erase(std::span<const ConntrackEntry> entries) {
  std::size_t deleted = 0;
  std::vector<char> msg(MNL_SOCKET_BUFFER_SIZE);
  std::vector<char> ack(MNL_SOCKET_BUFFER_SIZE);
  for (std::size_t start = 0; start < entries.size(); start += kDeletesInFlight) {
    const std::size_t count = std::min(kDeletesInFlight, entries.size() - start);
    const std::uint32_t firstSeq = seq_;
    for (std::size_t i = 0; i < count; ++i) {
      const auto& e = entries[start + i];
      nlmsghdr* nlh = putHeader(msg.data(), IPCTNL_MSG_CT_DELETE, NLM_F_REQUEST | NLM_F_ACK,
                                seq_++, e.original.src.family());
      putTuple(nlh, CTA_TUPLE_ORIG, e.proto, e.original);
      if (e.zone != 0) {
        mnl_attr_put_u16(nlh, CTA_ZONE, htons(e.zone));
      }
      if (mnl_socket_sendto(sock_.get(), nlh, nlh->nlmsg_len) < 0) {
        return Error{"conntrack delete: " + errnoText(errno)};
      }
    }
    // One ACK per delete: 0, or ENOENT when the entry went away by itself meanwhile.
    std::size_t pending = count;
    while (pending > 0) {
      const ssize_t n = mnl_socket_recvfrom(sock_.get(), ack.data(), ack.size());
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        return Error{"conntrack delete: " + errnoText(errno)};
      }
      int len = static_cast<int>(n);
      for (auto* nlh = reinterpret_cast<const nlmsghdr*>(ack.data()); mnl_nlmsg_ok(nlh, len);
           nlh = mnl_nlmsg_next(nlh, &len)) {
        if (nlh->nlmsg_type != NLMSG_ERROR || nlh->nlmsg_seq < firstSeq ||
            nlh->nlmsg_seq >= seq_ || pending == 0) {
          continue;
        }
        --pending;
        const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
        if (err->error == 0) {
          ++deleted;
        } else if (err->error != -ENOENT) {
          return Error{"conntrack delete: " + errnoText(-err->error)};
        }
      }
    }
  }
  return deleted;
}

}  // namespace kdp::nft
