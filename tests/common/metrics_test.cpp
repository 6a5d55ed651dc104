#include "common/metrics.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common/version.h"

using kdp::metrics::Registry;
using kdp::metrics::Sample;
using kdp::metrics::Type;

TEST_CASE("metrics: renders counters, gauges and histograms in text format 0.0.4", "[metrics]") {
  Registry r;
  auto& hits = r.counter("kdp_hits_total", "Requests served.", {{"code", "200"}});
  auto& misses = r.counter("kdp_hits_total", "Requests served.", {{"code", "404"}});
  hits.inc();
  hits.inc(41);
  misses.inc();
  CHECK(&r.counter("kdp_hits_total", "Requests served.", {{"code", "200"}}) == &hits);

  r.gauge("kdp_temperature", "A \\ back\nslash.").set(-1.5);
  r.gauge("kdp_a_gauge", "Plain.").set(3);

  auto& h = r.histogram("kdp_latency_seconds", "Latency.", {0.25, 1, 2.5}, {{"op", "sync"}});
  h.observe(0.125);
  h.observe(0.25);  // le is inclusive
  h.observe(2);
  h.observe(100);

  CHECK(r.renderPrometheus() ==
        "# HELP kdp_a_gauge Plain.\n"
        "# TYPE kdp_a_gauge gauge\n"
        "kdp_a_gauge 3\n"
        "# HELP kdp_hits_total Requests served.\n"
        "# TYPE kdp_hits_total counter\n"
        "kdp_hits_total{code=\"200\"} 42\n"
        "kdp_hits_total{code=\"404\"} 1\n"
        "# HELP kdp_latency_seconds Latency.\n"
        "# TYPE kdp_latency_seconds histogram\n"
        "kdp_latency_seconds_bucket{op=\"sync\",le=\"0.25\"} 2\n"
        "kdp_latency_seconds_bucket{op=\"sync\",le=\"1\"} 2\n"
        "kdp_latency_seconds_bucket{op=\"sync\",le=\"2.5\"} 3\n"
        "kdp_latency_seconds_bucket{op=\"sync\",le=\"+Inf\"} 4\n"
        "kdp_latency_seconds_sum{op=\"sync\"} 102.375\n"
        "kdp_latency_seconds_count{op=\"sync\"} 4\n"
        "# HELP kdp_temperature A \\\\ back\\nslash.\n"
        "# TYPE kdp_temperature gauge\n"
        "kdp_temperature -1.5\n");
}

TEST_CASE("metrics: label values are escaped", "[metrics]") {
  Registry r;
  r.counter("kdp_x_total", "X.", {{"path", "a\"b\\c\nd"}, {"k", ""}}).inc();
  CHECK(r.renderPrometheus() ==
        "# HELP kdp_x_total X.\n"
        "# TYPE kdp_x_total counter\n"
        "kdp_x_total{path=\"a\\\"b\\\\c\\nd\",k=\"\"} 1\n");
}

TEST_CASE("metrics: value formatting", "[metrics]") {
  using kdp::metrics::formatValue;
  CHECK(formatValue(0) == "0");
  CHECK(formatValue(42) == "42");
  CHECK(formatValue(0.25) == "0.25");
  CHECK(formatValue(1e21) == "1e+21");
  CHECK(formatValue(std::numeric_limits<double>::infinity()) == "+Inf");
  CHECK(formatValue(-std::numeric_limits<double>::infinity()) == "-Inf");
  CHECK(formatValue(std::nan("")) == "NaN");
}

