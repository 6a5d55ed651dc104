// Proxy benchmarks' helper (bench/proxy_*.sh run it; the netlink modes only inside a network
// namespace the script made).
//
//   proxy_bench generate DIR SERVICES ENDPOINTS   DIR/services.json + DIR/slices.json: SERVICES
//       ClusterIP Services (one TCP port 80 -> 8080), each with one slice of ENDPOINTS ready
//       endpoints (distinct pod IPs in 10.128.0.0/9)
//   proxy_bench kube-proxy DIR                    kube-proxy's nftables layout for that cluster,
//       as `nft -f` text (table ip kube-proxy: a chain per Service port and per endpoint, as
//       pkg/proxy/nftables/proxier.go writes them)
//   proxy_bench serve PORT SECONDS                accepts and closes TCP connections on PORT for
//       SECONDS (the data-plane benchmark's pod)
//   proxy_bench connect IP PORT SECONDS MAX        opens and resets TCP connections to IP:PORT one
//       after another for SECONDS or MAX connections; prints connections=… per_second=… failed=…
//   proxy_bench changes DIR COUNT NODE_IP         loads DIR into a store, syncs it in full, then
//       changes one EndpointSlice COUNT times (one endpoint replaced) and times each from the
//       store write to the kernel's ack, through IncrementalCompiler and Syncer as the proxy
//       does; prints full_sync_s=… p50_us=… p99_us=… max_us=… messages_per_change=…

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "k8s/decode.h"
#include "k8s/manifests_source.h"
#include "k8s/store.h"
#include "proxy/compiler.h"
#include "proxy/incremental.h"
#include "proxy/syncer.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace kdp;

std::string ip4(std::uint32_t n) {
  return std::to_string((n >> 24) & 255) + "." + std::to_string((n >> 16) & 255) + "." +
         std::to_string((n >> 8) & 255) + "." + std::to_string(n & 255);
}

std::uint32_t serviceIp(int i) { return (10u << 24) | (96u << 16) | static_cast<std::uint32_t>(i + 10); }
std::uint32_t podIp(std::uint32_t pod) { return (10u << 24) | (128u << 16) | pod; }

void generate(const std::string& dir, int services, int perSlice) {
  std::ofstream svc(dir + "/services.json");
  svc << R"({"kind":"ServiceList","apiVersion":"v1","items":[)";
  for (int i = 0; i < services; ++i) {
    const std::string ip = ip4(serviceIp(i));
    svc << (i ? "," : "") << R"({"metadata":{"name":"svc-)" << i
        << R"(","namespace":"bench"},"spec":{"type":"ClusterIP","clusterIP":")" << ip
        << R"(","clusterIPs":[")" << ip << R"("],"selector":{"app":"svc-)" << i
        << R"("},"ports":[{"name":"http","protocol":"TCP","port":80,"targetPort":8080}]}})";
  }
  svc << "]}";
  std::ofstream sl(dir + "/slices.json");
  sl << R"({"kind":"EndpointSliceList","apiVersion":"discovery.k8s.io/v1","items":[)";
  std::uint32_t pod = 0;
  for (int i = 0; i < services; ++i) {
    sl << (i ? "," : "") << R"({"metadata":{"name":"svc-)" << i
       << R"(-abcde","namespace":"bench","labels":{"kubernetes.io/service-name":"svc-)" << i
       << R"("}},"addressType":"IPv4","endpoints":[)";
    for (int e = 0; e < perSlice; ++e, ++pod) {
      sl << (e ? "," : "") << R"({"addresses":[")" << ip4(podIp(pod))
         << R"("],"conditions":{"ready":true},"nodeName":"node-)" << pod % 50 << R"("})";
    }
    sl << R"(],"ports":[{"name":"http","protocol":"TCP","port":8080}]})";
  }
  sl << "]}";
}

std::shared_ptr<const k8s::Snapshot> load(const std::string& dir, k8s::Store& store) {
  auto source = k8s::makeManifestsSource(dir);
  source->start(store);
  source->stop();
  return store.snapshot();
}

/// kube-proxy's chain-name hash stands in as 8 hex digits of an FNV-1a hash (kube-proxy uses
/// base32 of SHA-256; only uniqueness and length matter to nft).
std::string hash8(const std::string& s) {
  std::uint32_t h = 2166136261u;
  for (unsigned char c : s) {
    h = (h ^ c) * 16777619u;
  }
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08X", h);
  return buf;
}

