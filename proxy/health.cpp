#include "proxy/health.h"

#include <ctime>
#include <set>

#include "k8s/objects.h"
#include "k8s/store.h"

namespace kdp::proxy {

namespace {

std::string jsonString(const std::string& s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {  // names are DNS labels; escape anyway
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

const char* reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 404: return "Not Found";
    case 503: return "Service Unavailable";
    default: return "";
  }
}

}  // namespace

std::optional<HealthCheckService> healthCheckService(const k8s::Snapshot& snapshot,
                                                     const k8s::Service& svc,
                                                     const NodeInfo& node) {
  if (svc.type != k8s::ServiceType::LoadBalancer ||
      svc.externalTrafficPolicy != k8s::TrafficPolicy::Local || svc.healthCheckNodePort <= 0 ||
      svc.healthCheckNodePort > 65535) {
    return std::nullopt;
  }
  std::set<IpAddr> local;
  snapshot.forEachSliceOf(svc.meta.namespace_, svc.meta.name, [&](const k8s::EndpointSlice& s) {
    for (const auto& ep : s.endpoints) {
      if (ep.conditions.ready && !node.name.empty() && ep.nodeName == node.name &&
          !ep.addresses.empty()) {
        local.insert(ep.addresses.front());
      }
    }
  });
  return HealthCheckService{svc.meta.namespace_, svc.meta.name,
                            static_cast<std::uint16_t>(svc.healthCheckNodePort),
                            static_cast<int>(local.size())};
}

std::vector<HealthCheckService> healthCheckServices(const k8s::Snapshot& snapshot,
                                                    const NodeInfo& node) {
  std::vector<HealthCheckService> out;
  for (const auto& entry : snapshot.of<k8s::Service>()) {
    if (auto hc = healthCheckService(snapshot, *entry.value, node)) {
      out.push_back(std::move(*hc));
    }
  }
  return out;
}

std::string HttpResponse::serialize() const {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason(status) + "\r\n";
  for (const auto& [name, value] : headers) {
    out += name + ": " + value + "\r\n";
  }
  out += "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
  return out + body;
}

HttpResponse serviceHealthResponse(const HealthCheckService& s, bool healthy) {
  HttpResponse r;
  r.status = s.localEndpoints != 0 && healthy ? 200 : 503;
  r.headers = {{"Content-Type", "application/json"},
               {"X-Content-Type-Options", "nosniff"},
               {"X-Load-Balancing-Endpoint-Weight", std::to_string(s.localEndpoints)}};
  r.body = "{\n\t\"service\": {\n\t\t\"namespace\": " + jsonString(s.namespace_) +
           ",\n\t\t\"name\": " + jsonString(s.name) + "\n\t},\n\t\"localEndpoints\": " +
           std::to_string(s.localEndpoints) + ",\n\t\"serviceProxyHealthy\": " +
           (healthy ? "true" : "false") + "\n}";
  return r;
}

bool proxyHealthy(const ProxyHealthState& state, std::chrono::system_clock::time_point now,
                  std::chrono::nanoseconds timeout) {
  return !state.oldestPending || now - *state.oldestPending < timeout;
}

HttpResponse proxyHealthResponse(const ProxyHealthState& state,
                                 std::chrono::system_clock::time_point now,
                                 std::chrono::nanoseconds timeout) {
  HttpResponse r;
  const bool healthy = proxyHealthy(state, now, timeout);
  r.status = healthy ? 200 : 503;
  r.headers = {{"Content-Type", "application/json"}, {"X-Content-Type-Options", "nosniff"}};
  const auto lastUpdated =
      healthy ? now : state.lastUpdated.value_or(std::chrono::system_clock::time_point{});
  r.body = "{\"lastUpdated\":\"" + rfc3339Nano(lastUpdated) + "\",\"currentTime\":\"" +
           rfc3339Nano(now) + "\",\"healthy\":" + (healthy ? "true" : "false") + "}";
  return r;
}

std::string rfc3339Nano(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const auto ns = duration_cast<nanoseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ns / 1'000'000'000);
  long frac = static_cast<long>(ns % 1'000'000'000);
  if (frac < 0) {
    frac += 1'000'000'000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out = buf;
  if (frac != 0) {
    std::string digits = std::to_string(frac);
    digits.insert(0, 9 - digits.size(), '0');
    while (digits.back() == '0') {
      digits.pop_back();
    }
    out += "." + digits;
  }
  return out + "Z";
}

}  // namespace kdp::proxy
