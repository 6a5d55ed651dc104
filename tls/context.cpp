#include "tls/context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <stdexcept>
#include <string>

#include "common/logging.h"
#include "tls/sni.h"

namespace kdp::tls {

namespace {

// TLS 1.2: forward secrecy and AEAD only (Mozilla "intermediate" minus DHE); TLS 1.3 keeps the
// library's defaults (AES-GCM and ChaCha20-Poly1305).
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* kGroups = "X25519:P-256:P-384";

// Runs inside each handshake, once the ClientHello (and its SNI) is known.
int selectCertificate(SSL* ssl, void* arg) {
  const auto* store = static_cast<const CertStore*>(arg);
  const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  const auto table = store->current();
  const Certificate* cert = table->select(sni == nullptr ? std::string_view() : sni);
  if (cert == nullptr) {
    return 0;  // no certificate at all: the handshake fails
  }
  if (SSL_use_cert_and_key(ssl, cert->leaf(), cert->key(), cert->chain(), 1) != 1) {
    ERR_clear_error();
    return 0;
  }
  return 1;
}

void check(int ok, const char* what) {
  if (ok != 1) {
    const unsigned long e = ERR_get_error();
    ERR_clear_error();
    char buf[256] = "unknown";
    if (e != 0) {
      ERR_error_string_n(e, buf, sizeof(buf));
    }
    throw std::runtime_error(std::string("TLS context: ") + what + ": " + buf);
  }
}

}  // namespace

void configureServerContext(ssl_ctx_st* ctx, const CertStore& store) {
  check(SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION), "min version");
  check(SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION), "max version");
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
  check(SSL_CTX_set_cipher_list(ctx, kTls12Ciphers), "ciphers");
  check(SSL_CTX_set1_groups_list(ctx, kGroups), "groups");
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
  SSL_CTX_set_cert_cb(ctx, &selectCertificate, const_cast<CertStore*>(&store));
}

}  // namespace kdp::tls
