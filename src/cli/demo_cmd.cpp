// factoryd demo [--data-dir DIR] [--config-dir DIR | --config FILE] [--samples DIR] [--interactive]
//               [--serve]
//               [--interval-ms MS] [--timeout-ms MS] [-o table|json]
//
// The software factory end to end, offline: opens a fresh data dir (a temporary one unless
// --data-dir), loads the bundled config (topics, the software_factory DAG and its stages),
// submits every sample ticket of config/samples/tickets/ to jira-events as a webhook would (one
// every --interval-ms, 500 by default: a stream of tickets; 0 sends them as one burst), shows
// each ticket's progress (the task it is in; redrawn in place on a terminal, one line per change
// otherwise, on stderr), and ends with a summary on stdout: each ticket's outcome, the
// per-stage counts and p50/p99 durations, ticket -> deploy latency, gate failures, dead
// letters and where the generated repository and releases are. The codegen provider is the
// DAG's (`template`: deterministic and offline). Approval is automatic (the DAG's auto_approve
// default is set to true) unless --interactive, which asks on the terminal for each one.
// --serve then keeps the daemon and its HTTP API running (until SIGTERM/SIGINT) to explore; from
// the start, <data-dir>/daemon.json points CLI commands on the data dir at it (serve_api.h).
//
// Exit 0 when every ticket reached its expected outcome (deployed or human-review, as
// config/samples/tickets/README.md lists them) within --timeout-ms, 1 otherwise (a ticket
// failed, rolled back, or reached no outcome). --interactive without a terminal on stdin is a
// usage error (2): nobody could answer, and every deployment would be rejected.
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>

#include "base/file.h"
#include "cli/common.h"
#include "cli/factory_config.h"
#include "cli/host.h"
#include "cli/serve_api.h"
#include "obs/logger.h"

