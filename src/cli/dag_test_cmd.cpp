// factoryd dags test DAG [-c JSON] [--config-dir DIR] [--timeout 1h] [--reject-approvals]
//                   [--junit FILE]
// factoryd tasks test DAG TASK [-c JSON] [-t JSON] [--config-dir DIR]
//
// Airflow's `dags test` and `tasks test`: run DAG code for real, without touching the data dir.
//   - dags test runs the whole DAG in this process — a scheduler, the task workers and their
//     stages — on a fresh temporary data dir that is deleted afterwards, and prints each task's
//     result. Approval tasks are decided at once (approved, or rejected with
//     --reject-approvals) by "dags-test". Retries and retry delays are the DAG's. --junit
//     also writes the result as JUnit XML, a test case per task (junit.h), for CI.
//   - tasks test renders one task's params (the run conf from -c; values its templates read
//     from upstream outputs come from -t, as nothing upstream runs) and calls its stage once,
//     through the same adapter the task workers use, in this thread. Nothing is saved: the
//     records the task would append are only counted.
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include "base/clock.h"
#include "cli/common.h"
#include "cli/dag_support.h"
#include "cli/junit.h"
#include "factory/event.h"
#include "obs/logger.h"
#include "runtime/engine.h"
#include "runtime/stage_registry.h"
#include "scheduler/dag_parser.h"
#include "scheduler/scheduler.h"
#include "scheduler/task_records.h"
#include "scheduler/task_stage.h"
#include "scheduler/templates.h"
#include "store/meta_store.h"

namespace factory::cli {
namespace {

namespace json = boost::json;
using scheduler::Dag;
using scheduler::Task;

constexpr char kResultsTopic[] = "factory.task-results";
constexpr char kTestActor[] = "dags-test";

int64_t now_ms() { return base::SystemClock::instance()->now_ms(); }

// A directory under $TMPDIR, removed with everything in it when this goes out of scope.
class ScratchDir {
 public:
  static std::optional<ScratchDir> make(const std::string& prefix) {
    std::error_code ec;
    std::filesystem::path base = std::filesystem::temp_directory_path(ec);
    if (ec) base = "/tmp";
    std::string tmpl = (base / (prefix + "-XXXXXX")).string();
    if (!::mkdtemp(tmpl.data())) return std::nullopt;
    return ScratchDir(tmpl);
  }
  ScratchDir(ScratchDir&& o) noexcept : path_(std::move(o.path_)) { o.path_.clear(); }
  ScratchDir(const ScratchDir&) = delete;
  ~ScratchDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& str() const { return path_; }

 private:
  explicit ScratchDir(std::string p) : path_(std::move(p)) {}
  std::string path_;
};

int no_scratch_dir() {
  return runtime_error("cannot create a temporary directory", "set TMPDIR to a writable directory");
}

std::string result_text(const store::TaskRow& r) {
  if (!r.error.empty()) return clip(r.error, 160);
  if (!r.output_json.empty()) return clip(r.output_json, 160);
  return "-";
}

class DagsTest : public Command {
 public:
  explicit DagsTest(const CommonOptions* common) : common_(common) {}
  std::string config_dir = "config";
  std::string dag_id;
  std::string conf;
  std::string timeout = "1h";
  bool reject_approvals = false;
  std::string junit_path;  // --junit FILE; "" = none

  int run() override {
    auto timeout_ms = scheduler::parse_duration_ms(timeout);
    if (timeout_ms.ok()) timeout_ms_ = *timeout_ms;
    if (!timeout_ms.ok() || *timeout_ms <= 0) {
      if (!timeout_ms.ok()) return usage_error("--timeout: " + timeout_ms.status().message(), "");
      return usage_error("--timeout: must be more than 0", "pass a duration such as 90s or 10m");
    }
    auto dags = load_dags_or_report(config_dir);
    if (!dags) return kExitRuntime;
    const Dag* found = find_dag(*dags, dag_id);
    if (!found) return dag_not_found(dag_id, config_dir);
    auto resolved = scheduler::resolve_run_conf(*found, conf);
    if (!resolved.ok()) {
      return usage_error("-c: " + resolved.status().message(),
                         "pass a JSON object that matches the DAG's params schema");
    }
    auto with_refs = dags_for_test(*dags, *found);
    if (!with_refs) return kExitRuntime;

    auto dir = ScratchDir::make("factoryd-dags-test");
    if (!dir) return no_scratch_dir();
    CommonOptions tmp = *common_;
    tmp.data_dir = dir->str();
    return run_in(tmp, std::move(*with_refs));
  }

