#include "nft/batch.h"

#include <catch2/catch.hpp>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>

#include <cstring>
#include <memory>

#include "nft/expr.h"
#include "nft/netlink.h"
#include "nft/test_netns.h"

using namespace kdp;
using namespace kdp::nft;

namespace {

std::vector<Element> elements(std::size_t n) {
  std::vector<Element> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    out[i].key = {10, 0, static_cast<std::uint8_t>(i >> 8), static_cast<std::uint8_t>(i)};
  }
  return out;
}

}  // namespace

TEST_CASE("batch: begin, messages with their sequence numbers, end", "[nft]") {
  Batch b(100);
  b.addTable(NFPROTO_IPV4, "t");
  b.addChain(NFPROTO_IPV4, "t", ChainSpec{"c", std::nullopt});
  SetSpec s;
  s.name = "s";
  s.keyLen = 4;
  b.addSet(NFPROTO_IPV4, "t", s);
  b.addElements(NFPROTO_IPV4, "t", "s", elements(Batch::kElementsPerMessage + 1));
  CHECK(b.messageCount() == 5);  // the elements take two messages
  CHECK(b.describe(100) == "batch begin");
  CHECK(b.describe(101) == "add table ip t");
  CHECK(b.describe(102) == "add chain ip t c");
  CHECK(b.describe(104).starts_with("add element ip t s ("));
  CHECK(b.describe(105).starts_with("add element ip t s ("));
  CHECK(b.size() > 0);
  const auto chunks = b.finish();
  REQUIRE(chunks.size() == 1);
  const auto bytes = chunks.front();
  // Walk the messages: begin, 5, end; sequence numbers in order.
  std::size_t off = 0, count = 0;
  std::uint32_t seq = 100;
  while (off + sizeof(nlmsghdr) <= bytes.size()) {
    nlmsghdr h;
    std::memcpy(&h, bytes.data() + off, sizeof(h));
    REQUIRE(h.nlmsg_len >= sizeof(h));
    CHECK(h.nlmsg_seq == seq++);
    off += NLMSG_ALIGN(h.nlmsg_len);
    ++count;
  }
  CHECK(off == bytes.size());
  CHECK(count == 7);
}

TEST_CASE("netlink: a refused commit names the message and the kernel's reason; nothing applied",
          "[nft][netns]") {
  if (!test::TestNetns::available()) {
    WARN("skipped: needs root, ip and nft");
    return;
  }
  test::TestNetns ns;
  auto nl = ns.inside([] { return std::make_unique<Netlink>(); });
  Batch b(nl->nextSeq());
  b.addTable(NFPROTO_IPV4, "kdp-test");
  std::vector<ExprHandle> exprs;
  exprs.push_back(verdict(NFT_JUMP, "missing"));
  b.addRule(NFPROTO_IPV4, "kdp-test", "nochain", std::move(exprs));
  auto r = nl->commit(b);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("add rule ip kdp-test nochain") != std::string::npos);
  CHECK(r.error().message.find("No such file or directory") != std::string::npos);
  // All or nothing: the table of the same transaction is not there.
  CHECK(ns.exec("nft list tables").find("kdp-test") == std::string::npos);
  auto count = nl->countRules(NFPROTO_IPV4, "kdp-test");
  REQUIRE(count.ok());
  CHECK(*count == 0);

  Batch ok(nl->nextSeq());
  ok.addTable(NFPROTO_IPV4, "kdp-test");
  ok.addChain(NFPROTO_IPV4, "kdp-test", ChainSpec{"c", std::nullopt});
  std::vector<ExprHandle> accept;
  accept.push_back(verdict(NF_ACCEPT));
  ok.addRule(NFPROTO_IPV4, "kdp-test", "c", std::move(accept));
  REQUIRE(nl->commit(ok).ok());
  count = nl->countRules(NFPROTO_IPV4, "kdp-test");
  REQUIRE(count.ok());
  CHECK(*count == 1);
  CHECK(nl->generation().ok());
}

TEST_CASE("netlink: a batch of several chunks is one transaction", "[nft][netns]") {
  if (!test::TestNetns::available()) {
    WARN("skipped: needs root, ip and nft");
    return;
  }
  test::TestNetns ns;
  auto nl = ns.inside([] { return std::make_unique<Netlink>(); });
  Batch b(nl->nextSeq());
  b.addTable(NFPROTO_IPV4, "kdp-test");
  SetSpec s;
  s.name = "big";
  s.keyType = 7;  // ipv4_addr, for nft list
  s.keyLen = 4;
  s.sizeHint = 140000;
  b.addSet(NFPROTO_IPV4, "kdp-test", s);
  std::vector<Element> many(131072);
  for (std::size_t i = 0; i < many.size(); ++i) {
    many[i].key = {10, static_cast<std::uint8_t>(i >> 16), static_cast<std::uint8_t>(i >> 8),
                   static_cast<std::uint8_t>(i)};
  }
  b.addElements(NFPROTO_IPV4, "kdp-test", "big", many);
  CHECK(b.size() > 3 * 1024 * 1024 / 2);  // more than one chunk
  REQUIRE(nl->commit(b).ok());
  const auto text = ns.exec("nft list set ip kdp-test big");
  INFO(text.substr(0, 600));
  CHECK(text.find("10.0.0.0") != std::string::npos);
  CHECK(text.find("10.1.255.255") != std::string::npos);
}
