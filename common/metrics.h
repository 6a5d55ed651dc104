#pragma once
// A small thread-safe Prometheus registry shared by every component (no Boost here).
//
// Metrics are registered once at startup (Registry::counter/gauge/histogram, which take a lock and
// may throw std::invalid_argument on a bad name) and then updated on hot paths through the
// returned reference: an increment is one relaxed atomic operation, no lock, no allocation.
//
// Collectors are callbacks that append samples at scrape time, for figures that already live
// elsewhere (the store's object counts, /proc/self): nothing to keep in sync.
//
// renderPrometheus() writes the text exposition format 0.0.4, families sorted by name.
//
//   auto& drops = kdp::metrics::defaultRegistry().counter(
//       "kube_dataplane_dns_dropped_total", "Queries dropped.", {{"reason", "truncated"}});
//   drops.inc();

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kdp::metrics {

/// Label name/value pairs in the order they are rendered.
using Labels = std::vector<std::pair<std::string, std::string>>;

enum class Type : std::uint8_t { Counter, Gauge, Histogram };

/// A monotonically increasing count. Any thread; lock-free.
class Counter {
 public:
  void inc(std::uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

/// A value that goes up and down. Any thread; lock-free.
class Gauge {
 public:
  void set(double v) noexcept { value_.store(v, std::memory_order_relaxed); }
  void add(double d) noexcept { value_.fetch_add(d, std::memory_order_relaxed); }
  void inc() noexcept { add(1); }
  void dec() noexcept { add(-1); }
  double value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

/// Observations counted into fixed buckets (upper bounds, +Inf implied), with their sum.
/// observe() is lock-free: a binary search and two relaxed atomic adds.
class Histogram {
 public:
  /// `upperBounds` must be strictly increasing and finite (throws std::invalid_argument).
  explicit Histogram(std::vector<double> upperBounds);

  void observe(double v) noexcept;

  struct Data {
    std::vector<double> upperBounds;       // without +Inf
    std::vector<std::uint64_t> cumulative;  // upperBounds.size() + 1 entries, the last is +Inf
    double sum = 0;
    std::uint64_t count() const { return cumulative.empty() ? 0 : cumulative.back(); }
  };
  /// A copy of the current figures. Not atomic as a whole: a concurrent observe() may show in the
  /// buckets and not yet in the sum.
  Data collect() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;  // bounds_.size() + 1, not cumulative
  std::atomic<double> sum_{0};
};

/// Bucket bounds for latencies in seconds, 100 µs to 10 s.
std::vector<double> latencyBuckets();
/// `count` bounds start, start*factor, ...
std::vector<double> exponentialBuckets(double start, double factor, std::size_t count);

/// One sample appended by a collector.
struct Sample {
  Labels labels;
  double value = 0;
};
using CollectFn = std::function<void(std::vector<Sample>& out)>;

class Registry;

/// Unregisters its collector when destroyed (after any scrape running it has finished). The
/// registry must outlive it. Move-only.
class CollectorHandle {
 public:
  CollectorHandle() = default;
  CollectorHandle(CollectorHandle&& o) noexcept;
  CollectorHandle& operator=(CollectorHandle&& o) noexcept;
  CollectorHandle(const CollectorHandle&) = delete;
  CollectorHandle& operator=(const CollectorHandle&) = delete;
  ~CollectorHandle() { reset(); }
  /// Unregisters now.
  void reset() noexcept;
  /// Keeps the collector registered for the registry's lifetime.
  void release() noexcept { registry_ = nullptr; }

 private:
  friend class Registry;
  CollectorHandle(Registry* registry, std::string name)
      : registry_(registry), name_(std::move(name)) {}
  Registry* registry_ = nullptr;
  std::string name_;
};

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  /// The metric `name` with these constant labels, created on first use; the same object is
  /// returned for the same name and labels. The reference lives as long as the registry.
  /// Throws std::invalid_argument for an invalid metric or label name, or a name already
  /// registered with another type (or as a collector). Any thread; takes a lock: call at startup,
  /// not per packet.
  Counter& counter(std::string_view name, std::string_view help, Labels labels = {});
  Gauge& gauge(std::string_view name, std::string_view help, Labels labels = {});
  Histogram& histogram(std::string_view name, std::string_view help,
                       std::vector<double> upperBounds, Labels labels = {});

  /// A family whose samples `collect` appends at each scrape (type Counter or Gauge). `collect`
  /// runs on the scraping thread with the registry locked: it must be quick and must not call
  /// back into the registry. Throws std::invalid_argument like counter().
  [[nodiscard]] CollectorHandle addCollector(std::string_view name, std::string_view help,
                                             Type type, CollectFn collect);
  /// A family of one unlabelled sample: `value()` at scrape time.
  [[nodiscard]] CollectorHandle addCollector(std::string_view name, std::string_view help,
                                             Type type, std::function<double()> value);

  /// True when a family of that name is registered.
  bool has(std::string_view name) const;

  /// The text exposition format 0.0.4. Any thread.
  std::string renderPrometheus() const;

 private:
  friend class CollectorHandle;
  struct Child {
    Labels labels;
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
  };
  struct Family {
    std::string help;
    Type type = Type::Counter;
    std::vector<Child> children;  // registered metrics
    CollectFn collect;            // or a collector
  };
  Child& child(std::string_view name, std::string_view help, Type type, Labels labels);
  void removeCollector(const std::string& name) noexcept;

  mutable std::mutex mu_;
  std::map<std::string, Family, std::less<>> families_;
};

/// The process-wide registry that the metrics server renders.
Registry& defaultRegistry();

/// Adds the process_* collectors (resident memory, CPU seconds, start time, open and max fds,
/// virtual memory, from /proc/self) and kube_dataplane_build_info{version}. Idempotent per
/// registry for the process lifetime.
void registerProcessMetrics(Registry& registry);

/// Escapes a label value for the text format (backslash, double quote, newline).
std::string escapeLabelValue(std::string_view value);
/// A sample value as the text format writes it: shortest round-trip text, +Inf, -Inf, NaN.
std::string formatValue(double value);

}  // namespace kdp::metrics
