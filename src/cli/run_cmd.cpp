// factoryd run [--config-dir DIR | --config FILE] [--drain-timeout-ms MS] [--exit-when-idle MS]
//              [--fail-on dlq,failed-run]
//
// Runs the pipelines of the config dir (default ./config; with --config FILE, a factory.yaml,
// its config_dir and data_dir) in the foreground until SIGTERM/SIGINT: applies
// CONFIG_DIR/topics.yaml when present, loads plugins, starts the engine. The first signal
// drains (in-flight batches finish and commit, then exit 0; exit 1 if the drain deadline
// passes); a second signal exits at once (143) — still losing nothing acknowledged.
// --fail-on (run_checks.h) makes a clean stop exit 1 when, while this process ran, an event
// was dead-lettered or a DAG run failed: CI's `run --exit-when-idle MS --fail-on ...`.
// While it runs, the API listens on <data-dir>/api.sock (owner-only, no token) and daemon.json
// points at it, so every CLI command on the data dir works beside it (serve_api.h).
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include <CLI/CLI.hpp>

#include "base/clock.h"
#include "cli/common.h"
#include "cli/factory_config.h"
#include "cli/host.h"
#include "cli/run_checks.h"
#include "cli/serve_api.h"
#include "obs/logger.h"

namespace factory::cli {
namespace {

void exit_now(int) { _exit(143); }

class Run : public Command {
 public:
  explicit Run(const CommonOptions* common) : common_(common) {}
  std::string config_dir = "config";
  int64_t drain_timeout_ms = 25'000;
  int64_t exit_when_idle_ms = 0;
  std::vector<std::string> fail_on_items;  // --fail-on

  int run() override {
    auto fail_on = parse_fail_on(fail_on_items);
    if (!fail_on.ok()) return usage_error(fail_on.status().message(), "");
    // Runs that fail from here on count for --fail-on failed-run.
    const int64_t started_ms = base::SystemClock::instance()->now_ms();
    if (!std::getenv("FACTORY_LOG_LEVEL")) obs::set_min_level(obs::Level::kInfo);
    // Block the stop signals before any thread starts, so they reach only sigtimedwait below.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    auto host = Host::open(
        *common_, {.config_dir = config_dir, .background_retention = true, .start_workers = true});
    if (!host) return kExitRuntime;
    auto api = start_local_api(host.get(), common_->data_dir, config_dir);
    obs::info("factoryd running",
              {{"config", config_dir},
               {"data_dir", common_->data_dir},
               {"bindings", static_cast<long>(host->pipelines().bindings.size())},
               {"dags", static_cast<long>(host->scheduler()->dags().size())}});

    auto idle_since = std::chrono::steady_clock::now();
    int64_t last_total = -1;
    for (;;) {
      timespec tick{0, 100'000'000};
      int sig = sigtimedwait(&stop_signals, nullptr, &tick);
      if (sig == SIGTERM || sig == SIGINT) {
        obs::info("draining",
                  {{"signal", sig}, {"deadline_ms", static_cast<long>(drain_timeout_ms)}});
        break;
      }
      if (exit_when_idle_ms > 0) {
        int64_t total = 0;
        for (const auto& s : host->engine()->stats()) {
          total += s.processed + s.dead_lettered + s.routed + s.duplicates + s.retries;
        }
        auto now = std::chrono::steady_clock::now();
        if (total != last_total || !host->caught_up()) {
          last_total = total;
          idle_since = now;
        } else if (now - idle_since >= std::chrono::milliseconds(exit_when_idle_ms)) {
          obs::info("idle: every binding caught up",
                    {{"idle_ms", static_cast<long>(exit_when_idle_ms)}});
          break;
        }
      }
    }
    // Dead letters as counted by the engine, which close() discards. With --exit-when-idle
    // nothing is in flight; after a signal, letters written during the drain are not counted.
    std::vector<DeadLetters> letters = dead_letters_since_start(host.get());
    // A second signal during the drain exits at once.
    struct sigaction sa {};
    sa.sa_handler = exit_now;
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    pthread_sigmask(SIG_UNBLOCK, &stop_signals, nullptr);
    if (api) api->stop(drain_timeout_ms);  // before the Host it serves; removes daemon.json
    Status s = host->close(drain_timeout_ms);
    if (!s.ok()) {
      obs::error("drain deadline passed", {{"error", s.to_string()}});
      _exit(kExitRuntime);  // workers still inside a stage: do not wait for them
    }
    std::vector<FailedRun> failed;
    if (fail_on->failed_run) {
      auto runs = failed_runs_since(host.get(), started_ms);
      if (!runs.ok()) return status_error("--fail-on: cannot read the DAG runs", runs.status(), "");
      failed = std::move(*runs);
    }
    host.reset();
    obs::info("stopped cleanly");
    std::vector<std::string> errors = fail_on_errors(*fail_on, letters, failed);
    for (const std::string& e : errors) runtime_error(e, "");
    return errors.empty() ? kExitOk : kExitRuntime;
  }

