// The API source's write latency (issue 6 benchmark): an EndpointSlice is changed through the
// real API server WRITES times, one after the other; for each, the time from the start of the
// write (a curl PATCH, as any client would send it) to the moment the new address is in the
// store, next to the write's own round trip (curl's time_total) measured in the same run.
//
//   api_bench latency KUBECONFIG SERVER CA_FILE ADMIN_TOKEN NAMESPACE SLICE WRITES
//
// Prints "write_to_store_ms p50 p99 max" and "write_rtt_ms p50 p99 max". bench/api_sync.sh runs it.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "k8s/api_config.h"
#include "k8s/api_source.h"
#include "k8s/store.h"

using namespace kdp::k8s;
using Clock = std::chrono::steady_clock;

namespace {

std::string addressOf(int i) {
  return "10.99." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const auto idx = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(idx, v.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 9 || std::string(argv[1]) != "latency") {
    std::fprintf(stderr,
                 "usage: api_bench latency KUBECONFIG SERVER CA_FILE ADMIN_TOKEN NAMESPACE SLICE "
                 "WRITES\n");
    return 2;
  }
  const std::string server = argv[3], ca = argv[4], token = argv[5], ns = argv[6], slice = argv[7];
  const int writes = std::atoi(argv[8]);

  Store store;
  auto source = makeApiSource(loadKubeconfig(argv[2]), {Kind::Service, Kind::EndpointSlice});
  source->start(store);
  auto sub = store.subscribe();
  (void)sub->take();

  // The index of the address last seen in the store, and when.
  std::atomic<int> seen{-1};
  std::atomic<Clock::rep> seenAt{0};
  std::atomic<bool> done{false};
  std::thread watcher([&] {
    while (!done) {
      auto update = sub->next(std::chrono::milliseconds(100));
      if (!update) {
        continue;
      }
      const auto now = Clock::now();
      update->snapshot->forEachSliceOf(ns, slice, [&](const EndpointSlice& s) {
        if (s.endpoints.empty() || s.endpoints[0].addresses.empty()) {
          return;
        }
        const std::string a = s.endpoints[0].addresses[0].str();
        for (int i = std::max(0, seen.load()); i < writes; ++i) {
          if (a == addressOf(i)) {
            seenAt = now.time_since_epoch().count();
            seen = i;
            break;
          }
        }
      });
    }
  });

  std::vector<double> toStore, rtt;
  const std::string url = server + "/apis/discovery.k8s.io/v1beta1/namespaces/" + ns +
                          "/endpointslices/" + slice;
  for (int i = 0; i < writes; ++i) {
    const std::string patch = R"({"endpoints":[{"addresses":[")" + addressOf(i) +
                              R"("],"conditions":{"ready":true}}]})";
    const std::string cmd = "curl -sS -o /dev/null -w '%{time_total}' --cacert '" + ca +
                            "' -H 'Authorization: Bearer " + token +
                            "' -H 'Content-Type: application/merge-patch+json' -X PATCH --data '" +
                            patch + "' '" + url + "'";
    const auto t0 = Clock::now();
    FILE* p = ::popen(cmd.c_str(), "r");
    char buf[64] = {};
    const bool read = p && std::fgets(buf, sizeof buf, p) != nullptr;
    const int rc = p ? ::pclose(p) : -1;
    if (!read || rc != 0) {
      std::fprintf(stderr, "api_bench: write %d failed\n", i);
      done = true;
      watcher.join();
      return 1;
    }
    rtt.push_back(std::atof(buf) * 1000);
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (seen.load() < i) {
      if (Clock::now() > deadline) {
        std::fprintf(stderr, "api_bench: write %d not in the store after 10 s\n", i);
        done = true;
        watcher.join();
        return 1;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    const auto at = Clock::time_point(Clock::duration(seenAt.load()));
    toStore.push_back(std::chrono::duration<double, std::milli>(at - t0).count());
  }
  done = true;
  watcher.join();
  source->stop();
  std::printf("write_to_store_ms %.2f %.2f %.2f\n", percentile(toStore, 0.5),
              percentile(toStore, 0.99), percentile(toStore, 1.0));
  std::printf("write_rtt_ms %.2f %.2f %.2f\n", percentile(rtt, 0.5), percentile(rtt, 0.99),
              percentile(rtt, 1.0));
  return 0;
}