 private:
  // This DAG, started by hand: no topic consumer, no cron, no deadline-triggered DAG. Then the
  // DAGs its error budget names (its postmortem_dag, and theirs), from the same config dir: the
  // scheduler refuses a budget whose postmortem DAG is not loaded. They too are manual, and
  // run only if a breach in this test triggers them. nullopt (reported) when one is missing.
  std::optional<std::vector<Dag>> dags_for_test(const std::vector<Dag>& loaded, const Dag& found) {
    std::vector<Dag> out = {found};
    for (size_t i = 0; i < out.size(); ++i) {
      out[i].trigger = scheduler::Trigger();
      out[i].deadline_trigger_dag.clear();
      if (!out[i].error_budget || out[i].error_budget->postmortem_dag.empty()) continue;
      const std::string pm = out[i].error_budget->postmortem_dag;
      if (find_dag(out, pm)) continue;
      const Dag* ref = find_dag(loaded, pm);
      if (!ref) {
        runtime_error("DAG '" + out[i].dag_id + "': error_budget.postmortem_dag '" + pm +
                          "' is not in " + config_dir + "/dags",
                      "add that DAG or fix the name (factoryd dags check)");
        return std::nullopt;
      }
      out.push_back(*ref);
    }
    return out;
  }

  int run_in(const CommonOptions& tmp, std::vector<Dag> dags) {
    auto log = open_log_or_report(tmp);
    if (!log) return kExitRuntime;
    auto store = store::open_sqlite_store({.dir = tmp.data_dir + "/store", .sync = false});
    if (!store.ok()) return status_error("cannot open a scratch store", store.status(), "");
    auto sched =
        scheduler::Scheduler::create(log.get(), store->get(), std::move(dags), {.partitions = 1});
    if (!sched.ok()) return status_error("cannot start the scheduler", sched.status(), "");
    runtime::PipelineConfig tasks;
    tasks.bindings = (*sched)->task_bindings();
    runtime::EngineOptions eo;
    eo.data_dir = tmp.data_dir;
    eo.secrets_dir = config_dir + "/secrets";
    auto engine = runtime::Engine::start(log.get(), store->get(), tasks, eo);
    if (!engine.ok()) return status_error("cannot start the task workers", engine.status(), "");
    Status started = (*sched)->start();
    if (!started.ok()) return status_error("cannot start the scheduler", started, "");

    int code = drive(sched->get(), store->get());
    (*sched)->stop();
    (void)(*engine)->stop(5'000);
    return code;
  }

  // Triggers the run, decides its approvals, waits for it and prints the result.
  int drive(scheduler::Scheduler* sched, store::MetaStore* store) {
    std::string run_id = "test__" + base::format_iso8601_utc(now_ms());
    auto made = sched->trigger(dag_id, conf, run_id, "test");
    if (!made.ok())
      return status_error("cannot start a run of '" + dag_id + "'", made.status(), "");
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms_);
    Result<scheduler::RunView> view = Status::timed_out("");
    for (;;) {
      view = sched->wait_for_run(run_id, 100);
      if (view.ok() || !view.status().is_timed_out()) break;
      auto pending = store->list_approvals("pending");
      if (pending.ok()) {
        for (const store::ApprovalRow& a : *pending) {
          (void)sched->decide(a.run_id, a.task_id, !reject_approvals, kTestActor,
                              reject_approvals ? "rejected by dags test" : "approved by dags test");
        }
      }
      if (std::chrono::steady_clock::now() >= deadline) break;
    }
    bool timed_out = !view.ok() && view.status().is_timed_out();
    if (timed_out) view = sched->show_run(run_id);
    if (!view.ok()) return status_error("cannot read run '" + run_id + "'", view.status(), "");
    print(*view);
    if (!junit_path.empty()) {
      char host[256] = {};
      if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
      Status written =
          write_file_atomically(junit_path, junit_report(*view, dag_id, conf, host, now_ms()));
      if (!written.ok()) {
        return status_error("cannot write the JUnit report", written,
                            "pass --junit a path in a writable directory");
      }
    }
    if (timed_out) {
      return runtime_error("DAG '" + dag_id + "' did not finish within " + timeout,
                           "raise --timeout, or look at the tasks still running above");
    }
    if (view->run.state != "success") {
      std::string failed;
      for (const auto& t : view->tasks) {
        if (t.row.state == "failed" || t.row.state == "upstream_failed") {
          failed += (failed.empty() ? "" : ", ") + t.row.task_id + " (" + t.row.state + ")";
        }
      }
      return runtime_error("DAG '" + dag_id + "' " + view->run.state + " in dags test" +
                               (failed.empty() ? "" : ": " + failed),
                           "see each task's error above");
    }
    return kExitOk;
  }