 private:
  const CommonOptions* common_;
};

// run's argument check. A factory.yaml given with --config FILE is read as serve reads it
// (flags > environment > file > defaults): its config_dir and data_dir, and logging.level.
// Then the config dir must exist (a usage error otherwise: `run` without one used to run
// nothing and exit 0), and a config dir with neither pipelines nor DAGs gets a warning.
int check_run_config(const CLI::App* app, CommonOptions* common, const std::string& factory_yaml,
                     std::string* config_dir) {
  if (!factory_yaml.empty()) {
    FlagOverrides flags;
    const CLI::Option* data_dir_flag = app->get_option_no_throw("--data-dir");
    if (data_dir_flag != nullptr && data_dir_flag->count() > 0) {
      flags.emplace_back("data_dir", common->data_dir);
    }
    const CLI::Option* config_dir_flag = app->get_option_no_throw("--config-dir");
    if (config_dir_flag != nullptr && config_dir_flag->count() > 0) {
      flags.emplace_back("config_dir", *config_dir);
    }
    auto config = load_factory_config(factory_yaml, flags, process_environment());
    if (!config.ok()) {
      return status_error("invalid config", config.status(),
                          "check it with `factoryd config validate --config " + factory_yaml + "`");
    }
    common->data_dir = config->data_dir;
    *config_dir = config->config_dir;
    for (const ConfigSetting& s : config->settings) {
      if (s.key != "logging.level" || s.origin == "default") continue;
      obs::set_min_level(config->log_level);
      ::setenv("FACTORY_LOG_LEVEL", s.value.c_str(), 1);  // Run::run keeps what is set
    }
  }
  if (!std::filesystem::is_directory(*config_dir)) {
    return config_dir_missing(*config_dir, "topics.yaml, pipelines/*.yaml and dags/*.yaml");
  }
  if (count_yaml_files(*config_dir + "/pipelines") == 0 &&
      count_yaml_files(*config_dir + "/dags") == 0) {
    warn("nothing to run in config dir '" + *config_dir + "': no pipelines (looked for " +
         *config_dir + "/pipelines/*.yaml) and no DAGs (" + *config_dir + "/dags/*.yaml)");
  }
  return kExitOk;
}

}  // namespace

void add_run_command(CLI::App* root, CommandRegistry* registry) {
  CommonOptions* common = registry->common();
  auto cmd = std::make_unique<Run>(common);
  CLI::App* app = root->add_subcommand(
      "run", "Run the pipelines of a config directory in the foreground until SIGTERM");
  // --fail-on first: a usage error comes before any warning about the config dir.
  registry->add_check(app, [items = &cmd->fail_on_items]() {
    auto fail_on = parse_fail_on(*items);
    return fail_on.ok() ? kExitOk : usage_error(fail_on.status().message(), "");
  });
  auto factory_yaml = std::make_shared<std::string>();
  add_config_dir_option(app, registry, &cmd->config_dir, /*dash_c=*/true, factory_yaml.get());
  registry->add_check(app, [app, common, factory_yaml, dir = &cmd->config_dir]() {
    return check_run_config(app, common, *factory_yaml, dir);
  });
  app->add_option("--drain-timeout-ms", cmd->drain_timeout_ms,
                  "How long SIGTERM waits for in-flight events")
      ->capture_default_str();
  app->add_option("--exit-when-idle", cmd->exit_when_idle_ms,
                  "Exit once every binding has caught up and stayed idle this many ms (CI)");
  app->add_option("--fail-on", cmd->fail_on_items,
                  "Exit 1 when, during this run, an event was dead-lettered (dlq) or a DAG run "
                  "failed (failed-run); e.g. --fail-on dlq,failed-run")
      ->type_name("CHECKS");
  add_common_options(app, common, /*output_names=*/"", DataDirUse::kHolds);  // prints no results
  registry->add(app, std::move(cmd));
}

}  // namespace factory::cli
