#pragma once
// One nftables transaction: NFNL_MSG_BATCH_BEGIN, the messages, NFNL_MSG_BATCH_END, built in
// fixed-size chunks (a message never spans two; no buffer is ever regrown and copied) and sent
// by Netlink::commit() in one sendmsg over all chunks. The kernel applies all of it or nothing.
// Every message asks for an ACK, so that an error names the message it hit.
// Pure: builds bytes, touches no socket.

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "nft/handles.h"

namespace kdp::nft {

struct HookSpec {
  std::string type;  // "filter", "nat"
  std::uint32_t hooknum = 0;  // NF_INET_*
  std::int32_t priority = 0;
};

struct ChainSpec {
  std::string name;
  std::optional<HookSpec> hook;  // base chain (policy accept)
};

struct SetSpec {
  std::string name;
  std::uint32_t flags = 0;  // NFT_SET_MAP | NFT_SET_INTERVAL | NFT_SET_CONCAT
  std::uint32_t keyType = 0;  // nft's datatype id (for `nft list`); the kernel ignores it
  std::uint32_t keyLen = 0;   // bytes, each concatenated field padded to 4
  std::uint32_t dataType = 0;  // NFT_DATA_VERDICT for verdict maps
  std::uint32_t dataLen = 0;
  std::vector<std::uint8_t> concatFieldLengths;  // interval concatenations: each field's length
  std::uint32_t sizeHint = 0;  // expected elements (0: none): lets the kernel size its hash once
};

struct Element {
  std::vector<std::uint8_t> key;
  std::vector<std::uint8_t> keyEnd;  // interval sets: the inclusive end of the range
  std::vector<std::uint8_t> data;    // maps with data
  bool hasVerdict = false;           // verdict maps (NF_DROP is 0: a flag, not verdict != 0)
  int verdict = 0;                   // verdict maps: NF_DROP, NFT_GOTO, ...
  std::string chain;                 // verdict maps: target of NFT_JUMP / NFT_GOTO

  auto operator<=>(const Element&) const = default;
};

class Batch {
 public:
  /// Messages take sequence numbers firstSeq, firstSeq + 1, ...
  explicit Batch(std::uint32_t firstSeq);

  /// `add table` (no error if it exists).
  void addTable(std::uint16_t family, const std::string& table);
  void deleteTable(std::uint16_t family, const std::string& table);
  void addChain(std::uint16_t family, const std::string& table, const ChainSpec& chain);
  /// Deletes a chain and its rules (nothing may jump to it any more).
  void deleteChain(std::uint16_t family, const std::string& table, const std::string& chain);
  void deleteSet(std::uint16_t family, const std::string& table, const std::string& set);
  /// Takes the rule's expressions in order.
  void addRule(std::uint16_t family, const std::string& table, const std::string& chain,
               std::vector<ExprHandle>&& exprs);
  /// Declares a set; returns its transaction id (for lookups and elements in this batch).
  std::uint32_t addSet(std::uint16_t family, const std::string& table, const SetSpec& set);
  /// Adds (or deletes) elements, in messages of at most kElementsPerMessage elements and
  /// kElementBytesPerMessage bytes of elements (the kernel's nested attribute length is 16 bits).
  /// Written as netlink attributes straight into the batch.
  void addElements(std::uint16_t family, const std::string& table, const std::string& set,
                   std::span<const Element> elements);
  void deleteElements(std::uint16_t family, const std::string& table, const std::string& set,
                      std::span<const Element> elements);

  /// Closes the batch; the bytes to send, in order, as chunks. Call once.
  std::vector<std::span<const std::uint8_t>> finish();
  /// Bytes in the batch so far.
  std::size_t size() const;

  /// Messages between begin and end (each expects one ACK).
  std::size_t messageCount() const { return descriptions_.size(); }
  std::uint32_t firstSeq() const { return firstSeq_; }
  std::uint32_t endSeq() const { return seq_; }
  /// What the message with sequence number `seq` does ("add rule ip kube-dataplane services").
  std::string describe(std::uint32_t seq) const;

  static constexpr std::size_t kElementsPerMessage = 4096;
  static constexpr std::size_t kElementBytesPerMessage = 60000;

 private:
  char* reserve();
  void commitMessage(const char* what);
  void elements(std::uint16_t type, std::uint16_t family, const std::string& table,
                const std::string& set, std::span<const Element> elements);

  struct Chunk {
    std::unique_ptr<std::uint8_t[]> bytes;
    std::size_t used = 0;
  };
  std::vector<Chunk> chunks_;
  std::uint32_t firstSeq_;
  std::uint32_t seq_;
  std::uint32_t nextSetId_ = 1;
  bool finished_ = false;
  std::vector<std::string> descriptions_;  // by seq - firstSeq - 1
};

}  // namespace kdp::nft
