#include "proxy/health_server.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "common/fd.h"
#include "common/logging.h"

namespace kdp::proxy {

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kMaxHead = 4096;
constexpr std::size_t kMaxConnections = 64;
constexpr auto kRequestDeadline = std::chrono::seconds(2);

/// A non-blocking listening socket on `hp`; errno set and an invalid Fd when it cannot.
Fd listenOn(const HostPort& hp) {
  sockaddr_storage ss{};
  const socklen_t len = toSockaddr(hp, ss);
  Fd fd(::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) {
    return fd;
  }
  int one = 1;
  (void)::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&ss), len) != 0 ||
      ::listen(fd.get(), 64) != 0) {
    const int err = errno;
    fd.reset();
    errno = err;
  }
  return fd;
}

std::uint16_t boundPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return 0;
  }
  const auto port = ss.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                            : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port;
  return ntohs(port);
}

/// What a listener answers.
struct Listener {
  Fd fd;
  bool healthz = false;
  std::string namespace_, name;  // the Service (healthz false)
};

struct Connection {
  Fd fd;
  const Listener* listener = nullptr;
  std::string head;
  Clock::time_point deadline;
};

/// The path of the request line "GET /healthz HTTP/1.1".
std::string pathOf(const std::string& head) {
  const auto sp = head.find(' ');
  if (sp == std::string::npos) {
    return {};
  }
  const auto end = head.find_first_of(" ?\r\n", sp + 1);
  return head.substr(sp + 1, end == std::string::npos ? std::string::npos : end - sp - 1);
}

}  // namespace

