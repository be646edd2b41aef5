// DagAccess over the data dir itself: reads from the store beside whoever holds the data dir,
// changes through a Host's scheduler (dag_access.h).
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "cli/dag_access.h"
#include "cli/dag_support.h"
#include "cli/host.h"
#include "cli/remote.h"
#include "http/scheduler_views.h"
#include "scheduler/dag_parser.h"
#include "scheduler/error_budget.h"

namespace factory::cli {
namespace {

namespace json = boost::json;
using scheduler::Dag;

// The paused flag from the store; nullopt when the store cannot be read (shown as "?").
std::optional<bool> paused_of(const Result<std::unique_ptr<store::MetaStore>>& store,
                              std::string_view dag_id) {
  if (!store.ok()) return std::nullopt;
  return http::dag_paused(store->get(), dag_id);
}

class LocalDagAccess : public DagAccess {
 public:
  LocalDagAccess(const CommonOptions& common, std::string config_dir)
      : common_(common), config_dir_(std::move(config_dir)) {}

  Reported<json::array> list_dags() override {
    auto loaded = load_dags_or_report(config_dir_);
    if (!loaded) return Reported<json::array>::failed(kExitRuntime);
    // The paused flag lives in the store; a store we cannot read shows "?" (the DAGs still
    // list).
    auto store = open_store_for_reading(common_);
    json::array dags;
    for (const Dag& d : *loaded) {
      dags.push_back(http::dag_summary_view(d, paused_of(store, d.dag_id)));
    }
    return dags;
  }

  Reported<json::object> show_dag(const std::string& dag_id) override {
    auto dags = load_dags_or_report(config_dir_);
    if (!dags) return Reported<json::object>::failed(kExitRuntime);
    const Dag* d = find_dag(*dags, dag_id);
    if (!d) return Reported<json::object>::failed(dag_not_found(dag_id, config_dir_));
    return http::dag_view(*d, paused_of(open_store_for_reading(common_), d->dag_id));
  }

  int set_paused(const std::string& dag_id, bool paused) override {
    if (int code = check_dag(dag_id); code != kExitOk) return code;
    auto host = open_host_for_change(common_, config_dir_);
    if (!host) return kExitRuntime;
    Status s = host->scheduler()->set_paused(dag_id, paused, cli_actor());
    (void)host->close(0);  // no engine: nothing to drain
    if (s.is_not_found()) return dag_not_found(dag_id, config_dir_);
    if (!s.ok()) {
      return status_error(
          std::string("cannot ") + (paused ? "pause" : "unpause") + " DAG '" + dag_id + "'", s,
          "retry");
    }
    return kExitOk;
  }

  Reported<TriggeredRun> trigger(const TriggerRequest& request) override {
    using Out = Reported<TriggeredRun>;
    // Checked before the data dir is opened (which creates it): a refused trigger leaves no
    // trace. The conf is checked here for a usage error (exit 2); the scheduler checks it again.
    if (int code = check_dag(request.dag_id, &request.conf); code != kExitOk) {
      return Out::failed(code);
    }
    auto host = open_host_for_change(common_, config_dir_);
    if (!host) return Out::failed(kExitRuntime);
    auto made = host->scheduler()->trigger(request.dag_id, request.conf, request.run_id, "manual",
                                           cli_actor());
    if (!made.ok()) return Out::failed(trigger_error(request.dag_id, made.status()));
    auto row = host->store()->get_run(*made);
    TriggeredRun out;
    out.dag_paused = paused_text(host->store(), request.dag_id) == "true";
    (void)host->close(0);
    if (!row.ok()) {
      return Out::failed(status_error("cannot read run '" + *made + "'", row.status(), "retry"));
    }
    out.run = http::run_view(*row);
    return out;
  }

  Reported<json::array> list_runs(const RunFilter& filter) override {
    auto store = open_store_or_report(common_);
    if (!store) return Reported<json::array>::failed(kExitRuntime);
    json::array runs;
    if (!*store) return runs;  // nothing has run here yet
    auto r = (*store)->list_runs(
        {.dag_id = filter.dag_id, .unfinished_only = filter.unfinished, .limit = filter.limit});
    if (!r.ok()) {
      return Reported<json::array>::failed(status_error("cannot list runs", r.status(), "retry"));
    }
    for (const store::RunRow& row : *r) runs.push_back(http::run_view(row));
    return runs;
  }

  Reported<json::object> show_run(const std::string& run_id) override {
    using Out = Reported<json::object>;
    auto store = open_store_or_report(common_);
    if (!store) return Out::failed(kExitRuntime);
    if (!*store) return Out::failed(run_not_found(common_, run_id));
    auto row = (*store)->get_run(run_id);
    if (!row.ok()) {
      if (row.status().is_not_found()) return Out::failed(run_not_found(common_, run_id));
      return Out::failed(status_error("cannot read run '" + run_id + "'", row.status(), "retry"));
    }
    auto rows = (*store)->list_tasks(run_id);
    if (!rows.ok()) {
      return Out::failed(
          status_error("cannot read the tasks of run '" + run_id + "'", rows.status(), "retry"));
    }
    std::vector<Dag> dags = load_dags_unchecked(config_dir_);
    std::vector<scheduler::TaskView> tasks =
        http::order_tasks(*row, std::move(*rows), find_dag(dags, row->dag_id));
    return http::run_view(*row, &tasks);
  }

