#include "k8s/manifests_source.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <compare>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "common/c_handle.h"
#include "common/fd.h"
#include "k8s/decode.h"
#include "k8s/endpoints_from_pods.h"
#include "k8s/store.h"

namespace kdp::k8s {

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

/// A burst of events ends after this much quiet...
constexpr auto kQuiet = 20ms;
/// ...or this long after its first event, whichever comes first.
constexpr auto kMaxDebounce = 200ms;
/// Larger files are refused (the decoder has its own, finer limits).
constexpr std::size_t kMaxFileBytes = std::size_t{64} << 20;
/// Symlinked directories are followed; this bounds the depth of a tree all the same.
constexpr int kMaxDepth = 64;
/// A ConfigMap/Secret volume publishes a new version by moving a new `..data` symlink in place.
constexpr std::string_view kAtomicWriterLink = "..data";
constexpr std::uint32_t kWatchMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
                                     IN_CREATE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;

using DirHandle = CHandle<DIR, &::closedir>;

std::shared_ptr<spdlog::logger> k8sLogger() {
  if (auto log = spdlog::get("k8s")) {
    return log;
  }
  try {
    return spdlog::stderr_color_mt("k8s");
  } catch (const spdlog::spdlog_ex&) {
    // Another thread registered it in between, or the registry refuses: use what there is.
    if (auto log = spdlog::get("k8s")) {
      return log;
    }
    return spdlog::default_logger();
  }
}

std::string errnoText(int err) {
  return std::generic_category().message(err);
}

bool isHidden(std::string_view name) {
  return !name.empty() && name.front() == '.';
}

bool endsWithNoCase(std::string_view text, std::string_view suffix) {
  if (text.size() < suffix.size()) {
    return false;
  }
  return std::equal(suffix.begin(), suffix.end(), text.end() - static_cast<std::ptrdiff_t>(suffix.size()),
                    [](char a, char b) {
                      return a == (b >= 'A' && b <= 'Z' ? static_cast<char>(b - 'A' + 'a') : b);
                    });
}

bool isManifestName(std::string_view name) {
  return !isHidden(name) && (endsWithNoCase(name, ".yaml") || endsWithNoCase(name, ".yml") ||
                             endsWithNoCase(name, ".json"));
}

std::string joinPath(std::string_view dir, std::string_view name) {
  std::string path(dir);
  if (!path.ends_with('/')) {
    path.push_back('/');
  }
  path.append(name);
  return path;
}

/// "dir/": what every path strictly below dir starts with.
std::string subtreePrefix(std::string_view dir) {
  std::string prefix(dir);
  if (!prefix.ends_with('/')) {
    prefix.push_back('/');
  }
  return prefix;
}

bool isUnder(std::string_view path, std::string_view dir) {
  return path == dir || path.starts_with(subtreePrefix(dir));
}

/// Calls fn(entry) for the entry of `dir` and of every path below it, in a map keyed by path.
/// (The keys below dir are those starting with "dir/"; "dir-x" and "dir.x" sort in between.)
template <class Map, class Fn>
void forEachUnder(Map& map, const std::string& dir, Fn&& fn) {
  const std::string prefix = subtreePrefix(dir);
  if (prefix != dir) {
    if (auto it = map.find(dir); it != map.end()) {
      fn(*it);
    }
  }
  for (auto it = map.lower_bound(prefix); it != map.end() && it->first.starts_with(prefix); ++it) {
    fn(*it);
  }
}

struct ObjectId {
  Kind kind = Kind::Namespace;
  std::string ns;
  std::string name;

