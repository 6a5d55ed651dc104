#include "ingress/status.h"

#include <simdjson.h>

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

std::string_view trimEnd(std::string_view text) {
  const auto last = text.find_last_not_of(" \t\n\r");
  return text.substr(0, last == std::string_view::npos ? 0 : last + 1);
}

/// The bytes of `value` (consumed). simdjson's spans run on to the next token: trimmed.
std::optional<std::string_view> rawSpan(simdjson::ondemand::value value) {
  using simdjson::ondemand::json_type;
  json_type type;
  if (value.type().get(type)) {
    return std::nullopt;
  }
  std::string_view raw = value.raw_json_token();
  simdjson::ondemand::object object;
  simdjson::ondemand::array array;
  if ((type == json_type::object &&
       (value.get_object().get(object) || object.raw_json().get(raw))) ||
      (type == json_type::array && (value.get_array().get(array) || array.raw_json().get(raw)))) {
    return std::nullopt;
  }
  return trimEnd(raw);
}

}  // namespace

std::optional<std::string> replaceStatusMember(std::string_view object, std::string_view status) {
  // simdjson finds the member (strings holding braces or "status" are no trap) and checks the
  // syntax; the splice then keeps every other byte as the API server sent it.
  const simdjson::padded_string text(object);
  simdjson::ondemand::parser parser;
  simdjson::ondemand::document doc;
  simdjson::ondemand::object top;
  if (parser.iterate(text).get(doc) || doc.get_object().get(top)) {
    return std::nullopt;
  }
  bool empty = true;
  for (auto field : top) {
    simdjson::ondemand::raw_json_string key;
    if (field.key().get(key)) {
      return std::nullopt;
    }
    empty = false;
    if (key == "status") {
      const auto value = rawSpan(field.value());
      if (!value) {
        return std::nullopt;
      }
      const auto begin = static_cast<std::size_t>(value->data() - text.data());
      return std::string(object.substr(0, begin)) + std::string(status) +
             std::string(object.substr(begin + value->size()));
    }
  }
  // No status member: add one before the closing brace.
  const std::string_view body = trimEnd(object);
  if (body.empty() || body.back() != '}') {
    return std::nullopt;
  }
  return std::string(body.substr(0, body.size() - 1)) + (empty ? "" : ",") + "\"status\":" +
         std::string(status) + std::string(object.substr(body.size() - 1));
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
