// The floor of bench/ingress.sh http: the least work any one-thread HTTP/1.1 keep-alive proxy
// does on Linux TCP. One epoll loop; each client connection gets its own upstream connection and
// bytes are relayed as they arrive: no parsing, no routing, no header rewriting, no timers, no
// pooling. It is not a proxy (it forwards whatever comes), it is the ceiling any real proxy runs
// under on the same machine, measured beside the peers in the same run.
//
//   ingress_floor LISTEN_PORT UPSTREAM_IP UPSTREAM_PORT     (listens on 127.0.0.1)

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "common/fd.h"

namespace {

sockaddr_in ipv4(const char* ip, int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

void noDelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s LISTEN_PORT UPSTREAM_IP UPSTREAM_PORT\n", argv[0]);
    return 2;
  }
  kdp::Fd listener(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
  int one = 1;
  setsockopt(listener.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  const sockaddr_in listenAddr = ipv4("127.0.0.1", std::atoi(argv[1]));
  const sockaddr_in upstream = ipv4(argv[2], std::atoi(argv[3]));
  if (bind(listener.get(), reinterpret_cast<const sockaddr*>(&listenAddr), sizeof listenAddr) != 0 ||
      listen(listener.get(), 4096) != 0) {
    std::perror("listen");
    return 1;
  }
  kdp::Fd epoll(epoll_create1(0));
  auto watch = [&](int fd) {
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.fd = fd;
    epoll_ctl(epoll.get(), EPOLL_CTL_ADD, fd, &event);
  };
  watch(listener.get());

  std::vector<kdp::Fd> fds;  // by descriptor number
  std::vector<int> peerOf;   // the other end of each relayed pair
  auto closePair = [&](int fd) {
    const int peer = peerOf[fd];
    fds[fd].reset();  // closing also removes it from the epoll set
    fds[peer].reset();
  };
  std::array<epoll_event, 256> events;
  std::vector<char> buffer(64 * 1024);
  for (;;) {
    const int n = epoll_wait(epoll.get(), events.data(), static_cast<int>(events.size()), -1);
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == listener.get()) {
        int client;
        while ((client = accept4(listener.get(), nullptr, nullptr, SOCK_NONBLOCK)) >= 0) {
          const int server = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
          // Loopback: the connect completes before the first request can be relayed.
          connect(server, reinterpret_cast<const sockaddr*>(&upstream), sizeof upstream);
          noDelay(client);
          noDelay(server);
          const auto top = static_cast<std::size_t>(std::max(client, server)) + 1;
          if (fds.size() < top) {
            fds.resize(top);
            peerOf.resize(top);
          }
          fds[client] = kdp::Fd(client);
          fds[server] = kdp::Fd(server);
          peerOf[client] = server;
          peerOf[server] = client;
          watch(client);
          watch(server);
        }
        continue;
      }
      if (!fds[fd]) {
        continue;  // closed earlier in this batch with its peer
      }
      const ssize_t got = read(fd, buffer.data(), buffer.size());
      if (got < 0 && errno == EAGAIN) {
        continue;
      }
      // Small messages never fill a socket buffer here: a short write ends the pair.
      if (got <= 0 || write(peerOf[fd], buffer.data(), static_cast<std::size_t>(got)) != got) {
        closePair(fd);
      }
    }
  }
}
