#include "common/metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "common/version.h"

namespace kdp::metrics {

namespace {

bool isMetricName(std::string_view s) {
  if (s.empty()) {
    return false;
  }
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    const bool digit = c >= '0' && c <= '9';
    if (!alpha && !(digit && i > 0)) {
      return false;
    }
  }
  return true;
}

bool isLabelName(std::string_view s) {
  if (s.empty() || s.starts_with("__")) {
    return false;
  }
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    const bool digit = c >= '0' && c <= '9';
    if (!alpha && !(digit && i > 0)) {
      return false;
    }
  }
  return true;
}

void checkNames(std::string_view name, const Labels& labels, Type type) {
  if (!isMetricName(name)) {
    throw std::invalid_argument("invalid metric name \"" + std::string(name) + "\"");
  }
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const auto& label = labels[i].first;
    if (!isLabelName(label) || (type == Type::Histogram && label == "le")) {
      throw std::invalid_argument("metric " + std::string(name) + ": invalid label name \"" +
                                  label + "\"");
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (labels[j].first == label) {
        throw std::invalid_argument("metric " + std::string(name) + ": label \"" + label +
                                    "\" given twice");
      }
    }
  }
}

std::string_view typeName(Type type) {
  switch (type) {
    case Type::Counter: return "counter";
    case Type::Gauge: return "gauge";
    case Type::Histogram: return "histogram";
  }
  return "untyped";
}

std::string escapeHelp(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void appendUnsigned(std::string& out, std::uint64_t v) {
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, p);
}

// name{a="x",b="y"[,extraName="extraValue"]}
void appendSeries(std::string& out, std::string_view name, std::string_view suffix,
                  const Labels& labels, std::string_view extraName = {},
                  std::string_view extraValue = {}) {
  out += name;
  out += suffix;
  if (labels.empty() && extraName.empty()) {
    return;
  }
  out += '{';
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) {
      out += ',';
    }
    first = false;
    out += k;
    out += "=\"";
    out += escapeLabelValue(v);
    out += '"';
  }
  if (!extraName.empty()) {
    if (!first) {
      out += ',';
    }
    out += extraName;
    out += "=\"";
    out += extraValue;
    out += '"';
  }
  out += '}';
}

// --- /proc/self -------------------------------------------------------------------------------

struct ProcStat {
  double cpuSeconds = 0;
  double startTicks = 0;
  double virtualBytes = 0;
  double residentPages = 0;
  bool ok = false;
};

ProcStat readProcStat() {
  ProcStat st;
  std::ifstream in("/proc/self/stat");
  std::string line;
  if (!std::getline(in, line)) {
    return st;
  }
  // The command name may hold spaces and parentheses: the fields start after the last ')'.
  const auto close = line.rfind(')');
  if (close == std::string::npos) {
    return st;
  }
  std::istringstream fields(line.substr(close + 1));
  std::vector<std::string> f;
  for (std::string tok; fields >> tok;) {
    f.push_back(std::move(tok));
  }
  // f[0] is field 3 (state): field k is f[k - 3].
  if (f.size() < 22) {
    return st;
  }
  const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
  auto num = [&](std::size_t field) { return std::strtod(f[field - 3].c_str(), nullptr); };
  st.cpuSeconds = (num(14) + num(15)) / tick;
  st.startTicks = num(22) / tick;
  st.virtualBytes = num(23);
  st.residentPages = num(24);
  st.ok = true;
  return st;
}

double bootTime() {
  std::ifstream in("/proc/stat");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("btime ")) {
      return std::strtod(line.c_str() + 6, nullptr);
    }
  }
  return 0;
}

double openFds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) {
    return 0;
  }
  const int own = ::dirfd(dir);
  std::size_t n = 0;
  while (const dirent* e = ::readdir(dir)) {
    if (e->d_name[0] == '.') {
      continue;
    }
    if (std::atoi(e->d_name) == own) {
      continue;
    }
    ++n;
  }
  ::closedir(dir);
  return static_cast<double>(n);
}

}  // namespace

std::string escapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string formatValue(double value) {
  if (std::isnan(value)) {
    return "NaN";
  }
  if (std::isinf(value)) {
    return value > 0 ? "+Inf" : "-Inf";
  }
  char buf[32];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, value);
  return std::string(buf, p);
}

