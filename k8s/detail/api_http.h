#pragma once
// HTTPS GETs against kube-apiserver, as Asio coroutines on the caller's io_context: one TLS
// connection per request (LIST pages and WATCH streams are few and long), certificate
// verification on by default with the server's name or IP checked against the certificate's
// SANs, the bearer token re-read from its file when the file changes. The body is handed to the
// caller piece by piece as it arrives, so that a WATCH stream is decoded incrementally.
//
// Every step has a deadline (connect, TLS handshake, request write: 15 s; each body read: the
// caller's idle timeout), so a dead server never hangs a reflector.

#include <sys/types.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <ctime>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "k8s/api_config.h"

namespace kdp::k8s::detail {

struct ApiError {
  enum class Kind { Network, Tls, Http, Protocol, Aborted };
  Kind kind = Kind::Network;
  unsigned status = 0;  // Http: the status code
  std::string message;  // one line, naming the server

  /// Errors that retrying cannot fix without a change of configuration or permissions: refused
  /// at start rather than retried forever.
  bool isConfiguration() const {
    return kind == Kind::Tls || (kind == Kind::Http && (status == 401 || status == 403 ||
                                                        status == 404));
  }
};

/// Receives each piece of a 2xx response body; returns false to stop reading (the request then
/// ends with ApiError::Kind::Aborted).
using BodySink = std::function<bool(std::string_view)>;

class ApiHttp {
 public:
  /// Builds the TLS context; throws ApiConfigError when a PEM (CA, client certificate or key)
  /// is unusable.
  explicit ApiHttp(const ApiConfig& config);

  /// GET basePath + `target`. A 2xx body goes to `sink`; the body of any other status is read
  /// (up to 64 KiB) for the Status message and returned in the error. `maxIdle`: longest wait
  /// for the next piece of the body. `target` and `sink` must outlive the coroutine (the
  /// caller's named locals: GCC 12 destroys temporaries of a co_await expression twice).
  boost::asio::awaitable<std::optional<ApiError>> get(const std::string& target,
                                                      const BodySink& sink,
                                                      std::chrono::seconds maxIdle);

  enum class Method { Get, Post, Put };
  /// Like get(), with a method and a JSON request body (empty: none), for the few writes
  /// (Ingress status, Lease). Same lifetime rule for `target`, `body` and `sink`.
  boost::asio::awaitable<std::optional<ApiError>> send(Method method, const std::string& target,
                                                       const std::string& body,
                                                       const BodySink& sink,
                                                       std::chrono::seconds maxIdle);

  const ApiConfig& config() const { return config_; }

 private:
  std::string bearerToken(std::optional<ApiError>& error);

  ApiConfig config_;
  boost::asio::ssl::context tls_;
  bool hostIsIp_ = false;
  std::string verifyName_;  // tlsServerName or host
  // The token file as last read, to re-read it only when it changed (a rotated token).
  std::string fileToken_;
  ino_t tokenInode_ = 0;
  timespec tokenMtime_{};
  off_t tokenSize_ = -1;
};

}  // namespace kdp::k8s::detail
