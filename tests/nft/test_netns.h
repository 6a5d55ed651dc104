#pragma once
// A throwaway network namespace for tests that talk to nf_tables: created with `ip netns add`,
// deleted in the destructor. Netlink sockets made by inside() live in it (setns on a thread of
// its own), so nothing ever touches the machine's own namespace.

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>

#include "common/fd.h"

namespace kdp::test {

class TestNetns {
 public:
  /// True when the test may create namespaces (root, `ip` and `nft` present).
  static bool available() {
    return ::geteuid() == 0 && std::system("command -v ip >/dev/null && command -v nft >/dev/null") == 0;
  }

  TestNetns() {
    static std::atomic<int> counter{0};
    name_ = "kdp-ut-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    if (std::system(("ip netns add " + name_).c_str()) != 0) {
      throw std::runtime_error("ip netns add failed");
    }
  }
  ~TestNetns() { (void)std::system(("ip netns del " + name_).c_str()); }
  TestNetns(const TestNetns&) = delete;
  TestNetns& operator=(const TestNetns&) = delete;

  const std::string& name() const { return name_; }

  /// Runs fn() on a thread that entered the namespace; returns its result.
  template <class F>
  auto inside(F&& fn) {
    decltype(fn()) result{};
    std::thread t([&] {
      Fd fd(::open(("/run/netns/" + name_).c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd || ::setns(fd.get(), CLONE_NEWNET) != 0) {
        std::abort();  // never fall back to the machine's namespace
      }
      result = fn();
    });
    t.join();
    return result;
  }

  /// `ip netns exec <ns> sh -c cmd`: its stdout.
  std::string exec(const std::string& cmd) const {
    std::string out;
    FILE* p = ::popen(("ip netns exec " + name_ + " sh -c '" + cmd + "' 2>&1").c_str(), "r");
    if (p == nullptr) {
      return out;
    }
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) {
      out.append(buf, n);
    }
    ::pclose(p);
    return out;
  }

 private:
  std::string name_;
};

}  // namespace kdp::test
