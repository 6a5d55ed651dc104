#pragma once
// Builders for the nftables expressions a rule is made of, one function per expression type,
// each returning an owned handle. Registers are the kernel's (NFT_REG_VERDICT, NFT_REG_1,
// NFT_REG32_00 + n); data is given in the byte order the kernel compares (network order for
// packet fields, host order for meta mark and ct status, as nft does).

#include <cstdint>
#include <span>
#include <string>

#include "nft/handles.h"

namespace kdp::nft {

/// The 32-bit register holding word `n` (0..15) of the register file.
std::uint32_t reg32(std::uint32_t n);

ExprHandle payload(std::uint32_t base, std::uint32_t offset, std::uint32_t len, std::uint32_t dreg);
ExprHandle meta(std::uint32_t key, std::uint32_t dreg);
ExprHandle metaSet(std::uint32_t key, std::uint32_t sreg);
ExprHandle ct(std::uint32_t key, std::uint32_t dreg);
/// `ct <key> set <sreg>` (e.g. ct mark).
ExprHandle ctSet(std::uint32_t key, std::uint32_t sreg);
ExprHandle cmp(std::uint32_t sreg, std::uint32_t op, std::span<const std::uint8_t> data);
ExprHandle cmpU32(std::uint32_t sreg, std::uint32_t op, std::uint32_t hostValue);
/// dreg = (sreg & mask) ^ xor over `mask.size()` bytes.
ExprHandle bitwise(std::uint32_t sreg, std::uint32_t dreg, std::span<const std::uint8_t> mask,
                   std::span<const std::uint8_t> xorValue);
ExprHandle bitwiseU32(std::uint32_t sreg, std::uint32_t dreg, std::uint32_t mask,
                      std::uint32_t xorValue);
/// A set lookup; dreg < 0: a plain membership test; `invert`: matches when absent.
ExprHandle lookup(std::uint32_t sreg, const std::string& set, std::uint32_t setId, int dreg,
                  bool invert);
/// An immediate verdict (NF_DROP, NFT_JUMP, NFT_GOTO, NFT_RETURN...) with its target chain.
ExprHandle verdict(int code, const std::string& chain = {});
ExprHandle numgenRandom(std::uint32_t dreg, std::uint32_t modulus);
/// `jhash <sreg, len bytes> mod <modulus> seed <seed>` into dreg. The seed is always given: the
/// kernel picks a random one per rule otherwise, and two rules must hash alike.
ExprHandle jhash(std::uint32_t sreg, std::uint32_t len, std::uint32_t dreg, std::uint32_t modulus,
                 std::uint32_t seed);
/// `update @set { <keyReg> timeout <ms> : <dataReg> }` from the packet path: adds the element
/// when absent, and restarts its timeout either way.
ExprHandle dynsetUpdate(const std::string& set, std::uint32_t keyReg, std::uint32_t dataReg,
                        std::uint64_t timeoutMs);
ExprHandle dnat(std::uint32_t nfproto, std::uint32_t addrReg, std::uint32_t protoReg);
ExprHandle masquerade(std::uint32_t flags);
ExprHandle reject(std::uint32_t type, std::uint8_t code);

}  // namespace kdp::nft