  void print(const scheduler::RunView& v) {
    if (common_->json()) {
      write_stdout(run_json(v.run, &v.tasks) + "\n");
      return;
    }
    Table table({"TASK", "STAGE", "STATE", "TRY", "DURATION", "RESULT"});
    for (const scheduler::TaskView& t : v.tasks) {
      table.add_row({t.row.task_id, t.stage, t.row.state, std::to_string(t.row.try_number),
                     format_duration(t.row.started_ms, t.row.ended_ms), result_text(t.row)});
    }
    write_stdout(table.render() + "run " + v.run.run_id + ": " + v.run.state + " in " +
                 format_duration(v.run.started_ms, v.run.ended_ms) + "\n");
  }

  const CommonOptions* common_;
  int64_t timeout_ms_ = 0;  // --timeout, parsed
};

// What a stage called by `tasks test` may use: secrets as the engine finds them, a scratch
// dir, breakers that never open. Outputs are collected, not appended.
class LocalContext final : public StageContext {
 public:
  class ClosedBreaker final : public Breaker {
   public:
    bool allow() override { return true; }
    void record_success() override {}
    void record_failure() override {}
    const std::string& fallback_topic() const override { return none_; }

   private:
    std::string none_;
  };

  LocalContext(std::string secrets_dir, std::filesystem::path scratch, std::string task_id)
      : secrets_dir_(std::move(secrets_dir)),
        scratch_(std::move(scratch)),
        task_id_(std::move(task_id)),
        deadline_(std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(runtime::Binding().timeout_ms)) {}

  void emit(Output output) override { outputs.push_back(std::move(output)); }
  const std::string& config() const override { return config_; }
  std::optional<std::string> secret(std::string_view name) const override {
    // As the engine: FACTORY_SECRET_<NAME>, else the file <config>/secrets/<name>.
    std::string env = "FACTORY_SECRET_";
    for (char c : name) {
      env.push_back(std::isalnum(static_cast<unsigned char>(c))
                        ? static_cast<char>(std::toupper(static_cast<unsigned char>(c)))
                        : '_');
    }
    if (const char* v = std::getenv(env.c_str())) return std::string(v);
    if (name.find('/') != std::string_view::npos) return std::nullopt;
    std::FILE* f = std::fopen((secrets_dir_ + "/" + std::string(name)).c_str(), "rb");
    if (!f) return std::nullopt;
    std::string v;
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) v.append(buf, n);
    std::fclose(f);
    while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) v.pop_back();
    return v;
  }
  void log_info(std::string_view m) override { obs::info(m, {{"task", task_id_}}); }
  void log_warn(std::string_view m) override { obs::warn(m, {{"task", task_id_}}); }
  void count(std::string_view, int64_t) override {}
  std::chrono::steady_clock::time_point deadline() const override { return deadline_; }
  bool cancelled() const override { return false; }
  const std::filesystem::path& scratch_dir() const override { return scratch_; }
  // The scratch dir stands in for the data dir: nothing outlives this command.
  const std::filesystem::path& data_dir() const override { return scratch_; }
  Breaker& breaker(std::string_view) override { return breaker_; }

  std::vector<Output> outputs;

 private:
  std::string secrets_dir_;
  std::filesystem::path scratch_;
  std::string task_id_;
  std::chrono::steady_clock::time_point deadline_;
  std::string config_ = "{}";  // task bindings carry no config block
  ClosedBreaker breaker_;
};