  auto operator<=>(const ObjectId&) const = default;
  bool operator==(const ObjectId&) const = default;
};

ObjectId idOf(const Object& object) {
  const ObjectMeta& meta = metaOf(object);
  return ObjectId{kindOf(object), meta.namespace_, meta.name};
}

/// The object an error names, when it names one of the kinds we keep.
std::optional<ObjectId> idOf(const DecodeError& error) {
  auto kind = kindFromName(error.kind);
  if (!kind || error.name.empty()) {
    return std::nullopt;
  }
  std::string ns = isNamespaced(*kind) ? error.namespace_ : std::string();
  if (isNamespaced(*kind) && ns.empty()) {
    ns = "default";  // as the decoder places an object given without a namespace
  }
  return ObjectId{*kind, std::move(ns), error.name};
}

/// The objects a file defines: (id, object) sorted by the id's address, the id being the key of
/// the source's entry for it (one copy of each id, however many files define it).
using FileObjects = std::vector<std::pair<const ObjectId*, SharedObject>>;

const SharedObject* findIn(const FileObjects& objects, const ObjectId* id) {
  auto it = std::lower_bound(objects.begin(), objects.end(), id,
                             [](const auto& e, const ObjectId* k) { return std::less<>{}(e.first, k); });
  return it != objects.end() && it->first == id ? &it->second : nullptr;
}

struct FileState {
  FileObjects objects;
  std::size_t skipped = 0;
  std::size_t hash = 0;  // of the bytes last decoded, to skip rereads of unchanged files
  std::size_t size = 0;
};

enum class ReadStatus { Ok, Gone, Failed };

/// Reads a regular file (following symlinks). Gone: no such file, or not a regular file (a
/// FIFO is never opened for blocking reads: O_NONBLOCK).
ReadStatus readFile(const std::string& path, std::string& out, std::string& reason) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (!fd) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR || err == ELOOP || err == ENXIO) {
      return ReadStatus::Gone;
    }
    reason = errnoText(err);
    return ReadStatus::Failed;
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    reason = errnoText(errno);
    return ReadStatus::Failed;
  }
  if (!S_ISREG(st.st_mode)) {
    return ReadStatus::Gone;
  }
  if (static_cast<std::uint64_t>(st.st_size) > kMaxFileBytes) {
    reason = "file larger than " + std::to_string(kMaxFileBytes) + " bytes";
    return ReadStatus::Failed;
  }
  out.clear();
  out.reserve(static_cast<std::size_t>(st.st_size));
  std::array<char, 65536> buf;
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0) {
      const int err = errno;
      if (err == EINTR) {
        continue;
      }
      reason = errnoText(err);
      return ReadStatus::Failed;
    }
    if (n == 0) {
      return ReadStatus::Ok;
    }
    out.append(buf.data(), static_cast<std::size_t>(n));
    if (out.size() > kMaxFileBytes) {
      reason = "file larger than " + std::to_string(kMaxFileBytes) + " bytes";
      return ReadStatus::Failed;
    }
  }
}

class ManifestsSource final : public Source {
 public:
  explicit ManifestsSource(std::string dir) : dir_(std::move(dir)), log_(k8sLogger()) {
    while (dir_.size() > 1 && dir_.back() == '/') {
      dir_.pop_back();
    }
  }
  ~ManifestsSource() override { stop(); }

  ManifestsSource(const ManifestsSource&) = delete;
  ManifestsSource& operator=(const ManifestsSource&) = delete;

  void start(Store& store) override;
  void stop() override;
  SourceStats stats() const override {
    std::lock_guard lock(statsMu_);
    return stats_;
  }

 private:
  /// What a burst of events asks for: files to reread, directories to rescan.
  struct Pending {
    std::set<std::string> files;
    std::set<std::string> dirs;
    bool empty() const { return files.empty() && dirs.empty(); }
  };

  void run();
  bool drain(Pending& pending);
  void onEvent(std::uint32_t mask, int wd, std::string_view name, Pending& pending);
  void process(Pending& pending, bool initial);

  // Directory watching.
  void pruneWatches(const std::string& prefix);
  void scanDir(const std::string& dir, int depth, std::set<std::string>& files);
  bool addWatch(const std::string& dir);
  void forgetWatch(int wd);

