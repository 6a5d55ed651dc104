// Decode benchmark: a JSON LIST of N Services and a LIST of N EndpointSlices holding M endpoints,
// decoded into the store. Run by bench/decode.sh, one process per measurement so that the peak
// RSS (VmHWM) is this run's own.
//
//   decode_bench generate DIR [services] [endpoints-per-slice]   writes DIR/services.json, DIR/slices.json
//   decode_bench decode DIR      decode both into a Store; prints  decode_ms=… objects=… peak_rss_mb=…
//   decode_bench parse DIR       simdjson parse only (the parser's own throughput); prints parse_ms=… mb=…

#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "k8s/decode.h"
#include "k8s/store.h"

namespace {

using Clock = std::chrono::steady_clock;

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw std::runtime_error("cannot read " + path);
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return std::move(ss).str();
}

long peakRssKb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      return std::stol(line.substr(6));
    }
  }
  return -1;
}

std::string ip4(std::uint32_t n) {
  return std::to_string((n >> 24) & 255) + "." + std::to_string((n >> 16) & 255) + "." +
         std::to_string((n >> 8) & 255) + "." + std::to_string(n & 255);
}

void generate(const std::string& dir, int services, int perSlice) {
  std::ofstream svc(dir + "/services.json");
  svc << R"({"kind":"ServiceList","apiVersion":"v1","metadata":{"resourceVersion":"1000"},"items":[)";
  for (int i = 0; i < services; ++i) {
    const std::string name = "svc-" + std::to_string(i);
    const std::string ip = ip4((10u << 24) | (96u << 16) | static_cast<std::uint32_t>(i + 10));
    svc << (i ? "," : "") << R"({"metadata":{"name":")" << name
        << R"(","namespace":"bench","uid":"0b5c6a1e-0000-4000-8000-)" << 100000000000 + i
        << R"(","resourceVersion":")" << 1000 + i
        << R"(","creationTimestamp":"2026-11-22T08:00:00Z","labels":{"app":")" << name
        << R"(","tier":"backend"},"annotations":{"owner":"team-a"}},"spec":{"type":"ClusterIP","clusterIP":")"
        << ip << R"(","clusterIPs":[")" << ip
        << R"("],"ipFamilies":["IPv4"],"ipFamilyPolicy":"SingleStack","selector":{"app":")" << name
        << R"("},"ports":[{"name":"http","protocol":"TCP","port":80,"targetPort":8080},)"
        << R"({"name":"metrics","protocol":"TCP","port":9090,"targetPort":"metrics"}],)"
        << R"("sessionAffinity":"None","internalTrafficPolicy":"Cluster"},"status":{"loadBalancer":{}}})";
  }
  svc << "]}";

  std::ofstream sl(dir + "/slices.json");
  sl << R"({"kind":"EndpointSliceList","apiVersion":"discovery.k8s.io/v1","metadata":{"resourceVersion":"2000"},"items":[)";
  std::uint32_t pod = 0;
  for (int i = 0; i < services; ++i) {
    const std::string svcName = "svc-" + std::to_string(i);
    sl << (i ? "," : "") << R"({"metadata":{"name":")" << svcName
       << R"(-abcde","namespace":"bench","resourceVersion":")" << 3000 + i
       << R"(","labels":{"kubernetes.io/service-name":")" << svcName
       << R"(","endpointslice.kubernetes.io/managed-by":"endpointslice-controller.k8s.io"}},"addressType":"IPv4","endpoints":[)";
    for (int e = 0; e < perSlice; ++e, ++pod) {
      sl << (e ? "," : "") << R"({"addresses":[")" << ip4((10u << 24) | (128u << 16) | pod)
         << R"("],"conditions":{"ready":true,"serving":true,"terminating":false},"nodeName":"node-)"
         << pod % 50 << R"(","zone":"zone-)" << pod % 3 << R"(","targetRef":{"kind":"Pod","namespace":"bench","name":")"
         << svcName << "-" << e << R"("}})";
    }
    sl << R"(],"ports":[{"name":"http","protocol":"TCP","port":8080},{"name":"metrics","protocol":"TCP","port":9090}]})";
  }
  sl << "]}";
}