  int cancel_run(const std::string& run_id) override {
    if (int code = check_run_exists(run_id); code != kExitOk) return code;
    auto host = open_host_for_change(common_, config_dir_);
    if (!host) return kExitRuntime;
    store::RunRow run;
    if (int code = check_run_for_change(host.get(), run_id, "cancel", &run); code != kExitOk) {
      return code;
    }
    Status s = host->scheduler()->cancel(run_id, cli_actor());
    (void)host->close(0);
    if (!s.ok()) return status_error("cannot cancel run '" + run_id + "'", s, "retry");
    return kExitOk;
  }

  Reported<std::vector<std::string>> clear_task(const std::string& run_id,
                                                const std::string& task_id,
                                                bool downstream) override {
    using Out = Reported<std::vector<std::string>>;
    if (int code = check_run_exists(run_id); code != kExitOk) return Out::failed(code);
    auto host = open_host_for_change(common_, config_dir_);
    if (!host) return Out::failed(kExitRuntime);
    store::RunRow run;
    if (int code = check_run_for_change(host.get(), run_id, nullptr, &run); code != kExitOk) {
      return Out::failed(code);
    }
    const Dag* dag = find_dag(host->scheduler()->dags(), run.dag_id);
    if (!dag) return Out::failed(dag_not_found(run.dag_id, config_dir_));
    int t = dag->index.find(task_id);
    if (t < 0) {
      return Out::failed(
          runtime_error("task '" + task_id + "' not found in DAG '" + dag->dag_id + "'",
                        "list the run's tasks with 'factoryd tasks list " + run_id + "'"));
    }
    // What will be cleared, for the report: the task, and with downstream all below it.
    std::vector<std::string> cleared = http::tasks_to_clear(*dag, t, downstream);
    Status s = host->scheduler()->clear(run_id, task_id, downstream, cli_actor());
    (void)host->close(0);
    if (!s.ok()) {
      return Out::failed(
          status_error("cannot clear task '" + task_id + "' of run '" + run_id + "'", s, "retry"));
    }
    return cleared;
  }

  Reported<json::array> list_approvals(bool all) override {
    auto store = open_store_or_report(common_);
    if (!store) return Reported<json::array>::failed(kExitRuntime);
    json::array approvals;
    if (!*store) return approvals;
    auto r = (*store)->list_approvals(all ? "" : "pending");
    if (!r.ok()) {
      return Reported<json::array>::failed(
          status_error("cannot list approvals", r.status(), "retry"));
    }
    int64_t now = base::SystemClock::instance()->now_ms();
    for (const store::ApprovalRow& a : *r) approvals.push_back(http::approval_view(a, now));
    return approvals;
  }

  Reported<json::object> decide(const Decision& d) override {
    using Out = Reported<json::object>;
    if (int code = check_run_exists(d.run_id); code != kExitOk) return Out::failed(code);
    auto host = open_host_for_change(common_, config_dir_);
    if (!host) return Out::failed(kExitRuntime);
    store::RunRow run;
    // An ended run is the scheduler's to explain: it names the approval's state and why.
    if (int code = check_run_for_change(host.get(), d.run_id, nullptr, &run); code != kExitOk) {
      return Out::failed(code);
    }
    std::string actor = cli_actor();
    Status s = host->scheduler()->decide(d.run_id, d.task_id, d.approve, actor, d.comment,
                                         scheduler::AuditMode::kAudit, d.bound_to);
    (void)host->close(0);
    std::string context =
        std::string("cannot ") + (d.approve ? "approve" : "reject") + " '" + d.task_id + "'";
    if (s.is_failed_precondition()) {
      return Out::failed(
          status_error(context, s, "list pending approvals with 'factoryd approvals list'"));
    }
    if (!s.ok()) return Out::failed(status_error(context, s, "retry"));
    // The shape the API answers with (api_scheduler.cpp).
    return json::object{{"run_id", d.run_id},
                        {"task_id", d.task_id},
                        {"state", d.approve ? "approved" : "rejected"},
                        {"decided_by", actor},
                        {"comment", d.comment}};
  }

  Reported<json::object> auto_approval(const std::string& action) override {
    return action == "status" ? auto_approval_status() : auto_approval_change(action);
  }

