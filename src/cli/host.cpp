#include "cli/host.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "log/topic_file.h"
#include "runtime/stage_registry.h"
#include "scheduler/cron.h"

namespace factory::cli {

scheduler::DagParseOptions config_dag_parse_options() {
  scheduler::DagParseOptions po;
  auto known = runtime::registered_stages();
  po.stage_exists = [known](const std::string& s) {
    return std::find(known.begin(), known.end(), s) != known.end();
  };
  po.check_cron = [](const std::string& e) { return scheduler::CronSchedule::parse(e).status(); };
  po.check_timezone = [](const std::string& tz) {
    return scheduler::CronSchedule::parse("@daily", tz).status();
  };
  return po;
}

Result<std::vector<scheduler::Dag>> load_config_dags(const std::string& config_dir) {
  std::string dir = config_dir + "/dags";
  if (!std::filesystem::is_directory(dir)) return std::vector<scheduler::Dag>{};
  return scheduler::load_dags(dir, config_dag_parse_options());
}

std::unique_ptr<Host> Host::open(const CommonOptions& common, const HostOptions& options) {
  std::unique_ptr<Host> h(new Host());
  auto pipelines = runtime::load_pipelines(options.config_dir);
  if (!pipelines.ok()) {
    status_error("invalid pipeline config", pipelines.status(), "");
    return nullptr;
  }
  h->pipelines_ = std::move(*pipelines);
  for (const std::string& dir : h->pipelines_.plugin_dirs) {
    auto loaded = runtime::load_plugin_dir(dir);
    if (!loaded.ok()) {
      status_error("cannot load plugins", loaded.status(), "");
      return nullptr;
    }
  }
  auto dags = load_config_dags(options.config_dir);
  if (!dags.ok()) {
    status_error("invalid DAG", dags.status(), "check it with `factoryd dags check`");
    return nullptr;
  }
  h->log_ = open_log_or_report(common, options.background_retention);
  if (!h->log_) return nullptr;
  std::string topics_file = options.config_dir + "/topics.yaml";
  if (std::filesystem::exists(topics_file)) {
    auto entries = log::parse_topic_file(topics_file);
    if (!entries.ok()) {
      status_error("invalid topics file", entries.status(), "");
      return nullptr;
    }
    for (const auto& e : *entries) {
      auto applied = h->log_->apply_topic(e.spec);
      if (!applied.ok()) {
        status_error(topics_file + ":" + std::to_string(e.line), applied.status(), "");
        return nullptr;
      }
    }
  }
  auto store = store::open_sqlite_store({.dir = common.data_dir + "/store"});
  if (!store.ok()) {
    status_error("cannot open the metadata store", store.status(), "");
    return nullptr;
  }
  h->store_ = std::move(*store);
  if (options.adjust_dags) options.adjust_dags(&*dags);
  // Without workers (a one-shot command) nothing is dispatched: a task would show `running`
  // with a start time while nothing runs it; it stays `scheduled` for the next `run`.
  auto sched = scheduler::Scheduler::create(h->log_.get(), h->store_.get(), std::move(*dags),
                                            {.dispatch = options.start_workers});
  if (!sched.ok()) {
    status_error("cannot start the scheduler", sched.status(), "");
    return nullptr;
  }
  h->scheduler_ = std::move(*sched);
  if (options.start_workers) {
    runtime::PipelineConfig all = h->pipelines_;
    for (auto& b : h->scheduler_->task_bindings()) all.bindings.push_back(std::move(b));
    runtime::EngineOptions eo;
    eo.data_dir = common.data_dir;
    eo.secrets_dir = options.config_dir + "/secrets";
    auto engine = runtime::Engine::start(h->log_.get(), h->store_.get(), all, eo);
    if (!engine.ok()) {
      status_error("cannot start the pipelines", engine.status(), "");
      return nullptr;
    }
    h->engine_ = std::move(*engine);
    h->running_ = all.bindings;
  }
  if (options.start_scheduler) {
    Status s = h->scheduler_->start();
    if (!s.ok()) {
      status_error("cannot start the scheduler", s, "");
      return nullptr;
    }
  }
  return h;
}

bool Host::caught_up() {
  for (const auto& b : running_) {
    auto d = log_->describe_group(b.group);
    if (!d.ok()) {
      // Never committed: caught up only when its input holds nothing.
      auto info = log_->describe_topic(b.input_topic);
      if (!info.ok()) return false;
      for (const auto& p : info->partitions) {
        if (p.log_end > p.log_start) return false;
      }
      continue;
    }
    for (const auto& row : d->partitions) {
      if (row.lag > 0) return false;
    }
  }
  auto unfinished = store_->list_runs({.unfinished_only = true});
  if (!unfinished.ok()) return false;
  if (unfinished->empty()) return true;
  // A run parked on an approval waits for a person, not for this process.
  auto tasks = store_->list_unfinished_tasks();
  if (!tasks.ok()) return false;
  std::set<std::string, std::less<>> parked, busy;
  for (const store::TaskRow& t : *tasks) {
    if (t.state == "awaiting_approval") {
      parked.insert(t.run_id);
    } else if (t.state == "scheduled" || t.state == "queued" || t.state == "running" ||
               t.state == "up_for_retry") {
      busy.insert(t.run_id);
    }
  }
  for (const store::RunRow& r : *unfinished) {
    if (r.state != "running" || !parked.count(r.run_id) || busy.count(r.run_id)) return false;
  }
  return true;
}

Status Host::close(int64_t deadline_ms) {
  if (scheduler_) scheduler_->stop();
  Status s;
  if (engine_) {
    s = engine_->stop(deadline_ms);
    if (s.ok()) engine_.reset();
  }
  return s;
}

Host::~Host() {
  if (scheduler_) scheduler_->stop();
  if (engine_) (void)engine_->stop(0);
  engine_.reset();
  scheduler_.reset();
  store_.reset();
  log_.reset();
}

}  // namespace factory::cli