int kubeProxy(const std::string& dir) {
  k8s::Store store;
  const auto snap = load(dir, store);
  std::string out = R"(add table ip kube-proxy { comment "rules for kube-proxy" ; }
table ip kube-proxy {
	chain filter-prerouting { type filter hook prerouting priority -110; policy accept; ct state new jump firewall-check; }
	chain filter-input { type filter hook input priority -110; policy accept; ct state new jump nodeport-endpoints-check; ct state new jump service-endpoints-check; }
	chain filter-forward { type filter hook forward priority -110; policy accept; ct state new jump service-endpoints-check; ct state new jump cluster-ips-check; }
	chain filter-output { type filter hook output priority -110; policy accept; ct state new jump service-endpoints-check; ct state new jump firewall-check; }
	chain filter-output-post-dnat { type filter hook output priority -90; policy accept; ct state new jump cluster-ips-check; }
	chain nat-prerouting { type nat hook prerouting priority -100; policy accept; jump services; }
	chain nat-output { type nat hook output priority -100; policy accept; jump services; }
	chain nat-postrouting { type nat hook postrouting priority 100; policy accept; jump masquerading; }
	set cluster-ips { type ipv4_addr; comment "Active ClusterIPs"; }
	map no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict; }
	map no-endpoint-nodeports { type inet_proto . inet_service : verdict; }
	map firewall-ips { type ipv4_addr . inet_proto . inet_service : verdict; }
	map service-nodeports { type inet_proto . inet_service : verdict; }
	chain reject-chain { reject; }
	chain firewall-check { ip daddr . meta l4proto . th dport vmap @firewall-ips; }
	chain service-endpoints-check { ip daddr . meta l4proto . th dport vmap @no-endpoint-services; }
	chain nodeport-endpoints-check { fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports; }
	chain cluster-ips-check { ip daddr @cluster-ips reject; }
	chain mark-for-masquerade { mark set mark or 0x4000; }
	chain masquerading { mark and 0x4000 == 0 return; mark set mark xor 0x4000; masquerade fully-random; }
)";
  std::string serviceIps;
  std::string clusterIps;
  std::string chains;
  for (const auto& entry : snap->of<k8s::Service>()) {
    const k8s::Service& svc = *entry.value;
    if (svc.clusterIPs.empty()) {
      continue;
    }
    const std::string cip = svc.clusterIPs.front().str();
    clusterIps += (clusterIps.empty() ? "" : ", ") + cip;
    for (const auto& sp : svc.ports) {
      const std::string portName = svc.meta.namespace_ + "/" + svc.meta.name + "/tcp/" + sp.name;
      const std::string svcChain = "service-" + hash8(portName) + "-" + portName;
      std::vector<std::string> endpointChains;
      std::string endpointText;
      snap->forEachSliceOf(svc.meta.namespace_, svc.meta.name, [&](const k8s::EndpointSlice& s) {
        const auto port = k8s::targetPortIn(s, sp.name, sp.protocol);
        for (const auto& ep : s.endpoints) {
          if (!port || ep.addresses.empty() || !ep.conditions.ready) {
            continue;
          }
          const std::string ip = ep.addresses.front().str();
          const std::string name = portName + "__" + ip + "/" + std::to_string(*port);
          const std::string chain = "endpoint-" + hash8(name) + "-" + name;
          endpointChains.push_back(chain);
          endpointText += "\tchain " + chain + " { ip saddr " + ip +
                          " jump mark-for-masquerade; meta l4proto tcp dnat to " + ip + ":" +
                          std::to_string(*port) + "; }\n";
        }
      });
      if (endpointChains.empty()) {
        continue;
      }
      serviceIps += (serviceIps.empty() ? "" : ", ") + cip + " . tcp . " +
                    std::to_string(sp.port) + " : goto " + svcChain;
      chains += "\tchain " + svcChain + " { ip daddr " + cip + " tcp dport " +
                std::to_string(sp.port) +
                " ip saddr != 10.0.0.0/8 jump mark-for-masquerade; numgen random mod " +
                std::to_string(endpointChains.size()) + " vmap { ";
      for (std::size_t i = 0; i < endpointChains.size(); ++i) {
        chains += (i ? ", " : "") + std::to_string(i) + " : goto " + endpointChains[i];
      }
      chains += " }; }\n" + endpointText;
    }
  }
  out += "\tmap service-ips { type ipv4_addr . inet_proto . inet_service : verdict; comment "
         "\"ClusterIP, ExternalIP and LoadBalancer IP traffic\"; }\n";
  out += "\tchain services { ip daddr . meta l4proto . th dport vmap @service-ips; fib daddr type "
         "local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports; }\n";
  out += chains;
  out += "}\n";
  if (!clusterIps.empty()) {
    out += "add element ip kube-proxy cluster-ips { " + clusterIps + " }\n";
  }
  if (!serviceIps.empty()) {
    out += "add element ip kube-proxy service-ips { " + serviceIps + " }\n";
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

int changes(const std::string& dir, int count, const std::string& nodeIp) {
  k8s::Store store;
  (void)load(dir, store);
  auto sub = store.subscribe();
  proxy::ProxyOptions options;
  options.nodeName = "node-0";
  options.nodeIPs = {*IpAddr::parse(nodeIp)};
  options.clusterCIDRs = {*Cidr::parse("10.128.0.0/9")};
  proxy::IncrementalCompiler compiler;
  proxy::Syncer syncer;

  auto first = sub->take();
  auto t0 = Clock::now();
  const proxy::NodeInfo node = proxy::makeNodeInfo(*first->snapshot, options);
  auto change = compiler.update(*first->snapshot, first->changes, node);
  auto r = syncer.apply(change, compiler.ruleset());
  if (!r) {
    std::cerr << "full sync: " << r.error().message << "\n";
    return 1;
  }
  const double fullSeconds = std::chrono::duration<double>(Clock::now() - t0).count();

  // The slices, to change in turn: endpoint (i % n) of slice (i % slices) gets a new address.
  std::vector<std::shared_ptr<const k8s::EndpointSlice>> slices;
  for (const auto& e : first->snapshot->of<k8s::EndpointSlice>()) {
    slices.push_back(e.value);
  }
  if (slices.empty()) {
    return 1;
  }
  std::vector<double> us, compileUs, commitUs;
  std::size_t messages = 0;
  std::uint32_t fresh = 0;
  for (int i = 0; i < count; ++i) {
    const auto& old = slices[static_cast<std::size_t>(i) * 7919 % slices.size()];
    k8s::EndpointSlice changed = *old;
    if (changed.endpoints.empty()) {
      continue;
    }
    auto& ep = changed.endpoints[static_cast<std::size_t>(i) % changed.endpoints.size()];
    ep.addresses = {*IpAddr::parse(ip4((10u << 24) | (200u << 16) | fresh++))};
    k8s::Batch batch;
    batch.upsert(changed);
    const auto start = Clock::now();
    store.apply(std::move(batch));
    auto update = sub->take();
    if (!update) {
      return 1;
    }
    const auto taken = Clock::now();
    change = compiler.update(*update->snapshot, update->changes, node);
    const auto compiled = Clock::now();
    r = syncer.apply(change, compiler.ruleset());
    const auto end = Clock::now();
    compileUs.push_back(std::chrono::duration<double, std::micro>(compiled - taken).count());
    commitUs.push_back(std::chrono::duration<double, std::micro>(end - compiled).count());
    if (!r) {
      std::cerr << "change " << i << ": " << r.error().message << "\n";
      return 1;
    }
    us.push_back(std::chrono::duration<double, std::micro>(end - start).count());
    messages += r->messages;
    slices[static_cast<std::size_t>(i) * 7919 % slices.size()] =
        std::make_shared<const k8s::EndpointSlice>(std::move(changed));
  }
  auto at = [](std::vector<double>& v, double q) {
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())))];
  };
  const double p50 = at(us, 0.5), p99 = at(us, 0.99), max = us.back();
  const double c50 = at(compileUs, 0.5), c99 = at(compileUs, 0.99);
  const double a50 = at(commitUs, 0.5), a99 = at(commitUs, 0.99);
  std::printf("full_sync_s=%.3f elements=%zu changes=%zu p50_us=%.0f p99_us=%.0f max_us=%.0f "
              "compile_p50_us=%.0f compile_p99_us=%.0f apply_p50_us=%.0f apply_p99_us=%.0f "
              "messages_per_change=%.2f\n",
              fullSeconds, compiler.ruleset().elementCount(), us.size(), p50, p99, max, c50, c99,
              a50, a99, static_cast<double>(messages) / static_cast<double>(us.size()));
  return 0;
}

