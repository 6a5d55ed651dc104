#include "nft/batch.h"

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>

#include <algorithm>
#include <cstdlib>

namespace kdp::nft {

namespace {

// Room for the largest message we build: kElementsPerMessage elements of at most ~300 bytes.
constexpr std::size_t kMaxMessage = 128 * 1024;

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
  nftnl_batch_begin(reserve(), seq_++);
  auto* nlh = reinterpret_cast<nlmsghdr*>(buf_.data() + used_);
  used_ += NLMSG_ALIGN(nlh->nlmsg_len);
}

char* Batch::reserve() {
  if (buf_.size() < used_ + kMaxMessage) {
    buf_.resize(std::max(buf_.size() * 2, used_ + kMaxMessage));
  }
  return reinterpret_cast<char*>(buf_.data() + used_);
}

void Batch::commitMessage(const char* what) {
  auto* nlh = reinterpret_cast<nlmsghdr*>(buf_.data() + used_);
  used_ += NLMSG_ALIGN(nlh->nlmsg_len);
  descriptions_.emplace_back(what);
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

void Batch::elements(std::uint16_t type, std::uint16_t family, const std::string& table,
                     const std::string& set, std::span<const Element> elements) {
  const bool add = type == NFT_MSG_NEWSETELEM;
  for (std::size_t begin = 0; begin < elements.size(); begin += kElementsPerMessage) {
    const std::size_t end = std::min(elements.size(), begin + kElementsPerMessage);
    SetHandle s = must(SetHandle(nftnl_set_alloc()));
    nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, table.c_str());
    nftnl_set_set_str(s.get(), NFTNL_SET_NAME, set.c_str());
    nftnl_set_set_u32(s.get(), NFTNL_SET_FAMILY, family);
    for (std::size_t i = begin; i < end; ++i) {
      const Element& el = elements[i];
      SetElemHandle e = must(SetElemHandle(nftnl_set_elem_alloc()));
      nftnl_set_elem_set(e.get(), NFTNL_SET_ELEM_KEY, el.key.data(),
                         static_cast<std::uint32_t>(el.key.size()));
      if (!el.keyEnd.empty()) {
        nftnl_set_elem_set(e.get(), NFTNL_SET_ELEM_KEY_END, el.keyEnd.data(),
                           static_cast<std::uint32_t>(el.keyEnd.size()));
      }
      if (add && !el.data.empty()) {
        nftnl_set_elem_set(e.get(), NFTNL_SET_ELEM_DATA, el.data.data(),
                           static_cast<std::uint32_t>(el.data.size()));
      }
      if (add && el.verdict != 0) {
        nftnl_set_elem_set_u32(e.get(), NFTNL_SET_ELEM_VERDICT,
                               static_cast<std::uint32_t>(el.verdict));
        if (!el.chain.empty()) {
          nftnl_set_elem_set_str(e.get(), NFTNL_SET_ELEM_CHAIN, el.chain.c_str());
        }
      }
      nftnl_set_elem_add(s.get(), e.release());  // the set owns its elements
    }
    auto* nlh = nftnl_nlmsg_build_hdr(reserve(), type, family,
                                      (add ? NLM_F_CREATE : 0) | NLM_F_ACK, seq_++);
    nftnl_set_elems_nlmsg_build_payload(nlh, s.get());
    commitMessage(((add ? "add element " : "delete element ") + familyName(family) + " " +
                   table + " " + set + " (" + std::to_string(end - begin) + ")")
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

std::span<const std::uint8_t> Batch::finish() {
  if (!finished_) {
    nftnl_batch_end(reserve(), seq_++);
    auto* nlh = reinterpret_cast<nlmsghdr*>(buf_.data() + used_);
    used_ += NLMSG_ALIGN(nlh->nlmsg_len);
    finished_ = true;
  }
  return {buf_.data(), used_};
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