// `base` (a JSON object) with each top-level key of `overrides` replacing its own.
Result<std::string> merge_params(const std::string& base, const std::string& overrides) {
  json::error_code ec;
  json::value b = json::parse(base, ec);
  if (ec || !b.is_object()) return Status::invalid_argument("the task's params are not an object");
  json::value o = json::parse(overrides, ec);
  if (ec || !o.is_object()) {
    return Status::invalid_argument("'" + overrides + "' is not a JSON object");
  }
  for (const auto& [k, v] : o.as_object()) b.as_object()[k] = v;
  return json::serialize(b);
}

// JSON text as a raw JSON value when it parses, else as a JSON string.
std::string as_json(const std::string& text) {
  json::error_code ec;
  json::value v = json::parse(text, ec);
  return ec ? json_quote(text) : json::serialize(v);
}

class TasksTest : public Command {
 public:
  explicit TasksTest(const CommonOptions* common) : common_(common) {}
  std::string config_dir = "config";
  std::string dag_id;
  std::string task_id;
  std::string conf;
  std::string task_params;

  int run() override {
    auto dags = load_dags_or_report(config_dir);
    if (!dags) return kExitRuntime;
    const Dag* dag = find_dag(*dags, dag_id);
    if (!dag) return dag_not_found(dag_id, config_dir);
    const Task* task = dag->find_task(task_id);
    if (!task) {
      std::string ids;
      for (const Task& t : dag->tasks) ids += (ids.empty() ? "" : ", ") + t.id;
      return runtime_error("task '" + task_id + "' not found in DAG '" + dag_id + "'",
                           "its tasks are: " + ids);
    }
    if (task->approval || task->stage == scheduler::kApprovalStage) {
      return runtime_error(
          "task '" + task_id + "' is an approval task: it runs no stage",
          "decide it in a run with 'factoryd approvals approve|reject RUN " + task_id + "'");
    }
    auto resolved = scheduler::resolve_run_conf(*dag, conf);
    if (!resolved.ok()) {
      return usage_error("-c: " + resolved.status().message(),
                         "pass a JSON object that matches the DAG's params schema");
    }
    std::string params = task->params;
    if (!task_params.empty()) {
      auto merged = merge_params(params, task_params);
      if (!merged.ok()) return usage_error("-t: " + merged.status().message(), "");
      params = *merged;
    }
    int64_t start = now_ms();
    std::string run_id = "test__" + base::format_iso8601_utc(start);
    std::string logical = base::format_iso8601_utc(start);
    scheduler::RenderContext rc;
    rc.dag_id = dag_id;
    rc.run_id = run_id;
    rc.logical_date = logical;
    rc.conf_json = *resolved;
    rc.task_id = task_id;
    auto rendered = scheduler::render_params(params, rc);
    if (!rendered.ok()) {
      // Always the hint (status_error drops it when the message has one of its own): the
      // upstream outputs are what `tasks test` cannot have.
      return runtime_error(
          "cannot render the params of task '" + task_id + "': " + rendered.status().message(),
          "tasks test runs the task alone, without its upstream outputs: pass the params its "
          "templates need with -t '{\"name\": value}'");
    }

    auto inner = runtime::create_stage(task->stage);
    if (!inner.ok())
      return status_error("cannot create stage '" + task->stage + "'", inner.status(), "");
    auto stage = scheduler::TaskStage::create(std::move(*inner));
    if (!stage.ok())
      return status_error("cannot use stage '" + task->stage + "'", stage.status(), "");
    // The dispatch record a task worker would receive (task_stage.h), try 1.
    std::string dispatch = scheduler::encode_dispatch({
        .run_id = run_id,
        .dag_id = dag_id,
        .task_id = task_id,
        .try_number = 1,
        .params = *rendered,
        // What the stage reads as its config: no scheduler, so none of the run's approvals
        // (a deploy refuses: use dags test).
        .config = scheduler::literal_params(params),
        .output_topic = task->output_topic,
        .results_topic = kResultsTopic,
    });
    Event event;
    event.topic = "factory.dispatch." + task->stage;
    event.key = run_id;
    event.payload = dispatch;
    event.timestamp_ms = start;
    event.attempt = 1;
    if (auto id = event_id_for(dispatch); id.ok()) event.id = *id;

    auto scratch = ScratchDir::make("factoryd-tasks-test");
    if (!scratch) return no_scratch_dir();
    LocalContext ctx(config_dir + "/secrets", scratch->str(), task_id);
    (void)(*stage)->process(event, ctx);  // every outcome comes back as a result record
    int64_t took = now_ms() - start;

    std::string state = "failed", output, error = "the stage reported no result";
    std::vector<const Output*> appended;
    for (const Output& o : ctx.outputs) {
      if (o.topic != kResultsTopic) {
        appended.push_back(&o);
        continue;
      }
      auto r = scheduler::decode_result(o.payload);
      if (!r.ok()) continue;
      state = r->success ? "success" : "failed";
      error = r->error;
      output = r->output;
    }
    print(*task, state, took, *rendered, output, error, appended);
    if (state != "success") {
      return runtime_error("task '" + task_id + "' failed: " + error,
                           "fix the stage or its params and test again");
    }
    return kExitOk;
  }

