#include "cli/run_checks.h"

#include <algorithm>

#include "cli/dag_support.h"

namespace factory::cli {

Result<FailOn> parse_fail_on(const std::vector<std::string>& items) {
  FailOn out;
  for (const std::string& list : items) {
    size_t start = 0;
    for (;;) {
      size_t comma = list.find(',', start);
      std::string item = list.substr(start, comma == std::string::npos ? comma : comma - start);
      if (item == "dlq") {
        out.dlq = true;
      } else if (item == "failed-run") {
        out.failed_run = true;
      } else {
        std::string hint = item.find("run") != std::string::npos  ? "; did you mean 'failed-run'?"
                           : item.find("dl") != std::string::npos ? "; did you mean 'dlq'?"
                                                                  : "";
        return Status::invalid_argument("--fail-on: unknown check '" + item + "'" + hint +
                                        " (checks: dlq, failed-run)");
      }
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  return out;
}

std::vector<DeadLetters> dead_letters_since_start(Host* host) {
  std::vector<DeadLetters> out;
  if (!host->engine()) return out;
  for (const runtime::BindingStats& s : host->engine()->stats()) {
    if (s.dead_lettered == 0) continue;
    auto binding = std::find_if(host->bindings().begin(), host->bindings().end(),
                                [&](const runtime::Binding& b) { return b.name == s.binding; });
    std::string topic =
        binding != host->bindings().end() ? binding->dead_letter_topic : s.binding + ".dlq?";
    auto same = std::find_if(out.begin(), out.end(),
                             [&](const DeadLetters& d) { return d.topic == topic; });
    if (same == out.end()) same = out.insert(out.end(), DeadLetters{.topic = topic});
    same->count += s.dead_lettered;
    same->bindings.push_back(s.binding);
  }
  return out;
}

Result<std::vector<FailedRun>> failed_runs_since(Host* host, int64_t since_ms) {
  auto runs = host->store()->list_runs({});
  if (!runs.ok()) return runs.status();
  std::vector<FailedRun> out;
  for (const store::RunRow& r : *runs) {
    if (r.state != "failed" || r.ended_ms < since_ms) continue;
    FailedRun f{.dag_id = r.dag_id, .run_id = r.run_id};
    auto tasks = host->store()->list_tasks(r.run_id);
    if (!tasks.ok()) return tasks.status();
    for (const store::TaskRow& t : *tasks) {
      if (t.state != "failed") continue;
      f.task_id = t.task_id;
      f.error = t.error;
      break;
    }
    out.push_back(std::move(f));
  }
  // list_runs is newest first; report in the order they happened.
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<std::string> fail_on_errors(const FailOn& fail_on,
                                        const std::vector<DeadLetters>& letters,
                                        const std::vector<FailedRun>& runs) {
  std::vector<std::string> out;
  if (fail_on.dlq) {
    for (const DeadLetters& d : letters) {
      std::string bindings;
      for (const std::string& b : d.bindings)
        bindings += (bindings.empty() ? "'" : ", '") + b + "'";
      out.push_back("--fail-on dlq: " + std::to_string(d.count) +
                    (d.count == 1 ? " dead letter" : " dead letters") + " on '" + d.topic +
                    "' (binding " + bindings + "); see them with 'factoryd dlq list " + d.topic +
                    "'");
    }
  }
  if (fail_on.failed_run) {
    for (const FailedRun& r : runs) {
      std::string why;
      if (!r.task_id.empty()) {
        why =
            " (task '" + r.task_id + "'" + (r.error.empty() ? "" : ": " + clip(r.error, 160)) + ")";
      }
      out.push_back("--fail-on failed-run: run '" + r.run_id + "' of DAG '" + r.dag_id +
                    "' failed" + why + "; see it with 'factoryd runs show " + r.run_id + "'");
    }
  }
  return out;
}

}  // namespace factory::cli
