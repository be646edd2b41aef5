#include "obs/metrics.h"

#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "obs/exposition_check.h"
#include "test_util.h"

using namespace factory;

namespace {

constexpr double kTwoBounds[] = {0.5, 1};

// The first error the validator reports for `text`, or "" when it accepts it.
std::string first_error(std::string_view text) {
  test::Exposition e = test::parse_exposition(text);
  return e.errors.empty() ? "" : e.errors.front();
}

}  // namespace

TEST_CASE("counters, gauges and histograms render in the 0.0.4 text format", "[obs][metrics]") {
  obs::Registry r;
  auto& events = r.counter("factory_test_events_total", "Events seen.", {"topic"});
  events.labels({"b\"\\\n"})->inc();
  events.labels({"a"})->inc(3);
  r.gauge("factory_test_level", "A level\\with a backslash\nand a newline.").get()->set(-1.5);
  auto& h = r.histogram("factory_test_duration_seconds", "How long.", {"stage"}, kTwoBounds);
  obs::Histogram* s = h.labels({"s"});
  s->observe(0.25);
  s->observe(0.5);  // on a bound: "less than or equal" puts it in le="0.5"
  s->observe(4);
  s->observe(std::nan(""));  // ignored
  r.counter("factory_test_unused_total", "Never incremented, labelled: not shown.", {"x"});

  const std::string text = r.render();
  CHECK(text ==
        "# HELP factory_test_duration_seconds How long.\n"
        "# TYPE factory_test_duration_seconds histogram\n"
        "factory_test_duration_seconds_bucket{stage=\"s\",le=\"0.5\"} 2\n"
        "factory_test_duration_seconds_bucket{stage=\"s\",le=\"1\"} 2\n"
        "factory_test_duration_seconds_bucket{stage=\"s\",le=\"+Inf\"} 3\n"
        "factory_test_duration_seconds_sum{stage=\"s\"} 4.75\n"
        "factory_test_duration_seconds_count{stage=\"s\"} 3\n"
        "# HELP factory_test_events_total Events seen.\n"
        "# TYPE factory_test_events_total counter\n"
        "factory_test_events_total{topic=\"a\"} 3\n"
        "factory_test_events_total{topic=\"b\\\"\\\\\\n\"} 1\n"
        "# HELP factory_test_level A level\\\\with a backslash\\nand a newline.\n"
        "# TYPE factory_test_level gauge\n"
        "factory_test_level -1.5\n");
  test::Exposition e = test::parse_exposition(text);
  INFO(e.error_text());
  REQUIRE(e.ok());
  CHECK(e.value("factory_test_events_total", {{"topic", "b\"\\\n"}}) == 1);
  CHECK(e.help["factory_test_level"] == "A level\\with a backslash\nand a newline.");
  CHECK(test::check_factory_conventions(e).empty());
}

TEST_CASE("values use the shortest round-trip form", "[obs][metrics]") {
  CHECK(obs::format_value(1) == "1");
  CHECK(obs::format_value(0.005) == "0.005");
  CHECK(obs::format_value(1764320400.123) == "1764320400.123");
  CHECK(obs::format_value(-2.5) == "-2.5");
  CHECK(obs::format_value(HUGE_VAL) == "+Inf");
  CHECK(obs::format_value(-HUGE_VAL) == "-Inf");
  CHECK(obs::format_value(std::nan("")) == "NaN");
  CHECK(obs::format_value(9007199254740992.0) == "9007199254740992");
}

TEST_CASE("a family registered twice is the same family, unlabelled metrics start at 0",
          "[obs][metrics]") {
  obs::Registry r;
  auto& a = r.counter("factory_test_x_total", "X.", {"k"});
  auto& b = r.counter("factory_test_x_total", "X again.", {"k"});
  CHECK(&a == &b);
  CHECK(a.labels({"v"}) == b.labels({"v"}));
  auto& hist = r.histogram("factory_test_h_seconds", "H.", {});
  CHECK(&hist == &r.histogram("factory_test_h_seconds", "H.", {}));
  r.gauge("factory_test_up", "Up.");
  test::Exposition e = test::parse_exposition(r.render());
  INFO(e.error_text());
  REQUIRE(e.ok());
  CHECK(e.value("factory_test_up") == 0);
  CHECK(e.value("factory_test_h_seconds_count") == 0);
  CHECK(e.value("factory_test_h_seconds_bucket", {{"le", "+Inf"}}) == 0);
  CHECK(e.value("factory_test_x_total", {{"k", "v"}}) == 0);
}

