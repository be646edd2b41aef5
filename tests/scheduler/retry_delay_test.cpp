#include "scheduler/retry_delay.h"

#include <cstdint>
#include <set>
#include <string>

#include "test_util.h"

using namespace factory::scheduler;

namespace {

const RetryKey kKey = {"software_factory_pipeline", "generate_code", "2026-01-01T00:00:00+00:00"};

RetrySpec backoff(int64_t delay_ms, std::optional<int64_t> max_ms = std::nullopt) {
  RetrySpec s;
  s.retries = 10;
  s.retry_delay_ms = delay_ms;
  s.exponential_backoff = true;
  s.max_retry_delay_ms = max_ms;
  return s;
}

}  // namespace

TEST_CASE("retries: a task runs at most retries + 1 times", "[scheduler]") {
  RetrySpec s;
  s.retries = 2;
  CHECK(should_retry(s, 1));
  CHECK(should_retry(s, 2));
  CHECK_FALSE(should_retry(s, 3));
  s.retries = 0;
  CHECK_FALSE(should_retry(s, 1));
}

TEST_CASE("without backoff the delay is constant and uncapped, as in Airflow", "[scheduler]") {
  RetrySpec s;
  s.retries = 2;
  s.retry_delay_ms = 300'000;    // the article's 5 minutes
  s.max_retry_delay_ms = 1'000;  // Airflow applies max_retry_delay only to backoff
  for (int n = 1; n <= 5; ++n) CHECK(next_retry_delay_ms(s, kKey, n) == 300'000);
  s.retry_delay_ms = 0;
  CHECK(next_retry_delay_ms(s, kKey, 1) == 0);
}

TEST_CASE("exponential backoff follows Airflow's formula in milliseconds", "[scheduler]") {
  CHECK(retry_hash_input(kKey, 3) ==
        "software_factory_pipeline#generate_code#2026-01-01T00:00:00+00:00#3");
  // Expected values computed independently with Python:
  //   mb = max(1, ceil(delay_ms * 2**(n-1)))
  //   h = int(hashlib.sha1(f"{dag}#{task}#{date}#{n}".encode()).hexdigest(), 16)
  //   min(mb + h % mb, 86400000, cap)
  struct Row {
    int try_number;
    int64_t uncapped;
    int64_t capped_1h;
  };
  const Row table[] = {
      {1, 440'551, 440'551},      {2, 828'350, 828'350},      {3, 1'787'317, 1'787'317},
      {4, 3'400'265, 3'400'265},  {5, 8'996'969, 3'600'000},  {6, 17'478'475, 3'600'000},
      {7, 27'195'448, 3'600'000}, {8, 64'576'864, 3'600'000},
  };
  for (const Row& r : table) {
    INFO("try " << r.try_number);
    CHECK(next_retry_delay_ms(backoff(300'000), kKey, r.try_number) == r.uncapped);
    CHECK(next_retry_delay_ms(backoff(300'000, 3'600'000), kKey, r.try_number) == r.capped_1h);
  }
  // Tiny and zero delays: min_backoff is at least 1 ms.
  const RetryKey small = {"d", "t", "x"};
  CHECK(next_retry_delay_ms(backoff(0), small, 1) == 1);
  CHECK(next_retry_delay_ms(backoff(1), small, 2) == 3);
  CHECK(next_retry_delay_ms(backoff(1000), small, 1) == 1'456);
  CHECK(next_retry_delay_ms(backoff(1000), small, 2) == 3'049);
  CHECK(next_retry_delay_ms(backoff(1000), small, 3) == 5'644);
}

TEST_CASE("backoff delays stay between base and twice base and under the caps", "[scheduler]") {
  for (int n = 1; n <= 12; ++n) {
    const int64_t base = 1000LL << (n - 1);
    for (int i = 0; i < 50; ++i) {
      std::string date = "2026-01-01T00:00:" + std::to_string(i);
      int64_t d = next_retry_delay_ms(backoff(1000), {"d", "t", date}, n);
      INFO("try " << n << " date " << date);
      CHECK(d >= base);
      CHECK(d < 2 * base);
    }
  }
  // The 24 h ceiling (Airflow's max_task_retry_delay) holds for any try number, without
  // overflow, and max_retry_delay lowers it.
  for (int n : {17, 18, 30, 62, 63, 64, 1000, 1 << 30}) {
    INFO("try " << n);
    CHECK(next_retry_delay_ms(backoff(300'000), kKey, n) == kMaxRetryDelayMs);
    CHECK(next_retry_delay_ms(backoff(300'000, 60'000), kKey, n) == 60'000);
  }
  // Try numbers below 1 count as 1.
  CHECK(next_retry_delay_ms(backoff(300'000), kKey, 0) ==
        next_retry_delay_ms(backoff(300'000), kKey, 1));
  // A zero max_retry_delay means no cap, as Airflow's `if max_retry_delay:` reads it.
  CHECK(next_retry_delay_ms(backoff(300'000, 0), kKey, 8) == 64'576'864);
}

TEST_CASE("the jitter is deterministic per task try and spreads tasks apart", "[scheduler]") {
  const RetrySpec s = backoff(60'000);
  const int64_t first = next_retry_delay_ms(s, kKey, 2);
  for (int i = 0; i < 3; ++i) CHECK(next_retry_delay_ms(s, kKey, 2) == first);
  // Tasks that failed together (same run, same try) get different delays.
  std::set<int64_t> delays;
  for (int i = 0; i < 20; ++i) {
    delays.insert(
        next_retry_delay_ms(s, {kKey.dag_id, "task" + std::to_string(i), kKey.logical_date}, 2));
  }
  CHECK(delays.size() == 20);
  // Another run's logical date changes it too.
  CHECK(next_retry_delay_ms(s, {kKey.dag_id, kKey.task_id, "2026-01-02T00:00:00+00:00"}, 2) !=
        first);
}