TEST_CASE("metrics: collectors append samples at scrape time and unregister", "[metrics]") {
  Registry r;
  int calls = 0;
  {
    auto objects = r.addCollector("kdp_objects", "Objects by kind.", Type::Gauge,
                                  [&calls](std::vector<Sample>& out) {
                                    ++calls;
                                    out.push_back({{{"kind", "Service"}}, 3});
                                    out.push_back({{{"kind", "Pod"}}, 0});
                                  });
    auto version = r.addCollector("kdp_version", "Version.", Type::Counter,
                                  std::function<double()>([] { return 7.0; }));
    CHECK(calls == 0);
    CHECK(r.renderPrometheus() ==
          "# HELP kdp_objects Objects by kind.\n"
          "# TYPE kdp_objects gauge\n"
          "kdp_objects{kind=\"Service\"} 3\n"
          "kdp_objects{kind=\"Pod\"} 0\n"
          "# HELP kdp_version Version.\n"
          "# TYPE kdp_version counter\n"
          "kdp_version 7\n");
    CHECK(calls == 1);
    CHECK_THROWS_AS(r.counter("kdp_objects", "Clash."), std::invalid_argument);
    CHECK_THROWS_AS(r.addCollector("kdp_version", "Clash.", Type::Gauge,
                                   std::function<double()>([] { return 0.0; })),
                    std::invalid_argument);
  }
  CHECK(r.renderPrometheus().empty());
  CHECK_FALSE(r.has("kdp_objects"));
}

TEST_CASE("metrics: invalid names and type clashes are refused", "[metrics]") {
  Registry r;
  CHECK_THROWS_AS(r.counter("1abc", "x"), std::invalid_argument);
  CHECK_THROWS_AS(r.counter("a-b", "x"), std::invalid_argument);
  CHECK_THROWS_AS(r.counter("ok", "x", {{"bad-label", "v"}}), std::invalid_argument);
  CHECK_THROWS_AS(r.counter("ok", "x", {{"__reserved", "v"}}), std::invalid_argument);
  CHECK_THROWS_AS(r.counter("ok", "x", {{"a", "1"}, {"a", "2"}}), std::invalid_argument);
  CHECK_THROWS_AS(r.histogram("h", "x", {1, 2}, {{"le", "1"}}), std::invalid_argument);
  CHECK_THROWS_AS(r.histogram("h", "x", {2, 1}), std::invalid_argument);
  r.counter("kdp_c_total", "c");
  CHECK_THROWS_AS(r.gauge("kdp_c_total", "c"), std::invalid_argument);
  CHECK_NOTHROW(r.counter("ns:sub_total", "colons are allowed"));
}

TEST_CASE("metrics: concurrent increments are not lost", "[metrics]") {
  Registry r;
  auto& c = r.counter("kdp_n_total", "n");
  auto& g = r.gauge("kdp_g", "g");
  auto& h = r.histogram("kdp_h", "h", {1});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c.inc();
        g.add(1);
        h.observe(0.5);
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  CHECK(c.value() == 40000);
  CHECK(g.value() == 40000);
  const auto d = h.collect();
  CHECK(d.count() == 40000);
  CHECK(d.cumulative[0] == 40000);
  CHECK(d.sum == 20000);
}

TEST_CASE("metrics: process figures and build info", "[metrics]") {
  Registry r;
  kdp::metrics::registerProcessMetrics(r);
  kdp::metrics::registerProcessMetrics(r);  // idempotent
  const auto text = r.renderPrometheus();
  auto valueOf = [&](const std::string& series) {
    const auto pos = text.find("\n" + series + " ");
    REQUIRE(pos != std::string::npos);
    return std::stod(text.substr(pos + series.size() + 2));
  };
  CHECK(valueOf("process_resident_memory_bytes") > 0);
  CHECK(valueOf("process_virtual_memory_bytes") > 0);
  CHECK(valueOf("process_cpu_seconds_total") >= 0);
  CHECK(valueOf("process_start_time_seconds") > 1.5e9);
  CHECK(valueOf("process_open_fds") >= 3);
  CHECK(valueOf("process_max_fds") > 0);
  CHECK(text.find("# TYPE process_cpu_seconds_total counter\n") != std::string::npos);
  CHECK(text.find(std::string("kube_dataplane_build_info{version=\"") + kdp::kVersion +
                  "\"} 1\n") != std::string::npos);
}
