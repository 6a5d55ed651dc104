#include "ingress/status.h"

#include <algorithm>

#include "ingress/routes.h"

namespace kdp::ingress {

std::optional<k8s::LoadBalancerIngress> parsePublishAddress(std::string_view text) {
  k8s::LoadBalancerIngress out;
  if (auto ip = IpAddr::parse(text)) {
    out.ip = *ip;
    return out;
  }
  // A DNS subdomain: lowercase labels of [a-z0-9-], dots between, at most 253 bytes.
  if (text.empty() || text.size() > 253 || text.front() == '.' || text.back() == '.') {
    return std::nullopt;
  }
  char previous = '.';
  for (const char c : text) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!(alnum || c == '-' || c == '.') || (c == '.' && previous == '.') ||
        (c == '.' && previous == '-') || (c == '-' && previous == '.')) {
      return std::nullopt;
    }
    previous = c;
  }
  out.hostname = std::string(text);
  return out;
}

LoadBalancerStatus publishedByService(const k8s::Service& service) {
  if (!service.loadBalancerIngress.empty()) {
    return service.loadBalancerIngress;
  }
  LoadBalancerStatus out;
  const auto& ips = !service.externalIPs.empty() ? service.externalIPs : service.clusterIPs;
  for (const auto& ip : ips) {
    k8s::LoadBalancerIngress entry;
    entry.ip = ip;
    out.push_back(entry);
  }
  return out;
}

std::optional<LoadBalancerStatus> desiredStatus(const k8s::Ingress& ingress,
                                                const k8s::Snapshot& snapshot,
                                                std::string_view ingressClass,
                                                const LoadBalancerStatus& published) {
  if (!isOurs(ingress, snapshot, ingressClass)) {
    return std::nullopt;
  }
  return published;
}

namespace {

void addIfDifferent(std::vector<StatusUpdate>& out, const k8s::Ingress& ingress,
                    const k8s::Snapshot& snapshot, std::string_view ingressClass,
                    const LoadBalancerStatus& published) {
  if (ingress.meta.deleting) {
    return;
  }
  auto wanted = desiredStatus(ingress, snapshot, ingressClass, published);
  if (wanted && *wanted != ingress.loadBalancerIngress) {
    out.push_back({ingress.meta.namespace_, ingress.meta.name, ingress.meta.resourceVersion,
                   std::move(*wanted)});
  }
}

}  // namespace

std::vector<StatusUpdate> statusUpdates(const k8s::Snapshot& snapshot,
                                        std::string_view ingressClass,
                                        const LoadBalancerStatus& published) {
  std::vector<StatusUpdate> out;
  for (const auto& entry : snapshot.of<k8s::Ingress>()) {
    addIfDifferent(out, *entry.value, snapshot, ingressClass, published);
  }
  return out;
}

std::vector<StatusUpdate> statusUpdates(const k8s::Snapshot& snapshot,
                                        const std::vector<std::string>& ingressKeys,
                                        std::string_view ingressClass,
                                        const LoadBalancerStatus& published) {
  std::vector<StatusUpdate> out;
  for (const auto& key : ingressKeys) {
    if (const auto* ingress = snapshot.of<k8s::Ingress>().get(key)) {
      addIfDifferent(out, *ingress, snapshot, ingressClass, published);
    }
  }
  return out;
}

StatusScope statusScope(const k8s::Changes& changes, std::string_view publishServiceKey) {
  StatusScope out;
  const auto& services = changes.of(k8s::Kind::Service);
  out.all = !changes.of(k8s::Kind::IngressClass).empty() ||
            (!publishServiceKey.empty() &&
             std::binary_search(services.begin(), services.end(), publishServiceKey));
  if (!out.all) {
    out.ingressKeys = changes.of(k8s::Kind::Ingress);
  }
  return out;
}

std::string statusJson(const LoadBalancerStatus& status) {
  // IPs and hostnames need no JSON escaping: parsePublishAddress and the decoder admit neither
  // quotes nor backslashes.
  std::string out = R"({"loadBalancer":{"ingress":[)";
  for (std::size_t i = 0; i < status.size(); ++i) {
    out += i ? "," : "";
    if (status[i].ip) {
      out += R"({"ip":")" + status[i].ip->str() + "\"";
      if (status[i].ipMode == k8s::LoadBalancerIpMode::Proxy) {
        out += R"(,"ipMode":"Proxy")";
      }
      if (!status[i].hostname.empty()) {
        out += R"(,"hostname":")" + status[i].hostname + "\"";
      }
      out += "}";
    } else {
      out += R"({"hostname":")" + status[i].hostname + "\"}";
    }
  }
  out += "]}}";
  return out;
}