 private:
  void print(const Task& task, const std::string& state, int64_t took, const std::string& params,
             const std::string& output, const std::string& error,
             const std::vector<const Output*>& appended) {
    if (common_->json()) {
      std::vector<std::string> records;
      for (const Output* o : appended) {
        records.push_back(
            JsonObject().str("topic", o->topic).raw("payload", as_json(o->payload)).done());
      }
      JsonObject j;
      j.str("dag_id", dag_id).str("task_id", task_id).str("stage", task.stage).str("state", state);
      j.num("duration_ms", took).raw("params", params);
      if (output.empty()) {
        j.null("output");
      } else {
        j.raw("output", output);
      }
      if (error.empty()) {
        j.null("error");
      } else {
        j.str("error", error);
      }
      j.raw("would_append", json_array(records));
      write_stdout(j.done() + "\n");
      return;
    }
    std::string out = "task " + task_id + " (stage " + task.stage + ") of DAG " + dag_id + ": " +
                      state + " in " + format_duration(took) + "\n";
    out += "params: " + params + "\n";
    if (!output.empty()) out += "output: " + output + "\n";
    if (!error.empty()) out += "error: " + error + "\n";
    if (!appended.empty()) {
      out += "would append " + std::to_string(appended.size()) +
             (appended.size() == 1 ? " record" : " records") + " to " + appended.front()->topic +
             " (not saved)\n";
    }
    write_stdout(out);
  }

  const CommonOptions* common_;
};

}  // namespace

void add_dags_test_command(CLI::App* dags, CommandRegistry* registry) {
  CommonOptions* common = registry->common();
  auto cmd = std::make_unique<DagsTest>(common);
  CLI::App* app = dags->add_subcommand(
      "test",
      "Run a whole DAG in this process on a temporary data dir and print each task's result "
      "(exit 0 when the run succeeded)");
  app->add_option("dag", cmd->dag_id, "DAG id")->required();
  app->add_option("-c,--conf", cmd->conf, "The run's conf: a JSON object (Airflow's -c)");
  app->add_option("--timeout", cmd->timeout, "Give up after this long (e.g. 90s, 10m)")
      ->capture_default_str();
  app->add_flag("--reject-approvals", cmd->reject_approvals,
                "Reject approval tasks instead of approving them");
  app->add_option("--junit", cmd->junit_path,
                  "Also write the result as JUnit XML to FILE, a test case per task (for CI)");
  add_config_dir_option(app, registry, &cmd->config_dir, /*dash_c=*/false);
  add_common_options(app, common, "-o,--output", DataDirUse::kNone);
  registry->add(app, std::move(cmd));
}

void add_tasks_test_command(CLI::App* tasks, CommandRegistry* registry) {
  CommonOptions* common = registry->common();
  auto cmd = std::make_unique<TasksTest>(common);
  CLI::App* app = tasks->add_subcommand(
      "test", "Run one task's stage alone, without its upstreams; nothing is saved");
  app->add_option("dag", cmd->dag_id, "DAG id")->required();
  app->add_option("task", cmd->task_id, "Task id")->required();
  app->add_option("-c,--conf", cmd->conf, "The run's conf: a JSON object (Airflow's -c)");
  app->add_option("-t,--task-params", cmd->task_params,
                  "A JSON object whose keys replace the task's params before templates render");
  add_config_dir_option(app, registry, &cmd->config_dir, /*dash_c=*/false);
  add_common_options(app, common, "-o,--output", DataDirUse::kNone);
  registry->add(app, std::move(cmd));
}

}  // namespace factory::cli
