#pragma once
// Small HTTP rules of the proxy, apart from any socket: hop-by-hop fields, Connection tokens,
// Host header syntax, idempotent methods, the Date format. Beast header types only.

#include <ostream>  // before Boost: its string_view needs a complete std::ostream

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <boost/beast/http/verb.hpp>

#include <ctime>
#include <string>
#include <string_view>
#include <vector>

namespace kdp::ingress::detail {

namespace http = boost::beast::http;

/// Does the Connection header list `token` (RFC 9110 7.6.1)? Case-insensitive.
template <class Fields>
bool connectionHas(const Fields& f, std::string_view token) {
  for (auto it = f.find(http::field::connection);
       it != f.end() && it->name() == http::field::connection; ++it) {
    for (const auto& t : http::token_list{it->value()}) {
      if (boost::beast::iequals(t, token)) {
        return true;
      }
    }
  }
  return false;
}

/// Removes what must not be forwarded (RFC 9110 7.6.1): Connection and the fields it names, and
/// Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade, Proxy-Authorization/-Authenticate.
/// Transfer-Encoding and Content-Length stay: they frame the message being relayed.
template <class Fields>
void removeHopByHop(Fields& f) {
  std::vector<std::string> named;
  for (auto it = f.find(http::field::connection);
       it != f.end() && it->name() == http::field::connection; ++it) {
    for (const auto& t : http::token_list{it->value()}) {
      named.emplace_back(t);
    }
  }
  for (const auto& n : named) {
    if (!boost::beast::iequals(n, "transfer-encoding") &&
        !boost::beast::iequals(n, "content-length") && !boost::beast::iequals(n, "host")) {
      f.erase(n);
    }
  }
  for (auto field : {http::field::connection, http::field::keep_alive,
                     http::field::proxy_connection, http::field::te, http::field::trailer,
                     http::field::upgrade, http::field::proxy_authorization,
                     http::field::proxy_authenticate}) {
    f.erase(field);
  }
}

/// A Host header value: reg-name, IPv4 or [IPv6], optional port; nothing else.
bool validHostHeader(std::string_view h);

/// GET, HEAD, OPTIONS, TRACE, PUT, DELETE (RFC 9110 9.2.2): safe to send twice.
bool isIdempotent(http::verb v);

/// Appends the header `h` as it goes on the wire (start line, fields in order, blank line): the
/// bytes Beast's serializer writes, as one contiguous buffer (the serializer hands the kernel
/// one iovec per field).
template <bool isRequest, class Fields>
void appendHeader(std::string& out, const http::header<isRequest, Fields>& h) {
  auto put = [&out](auto sv) { out.append(sv.data(), sv.size()); };
  const char version[] = {'H', 'T', 'T', 'P', '/', static_cast<char>('0' + h.version() / 10), '.',
                          static_cast<char>('0' + h.version() % 10)};
  if constexpr (isRequest) {
    put(h.method_string());
    out.push_back(' ');
    put(h.target());
    out.push_back(' ');
    out.append(version, sizeof version);
  } else {
    out.append(version, sizeof version);
    char code[4] = {' ', static_cast<char>('0' + h.result_int() / 100 % 10),
                    static_cast<char>('0' + h.result_int() / 10 % 10),
                    static_cast<char>('0' + h.result_int() % 10)};
    out.append(code, sizeof code);
    out.push_back(' ');
    put(h.reason());
  }
  out.append("\r\n");
  for (const auto& f : h) {
    put(f.name_string());
    out.append(": ");
    put(f.value());
    out.append("\r\n");
  }
  out.append("\r\n");
}

/// IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
std::string formatHttpDate(std::time_t t);

}  // namespace kdp::ingress::detail