int serve(int port, int seconds) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 4096) != 0) {
    std::perror("bind/listen");
    return 1;
  }
  timeval tv{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::printf("listening\n");
  std::fflush(stdout);
  const auto end = Clock::now() + std::chrono::seconds(seconds);
  while (Clock::now() < end) {
    const int c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c >= 0) {
      ::close(c);
    }
  }
  ::close(fd);
  return 0;
}

int connectLoop(const std::string& ip, int port, int seconds, long max) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::inet_pton(AF_INET, ip.c_str(), &addr.sin_addr) != 1) {
    return 2;
  }
  long ok = 0, failed = 0;
  const auto start = Clock::now();
  const auto end = start + std::chrono::seconds(seconds);
  while (ok + failed < max && Clock::now() < end) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    // Reset on close: no TIME_WAIT, so the client's ports do not run out.
    const linger lg{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      ++ok;
    } else {
      ++failed;
    }
    ::close(fd);
  }
  const double s = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("connections=%ld per_second=%.0f failed=%ld\n", ok, static_cast<double>(ok) / s,
              failed);
  return failed == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "generate" && argc == 5) {
      generate(argv[2], std::stoi(argv[3]), std::stoi(argv[4]));
      return 0;
    }
    if (mode == "kube-proxy" && argc == 3) {
      return kubeProxy(argv[2]);
    }
    if (mode == "serve" && argc == 4) {
      return serve(std::stoi(argv[2]), std::stoi(argv[3]));
    }
    if (mode == "connect" && argc == 6) {
      return connectLoop(argv[2], std::stoi(argv[3]), std::stoi(argv[4]), std::stol(argv[5]));
    }
    if (mode == "changes" && argc == 5) {
      return changes(argv[2], std::stoi(argv[3]), argv[4]);
    }
    std::cerr << "usage: proxy_bench generate DIR SERVICES ENDPOINTS | kube-proxy DIR | "
                 "serve PORT SECONDS | connect IP PORT SECONDS MAX | changes DIR COUNT NODE_IP\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "proxy_bench: " << e.what() << "\n";
    return 1;
  }
}