namespace {

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/// Index just past the JSON string starting at text[i] == '"'; npos when unterminated.
std::size_t skipString(std::string_view text, std::size_t i) {
  for (++i; i < text.size(); ++i) {
    if (text[i] == '\\') {
      ++i;
    } else if (text[i] == '"') {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

/// Index just past the JSON value starting at text[i] (no whitespace before it); npos when cut.
std::size_t skipValue(std::string_view text, std::size_t i) {
  if (i >= text.size()) {
    return std::string_view::npos;
  }
  if (text[i] == '"') {
    return skipString(text, i);
  }
  if (text[i] == '{' || text[i] == '[') {
    int depth = 0;
    while (i < text.size()) {
      const char c = text[i];
      if (c == '"') {
        i = skipString(text, i);
        if (i == std::string_view::npos) {
          return i;
        }
        continue;
      }
      depth += (c == '{' || c == '[') ? 1 : (c == '}' || c == ']') ? -1 : 0;
      ++i;
      if (depth == 0) {
        return i;
      }
    }
    return std::string_view::npos;
  }
  // A number, true, false or null.
  while (i < text.size() && !isSpace(text[i]) && text[i] != ',' && text[i] != '}' &&
         text[i] != ']') {
    ++i;
  }
  return i;
}

std::size_t skipSpace(std::string_view text, std::size_t i) {
  while (i < text.size() && isSpace(text[i])) {
    ++i;
  }
  return i;
}

}  // namespace

std::optional<std::string> replaceStatusMember(std::string_view object, std::string_view status) {
  std::size_t i = skipSpace(object, 0);
  if (i >= object.size() || object[i] != '{') {
    return std::nullopt;
  }
  ++i;
  bool empty = true;
  while (true) {
    i = skipSpace(object, i);
    if (i >= object.size()) {
      return std::nullopt;
    }
    if (object[i] == '}') {
      // No status member: add one before the closing brace.
      std::string out(object.substr(0, i));
      out += empty ? "" : ",";
      out += "\"status\":";
      out += status;
      out += object.substr(i);
      return out;
    }
    if (object[i] == ',') {
      ++i;
      continue;
    }
    if (object[i] != '"') {
      return std::nullopt;
    }
    const std::size_t keyEnd = skipString(object, i);
    if (keyEnd == std::string_view::npos) {
      return std::nullopt;
    }
    const std::string_view key = object.substr(i + 1, keyEnd - i - 2);
    i = skipSpace(object, keyEnd);
    if (i >= object.size() || object[i] != ':') {
      return std::nullopt;
    }
    const std::size_t valueStart = skipSpace(object, i + 1);
    const std::size_t valueEnd = skipValue(object, valueStart);
    if (valueEnd == std::string_view::npos) {
      return std::nullopt;
    }
    empty = false;
    if (key == "status") {
      std::string out(object.substr(0, valueStart));
      out += status;
      out += object.substr(valueEnd);
      return out;
    }
    i = valueEnd;
  }
}

// --- Lease ---

LeaseAction decideLease(const std::optional<LeaseRecord>& current, std::string_view me,
                        WallClock::time_point now) {
  if (!current) {
    return LeaseAction::Create;
  }
  if (current->holder == me) {
    return LeaseAction::Renew;
  }
  // No holder, no renewTime or past renewTime + duration: free to take.
  if (current->holder.empty() || !current->renewTime ||
      *current->renewTime + current->duration < now) {
    return LeaseAction::TakeOver;
  }
  return LeaseAction::Wait;
}

std::string leaseJson(std::string_view namespace_, std::string_view name, std::string_view me,
                      WallClock::time_point acquire, WallClock::time_point renew,
                      std::chrono::seconds duration, int transitions,
                      std::string_view resourceVersion) {
  // Names, namespace and identity are DNS names or hostnames: no escaping needed.
  std::string out = R"({"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":")";
  out += name;
  out += R"(","namespace":")";
  out += namespace_;
  out += "\"";
  if (!resourceVersion.empty()) {
    out += R"(,"resourceVersion":")";
    out += resourceVersion;
    out += "\"";
  }
  out += R"(},"spec":{"holderIdentity":")";
  out += me;
  out += R"(","leaseDurationSeconds":)" + std::to_string(duration.count());
  out += R"(,"acquireTime":")" + formatMicroTime(acquire);
  out += R"(","renewTime":")" + formatMicroTime(renew);
  out += R"(","leaseTransitions":)" + std::to_string(transitions) + "}}";
  return out;
}

}  // namespace kdp::ingress
