#include "k8s/manifests_source.h"

#include <spdlog/sinks/base_sink.h>

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "common/logging.h"
#include "k8s/endpoints_from_pods.h"
#include "k8s/store.h"

using namespace kdp::k8s;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

/// Every wait on the watcher is bounded by this; running out fails the test.
constexpr auto kWait = 5000ms;

/// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on scope exit,
/// whether the test passed or not.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base != nullptr && *base != '\0' ? base : "/tmp") +
                       "/kdp-manifests-test-XXXXXX";
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

  /// Writes in place: the watcher sees one IN_CLOSE_WRITE.
  void write(const std::string& rel, const std::string& text) const {
    const std::string p = *this / rel;
    fs::create_directories(fs::path(p).parent_path());
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    REQUIRE(out.good());
  }
  /// Writes a hidden temporary and renames it into place: one IN_MOVED_TO.
  void writeAtomically(const std::string& rel, const std::string& text) const {
    const fs::path p = *this / rel;
    const fs::path tmp = p.parent_path() / ("." + p.filename().string() + ".tmp");
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out << text;
      out.close();
      REQUIRE(out.good());
    }
    fs::rename(tmp, p);
  }
  void remove(const std::string& rel) const { REQUIRE(fs::remove(*this / rel)); }
  void rename(const std::string& from, const std::string& to) const {
    fs::rename(*this / from, *this / to);
  }

 private:
  std::string path_;
};

std::string serviceYaml(const std::string& name, int port, const std::string& ns = "default",
                        const std::string& selector = "") {
  std::ostringstream y;
  y << "apiVersion: v1\nkind: Service\nmetadata:\n  name: " << name << "\n  namespace: " << ns
    << "\nspec:\n";
  if (!selector.empty()) {
    y << "  selector: {" << selector << "}\n";
  }
  y << "  ports:\n  - name: http\n    port: " << port << "\n";
  return y.str();
}

std::string podYaml(const std::string& name, const std::string& ip, const std::string& labels,
                    const std::string& ns = "default") {
  return "apiVersion: v1\nkind: Pod\nmetadata:\n  name: " + name +
         "\n  namespace: " + ns + "\n  labels: {" + labels +
         "}\nspec:\n  nodeName: node-a\n  containers:\n  - name: c\n    image: x\n    ports:\n"
         "    - {name: http, containerPort: 8080}\nstatus:\n  phase: Running\n  podIP: " + ip +
         "\n  conditions:\n  - {type: Ready, status: \"True\"}\n";
}

std::string namespaceYaml(const std::string& name) {
  return "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + name + "\n";
}

/// The port of Service default/name, or 0 when there is no such Service.
int portOf(const Snapshot& s, const std::string& name, const std::string& ns = "default") {
  const Service* svc = s.service(ns, name);
  return svc == nullptr || svc->ports.empty() ? 0 : svc->ports[0].port;
}

/// Takes updates until `pred` holds for the newest snapshot; fails the test after kWait.
/// Changed keys of every update seen are merged into `seen` when given.
std::shared_ptr<const Snapshot> waitFor(Subscription& sub, const std::string& what,
                                        const std::function<bool(const Snapshot&)>& pred,
                                        Changes* seen = nullptr) {
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left <= 0ms) {
      FAIL("timed out waiting for: " << what);
    }
    auto update = sub.next(left);
    if (!update) {
      FAIL("timed out waiting for: " << what);
    }
    if (seen != nullptr) {
      seen->merge(update->changes);
    }
    if (pred(*update->snapshot)) {
      return update->snapshot;
    }
  }
}

/// Writes a Namespace object as a marker file and waits until the store has it: every event
/// queued before the marker's has then been processed.
std::shared_ptr<const Snapshot> barrier(const TempDir& dir, Subscription& sub,
                                        Changes* seen = nullptr) {
  static int counter = 0;
  const std::string name = "marker-" + std::to_string(++counter);
  dir.write(name + ".yaml", namespaceYaml(name));
  return waitFor(
      sub, "marker " + name,
      [&](const Snapshot& s) { return s.of<Namespace>().get(name) != nullptr; }, seen);
}

