#include "proxy/one_shot.h"

#include <chrono>
#include <cstdio>
#include <memory>
#include <stdexcept>

#include "common/logging.h"
#include "k8s/source.h"
#include "k8s/store.h"
#include "proxy/compiler.h"
#include "proxy/explain.h"
#include "proxy/local_addresses.h"
#include "proxy/render.h"
#include "proxy/syncer.h"

namespace kdp::proxy {

namespace {

int fail(const std::string& message) {
  std::fprintf(stderr, "kube-dataplane: %s\n", message.c_str());
  return 1;
}

}  // namespace

int runOneShot(const ProxyOptions& options, std::unique_ptr<k8s::Source> source) {
  if (options.mode == ProxyMode::Cleanup) {
    if (auto r = cleanupTables(); !r) {
      return fail("proxy --cleanup: " + r.error().message);
    }
    return 0;
  }
  if (!source) {
    return fail("proxy: no source");
  }
  auto store = std::make_unique<k8s::Store>();
  try {
    source->start(*store);
  } catch (const std::runtime_error& e) {
    return fail(e.what());
  }
  source->stop();
  source.reset();  // the store shares the objects; the source's own indexes are not needed
  auto snap = store->snapshot();
  const auto started = std::chrono::steady_clock::now();
  const NodeInfo node = makeNodeInfo(*snap, options, localAddresses());
  const Ruleset desired = compile(*snap, node);
  const auto compiled = std::chrono::steady_clock::now();

  if (options.mode == ProxyMode::Explain) {
    const auto& e = options.explain;
    const std::string text = explain(desired, Probe{e.src, e.dst, e.port, e.proto});
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    return 0;
  }
  if (options.mode == ProxyMode::DryRun) {
    const std::string text = renderNft(desired);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    return 0;
  }
  // --once: one full sync, whatever is in the kernel now. The objects are not needed any more:
  // freed before the batch is built, they do not add to the peak.
  snap.reset();
  store.reset();
  try {
    Syncer syncer;
    auto r = syncer.syncFull(desired);
    if (!r) {
      return fail("proxy --once: " + r.error().message);
    }
    SPDLOG_LOGGER_INFO(logger("proxy"), "sync messages={} encode_seconds={:.3f} commit_seconds={:.3f}",
                       r->messages, r->encodeSeconds, r->commitSeconds);
  } catch (const std::runtime_error& e) {
    return fail(std::string("proxy --once: ") + e.what());
  }
  const auto applied = std::chrono::steady_clock::now();
  SPDLOG_LOGGER_INFO(logger("proxy"), "applied full sync elements={} compile_seconds={:.3f} apply_seconds={:.3f}",
                     desired.elementCount(),
                     std::chrono::duration<double>(compiled - started).count(),
                     std::chrono::duration<double>(applied - compiled).count());
  return 0;
}

}  // namespace kdp::proxy
