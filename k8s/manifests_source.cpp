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
#include <tuple>
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

/// Kind, namespace and name of an object: read from the object itself (or a decode error), never
/// copied into the index.
struct ObjectKey {
  Kind kind = Kind::Namespace;
  std::string_view ns;
  std::string_view name;

  auto operator<=>(const ObjectKey&) const = default;
  bool operator==(const ObjectKey&) const = default;
};

ObjectKey keyOf(const SharedObject& object) {
  const ObjectMeta& meta = metaOf(object);
  return ObjectKey{kindOf(object), meta.namespace_, meta.name};
}

/// The object an error names, when it names one of the kinds we keep (views into `error`).
std::optional<ObjectKey> keyOf(const DecodeError& error) {
  auto kind = kindFromName(error.kind);
  if (!kind || error.name.empty()) {
    return std::nullopt;
  }
  std::string_view ns;
  if (isNamespaced(*kind)) {
    // As the decoder places an object given without a namespace.
    ns = error.namespace_.empty() ? std::string_view("default") : std::string_view(error.namespace_);
  }
  return ObjectKey{*kind, ns, error.name};
}

/// What the DefinitionIndex holds of a key: 32 bits of its hash.
std::uint32_t hashOf(const ObjectKey& key) {
  const std::hash<std::string_view> hash;
  std::uint64_t h = hash(key.name);
  h ^= hash(key.ns) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  h ^= static_cast<std::uint64_t>(key.kind) * 0xff51afd7ed558ccdULL;
  return static_cast<std::uint32_t>(h ^ (h >> 32));
}

bool byKey(const SharedObject& a, const SharedObject& b) {
  return keyOf(a) < keyOf(b);
}

/// The objects a file defines, sorted by key, one per key.
using FileObjects = std::vector<SharedObject>;

/// The first object of [first, last) (sorted by key) whose key is not less than `key`.
template <class It>
It lowerBoundByKey(It first, It last, const ObjectKey& key) {
  return std::lower_bound(first, last, key,
                          [](const SharedObject& o, const ObjectKey& k) { return keyOf(o) < k; });
}

const SharedObject* findIn(const FileObjects& objects, const ObjectKey& key) {
  auto it = lowerBoundByKey(objects.begin(), objects.end(), key);
  return it != objects.end() && keyOf(*it) == key ? &*it : nullptr;
}

struct FileState {
  std::uint32_t number = 0;  // the file's name in the DefinitionIndex
  FileObjects objects;
  std::size_t skipped = 0;
  std::size_t hash = 0;  // of the bytes last decoded, to skip rereads of unchanged files
  std::size_t size = 0;
};

/// Which files define an object: a multiset of (hash of the object's key, file number), one
/// slot per object and file defining it, in an open-addressing table (linear probing, at most
/// 3/4 full: 8 B a slot, ≈ 11–21 B per object). Keys may share a hash: a lookup yields candidate
/// files, and the caller confirms each in that file's own objects.
class DefinitionIndex {
 public:
  static constexpr std::uint32_t kNoFile = 0;

  void add(std::uint32_t hash, std::uint32_t file) {
    if ((used_ + 1) * 4 > slots_.size() * 3) {
      rehash(std::max<std::size_t>(kMinSlots, slots_.size() * 2));
    }
    place(Slot{hash, file});
    ++used_;
  }

