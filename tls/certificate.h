#pragma once
// Certificates and keys from kubernetes.io/tls Secrets (tls.crt, tls.key) and PEM files, and a
// generated self-signed default. Every OpenSSL handle lives in a RAII type; OpenSSL stays out of
// this header (forward declarations only).

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

struct x509_st;
struct evp_pkey_st;
struct stack_st_X509;

namespace kdp::k8s {
struct Secret;
}

namespace kdp::tls {

/// A certificate chain with its private key. Immutable; share across threads.
class Certificate {
 public:
  struct Handles;
  explicit Certificate(std::unique_ptr<Handles> handles);
  ~Certificate();
  Certificate(const Certificate&) = delete;
  Certificate& operator=(const Certificate&) = delete;

  /// DNS names of the subjectAltName extension, else the subject CN; lowercase.
  const std::vector<std::string>& names() const { return names_; }
  /// "EC" or "RSA".
  const std::string& keyType() const { return keyType_; }
  /// The leaf's notAfter as text (logs).
  const std::string& notAfter() const { return notAfter_; }
  /// The leaf's notAfter, seconds since the epoch (metrics: seconds until expiry).
  std::int64_t notAfterUnix() const { return notAfterUnix_; }

  // Borrowed handles, valid as long as this object lives.
  x509_st* leaf() const;
  evp_pkey_st* key() const;
  stack_st_X509* chain() const;  // the intermediates (may be empty, never null)

 private:
  std::unique_ptr<Handles> h_;
  std::vector<std::string> names_;
  std::string keyType_;
  std::string notAfter_;
  std::int64_t notAfterUnix_ = 0;
};

using CertificatePtr = std::shared_ptr<const Certificate>;

/// Parses a PEM chain (leaf first) and a PEM private key (PKCS#8, PKCS#1 or SEC1), and checks
/// that the key is EC (P-256/P-384) or RSA (>= 2048 bits) and matches the leaf. Pure; any thread.
Result<CertificatePtr> parseCertificate(std::string_view certPem, std::string_view keyPem);

/// The same from a kubernetes.io/tls Secret's tls.crt and tls.key.
Result<CertificatePtr> certificateFromSecret(const k8s::Secret& secret);

/// Reads both files and parses them (startup: --default-cert/--default-key).
Result<CertificatePtr> loadCertificateFiles(const std::string& certPath,
                                            const std::string& keyPath);

/// A fresh ECDSA P-256 self-signed certificate for `commonName`, valid from an hour ago for a
/// year (the default certificate when none is given). Throws std::runtime_error on failure.
CertificatePtr generateSelfSigned(std::string_view commonName);

}  // namespace kdp::tls