bool changed(const Changes& changes, Kind kind, const std::string& key) {
  const auto& keys = changes.of(kind);
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

/// The loggers' messages for one test, as lines (sources made meanwhile keep writing here), then
/// stderr again. Thread-safe: the watcher logs while the test reads.
class CapturedLogs {
 public:
  CapturedLogs() { kdp::setupLogging(kdp::LogLevel::Info, kdp::LogFormat::Text, sink_); }
  ~CapturedLogs() { kdp::setupLogging(kdp::LogLevel::Info, kdp::LogFormat::Text); }
  CapturedLogs(const CapturedLogs&) = delete;
  CapturedLogs& operator=(const CapturedLogs&) = delete;

  /// Messages containing every one of `parts`.
  std::size_t count(std::initializer_list<std::string> parts) const { return sink_->count(parts); }

 private:
  class Sink final : public spdlog::sinks::base_sink<std::mutex> {
   public:
    std::size_t count(std::initializer_list<std::string> parts) {
      std::lock_guard lock(mutex_);
      return static_cast<std::size_t>(
          std::count_if(messages_.begin(), messages_.end(), [&](const std::string& m) {
            return std::all_of(parts.begin(), parts.end(), [&](const std::string& p) {
              return m.find(p) != std::string::npos;
            });
          }));
    }

   protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
      messages_.emplace_back(msg.payload.data(), msg.payload.size());
    }
    void flush_() override {}

   private:
    std::vector<std::string> messages_;
  };
  std::shared_ptr<Sink> sink_ = std::make_shared<Sink>();
};

/// A started source on `dir` and a subscription past the initial state.
struct Fixture {
  explicit Fixture(const TempDir& dir) : source(makeManifestsSource(dir.path())) {
    source->start(store);
    sub = store.subscribe();
    REQUIRE(sub->take());  // the state start() wrote
  }
  Store store;  // declared first: outlives the source's watcher
  std::unique_ptr<Source> source;
  std::shared_ptr<Subscription> sub;
};

}  // namespace

TEST_CASE("manifests: initial load of multi-document YAML, JSON and a List is one version",
          "[manifests]") {
  TempDir dir;
  dir.write("a.yaml", serviceYaml("web", 80, "shop") + "---\n" + namespaceYaml("shop") +
                          "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n"
                          "spec: {}\n");
  dir.write("b.json",
            R"({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api"},
                "spec": {"ports": [{"port": 8080}]}})");
  dir.write("sub/c.yml", "apiVersion: v1\nkind: List\nitems:\n"
                         "- {apiVersion: v1, kind: Service, metadata: {name: one},"
                         " spec: {ports: [{port: 1}]}}\n"
                         "- {apiVersion: v1, kind: Service, metadata: {name: two},"
                         " spec: {ports: [{port: 2}]}}\n");
  // Not manifests: hidden files and directories, other extensions.
  dir.write(".hidden.yaml", serviceYaml("hidden", 1));
  dir.write("..2024_01_01/x.yaml", serviceYaml("in-hidden-dir", 1));
  dir.write("notes.txt", serviceYaml("txt", 1));

  Store store;
  auto source = makeManifestsSource(dir.path());
  source->start(store);
  auto snap = store.snapshot();
  CHECK(snap->synced);
  CHECK(store.stats().batches == 1);
  CHECK(snap->count(Kind::Service) == 4);
  CHECK(portOf(*snap, "web", "shop") == 80);
  CHECK(portOf(*snap, "api") == 8080);  // no namespace: default
  CHECK(portOf(*snap, "one") == 1);
  CHECK(portOf(*snap, "two") == 2);
  CHECK(snap->of<Namespace>().get("shop") != nullptr);
  const SourceStats st = source->stats();
  CHECK(st.files == 3);
  CHECK(st.skippedObjects == 1);
  CHECK(st.decodeErrors == 0);
  CHECK(st.reloads == 0);
  source->stop();
  source->stop();  // idempotent
}

TEST_CASE("manifests: a missing DIR or a file as DIR is a one-line startup error",
          "[manifests]") {
  TempDir dir;
  Store store;
  const std::string missing = dir / "nope";
  CHECK_THROWS_WITH(makeManifestsSource(missing)->start(store),
                    "--manifests " + missing + ": No such file or directory");
  dir.write("file.yaml", "");
  const std::string file = dir / "file.yaml";
  CHECK_THROWS_WITH(makeManifestsSource(file)->start(store),
                    "--manifests " + file + ": not a directory");
  CHECK_FALSE(store.snapshot()->synced);
}