// --- Histogram --------------------------------------------------------------------------------

Histogram::Histogram(std::vector<double> upperBounds) : bounds_(std::move(upperBounds)) {
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    if (!std::isfinite(bounds_[i]) || (i > 0 && bounds_[i] <= bounds_[i - 1])) {
      throw std::invalid_argument("histogram bounds must be finite and strictly increasing");
    }
  }
  counts_ = std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1);
}

void Histogram::observe(double v) noexcept {
  // The first bound >= v ("le"); past all bounds (or NaN) is the +Inf bucket.
  const auto it =
      std::isnan(v) ? bounds_.end() : std::lower_bound(bounds_.begin(), bounds_.end(), v);
  counts_[static_cast<std::size_t>(it - bounds_.begin())].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Data Histogram::collect() const {
  Data d;
  d.upperBounds = bounds_;
  d.cumulative.resize(bounds_.size() + 1);
  std::uint64_t acc = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    acc += counts_[i].load(std::memory_order_relaxed);
    d.cumulative[i] = acc;
  }
  d.sum = sum_.load(std::memory_order_relaxed);
  return d;
}

std::vector<double> exponentialBuckets(double start, double factor, std::size_t count) {
  std::vector<double> b;
  b.reserve(count);
  double v = start;
  for (std::size_t i = 0; i < count; ++i) {
    b.push_back(v);
    v *= factor;
  }
  return b;
}

std::vector<double> latencyBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
}

// --- CollectorHandle --------------------------------------------------------------------------

CollectorHandle::CollectorHandle(CollectorHandle&& o) noexcept
    : registry_(std::exchange(o.registry_, nullptr)), name_(std::move(o.name_)) {}

CollectorHandle& CollectorHandle::operator=(CollectorHandle&& o) noexcept {
  if (this != &o) {
    reset();
    registry_ = std::exchange(o.registry_, nullptr);
    name_ = std::move(o.name_);
  }
  return *this;
}

void CollectorHandle::reset() noexcept {
  if (registry_ != nullptr) {
    std::exchange(registry_, nullptr)->removeCollector(name_);
  }
}

// --- Registry ---------------------------------------------------------------------------------

// mu_ held.
Registry::Child& Registry::child(std::string_view name, std::string_view help, Type type,
                                 Labels labels) {
  checkNames(name, labels, type);
  auto it = families_.find(name);
  if (it == families_.end()) {
    it = families_.emplace(std::string(name), Family{}).first;
    it->second.help = std::string(help);
    it->second.type = type;
  } else if (it->second.type != type || it->second.collect) {
    throw std::invalid_argument("metric " + std::string(name) +
                                " is already registered as another type");
  }
  auto& children = it->second.children;
  for (auto& c : children) {
    if (c.labels == labels) {
      return c;
    }
  }
  Child& c = children.emplace_back();
  c.labels = std::move(labels);
  return c;
}

Counter& Registry::counter(std::string_view name, std::string_view help, Labels labels) {
  std::lock_guard lock(mu_);
  Child& c = child(name, help, Type::Counter, std::move(labels));
  if (!c.counter) {
    c.counter = std::make_unique<Counter>();
  }
  return *c.counter;
}

Gauge& Registry::gauge(std::string_view name, std::string_view help, Labels labels) {
  std::lock_guard lock(mu_);
  Child& c = child(name, help, Type::Gauge, std::move(labels));
  if (!c.gauge) {
    c.gauge = std::make_unique<Gauge>();
  }
  return *c.gauge;
}

Histogram& Registry::histogram(std::string_view name, std::string_view help,
                               std::vector<double> upperBounds, Labels labels) {
  auto h = std::make_unique<Histogram>(std::move(upperBounds));  // validates before registering
  std::lock_guard lock(mu_);
  Child& c = child(name, help, Type::Histogram, std::move(labels));
  if (!c.histogram) {
    c.histogram = std::move(h);
  }
  return *c.histogram;
}

CollectorHandle Registry::addCollector(std::string_view name, std::string_view help, Type type,
                                       CollectFn collect) {
  if (type == Type::Histogram) {
    throw std::invalid_argument("metric " + std::string(name) +
                                ": collectors give counters or gauges");
  }
  checkNames(name, {}, type);
  std::lock_guard lock(mu_);
  if (families_.count(name) != 0) {
    throw std::invalid_argument("metric " + std::string(name) + " is already registered");
  }
  Family f;
  f.help = std::string(help);
  f.type = type;
  f.collect = std::move(collect);
  families_.emplace(std::string(name), std::move(f));
  return CollectorHandle(this, std::string(name));
}

