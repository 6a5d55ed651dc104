#include "tls/sni.h"

#include <catch2/catch.hpp>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "k8s/objects.h"
#include "tls/context.h"
#include "tls/tls_test_util.h"

using namespace kdp;
using namespace kdp::tls;

namespace {

std::shared_ptr<const k8s::Secret> secret(const test::Pem& pem) {
  auto s = std::make_shared<k8s::Secret>();
  s->type = "kubernetes.io/tls";
  s->data["tls.crt"] = pem.crt;
  s->data["tls.key"] = pem.key;
  return s;
}

std::string firstName(const Certificate* c) {
  return c == nullptr || c->names().empty() ? "" : c->names().front();
}

// A TLS handshake in memory between a client offering `sni` (empty: none) and versions up to
// `maxVersion`, and a server configured with configureServerContext. Returns the CN the client
// saw, or "" when the handshake failed.
std::string handshake(const CertStore& store, const std::string& sni,
                      int maxVersion = TLS1_3_VERSION, int minVersion = 0) {
  CHandle<SSL_CTX, &SSL_CTX_free> sctx(SSL_CTX_new(TLS_server_method()));
  configureServerContext(sctx.get(), store);
  CHandle<SSL_CTX, &SSL_CTX_free> cctx(SSL_CTX_new(TLS_client_method()));
  SSL_CTX_set_max_proto_version(cctx.get(), maxVersion);
  if (minVersion != 0) {
    SSL_CTX_set_min_proto_version(cctx.get(), minVersion);
    SSL_CTX_set_security_level(cctx.get(), 0);
  }
  CHandle<SSL, &SSL_free> server(SSL_new(sctx.get()));
  CHandle<SSL, &SSL_free> client(SSL_new(cctx.get()));
  if (!sni.empty()) {
    SSL_set_tlsext_host_name(client.get(), sni.c_str());
  }
  BIO* a = nullptr;
  BIO* b = nullptr;
  BIO_new_bio_pair(&a, 0, &b, 0);
  SSL_set_bio(client.get(), a, a);  // each SSL owns its end
  SSL_set_bio(server.get(), b, b);
  SSL_set_connect_state(client.get());
  SSL_set_accept_state(server.get());
  bool cdone = false, sdone = false;
  for (int i = 0; i < 100 && !(cdone && sdone); ++i) {
    if (!cdone) {
      int r = SSL_do_handshake(client.get());
      if (r == 1) {
        cdone = true;
      } else if (SSL_get_error(client.get(), r) != SSL_ERROR_WANT_READ) {
        break;
      }
    }
    if (!sdone) {
      int r = SSL_do_handshake(server.get());
      if (r == 1) {
        sdone = true;
      } else if (SSL_get_error(server.get(), r) != SSL_ERROR_WANT_READ) {
        break;
      }
    }
  }
  ERR_clear_error();
  if (!cdone || !sdone) {
    return "";
  }
  CHandle<X509, &X509_free> peer(SSL_get1_peer_certificate(client.get()));
  char cn[256] = "";
  X509_NAME_get_text_by_NID(X509_get_subject_name(peer.get()), NID_commonName, cn, sizeof(cn));
  return cn;
}

}  // namespace

TEST_CASE("tls: SNI picks exact, then wildcard, then the default", "[tls]") {
  CertStore store(generateSelfSigned("default.invalid"));
  SecretMap secrets{{"ns/exact", secret(test::makePem({"a.foo.com"}))},
                    {"ns/wild", secret(test::makePem({"*.foo.com"}))}};
  auto t = store.update({{"a.foo.com", "ns/exact"}, {"*.foo.com", "ns/wild"}}, secrets);
  CHECK(t->size() == 2);
  CHECK(firstName(t->select("a.foo.com")) == "a.foo.com");
  CHECK(firstName(t->select("A.Foo.COM")) == "a.foo.com");
  CHECK(firstName(t->select("b.foo.com")) == "*.foo.com");
  CHECK(firstName(t->select("x.b.foo.com")) == "default.invalid");
  CHECK(firstName(t->select("foo.com")) == "default.invalid");
  CHECK(firstName(t->select("")) == "default.invalid");
  CHECK(store.current() == t);

  SECTION("handshakes") {
    CHECK(handshake(store, "a.foo.com") == "a.foo.com");
    CHECK(handshake(store, "zzz.foo.com") == "*.foo.com");
    CHECK(handshake(store, "") == "default.invalid");
    CHECK(handshake(store, "a.foo.com", TLS1_2_VERSION) == "a.foo.com");
    CHECK(handshake(store, "a.foo.com", TLS1_1_VERSION, TLS1_VERSION).empty());  // refused
  }
}

TEST_CASE("tls: a broken Secret keeps the previous certificate", "[tls]") {
  CertStore store(generateSelfSigned("default.invalid"));
  const auto first = test::makePem({"a.foo.com"});
  auto t1 = store.update({{"a.foo.com", "ns/s"}}, {{"ns/s", secret(first)}});
  const Certificate* before = t1->select("a.foo.com");
  REQUIRE(firstName(before) == "a.foo.com");

  // Same bytes again: the parsed certificate is reused.
  auto t2 = store.update({{"a.foo.com", "ns/s"}}, {{"ns/s", secret(first)}});
  CHECK(t2->select("a.foo.com") == before);

  auto broken = secret(first);
  const_cast<k8s::Secret&>(*broken).data["tls.key"] = test::makePem({"other"}).key;
  auto t3 = store.update({{"a.foo.com", "ns/s"}}, {{"ns/s", broken}});
  CHECK(t3->select("a.foo.com") == before);
  CHECK(store.errors() == 1);

  // A good new certificate replaces it.
  auto t4 = store.update({{"a.foo.com", "ns/s"}}, {{"ns/s", secret(test::makePem({"a.foo.com", "new"}))}});
  CHECK(t4->select("a.foo.com") != before);
  CHECK(t4->select("a.foo.com")->names().size() == 2);

  // A Secret never good: the host falls to the default.
  auto t5 = store.update({{"b.foo.com", "ns/bad"}}, {{"ns/bad", broken}});
  CHECK(firstName(t5->select("b.foo.com")) == "default.invalid");
}
