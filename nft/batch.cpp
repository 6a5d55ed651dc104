#include "nft/batch.h"

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <endian.h>
#include <linux/netlink.h>

#include <algorithm>
#include <cstdlib>

namespace kdp::nft {

namespace {

// Room for the largest message we build (elements stop at kElementBytesPerMessage plus one).
constexpr std::size_t kMaxMessage = 128 * 1024;
// A batch grows by chunks of this size: a message goes into the next chunk when the current one
// has less than kMaxMessage left.
constexpr std::size_t kChunkBytes = 1024 * 1024;

template <class H>
H must(H h) {
  if (!h) {
    std::abort();  // out of memory
  }
  return h;
}

std::string familyName(std::uint16_t family) {
  switch (family) {
    case NFPROTO_IPV4: return "ip";
    case NFPROTO_IPV6: return "ip6";
    case NFPROTO_INET: return "inet";
    default: return std::to_string(family);
  }
}

}  // namespace

Batch::Batch(std::uint32_t firstSeq) : firstSeq_(firstSeq), seq_(firstSeq) {
  auto* nlh = reinterpret_cast<nlmsghdr*>(reserve());
  nftnl_batch_begin(reinterpret_cast<char*>(nlh), seq_++);
  chunks_.back().used += NLMSG_ALIGN(nlh->nlmsg_len);
}

char* Batch::reserve() {
  if (chunks_.empty() || chunks_.back().used + kMaxMessage > kChunkBytes) {
    // Not zeroed: every byte sent is written first (headers and attribute padding included).
    chunks_.push_back(Chunk{std::unique_ptr<std::uint8_t[]>(new std::uint8_t[kChunkBytes]), 0});
  }
  return reinterpret_cast<char*>(chunks_.back().bytes.get() + chunks_.back().used);
}

void Batch::commitMessage(const char* what) {
  Chunk& c = chunks_.back();
  auto* nlh = reinterpret_cast<nlmsghdr*>(c.bytes.get() + c.used);
  c.used += NLMSG_ALIGN(nlh->nlmsg_len);
  descriptions_.emplace_back(what);
}

std::size_t Batch::size() const {
  std::size_t n = 0;
  for (const auto& c : chunks_) {
    n += c.used;
  }
  return n;
}

void Batch::addTable(std::uint16_t family, const std::string& table) {
  TableHandle t = must(TableHandle(nftnl_table_alloc()));
  nftnl_table_set_str(t.get(), NFTNL_TABLE_NAME, table.c_str());
  nftnl_table_set_u32(t.get(), NFTNL_TABLE_FAMILY, family);
  auto* nlh = nftnl_nlmsg_build_hdr(reserve(), NFT_MSG_NEWTABLE, family,
                                    NLM_F_CREATE | NLM_F_ACK, seq_++);
  nftnl_table_nlmsg_build_payload(nlh, t.get());
  commitMessage(("add table " + familyName(family) + " " + table).c_str());
}

void Batch::deleteTable(std::uint16_t family, const std::string& table) {
  TableHandle t = must(TableHandle(nftnl_table_alloc()));
  nftnl_table_set_str(t.get(), NFTNL_TABLE_NAME, table.c_str());
  nftnl_table_set_u32(t.get(), NFTNL_TABLE_FAMILY, family);
  auto* nlh = nftnl_nlmsg_build_hdr(reserve(), NFT_MSG_DELTABLE, family, NLM_F_ACK, seq_++);
  nftnl_table_nlmsg_build_payload(nlh, t.get());
  commitMessage(("delete table " + familyName(family) + " " + table).c_str());
}

void Batch::addChain(std::uint16_t family, const std::string& table, const ChainSpec& chain) {
  ChainHandle c = must(ChainHandle(nftnl_chain_alloc()));
  nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TABLE, table.c_str());
  nftnl_chain_set_str(c.get(), NFTNL_CHAIN_NAME, chain.name.c_str());
  nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_FAMILY, family);
  if (chain.hook) {
    nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TYPE, chain.hook->type.c_str());
    nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_HOOKNUM, chain.hook->hooknum);
    nftnl_chain_set_s32(c.get(), NFTNL_CHAIN_PRIO, chain.hook->priority);
    nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_POLICY, NF_ACCEPT);
  }
  auto* nlh = nftnl_nlmsg_build_hdr(reserve(), NFT_MSG_NEWCHAIN, family,
                                    NLM_F_CREATE | NLM_F_ACK, seq_++);
  nftnl_chain_nlmsg_build_payload(nlh, c.get());
  commitMessage(("add chain " + familyName(family) + " " + table + " " + chain.name).c_str());
}

