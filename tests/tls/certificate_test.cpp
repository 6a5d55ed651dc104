#include "tls/certificate.h"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "k8s/decode.h"
#include "tls/tls_test_util.h"

using namespace kdp;
using namespace kdp::tls;

TEST_CASE("tls: the example Secret is an ECDSA certificate for shop.example.com", "[tls]") {
  const auto path = std::filesystem::path(__FILE__).parent_path() / "../../examples/60-tls-secret.yaml";
  auto decoded = k8s::decodeYaml(
      [&] {
        std::ifstream in(path);
        return std::string(std::istreambuf_iterator<char>(in), {});
      }(),
      path.string());
  REQUIRE(decoded.objects.size() == 1);
  const auto& secret = std::get<k8s::Secret>(decoded.objects[0]);
  auto cert = certificateFromSecret(secret);
  REQUIRE(cert.ok());
  CHECK((*cert)->keyType() == "EC");
  CHECK((*cert)->names() == std::vector<std::string>{"shop.example.com", "*.shop.example.com"});
}

TEST_CASE("tls: PEM certificates and keys, EC and RSA, checked", "[tls]") {
  const auto ec = test::makePem({"a.com", "*.a.com"});
  const auto rsa = test::makePem({"b.com"}, true);
  SECTION("EC") {
    auto c = parseCertificate(ec.crt, ec.key);
    REQUIRE(c.ok());
    CHECK((*c)->keyType() == "EC");
    CHECK((*c)->names() == std::vector<std::string>{"a.com", "*.a.com"});
    CHECK_FALSE((*c)->notAfter().empty());
  }
  SECTION("RSA, with a chain after the leaf") {
    auto c = parseCertificate(rsa.crt + ec.crt, rsa.key);
    REQUIRE(c.ok());
    CHECK((*c)->keyType() == "RSA");
    CHECK((*c)->names() == std::vector<std::string>{"b.com"});
  }
  SECTION("refused: a key of another certificate, bad PEM, empty, short RSA") {
    auto mismatch = parseCertificate(ec.crt, rsa.key);
    REQUIRE_FALSE(mismatch.ok());
    CHECK_THAT(mismatch.error().message, Catch::Contains("does not match"));
    CHECK_FALSE(parseCertificate("-----BEGIN CERTIFICATE-----\nnope\n", ec.key).ok());
    CHECK_FALSE(parseCertificate(ec.crt, "garbage").ok());
    CHECK_FALSE(parseCertificate("", ec.key).ok());
    CHECK_FALSE(parseCertificate(ec.crt, "").ok());
    const auto weak = test::makePem({"weak.com"}, true, 1024);
    auto w = parseCertificate(weak.crt, weak.key);
    REQUIRE_FALSE(w.ok());
    CHECK_THAT(w.error().message, Catch::Contains("2048"));
  }
  SECTION("from a Secret of the wrong type") {
    k8s::Secret s;
    s.type = "Opaque";
    s.data["tls.crt"] = ec.crt;
    s.data["tls.key"] = ec.key;
    CHECK_FALSE(certificateFromSecret(s).ok());
    s.type = "kubernetes.io/tls";
    CHECK(certificateFromSecret(s).ok());
  }
}

TEST_CASE("tls: a generated default certificate", "[tls]") {
  auto c = generateSelfSigned("kube-dataplane default");
  REQUIRE(c);
  CHECK(c->keyType() == "EC");
  CHECK(c->names() == std::vector<std::string>{"kube-dataplane default"});
}
