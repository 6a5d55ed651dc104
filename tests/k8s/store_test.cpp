#include "k8s/store.h"

#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

using namespace kdp::k8s;
using namespace std::chrono_literals;

namespace {

Service makeService(std::string ns, std::string name, int port = 80) {
  Service s;
  s.meta.namespace_ = std::move(ns);
  s.meta.name = std::move(name);
  s.clusterIPs.push_back(*kdp::IpAddr::parse("10.96.0.10"));
  ServicePort p;
  p.port = port;
  p.targetPort.number = port;
  s.ports.push_back(p);
  return s;
}

EndpointSlice makeSlice(std::string ns, std::string name, std::string service) {
  EndpointSlice e;
  e.meta.namespace_ = std::move(ns);
  e.meta.name = std::move(name);
  e.serviceName = std::move(service);
  return e;
}

}  // namespace

TEST_CASE("store: a batch is one version, keys by kind, no-op upserts change nothing", "[store]") {
  Store store;
  Batch b;
  for (int i = 0; i < 1000; ++i) {
    b.upsert(makeService("default", "svc" + std::to_string(i)));
  }
  CHECK(store.apply(std::move(b)) == 1000);
  auto snap = store.snapshot();
  CHECK(snap->version == 1);
  CHECK(snap->count(Kind::Service) == 1000);
  REQUIRE(snap->service("default", "svc7"));
  CHECK(snap->service("default", "svc7")->ports[0].port == 80);

  Batch same;
  same.upsert(makeService("default", "svc7"));
  CHECK(store.apply(std::move(same)) == 0);
  CHECK(store.snapshot()->version == 1);
  CHECK(store.stats().noopUpserts == 1);
}

TEST_CASE("store: snapshots are isolated from later batches", "[store]") {
  Store store;
  Batch b;
  b.upsert(makeService("default", "web", 80));
  (void)store.apply(std::move(b));
  auto before = store.snapshot();

  Batch change;
  change.upsert(makeService("default", "web", 8080));
  change.remove(Kind::Service, "default", "missing");
  change.upsert(makeService("other", "api"));
  CHECK(store.apply(std::move(change)) == 2);
  CHECK(before->service("default", "web")->ports[0].port == 80);
  CHECK(before->service("other", "api") == nullptr);
  CHECK_FALSE(before->namespaceExists("other"));
  auto after = store.snapshot();
  CHECK(after->service("default", "web")->ports[0].port == 8080);
  CHECK(after->namespaceExists("other"));
}

TEST_CASE("store: namespaces exist while a Namespace object or any object names them",
          "[store]") {
  Store store;
  Batch b;
  Namespace ns;
  ns.meta.name = "empty";
  b.upsert(ns);
  b.upsert(makeService("apps", "web"));
  (void)store.apply(std::move(b));
  CHECK(store.snapshot()->namespaceExists("empty"));
  CHECK(store.snapshot()->namespaceExists("apps"));
  CHECK_FALSE(store.snapshot()->namespaceExists("default"));

  Batch rm;
  rm.remove(Kind::Service, "apps", "web");
  rm.remove(Kind::Namespace, "", "empty");
  (void)store.apply(std::move(rm));
  CHECK_FALSE(store.snapshot()->namespaceExists("apps"));
  CHECK_FALSE(store.snapshot()->namespaceExists("empty"));
}

TEST_CASE("store: EndpointSlices are found by their Service and move when relabelled", "[store]") {
  Store store;
  Batch b;
  b.upsert(makeSlice("default", "web-abc", "web"));
  b.upsert(makeSlice("default", "web-def", "web"));
  b.upsert(makeSlice("default", "webapp-1", "webapp"));
  (void)store.apply(std::move(b));
  auto names = [&](std::string_view svc) {
    std::vector<std::string> out;
    store.snapshot()->forEachSliceOf("default", svc,
                                     [&](const EndpointSlice& s) { out.push_back(s.meta.name); });
    return out;
  };
  CHECK(names("web") == std::vector<std::string>{"web-abc", "web-def"});
  CHECK(names("webapp") == std::vector<std::string>{"webapp-1"});

  auto sub = store.subscribe();
  (void)sub->take();
  Batch relabel;
  relabel.upsert(makeSlice("default", "web-def", "webapp"));
  CHECK(store.apply(std::move(relabel)) == 2);
  CHECK(names("web") == std::vector<std::string>{"web-abc"});
  CHECK(names("webapp") == std::vector<std::string>{"web-def", "webapp-1"});
  auto u = sub->take();
  REQUIRE(u);
  CHECK(u->changes.of(Kind::EndpointSlice) ==
        std::vector<std::string>{"default/web/web-def", "default/webapp/web-def"});

  Batch rm;
  rm.remove(Kind::EndpointSlice, "default", "web-def");
  CHECK(store.apply(std::move(rm)) == 1);
  CHECK(names("webapp") == std::vector<std::string>{"webapp-1"});
  CHECK(store.snapshot()->count(Kind::EndpointSlice) == 2);
}