void Batch::deleteChain(std::uint16_t family, const std::string& table,
                        const std::string& chain) {
  ChainHandle c = must(ChainHandle(nftnl_chain_alloc()));
  nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TABLE, table.c_str());
  nftnl_chain_set_str(c.get(), NFTNL_CHAIN_NAME, chain.c_str());
  nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_FAMILY, family);
  auto* nlh = nftnl_nlmsg_build_hdr(reserve(), NFT_MSG_DELCHAIN, family, NLM_F_ACK, seq_++);
  nftnl_chain_nlmsg_build_payload(nlh, c.get());
  commitMessage(("delete chain " + familyName(family) + " " + table + " " + chain).c_str());
}

void Batch::deleteSet(std::uint16_t family, const std::string& table, const std::string& set) {
  SetHandle s = must(SetHandle(nftnl_set_alloc()));
  nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, table.c_str());
  nftnl_set_set_str(s.get(), NFTNL_SET_NAME, set.c_str());
  nftnl_set_set_u32(s.get(), NFTNL_SET_FAMILY, family);
  auto* nlh = nftnl_nlmsg_build_hdr(reserve(), NFT_MSG_DELSET, family, NLM_F_ACK, seq_++);
  nftnl_set_nlmsg_build_payload(nlh, s.get());
  commitMessage(("delete set " + familyName(family) + " " + table + " " + set).c_str());
}

void Batch::addRule(std::uint16_t family, const std::string& table, const std::string& chain,
                    std::vector<ExprHandle>&& exprs) {
  RuleHandle r = must(RuleHandle(nftnl_rule_alloc()));
  nftnl_rule_set_str(r.get(), NFTNL_RULE_TABLE, table.c_str());
  nftnl_rule_set_str(r.get(), NFTNL_RULE_CHAIN, chain.c_str());
  nftnl_rule_set_u32(r.get(), NFTNL_RULE_FAMILY, family);
  for (auto& e : exprs) {
    nftnl_rule_add_expr(r.get(), e.release());  // the rule owns its expressions
  }
  exprs.clear();
  auto* nlh = nftnl_nlmsg_build_hdr(reserve(), NFT_MSG_NEWRULE, family,
                                    NLM_F_CREATE | NLM_F_APPEND | NLM_F_ACK, seq_++);
  nftnl_rule_nlmsg_build_payload(nlh, r.get());
  commitMessage(("add rule " + familyName(family) + " " + table + " " + chain).c_str());
}

std::uint32_t Batch::addSet(std::uint16_t family, const std::string& table, const SetSpec& set) {
  const std::uint32_t id = nextSetId_++;
  SetHandle s = must(SetHandle(nftnl_set_alloc()));
  nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, table.c_str());
  nftnl_set_set_str(s.get(), NFTNL_SET_NAME, set.name.c_str());
  nftnl_set_set_u32(s.get(), NFTNL_SET_FAMILY, family);
  nftnl_set_set_u32(s.get(), NFTNL_SET_ID, id);
  nftnl_set_set_u32(s.get(), NFTNL_SET_FLAGS, set.flags);
  nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_TYPE, set.keyType);
  nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_LEN, set.keyLen);
  if (set.flags & NFT_SET_MAP) {
    nftnl_set_set_u32(s.get(), NFTNL_SET_DATA_TYPE, set.dataType);
    nftnl_set_set_u32(s.get(), NFTNL_SET_DATA_LEN, set.dataLen);
  }
  if (set.sizeHint != 0) {
    nftnl_set_set_u32(s.get(), NFTNL_SET_DESC_SIZE, set.sizeHint);
  }
  if (!set.concatFieldLengths.empty()) {
    nftnl_set_set_data(s.get(), NFTNL_SET_DESC_CONCAT, set.concatFieldLengths.data(),
                       static_cast<std::uint32_t>(set.concatFieldLengths.size()));
  }
  auto* nlh = nftnl_nlmsg_build_hdr(reserve(), NFT_MSG_NEWSET, family,
                                    NLM_F_CREATE | NLM_F_ACK, seq_++);
  nftnl_set_nlmsg_build_payload(nlh, s.get());
  commitMessage(("add set " + familyName(family) + " " + table + " " + set.name).c_str());
  return id;
}

