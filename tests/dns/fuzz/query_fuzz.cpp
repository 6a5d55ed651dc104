// libFuzzer target for the packet path: the query parser, the responder against a small zone,
// the response parser and the cache/forwarder helpers that read upstream bytes.
//
// Built with clang by tests/dns/fuzz/CMakeLists.txt (an external project of the non-sanitized
// build, in <build>/dns-fuzz) and run by ctest as dns.fuzz.query for KDP_FUZZ_SECONDS; by hand:
//   <build>/dns-fuzz/dns_query_fuzz -max_total_time=60 NEW_CORPUS_DIR tests/dns/fuzz/corpus
#include <cstddef>
#include <cstdint>
#include <span>

#include "dns/answer.h"
#include "dns/detail/cache.h"
#include "dns/detail/forwarder.h"
#include "dns/detail/plain_query.h"
#include "dns/detail/wire.h"
#include "tests/dns/fixture.h"

namespace {

const kdp::dns::Zone& zone() {
  static const auto z = kdp::dns::compileZone(*kdp::dns::test::clusterSnapshot(),
                                              kdp::dns::ZoneOptions{});
  return *z;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace kdp::dns;
  const std::span<const std::uint8_t> msg(data, size);
  for (auto t : {Transport::Udp, Transport::Tcp}) {
    Answer a = answer(msg, zone(), t);
    if (a.disposition == Disposition::Reply) {
      // Whatever we answer must parse, and fit the transport's limit.
      auto m = wire::parseMessage(test::bytes(a.wire));
      if (!m || a.wire.size() > responseLimit(a.query, t)) {
        __builtin_trap();
      }
      if (!a.externalTarget.empty()) {
        std::uint16_t rcode = 0;
        (void)appendChase(a.wire, msg, 65535, rcode);
      }
    }
  }
  // The cache-hit path's reader accepts only what the full parser reads the same way.
  if (auto plain = readPlainQuery(msg)) {
    auto full = wire::parseQuery(msg);
    if (!full || full->question.name != plain->name || full->header.id != plain->id ||
        full->question.qtype != plain->qtype || full->edns.has_value() != plain->edns ||
        (full->edns && (full->edns->udpSize != plain->udpSize ||
                        full->edns->dnssecOk != plain->dnssecOk || full->edns->version != 0))) {
      __builtin_trap();
    }
  }
  (void)wire::parseMessage(msg);
  if (auto prepared = prepareResponse(msg, Clock::now())) {
    if (auto q = wire::parseQuery(msg)) {
      (void)renderCached(*prepared, *q, Clock::now(), Transport::Udp);
    }
  }
  return 0;
}
