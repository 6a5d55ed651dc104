// Zone compile at scale: a full compile of 10,000 Services / 50,000 endpoints against the
// incremental path, and the time from a store change to the new zone being published, for
// single-Service changes (ClusterIP and headless). Prints one line per figure.
//
//   dns_zone_bench [changes]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <time.h>

#include <malloc.h>
#include <vector>

#include "dns/server.h"
#include "dns/zone.h"
#include "k8s/store.h"

using namespace kdp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kServices = 10000;
constexpr int kEndpointsPerService = 5;
constexpr int kHeadlessEvery = 10;  // one Service in ten is headless (its endpoints get names)

std::string ns(int i) { return "ns" + std::to_string(i % 100); }
std::string name(int i) { return "svc-" + std::to_string(i); }

IpAddr clusterIp(int i, int salt = 0) {
  return IpAddr::fromBytes(IpFamily::V4,
                           std::array<std::uint8_t, 4>{10, static_cast<std::uint8_t>(96 + salt),
                                                       static_cast<std::uint8_t>(i >> 8),
                                                       static_cast<std::uint8_t>(i & 0xFF)}
                               .data());
}

IpAddr podIp(int n) {
  return IpAddr::fromBytes(IpFamily::V4,
                           std::array<std::uint8_t, 4>{10, static_cast<std::uint8_t>(128 + (n >> 16)),
                                                       static_cast<std::uint8_t>(n >> 8),
                                                       static_cast<std::uint8_t>(n & 0xFF)}
                               .data());
}

k8s::Service service(int i, int salt = 0) {
  k8s::Service s;
  s.meta.name = name(i);
  s.meta.namespace_ = ns(i);
  k8s::ServicePort p;
  p.name = "http";
  p.port = 80;
  s.ports.push_back(p);
  if (i % kHeadlessEvery == 0) {
    s.headless = true;
  } else {
    s.clusterIPs.push_back(clusterIp(i, salt));
  }
  return s;
}

k8s::EndpointSlice slice(int i, int salt = 0) {
  k8s::EndpointSlice sl;
  sl.meta.name = name(i) + "-abc";
  sl.meta.namespace_ = ns(i);
  sl.serviceName = name(i);
  k8s::EndpointPort p;
  p.name = "http";
  p.port = 8080;
  sl.ports.push_back(p);
  for (int e = 0; e < kEndpointsPerService; ++e) {
    k8s::Endpoint ep;
    ep.addresses.push_back(podIp(i * kEndpointsPerService + e + salt * 7));
    sl.endpoints.push_back(std::move(ep));
  }
  return sl;
}

double threadCpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

double heapMb() { return static_cast<double>(mallinfo2().uordblks) / (1024.0 * 1024.0); }

int main(int argc, char** argv) {
  const int changes = argc > 1 ? std::atoi(argv[1]) : 500;
  const double heap0 = heapMb();
  k8s::Store store;
  {
    k8s::Batch b;
    for (int i = 0; i < kServices; ++i) {
      b.upsert(service(i));
      b.upsert(slice(i));
    }
    store.apply(std::move(b));
    store.markSynced();
  }
  auto sub = store.subscribe();
  const dns::ZoneOptions options;
  const double heapStore = heapMb();

  // Full compiles (the peer: what every change cost before).
  std::vector<double> full;
  std::size_t names = 0;
  for (int r = 0; r < 5; ++r) {
    const auto t0 = Clock::now();
    auto z = dns::compileZone(*store.snapshot(), options);
    full.push_back(ms(Clock::now() - t0));
    names = z->nodeCount();
  }

  dns::ZoneCompiler compiler(options);
  auto holder = std::make_shared<dns::ZoneHolder>(compiler.update(*sub->take()));
  const double heapZone = heapMb();

  // One Service (or its slice) changed at a time; store apply → zone published.
  std::mt19937 rng(42);
  std::vector<double> clusterIpMs, headlessMs, cpuMs;
  std::size_t maxShards = 0, maxNames = 0;
  for (int c = 0; c < changes; ++c) {
    const int i = std::uniform_int_distribution<int>(0, kServices - 1)(rng);
    const int salt = 1 + c % 3;
    k8s::Batch b;
    if (i % kHeadlessEvery == 0) {
      b.upsert(slice(i, salt));
    } else {
      b.upsert(service(i, salt));
    }
    const auto t0 = Clock::now();
    const double cpu0 = threadCpuMs();
    store.apply(std::move(b));
    auto update = sub->take();
    if (!update) {
      continue;  // the same object again: the store published nothing
    }
    holder->publish(compiler.update(*update));
    const double took = ms(Clock::now() - t0);
    cpuMs.push_back(threadCpuMs() - cpu0);
    (i % kHeadlessEvery == 0 ? headlessMs : clusterIpMs).push_back(took);
    maxShards = std::max(maxShards, compiler.lastStats().shards);
    maxNames = std::max(maxNames, compiler.lastStats().names);
  }
  std::vector<double> all = clusterIpMs;
  all.insert(all.end(), headlessMs.begin(), headlessMs.end());
  std::printf("zone_names %zu\n", names);
  // Heap in use (malloc's count): the store's objects, then the zone with the compiler's index.
  std::printf("store_heap_mb %.1f\n", heapStore - heap0);
  std::printf("zone_heap_mb %.1f\n", heapZone - heapStore);
  std::printf("full_compile_ms_median %.1f\n", percentile(full, 0.5));
  std::printf("change_to_published_ms_p50 %.3f\n", percentile(all, 0.5));
  std::printf("change_to_published_ms_p99 %.3f\n", percentile(all, 0.99));
  std::printf("change_to_published_ms_max %.3f\n", percentile(all, 1.0));
  // CPU time of the same path: what the change costs without the scheduler's share of a busy
  // machine.
  std::printf("change_cpu_ms_p50 %.3f\n", percentile(cpuMs, 0.5));
  std::printf("change_cpu_ms_p99 %.3f\n", percentile(cpuMs, 0.99));
  std::printf("clusterip_change_ms_p50 %.3f\n", percentile(clusterIpMs, 0.5));
  std::printf("headless_change_ms_p50 %.3f\n", percentile(headlessMs, 0.5));
  std::printf("max_names_remerged %zu\n", maxNames);
  std::printf("max_shards_copied %zu\n", maxShards);
  std::printf("changes %d\n", changes);
  return 0;
}
