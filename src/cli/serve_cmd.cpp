// factoryd serve [--config FILE] [--listen IP:PORT] [--data-dir DIR] [--config-dir DIR]
// (bare `factoryd` does the same with the defaults)
//
// The daemon: opens the log, the store, the pipelines, the DAGs and the scheduler (a Host),
// then serves the HTTP API (http/api.h) until SIGTERM/SIGINT. Startup order: the server
// listens first with /readyz answering 503, then everything opens, then /readyz answers 200,
// <data-dir>/daemon.json tells CLI commands where the daemon is (remote.h), and systemd is
// told READY=1 when NOTIFY_SOCKET is set. The first signal turns /readyz to 503, stops the
// HTTP server (in-flight requests finish), drains the engine (in-flight batches finish and
// commit their offsets) and stops the scheduler, all within server.shutdown_timeout_ms, then
// exits 0 (1 when the deadline passed). A second signal exits at once with 143, still losing
// nothing acknowledged.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "cli/common.h"
#include "cli/factory_config.h"
#include "cli/host.h"
#include "cli/serve_api.h"
#include "obs/logger.h"

namespace factory::cli {
namespace {

void exit_now(int) { _exit(143); }

// systemd's sd_notify protocol, without libsystemd: one datagram to $NOTIFY_SOCKET.
void sd_notify(std::string_view state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (!path || !*path) return;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  size_t len = std::strlen(path);
  if (len >= sizeof(addr.sun_path)) return;
  std::memcpy(addr.sun_path, path, len);
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  socklen_t addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
  if (::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr),
               addr_len) < 0) {
    obs::warn("sd_notify failed", {{"error", std::strerror(errno)}});
  }
  ::close(fd);
}

class Serve : public Command {
 public:
  explicit Serve(const CommonOptions* common) : common_(common) {}
  std::string config_file;
  std::string listen;
  std::string data_dir;
  std::string config_dir;

  int run() override {
    Environment env = process_environment();
    FlagOverrides flags;
    if (!listen.empty()) flags.emplace_back("server.listen", listen);
    if (!data_dir.empty()) flags.emplace_back("data_dir", data_dir);
    if (!config_dir.empty()) flags.emplace_back("config_dir", config_dir);
    std::string path = config_file.empty() ? default_config_path(env) : config_file;
    auto config = load_factory_config(path, flags, env);
    if (!config.ok()) {
      return status_error("invalid config", config.status(),
                          "check it with `factoryd config validate`");
    }
    obs::set_min_level(config->log_level);
    for (const std::string& w : config->warnings) obs::warn("config", {{"warning", w}});

    // Block the stop signals before any thread starts, so they reach only sigwait below.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    auto api = ApiServer::start(*config);
    if (!api) return kExitRuntime;
    const std::string& url = api->url();

    CommonOptions common = *common_;
    common.data_dir = config->data_dir;
    auto host = Host::open(
        common,
        {.config_dir = config->config_dir, .background_retention = true, .start_workers = true});
    if (!host) {
      api->stop(0);
      return kExitRuntime;
    }
    api->attach(host.get());  // ready, and daemon.json written
    sd_notify("READY=1\nSTATUS=serving " + url);
    obs::info("factoryd serving", {{"url", url},
                                   {"data_dir", config->data_dir},
                                   {"config_dir", config->config_dir},
                                   {"config", config->file}});
    // For scripts and tests that asked for port 0: one line on stdout once ready.
    write_stdout(fmt::format("factoryd serving on {}\n", url));
    flush_stdout();

    int sig = 0;
    sigwait(&stop_signals, &sig);
    api->detach();  // /readyz 503, long-polls return, daemon.json removed
    sd_notify("STOPPING=1");
    obs::info("draining",
              {{"signal", sig}, {"deadline_ms", static_cast<long>(config->shutdown_timeout_ms)}});
    // A second signal during the drain exits at once.
    struct sigaction sa {};
    sa.sa_handler = exit_now;
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    pthread_sigmask(SIG_UNBLOCK, &stop_signals, nullptr);

    auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(config->shutdown_timeout_ms);
    api->stop(config->shutdown_timeout_ms);
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    Status s = host->close(std::max<int64_t>(0, left));
    if (!s.ok()) {
      obs::error("drain deadline passed", {{"error", s.to_string()}});
      _exit(kExitRuntime);  // workers still inside a stage: do not wait for them
    }
    host.reset();
    obs::info("stopped cleanly");
    return kExitOk;
  }

 private:
  const CommonOptions* common_;
};

}  // namespace

Command* add_serve_command(CLI::App* root, CommandRegistry* registry) {
  auto cmd = std::make_unique<Serve>(registry->common());
  Command* raw = cmd.get();
  CLI::App* app = root->add_subcommand(
      "serve", "Run the daemon: the log, the pipelines, the scheduler and the HTTP API");
  app->add_option("--config", cmd->config_file,
                  "Config file (default $FACTORY_CONFIG, else config/factory.yaml if present)");
  app->add_option("--listen", cmd->listen, "IP:PORT to listen on (server.listen)");
  app->add_option("--data-dir", cmd->data_dir, "Data directory (data_dir)");
  app->add_option("--config-dir", cmd->config_dir,
                  "Directory of topics.yaml, pipelines/ and dags/ (config_dir)");
  registry->add(app, std::move(cmd));
  return raw;
}

}  // namespace factory::cli
