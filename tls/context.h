#pragma once
// The server-side OpenSSL context settings of the ingress: TLS 1.2 and 1.3 only, ECDHE with AEAD
// ciphers for 1.2, the library's 1.3 suites, no compression or renegotiation, and a certificate
// callback that picks the certificate by SNI from a CertStore at each handshake.

struct ssl_ctx_st;

namespace kdp::tls {

class CertStore;

/// Configures `ctx` (an SSL_CTX made with TLS_server_method, e.g. an asio ssl::context's native
/// handle). `store` must outlive every handshake on `ctx`. Throws std::runtime_error when OpenSSL
/// refuses a setting (startup only).
void configureServerContext(ssl_ctx_st* ctx, const CertStore& store);

}  // namespace kdp::tls
