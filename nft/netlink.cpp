#include "nft/netlink.h"

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <vector>

#include "common/logging.h"

namespace kdp::nft {

namespace {

constexpr std::size_t kRecvBuffer = 256 * 1024;
constexpr int kAckTimeoutSeconds = 10;

std::string errnoText(int err) { return std::strerror(err); }

/// The extended ACK message (NLMSGERR_ATTR_MSG) of an error, if the kernel gave one.
std::string extackMessage(const nlmsghdr* nlh) {
  if ((nlh->nlmsg_flags & NLM_F_ACK_TLVS) == 0) {
    return {};
  }
  const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
  // With NETLINK_CAP_ACK the original message is not echoed: attributes follow the header.
  const std::size_t off = sizeof(nlmsghdr) + sizeof(nlmsgerr);
  if (nlh->nlmsg_len <= off) {
    return {};
  }
  const auto* p = reinterpret_cast<const char*>(nlh) + off;
  std::size_t left = nlh->nlmsg_len - off;
  (void)err;
  while (left >= sizeof(nlattr)) {
    nlattr attr;
    std::memcpy(&attr, p, sizeof(attr));
    if (attr.nla_len < sizeof(nlattr) || attr.nla_len > left) {
      break;
    }
    if ((attr.nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG &&
        attr.nla_len > sizeof(nlattr)) {
      std::string msg(p + sizeof(nlattr), attr.nla_len - sizeof(nlattr));
      return msg.c_str();  // drop the trailing NUL
    }
    const std::size_t step = NLA_ALIGN(attr.nla_len);
    if (step >= left) {
      break;
    }
    p += step;
    left -= step;
  }
  return {};
}

void setBuffer(mnl_socket* sock, int optForce, int opt, int size) {
  if (setsockopt(mnl_socket_get_fd(sock), SOL_SOCKET, optForce, &size, sizeof(size)) != 0) {
    (void)setsockopt(mnl_socket_get_fd(sock), SOL_SOCKET, opt, &size, sizeof(size));
  }
}

}  // namespace

MnlSocket openNetfilterSocket(const std::string& what, int recvTimeoutSeconds) {
  MnlSocket sock(mnl_socket_open(NETLINK_NETFILTER));
  if (!sock) {
    throw std::runtime_error(what + " socket: " + errnoText(errno));
  }
  if (mnl_socket_bind(sock.get(), 0, MNL_SOCKET_AUTOPID) < 0) {
    throw std::runtime_error(what + " bind: " + errnoText(errno));
  }
  int one = 1;
  (void)mnl_socket_setsockopt(sock.get(), NETLINK_CAP_ACK, &one, sizeof(one));
  timeval tv{recvTimeoutSeconds, 0};
  (void)setsockopt(mnl_socket_get_fd(sock.get()), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return sock;
}

Netlink::Netlink() : sock_(openNetfilterSocket("netlink", kAckTimeoutSeconds)) {
  portId_ = mnl_socket_get_portid(sock_.get());
  int one = 1;
  (void)mnl_socket_setsockopt(sock_.get(), NETLINK_EXT_ACK, &one, sizeof(one));
  setBuffer(sock_.get(), SO_RCVBUFFORCE, SO_RCVBUF, 8 * 1024 * 1024);
  // Sequence numbers unique across restarts, as nft does.
  seq_ = static_cast<std::uint32_t>(std::time(nullptr));
}

Result<void> Netlink::commit(Batch& batch) {
  const auto chunks = batch.finish();
  seq_ = batch.endSeq() + 1;
  std::vector<iovec> iov;
  std::size_t bytes = 0;
  for (const auto& c : chunks) {
    iov.push_back(iovec{const_cast<std::uint8_t*>(c.data()), c.size()});
    bytes += c.size();
  }
  // The kernel refuses a message larger than the socket's send buffer.
  if (bytes + 4096 > sndbuf_) {
    sndbuf_ = bytes * 2 + 65536;
    setBuffer(sock_.get(), SO_SNDBUFFORCE, SO_SNDBUF, static_cast<int>(sndbuf_));
  }
  // One sendmsg over every chunk: the kernel takes it as one datagram, one transaction.
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  msghdr msg{};
  msg.msg_name = &kernel;
  msg.msg_namelen = sizeof(kernel);
  msg.msg_iov = iov.data();
  msg.msg_iovlen = iov.size();
  ssize_t sent;
  do {
    sent = ::sendmsg(mnl_socket_get_fd(sock_.get()), &msg, 0);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) {
    const int err = errno;
    return Error{"netlink send (" + std::to_string(bytes) + " bytes): " + errnoText(err)};
  }
  // One ACK (or error) per message between begin and end.
  std::size_t pending = batch.messageCount();
  std::string firstError;
  std::vector<char> buf(kRecvBuffer);
  while (pending > 0) {
    const ssize_t n = mnl_socket_recvfrom(sock_.get(), buf.data(), buf.size());
    if (n < 0) {
      const int err = errno;
      if (err == EINTR) {
        continue;
      }
      return Error{"netlink receive: " + errnoText(err) + (firstError.empty() ? "" : "; " + firstError)};
    }
    int len = static_cast<int>(n);
    for (auto* nlh = reinterpret_cast<const nlmsghdr*>(buf.data()); mnl_nlmsg_ok(nlh, len);
         nlh = mnl_nlmsg_next(nlh, &len)) {
      if (nlh->nlmsg_type != NLMSG_ERROR || nlh->nlmsg_seq < batch.firstSeq() ||
          nlh->nlmsg_seq >= batch.endSeq()) {
        continue;
      }
      const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
      if (err->error != 0 && firstError.empty()) {
        firstError = batch.describe(nlh->nlmsg_seq) + ": " + errnoText(-err->error);
        if (auto m = extackMessage(nlh); !m.empty()) {
          firstError += " (" + m + ")";
        }
      }
      if (nlh->nlmsg_seq == batch.firstSeq()) {
        pending = 0;  // the batch itself was refused: no other answer comes
      } else if (pending > 0) {
        --pending;
      }
    }
  }
  if (!firstError.empty()) {
    return Error{firstError};
  }
  return {};
}

Result<void> Netlink::request(std::vector<char>& msg, std::uint32_t seq,
                              int (*cb)(const nlmsghdr*, void*), void* data) {
  lastErrno_ = 0;
  auto* nlh = reinterpret_cast<nlmsghdr*>(msg.data());
  if (mnl_socket_sendto(sock_.get(), nlh, nlh->nlmsg_len) < 0) {
    return Error{"netlink send: " + errnoText(errno)};
  }
  std::vector<char> buf(kRecvBuffer);
  for (;;) {
    const ssize_t n = mnl_socket_recvfrom(sock_.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return Error{"netlink receive: " + errnoText(errno)};
    }
    const int r = mnl_cb_run(buf.data(), static_cast<std::size_t>(n), seq, portId_, cb, data);
    if (r == MNL_CB_ERROR) {
      lastErrno_ = errno;
      return Error{errnoText(lastErrno_)};
    }
    if (r == MNL_CB_STOP) {
      return {};
    }
  }
}

Result<std::uint32_t> Netlink::generation() {
  std::vector<char> msg(MNL_SOCKET_BUFFER_SIZE);
  const std::uint32_t seq = seq_++;
  nftnl_nlmsg_build_hdr(msg.data(), NFT_MSG_GETGEN, AF_UNSPEC, NLM_F_ACK, seq);
  std::uint32_t gen = 0;
  auto cb = [](const nlmsghdr* nlh, void* data) -> int {
    GenHandle g(nftnl_gen_alloc());
    if (g && nftnl_gen_nlmsg_parse(nlh, g.get()) == 0) {
      *static_cast<std::uint32_t*>(data) = nftnl_gen_get_u32(g.get(), NFTNL_GEN_ID);
    }
    return MNL_CB_OK;
  };
  if (auto r = request(msg, seq, cb, &gen); !r) {
    return r.error();
  }
  return gen;
}

Result<long> Netlink::countRules(std::uint16_t family, const std::string& table) {
  std::vector<char> msg(MNL_SOCKET_BUFFER_SIZE);
  const std::uint32_t seq = seq_++;
  auto* nlh = nftnl_nlmsg_build_hdr(msg.data(), NFT_MSG_GETRULE, family,
                                    NLM_F_DUMP | NLM_F_ACK, seq);
  RuleHandle rule(nftnl_rule_alloc());
  if (!rule) {
    std::abort();
  }
  nftnl_rule_set_str(rule.get(), NFTNL_RULE_TABLE, table.c_str());
  nftnl_rule_set_u32(rule.get(), NFTNL_RULE_FAMILY, family);
  nftnl_rule_nlmsg_build_payload(nlh, rule.get());
  long count = 0;
  auto cb = [](const nlmsghdr*, void* data) -> int {
    ++*static_cast<long*>(data);
    return MNL_CB_OK;
  };
  if (auto r = request(msg, seq, cb, &count); !r) {
    if (lastErrno_ == ENOENT) {
      return 0L;
    }
    return r.error();
  }
  return count;
}

}  // namespace kdp::nft