TEST_CASE("manifests: files created, modified, renamed and removed while watching",
          "[manifests]") {
  TempDir dir;
  Fixture f(dir);
  Subscription& sub = *f.sub;

  dir.write("x.yaml", serviceYaml("a", 80));
  waitFor(sub, "a created", [](const Snapshot& s) { return portOf(s, "a") == 80; });

  dir.write("x.yaml", serviceYaml("a", 81) + "---\n" + serviceYaml("b", 90));
  waitFor(sub, "a modified, b added",
          [](const Snapshot& s) { return portOf(s, "a") == 81 && portOf(s, "b") == 90; });

  dir.writeAtomically("x.yaml", serviceYaml("b", 90));
  waitFor(sub, "a dropped from its file", [](const Snapshot& s) { return portOf(s, "a") == 0; });
  CHECK(portOf(*f.store.snapshot(), "b") == 90);
  const auto filesBefore = f.source->stats().files;

  // A rename moves the objects: the store never sees b change.
  dir.rename("x.yaml", "y.yaml");
  Changes seen;
  auto snap = barrier(dir, sub, &seen);
  CHECK(portOf(*snap, "b") == 90);
  CHECK_FALSE(changed(seen, Kind::Service, "default/b"));
  CHECK(f.source->stats().files == filesBefore + 1);  // y.yaml and the marker

  // The objects belong to the new name now.
  dir.remove("y.yaml");
  waitFor(sub, "b removed with y.yaml", [](const Snapshot& s) { return portOf(s, "b") == 0; });

  // Renamed out of the manifests' names: gone too.
  dir.write("z.yaml", serviceYaml("c", 1));
  waitFor(sub, "c created", [](const Snapshot& s) { return portOf(s, "c") == 1; });
  dir.rename("z.yaml", "z.yaml.bak");
  waitFor(sub, "c gone", [](const Snapshot& s) { return portOf(s, "c") == 0; });

  const SourceStats st = f.source->stats();
  CHECK(st.reloads >= 6);
  CHECK(st.decodeErrors == 0);
}

TEST_CASE("manifests: a file that fails to parse keeps its objects; an invalid object keeps "
          "its previous version",
          "[manifests]") {
  TempDir dir;
  dir.write("f.yaml", serviceYaml("a", 80) + "---\n" + serviceYaml("b", 80));
  Fixture f(dir);
  Subscription& sub = *f.sub;

  dir.write("f.yaml", "kind: Service\nmetadata: {name: a\n  : [\n");
  auto snap = barrier(dir, sub);
  CHECK(portOf(*snap, "a") == 80);
  CHECK(portOf(*snap, "b") == 80);
  const auto errorsAfterSyntax = f.source->stats().decodeErrors;
  CHECK(errorsAfterSyntax >= 1);

  // a valid and changed; b invalid (kept at its previous version); c invalid and new (left out).
  dir.write("f.yaml", serviceYaml("a", 81) + "---\n" + serviceYaml("b", 70000) + "---\n" +
                          serviceYaml("c", 70000));
  snap = waitFor(sub, "a updated", [](const Snapshot& s) { return portOf(s, "a") == 81; });
  CHECK(portOf(*snap, "b") == 80);
  CHECK(snap->service("default", "c") == nullptr);
  CHECK(f.source->stats().decodeErrors >= errorsAfterSyntax + 2);

  // Still kept after an unrelated change to the same file.
  dir.write("f.yaml", serviceYaml("a", 82) + "---\n" + serviceYaml("b", 70000));
  snap = waitFor(sub, "a updated again", [](const Snapshot& s) { return portOf(s, "a") == 82; });
  CHECK(portOf(*snap, "b") == 80);

  dir.write("f.yaml", serviceYaml("a", 82) + "---\n" + serviceYaml("b", 83));
  waitFor(sub, "b valid again", [](const Snapshot& s) { return portOf(s, "b") == 83; });

  // Removing the object from the file removes it, even after a refusal.
  dir.write("f.yaml", serviceYaml("a", 82));
  waitFor(sub, "b removed", [](const Snapshot& s) { return portOf(s, "b") == 0; });
}

