// The API's wire format as the API source meets it: LIST pages, WATCH streams cut at any byte,
// bookmarks, ERROR 410, EndpointSlices as discovery.k8s.io/v1 and v1beta1, discovery documents.
// Fixtures under tests/k8s/fixtures/api/ were recorded from a real kube-apiserver v1.20.2
// (README.md there says how), except the v1 EndpointSlice list (v1.20 serves only v1beta1),
// written in the v1 wire format, and the BOOKMARK line, which the server sends only after
// about a minute.

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "k8s/decode.h"
#include "k8s/detail/backoff.h"
#include "k8s/detail/json_stream.h"
#include "k8s/detail/kind_state.h"
#include "k8s/store.h"

using namespace kdp::k8s;
using kdp::k8s::detail::JsonStreamFramer;

namespace {

std::string fixture(const std::string& name) {
  const auto path = std::filesystem::path(__FILE__).parent_path() / "fixtures/api" / name;
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::vector<std::string> frameAll(std::string_view stream, std::size_t piece) {
  JsonStreamFramer framer(1 << 20);
  std::vector<std::string> docs;
  for (std::size_t i = 0; i < stream.size(); i += piece) {
    REQUIRE(framer.feed(stream.substr(i, piece), [&](std::string_view d) {
      docs.emplace_back(d);
    }) == JsonStreamFramer::Status::Ok);
  }
  CHECK(framer.pending() == 0);
  return docs;
}

WatchEvent event(std::string_view text, Kind kind) {
  WatchEvent e;
  std::string error;
  REQUIRE(decodeWatchEvent(text, kind, e, error));
  CHECK(error.empty());
  return e;
}

}  // namespace

TEST_CASE("watch stream: framed the same whatever the cut, braces in strings included",
          "[api][watch]") {
  const std::string stream = fixture("services-watch.jsonl");
  const auto whole = frameAll(stream, stream.size());
  REQUIRE(whole.size() == 5);
  for (std::size_t piece : {1, 2, 3, 7, 64, 1000}) {
    CHECK(frameAll(stream, piece) == whole);
  }
  // Strings holding braces, quotes and escapes do not end a document.
  const std::string tricky = R"({"a":"}\"{\\"}{"b":["]"]})" "\n";
  const auto docs = frameAll(tricky, 1);
  REQUIRE(docs.size() == 2);
  CHECK(docs[0] == R"({"a":"}\"{\\"})");
  CHECK(docs[1] == R"({"b":["]"]})");
}