  Reported<json::array> list_audit(int limit) override {
    auto store = open_store_or_report(common_);
    if (!store) return Reported<json::array>::failed(kExitRuntime);
    json::array rows;
    if (!*store) return rows;
    auto r = (*store)->list_audit(limit);
    if (!r.ok()) {
      return Reported<json::array>::failed(
          status_error("cannot list the audit trail", r.status(), "retry"));
    }
    for (const store::AuditRow& row : *r) rows.push_back(http::audit_view(row));
    return rows;
  }

 private:
  // check_dag and check_run_exists run before a change opens the data dir (opening it creates
  // it), so a change that fails them leaves no data dir behind. kExitOk to go on, else the
  // reported error's exit code.

  // The DAG is in the config dir and, when given, *conf suits it. The files are parsed
  // without plugins (load_dags_or_report loads them, and must not run beside Host::open); files
  // that do not parse pass here, as Host::open reports them before it opens the data dir.
  int check_dag(const std::string& dag_id, const std::string* conf = nullptr) {
    std::vector<Dag> dags;
    const std::string dir = config_dir_ + "/dags";
    if (std::filesystem::is_directory(dir)) {
      auto loaded = scheduler::load_dags(dir, {});
      if (!loaded.ok()) return kExitOk;
      dags = std::move(*loaded);
    }
    const Dag* dag = find_dag(dags, dag_id);
    if (!dag) return dag_not_found(dag_id, config_dir_);
    if (conf) {
      auto resolved = scheduler::resolve_run_conf(*dag, *conf);
      if (!resolved.ok()) return trigger_conf_error(dag_id, resolved.status());
    }
    return kExitOk;
  }
  // The run is in the store (read beside whoever holds the data dir; no store: no run).
  int check_run_exists(const std::string& run_id) {
    auto store = open_store_or_report(common_);
    if (!store) return kExitRuntime;
    if (!*store) return run_not_found(common_, run_id);
    auto row = (*store)->get_run(run_id);
    if (row.ok()) return kExitOk;
    if (row.status().is_not_found()) return run_not_found(common_, run_id);
    return status_error("cannot read run '" + run_id + "'", row.status(), "retry");
  }

  // Checks before a change: the run exists (NotFound → exit 1 naming it) and, when `verb` is
  // given, has not ended. Returns kExitOk to go on.
  int check_run_for_change(Host* host, const std::string& run_id, const char* verb,
                           store::RunRow* run) {
    auto row = host->store()->get_run(run_id);
    if (!row.ok()) {
      if (row.status().is_not_found()) return run_not_found(common_, run_id);
      return status_error("cannot read run '" + run_id + "'", row.status(), "retry");
    }
    *run = *row;
    if (verb && http::run_ended(row->state)) {
      return runtime_error(
          "run '" + run_id + "' already ended (" + row->state + "); nothing to " + verb, "");
    }
    return kExitOk;
  }

  // The budgets' windows as stored, evaluated now.
  Reported<json::object> auto_approval_status() {
    using Out = Reported<json::object>;
    auto store = open_store_or_report(common_);
    if (!store) return Out::failed(kExitRuntime);
    auto paused = http::auto_approval_paused(store->get());
    if (!paused.ok()) {
      return Out::failed(
          status_error("cannot read the auto-approval switch", paused.status(), "retry"));
    }
    std::vector<scheduler::ErrorBudgetState> budgets;
    if (*store) {
      auto b = scheduler::read_error_budgets(store->get(), load_dags_unchecked(config_dir_),
                                             base::SystemClock::instance()->now_ms());
      if (!b.ok()) {
        return Out::failed(status_error("cannot read the error budgets", b.status(), "retry"));
      }
      budgets = std::move(*b);
    }
    return http::auto_approval_view(*paused, budgets);
  }

  Reported<json::object> auto_approval_change(const std::string& action) {
    auto host = open_host_for_change(common_, config_dir_);
    if (!host) return Reported<json::object>::failed(kExitRuntime);
    scheduler::Scheduler* sched = host->scheduler();
    Status s = sched->set_auto_approval_paused(action == "pause", cli_actor());
    json::object state =
        http::auto_approval_view(sched->auto_approval_paused(), sched->error_budgets());
    (void)host->close(0);
    if (!s.ok()) {
      return Reported<json::object>::failed(
          status_error("cannot " + action + " auto-approval", s, "retry"));
    }
    return state;
  }

  const CommonOptions& common_;  // the CLI's, which outlives every command
  const std::string config_dir_;
};

}  // namespace

std::unique_ptr<DagAccess> local_dag_access(const CommonOptions& common, std::string config_dir) {
  return std::make_unique<LocalDagAccess>(common, std::move(config_dir));
}

std::unique_ptr<DagAccess> open_dag_access(const CommonOptions& common,
                                           const std::string& config_dir, int* exit_code) {
  int code = kExitOk;
  auto client = daemon_client(common, &code);
  if (code != kExitOk) {
    *exit_code = code;
    return nullptr;
  }
  if (client) return remote_dag_access(std::move(client));
  return local_dag_access(common, config_dir);
}

}  // namespace factory::cli