  // Files to objects.
  // `touched` collects ids in any order, with repeats (sorted and made unique before resolve):
  // a vector rather than a set, so that a full load does not leave a freed set node between
  // every two long-lived allocations of the index.
  void refreshFile(const std::string& path, std::vector<ObjectId>& touched,
                   std::set<ObjectId>& contested);
  void dropFile(const std::string& path, std::vector<ObjectId>& touched);
  void resolve(const std::vector<ObjectId>& touched, std::vector<ObjectId>& removals,
               std::vector<SharedObject>& upserts, std::set<std::string>& namespaces);
  void derive(const std::set<std::string>& namespaces, std::vector<ObjectId>& removals,
              std::vector<SharedObject>& upserts);
  template <class T>
  std::vector<const T*> effectiveOf(Kind kind, const std::string& ns) const;

  void countErrors(std::uint64_t n) {
    std::lock_guard lock(statsMu_);
    stats_.decodeErrors += n;
  }

  std::string dir_;
  std::shared_ptr<spdlog::logger> log_;
  Store* store_ = nullptr;
  Fd inotify_;
  Fd stopFd_;
  std::thread thread_;
  std::mutex stopMu_;

  // Owned by start(), then by the watcher thread alone.
  std::map<int, std::string> wdToPath_;
  std::map<std::string, int, std::less<>> pathToWd_;
  std::map<std::string, FileState, std::less<>> files_;
  struct Tracked {
    /// The files defining the object (keys of files_); the last in path order wins.
    std::vector<const std::string*> files;
    /// What the store holds from the files (the winner's object); none before the first resolve.
    std::optional<SharedObject> effective;

    const std::string& winnerPath() const {
      return **std::max_element(files.begin(), files.end(),
                                [](const auto* a, const auto* b) { return *a < *b; });
    }
    void forgetFile(const std::string* path) { std::erase(files, path); }
  };
  /// Every object some file defines, or that the store holds from the files.
  std::map<ObjectId, Tracked> objects_;
  /// Slices made from Pods: namespace → name → slice (shared with the store).
  std::map<std::string, std::map<std::string, std::shared_ptr<const EndpointSlice>>, std::less<>>
      derived_;

  mutable std::mutex statsMu_;
  SourceStats stats_;
};

void ManifestsSource::start(Store& store) {
  if (store_ != nullptr) {
    throw std::logic_error("manifests source started twice");
  }
  const std::string what = "--manifests " + dir_ + ": ";
  struct stat st {};
  if (::stat(dir_.c_str(), &st) != 0) {
    throw std::runtime_error(what + errnoText(errno));
  }
  if (!S_ISDIR(st.st_mode)) {
    throw std::runtime_error(what + "not a directory");
  }
  if (DirHandle probe(::opendir(dir_.c_str())); !probe) {
    throw std::runtime_error(what + errnoText(errno));
  }
  inotify_ = Fd(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!inotify_) {
    throw std::runtime_error(what + "inotify_init1: " + errnoText(errno));
  }
  stopFd_ = Fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!stopFd_) {
    throw std::runtime_error(what + "eventfd: " + errnoText(errno));
  }
  store_ = &store;

  // Watches go in before the files are read, so that no change between the two is lost (a
  // change seen twice costs a reread of one file, and a file whose bytes are the same is not
  // decoded again).
  Pending all;
  all.dirs.insert(dir_);
  process(all, /*initial=*/true);
  // Later reloads decode on the watcher thread: this thread's parser buffers (as large as the
  // largest file) would only add to the process's memory.
  releaseDecodeBuffers();
  store.markSynced();

  thread_ = std::thread([this] { run(); });
}

void ManifestsSource::stop() {
  std::lock_guard lock(stopMu_);
  if (!thread_.joinable()) {
    return;
  }
  const std::uint64_t one = 1;
  ssize_t n;
  do {
    n = ::write(stopFd_.get(), &one, sizeof one);
  } while (n < 0 && errno == EINTR);
  thread_.join();
}