TEST_CASE("watch stream: refuses what is not JSON objects, and oversized events", "[api][watch]") {
  JsonStreamFramer framer(16);
  auto ignore = [](std::string_view) {};
  CHECK(framer.feed("[1]", ignore) == JsonStreamFramer::Status::NotAnObject);
  JsonStreamFramer small(16);
  CHECK(small.feed(R"({"a":"0123456789abcdef)", ignore) == JsonStreamFramer::Status::TooLarge);
}

TEST_CASE("watch events: added, modified, deleted, bookmark, error 410", "[api][watch]") {
  const auto docs = frameAll(fixture("services-watch.jsonl"), 5);
  REQUIRE(docs.size() == 5);

  auto added = event(docs[0], Kind::Service);
  CHECK(added.type == WatchEventType::Added);
  CHECK(added.namespace_ == "shop");
  CHECK(added.name == "web");
  REQUIRE(added.result.objects.size() == 1);
  const auto& svc = std::get<Service>(added.result.objects[0]);
  CHECK(svc.meta.resourceVersion == added.resourceVersion);
  CHECK(svc.clusterIPs.at(0).str() == "10.96.0.20");

  auto modified = event(docs[1], Kind::Service);
  CHECK(modified.type == WatchEventType::Modified);
  CHECK(std::get<Service>(modified.result.objects.at(0)).ports.at(0).port == 8080);

  auto deleted = event(docs[2], Kind::Service);
  CHECK(deleted.type == WatchEventType::Deleted);
  CHECK(deleted.name == "web");

  auto bookmark = event(docs[3], Kind::Service);
  CHECK(bookmark.type == WatchEventType::Bookmark);
  CHECK(bookmark.result.objects.empty());
  CHECK(bookmark.resourceVersion == "230");

  auto expired = event(docs[4], Kind::Service);
  CHECK(expired.type == WatchEventType::Error);
  CHECK(expired.errorCode == 410);
  CHECK(expired.errorReason == "Expired");

  WatchEvent e;
  std::string error;
  CHECK_FALSE(decodeWatchEvent(R"({"type":"SOMETHING","object":{}})", Kind::Service, e, error));
  CHECK(error == "unknown watch event type \"SOMETHING\"");
  CHECK_FALSE(decodeWatchEvent(R"({"type":"ADDED"})", Kind::Service, e, error));
  CHECK_FALSE(decodeWatchEvent("{", Kind::Service, e, error));
}

TEST_CASE("watch events: an invalid object is an error with its name; Deleted still names it",
          "[api][watch]") {
  auto e = event(R"({"type":"DELETED","object":{"kind":"Service","apiVersion":"v1",)"
                 R"("metadata":{"name":"web","namespace":"shop","resourceVersion":"9"},)"
                 R"("spec":{"ports":[{"port":0}]}}})",
                 Kind::Service);
  CHECK(e.result.objects.empty());
  REQUIRE(e.result.errors.size() == 1);
  CHECK(e.result.errors[0].str().find("spec.ports[0].port") != std::string::npos);
  CHECK(e.namespace_ == "shop");
  CHECK(e.name == "web");
  CHECK(e.resourceVersion == "9");
}

TEST_CASE("list pages: items without kind, resourceVersion and continue", "[api][list]") {
  ListMeta meta;
  auto page = decodeApiList(fixture("services-list-page1.json"), Kind::Service, meta);
  CHECK_FALSE(page.syntaxError);
  CHECK(page.errors.empty());
  CHECK(page.objects.size() == 2);
  CHECK(meta.resourceVersion == "216");
  CHECK(!meta.continueToken.empty());

  ListMeta last;
  auto page2 = decodeApiList(fixture("services-list-page2.json"), Kind::Service, last);
  CHECK(page2.objects.size() == 1);
  CHECK(last.continueToken.empty());

  ListMeta empty;
  auto none = decodeApiList(R"({"kind":"ServiceList","apiVersion":"v1","metadata":)"
                            R"({"resourceVersion":"77"},"items":[]})",
                            Kind::Service, empty);
  CHECK(none.objects.empty());
  CHECK(empty.resourceVersion == "77");
}

TEST_CASE("endpoint slices: v1 (nodeName, zone) and v1beta1 (topology) decode alike",
          "[api][list]") {
  ListMeta m1, m2;
  auto v1 = decodeApiList(fixture("endpointslices-v1-list.json"), Kind::EndpointSlice, m1);
  auto beta = decodeApiList(fixture("endpointslices-v1beta1-list.json"), Kind::EndpointSlice, m2);
  REQUIRE(v1.errors.empty());
  REQUIRE(beta.errors.empty());
  REQUIRE(v1.objects.size() == 1);
  REQUIRE(beta.objects.size() == 1);
  for (const auto* r : {&v1, &beta}) {
    const auto& s = std::get<EndpointSlice>(r->objects[0]);
    CHECK(s.serviceName == "web");
    REQUIRE(s.endpoints.size() == 2);
    CHECK(s.endpoints[0].addresses.at(0).str() == "10.244.1.5");
    CHECK(s.endpoints[0].nodeName == "node-a");
    CHECK(s.endpoints[0].details().zone == "zone-1");
    CHECK(s.endpoints[1].conditions.ready == false);
    CHECK(s.ports.at(0).port == 8080);
  }
}

TEST_CASE("discovery: the versions an API group serves, preferred first", "[api][discovery]") {
  CHECK(decodeApiGroupVersions(fixture("discovery-k8s-io-v1beta1.json")) ==
        std::vector<std::string>{"v1beta1"});
  CHECK(decodeApiGroupVersions(
            R"({"kind":"APIGroup","name":"discovery.k8s.io","versions":[{"groupVersion":)"
            R"("discovery.k8s.io/v1beta1","version":"v1beta1"},{"groupVersion":)"
            R"("discovery.k8s.io/v1","version":"v1"}],"preferredVersion":{"version":"v1"}})") ==
        std::vector<std::string>{"v1", "v1beta1"});
  CHECK(decodeApiGroupVersions(R"({"kind":"Status","code":404})").empty());
  CHECK(decodeApiStatusMessage(R"({"kind":"Status","message":"services is forbidden"})") ==
        "services is forbidden");
}

// --- KindState: what the store gets from lists and events ---------------------------------------

namespace {

Service service(std::string name, std::string rv, int port = 80) {
  Service s;
  s.meta.namespace_ = "default";
  s.meta.name = std::move(name);
  s.meta.resourceVersion = std::move(rv);
  ServicePort p;
  p.port = port;
  p.targetPort.number = port;
  s.ports.push_back(p);
  return s;
}

std::vector<Object> objects(std::initializer_list<Service> services) {
  return std::vector<Object>(services.begin(), services.end());
}

}  // namespace

TEST_CASE("kind state: a relist of unchanged objects changes nothing in the store",
          "[api][relist]") {
  Store store;
  detail::KindState state(Kind::Service);
  Batch first;
  state.applyList(objects({service("a", "1"), service("b", "2"), service("c", "3")}), {}, "10",
                  first);
  CHECK(store.apply(std::move(first)) == 3);
  const auto batches = store.stats().batches;

  Batch again;
  state.applyList(objects({service("a", "1"), service("b", "2"), service("c", "3")}), {}, "20",
                  again);
  CHECK(store.apply(std::move(again)) == 0);  // no spurious delete+add
  CHECK(store.stats().batches == batches);
  CHECK(state.resourceVersion() == "20");

  // One changed, one gone, one new: exactly those three keys.
  Batch diff;
  state.applyList(objects({service("a", "1"), service("b", "5", 81), service("d", "6")}), {}, "30",
                  diff);
  auto sub = store.subscribe();
  (void)sub->take();
  CHECK(store.apply(std::move(diff)) == 3);
  auto update = sub->take();
  REQUIRE(update);
  CHECK(update->changes.of(Kind::Service) ==
        std::vector<std::string>{"default/b", "default/c", "default/d"});
  CHECK(store.snapshot()->service("default", "c") == nullptr);
  CHECK(state.size() == 3);
}

TEST_CASE("kind state: a refused object keeps its last good version", "[api][relist]") {
  Store store;
  detail::KindState state(Kind::Service);
  Batch first;
  state.applyList(objects({service("a", "1"), service("b", "2")}), {}, "10", first);
  (void)store.apply(std::move(first));
  Batch relist;
  DecodeError refused;
  refused.kind = "Service";
  refused.namespace_ = "default";
  refused.name = "b";
  refused.message = "bad";
  state.applyList(objects({service("a", "1")}), {refused}, "11", relist);
  CHECK(store.apply(std::move(relist)) == 0);
  CHECK(store.snapshot()->service("default", "b") != nullptr);
}

TEST_CASE("kind state: events upsert and remove; bookmarks only advance the version",
          "[api][watch]") {
  Store store;
  detail::KindState state(Kind::Service);
  Batch first;
  state.applyList({}, {}, "100", first);
  CHECK(first.empty());

  const auto docs = frameAll(fixture("services-watch.jsonl"), 4096);
  std::vector<std::string> versions;
  for (std::size_t i = 0; i < 4; ++i) {
    Batch b;
    state.applyEvent(event(docs[i], Kind::Service), b);
    (void)store.apply(std::move(b));
    versions.push_back(state.resourceVersion());
    if (i == 0) {
      CHECK(store.snapshot()->service("shop", "web") != nullptr);
    }
  }
  CHECK(store.snapshot()->service("shop", "web") == nullptr);
  CHECK(state.size() == 0);
  CHECK(versions == std::vector<std::string>{"218", "219", "220", "230"});  // bookmark: 230
}

TEST_CASE("backoff: doubles to the cap, jitter within [half, full], reset", "[api]") {
  using ms = std::chrono::milliseconds;
  detail::Backoff b(ms(500), ms(4000));
  CHECK(b.next(1.0) == ms(500));
  CHECK(b.next(0.0) == ms(500));   // 1000 * 0.5
  CHECK(b.next(1.0) == ms(2000));
  CHECK(b.next(1.0) == ms(4000));
  CHECK(b.next(1.0) == ms(4000));  // capped
  b.reset();
  CHECK(b.next(0.5) == ms(375));
}
