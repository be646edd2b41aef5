// run_sandboxed (sandbox.h).
//
// The command line under bwrap, in the order bwrap applies it:
//   bwrap --die-with-parent --new-session
//         --unshare-ipc --unshare-pid --unshare-uts --unshare-cgroup-try [--unshare-net]
//         --ro-bind /usr /usr --ro-bind /etc /etc ...   system dirs (a symlink such as Debian's
//                                                        /bin -> usr/bin stays a symlink)
//         --ro-bind /dev/null /etc/shadow ...           credentials in /etc hidden
//         --tmpfs /etc/ssl/private --tmpfs /etc/factoryd
//         --proc /proc --dev /dev --tmpfs /tmp          fresh, private
//         --bind <work> <work> --chdir <work>           the only writable host path
//         -- argv...
// bwrap gets the clean environment itself and passes it on; the rlimits are set before bwrap
// is exec'd, so they hold for everything inside.
#include "exec/sandbox.h"

#include <stdlib.h>

#include <cctype>
#include <cstdlib>
#include <mutex>
#include <system_error>
#include <utility>

#include <sys/resource.h>

namespace factory::stages {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;

// Host paths a program needs to run, shown read-only in the sandbox when they exist. Not /opt
// (factoryd's own install, config and data may live there) nor /home, /root, /var, /srv.
constexpr const char* kSystemPaths[] = {"/usr", "/etc",   "/bin",   "/sbin",
                                        "/lib", "/lib32", "/lib64", "/libx32"};
// Parts of /etc that hold credentials: hidden (an empty file or directory over them).
constexpr const char* kHiddenFiles[] = {"/etc/shadow", "/etc/shadow-", "/etc/gshadow",
                                        "/etc/gshadow-", "/etc/sudoers"};
constexpr const char* kHiddenDirs[] = {"/etc/ssl/private", "/etc/factoryd", "/etc/sudoers.d"};

std::string default_path() {
  const char* p = std::getenv("PATH");
  return p != nullptr && *p != '\0' ? p : "/usr/local/bin:/usr/bin:/bin";
}

bool valid_env_name(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name.front()))) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

std::vector<std::string> bwrap_prefix(const fs::path& work, bool network,
                                      const std::vector<fs::path>& read_only = {},
                                      const std::vector<fs::path>& writable = {}) {
  std::vector<std::string> a = {
      "bwrap",         "--die-with-parent", "--new-session",       "--unshare-ipc",
      "--unshare-pid", "--unshare-uts",     "--unshare-cgroup-try"};
  if (!network) a.push_back("--unshare-net");
  for (const char* p : kSystemPaths) {
    std::error_code ec;
    if (fs::is_symlink(p, ec)) {
      fs::path target = fs::read_symlink(p, ec);
      if (!ec) a.insert(a.end(), {"--symlink", target.string(), p});
    } else if (fs::is_directory(p, ec)) {
      a.insert(a.end(), {"--ro-bind", p, p});
    }
  }
  for (const char* p : kHiddenFiles) {
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) a.insert(a.end(), {"--ro-bind", "/dev/null", p});
  }
  for (const char* p : kHiddenDirs) {
    std::error_code ec;
    if (fs::is_directory(p, ec) && !fs::is_symlink(p, ec)) a.insert(a.end(), {"--tmpfs", p});
  }
  a.insert(a.end(), {"--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"});
  for (const fs::path& p : read_only) a.insert(a.end(), {"--ro-bind", p.string(), p.string()});
  for (const fs::path& p : writable) a.insert(a.end(), {"--bind", p.string(), p.string()});
  a.insert(a.end(), {"--bind", work.string(), work.string(), "--chdir", work.string(), "--"});
  return a;
}

std::vector<std::pair<int, uint64_t>> rlimits(const SandboxLimits& l) {
  return {{RLIMIT_CPU, static_cast<uint64_t>(l.cpu_seconds)},
          {RLIMIT_AS, l.address_space_bytes},
          {RLIMIT_FSIZE, l.file_size_bytes},
          {RLIMIT_NOFILE, l.open_files},
          {RLIMIT_CORE, 0}};
}

struct Probe {
  Isolation isolation = Isolation::kRlimits;
  std::string why;  // of the fallback
};

Probe run_probe() {
  Probe p;
  std::error_code ec;
  fs::path dir = fs::temp_directory_path(ec);
  if (ec) dir = "/tmp";
  std::string templ = (dir / "factory-sandbox-probe-XXXXXX").string();
  if (::mkdtemp(templ.data()) == nullptr) {
    p.why = "cannot make a directory for the bwrap self-test";
    return p;
  }
  std::vector<std::string> argv = bwrap_prefix(templ, false);
  argv.push_back("true");
  SubprocessOptions opts;
  opts.deadline = Clock::now() + std::chrono::seconds(10);
  opts.env = std::vector<std::string>{"PATH=" + default_path()};
  Result<SubprocessResult> r = run_subprocess(argv, "", opts);
  fs::remove_all(templ, ec);
  if (!r.ok()) {
    p.why = "bwrap could not start: " + r.status().message();
  } else if (r->outcome == SubprocessResult::Outcome::kSpawnFailed) {
    p.why = "bwrap is not installed (Debian package bubblewrap; scripts/setup.sh installs it)";
  } else if (r->outcome != SubprocessResult::Outcome::kExited || r->exit_code != 0) {
    std::string err = r->err;
    while (!err.empty() && (err.back() == '\n' || err.back() == '\r')) err.pop_back();
    p.why = "bwrap failed its self-test (exit " + std::to_string(r->exit_code) + ": " + err +
            "); user namespaces may be off here";
  } else {
    p.isolation = Isolation::kBwrap;
  }
  return p;
}

