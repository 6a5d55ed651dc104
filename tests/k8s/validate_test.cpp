#include "k8s/detail/validate.h"

#include <catch2/catch.hpp>

#include <string>

using namespace kdp::k8s::detail;

TEST_CASE("validate: DNS names as the API server checks them", "[decode][validate]") {
  CHECK(checkDns1123Label("web-1").empty());
  CHECK(checkDns1123Label("1web").empty());
  CHECK(checkDns1123Label(std::string(63, 'a')).empty());
  CHECK_FALSE(checkDns1123Label(std::string(64, 'a')).empty());
  for (const char* bad : {"", "-web", "web-", "Web", "web.x", "web_x", "wéb"}) {
    CAPTURE(bad);
    CHECK_FALSE(checkDns1123Label(bad).empty());
  }
  CHECK(checkDns1035Label("web-1").empty());
  CHECK_FALSE(checkDns1035Label("1web").empty());
  CHECK(checkDns1123Subdomain("a.b-c.d").empty());
  CHECK(checkDns1123Subdomain(std::string(63, 'a') + "." + std::string(63, 'b')).empty());
  for (const char* bad : {"", ".a", "a.", "a..b", "A.b", "a.-b", "*.a"}) {
    CAPTURE(bad);
    CHECK_FALSE(checkDns1123Subdomain(bad).empty());
  }
  CHECK_FALSE(checkDns1123Subdomain(std::string(254, 'a')).empty());
  CHECK(checkWildcardDns1123Subdomain("*.example.com").empty());
  CHECK(checkWildcardDns1123Subdomain("example.com").empty());
  CHECK_FALSE(checkWildcardDns1123Subdomain("*").empty());
  CHECK_FALSE(checkWildcardDns1123Subdomain("a.*.com").empty());
  CHECK_FALSE(checkWildcardDns1123Subdomain("**.com").empty());
}

TEST_CASE("validate: port names, label keys and values, data keys", "[decode][validate]") {
  CHECK(checkIanaSvcName("http").empty());
  CHECK(checkIanaSvcName("h2c-proxy-8080").empty());
  for (const char* bad : {"", "8080", "http--x", "-http", "http-", "HTTP", "a_b", "abcdefghijklmnop"}) {
    CAPTURE(bad);
    CHECK_FALSE(checkIanaSvcName(bad).empty());
  }
  CHECK(checkQualifiedName("app").empty());
  CHECK(checkQualifiedName("app.kubernetes.io/name").empty());
  CHECK(checkQualifiedName("A_b.C-d").empty());
  for (const char* bad : {"", "/a", "a/", "-a", "a-", "Example.com/a", "a/b/c", "a b"}) {
    CAPTURE(bad);
    CHECK_FALSE(checkQualifiedName(bad).empty());
  }
  CHECK_FALSE(checkQualifiedName(std::string(64, 'a')).empty());
  CHECK(checkLabelValue("").empty());
  CHECK(checkLabelValue("v1.2_3-x").empty());
  CHECK_FALSE(checkLabelValue("-x").empty());
  CHECK_FALSE(checkLabelValue(std::string(64, 'a')).empty());
  CHECK(checkConfigMapKey("tls.crt").empty());
  CHECK(checkConfigMapKey(".dockerconfigjson").empty());
  for (const char* bad : {"", ".", "..", "a/b", "a b"}) {
    CAPTURE(bad);
    CHECK_FALSE(checkConfigMapKey(bad).empty());
  }
  CHECK(checkDomainPrefixedPath("k8s.io/ingress-nginx").empty());
  CHECK(checkDomainPrefixedPath("example.com/a/b").empty());
  for (const char* bad : {"nginx", "example.com/", "/path", "Example.com/a", "a.com/with space"}) {
    CAPTURE(bad);
    CHECK_FALSE(checkDomainPrefixedPath(bad).empty());
  }
}

TEST_CASE("validate: base64 as Go's StdEncoding decodes it", "[decode][validate]") {
  CHECK(decodeBase64("") == "");
  CHECK(decodeBase64("YQ==") == "a");
  CHECK(decodeBase64("YWI=") == "ab");
  CHECK(decodeBase64("YWJj") == "abc");
  CHECK(decodeBase64("YWJj\r\nZGVm\n") == "abcdef");
  CHECK(decodeBase64("+/+/") == std::string("\xfb\xff\xbf", 3));
  CHECK(decodeBase64("YR==") == "a");  // non-zero padding bits: accepted, as Go's StdEncoding
  for (const char* bad : {"Y", "YQ", "YQ=", "YQ===", "Y===", "=", "====", "YQ==YQ==", "YQ==a",
                          "YW-j", "YW_j", "YW j", "YWJj=", "!!!!"}) {
    CAPTURE(bad);
    CHECK_FALSE(decodeBase64(bad));
  }
  CHECK(decodeBase64("YQ=\n=") == "a");  // newlines are ignored anywhere
}
