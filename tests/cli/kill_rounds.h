// kill -9 rounds for crash tests of `factoryd run`: start the real binary, let it make a random
// amount of progress (as counted by the caller, e.g. lines of a side-effect file), kill -9 it,
// repeat. Header-only; one thread drives it.
#pragma once

#include <signal.h>

#include <algorithm>
#include <cstddef>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "cli/run_process.h"
#include "test_util.h"

namespace factory::test {

// Line count of a file (0 when it does not exist yet).
inline size_t count_lines(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return 0;
  size_t n = 0;
  for (int c; (c = std::fgetc(f)) != EOF;) n += c == '\n';
  std::fclose(f);
  return n;
}

// Runs `rounds` rounds of: spawn factoryd with `args`; wait until progress() has grown by a
// random 1..max_step (a quarter of the rounds: by nothing, a kill right after start), capped at
// `total`; kill -9. Returns how many rounds were killed before progress reached `total`.
inline int kill_at_random_progress(const std::vector<std::string>& args,
                                   const std::function<size_t()>& progress, size_t total,
                                   size_t max_step, int rounds, std::mt19937_64& rng) {
  int killed_mid_way = 0;
  for (int round = 0; round < rounds; ++round) {
    INFO("round " << round);
    // Capped: once everything has run there is nothing left to wait for.
    size_t target = std::min(progress() + (rng() % 4 == 0 ? 0 : 1 + rng() % max_step), total);
    auto p = spawn_factoryd(args);
    bool reached = eventually([&] { return progress() >= target; }, 60'000);
    p.kill(SIGKILL);
    auto r = p.wait();
    INFO(r.err.substr(r.err.size() > 3000 ? r.err.size() - 3000 : 0));
    REQUIRE(reached);
    REQUIRE(r.term_signal == SIGKILL);
    if (progress() < total) ++killed_mid_way;
  }
  return killed_mid_way;
}

}  // namespace factory::test
