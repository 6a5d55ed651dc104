#include "k8s/detail/api_http.h"

// GCC 12 flags Asio's coroutine frame allocator (aligned_alloc, freed by the frame's own
// operator delete) as mismatched once the coroutine is inlined: a false positive.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <sys/stat.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <array>

#include "common/version.h"
#include "k8s/decode.h"

namespace kdp::k8s::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using asio::ip::tcp;

namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr auto kStepTimeout = std::chrono::seconds(15);
constexpr std::size_t kMaxErrorBody = 64 << 10;
constexpr std::size_t kMaxTokenBytes = 64 << 10;

bool isIpLiteral(const std::string& host) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, host.c_str(), buf) == 1 || ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) {
    s.pop_back();
  }
  return s;
}

}  // namespace

ApiHttp::ApiHttp(const ApiConfig& config)
    : config_(config), tls_(ssl::context::tls_client) {
  tls_.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  boost::system::error_code ec;
  if (config_.insecureSkipTlsVerify) {
    tls_.set_verify_mode(ssl::verify_none);
  } else {
    tls_.set_verify_mode(ssl::verify_peer);
    if (!config_.caPem.empty()) {
      if (tls_.add_certificate_authority(asio::buffer(config_.caPem), ec); ec) {
        throw ApiConfigError(config_.caOrigin + ": not a usable PEM CA certificate (" +
                             ec.message() + ")");
      }
    } else if (tls_.set_default_verify_paths(ec); ec) {
      throw ApiConfigError(config_.origin + ": no CA given and the system's CAs cannot be read");
    }
  }
  if (!config_.clientCertPem.empty()) {
    if (tls_.use_certificate_chain(asio::buffer(config_.clientCertPem), ec); ec) {
      throw ApiConfigError(config_.origin + ": client certificate: not a usable PEM certificate (" +
                           ec.message() + ")");
    }
    if (tls_.use_private_key(asio::buffer(config_.clientKeyPem), ssl::context::pem, ec); ec) {
      throw ApiConfigError(config_.origin + ": client key: not a usable PEM key (" +
                           ec.message() + ")");
    }
  }
  verifyName_ = config_.tlsServerName.empty() ? config_.host : config_.tlsServerName;
  hostIsIp_ = isIpLiteral(verifyName_);
}

std::string ApiHttp::bearerToken(std::optional<ApiError>& error) {
  if (config_.tokenFile.empty()) {
    return config_.token;
  }
  struct stat st {};
  if (::stat(config_.tokenFile.c_str(), &st) == 0 && st.st_ino == tokenInode_ &&
      st.st_size == tokenSize_ && st.st_mtim.tv_sec == tokenMtime_.tv_sec &&
      st.st_mtim.tv_nsec == tokenMtime_.tv_nsec) {
    return fileToken_;
  }
  try {
    std::string token = trimmed(readWholeFile(config_.tokenFile, "token file"));
    if (token.size() > kMaxTokenBytes) {
      throw ApiConfigError("token file " + config_.tokenFile + ": too large");
    }
    fileToken_ = std::move(token);
    tokenInode_ = st.st_ino;
    tokenSize_ = st.st_size;
    tokenMtime_ = st.st_mtim;
  } catch (const ApiConfigError& e) {
    if (fileToken_.empty()) {
      error = ApiError{ApiError::Kind::Network, 0, e.what()};
    }
    // else: keep the last token; the file is being replaced.
  }
  return fileToken_;
}

asio::awaitable<std::optional<ApiError>> ApiHttp::get(const std::string& target,
                                                      const BodySink& sink,
                                                      std::chrono::seconds maxIdle) {
  const std::string noBody;
  // Named, not `co_return co_await`: GCC 12 miscompiles the temporary of that form.
  std::optional<ApiError> result = co_await send(Method::Get, target, noBody, sink, maxIdle);
  co_return result;
}