void ManifestsSource::run() {
  ::pthread_setname_np(::pthread_self(), "kdp/manifests");
  std::array<pollfd, 2> fds{pollfd{inotify_.get(), POLLIN, 0}, pollfd{stopFd_.get(), POLLIN, 0}};
  auto waitFor = [&](int timeoutMs) {
    for (;;) {
      const int n = ::poll(fds.data(), fds.size(), timeoutMs);
      if (n >= 0 || errno != EINTR) {
        return n;
      }
    }
  };
  for (;;) {
    if (waitFor(-1) < 0) {
      SPDLOG_LOGGER_ERROR(log_, "manifests watcher stopped poll_error={}", errnoText(errno));
      return;
    }
    if (fds[1].revents != 0) {
      return;
    }
    if (fds[0].revents == 0) {
      continue;
    }
    Pending pending;
    if (!drain(pending)) {
      return;
    }
    // Debounce: an editor's save, a `kubectl apply -f` of many files or a ConfigMap update is a
    // burst of events; it becomes one batch once the directory has been quiet for kQuiet.
    const auto first = Clock::now();
    for (;;) {
      const auto left = kMaxDebounce - (Clock::now() - first);
      if (left <= Clock::duration::zero()) {
        break;
      }
      const auto wait = std::min<Clock::duration>(kQuiet, left);
      const int timeoutMs = static_cast<int>(
          std::max<std::int64_t>(1, std::chrono::ceil<std::chrono::milliseconds>(wait).count()));
      const int n = waitFor(timeoutMs);
      if (n < 0) {
        SPDLOG_LOGGER_ERROR(log_, "manifests watcher stopped poll_error={}", errnoText(errno));
        return;
      }
      if (fds[1].revents != 0) {
        return;
      }
      if (n == 0) {
        break;
      }
      if (!drain(pending)) {
        return;
      }
    }
    if (pending.empty()) {
      continue;
    }
    try {
      process(pending, /*initial=*/false);
    } catch (const std::exception& e) {
      // Not expected (decoding reports errors as values); keep watching with the last state.
      SPDLOG_LOGGER_ERROR(log_, "manifests reload failed dir={} error={}", dir_, e.what());
    }
  }
}

bool ManifestsSource::drain(Pending& pending) {
  alignas(inotify_event) std::array<char, 65536> buf;
  for (;;) {
    const ssize_t n = ::read(inotify_.get(), buf.data(), buf.size());
    if (n < 0) {
      const int err = errno;
      if (err == EINTR) {
        continue;
      }
      if (err == EAGAIN || err == EWOULDBLOCK) {
        return true;
      }
      SPDLOG_LOGGER_ERROR(log_, "manifests watcher stopped read_error={}", errnoText(err));
      return false;
    }
    if (n == 0) {
      return true;  // not expected from inotify; never spin on it
    }
    const auto len = static_cast<std::size_t>(n);
    std::size_t off = 0;
    while (len - off >= sizeof(inotify_event)) {
      inotify_event ev;
      std::memcpy(&ev, buf.data() + off, sizeof ev);
      off += sizeof ev;
      if (len - off < ev.len) {
        break;  // cannot happen: the kernel never splits an event
      }
      const char* name = buf.data() + off;
      off += ev.len;
      onEvent(ev.mask, ev.wd, std::string_view(name, ::strnlen(name, ev.len)), pending);
    }
  }
}

void ManifestsSource::onEvent(std::uint32_t mask, int wd, std::string_view name,
                              Pending& pending) {
  if ((mask & IN_Q_OVERFLOW) != 0) {
    SPDLOG_LOGGER_WARN(log_, "manifests event queue overflowed, rescanning dir={}", dir_);
    pending.dirs.insert(dir_);
    return;
  }
  auto it = wdToPath_.find(wd);
  if (it == wdToPath_.end()) {
    return;  // a watch already forgotten
  }
  const std::string base = it->second;
  if ((mask & IN_IGNORED) != 0) {
    forgetWatch(wd);
    return;
  }
  if ((mask & (IN_DELETE_SELF | IN_MOVE_SELF)) != 0) {
    // A subdirectory's parent reports it (IN_DELETE / IN_MOVED_FROM); only the top needs this.
    if (base == dir_) {
      SPDLOG_LOGGER_WARN(log_, "manifests directory removed or moved dir={}", dir_);
      pending.dirs.insert(dir_);
    }
    return;
  }
  if (name.empty()) {
    return;
  }
  if (isHidden(name)) {
    // Hidden entries are not manifests, except that a ConfigMap volume's update swaps them in.
    if (name == kAtomicWriterLink && (mask & (IN_CREATE | IN_MOVED_TO)) != 0) {
      pending.dirs.insert(base);
    }
    return;
  }
  std::string path = joinPath(base, name);
  if ((mask & IN_ISDIR) != 0) {
    pending.dirs.insert(std::move(path));
    return;
  }
  if ((mask & (IN_CREATE | IN_MOVED_TO)) != 0) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
      if (S_ISLNK(st.st_mode)) {
        // A symlink to a directory (a ConfigMap item with a path) is a subtree to scan.
        struct stat target {};
        if (::stat(path.c_str(), &target) == 0 && S_ISDIR(target.st_mode)) {
          pending.dirs.insert(std::move(path));
          return;
        }
      } else if ((mask & IN_CREATE) != 0 && S_ISREG(st.st_mode)) {
        // A regular file just created is still being written: its IN_CLOSE_WRITE follows.
        return;
      }
    }
  }
  if ((mask & (IN_DELETE | IN_MOVED_FROM)) != 0 && pathToWd_.count(path) != 0) {
    // A watched symlinked directory removed or moved away: its files went with it.
    pending.dirs.insert(std::move(path));
    return;
  }
  if (isManifestName(name)) {
    pending.files.insert(std::move(path));
  }
}