TEST_CASE("concurrent increments sum exactly", "[obs][metrics]") {
  obs::Registry r;
  auto& counter = r.counter("factory_test_ops_total", "Ops.", {"shard"});
  auto& gauge = r.gauge("factory_test_sum", "Sum.");
  auto& hist = r.histogram("factory_test_lat_seconds", "Lat.", {"shard"}, kTwoBounds);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 20000;
  std::vector<std::thread> threads;
  std::atomic<bool> done{false};
  // A scraper renders while the others record; every render must be valid on its own.
  std::vector<std::string> scrape_errors;
  std::thread scraper([&] {
    while (!done.load()) {
      test::Exposition e = test::parse_exposition(r.render());
      if (!e.ok()) scrape_errors.push_back(e.error_text());
    }
  });
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Children are created concurrently too: four shards shared by eight threads.
      const std::string shard = std::to_string(t % 4);
      obs::Counter* c = counter.labels({shard});
      obs::Histogram* h = hist.labels({shard});
      obs::Gauge* g = gauge.get();
      for (int i = 0; i < kPerThread; ++i) {
        c->inc();
        g->add(1);
        h->observe(i % 2 == 0 ? 0.25 : 2.0);
      }
    });
  }
  for (auto& t : threads) t.join();
  done = true;
  scraper.join();
  CHECK(scrape_errors.empty());

  test::Exposition e = test::parse_exposition(r.render());
  INFO(e.error_text());
  REQUIRE(e.ok());
  double total = 0;
  for (const auto* s : e.all("factory_test_ops_total")) total += s->value;
  CHECK(e.all("factory_test_ops_total").size() == 4);
  CHECK(total == kThreads * kPerThread);
  CHECK(gauge.get()->value() == kThreads * kPerThread);
  for (int shard = 0; shard < 4; ++shard) {
    const std::string sh = std::to_string(shard);
    const double per_shard = 2.0 * kPerThread;
    CHECK(e.value("factory_test_lat_seconds_count", {{"shard", sh}}) == per_shard);
    CHECK(e.value("factory_test_lat_seconds_bucket", {{"shard", sh}, {"le", "0.5"}}) ==
          per_shard / 2);
    CHECK(e.value("factory_test_lat_seconds_sum", {{"shard", sh}}) ==
          per_shard / 2 * 0.25 + per_shard / 2 * 2.0);
  }
}

TEST_CASE("collectors write families at scrape time until removed", "[obs][metrics]") {
  obs::Registry r;
  r.counter("factory_test_a_total", "A.").get()->inc(2);
  int calls = 0;
  uint64_t id = r.add_collector([&](obs::Writer& w) {
    ++calls;
    w.family("factory_test_end_offset", "End.", obs::MetricType::kGauge);
    w.sample({{"topic", "t"}, {"partition", "0"}}, 7);
    w.sample({{"topic", "t"}, {"partition", "1"}}, 9);
    // Another type under a registered name: dropped, not rendered as a broken document.
    w.family("factory_test_a_total", "A.", obs::MetricType::kGauge);
    w.sample({}, 100);
  });
  std::string text = r.render([](obs::Writer& w) {
    w.family("factory_build_info", "Build.", obs::MetricType::kGauge);
    w.sample({{"version", "0.1.0"}}, 1);
  });
  CHECK(calls == 1);
  test::Exposition e = test::parse_exposition(text);
  INFO(text);
  INFO(e.error_text());
  REQUIRE(e.ok());
  CHECK(e.value("factory_test_end_offset", {{"topic", "t"}, {"partition", "1"}}) == 9);
  CHECK(e.value("factory_test_a_total") == 2);
  CHECK(e.all("factory_test_a_total").size() == 1);
  CHECK(e.value("factory_build_info", {{"version", "0.1.0"}}) == 1);
  CHECK(e.types["factory_test_end_offset"] == "gauge");

  r.remove_collector(id);
  e = test::parse_exposition(r.render());
  CHECK(calls == 1);
  CHECK_FALSE(e.value("factory_test_end_offset", {{"topic", "t"}, {"partition", "0"}}));
}