asio::awaitable<std::optional<ApiError>> ApiHttp::send(Method method, const std::string& target,
                                                       const std::string& body,
                                                       const BodySink& sink,
                                                       std::chrono::seconds maxIdle) {
  const std::string where = "https://" + config_.hostPort();
  auto fail = [&](ApiError::Kind kind, std::string what, unsigned status = 0) {
    return std::optional<ApiError>(ApiError{kind, status, where + ": " + std::move(what)});
  };

  std::optional<ApiError> tokenError;
  const std::string token = bearerToken(tokenError);
  if (tokenError) {
    co_return tokenError;
  }

  auto executor = co_await asio::this_coro::executor;
  tcp::resolver resolver(executor);
  // Named, not temporaries: GCC 12 destroys temporaries of a co_await expression twice.
  const std::string port = std::to_string(config_.port);
  auto [rec, endpoints] = co_await resolver.async_resolve(config_.host, port, kUseTuple);
  if (rec) {
    co_return fail(ApiError::Kind::Network, "cannot resolve " + config_.host + ": " + rec.message());
  }

  beast::ssl_stream<beast::tcp_stream> stream(executor, tls_);
  SSL* ssl = stream.native_handle();
  if (!config_.insecureSkipTlsVerify) {
    const int set = hostIsIp_
                        ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), verifyName_.c_str())
                        : SSL_set1_host(ssl, verifyName_.c_str());
    if (set != 1) {
      co_return fail(ApiError::Kind::Tls, "cannot verify against name " + verifyName_);
    }
  }
  if (!hostIsIp_) {
    SSL_set_tlsext_host_name(ssl, verifyName_.c_str());
  }

  auto& tcpStream = beast::get_lowest_layer(stream);
  tcpStream.expires_after(kStepTimeout);
  if (auto [ec, ep] = co_await tcpStream.async_connect(endpoints, kUseTuple); ec) {
    co_return fail(ApiError::Kind::Network, "cannot connect: " + ec.message());
  }
  tcpStream.expires_after(kStepTimeout);
  if (auto [ec] = co_await stream.async_handshake(ssl::stream_base::client, kUseTuple); ec) {
    const long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) {
      co_return fail(ApiError::Kind::Tls,
                     std::string("TLS certificate verify failed: ") +
                         X509_verify_cert_error_string(verify) +
                         (config_.caOrigin.empty() ? " (system CAs)"
                                                   : " (CA from " + config_.caOrigin + ")"));
    }
    co_return fail(ApiError::Kind::Tls, "TLS handshake failed: " + ec.message());
  }

  const http::verb verb = method == Method::Get    ? http::verb::get
                          : method == Method::Post ? http::verb::post
                                                   : http::verb::put;
  const char* verbName = method == Method::Get ? "GET " : method == Method::Post ? "POST " : "PUT ";
  http::request<http::string_body> request{verb, config_.basePath + target, 11};
  if (method != Method::Get) {
    request.set(http::field::content_type, "application/json");
    request.body() = body;
    request.prepare_payload();
  }
  request.set(http::field::host, config_.hostPort());
  request.set(http::field::user_agent, std::string("kube-dataplane/") + kVersion);
  request.set(http::field::accept, "application/json");
  request.set(http::field::connection, "close");
  if (!token.empty()) {
    request.set(http::field::authorization, "Bearer " + token);
  }
  tcpStream.expires_after(kStepTimeout);
  if (auto [ec, n] = co_await http::async_write(stream, request, kUseTuple); ec) {
    co_return fail(ApiError::Kind::Network, "cannot send request: " + ec.message());
  }

  http::response_parser<http::buffer_body> parser;
  parser.body_limit(boost::none);
  beast::flat_buffer buffer;
  tcpStream.expires_after(std::max<std::chrono::seconds>(maxIdle, kStepTimeout));
  if (auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, kUseTuple); ec) {
    co_return fail(ApiError::Kind::Network, "no response: " + ec.message());
  }
  const unsigned status = parser.get().result_int();
  const bool success = status >= 200 && status < 300;
  std::string errorBody;

  std::array<char, 64 << 10> chunk;
  while (!parser.is_done()) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    tcpStream.expires_after(maxIdle);
    auto [ec, n] = co_await http::async_read_some(stream, buffer, parser, kUseTuple);
    if (ec == http::error::need_buffer) {
      ec = {};
    }
    const std::size_t got = chunk.size() - parser.get().body().size;
    if (got > 0) {
      const std::string_view piece(chunk.data(), got);
      if (success) {
        if (!sink(piece)) {
          co_return fail(ApiError::Kind::Aborted, "stopped reading");
        }
      } else if (errorBody.size() < kMaxErrorBody) {
        errorBody.append(piece.substr(0, kMaxErrorBody - errorBody.size()));
      }
    }
    if (ec) {
      if (!success) {
        break;  // report the status with what arrived
      }
      if (ec == beast::error::timeout) {
        co_return fail(ApiError::Kind::Network,
                       "no data for " + std::to_string(maxIdle.count()) + " s");
      }
      co_return fail(ApiError::Kind::Network, "response cut: " + ec.message());
    }
  }
  if (!success) {
    std::string message = decodeApiStatusMessage(errorBody);
    co_return fail(ApiError::Kind::Http,
                   verbName + target + ": HTTP " + std::to_string(status) +
                       (message.empty() ? std::string(parser.get().reason())
                                        : ": " + message),
                   status);
  }
  co_return std::nullopt;
}

}  // namespace kdp::k8s::detail