namespace {

/// A nested NFTA_DATA_VALUE: the form of keys and data in set element attributes.
void putData(nlmsghdr* nlh, std::uint16_t type, const std::vector<std::uint8_t>& bytes) {
  nlattr* nest = mnl_attr_nest_start(nlh, type);
  mnl_attr_put(nlh, NFTA_DATA_VALUE, bytes.size(), bytes.data());
  mnl_attr_nest_end(nlh, nest);
}

}  // namespace

void Batch::elements(std::uint16_t type, std::uint16_t family, const std::string& table,
                     const std::string& set, std::span<const Element> elements) {
  const bool add = type == NFT_MSG_NEWSETELEM;
  std::size_t next = 0;
  while (next < elements.size()) {
    const std::size_t begin = next;
    auto* nlh = nftnl_nlmsg_build_hdr(reserve(), type, family,
                                      (add ? NLM_F_CREATE : 0) | NLM_F_ACK, seq_++);
    mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, table.c_str());
    mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, set.c_str());
    nlattr* list = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_LIST_ELEMENTS);
    const std::size_t listStart = nlh->nlmsg_len;
    while (next < elements.size() && next - begin < kElementsPerMessage &&
           nlh->nlmsg_len - listStart < kElementBytesPerMessage) {
      const Element& el = elements[next++];
      nlattr* e = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);
      putData(nlh, NFTA_SET_ELEM_KEY, el.key);
      if (!el.keyEnd.empty()) {
        putData(nlh, NFTA_SET_ELEM_KEY_END, el.keyEnd);
      }
      if (add && !el.data.empty()) {
        putData(nlh, NFTA_SET_ELEM_DATA, el.data);
      }
      if (add && (el.hasVerdict || el.verdict != 0)) {
        nlattr* data = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_DATA);
        nlattr* verdict = mnl_attr_nest_start(nlh, NFTA_DATA_VERDICT);
        mnl_attr_put_u32(nlh, NFTA_VERDICT_CODE, htobe32(static_cast<std::uint32_t>(el.verdict)));
        if (!el.chain.empty()) {
          mnl_attr_put_strz(nlh, NFTA_VERDICT_CHAIN, el.chain.c_str());
        }
        mnl_attr_nest_end(nlh, verdict);
        mnl_attr_nest_end(nlh, data);
      }
      mnl_attr_nest_end(nlh, e);
    }
    mnl_attr_nest_end(nlh, list);
    commitMessage(((add ? "add element " : "delete element ") + familyName(family) + " " +
                   table + " " + set + " (" + std::to_string(next - begin) + ")")
                      .c_str());
  }
}

void Batch::addElements(std::uint16_t family, const std::string& table, const std::string& set,
                        std::span<const Element> els) {
  elements(NFT_MSG_NEWSETELEM, family, table, set, els);
}

void Batch::deleteElements(std::uint16_t family, const std::string& table,
                           const std::string& set, std::span<const Element> els) {
  elements(NFT_MSG_DELSETELEM, family, table, set, els);
}

std::vector<std::span<const std::uint8_t>> Batch::finish() {
  if (!finished_) {
    auto* nlh = reinterpret_cast<nlmsghdr*>(reserve());
    nftnl_batch_end(reinterpret_cast<char*>(nlh), seq_++);
    chunks_.back().used += NLMSG_ALIGN(nlh->nlmsg_len);
    finished_ = true;
  }
  std::vector<std::span<const std::uint8_t>> out;
  for (const auto& c : chunks_) {
    if (c.used > 0) {
      out.emplace_back(c.bytes.get(), c.used);
    }
  }
  return out;
}

std::string Batch::describe(std::uint32_t seq) const {
  if (seq == firstSeq_) {
    return "batch begin";
  }
  const std::size_t i = seq - firstSeq_ - 1;
  if (seq > firstSeq_ && i < descriptions_.size()) {
    return descriptions_[i];
  }
  return "message seq=" + std::to_string(seq);
}

}  // namespace kdp::nft