TEST_CASE("manifests: an object in two files: the last path wins, removal falls back",
          "[manifests]") {
  TempDir dir;
  dir.write("a.yaml", serviceYaml("web", 80));
  dir.write("b.yaml", serviceYaml("web", 81));
  Fixture f(dir);
  Subscription& sub = *f.sub;
  CHECK(portOf(*f.store.snapshot(), "web") == 81);

  dir.remove("b.yaml");
  waitFor(sub, "fall back to a.yaml", [](const Snapshot& s) { return portOf(s, "web") == 80; });

  dir.write("b.yaml", serviceYaml("web", 82));
  waitFor(sub, "b.yaml wins again", [](const Snapshot& s) { return portOf(s, "web") == 82; });

  // a.yaml changing or going does not touch the winner.
  Changes seen;
  dir.write("a.yaml", serviceYaml("web", 79));
  dir.remove("a.yaml");
  auto snap = barrier(dir, sub, &seen);
  CHECK(portOf(*snap, "web") == 82);
  CHECK_FALSE(changed(seen, Kind::Service, "default/web"));

  dir.remove("b.yaml");
  waitFor(sub, "web removed", [](const Snapshot& s) { return portOf(s, "web") == 0; });
}

TEST_CASE("manifests: new subdirectories, moved and removed directories", "[manifests]") {
  CapturedLogs logs;
  TempDir dir;
  TempDir outside;
  Fixture f(dir);
  Subscription& sub = *f.sub;

  fs::create_directory(dir / "sub");
  dir.write("sub/x.yaml", serviceYaml("x", 1));
  waitFor(sub, "sub/x.yaml", [](const Snapshot& s) { return portOf(s, "x") == 1; });

  dir.write("sub/deeper/y.yaml", serviceYaml("y", 2));
  waitFor(sub, "sub/deeper/y.yaml", [](const Snapshot& s) { return portOf(s, "y") == 2; });

  // A directory moved within the tree keeps its objects and stays watched under its new name.
  dir.rename("sub", "moved");
  Changes seen;
  auto snap = barrier(dir, sub, &seen);
  CHECK(portOf(*snap, "x") == 1);
  CHECK(portOf(*snap, "y") == 2);
  CHECK_FALSE(changed(seen, Kind::Service, "default/x"));
  // Briefly under both names within the reload: not an object in several files.
  CHECK(logs.count({"defined in several files"}) == 0);
  dir.write("moved/deeper/y.yaml", serviceYaml("y", 3));
  waitFor(sub, "y changed under its new path",
          [](const Snapshot& s) { return portOf(s, "y") == 3; });

  // A directory moved in from outside brings its files.
  outside.write("pack/z.yaml", serviceYaml("z", 4));
  fs::rename(outside / "pack", dir / "pack");
  waitFor(sub, "moved-in directory", [](const Snapshot& s) { return portOf(s, "z") == 4; });

  // Removed or moved out: its objects go.
  fs::remove_all(dir / "moved");
  waitFor(sub, "removed directory",
          [](const Snapshot& s) { return portOf(s, "x") == 0 && portOf(s, "y") == 0; });
  fs::rename(dir / "pack", outside / "pack-back");
  waitFor(sub, "moved-out directory", [](const Snapshot& s) { return portOf(s, "z") == 0; });

  // A file written later in the moved-out directory is not ours.
  outside.write("pack-back/w.yaml", serviceYaml("w", 5));
  snap = barrier(dir, sub);
  CHECK(snap->service("default", "w") == nullptr);
}

TEST_CASE("manifests: a ConfigMap volume's atomic ..data swap is followed", "[manifests]") {
  TempDir dir;
  // The kubelet's AtomicWriter layout: files in a hidden timestamped directory, a ..data
  // symlink to it, and one visible symlink per key through ..data.
  dir.write("..2024_01_01_00_00_00.1/svc.yaml", serviceYaml("cm", 80));
  fs::create_directory_symlink("..2024_01_01_00_00_00.1", dir / "..data");
  fs::create_symlink("..data/svc.yaml", dir / "svc.yaml");
  Fixture f(dir);
  Subscription& sub = *f.sub;
  CHECK(portOf(*f.store.snapshot(), "cm") == 80);
  CHECK(f.source->stats().files == 1);

  // An update: new timestamped directory, ..data_tmp → it, renamed over ..data, old one removed.
  dir.write("..2024_01_01_00_01_00.2/svc.yaml", serviceYaml("cm", 81));
  dir.write("..2024_01_01_00_01_00.2/more.yaml", serviceYaml("cm2", 1));
  fs::create_directory_symlink("..2024_01_01_00_01_00.2", dir / "..data_tmp");
  dir.rename("..data_tmp", "..data");
  fs::create_symlink("..data/more.yaml", dir / "more.yaml");
  fs::remove_all(dir / "..2024_01_01_00_00_00.1");
  waitFor(sub, "new ConfigMap version",
          [](const Snapshot& s) { return portOf(s, "cm") == 81 && portOf(s, "cm2") == 1; });

  // A key removed: the kubelet removes its symlink.
  dir.remove("more.yaml");
  waitFor(sub, "key removed", [](const Snapshot& s) { return portOf(s, "cm2") == 0; });
}