void ManifestsSource::process(Pending& pending, bool initial) {
  std::set<std::string> paths = std::move(pending.files);
  // Rescans: forget watches on directories that are gone first (a directory moved within the
  // tree keeps its inotify watch, which must be dropped before the new path is watched), then
  // walk what is there, then reread every file found and every file known below.
  for (const std::string& dir : pending.dirs) {
    pruneWatches(dir);
  }
  for (const std::string& dir : pending.dirs) {
    if (dir == dir_ || isUnder(dir, dir_)) {
      scanDir(dir, 0, paths);
    }
    forEachUnder(files_, dir, [&](const auto& entry) { paths.insert(entry.first); });
  }

  std::vector<ObjectId> touched;
  std::set<ObjectId> contested;
  for (const std::string& path : paths) {
    refreshFile(path, touched, contested);
  }
  std::sort(touched.begin(), touched.end());
  touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
  // Reported once all files are read: a directory that moved is briefly under both names.
  for (const ObjectId& id : contested) {
    if (auto o = objects_.find(id); o != objects_.end() && o->second.files.size() > 1) {
      SPDLOG_LOGGER_WARN(log_, "manifests object defined in several files, the last wins "
                         "kind={} namespace={} name={} files={} winner={}", kindName(id.kind),
                         id.ns, id.name, o->second.files.size(), o->second.winnerPath());
    }
  }
  std::vector<ObjectId> removed;
  std::vector<SharedObject> upserted;
  std::set<std::string> namespaces;
  resolve(touched, removed, upserted, namespaces);
  std::vector<ObjectId> derivedRemoved;
  std::vector<SharedObject> derivedUpserted;
  derive(namespaces, derivedRemoved, derivedUpserted);

  // One batch, removals first: a key both removed and written in it ends up written.
  Batch batch;
  for (const std::vector<ObjectId>* ids : {&removed, &derivedRemoved}) {
    for (const ObjectId& id : *ids) {
      batch.remove(id.kind, id.ns, id.name);
    }
  }
  for (std::vector<SharedObject>* objects : {&upserted, &derivedUpserted}) {
    for (SharedObject& object : *objects) {
      batch.upsert(std::move(object));  // shared with objects_/derived_: the store copies nothing
    }
  }
  [[maybe_unused]] const std::size_t ops = batch.size();

  // Stats first, so that whoever sees the new store version also sees them. Every operation in
  // a batch changes the store: values equal to what was written before are never sent again.
  std::uint64_t skipped = 0;
  for (const auto& [path, file] : files_) {
    skipped += file.skipped;
  }
  std::size_t derivedCount = 0;
  for (const auto& [ns, slices] : derived_) {
    derivedCount += slices.size();
  }
  {
    std::lock_guard lock(statsMu_);
    stats_.files = files_.size();
    stats_.skippedObjects = skipped;
    if (!initial && !batch.empty()) {
      ++stats_.reloads;
    }
  }
  const std::size_t changed = batch.empty() ? 0 : store_->apply(std::move(batch));

  if (initial) {
    const auto loaded = std::count_if(objects_.begin(), objects_.end(),
                                      [](const auto& e) { return e.second.effective.has_value(); });
    SPDLOG_LOGGER_INFO(log_, "manifests loaded dir={} files={} objects={} derived_slices={}", dir_,
                       files_.size(), loaded, derivedCount);
  } else if (changed != 0) {
    SPDLOG_LOGGER_INFO(log_,
                       "manifests reloaded files_read={} removed={} written={} derived_changes={} "
                       "changed_keys={}",
                       paths.size(), removed.size(), upserted.size(),
                       derivedRemoved.size() + derivedUpserted.size(), changed);
  } else {
    SPDLOG_LOGGER_DEBUG(log_, "manifests rescanned, nothing changed files_read={} ops={}",
                        paths.size(), ops);
  }
}

