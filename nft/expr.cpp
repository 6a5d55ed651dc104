#include "nft/expr.h"

#include <linux/netfilter/nf_tables.h>

#include <cstdlib>
#include <cstring>

namespace kdp::nft {

namespace {

ExprHandle alloc(const char* name) {
  ExprHandle e(nftnl_expr_alloc(name));
  if (!e) {
    std::abort();  // out of memory
  }
  return e;
}

}  // namespace

std::uint32_t reg32(std::uint32_t n) { return NFT_REG32_00 + n; }

ExprHandle payload(std::uint32_t base, std::uint32_t offset, std::uint32_t len,
                   std::uint32_t dreg) {
  auto e = alloc("payload");
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_PAYLOAD_BASE, base);
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_PAYLOAD_OFFSET, offset);
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_PAYLOAD_LEN, len);
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_PAYLOAD_DREG, dreg);
  return e;
}

ExprHandle meta(std::uint32_t key, std::uint32_t dreg) {
  auto e = alloc("meta");
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_META_KEY, key);
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_META_DREG, dreg);
  return e;
}

ExprHandle metaSet(std::uint32_t key, std::uint32_t sreg) {
  auto e = alloc("meta");
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_META_KEY, key);
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_META_SREG, sreg);
  return e;
}

ExprHandle ct(std::uint32_t key, std::uint32_t dreg) {
  auto e = alloc("ct");
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_CT_KEY, key);
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_CT_DREG, dreg);
  return e;
}

ExprHandle ctSet(std::uint32_t key, std::uint32_t sreg) {
  auto e = alloc("ct");
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_CT_KEY, key);
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_CT_SREG, sreg);
  return e;
}

ExprHandle cmp(std::uint32_t sreg, std::uint32_t op, std::span<const std::uint8_t> data) {
  auto e = alloc("cmp");
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_CMP_SREG, sreg);
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_CMP_OP, op);
  nftnl_expr_set(e.get(), NFTNL_EXPR_CMP_DATA, data.data(), static_cast<std::uint32_t>(data.size()));
  return e;
}

ExprHandle cmpU32(std::uint32_t sreg, std::uint32_t op, std::uint32_t hostValue) {
  std::uint8_t b[4];
  std::memcpy(b, &hostValue, 4);
  return cmp(sreg, op, b);
}

ExprHandle bitwise(std::uint32_t sreg, std::uint32_t dreg, std::span<const std::uint8_t> mask,
                   std::span<const std::uint8_t> xorValue) {
  auto e = alloc("bitwise");
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_BITWISE_SREG, sreg);
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_BITWISE_DREG, dreg);
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_BITWISE_OP, NFT_BITWISE_BOOL);
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_BITWISE_LEN, static_cast<std::uint32_t>(mask.size()));
  nftnl_expr_set(e.get(), NFTNL_EXPR_BITWISE_MASK, mask.data(),
                 static_cast<std::uint32_t>(mask.size()));
  nftnl_expr_set(e.get(), NFTNL_EXPR_BITWISE_XOR, xorValue.data(),
                 static_cast<std::uint32_t>(xorValue.size()));
  return e;
}

ExprHandle bitwiseU32(std::uint32_t sreg, std::uint32_t dreg, std::uint32_t mask,
                      std::uint32_t xorValue) {
  std::uint8_t m[4], x[4];
  std::memcpy(m, &mask, 4);
  std::memcpy(x, &xorValue, 4);
  return bitwise(sreg, dreg, m, x);
}

ExprHandle lookup(std::uint32_t sreg, const std::string& set, std::uint32_t setId, int dreg,
                  bool invert) {
  auto e = alloc("lookup");
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_LOOKUP_SREG, sreg);
  nftnl_expr_set_str(e.get(), NFTNL_EXPR_LOOKUP_SET, set.c_str());
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_LOOKUP_SET_ID, setId);
  if (dreg >= 0) {
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_LOOKUP_DREG, static_cast<std::uint32_t>(dreg));
  }
  if (invert) {
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
  }
  return e;
}

ExprHandle verdict(int code, const std::string& chain) {
  auto e = alloc("immediate");
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_IMM_VERDICT, static_cast<std::uint32_t>(code));
  if (!chain.empty()) {
    nftnl_expr_set_str(e.get(), NFTNL_EXPR_IMM_CHAIN, chain.c_str());
  }
  return e;
}

ExprHandle numgenRandom(std::uint32_t dreg, std::uint32_t modulus) {
  auto e = alloc("numgen");
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_NG_DREG, dreg);
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_NG_MODULUS, modulus);
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_NG_TYPE, NFT_NG_RANDOM);
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_NG_OFFSET, 0);
  return e;
}

ExprHandle jhash(std::uint32_t sreg, std::uint32_t len, std::uint32_t dreg, std::uint32_t modulus,
                 std::uint32_t seed) {
  auto e = alloc("hash");
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_HASH_TYPE, NFT_HASH_JENKINS);
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_HASH_SREG, sreg);
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_HASH_DREG, dreg);
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_HASH_LEN, len);
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_HASH_MODULUS, modulus);
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_HASH_SEED, seed);
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_HASH_OFFSET, 0);
  return e;
}

ExprHandle dynsetUpdate(const std::string& set, std::uint32_t keyReg, std::uint32_t dataReg,
                        std::uint64_t timeoutMs) {
  auto e = alloc("dynset");
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_DYNSET_SREG_KEY, keyReg);
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_DYNSET_SREG_DATA, dataReg);
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_DYNSET_OP, NFT_DYNSET_OP_UPDATE);
  nftnl_expr_set_u64(e.get(), NFTNL_EXPR_DYNSET_TIMEOUT, timeoutMs);
  nftnl_expr_set_str(e.get(), NFTNL_EXPR_DYNSET_SET_NAME, set.c_str());
  return e;
}

ExprHandle dnat(std::uint32_t nfproto, std::uint32_t addrReg, std::uint32_t protoReg) {
  auto e = alloc("nat");
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_NAT_TYPE, NFT_NAT_DNAT);
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_NAT_FAMILY, nfproto);
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_NAT_REG_ADDR_MIN, addrReg);
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_NAT_REG_PROTO_MIN, protoReg);
  return e;
}

ExprHandle masquerade(std::uint32_t flags) {
  auto e = alloc("masq");
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_MASQ_FLAGS, flags);
  return e;
}

ExprHandle reject(std::uint32_t type, std::uint8_t code) {
  auto e = alloc("reject");
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_REJECT_TYPE, type);
  nftnl_expr_set_u8(e.get(), NFTNL_EXPR_REJECT_CODE, code);
  return e;
}

}  // namespace kdp::nft
