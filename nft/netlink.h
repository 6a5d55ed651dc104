#pragma once
// A netlink socket to nf_tables: commits batches and reads back what the kernel holds.
// Not thread-safe: one owner thread (the proxy's sync thread).

#include <cstdint>
#include <string>

#include "common/result.h"
#include "nft/batch.h"
#include "nft/handles.h"

namespace kdp::nft {

/// A NETLINK_NETFILTER socket of the caller's network namespace, bound, with acks capped
/// (NETLINK_CAP_ACK) and reads bounded by `recvTimeoutSeconds`. Throws std::runtime_error
/// "<what> socket|bind: <reason>".
MnlSocket openNetfilterSocket(const std::string& what, int recvTimeoutSeconds);

class Netlink {
 public:
  /// Opens and binds the socket (in the caller's network namespace). Throws std::runtime_error
  /// when netlink is not available (startup only).
  Netlink();

  /// A sequence number base for a new Batch.
  std::uint32_t nextSeq() const { return seq_; }

  /// Sends the batch as one transaction and waits (at most a few seconds) for every ACK.
  /// On refusal the kernel kept its old state; the error names the message and the reason
  /// ("add rule ip kube-dataplane services: No such file or directory").
  Result<void> commit(Batch& batch);

  /// The ruleset generation (bumped by every commit, ours or anyone's).
  Result<std::uint32_t> generation();

  /// The number of rules in table `family` `name` (0 when the table does not exist).
  Result<long> countRules(std::uint16_t family, const std::string& table);

 private:
  Result<void> request(std::vector<char>& msg, std::uint32_t seq,
                       int (*cb)(const nlmsghdr*, void*), void* data);

  MnlSocket sock_;
  std::uint32_t portId_ = 0;
  std::uint32_t seq_ = 1;
  std::size_t sndbuf_ = 0;
  int lastErrno_ = 0;  // of the last request() refused by the kernel
};

}  // namespace kdp::nft