TEST_CASE("manifests: 1,000 objects in one file are one store version", "[manifests]") {
  auto many = [](const std::string& prefix) {
    std::string text;
    for (int i = 0; i < 1000; ++i) {
      text += serviceYaml(prefix + std::to_string(i), 80) + "---\n";
    }
    return text;
  };
  TempDir dir;
  dir.write("many.yaml", many("svc-"));
  Fixture f(dir);
  CHECK(f.store.stats().batches == 1);
  CHECK(f.store.snapshot()->count(Kind::Service) == 1000);

  dir.writeAtomically("more.yaml", many("more-"));
  auto snap = waitFor(*f.sub, "1,000 more",
                      [](const Snapshot& s) { return s.count(Kind::Service) == 2000; });
  CHECK(f.store.stats().batches == 2);
  CHECK(f.source->stats().reloads == 1);
}

TEST_CASE("manifests: Services and Pods give EndpointSlices, kept current", "[manifests]") {
  TempDir dir;
  dir.write("svc.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n"
                        "  selector: {app: web}\n"
                        "  ports: [{name: http, port: 80, targetPort: http}]\n");
  dir.write("pods.yaml", podYaml("web-1", "10.0.0.1", "app: web") + "---\n" +
                             podYaml("web-2", "10.0.0.2", "app: web") + "---\n" +
                             podYaml("db-1", "10.0.0.3", "app: db"));
  Fixture f(dir);
  Subscription& sub = *f.sub;

  auto slicesOf = [](const Snapshot& s, const std::string& svc) {
    std::vector<EndpointSlice> out;
    s.forEachSliceOf("default", svc, [&](const EndpointSlice& e) { out.push_back(e); });
    return out;
  };
  auto endpointCount = [&](const Snapshot& s) {
    std::size_t n = 0;
    for (const auto& e : slicesOf(s, "web")) {
      n += e.endpoints.size();
    }
    return n;
  };

  CHECK(f.store.stats().batches == 1);  // derived slices came in the same version
  auto first = slicesOf(*f.store.snapshot(), "web");
  REQUIRE(first.size() == 1);
  CHECK(first[0].meta.labels.at(std::string(kManagedByLabel)) == kManifestsManagedBy);
  REQUIRE(first[0].ports.size() == 1);
  CHECK(first[0].ports[0].port == 8080);
  REQUIRE(first[0].endpoints.size() == 2);
  CHECK(first[0].endpoints[0].targetPodName == "web-1");
  CHECK(first[0].endpoints[0].conditions.ready);
  CHECK(first[0].endpoints[1].addresses[0].str() == "10.0.0.2");

  dir.write("more-pods.yaml", podYaml("web-3", "10.0.0.4", "app: web"));
  auto snap = waitFor(sub, "third endpoint", [&](const Snapshot& s) { return endpointCount(s) == 3; });
  REQUIRE(slicesOf(*snap, "web").size() == 1);
  CHECK(slicesOf(*snap, "web")[0].meta.name == first[0].meta.name);  // updated in place

  dir.remove("pods.yaml");
  waitFor(sub, "two pods gone", [&](const Snapshot& s) { return endpointCount(s) == 1; });

  // A directory that lists the Service's slices keeps them; none are made any more.
  dir.write("slice.yaml",
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: web-manual\n"
            "  labels: {kubernetes.io/service-name: web}\naddressType: IPv4\n"
            "ports: [{name: http, port: 9090}]\nendpoints:\n- addresses: [10.0.0.9]\n");
  snap = waitFor(sub, "manual slice only", [&](const Snapshot& s) {
    auto slices = slicesOf(s, "web");
    return slices.size() == 1 && slices[0].meta.name == "web-manual";
  });

  // Without it, and without the Service, nothing is made.
  dir.remove("slice.yaml");
  waitFor(sub, "derived again", [&](const Snapshot& s) { return endpointCount(s) == 1; });
  dir.remove("svc.yaml");
  waitFor(sub, "no slices", [&](const Snapshot& s) { return slicesOf(s, "web").empty(); });
}