struct HealthServer::Impl {
  std::vector<IpAddr> addresses;
  Fd wake{::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)};
  std::uint16_t healthzPort = 0;

  std::mutex mu;
  std::vector<HealthCheckService> services;  // guarded by mu
  bool servicesChanged = false;              // guarded by mu
  ProxyHealthState health;                   // guarded by mu
  bool stopping = false;                     // guarded by mu

  // Server thread only.
  std::unique_ptr<Listener> healthzListener;
  std::map<std::uint16_t, std::vector<std::unique_ptr<Listener>>> serviceListeners;  // by port
  std::vector<Connection> connections;
  std::thread thread;

  void notify() {
    const std::uint64_t one = 1;
    (void)!::write(wake.get(), &one, sizeof one);
  }

  /// Opens listeners for new ports, closes those of gone ones (server thread).
  void reconcile(const std::vector<HealthCheckService>& want) {
    auto log = logger("proxy");
    std::map<std::uint16_t, const HealthCheckService*> byPort;
    for (const auto& s : want) {
      byPort.emplace(s.port, &s);  // two Services on one port: the first keeps it
    }
    for (auto it = serviceListeners.begin(); it != serviceListeners.end();) {
      auto w = byPort.find(it->first);
      const bool keep = w != byPort.end() && !it->second.empty() &&
                        it->second.front()->namespace_ == w->second->namespace_ &&
                        it->second.front()->name == w->second->name;
      if (keep) {
        ++it;
        continue;
      }
      // Connections in flight on a closing listener are answered from the new state or 503.
      for (auto& c : connections) {
        for (const auto& l : it->second) {
          if (c.listener == l.get()) {
            c.listener = nullptr;
          }
        }
      }
      SPDLOG_LOGGER_INFO(log, "closing health check port={}", it->first);
      it = serviceListeners.erase(it);
    }
    for (const auto& [port, s] : byPort) {
      if (serviceListeners.count(port) != 0) {
        continue;
      }
      auto& listeners = serviceListeners[port];
      for (const auto& ip : addresses) {
        auto l = std::make_unique<Listener>();
        l->fd = listenOn(HostPort{ip, port});
        if (!l->fd) {
          SPDLOG_LOGGER_WARN(log, "health check not served service={}/{} address={} err={}",
                             s->namespace_, s->name, HostPort{ip, port}.str(),
                             std::strerror(errno));
          continue;
        }
        l->namespace_ = s->namespace_;
        l->name = s->name;
        listeners.push_back(std::move(l));
      }
      SPDLOG_LOGGER_INFO(log, "serving health check service={}/{} port={} listeners={}",
                         s->namespace_, s->name, port, listeners.size());
    }
  }

  HttpResponse answer(const Connection& c) {
    std::lock_guard lock(mu);
    const auto now = std::chrono::system_clock::now();
    if (c.listener != nullptr && c.listener->healthz) {
      const std::string path = pathOf(c.head);
      if (path != "/healthz" && path != "/livez") {
        HttpResponse r;
        r.status = 404;
        r.headers = {{"Content-Type", "text/plain; charset=utf-8"},
                     {"X-Content-Type-Options", "nosniff"}};
        r.body = "404 page not found\n";
        return r;
      }
      return proxyHealthResponse(health, now);
    }
    const bool healthy = proxyHealthy(health, now);
    for (const auto& s : services) {
      if (c.listener != nullptr && s.namespace_ == c.listener->namespace_ &&
          s.name == c.listener->name) {
        return serviceHealthResponse(s, healthy);
      }
    }
    // The Service went away while the request was in flight.
    HealthCheckService gone;
    if (c.listener != nullptr) {
      gone.namespace_ = c.listener->namespace_;
      gone.name = c.listener->name;
    }
    return serviceHealthResponse(gone, healthy);
  }

  void run() {
    ::pthread_setname_np(::pthread_self(), "kdp/proxy-health");
    for (;;) {
      std::vector<HealthCheckService> want;
      bool changed = false;
      {
        std::lock_guard lock(mu);
        if (stopping) {
          return;
        }
        if (servicesChanged) {
          want = services;
          servicesChanged = false;
          changed = true;
        }
      }
      if (changed) {
        reconcile(want);
      }
      std::vector<pollfd> fds;
      std::vector<const Listener*> pollListeners;
      fds.push_back({wake.get(), POLLIN, 0});
      auto addListener = [&](const Listener& l) {
        if (connections.size() < kMaxConnections) {
          fds.push_back({l.fd.get(), POLLIN, 0});
          pollListeners.push_back(&l);
        }
      };
      if (healthzListener) {
        addListener(*healthzListener);
      }
      for (const auto& [port, ls] : serviceListeners) {
        for (const auto& l : ls) {
          addListener(*l);
        }
      }
      const std::size_t firstConnection = fds.size();
      for (const auto& c : connections) {
        fds.push_back({c.fd.get(), POLLIN, 0});
      }
      (void)::poll(fds.data(), fds.size(), 500);
      if (fds[0].revents != 0) {
        std::uint64_t n = 0;
        (void)!::read(wake.get(), &n, sizeof n);
      }
      // Read what arrived; answer complete heads; drop the late and the oversized.
      const auto now = Clock::now();
      for (std::size_t i = 0; i < connections.size(); ++i) {
        auto& c = connections[i];
        if (fds[firstConnection + i].revents != 0) {
          char buf[1024];
          const ssize_t n = ::recv(c.fd.get(), buf, sizeof buf, 0);
          if (n <= 0 && !(n < 0 && (errno == EAGAIN || errno == EINTR))) {
            c.fd.reset();
            continue;
          }
          if (n > 0) {
            c.head.append(buf, static_cast<std::size_t>(n));
          }
        }
        if (c.head.find("\r\n\r\n") != std::string::npos || c.head.find("\n\n") != std::string::npos) {
          const std::string out = answer(c).serialize();
          (void)::send(c.fd.get(), out.data(), out.size(), MSG_NOSIGNAL);  // small: fits the buffer
          c.fd.reset();
        } else if (c.head.size() > kMaxHead || now > c.deadline) {
          c.fd.reset();
        }
      }
      std::erase_if(connections, [](const Connection& c) { return !c.fd; });
      for (std::size_t i = 0; i < pollListeners.size(); ++i) {
        if (fds[1 + i].revents == 0) {
          continue;
        }
        Fd fd(::accept4(pollListeners[i]->fd.get(), nullptr, nullptr,
                        SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (fd && connections.size() < kMaxConnections) {
          connections.push_back({std::move(fd), pollListeners[i], {}, now + kRequestDeadline});
        }
      }
    }
  }
};

HealthServer::HealthServer(std::vector<IpAddr> addresses, std::optional<HostPort> healthz)
    : impl_(std::make_unique<Impl>()) {
  impl_->addresses = std::move(addresses);
  if (!impl_->wake) {
    throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
  }
  if (healthz) {
    auto l = std::make_unique<Listener>();
    l->fd = listenOn(*healthz);
    if (!l->fd) {
      throw std::runtime_error("--healthz " + healthz->str() + ": " + std::strerror(errno));
    }
    l->healthz = true;
    impl_->healthzPort = boundPort(l->fd.get());
    impl_->healthzListener = std::move(l);
  }
  impl_->thread = std::thread([impl = impl_.get()] { impl->run(); });
}

HealthServer::~HealthServer() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->notify();
  impl_->thread.join();
}

void HealthServer::setServices(std::vector<HealthCheckService> services) {
  {
    std::lock_guard lock(impl_->mu);
    if (services == impl_->services) {
      return;
    }
    impl_->services = std::move(services);
    impl_->servicesChanged = true;
  }
  impl_->notify();
}

void HealthServer::queued() {
  std::lock_guard lock(impl_->mu);
  if (!impl_->health.oldestPending) {
    impl_->health.oldestPending = std::chrono::system_clock::now();
  }
}

void HealthServer::updated() {
  std::lock_guard lock(impl_->mu);
  impl_->health.oldestPending.reset();
  impl_->health.lastUpdated = std::chrono::system_clock::now();
}

std::uint16_t HealthServer::healthzPort() const { return impl_->healthzPort; }

}  // namespace kdp::proxy