  /// Removes one (hash, file) slot: a file holds one for each of its objects with that hash.
  void remove(std::uint32_t hash, std::uint32_t file) {
    if (slots_.empty()) {
      return;
    }
    const std::size_t mask = slots_.size() - 1;
    std::size_t hole = hash & mask;
    while (!(slots_[hole] == Slot{hash, file})) {
      if (slots_[hole].file == kNoFile) {
        return;  // not there (not expected)
      }
      hole = (hole + 1) & mask;
    }
    // Backward-shift deletion (no tombstones): a later slot of the same probe run moves into the
    // hole when the hole lies between its home and where it is.
    for (std::size_t i = (hole + 1) & mask; slots_[i].file != kNoFile; i = (i + 1) & mask) {
      const std::size_t home = slots_[i].hash & mask;
      if (((i - home) & mask) >= ((i - hole) & mask)) {
        slots_[hole] = slots_[i];
        hole = i;
      }
    }
    slots_[hole] = Slot{};
    --used_;
    if (slots_.size() > kMinSlots && used_ * 8 < slots_.size()) {
      rehash(slots_.size() / 2);
    }
  }

  /// Calls fn(file) once for each file holding a slot with this hash.
  template <class Fn>
  void forEachFile(std::uint32_t hash, Fn&& fn) const {
    if (slots_.empty()) {
      return;
    }
    const std::size_t mask = slots_.size() - 1;
    const std::size_t home = hash & mask;
    for (std::size_t i = home; slots_[i].file != kNoFile; i = (i + 1) & mask) {
      if (slots_[i].hash != hash) {
        continue;
      }
      bool seen = false;  // the same file twice: two of its keys share this hash
      for (std::size_t j = home; j != i && !seen; j = (j + 1) & mask) {
        seen = slots_[j] == slots_[i];
      }
      if (!seen) {
        fn(slots_[i].file);
      }
    }
  }

 private:
  struct Slot {
    std::uint32_t hash = 0;
    std::uint32_t file = kNoFile;
    bool operator==(const Slot&) const = default;
  };
  static constexpr std::size_t kMinSlots = 16;

  void place(Slot slot) {
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = slot.hash & mask;
    while (slots_[i].file != kNoFile) {
      i = (i + 1) & mask;
    }
    slots_[i] = slot;
  }
  void rehash(std::size_t size) {
    std::vector<Slot> old = std::exchange(slots_, std::vector<Slot>(size));
    for (const Slot& slot : old) {
      if (slot.file != kNoFile) {
        place(slot);
      }
    }
  }

  std::vector<Slot> slots_;  // a power of two in size, or empty
  std::size_t used_ = 0;
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

  // Files to objects. A reload collects, for every key some file touched, the object the store
  // held for it before (the winner then, if any) and any object with that key (to read the key
  // from). Vectors rather than sets: a full load leaves no freed node between every two
  // long-lived allocations of the index.
  struct Touch {
    SharedObject object;                 // has the key
    std::optional<SharedObject> before;  // the winner before this reload
  };
  using FileEntry = std::map<std::string, FileState, std::less<>>::value_type;
  /// The files that define a key: how many, and the winner (the last in path order).
  struct Definitions {
    const SharedObject* winner = nullptr;
    const std::string* winnerPath = nullptr;
    std::size_t files = 0;
  };

  FileEntry& fileEntry(const std::string& path);
  void refreshFile(const std::string& path, std::vector<Touch>& touched,
                   std::vector<SharedObject>& contested);
  void replaceObjects(FileEntry& file, FileObjects next, std::vector<Touch>& touched,
                      std::vector<SharedObject>& contested);
  void dropFile(const std::string& path, std::vector<Touch>& touched);
  Definitions definitionsOf(const ObjectKey& key) const;
  /// Namespaces whose derived slices a reload recomputes.
  using Namespaces = std::set<std::string, std::less<>>;
  void resolve(std::vector<Touch>& touched, std::vector<SharedObject>& removals,
               std::vector<SharedObject>& upserts, Namespaces& namespaces) const;
  void derive(const Namespaces& namespaces, std::vector<SharedObject>& removals,
              std::vector<SharedObject>& upserts);
  template <class T>
  std::vector<const T*> effectiveOf(Kind kind, const Namespaces& namespaces) const;

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
  /// files_ by FileState::number (0: none), and the numbers free for reuse.
  std::vector<FileEntry*> fileByNumber_{nullptr};
  std::vector<std::uint32_t> freeNumbers_;
  /// Which files define each key. What the store holds from the files is, for every key, the
  /// winner's object: nothing else is kept per object.
  DefinitionIndex definitions_;
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

