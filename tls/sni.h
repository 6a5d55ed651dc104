#pragma once
// SNI selection: which certificate a TLS handshake gets, from the hosts that Ingresses bind to
// Secrets. Exact host first, then a wildcard of one label ("*.foo.com"), then the default.
//
// CertStore turns bindings and Secrets into immutable CertTables, keeping the last good
// certificate of a Secret that turns bad (bad PEM, key not matching) and reusing parsed
// certificates whose Secret did not change.

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tls/certificate.h"

namespace kdp::k8s {
struct Secret;
}

namespace kdp::tls {

struct SniBinding {
  std::string host;    // lowercase: "foo.com" or "*.foo.com"
  std::string secret;  // namespace/name
};

/// Immutable; any thread.
class CertTable {
 public:
  explicit CertTable(CertificatePtr fallback) : default_(std::move(fallback)) {}

  /// The certificate for server name `sni` (any case; empty: none sent). Never null when the
  /// table has a default.
  const Certificate* select(std::string_view sni) const;
  void add(const std::string& host, CertificatePtr cert);
  std::size_t size() const { return exact_.size() + wildcard_.size(); }
  const CertificatePtr& fallback() const { return default_; }

 private:
  std::unordered_map<std::string, CertificatePtr> exact_;
  std::unordered_map<std::string, CertificatePtr> wildcard_;  // "*.foo.com" as "foo.com"
  CertificatePtr default_;
};

using SecretMap = std::map<std::string, std::shared_ptr<const k8s::Secret>, std::less<>>;

class CertStore {
 public:
  explicit CertStore(CertificatePtr fallback);

  /// Builds the table for `bindings`, given the Secrets they name (namespace/name; absent or not
  /// of type kubernetes.io/tls: the host gets no certificate of its own). One thread at a time
  /// (the sync thread); publishes to current().
  std::shared_ptr<const CertTable> update(const std::vector<SniBinding>& bindings,
                                          const SecretMap& secrets);

  /// The newest table. Any thread; lock-free for readers in practice.
  std::shared_ptr<const CertTable> current() const { return current_.load(); }

  /// Secrets that failed to parse, counted per update where they were broken.
  std::uint64_t errors() const { return errors_.load(std::memory_order_relaxed); }

  /// The certificates in use now by Secret (namespace/name), plus the default one under "".
  /// Any thread (metrics: seconds until each certificate expires).
  using InUse = std::vector<std::pair<std::string, CertificatePtr>>;
  std::shared_ptr<const InUse> inUse() const { return inUse_.load(); }

 private:
  struct Cached {
    std::string crt, key;  // the PEM text it was parsed from (or last tried)
    CertificatePtr cert;   // last good; may be null when never good
    bool broken = false;
  };
  CertificatePtr fallback_;
  std::unordered_map<std::string, Cached> cache_;  // by namespace/name
  std::atomic<std::shared_ptr<const CertTable>> current_;
  std::atomic<std::uint64_t> errors_{0};
  std::atomic<std::shared_ptr<const InUse>> inUse_;
};

}  // namespace kdp::tls