namespace factory::cli {
namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kDag = "software_factory";
constexpr std::string_view kTopic = "jira-events";

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// One submitted sample ticket and what became of it.
struct Ticket {
  std::string file;     // "01-jira-wiki-csv-export.json"
  std::string run_id;   // "topic__jira-events_<partition>_<offset>"
  std::string id;       // the ticket id once ingested ("" before)
  std::string stage;    // the task it is in now
  std::string outcome;  // "" while running; deployed | human-review | rolled-back | failed
  std::string detail;   // the reason, or "round N, release R"
  int tasks_done = 0;
  int64_t submitted_ms = 0;
  int64_t finished_ms = 0;
  int64_t deployed_ms = 0;  // when deploy ended (0: not deployed)
  int gate_failures = 0;
  bool shown_pending = false;
};

json::value parse_or_null(const std::string& text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  return ec ? json::value() : v;
}

std::string str_at(const json::value& v, std::initializer_list<std::string_view> path) {
  const json::value* cur = &v;
  for (std::string_view key : path) {
    if (!cur->is_object()) return "";
    cur = cur->as_object().if_contains(key);
    if (!cur) return "";
  }
  if (cur->is_string()) return std::string(cur->as_string());
  if (cur->is_int64()) return std::to_string(cur->as_int64());
  return "";
}

// The run a record on jira-events starts (the scheduler's topic-trigger run id).
std::string run_id_for(int32_t partition, int64_t offset) {
  return fmt::format("topic__{}_{}_{}", kTopic, partition, offset);
}

struct Submitted {
  std::string run_id;
  int64_t at_ms = 0;  // the record's timestamp: when the ticket arrived
};

// Appends the sample ticket at `path` to jira-events, keyed by its file name's stem, and notes
// its run and arrival in *t.
Status submit(Log* log, const std::filesystem::path& path, Ticket* t) {
  std::string text;
  if (Status s = base::read_file(path.string(), "sample ticket", &text); !s.ok()) return s;
  ProducerRecord rec;
  rec.key = path.stem().string();
  rec.value = std::move(text);
  t->submitted_ms = wall_ms();
  auto acked = log->append(kTopic, std::vector<ProducerRecord>{rec});
  if (!acked.ok()) return acked.status();
  const RecordPosition& where = acked->front();
  t->run_id = run_id_for(where.partition, where.offset.value());
  return Status();
}

// key -> the run of each record already on jira-events.
std::map<std::string, Submitted> submitted_runs(Log* log) {
  std::map<std::string, Submitted> out;
  auto info = log->describe_topic(kTopic);
  if (!info.ok()) return out;
  for (const auto& p : info->partitions) {
    Offset from = p.log_start;
    while (from < p.log_end) {
      auto fetched = log->read(kTopic, p.partition, from, {});
      if (!fetched.ok() || fetched->records.empty()) break;
      for (const Record& r : fetched->records) {
        if (r.key) {
          out.emplace(*r.key, Submitted{run_id_for(r.partition, r.offset.value()), r.timestamp_ms});
        }
        from = Offset(r.offset.value() + 1);
      }
    }
  }
  return out;
}

bool finished_state(std::string_view s) {
  return s == "success" || s == "failed" || s == "cancelled";
}

// Reads the run's task instances and decides where the ticket is (and, once the run ended,
// its outcome).
void update(Ticket* t, const store::RunRow& run, const std::vector<store::TaskRow>& tasks) {
  std::map<std::string, const store::TaskRow*> by_id;
  for (const auto& row : tasks) by_id[row.task_id] = &row;
  t->tasks_done = 0;
  t->gate_failures = 0;
  std::string current;
  for (const auto& row : tasks) {
    if (finished_state(row.state) || row.state == "skipped" || row.state == "upstream_failed") {
      ++t->tasks_done;
    } else if (row.state == "running" || row.state == "queued" ||
               row.state == "awaiting_approval" || row.state == "up_for_retry") {
      current = row.task_id + (row.state == "awaiting_approval" ? " (awaiting approval)" : "");
    }
    if (row.task_id.rfind("gate_", 0) == 0 && row.state == "success") {
      json::value out = parse_or_null(row.output_json);
      if (out.is_object() && out.as_object().contains("gate_passed") &&
          !out.at("gate_passed").as_bool()) {
        ++t->gate_failures;
      }
    }
  }
  if (auto it = by_id.find("ingest"); it != by_id.end() && it->second->state == "success") {
    t->id = str_at(parse_or_null(it->second->output_json), {"id"});
  }
  t->stage = current;
  if (!finished_state(run.state)) return;
  t->finished_ms = run.ended_ms;
  auto state = [&](const char* id) {
    auto it = by_id.find(id);
    return it == by_id.end() ? std::string() : it->second->state;
  };
  if (state("deploy") == "success") {
    json::value d = parse_or_null(by_id["deploy"]->output_json);
    std::string status = str_at(d, {"status"});
    t->outcome = status == "deployed" ? "deployed" : status.empty() ? "deployed" : status;
    if (t->outcome == "rolled_back") t->outcome = "rolled-back";
    t->deployed_ms = by_id["deploy"]->ended_ms;
    t->detail = fmt::format("round {}, release {}", t->gate_failures + 1, str_at(d, {"release"}));
    return;
  }
  if (state("human_review") == "success") {
    t->outcome = "human-review";
    t->detail = fmt::format("the quality gate failed {} rounds", t->gate_failures);
    return;
  }
  for (const auto& row : tasks) {
    if (row.state != "failed") continue;
    constexpr std::string_view kRouted = "routed to human-review: ";
    if (row.error.rfind(kRouted, 0) == 0) {
      t->outcome = "human-review";
      t->detail = row.error.substr(kRouted.size());
    } else {
      t->outcome = "failed";
      t->detail = row.task_id + ": " + row.error;
    }
    return;
  }
  t->outcome = run.state == "success" ? "done" : run.state;
  t->detail = "no deployment";
}

// p-th percentile (0..100) of `v` by nearest rank; 0 for none.
int64_t percentile(std::vector<int64_t> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

class Progress {
 public:
  explicit Progress(bool tty) : tty_(tty) {}

  void show(const std::vector<Ticket>& tickets, int total_tasks) {
    if (tty_) {
      std::string out;
      if (drawn_ > 0) out += fmt::format("\x1b[{}F", drawn_);  // back to the first line
      for (const Ticket& t : tickets) {
        int width = 24;
        int filled = total_tasks ? std::min(width, t.tasks_done * width / total_tasks) : 0;
        if (!t.outcome.empty()) filled = width;
        out += fmt::format("\x1b[2K{:<34} [{}{}] {}\n", label(t), std::string(filled, '#'),
                           std::string(width - filled, '.'),
                           t.outcome.empty() ? t.stage : t.outcome + ": " + t.detail);
      }
      drawn_ = static_cast<int>(tickets.size());
      std::fputs(out.c_str(), stderr);
      return;
    }
    for (const Ticket& t : tickets) {
      std::string now = t.outcome.empty() ? t.stage : t.outcome + ": " + t.detail;
      std::string& before = last_[t.run_id];
      if (now.empty() || now == before) continue;
      before = now;
      std::fprintf(stderr, "%-34s %s\n", label(t).c_str(), now.c_str());
    }
  }

 private:
  static std::string label(const Ticket& t) { return t.id.empty() ? t.file : t.id; }
  bool tty_;
  int drawn_ = 0;
  std::map<std::string, std::string> last_;
};

class Demo : public Command {
 public:
  explicit Demo(const CommonOptions* common) : common_(common) {}
  std::string data_dir;
  std::string config_dir = "config";
  std::string samples_dir = "config/samples/tickets";
  bool interactive = false;
  bool serve = false;
  std::string listen = "127.0.0.1:7070";
  int64_t timeout_ms = 120'000;
  int64_t interval_ms = 500;  // between two submissions: tickets arrive as a stream

  int run() override {
    if (!std::getenv("FACTORY_LOG_LEVEL")) obs::set_min_level(obs::Level::kWarn);
    std::vector<std::filesystem::path> samples;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(samples_dir, ec)) {
      if (e.path().extension() == ".json") samples.push_back(e.path());
    }
    if (ec || samples.empty()) {
      return usage_error(fmt::format("no sample tickets (*.json) in '{}'", samples_dir),
                         "run from the repository root or pass --samples DIR");
    }
    std::sort(samples.begin(), samples.end());
    if (data_dir.empty()) {
      std::string tmpl = (std::filesystem::temp_directory_path() / "factoryd-demo.XXXXXX");
      if (!::mkdtemp(tmpl.data())) {
        return runtime_error("cannot create a temporary data dir", "pass --data-dir DIR");
      }
      data_dir = tmpl;
    }

    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    CommonOptions common = *common_;
    common.data_dir = data_dir;
    bool auto_approve = !interactive;
    HostOptions options{.config_dir = config_dir,
                        .background_retention = true,
                        .start_workers = true,
                        .start_scheduler = true};
    options.adjust_dags = [auto_approve](std::vector<scheduler::Dag>* dags) {
      for (scheduler::Dag& d : *dags) {
        if (d.dag_id != kDag) continue;
        json::value defaults = parse_or_null(d.params_defaults);
        if (!defaults.is_object()) defaults = json::object();
        defaults.as_object()["auto_approve"] = auto_approve;
        d.params_defaults = json::serialize(defaults);
      }
    };
    auto start = Clock::now();
    auto host = Host::open(common, options);
    if (!host) return kExitRuntime;
    host_ = host.get();
    bool has_dag = false;
    for (const auto& d : host->scheduler()->dags()) has_dag = has_dag || d.dag_id == kDag;
    if (!has_dag) {
      return runtime_error(fmt::format("no DAG '{}' in {}/dags", kDag, config_dir),
                           "run from the repository root or pass --config-dir");
    }
    std::unique_ptr<ApiServer> api;
    if (serve) {
      api = start_api_server(host.get(), data_dir, config_dir, listen);
      if (!api) return kExitRuntime;
    }
    int64_t total_tasks = 0;
    for (const auto& d : host->scheduler()->dags()) {
      if (d.dag_id == kDag) total_tasks = static_cast<int64_t>(d.tasks.size());
    }
    std::fprintf(stderr, "factoryd demo: %zu sample tickets -> %s (data dir %s)\n", samples.size(),
                 std::string(kTopic).c_str(), data_dir.c_str());

    // Submit every sample as a webhook would: one record on jira-events each, keyed by its file
    // name, one every `interval_ms` while the earlier ones run, so the progress shows from the
    // first. A demo restarted on the same data dir (after a crash) finds the ones it sent there
    // and does not submit them again: each ticket is one run, whatever happens to the process.
    std::map<std::string, Submitted> submitted = submitted_runs(host->log());
    std::vector<Ticket> tickets;
    size_t next = 0;                  // the next sample to submit
    auto next_submit = Clock::now();  // when it is due
    Progress progress(::isatty(2) == 1);
    auto deadline = start + std::chrono::milliseconds(timeout_ms);
    bool interrupted = false;
    for (;;) {
      while (next < samples.size()) {
        const std::filesystem::path& path = samples[next];
        auto earlier = submitted.find(path.stem().string());
        if (earlier == submitted.end() && Clock::now() < next_submit) break;
        Ticket t;
        t.file = path.filename().string();
        if (earlier != submitted.end()) {
          t.run_id = earlier->second.run_id;
          t.submitted_ms = earlier->second.at_ms;  // measured from the first arrival
        } else {
          if (Status s = submit(host->log(), path, &t); !s.ok()) {
            return status_error("cannot submit " + t.file, s, "");
          }
          next_submit = Clock::now() + std::chrono::milliseconds(interval_ms);
        }
        tickets.push_back(std::move(t));
        ++next;
      }
      bool all_done = next == samples.size();
      for (Ticket& t : tickets) {
        if (!t.outcome.empty()) continue;
        auto run = host->store()->get_run(t.run_id);
        if (!run.ok()) {  // the scheduler has not read the record yet
          all_done = false;
          continue;
        }
        auto tasks = host->store()->list_tasks(t.run_id);
        if (tasks.ok()) update(&t, *run, *tasks);
        if (t.outcome.empty()) all_done = false;
        if (interactive && t.stage.find("awaiting approval") != std::string::npos) {
          ask(&t);
        }
      }
      progress.show(tickets, static_cast<int>(total_tasks));
      if (all_done || Clock::now() > deadline) break;
      auto wake = Clock::now() + std::chrono::milliseconds(100);
      if (next < samples.size()) wake = std::min(wake, next_submit);
      auto wait_ns = std::max<int64_t>(
          0, std::chrono::duration_cast<std::chrono::nanoseconds>(wake - Clock::now()).count());
      timespec tick{static_cast<time_t>(wait_ns / 1'000'000'000),
                    static_cast<long>(wait_ns % 1'000'000'000)};
      int sig = sigtimedwait(&stop_signals, nullptr, &tick);
      if (sig == SIGTERM || sig == SIGINT) {
        interrupted = true;
        break;
      }
    }
    int64_t took_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
    size_t finished = static_cast<size_t>(std::count_if(
        tickets.begin(), tickets.end(), [](const Ticket& t) { return !t.outcome.empty(); }));
    bool complete = finished == samples.size();
    print_summary(host.get(), tickets, took_ms, complete);

    if (api && !interrupted) {
      std::fprintf(stderr,
                   "\nfactoryd demo: the daemon keeps running on %s (data dir %s); explore with\n"
                   "  curl %s/api/v1/runs   or   factoryd runs list --data-dir %s\n"
                   "Stop it with Ctrl-C.\n",
                   api->url().c_str(), data_dir.c_str(), api->url().c_str(), data_dir.c_str());
      int sig = 0;
      sigwait(&stop_signals, &sig);
    }
    if (api) api->stop();
    Status s = host->close(25'000);
    host.reset();
    if (!s.ok()) obs::error("drain deadline passed", {{"error", s.to_string()}});
    if (!complete) {
      return runtime_error(fmt::format("{} of {} tickets reached no outcome within {} ms",
                                       samples.size() - finished, samples.size(), timeout_ms),
                           interrupted ? "the demo was interrupted" : "raise --timeout-ms");
    }
    size_t unexpected =
        static_cast<size_t>(std::count_if(tickets.begin(), tickets.end(), [](const Ticket& t) {
          return t.outcome != "deployed" && t.outcome != "human-review";
        }));
    if (unexpected > 0) {
      return runtime_error(
          fmt::format("{} of {} tickets did not reach their expected outcome (deployed or "
                      "human-review)",
                      unexpected, samples.size()),
          "see the OUTCOME and DETAIL columns above");
    }
    return kExitOk;
  }

 private:
  // --interactive: asks once per approval whether to approve it.
  void ask(Ticket* t) {
    if (t->shown_pending) return;
    t->shown_pending = true;
    auto approvals = host_approvals(t->run_id);
    std::fprintf(stderr, "\nApprove the deployment of %s%s? [y/N] ", t->id.c_str(),
                 approvals.c_str());
    std::string answer;
    std::getline(std::cin, answer);
    bool yes = !answer.empty() && (answer[0] == 'y' || answer[0] == 'Y');
    Status s = host_->scheduler()->decide(t->run_id, "approve", yes, "cli:demo",
                                          yes ? "approved in the demo" : "rejected in the demo");
    if (!s.ok()) std::fprintf(stderr, "factoryd demo: %s\n", s.to_string().c_str());
  }
  std::string host_approvals(const std::string& run_id) {
    auto rows = host_->store()->list_approvals("pending");
    if (!rows.ok()) return "";
    for (const auto& a : *rows) {
      if (a.run_id == run_id && !a.bound_to.empty()) {
        return " (commit " + a.bound_to.substr(0, 12) + ")";
      }
    }
    return "";
  }

  void print_summary(Host* host, const std::vector<Ticket>& tickets, int64_t took_ms,
                     bool complete);

  const CommonOptions* common_;
  Host* host_ = nullptr;
};

void Demo::print_summary(Host* host, const std::vector<Ticket>& tickets, int64_t took_ms,
                         bool complete) {
  // task id -> stage, from the DAG.
  std::map<std::string, std::string> stage_of;
  for (const auto& d : host->scheduler()->dags()) {
    if (d.dag_id != kDag) continue;
    for (const auto& task : d.tasks) stage_of[task.id] = task.stage;
  }
  std::map<std::string, std::vector<int64_t>> durations;  // stage -> ms of each finished try
  std::map<std::string, int64_t> failed_tries;
  for (const Ticket& t : tickets) {
    auto tasks = host->store()->list_tasks(t.run_id);
    if (!tasks.ok()) continue;
    for (const auto& row : *tasks) {
      if (row.started_ms == 0 || row.ended_ms == 0) continue;
      std::string stage = stage_of.count(row.task_id) ? stage_of[row.task_id] : row.task_id;
      durations[stage].push_back(row.ended_ms - row.started_ms);
      if (row.state == "failed") ++failed_tries[stage];
    }
  }
  std::vector<int64_t> to_deploy;
  int gate_failures = 0;
  std::map<std::string, int> outcomes;
  for (const Ticket& t : tickets) {
    if (t.deployed_ms > 0) to_deploy.push_back(t.deployed_ms - t.submitted_ms);
    gate_failures += t.gate_failures;
    ++outcomes[t.outcome.empty() ? "unfinished" : t.outcome];
  }
  int64_t dead_letters = 0, human_review = 0;
  for (const std::string& topic : host->log()->list_topics()) {
    bool dlq = topic.size() > 4 && topic.compare(topic.size() - 4, 4, ".dlq") == 0;
    if (!dlq && topic != "human-review") continue;
    auto info = host->log()->describe_topic(topic);
    if (!info.ok()) continue;
    for (const auto& p : info->partitions) {
      (dlq ? dead_letters : human_review) += p.log_end.value() - p.log_start.value();
    }
  }
  std::string factory_dir = data_dir + "/factory";
  std::string repo = factory_dir + "/repos/invoices";
  std::string releases = factory_dir + "/releases/invoices";

  if (common_->json()) {
    json::object o;
    json::array ts;
    for (const Ticket& t : tickets) {
      ts.push_back(json::object{
          {"file", t.file},
          {"ticket", t.id},
          {"run_id", t.run_id},
          {"outcome", t.outcome},
          {"detail", t.detail},
          {"gate_failures", t.gate_failures},
          {"ticket_to_deploy_ms", t.deployed_ms > 0 ? json::value(t.deployed_ms - t.submitted_ms)
                                                    : json::value(nullptr)}});
    }
    o["tickets"] = std::move(ts);
    json::object stages;
    for (const auto& [stage, ms] : durations) {
      stages[stage] = json::object{{"tries", static_cast<int64_t>(ms.size())},
                                   {"failed", failed_tries[stage]},
                                   {"p50_ms", percentile(ms, 50)},
                                   {"p99_ms", percentile(ms, 99)}};
    }
    o["stages"] = std::move(stages);
    o["ticket_to_deploy_ms"] = json::object{{"count", static_cast<int64_t>(to_deploy.size())},
                                            {"p50", percentile(to_deploy, 50)},
                                            {"p99", percentile(to_deploy, 99)}};
    o["gate_failures"] = gate_failures;
    o["dead_letters"] = dead_letters;
    o["human_review_records"] = human_review;
    o["complete"] = complete;
    o["took_ms"] = took_ms;
    o["data_dir"] = data_dir;
    o["repository"] = repo;
    o["releases"] = releases;
    write_stdout(json::serialize(o) + "\n");
    return;
  }
  std::string out = fmt::format("\nfactoryd demo: {} tickets in {:.1f} s\n\n", tickets.size(),
                                static_cast<double>(took_ms) / 1000.0);
  Table outcome_table({"TICKET", "OUTCOME", "DETAIL", "TICKET->DEPLOY"});
  for (const Ticket& t : tickets) {
    std::string detail = t.detail.size() > 72 ? t.detail.substr(0, 69) + "..." : t.detail;
    outcome_table.add_row(
        {t.id.empty() ? t.file : t.id, t.outcome.empty() ? "unfinished" : t.outcome, detail,
         t.deployed_ms > 0 ? fmt::format("{} ms", t.deployed_ms - t.submitted_ms) : "-"});
  }
  out += outcome_table.render();
  out += "\n";
  Table stage_table({"STAGE", "TRIES", "FAILED", "P50", "P99"});
  for (const auto& [stage, ms] : durations) {
    stage_table.add_row({stage, std::to_string(ms.size()), std::to_string(failed_tries[stage]),
                         fmt::format("{} ms", percentile(ms, 50)),
                         fmt::format("{} ms", percentile(ms, 99))});
  }
  out += stage_table.render();
  out += fmt::format(
      "\nticket -> deploy: p50 {} ms, p99 {} ms over {} deployments (the article's SLO: 5 min)\n"
      "gate failures: {}   dead letters: {}   sent to human-review: {}\n"
      "outcomes:",
      percentile(to_deploy, 50), percentile(to_deploy, 99), to_deploy.size(), gate_failures,
      dead_letters, human_review);
  for (const auto& [name, n] : outcomes) out += fmt::format(" {} {}", n, name);
  out += fmt::format(
      "\n\ngenerated repository: {}   (git -C {} log --oneline --all)\n"
      "releases:             {}   (current -> the live release)\n"
      "data dir:             {}   (factoryd runs list --data-dir {})\n",
      repo, repo, releases, data_dir, data_dir);
  write_stdout(out);
}

// demo's --config FILE: a factory.yaml read as serve reads it (flags > environment > file >
// defaults) for what the demo uses: config_dir, server.listen (for --serve), and data_dir when
// the file or the environment sets it (the demo's own default is a new temporary dir).
int read_demo_config(const CLI::App* app, const std::string& file, std::string* config_dir,
                     std::string* listen, std::string* data_dir) {
  auto given = [app](const char* name) {
    const CLI::Option* o = app->get_option_no_throw(name);
    return o != nullptr && o->count() > 0;
  };
  FlagOverrides flags;
  if (given("--config-dir")) flags.emplace_back("config_dir", *config_dir);
  if (given("--listen")) flags.emplace_back("server.listen", *listen);
  if (given("--data-dir")) flags.emplace_back("data_dir", *data_dir);
  auto config = load_factory_config(file, flags, process_environment());
  if (!config.ok()) {
    return status_error("invalid config", config.status(),
                        "check it with `factoryd config validate --config " + file + "`");
  }
  *config_dir = config->config_dir;
  *listen = config->listen;
  for (const ConfigSetting& s : config->settings) {
    if (s.key == "data_dir" && s.origin != "default") *data_dir = config->data_dir;
  }
  return kExitOk;
}

}  // namespace

void add_demo_command(CLI::App* root, CommandRegistry* registry) {
  CommonOptions* common = registry->common();
  auto cmd = std::make_unique<Demo>(common);
  CLI::App* app = root->add_subcommand(
      "demo", "Run the software factory end to end, offline, on the bundled sample tickets");
  app->add_option("--data-dir", cmd->data_dir,
                  "Data directory (default: a new temporary one; reuse one to resume a demo)");
  app->add_option("--config-dir", cmd->config_dir, "Config directory (topics, DAGs)")
      ->capture_default_str();
  auto factory_yaml = std::make_shared<std::string>();
  app->add_option("--config", *factory_yaml,
                  "The daemon's config file (factory.yaml): its config_dir, data_dir and "
                  "server.listen");
  registry->add_check(app, [app, factory_yaml, d = cmd.get()]() {
    if (factory_yaml->empty()) return kExitOk;
    return read_demo_config(app, *factory_yaml, &d->config_dir, &d->listen, &d->data_dir);
  });
  app->add_option("--samples", cmd->samples_dir, "Directory of sample tickets (*.json)")
      ->capture_default_str();
  app->add_flag("--interactive", cmd->interactive,
                "Ask on the terminal before each deployment (stdin must be a terminal)");
  registry->add_check(app, [interactive = &cmd->interactive]() {
    if (!*interactive || ::isatty(0) == 1) return kExitOk;
    return usage_error("--interactive asks on the terminal, and stdin is not a terminal",
                       "run it from a terminal, or leave --interactive out (deployments are then "
                       "approved automatically)");
  });
  app->add_flag("--serve", cmd->serve, "Keep the daemon and its HTTP API running afterwards");
  app->add_option("--listen", cmd->listen, "With --serve: IP:PORT for the API")
      ->capture_default_str();
  app->add_option("--timeout-ms", cmd->timeout_ms, "Give up on tickets still running after this")
      ->capture_default_str();
  app->add_option("--interval-ms", cmd->interval_ms,
                  "Between two ticket submissions (0: all at once, a burst)")
      ->capture_default_str();
  app->add_option("-o,--output", common->output, "Summary format")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  registry->add(app, std::move(cmd));
}

}  // namespace factory::cli