void ManifestsSource::pruneWatches(const std::string& prefix) {
  std::vector<int> gone;
  forEachUnder(pathToWd_, prefix, [&](const auto& entry) {
    struct stat st {};
    if (::stat(entry.first.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      gone.push_back(entry.second);
    }
  });
  for (int wd : gone) {
    ::inotify_rm_watch(inotify_.get(), wd);
    forgetWatch(wd);
  }
}

void ManifestsSource::forgetWatch(int wd) {
  auto it = wdToPath_.find(wd);
  if (it == wdToPath_.end()) {
    return;
  }
  if (auto p = pathToWd_.find(it->second); p != pathToWd_.end() && p->second == wd) {
    pathToWd_.erase(p);
  }
  wdToPath_.erase(it);
}

bool ManifestsSource::addWatch(const std::string& dir) {
  const int wd = ::inotify_add_watch(inotify_.get(), dir.c_str(), kWatchMask);
  if (wd < 0) {
    const int err = errno;
    SPDLOG_LOGGER_WARN(log_, "manifests cannot watch directory dir={} error={}", dir,
                       errnoText(err));
    return true;  // still read what is there
  }
  if (auto known = wdToPath_.find(wd); known != wdToPath_.end() && known->second != dir) {
    // The same directory under another path: a symlink back into the tree (read it once), or a
    // directory that moved (the old path is gone: the watch moves to the new one).
    struct stat a {}, b {};
    if (::stat(known->second.c_str(), &a) == 0 && ::stat(dir.c_str(), &b) == 0 &&
        a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
      SPDLOG_LOGGER_DEBUG(log_, "manifests directory seen twice, read once dir={} as={}", dir,
                          known->second);
      return false;
    }
    forgetWatch(wd);
  }
  if (auto old = pathToWd_.find(dir); old != pathToWd_.end() && old->second != wd) {
    // The path now names another directory (removed and made again): the old watch is stale.
    ::inotify_rm_watch(inotify_.get(), old->second);
    forgetWatch(old->second);
  }
  wdToPath_[wd] = dir;
  pathToWd_[dir] = wd;
  return true;
}

void ManifestsSource::scanDir(const std::string& dir, int depth, std::set<std::string>& files) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return;
  }
  if (depth > kMaxDepth) {
    SPDLOG_LOGGER_WARN(log_, "manifests directory too deep, skipped dir={}", dir);
    return;
  }
  if (!addWatch(dir)) {
    return;
  }
  DirHandle d(::opendir(dir.c_str()));
  if (!d) {
    const int err = errno;
    SPDLOG_LOGGER_WARN(log_, "manifests cannot read directory dir={} error={}", dir,
                       errnoText(err));
    countErrors(1);
    return;
  }
  std::vector<std::string> names;
  while (const dirent* e = ::readdir(d.get())) {
    std::string_view name = e->d_name;
    if (!isHidden(name)) {  // also skips "." and ".."
      names.emplace_back(name);
    }
  }
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    std::string path = joinPath(dir, name);
    struct stat target {};
    if (::stat(path.c_str(), &target) != 0) {
      // A dangling symlink: a manifest name among them is a file that is gone.
      if (isManifestName(name)) {
        files.insert(std::move(path));
      }
      continue;
    }
    if (S_ISDIR(target.st_mode)) {
      scanDir(path, depth + 1, files);
    } else if (isManifestName(name)) {
      files.insert(std::move(path));
    }
  }
}