TEST_CASE("manifests: an object in several files: one warning, the next file takes over when the "
          "winner's stops defining it, a refusal keeps the winner's version",
          "[manifests]") {
  CapturedLogs logs;  // first: the source logs to it
  TempDir dir;
  dir.write("a.yaml", serviceYaml("web", 80));
  dir.write("b.yaml", serviceYaml("web", 81) + "---\n" + serviceYaml("other", 1));
  // A file redefining its own object: the later document, no warning.
  dir.write("c.yaml", serviceYaml("solo", 2) + "---\n" + serviceYaml("solo", 3));
  Fixture f(dir);
  Subscription& sub = *f.sub;
  CHECK(portOf(*f.store.snapshot(), "web") == 81);
  CHECK(portOf(*f.store.snapshot(), "solo") == 3);
  const std::string several = "defined in several files";
  CHECK(logs.count({several}) == 1);
  CHECK(logs.count({several, "name=web", "files=2", "winner=" + (dir / "b.yaml")}) == 1);

  // The winner's file stops defining it: the other file's version, at once.
  dir.write("b.yaml", serviceYaml("other", 1));
  waitFor(sub, "a.yaml's web", [](const Snapshot& s) { return portOf(s, "web") == 80; });

  // Defined there again: it wins again, and is reported again.
  dir.write("b.yaml", serviceYaml("web", 82) + "---\n" + serviceYaml("other", 1));
  waitFor(sub, "b.yaml's web again", [](const Snapshot& s) { return portOf(s, "web") == 82; });
  CHECK(logs.count({several, "name=web"}) == 2);

  // The winner's version refused: b.yaml keeps the one it had, which still wins over a.yaml's
  // change; the store sees no change of web.
  Changes seen;
  dir.write("b.yaml", serviceYaml("web", 70000) + "---\n" + serviceYaml("other", 5));
  dir.write("a.yaml", serviceYaml("web", 79));
  auto snap = barrier(dir, sub, &seen);
  CHECK(portOf(*snap, "other") == 5);
  CHECK(portOf(*snap, "web") == 82);
  CHECK_FALSE(changed(seen, Kind::Service, "default/web"));

  // Fixed: the new version.
  dir.write("b.yaml", serviceYaml("web", 83) + "---\n" + serviceYaml("other", 5));
  waitFor(sub, "b.yaml's web fixed", [](const Snapshot& s) { return portOf(s, "web") == 83; });

  // The winner's file removed: a.yaml's latest version.
  dir.remove("b.yaml");
  waitFor(sub, "a.yaml's latest web", [](const Snapshot& s) { return portOf(s, "web") == 79; });
  // Edits of a file that defined it already were not reported again.
  CHECK(logs.count({several}) == 2);
}