const Probe& probe() {
  static const Probe p = run_probe();
  return p;
}

std::mutex forced_mu;
std::optional<Isolation> forced;  // GUARDED_BY(forced_mu)

}  // namespace

std::string_view isolation_name(Isolation isolation) {
  return isolation == Isolation::kBwrap ? "bwrap" : "rlimits";
}

Isolation isolation() {
  {
    std::lock_guard<std::mutex> lock(forced_mu);
    if (forced) return *forced;
  }
  return probe().isolation;
}

void set_isolation_for_test(std::optional<Isolation> f) {
  std::lock_guard<std::mutex> lock(forced_mu);
  forced = f;
}

void note_isolation(StageContext& ctx) {
  static std::once_flag logged;
  const Isolation used = isolation();
  std::call_once(logged, [&] {
    if (used == Isolation::kBwrap) {
      ctx.log_info(
          "generated code runs in a bwrap sandbox (no network, read-only system, private /tmp), "
          "with a clean environment and resource limits");
    } else {
      const std::string why = probe().why.empty() ? "forced by a test" : probe().why;
      ctx.log_warn(
          "generated code runs WITHOUT a sandbox, with only a clean environment and "
          "resource limits: " +
          why);
    }
  });
  ctx.count("sandbox_runs_" + std::string(isolation_name(used)));
}

Result<SubprocessResult> run_sandboxed(const std::vector<std::string>& argv,
                                       const SandboxOptions& options) {
  if (argv.empty() || argv.front().empty()) {
    return Status::invalid_argument("run_sandboxed: no program to run");
  }
  const fs::path& work = options.work_dir;
  std::error_code ec;
  if (work.empty() || work.is_relative() || !fs::is_directory(work, ec)) {
    return Status::invalid_argument("run_sandboxed: the work directory '" + work.string() +
                                    "' must be an existing absolute path");
  }
  for (const auto* paths : {&options.read_only, &options.writable}) {
    for (const fs::path& p : *paths) {
      if (p.is_relative() || !fs::exists(p, ec)) {
        return Status::invalid_argument("run_sandboxed: the extra path '" + p.string() +
                                        "' must be an existing absolute path");
      }
    }
  }
  const Isolation used = isolation();

  // A private TMPDIR outside the tree when there is no sandbox (bwrap has its own /tmp).
  std::string tmpdir = "/tmp";
  struct RemoveTmp {
    std::string dir;
    ~RemoveTmp() {
      std::error_code ignored;
      if (!dir.empty()) fs::remove_all(dir, ignored);
    }
  } remove_tmp;
  if (used == Isolation::kRlimits) {
    fs::path base = fs::temp_directory_path(ec);
    if (ec) base = "/tmp";
    std::string templ = (base / "factory-run-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) {
      return Status::io_error("run_sandboxed: cannot make a private TMPDIR under " + base.string());
    }
    tmpdir = templ;
    remove_tmp.dir = templ;
  }

  std::vector<std::string> env = {"PATH=" + default_path(), "HOME=" + work.string(), "LANG=C.UTF-8",
                                  "TMPDIR=" + tmpdir};
  for (const std::string& e : options.env) {
    const size_t eq = e.find('=');
    const std::string_view name = std::string_view(e).substr(0, eq);
    if (eq == std::string::npos || !valid_env_name(name)) {
      return Status::invalid_argument("environment entry '" + e.substr(0, 80) +
                                      "' must be NAME=value with NAME of letters, digits and _");
    }
    if (name.starts_with("FACTORY_SECRET_")) {
      return Status::invalid_argument(
          "environment entry " + std::string(name) +
          ": factoryd's secrets are never passed to generated code; give the command what it "
          "needs another way (a test double, a fixture)");
    }
    // A later entry for the same name replaces the earlier one (the caller's over the fixed).
    std::erase_if(env, [&](const std::string& have) {
      return have.compare(0, name.size() + 1, std::string(name) + "=") == 0;
    });
    env.push_back(e);
  }

  std::vector<std::string> full;
  if (used == Isolation::kBwrap) {
    full = bwrap_prefix(work, options.network, options.read_only, options.writable);
  }
  if (options.merge_stderr) {
    // The shell only redirects; argv is passed through "$@", never parsed.
    for (const char* a : {"sh", "-c", "exec \"$@\" 2>&1", "sh"}) full.emplace_back(a);
  }
  full.insert(full.end(), argv.begin(), argv.end());

  SubprocessOptions sub;
  sub.deadline = options.deadline;
  sub.cancelled = options.cancelled;
  sub.max_stdout_bytes = options.max_stdout_bytes;
  sub.max_stderr_bytes = options.max_stderr_bytes;
  sub.env = std::move(env);
  sub.working_dir = work;
  sub.rlimits = rlimits(options.limits);
  // bwrap itself and its pid-namespace init count as two more.
  sub.max_processes = options.limits.max_processes > 0
                          ? options.limits.max_processes + (used == Isolation::kBwrap ? 2 : 0)
                          : 0;
  return run_subprocess(full, "", sub);
}

}  // namespace factory::stages