int decode(const std::string& dir) {
  const std::string services = readFile(dir + "/services.json");
  const std::string slices = readFile(dir + "/slices.json");
  kdp::k8s::Store store;
  const auto start = Clock::now();
  std::size_t errors = 0;
  for (const auto& [text, kind] : {std::pair{&services, kdp::k8s::Kind::Service},
                                   std::pair{&slices, kdp::k8s::Kind::EndpointSlice}}) {
    auto result = kdp::k8s::decodeJson(*text, "bench", kind);
    errors += result.errors.size();
    kdp::k8s::Batch batch;
    for (auto& object : result.objects) {
      batch.upsert(std::move(object));
    }
    (void)store.apply(std::move(batch));
  }
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  auto snap = store.snapshot();
  std::size_t endpoints = 0;
  for (const auto& e : snap->of<kdp::k8s::EndpointSlice>()) {
    endpoints += e.value->endpoints.size();
  }
  std::printf("decode_ms=%.1f services=%zu slices=%zu endpoints=%zu errors=%zu peak_rss_mb=%.1f\n",
              ms, snap->count(kdp::k8s::Kind::Service),
              snap->count(kdp::k8s::Kind::EndpointSlice), endpoints, errors,
              static_cast<double>(peakRssKb()) / 1024.0);

  // One EndpointSlice changes, 1,000 times, with a subscriber holding the previous snapshot (as
  // a component does): the cost of a store version must not grow with the cluster.
  auto sub = store.subscribe();
  (void)sub->take();
  std::vector<double> us;
  const auto slicesNow = snap->of<kdp::k8s::EndpointSlice>();
  auto it = slicesNow.begin();
  for (int i = 0; i < 1000; ++i, ++it) {
    kdp::k8s::EndpointSlice changed = *it->value;
    changed.endpoints[0].conditions.ready = !changed.endpoints[0].conditions.ready;
    kdp::k8s::Batch batch;
    batch.upsert(std::move(changed));
    const auto t0 = Clock::now();
    (void)store.apply(std::move(batch));
    auto update = sub->take();
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    if (!update || update->changes.size() != 1) {
      return 1;
    }
  }
  std::sort(us.begin(), us.end());
  std::printf("change_p50_us=%.1f change_p99_us=%.1f\n", us[us.size() / 2], us[us.size() * 99 / 100]);
  return errors == 0 ? 0 : 1;
}

int parseOnly(const std::string& dir) {
  const simdjson::padded_string services(readFile(dir + "/services.json"));
  const simdjson::padded_string slices(readFile(dir + "/slices.json"));
  simdjson::dom::parser parser;
  const auto start = Clock::now();
  std::size_t items = 0;
  for (const auto* text : {&services, &slices}) {
    simdjson::dom::element doc;
    if (parser.parse(*text).get(doc) != simdjson::SUCCESS) {
      return 1;
    }
    items += doc["items"].get_array().size();
  }
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  const double mb = static_cast<double>(services.size() + slices.size()) / 1e6;
  std::printf("parse_ms=%.1f mb=%.1f mb_per_s=%.0f items=%zu\n", ms, mb, mb / (ms / 1000.0),
              items);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "generate" && argc >= 3) {
      generate(argv[2], argc > 3 ? std::stoi(argv[3]) : 10000, argc > 4 ? std::stoi(argv[4]) : 10);
      return 0;
    }
    if (mode == "decode" && argc == 3) {
      return decode(argv[2]);
    }
    if (mode == "parse" && argc == 3) {
      return parseOnly(argv[2]);
    }
    std::cerr << "usage: decode_bench generate DIR [services] [per-slice] | decode DIR | parse DIR\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "decode_bench: " << e.what() << "\n";
    return 1;
  }
}