  std::vector<Touch> touched;
  std::vector<SharedObject> contested;
  for (const std::string& path : paths) {
    refreshFile(path, touched, contested);
  }
  // Reported once all files are read: a directory that moved is briefly under both names.
  std::sort(contested.begin(), contested.end(), byKey);
  contested.erase(std::unique(contested.begin(), contested.end(),
                              [](const auto& a, const auto& b) { return keyOf(a) == keyOf(b); }),
                  contested.end());
  for (const SharedObject& object : contested) {
    const ObjectKey key = keyOf(object);
    if (const Definitions d = definitionsOf(key); d.files > 1) {
      SPDLOG_LOGGER_WARN(log_, "manifests object defined in several files, the last wins "
                         "kind={} namespace={} name={} files={} winner={}", kindName(key.kind),
                         key.ns, key.name, d.files, *d.winnerPath);
    }
  }
  std::vector<SharedObject> removed;
  std::vector<SharedObject> upserted;
  Namespaces namespaces;
  resolve(touched, removed, upserted, namespaces);
  std::vector<SharedObject> derivedRemoved;
  std::vector<SharedObject> derivedUpserted;
  derive(namespaces, derivedRemoved, derivedUpserted);

  // One batch, removals first: a key both removed and written in it ends up written.
  Batch batch;
  for (const std::vector<SharedObject>* objects : {&removed, &derivedRemoved}) {
    for (const SharedObject& object : *objects) {
      const ObjectMeta& meta = metaOf(object);
      batch.remove(kindOf(object), std::string(meta.namespace_), meta.name);
    }
  }
  for (std::vector<SharedObject>* objects : {&upserted, &derivedUpserted}) {
    for (SharedObject& object : *objects) {
      batch.upsert(std::move(object));  // shared with files_/derived_: the store copies nothing
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
    const std::size_t loaded = upserted.size();  // the first load writes every object
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

ManifestsSource::FileEntry& ManifestsSource::fileEntry(const std::string& path) {
  auto [it, added] = files_.try_emplace(path);
  if (added) {
    FileEntry* entry = &*it;
    if (freeNumbers_.empty()) {
      entry->second.number = static_cast<std::uint32_t>(fileByNumber_.size());
      fileByNumber_.push_back(entry);
    } else {
      entry->second.number = freeNumbers_.back();
      freeNumbers_.pop_back();
      fileByNumber_[entry->second.number] = entry;
    }
  }
  return *it;
}

ManifestsSource::Definitions ManifestsSource::definitionsOf(const ObjectKey& key) const {
  Definitions out;
  definitions_.forEachFile(hashOf(key), [&](std::uint32_t number) {
    const FileEntry& file = *fileByNumber_[number];
    if (const SharedObject* object = findIn(file.second.objects, key)) {
      ++out.files;
      if (out.winnerPath == nullptr || *out.winnerPath < file.first) {
        out.winner = object;
        out.winnerPath = &file.first;
      }
    }
  });
  return out;
}

void ManifestsSource::dropFile(const std::string& path, std::vector<Touch>& touched) {
  auto it = files_.find(path);
  if (it == files_.end()) {
    return;
  }
  FileState& file = it->second;
  for (const SharedObject& object : file.objects) {
    touched.push_back(Touch{object, *definitionsOf(keyOf(object)).winner});
  }
  for (const SharedObject& object : file.objects) {
    definitions_.remove(hashOf(keyOf(object)), file.number);
  }
  fileByNumber_[file.number] = nullptr;
  freeNumbers_.push_back(file.number);
  files_.erase(it);
  SPDLOG_LOGGER_DEBUG(log_, "manifests file removed file={}", path);
}

void ManifestsSource::refreshFile(const std::string& path, std::vector<Touch>& touched,
                                  std::vector<SharedObject>& contested) {
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
  FileEntry& entry = fileEntry(path);
  FileState& file = entry.second;
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

  // Sorted by key; within one file a later document redefines an earlier one, as
  // `kubectl apply` would.
  FileObjects next;
  next.reserve(result.objects.size());
  for (Object& object : result.objects) {
    next.push_back(share(std::move(object)));
  }
  std::stable_sort(next.begin(), next.end(), byKey);
  // Keeps the last of each run of equal keys.
  auto last = std::unique(next.rbegin(), next.rend(),
                          [](const auto& x, const auto& y) { return keyOf(x) == keyOf(y); });
  next.erase(next.begin(), last.base());
  for (const DecodeError& e : result.errors) {
    // Like the API server refusing an invalid update: the version this file had stays.
    bool kept = false;
    if (auto key = keyOf(e); key && findIn(next, *key) == nullptr) {
      if (const SharedObject* old = findIn(file.objects, *key)) {
        next.insert(lowerBoundByKey(next.begin(), next.end(), *key), *old);
        kept = true;
      }
    }
    SPDLOG_LOGGER_WARN(log_, "manifests object refused kept_previous={} error={}", kept, e.str());
  }
  countErrors(result.errors.size());
  file.skipped = result.skipped;
  replaceObjects(entry, std::move(next), touched, contested);
}

void ManifestsSource::replaceObjects(FileEntry& entry, FileObjects next,
                                     std::vector<Touch>& touched,
                                     std::vector<SharedObject>& contested) {
  FileState& file = entry.second;
  // Both sorted by key: one merge walk. The winners are read before anything changes.
  auto forEachKey = [&](auto&& fn) {
    auto o = file.objects.begin();
    auto n = next.begin();
    while (o != file.objects.end() || n != next.end()) {
      const bool takeOld = n == next.end() || (o != file.objects.end() && !byKey(*n, *o));
      const bool takeNew = o == file.objects.end() || (n != next.end() && !byKey(*o, *n));
      fn(takeOld ? &*o : nullptr, takeNew ? &*n : nullptr);
      o += takeOld ? 1 : 0;
      n += takeNew ? 1 : 0;
    }
  };
  forEachKey([&](const SharedObject* old, const SharedObject* now) {
    const SharedObject& object = now != nullptr ? *now : *old;
    const Definitions before = definitionsOf(keyOf(object));
    touched.push_back(Touch{object, before.winner != nullptr
                                        ? std::optional<SharedObject>(*before.winner)
                                        : std::nullopt});
    if (old == nullptr && before.files != 0) {
      contested.push_back(object);  // newly defined here, already defined elsewhere
    }
  });
  forEachKey([&](const SharedObject* old, SharedObject* now) {
    if (old == nullptr) {
      definitions_.add(hashOf(keyOf(*now)), file.number);
    } else if (now == nullptr) {
      definitions_.remove(hashOf(keyOf(*old)), file.number);
    } else if (sameValue(*old, *now)) {
      *now = *old;  // an unchanged object held once: the older copy, which the store may hold
    }
  });
  next.shrink_to_fit();
  file.objects = std::move(next);
}

void ManifestsSource::resolve(std::vector<Touch>& touched, std::vector<SharedObject>& removals,
                              std::vector<SharedObject>& upserts,
                              Namespaces& namespaces) const {
  // The first record of a key holds the winner before the reload: what the store has.
  std::stable_sort(touched.begin(), touched.end(),
                   [](const Touch& a, const Touch& b) { return byKey(a.object, b.object); });
  touched.erase(std::unique(touched.begin(), touched.end(),
                            [](const Touch& a, const Touch& b) {
                              return keyOf(a.object) == keyOf(b.object);
                            }),
                touched.end());
  auto note = [&](const ObjectKey& key) {
    if (key.kind == Kind::Service || key.kind == Kind::Pod || key.kind == Kind::EndpointSlice) {
      namespaces.emplace(key.ns);
    }
  };
  for (const Touch& t : touched) {
    const ObjectKey key = keyOf(t.object);
    const SharedObject* winner = definitionsOf(key).winner;
    if (winner == nullptr) {
      if (t.before) {
        note(key);
        removals.push_back(*t.before);
      }
    } else if (!t.before || !sameValue(*t.before, *winner)) {
      note(key);
      upserts.push_back(*winner);
    }
  }
}

template <class T>
std::vector<const T*> ManifestsSource::effectiveOf(Kind kind, const Namespaces& namespaces) const {
  // Each file's objects of that kind in those namespaces, the last file in path order first (a
  // walk of the file's range for the kind that skips other namespaces by binary search); then
  // by namespace and name, keeping the first of each: the winner.
  std::vector<const T*> out;
  for (auto file = files_.rbegin(); file != files_.rend(); ++file) {
    const FileObjects& objects = file->second.objects;
    auto it = objects.begin();
    for (auto ns = namespaces.begin(); ns != namespaces.end();) {
      it = lowerBoundByKey(it, objects.end(), ObjectKey{kind, *ns, {}});
      if (it == objects.end() || kindOf(*it) != kind) {
        break;
      }
      const std::string_view at = metaOf(*it).namespace_;
      if (at != *ns) {
        ns = namespaces.lower_bound(at);  // the first namespace asked for from here on
        continue;
      }
      for (; it != objects.end() && kindOf(*it) == kind && metaOf(*it).namespace_ == at; ++it) {
        out.push_back(std::get<std::shared_ptr<const T>>(*it).get());
      }
      ++ns;
    }
  }
  auto key = [](const T* o) { return std::tie(o->meta.namespace_, o->meta.name); };
  std::stable_sort(out.begin(), out.end(), [&](const T* a, const T* b) { return key(a) < key(b); });
  out.erase(std::unique(out.begin(), out.end(),
                        [&](const T* a, const T* b) { return key(a) == key(b); }),
            out.end());
  return out;
}

void ManifestsSource::derive(const Namespaces& namespaces, std::vector<SharedObject>& removals,
                             std::vector<SharedObject>& upserts) {
  const auto services = effectiveOf<Service>(Kind::Service, namespaces);
  const auto pods = effectiveOf<Pod>(Kind::Pod, namespaces);
  const auto slices = effectiveOf<EndpointSlice>(Kind::EndpointSlice, namespaces);
  auto nextService = services.begin();
  auto nextPod = pods.begin();
  auto nextSlice = slices.begin();
  // The run of `all` (sorted by namespace, nothing outside `namespaces`) in namespace ns.
  auto takeNamespace = [](auto& cursor, const auto& all, std::string_view ns) {
    auto end = std::find_if(cursor, all.end(),
                            [&](const auto* o) { return o->meta.namespace_ != ns; });
    std::vector<typename std::decay_t<decltype(all)>::value_type> run(cursor, end);
    cursor = end;
    return run;
  };
  for (const std::string& ns : namespaces) {
    std::vector<EndpointSlice> made =
        endpointSlicesFromPods(takeNamespace(nextService, services, ns),
                               takeNamespace(nextPod, pods, ns),
                               takeNamespace(nextSlice, slices, ns));
    std::map<std::string, std::shared_ptr<const EndpointSlice>> next;
    for (EndpointSlice& slice : made) {
      std::string name = slice.meta.name;
      next.emplace(std::move(name), std::make_shared<const EndpointSlice>(std::move(slice)));
    }
    auto prevIt = derived_.find(ns);
    if (prevIt != derived_.end()) {
      for (const auto& [name, slice] : prevIt->second) {
        if (next.count(name) == 0) {
          removals.emplace_back(slice);
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
