#include "tls/sni.h"

#include <algorithm>

#include "common/ascii.h"
#include "common/logging.h"
#include "k8s/objects.h"

namespace kdp::tls {

namespace {

}  // namespace

const Certificate* CertTable::select(std::string_view sni) const {
  if (!sni.empty()) {
    std::string host = asciiLower(sni);
    while (!host.empty() && host.back() == '.') {
      host.pop_back();
    }
    if (auto it = exact_.find(host); it != exact_.end()) {
      return it->second.get();
    }
    if (auto dot = host.find('.'); dot != std::string::npos && dot > 0) {
      if (auto it = wildcard_.find(host.substr(dot + 1)); it != wildcard_.end()) {
        return it->second.get();
      }
    }
  }
  return default_.get();
}

void CertTable::add(const std::string& host, CertificatePtr cert) {
  const std::string h = asciiLower(host);
  if (h.starts_with("*.")) {
    wildcard_.emplace(h.substr(2), std::move(cert));
  } else {
    exact_.emplace(h, std::move(cert));
  }
}

CertStore::CertStore(CertificatePtr fallback) : fallback_(std::move(fallback)) {
  current_.store(std::make_shared<const CertTable>(fallback_));
  inUse_.store(std::make_shared<const InUse>(InUse{{std::string(), fallback_}}));
}

std::shared_ptr<const CertTable> CertStore::update(const std::vector<SniBinding>& bindings,
                                                   const SecretMap& secrets) {
  auto log = logger("tls");
  auto table = std::make_shared<CertTable>(fallback_);
  std::unordered_map<std::string, Cached> next;
  for (const SniBinding& b : bindings) {
    auto done = next.find(b.secret);
    if (done == next.end()) {
      Cached entry;
      auto old = cache_.find(b.secret);
      if (old != cache_.end()) {
        entry = old->second;
      }
      auto s = secrets.find(b.secret);
      if (s != secrets.end() && s->second) {
        const auto& data = s->second->data;
        auto crt = data.find("tls.crt");
        auto key = data.find("tls.key");
        const std::string crtText = crt == data.end() ? std::string() : crt->second;
        const std::string keyText = key == data.end() ? std::string() : key->second;
        if (old == cache_.end() || crtText != entry.crt || keyText != entry.key) {
          entry.crt = crtText;
          entry.key = keyText;
          auto parsed = certificateFromSecret(*s->second);
          if (parsed) {
            entry.cert = std::move(parsed.value());
            entry.broken = false;
            SPDLOG_LOGGER_INFO(log, "certificate loaded secret={} names={} key={} notAfter={}",
                               b.secret, fmt::join(entry.cert->names(), ","),
                               entry.cert->keyType(), entry.cert->notAfter());
          } else {
            entry.broken = true;
            errors_.fetch_add(1, std::memory_order_relaxed);
            SPDLOG_LOGGER_WARN(log, "certificate refused secret={} err={} keeping={}", b.secret,
                               parsed.error().message, entry.cert ? "previous" : "default");
          }
        }
      } else if (old == cache_.end()) {
        SPDLOG_LOGGER_WARN(log, "certificate secret missing secret={}", b.secret);
      }
      // A Secret that vanished keeps its last good certificate too: hosts it served stay
      // served until the Ingress stops naming it.
      done = next.emplace(b.secret, std::move(entry)).first;
    }
    if (done->second.cert) {
      table->add(b.host, done->second.cert);
    }
  }
  auto inUse = std::make_shared<InUse>(InUse{{std::string(), fallback_}});
  for (const auto& [secret, cached] : next) {
    if (cached.cert) {
      inUse->emplace_back(secret, cached.cert);
    }
  }
  std::sort(inUse->begin(), inUse->end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  inUse_.store(std::move(inUse));
  cache_ = std::move(next);
  std::shared_ptr<const CertTable> out = std::move(table);
  current_.store(out);
  return out;
}

}  // namespace kdp::tls