TEST_CASE("manifests: 1,000 objects in two files: winners, hand-over and exactly the changed keys",
          "[manifests]") {
  auto services = [](int from, int to, int port) {
    std::string text;
    for (int i = from; i < to; ++i) {
      text += serviceYaml("svc-" + std::to_string(i), port) + "---\n";
    }
    return text;
  };
  auto port = [](const Snapshot& s, int i) { return portOf(s, "svc-" + std::to_string(i)); };
  CapturedLogs logs;  // 500 warnings, not on the console
  TempDir dir;
  dir.write("a.yaml", services(0, 1000, 1));
  dir.write("b.yaml", services(500, 1500, 2));
  Fixture f(dir);
  Subscription& sub = *f.sub;
  auto snap = f.store.snapshot();
  CHECK(snap->count(Kind::Service) == 1500);
  CHECK(port(*snap, 0) == 1);
  CHECK(port(*snap, 499) == 1);
  CHECK(port(*snap, 500) == 2);
  CHECK(port(*snap, 999) == 2);
  CHECK(port(*snap, 1499) == 2);
  CHECK(logs.count({"defined in several files"}) == 500);

  // b.yaml drops its first half: those go back to a.yaml's, and nothing else changes.
  Changes seen;
  dir.write("b.yaml", services(1000, 1500, 2));
  snap = waitFor(sub, "svc-500..999 from a.yaml",
                 [&](const Snapshot& s) { return port(s, 500) == 1; }, &seen);
  CHECK(port(*snap, 999) == 1);
  CHECK(port(*snap, 1000) == 2);
  CHECK(snap->count(Kind::Service) == 1500);
  CHECK(seen.of(Kind::Service).size() == 500);
  CHECK(changed(seen, Kind::Service, "default/svc-500"));
  CHECK(changed(seen, Kind::Service, "default/svc-999"));

  // One object of a.yaml changed among 1,000 rewritten: one key changes.
  seen = Changes{};
  std::string text = services(0, 7, 1) + serviceYaml("svc-7", 9) + "---\n" + services(8, 1000, 1);
  dir.write("a.yaml", text);
  snap = waitFor(sub, "svc-7 changed", [&](const Snapshot& s) { return port(s, 7) == 9; }, &seen);
  CHECK(seen.of(Kind::Service).size() == 1);

  // Everything removed, then loaded again.
  dir.remove("a.yaml");
  dir.remove("b.yaml");
  waitFor(sub, "no Services", [](const Snapshot& s) { return s.count(Kind::Service) == 0; });
  dir.write("c.yaml", services(0, 1000, 3));
  snap = waitFor(sub, "1,000 again", [](const Snapshot& s) { return s.count(Kind::Service) == 1000; });
  CHECK(port(*snap, 0) == 3);
  CHECK(port(*snap, 999) == 3);
}

TEST_CASE("manifests: slices from Pods follow the winning definition of a Service, namespace by "
          "namespace",
          "[manifests]") {
  TempDir dir;
  dir.write("1.yaml", serviceYaml("web", 80, "one", "app: web") + "---\n" +
                          serviceYaml("web", 80, "two", "app: web"));
  dir.write("2.yaml", serviceYaml("web", 80, "one", "app: api"));  // wins in namespace one
  dir.write("pods.yaml", podYaml("w1", "10.0.1.1", "app: web", "one") + "---\n" +
                             podYaml("a1", "10.0.1.2", "app: api", "one") + "---\n" +
                             podYaml("w2", "10.0.2.1", "app: web", "two"));
  Fixture f(dir);
  Subscription& sub = *f.sub;

  auto addresses = [](const Snapshot& s, const std::string& ns) {
    std::vector<std::string> out;
    s.forEachSliceOf(ns, "web", [&](const EndpointSlice& slice) {
      for (const auto& endpoint : slice.endpoints) {
        out.push_back(endpoint.addresses[0].str());
      }
    });
    std::sort(out.begin(), out.end());
    return out;
  };
  auto keysIn = [](const Changes& changes, const std::string& ns) {
    const auto& keys = changes.of(Kind::EndpointSlice);
    return std::count_if(keys.begin(), keys.end(),
                         [&](const std::string& k) { return k.starts_with(ns + "/"); });
  };
  auto snap = f.store.snapshot();
  CHECK(addresses(*snap, "one") == std::vector<std::string>{"10.0.1.2"});
  CHECK(addresses(*snap, "two") == std::vector<std::string>{"10.0.2.1"});

  // The winning definition gone: the other one's selector; namespace two untouched.
  Changes seen;
  dir.remove("2.yaml");
  snap = waitFor(sub, "web in one selects app=web", [&](const Snapshot& s) {
    return addresses(s, "one") == std::vector<std::string>{"10.0.1.1"};
  }, &seen);
  CHECK(addresses(*snap, "two") == std::vector<std::string>{"10.0.2.1"});
  CHECK(keysIn(seen, "one") >= 1);
  CHECK(keysIn(seen, "two") == 0);

  // A Pod in namespace two: only two's slice changes.
  seen = Changes{};
  dir.write("more.yaml", podYaml("w3", "10.0.2.2", "app: web", "two"));
  snap = waitFor(sub, "second endpoint in two", [&](const Snapshot& s) {
    return addresses(s, "two").size() == 2;
  }, &seen);
  CHECK(addresses(*snap, "one") == std::vector<std::string>{"10.0.1.1"});
  CHECK(keysIn(seen, "one") == 0);
  CHECK(keysIn(seen, "two") >= 1);
}