TEST_CASE("the default registry is one per process", "[obs][metrics]") {
  CHECK(&obs::default_registry() == &obs::default_registry());
}

TEST_CASE("names are checked", "[obs][metrics]") {
  CHECK(obs::valid_metric_name("factory_log_appends_total"));
  CHECK(obs::valid_metric_name("a:b_c9"));
  CHECK_FALSE(obs::valid_metric_name("9a"));
  CHECK_FALSE(obs::valid_metric_name("a-b"));
  CHECK_FALSE(obs::valid_metric_name(""));
  CHECK(obs::valid_label_name("topic"));
  CHECK_FALSE(obs::valid_label_name("__name__"));
  CHECK_FALSE(obs::valid_label_name("a:b"));
  CHECK_FALSE(obs::valid_label_name("1a"));
}

TEST_CASE("the exposition validator rejects what Prometheus would", "[obs][metrics]") {
  // Accepted: comments, blank lines, timestamps, trailing comma-free labels, special values.
  CHECK(first_error("# a comment\n\n# TYPE x gauge\nx{a=\"1\"} NaN 1700000000000\nx 1e-05\n") ==
        "");
  CHECK(first_error("untyped_metric -Inf\n") == "");

  struct Bad {
    const char* text;
    const char* error;
  };
  const Bad bad[] = {
      {"1abc 1\n", "invalid metric name"},
      {"x 1", "does not end with a newline"},
      {"x{a=\"\\q\"} 1\n", "invalid escape"},
      {"x{a=\"open} 1\n", "not terminated"},
      {"x{__a=\"1\"} 1\n", "invalid label name"},
      {"x{a=\"1\",a=\"2\"} 1\n", "repeated"},
      {"x{a=\"\xff\"} 1\n", "UTF-8"},
      {"x{a=1} 1\n", "not followed by =\""},
      {"x 1.2.3\n", "not a float"},
      {"x\n", "expected a space and a value"},
      {"x 1 12.5\n", "timestamp"},
      {"x 1\nx 2\n", "duplicate series"},
      {"# TYPE c counter\nc -1\n", "negative"},
      {"# HELP x bad \\t escape\n", "escape other than"},
      {"# TYPE x gauge\n# TYPE x gauge\n", "second TYPE"},
      {"# TYPE x nonsense\n", "unknown type"},
      {"x 1\n# TYPE x gauge\n", "after its samples"},
      {"a 1\nb 1\na{l=\"2\"} 1\n", "interleaved"},
      {"# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"2\"} 1\n"
       "h_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 2\n",
       "counts decrease"},
      {"# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\n"
       "h_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
       "not increasing"},
      {"# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n",
       "differs from _count"},
      {"# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n", "+Inf"},
      {"# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n", "no _sum"},
      {"# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\n", "no _count"},
      {"# TYPE h histogram\nh_bucket{le=\"x\"} 1\n", "not a float"},
      {"# TYPE h histogram\nh_bucket 1\n", "without an le"},
      {"# TYPE h histogram\nh 1\n", "only _bucket"},
  };
  for (const Bad& b : bad) {
    INFO(b.text);
    std::string err = first_error(b.text);
    CHECK(err.find(b.error) != std::string::npos);
  }
}

TEST_CASE("factoryd's naming conventions are checked", "[obs][metrics]") {
  test::Exposition e = test::parse_exposition(
      "# TYPE factory_x counter\nfactory_x 1\n"
      "# TYPE factory_y_total gauge\nfactory_y_total 1\n"
      "# TYPE other_total counter\nother_total 1\n"
      "# TYPE factory_run_duration_ms gauge\nfactory_run_duration_ms 1\n"
      "# TYPE factory_z gauge\nfactory_z{run_id=\"r1\"} 1\n");
  REQUIRE(e.ok());
  std::vector<std::string> v = test::check_factory_conventions(e);
  std::string all;
  for (const auto& s : v) all += s + "\n";
  INFO(all);
  CHECK(v.size() == 5);
  CHECK(all.find("factory_x: a counter must end in _total") != std::string::npos);
  CHECK(all.find("factory_y_total: only counters") != std::string::npos);
  CHECK(all.find("other_total: no factory_ prefix") != std::string::npos);
  CHECK(all.find("factory_run_duration_ms: a duration") != std::string::npos);
  CHECK(all.find("unbounded label 'run_id'") != std::string::npos);
}