CollectorHandle Registry::addCollector(std::string_view name, std::string_view help, Type type,
                                       std::function<double()> value) {
  return addCollector(name, help, type,
                      [value = std::move(value)](std::vector<Sample>& out) {
                        out.push_back(Sample{{}, value()});
                      });
}

void Registry::removeCollector(const std::string& name) noexcept {
  std::lock_guard lock(mu_);
  auto it = families_.find(name);
  if (it != families_.end() && it->second.collect) {
    families_.erase(it);
  }
}

bool Registry::has(std::string_view name) const {
  std::lock_guard lock(mu_);
  return families_.count(name) != 0;
}

std::string Registry::renderPrometheus() const {
  std::string out;
  out.reserve(4096);
  std::vector<Sample> samples;
  std::lock_guard lock(mu_);
  for (const auto& [name, f] : families_) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += escapeHelp(f.help);
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += typeName(f.type);
    out += '\n';
    if (f.collect) {
      samples.clear();
      f.collect(samples);
      for (const auto& s : samples) {
        appendSeries(out, name, "", s.labels);
        out += ' ';
        out += formatValue(s.value);
        out += '\n';
      }
      continue;
    }
    for (const auto& c : f.children) {
      if (c.counter) {
        appendSeries(out, name, "", c.labels);
        out += ' ';
        appendUnsigned(out, c.counter->value());
        out += '\n';
      } else if (c.gauge) {
        appendSeries(out, name, "", c.labels);
        out += ' ';
        out += formatValue(c.gauge->value());
        out += '\n';
      } else if (c.histogram) {
        const auto d = c.histogram->collect();
        for (std::size_t i = 0; i < d.cumulative.size(); ++i) {
          const std::string le =
              i < d.upperBounds.size() ? formatValue(d.upperBounds[i]) : std::string("+Inf");
          appendSeries(out, name, "_bucket", c.labels, "le", le);
          out += ' ';
          appendUnsigned(out, d.cumulative[i]);
          out += '\n';
        }
        appendSeries(out, name, "_sum", c.labels);
        out += ' ';
        out += formatValue(d.sum);
        out += '\n';
        appendSeries(out, name, "_count", c.labels);
        out += ' ';
        appendUnsigned(out, d.count());
        out += '\n';
      }
    }
  }
  return out;
}

Registry& defaultRegistry() {
  static Registry registry;
  return registry;
}

void registerProcessMetrics(Registry& registry) {
  static std::mutex mu;
  std::lock_guard lock(mu);
  if (registry.has("process_cpu_seconds_total")) {
    return;
  }
  registry
      .addCollector("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                    Type::Counter, [] { return readProcStat().cpuSeconds; })
      .release();
  registry
      .addCollector("process_resident_memory_bytes", "Resident memory size in bytes.",
                    Type::Gauge,
                    [] {
                      return readProcStat().residentPages *
                             static_cast<double>(::sysconf(_SC_PAGESIZE));
                    })
      .release();
  registry
      .addCollector("process_virtual_memory_bytes", "Virtual memory size in bytes.", Type::Gauge,
                    [] { return readProcStat().virtualBytes; })
      .release();
  // The start time does not change: read it once.
  const double start = bootTime() + readProcStat().startTicks;
  registry
      .addCollector("process_start_time_seconds",
                    "Start time of the process since unix epoch in seconds.", Type::Gauge,
                    [start] { return start; })
      .release();
  registry
      .addCollector("process_open_fds", "Number of open file descriptors.", Type::Gauge,
                    [] { return openFds(); })
      .release();
  registry
      .addCollector("process_max_fds", "Maximum number of open file descriptors.", Type::Gauge,
                    [] {
                      rlimit rl{};
                      if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) {
                        return std::numeric_limits<double>::infinity();
                      }
                      return static_cast<double>(rl.rlim_cur);
                    })
      .release();
  registry.gauge("kube_dataplane_build_info", "Build information; always 1.",
                 {{"version", kVersion}})
      .set(1);
}

}  // namespace kdp::metrics