void ManifestsSource::dropFile(const std::string& path, std::vector<ObjectId>& touched) {
  auto it = files_.find(path);
  if (it == files_.end()) {
    return;
  }
  for (const auto& [id, object] : it->second.objects) {
    touched.push_back(*id);
    objects_.at(*id).forgetFile(&it->first);
  }
  files_.erase(it);
  SPDLOG_LOGGER_DEBUG(log_, "manifests file removed file={}", path);
}

void ManifestsSource::refreshFile(const std::string& path, std::vector<ObjectId>& touched,
                                  std::set<ObjectId>& contested) {
  std::string text;
  std::string reason;
  switch (readFile(path, text, reason)) {
    case ReadStatus::Gone:
      dropFile(path, touched);
      return;
    case ReadStatus::Failed:
      SPDLOG_LOGGER_WARN(log_, "manifests file unreadable, keeping its previous objects file={} "
                         "error={}", path, reason);
      countErrors(1);
      return;
    case ReadStatus::Ok:
      break;
  }
  const std::size_t hash = std::hash<std::string_view>{}(text);
  auto known = files_.find(path);
  if (known != files_.end() && known->second.hash == hash && known->second.size == text.size()) {
    return;  // same bytes as last time: same objects, same errors (already reported)
  }

  DecodeResult result = endsWithNoCase(path, ".json") ? decodeJson(text, path)
                                                      : decodeYaml(text, path);
  FileState& file = files_[path];
  file.hash = hash;
  file.size = text.size();
  if (result.syntaxError) {
    for (const DecodeError& e : result.errors) {
      SPDLOG_LOGGER_WARN(log_, "manifests file refused, keeping its previous objects file={} "
                         "objects={} error={}", path, file.objects.size(), e.str());
    }
    countErrors(result.errors.empty() ? 1 : result.errors.size());
    return;
  }

  // (id, object) sorted by id; within one file a later document redefines an earlier one, as
  // `kubectl apply` would. A vector, like `touched`, to leave no holes among the index's nodes.
  std::vector<std::pair<ObjectId, SharedObject>> next;
  next.reserve(result.objects.size());
  for (Object& object : result.objects) {
    ObjectId id = idOf(object);
    next.emplace_back(std::move(id), share(std::move(object)));
  }
  auto byId = [](const auto& x, const auto& y) { return x.first < y.first; };
  std::stable_sort(next.begin(), next.end(), byId);
  // Keeps the last of each run of equal ids.
  auto last = std::unique(next.rbegin(), next.rend(),
                          [](const auto& x, const auto& y) { return x.first == y.first; });
  next.erase(next.begin(), last.base());
  auto findNext = [&](const ObjectId& id) {
    return std::lower_bound(next.begin(), next.end(), id,
                            [](const auto& e, const ObjectId& k) { return e.first < k; });
  };
  auto inNext = [&](const ObjectId& id) {
    auto it = findNext(id);
    return it != next.end() && it->first == id;
  };
  for (const DecodeError& e : result.errors) {
    // Like the API server refusing an invalid update: the version this file had stays.
    bool kept = false;
    if (auto id = idOf(e); id && !inNext(*id)) {
      if (auto o = objects_.find(*id); o != objects_.end()) {
        if (const SharedObject* old = findIn(file.objects, &o->first)) {
          next.emplace(findNext(*id), *id, *old);
          kept = true;
        }
      }
    }
    SPDLOG_LOGGER_WARN(log_, "manifests object refused kept_previous={} error={}", kept, e.str());
  }
  countErrors(result.errors.size());

  const std::string* pathKey = &files_.find(path)->first;
  for (const auto& [id, object] : file.objects) {
    if (!inNext(*id)) {
      touched.push_back(*id);
      objects_.at(*id).forgetFile(pathKey);
    }
  }
  FileObjects objects;
  objects.reserve(next.size());
  for (auto& [id, object] : next) {
    touched.push_back(id);
    auto entry = objects_.try_emplace(id).first;
    Tracked& tracked = entry->second;
    if (std::find(tracked.files.begin(), tracked.files.end(), pathKey) == tracked.files.end()) {
      tracked.files.push_back(pathKey);
      if (tracked.files.size() > 1) {
        contested.insert(id);
      }
    }
    objects.emplace_back(&entry->first, std::move(object));
  }
  std::sort(objects.begin(), objects.end(),
            [](const auto& x, const auto& y) { return std::less<>{}(x.first, y.first); });
  file.objects = std::move(objects);
  file.skipped = result.skipped;
}