TEST_CASE("store: EndpointSlices named after their Service or not, moved and removed", "[store]") {
  Store store;
  auto keys = [&] {
    std::vector<std::string> out;
    for (const auto& e : store.snapshot()->of<EndpointSlice>()) {
      out.push_back(e.key);
    }
    return out;
  };
  auto apply = [&](auto&&... ops) {
    Batch b;
    (ops(b), ...);
    return store.apply(std::move(b));
  };
  auto up = [](std::string name, std::string service) {
    return [=](Batch& b) { b.upsert(makeSlice("ns", name, service)); };
  };
  auto rm = [](std::string name) {
    return [=](Batch& b) { b.remove(Kind::EndpointSlice, "ns", name); };
  };
  // The controller's naming, a name with more dashes, a custom name, no label, a name that only
  // starts like another Service's.
  CHECK(apply(up("a-b-x1", "a-b"), up("a-x2", "a"), up("custom", "a"), up("bare", ""),
              up("a-b-c", "a")) == 5);
  CHECK(keys() == std::vector<std::string>{"ns//bare", "ns/a-b/a-b-x1", "ns/a/a-b-c", "ns/a/a-x2",
                                           "ns/a/custom"});
  // Moves: named after the old Service to a custom one, custom to named, unlabelled to named.
  CHECK(apply(up("a-x2", "z"), up("custom", "custom-svc"), up("bare", "b")) == 6);
  CHECK(keys() == std::vector<std::string>{"ns/a-b/a-b-x1", "ns/a/a-b-c", "ns/b/bare",
                                           "ns/custom-svc/custom", "ns/z/a-x2"});
  CHECK(apply(up("a-b-c", "a-b")) == 2);  // a prefix of its name, then a longer one
  CHECK(keys() == std::vector<std::string>{"ns/a-b/a-b-c", "ns/a-b/a-b-x1", "ns/b/bare",
                                           "ns/custom-svc/custom", "ns/z/a-x2"});
  CHECK(apply(rm("a-b-c"), rm("a-x2"), rm("custom"), rm("bare"), rm("missing"), rm("a-b")) == 4);
  CHECK(keys() == std::vector<std::string>{"ns/a-b/a-b-x1"});
  CHECK(apply(rm("a-b-x1")) == 1);
  CHECK(keys().empty());
  // Gone for good: the same names come back under new Services.
  CHECK(apply(up("custom", "a"), up("a-x2", "a")) == 2);
  CHECK(keys() == std::vector<std::string>{"ns/a/a-x2", "ns/a/custom"});
}

TEST_CASE("store: a subscriber first gets everything, then coalesced changes", "[store]") {
  Store store;
  Batch b;
  b.upsert(makeService("default", "a"));
  (void)store.apply(std::move(b));

  auto sub = store.subscribe();
  auto first = sub->next(1s);
  REQUIRE(first);
  CHECK(first->changes.of(Kind::Service) == std::vector<std::string>{"default/a"});
  CHECK(first->previous->version == 0);
  CHECK_FALSE(sub->take());

  for (int i = 0; i < 5; ++i) {
    Batch more;
    more.upsert(makeService("default", "b" + std::to_string(i % 2), i + 1));
    (void)store.apply(std::move(more));
  }
  store.markSynced();
  auto u = sub->next(1s);
  REQUIRE(u);
  CHECK(u->coalesced == 6);
  CHECK(u->snapshot->synced);
  CHECK(u->previous == first->snapshot);
  CHECK(u->changes.of(Kind::Service) == std::vector<std::string>{"default/b0", "default/b1"});
  CHECK(u->snapshot->service("default", "b0")->ports[0].port == 5);
  CHECK_FALSE(sub->take());
}

TEST_CASE("store: wakers fire once per empty-to-pending transition; close wakes next()",
          "[store]") {
  Store store;
  auto sub = store.subscribe();
  (void)sub->take();
  std::atomic<int> wakes{0};
  sub->setWaker([&] { ++wakes; });
  for (int i = 0; i < 3; ++i) {
    Batch b;
    b.upsert(makeService("default", "s" + std::to_string(i)));
    (void)store.apply(std::move(b));
  }
  CHECK(wakes == 1);
  REQUIRE(sub->take());
  Batch b;
  b.upsert(makeService("default", "late"));
  (void)store.apply(std::move(b));
  CHECK(wakes == 2);

  std::thread closer([&] { sub->close(); });
  (void)sub->take();
  CHECK_FALSE(sub->next(10s));
  closer.join();
}

TEST_CASE("store: concurrent writers; the reader sees every change exactly once, in order",
          "[store]") {
  Store store;
  auto sub = store.subscribe();
  (void)sub->take();
  constexpr int kPerWriter = 500;
  auto writer = [&](std::string ns) {
    for (int i = 0; i < kPerWriter; ++i) {
      Batch b;
      b.upsert(makeService(ns, "s" + std::to_string(i)));
      (void)store.apply(std::move(b));
    }
  };
  std::thread w1(writer, "one"), w2(writer, "two");
  std::size_t seen = 0;
  std::uint64_t lastVersion = 0;
  while (seen < 2 * kPerWriter) {
    auto u = sub->next(5s);
    REQUIRE(u);
    CHECK(u->snapshot->version > lastVersion);
    lastVersion = u->snapshot->version;
    seen += u->changes.size();
    for (const auto& key : u->changes.of(Kind::Service)) {
      CHECK(u->snapshot->of<Service>().get(key) != nullptr);
    }
  }
  w1.join();
  w2.join();
  CHECK(seen == 2 * kPerWriter);
  CHECK(store.snapshot()->count(Kind::Service) == 2 * kPerWriter);
}
