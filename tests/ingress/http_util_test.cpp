#include "ingress/detail/http_util.h"

#include <catch2/catch.hpp>

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/write.hpp>

#include <sstream>
#include <string>

using namespace kdp::ingress::detail;
namespace http = boost::beast::http;

TEST_CASE("http: hop-by-hop fields and the fields Connection names are removed",
          "[ingress][http]") {
  http::fields f;
  f.set(http::field::connection, "keep-alive, X-Drop , Upgrade");
  f.insert(http::field::connection, "x-other");
  f.set("X-Drop", "1");
  f.set("X-Other", "2");
  f.set("X-Keep", "3");
  f.set(http::field::keep_alive, "timeout=5");
  f.set(http::field::te, "trailers");
  f.set(http::field::upgrade, "websocket");
  f.set(http::field::proxy_authorization, "secret");
  f.set(http::field::transfer_encoding, "chunked");
  f.set(http::field::host, "a.com");
  CHECK(connectionHas(f, "upgrade"));
  CHECK(connectionHas(f, "X-OTHER"));
  CHECK_FALSE(connectionHas(f, "close"));
  removeHopByHop(f);
  CHECK(f.count(http::field::connection) == 0);
  CHECK(f.count("X-Drop") == 0);
  CHECK(f.count("X-Other") == 0);
  CHECK(f.count(http::field::keep_alive) == 0);
  CHECK(f.count(http::field::te) == 0);
  CHECK(f.count(http::field::upgrade) == 0);
  CHECK(f.count(http::field::proxy_authorization) == 0);
  CHECK(f["X-Keep"] == "3");
  CHECK(f[http::field::transfer_encoding] == "chunked");  // framing stays
  CHECK(f[http::field::host] == "a.com");
}

TEST_CASE("http: a Connection header cannot remove framing or Host", "[ingress][http]") {
  http::fields f;
  f.set(http::field::connection, "Content-Length, Transfer-Encoding, Host");
  f.set(http::field::content_length, "4");
  f.set(http::field::host, "a.com");
  removeHopByHop(f);
  CHECK(f[http::field::content_length] == "4");
  CHECK(f[http::field::host] == "a.com");
}

TEST_CASE("http: Host header syntax", "[ingress][http]") {
  for (const char* ok : {"a.com", "A-b_c.example.com:8080", "127.0.0.1:80", "[::1]:443", ""}) {
    CHECK(validHostHeader(ok));
  }
  for (const char* bad : {"a.com/x", "a b", "a.com\r\nX: y", "a@b", "a.com?x", "a\\b"}) {
    CHECK_FALSE(validHostHeader(bad));
  }
  CHECK_FALSE(validHostHeader(std::string(256, 'a')));
}

TEST_CASE("http: idempotent methods and the Date format", "[ingress][http]") {
  CHECK(isIdempotent(http::verb::get));
  CHECK(isIdempotent(http::verb::put));
  CHECK(isIdempotent(http::verb::delete_));
  CHECK_FALSE(isIdempotent(http::verb::post));
  CHECK_FALSE(isIdempotent(http::verb::patch));
  CHECK(formatHttpDate(784111777) == "Sun, 06 Nov 1994 08:49:37 GMT");  // RFC 9110's example
  CHECK(formatHttpDate(0) == "Thu, 01 Jan 1970 00:00:00 GMT");
}

TEST_CASE("http: appendHeader writes the bytes Beast's serializer writes", "[ingress][http]") {
  http::request_header<> req;
  req.method(http::verb::get);
  req.target("/a/b?c=d");
  req.version(11);
  req.set(http::field::host, "bench.local");
  req.set("X-Forwarded-For", "127.0.0.1");
  req.insert("X-Custom", "one");
  req.insert("X-Custom", "two");
  std::ostringstream beastReq;
  beastReq << req;
  std::string ours = "kept|";
  appendHeader(ours, req);
  CHECK(ours == "kept|" + beastReq.str());
  CHECK(ours.ends_with("X-Custom: two\r\n\r\n"));

  http::request_header<> custom;
  custom.method_string("PURGE");
  custom.target("/");
  custom.version(10);
  std::ostringstream beastCustom;
  beastCustom << custom;
  std::string oursCustom;
  appendHeader(oursCustom, custom);
  CHECK(oursCustom == beastCustom.str());
  CHECK(oursCustom == "PURGE / HTTP/1.0\r\n\r\n");

  for (const bool ownReason : {false, true}) {
    http::response_header<> res;
    res.result(404);
    res.version(10);
    if (ownReason) {
      res.reason("Nope");
    }
    res.set(http::field::server, "kube-dataplane");
    res.set(http::field::content_length, "13");
    std::ostringstream beastRes;
    beastRes << res;
    std::string oursRes;
    appendHeader(oursRes, res);
    CHECK(oursRes == beastRes.str());
    CHECK(oursRes.starts_with(ownReason ? "HTTP/1.0 404 Nope\r\n" : "HTTP/1.0 404 Not Found\r\n"));
  }
}