void ManifestsSource::resolve(const std::vector<ObjectId>& touched, std::vector<ObjectId>& removals,
                              std::vector<SharedObject>& upserts,
                              std::set<std::string>& namespaces) {
  auto note = [&](const ObjectId& id) {
    if (id.kind == Kind::Service || id.kind == Kind::Pod || id.kind == Kind::EndpointSlice) {
      namespaces.insert(id.ns);
    }
  };
  for (const ObjectId& id : touched) {
    auto o = objects_.find(id);
    if (o == objects_.end()) {
      continue;
    }
    Tracked& tracked = o->second;
    if (tracked.files.empty()) {
      if (tracked.effective) {
        note(id);
        removals.push_back(id);
      }
      objects_.erase(o);  // no file refers to it any more
      continue;
    }
    const SharedObject& winner = *findIn(files_.at(tracked.winnerPath()).objects, &o->first);
    if (tracked.effective && sameValue(*tracked.effective, winner)) {
      tracked.effective = winner;  // same value; share the newest copy
      continue;
    }
    tracked.effective = winner;
    note(id);
    upserts.push_back(winner);
  }
}

template <class T>
std::vector<const T*> ManifestsSource::effectiveOf(Kind kind, const std::string& ns) const {
  std::vector<const T*> out;
  for (auto it = objects_.lower_bound(ObjectId{kind, ns, {}});
       it != objects_.end() && it->first.kind == kind && it->first.ns == ns; ++it) {
    if (it->second.effective) {
      out.push_back(std::get<std::shared_ptr<const T>>(*it->second.effective).get());
    }
  }
  return out;
}

void ManifestsSource::derive(const std::set<std::string>& namespaces,
                             std::vector<ObjectId>& removals,
                             std::vector<SharedObject>& upserts) {
  for (const std::string& ns : namespaces) {
    std::vector<EndpointSlice> made =
        endpointSlicesFromPods(effectiveOf<Service>(Kind::Service, ns),
                               effectiveOf<Pod>(Kind::Pod, ns),
                               effectiveOf<EndpointSlice>(Kind::EndpointSlice, ns));
    std::map<std::string, std::shared_ptr<const EndpointSlice>> next;
    for (EndpointSlice& slice : made) {
      std::string name = slice.meta.name;
      next.emplace(std::move(name), std::make_shared<const EndpointSlice>(std::move(slice)));
    }
    auto prevIt = derived_.find(ns);
    if (prevIt != derived_.end()) {
      for (const auto& [name, slice] : prevIt->second) {
        if (next.count(name) == 0) {
          removals.push_back(ObjectId{Kind::EndpointSlice, ns, name});
        }
      }
    }
    for (auto& [name, slice] : next) {
      if (prevIt != derived_.end()) {
        if (auto p = prevIt->second.find(name);
            p != prevIt->second.end() && *p->second == *slice) {
          slice = p->second;  // the store holds this one
          continue;
        }
      }
      upserts.emplace_back(slice);
    }
    if (next.empty()) {
      if (prevIt != derived_.end()) {
        derived_.erase(prevIt);
      }
    } else {
      derived_.insert_or_assign(ns, std::move(next));
    }
  }
}

}  // namespace

std::unique_ptr<Source> makeManifestsSource(std::string dir) {
  return std::make_unique<ManifestsSource>(std::move(dir));
}

}  // namespace kdp::k8s
