// The factory workspace (workspace.h).
#include "common/workspace.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <system_error>

#include <yaml-cpp/yaml.h>

#include "exec/subprocess.h"
#include "factory/event.h"

namespace factory::stages {
namespace fs = std::filesystem;

namespace {

using Outcome = SubprocessResult::Outcome;

constexpr std::string_view kZeroHash = "0000000000000000000000000000000000000000";

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string join_args(const std::vector<std::string>& args) {
  std::string out = "git";
  for (const std::string& a : args) {
    out += ' ';
    out += a;
  }
  return out;
}

// A name no other call of this process (or another process) uses at the same time.
std::string unique_suffix() {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t seed = std::random_device{}();
  std::ostringstream os;
  os << ::getpid() << '-' << std::hex << (seed & 0xffffff) << '-' << counter.fetch_add(1);
  return os.str();
}

}  // namespace

std::string escape_control(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", u);
      out += buf;
    } else if (c == '\\') {
      out += "\\\\";
    } else {
      out += c;
    }
  }
  return out;
}

Status check_file_path(std::string_view path) {
  // Printable in a message: a control character shows as \xNN, never as itself (a newline in
  // the path must not forge a second line in a report or a log).
  auto shown = [&] {
    std::string out;
    for (char c : path.substr(0, 200)) {
      unsigned char u = static_cast<unsigned char>(c);
      if (u < 0x20 || u == 0x7f) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\x%02X", u);
        out += buf;
      } else {
        out += c;
      }
    }
    return out;
  };
  auto refuse = [&](std::string_view why) {
    return Status::invalid_argument("generated file path '" + shown() + "' " + std::string(why) +
                                    "; a generated file needs a relative path of printable "
                                    "'/'-separated names, e.g. src/app.py");
  };
  if (path.empty()) return Status::invalid_argument("a generated file has an empty path");
  for (char c : path) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return refuse("holds a control character");
  }
  if (path.front() == '/') return refuse("is absolute");
  if (path.find('\\') != std::string_view::npos) return refuse("holds a backslash");
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") {
      return refuse("has an empty, '.' or '..' component");
    }
    // Any case: on a case-insensitive checkout ".GIT" is the repository's own directory.
    std::string lower(part);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower == ".git") return refuse("has a '.git' component");
    // A name a command could take for an option (a linter given `-rf`, `--output=...`).
    if (part.front() == '-') return refuse("has a component starting with '-'");
    start = end + 1;
  }
  return Status();
}

namespace {

// Removes what a process left behind when it died (kill -9, a crash): entries of `parent` named
// <prefix>[<field>-]*<pid>-... (the pid after `skip` dash-separated fields) when that pid is
// not alive.
void remove_dead(const fs::path& parent, std::string_view prefix, int skip) {
  std::error_code ec;
  for (auto it = fs::directory_iterator(parent, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.starts_with(prefix)) continue;
    size_t at = prefix.size();
    for (int i = 0; i < skip && at != std::string::npos; ++i) {
      at = name.find('-', at);
      if (at != std::string::npos) ++at;
    }
    if (at == std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::atol(name.c_str() + at));
    if (pid <= 0 || pid == ::getpid()) continue;
    if (::kill(pid, 0) == 0 || errno != ESRCH) continue;  // alive, or not ours to judge
    std::error_code ignored;
    fs::remove_all(it->path(), ignored);
  }
}

Status copy_seed(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::create_directories(to, ec);
  if (ec) return Status::io_error("cannot create " + to.string() + ": " + ec.message());
  for (auto it = fs::recursive_directory_iterator(from, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const fs::path name = it->path().filename();
    // Build litter a person may have left in the seed by running its tests there.
    if (name == ".git" || name == "__pycache__" || name == ".pytest_cache") {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (it->path().extension() == ".pyc") continue;
    const fs::path target = to / fs::relative(it->path(), from);
    if (it->is_directory()) {
      fs::create_directories(target, ec);
    } else if (it->is_regular_file()) {
      fs::copy_file(it->path(), target, fs::copy_options::overwrite_existing, ec);
    }
    if (ec) break;
  }
  if (ec) {
    return Status::io_error("copying the seed " + from.string() + " to " + to.string() + ": " +
                            ec.message());
  }
  return Status();
}

std::vector<std::string> yaml_command(const YAML::Node& node, const std::string& file,
                                      const char* field, Status* status) {
  std::vector<std::string> out;
  if (!node) return out;
  if (!node.IsSequence() || node.size() == 0) {
    *status = Status::invalid_argument(file + ": " + field +
                                       " must be a non-empty list of strings, e.g. [python3, -m, "
                                       "unittest] (no shell is involved)");
    return out;
  }
  for (const YAML::Node& arg : node) {
    if (!arg.IsScalar()) {
      *status = Status::invalid_argument(file + ": " + field + " must hold only strings");
      return {};
    }
    out.push_back(arg.as<std::string>());
  }
  return out;
}

}  // namespace

// ---- Paths ----

fs::path factory_root(const fs::path& data_dir) { return data_dir / "factory"; }

fs::path repo_path(const fs::path& data_dir, std::string_view project) {
  return factory_root(data_dir) / "repos" / std::string(project);
}

fs::path releases_root(const fs::path& data_dir) { return factory_root(data_dir) / "releases"; }

std::string feature_branch(std::string_view ticket) {
  // Characters git refuses in a ref name become '-'; so do empty, '.'-led and .lock components.
  std::string out = "feature";
  size_t start = 0;
  while (start <= ticket.size()) {
    size_t end = ticket.find('/', start);
    if (end == std::string_view::npos) end = ticket.size();
    std::string part;
    for (char c : ticket.substr(start, end - start)) {
      const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ||
                      c == '.' || c == '#' || c == '+' || c == '=' || c == ',';
      part += ok ? c : '-';
    }
    while (part.find("..") != std::string::npos) part.replace(part.find(".."), 2, "-");
    if (part.empty() || part.front() == '.') part.insert(part.begin(), '-');
    if (part.ends_with(".lock") || part.back() == '.') part += '-';
    out += "/" + part;
    start = end + 1;
  }
  return out;
}

std::string idempotency_key(const Event& event) {
  Result<EventId> id = event_id_for(event.payload);
  return id.ok() ? id->hex() : event_id_for_bytes(event.payload).hex();
}

StageResult stage_failure(const Status& s, std::string_view what) {
  std::string msg = std::string(what) + ": " + s.message();
  if (s.is_invalid_argument() || s.is_not_found() || s.is_failed_precondition() ||
      s.code() == Status::Code::kCorruption) {
    return StageResult::permanent(msg);
  }
  return StageResult::retryable(msg);
}

Result<fs::path> resolve_project_dir(std::string_view dir) {
  if (dir.empty()) {
    return Status::invalid_argument(
        "project_dir is empty; set it to the target project's folder, e.g. "
        "config/projects/invoices");
  }
  fs::path p(dir);
  if (p.is_relative()) {
    std::error_code ec;
    fs::path cwd = fs::current_path(ec);
    if (ec) return Status::io_error("cannot read the working directory: " + ec.message());
    p = cwd / p;
  }
  return p.lexically_normal();
}

Status check_project_name(std::string_view project) {
  bool ok = !project.empty() && project.size() <= 64 && project != "." && project != "..";
  for (char c : project) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) {
      ok = false;
    }
  }
  if (!ok) {
    return Status::invalid_argument("project name '" + std::string(project) +
                                    "' must be 1-64 characters of letters, digits, '.', '_', '-'");
  }
  return Status();
}

// ---- The git runner ----

Result<std::string> git(const fs::path& dir, const std::vector<std::string>& args,
                        const GitOptions& options) {
  const char* path_env = std::getenv("PATH");
  std::vector<std::string> argv = {
      "env",
      "-i",
      std::string("PATH=") + (path_env ? path_env : "/usr/local/bin:/usr/bin:/bin"),
      "HOME=" + (options.home.empty() ? std::string("/nonexistent") : options.home.string()),
      "LC_ALL=C",
      "GIT_CONFIG_NOSYSTEM=1",
      "GIT_CONFIG_GLOBAL=/dev/null",
      "GIT_TERMINAL_PROMPT=0",
      "GIT_AUTHOR_NAME=" + std::string(kGitName),
      "GIT_AUTHOR_EMAIL=" + std::string(kGitEmail),
      "GIT_AUTHOR_DATE=" + std::string(kGitDate),
      "GIT_COMMITTER_NAME=" + std::string(kGitName),
      "GIT_COMMITTER_EMAIL=" + std::string(kGitEmail),
      "GIT_COMMITTER_DATE=" + std::string(kGitDate),
  };
  for (const std::string& e : options.env) argv.push_back(e);
  argv.push_back("git");
  argv.push_back("-C");
  argv.push_back(dir.string());
  for (const std::string& a : args) argv.push_back(a);

  SubprocessOptions sub;
  sub.deadline = std::chrono::steady_clock::now() + options.timeout;
  sub.cancelled = options.cancelled;
  sub.max_stderr_bytes = 2000;
  Result<SubprocessResult> r = run_subprocess(argv, options.input, sub);
  if (!r.ok()) return r.status();
  const std::string what = join_args(args) + " (in " + dir.string() + ")";
  switch (r->outcome) {
    case Outcome::kExited:
      break;
    case Outcome::kSpawnFailed:
      return Status::failed_precondition("cannot run 'env' to start git: " +
                                         std::string(std::strerror(r->spawn_errno)));
    case Outcome::kTimedOut:
      return Status::timed_out(what + " did not finish within " +
                               std::to_string(options.timeout.count()) + " ms");
    case Outcome::kCancelled:
      return Status::shutting_down(what + " cancelled");
    case Outcome::kSignaled:
      return Status::internal(what + " killed by signal " + std::to_string(r->signal));
    case Outcome::kOutputTooLarge:
      return Status::internal(what + " printed more output than allowed");
    case Outcome::kProcessLimit:
      return Status::internal(what + " started more processes than allowed");
  }
  if (r->exit_code == 127 && r->err.find("git") != std::string::npos &&
      r->err.find("No such file") != std::string::npos) {
    return Status::failed_precondition(
        "git is not installed (or not on PATH); install it (scripts/setup.sh does)");
  }
  if (r->exit_code != 0) {
    return Status::internal(what + " exited with " + std::to_string(r->exit_code) + ": " +
                            trim(r->err));
  }
  return std::move(r->out);
}

// ---- Repository operations ----

namespace {

// One mutex per name, for the life of the process (a few per project).
RepoLock named_lock(const std::string& name) {
  static std::mutex table_mu;
  static std::map<std::string, std::unique_ptr<std::mutex>> table;
  std::mutex* mu;
  {
    std::lock_guard<std::mutex> guard(table_mu);
    auto& slot = table[name];
    if (!slot) slot = std::make_unique<std::mutex>();
    mu = slot.get();
  }
  return RepoLock(*mu);
}

}  // namespace

RepoLock lock_repo(const fs::path& repo) {
  return named_lock(fs::absolute(repo).lexically_normal().string());
}

RepoLock lock_branch(const fs::path& repo, std::string_view branch) {
  return named_lock(fs::absolute(repo).lexically_normal().string() + "\n" + std::string(branch));
}

Result<std::optional<std::string>> resolve_commit(const fs::path& repo, std::string_view ref) {
  if (ref.empty() || ref.front() == '-') {
    return Status::invalid_argument("bad git ref '" + std::string(ref) + "'");
  }
  Result<std::string> out =
      git(repo, {"rev-parse", "--verify", "--quiet", std::string(ref) + "^{commit}"});
  if (!out.ok()) {
    // --quiet: exit 1 with no message means "no such ref".
    if (out.status().code() == Status::Code::kInternal &&
        out.status().message().ends_with("exited with 1: ")) {
      return std::optional<std::string>();
    }
    return out.status();
  }
  return std::optional<std::string>(trim(*out));
}

Result<std::string> ensure_repo(const fs::path& data_dir, std::string_view project,
                                const fs::path& seed_dir) {
  FACTORY_RETURN_IF_ERROR(check_project_name(project));
  const fs::path repo = fs::absolute(repo_path(data_dir, project)).lexically_normal();
  RepoLock lock = lock_repo(repo);
  std::error_code ec;
  if (fs::exists(repo / ".git", ec)) {
    Result<std::optional<std::string>> main = resolve_commit(repo, "main");
    if (!main.ok()) return main.status();
    if (!main->has_value()) {
      return Status::corruption(repo.string() +
                                " exists but has no branch main; move it away to re-import");
    }
    remove_dead(repo / ".git", "factory-index-", 0);  // commit_files' private index files
    return repo.string();
  }
  if (!fs::is_directory(seed_dir, ec)) {
    return Status::not_found("the project folder " + seed_dir.string() + " (seed of " +
                             repo.string() + ") does not exist; set project_dir to the target " +
                             "project's folder, e.g. config/projects/invoices");
  }
  Result<ProjectConfig> config = load_project(seed_dir);
  if (!config.ok()) return config.status();
  if (config->name != project) {
    return Status::invalid_argument((seed_dir / "factory-project.yaml").string() +
                                    " names the project '" + config->name +
                                    "' but the ticket's project is '" + std::string(project) +
                                    "'; point project_dir at that project's folder");
  }
  // Built beside the final place and renamed: a crash never leaves a half-made repository.
  const fs::path tmp = repo.parent_path() / (".import-" + std::string(project) + ".tmp");
  fs::remove_all(tmp, ec);
  FACTORY_RETURN_IF_ERROR(copy_seed(seed_dir, tmp));
  GitOptions opts{.home = factory_root(data_dir) / "home"};
  fs::create_directories(opts.home, ec);
  auto fail = [&](Status s) {
    std::error_code ignored;
    fs::remove_all(tmp, ignored);
    return s;
  };
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"init", "-q", "-b", "main"},
           // Commits that no branch holds any more (kept/ refs aside) must never be pruned.
           {"config", "gc.auto", "0"},
           {"add", "-A"},
           {"commit", "-q", "-m", "Import " + std::string(project)}}) {
    Result<std::string> r = git(tmp, args, opts);
    if (!r.ok()) return fail(r.status());
  }
  fs::rename(tmp, repo, ec);
  if (ec) {
    return fail(Status::io_error("cannot move " + tmp.string() + " to " + repo.string() + ": " +
                                 ec.message()));
  }
  return repo.string();
}

Result<std::string> commit_files(const fs::path& repo, const CommitRequest& request,
                                 const RepoLock& lock) {
  if (!lock.owns_lock()) return Status::internal("commit_files without the repository's lock");
  if (request.files.empty()) return Status::invalid_argument("nothing to commit: no files");
  if (request.branch.empty() || request.message.empty()) {
    return Status::invalid_argument("commit_files needs a branch and a message");
  }
  for (const FileContent& f : request.files) FACTORY_RETURN_IF_ERROR(check_file_path(f.path));
  for (const auto& [key, value] : request.trailers) {
    const bool ok = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '-';
    });
    if (!ok) {
      return Status::invalid_argument("trailer key '" + escape_control(key) +
                                      "' must be letters, digits and '-', e.g. Factory-Round");
    }
  }
  Result<std::string> checked = git(repo, {"check-ref-format", "--branch", request.branch});
  if (!checked.ok()) {
    return Status::invalid_argument("'" + request.branch + "' is not a valid git branch name");
  }

  const std::string ref = "refs/heads/" + request.branch;
  Result<std::optional<std::string>> old = resolve_commit(repo, ref);
  if (!old.ok()) return old.status();
  std::string parent;
  bool move_branch = true;
  if (!request.parent.empty()) {
    Result<std::optional<std::string>> p = resolve_commit(repo, request.parent);
    if (!p.ok()) return p.status();
    if (!p->has_value()) {
      return Status::not_found("parent commit '" + request.parent + "' does not exist in " +
                               repo.string());
    }
    parent = **p;
    move_branch = !old->has_value() || **old == parent;
  } else if (old->has_value()) {
    parent = **old;
  } else {
    Result<std::optional<std::string>> base = resolve_commit(repo, request.base);
    if (!base.ok()) return base.status();
    if (!base->has_value()) {
      return Status::not_found("base '" + request.base + "' does not exist in " + repo.string());
    }
    parent = **base;
  }

  fs::path git_dir = fs::absolute(repo) / ".git";
  std::error_code ec;
  if (!fs::is_directory(git_dir, ec)) {  // a bare repository, or a .git file
    Result<std::string> dir = git(repo, {"rev-parse", "--absolute-git-dir"});
    if (!dir.ok()) return dir.status();
    git_dir = trim(*dir);
  }
  const fs::path index = git_dir / ("factory-index-" + unique_suffix());
  struct RemoveIndex {
    fs::path p;
    ~RemoveIndex() {
      std::error_code ec;
      fs::remove(p, ec);
    }
  } remove_index{index};
  GitOptions with_index{.env = {"GIT_INDEX_FILE=" + index.string()}};

  Result<std::string> r = git(repo, {"read-tree", parent}, with_index);
  if (!r.ok()) return r.status();
  // NUL-terminated records (-z): a path is taken byte for byte and can never start a second
  // record, whatever it holds (check_file_path refuses control characters as well).
  std::string index_info;
  for (const FileContent& f : request.files) {
    GitOptions in{.input = f.content};
    Result<std::string> blob = git(repo, {"hash-object", "-w", "--stdin"}, in);
    if (!blob.ok()) return blob.status();
    index_info += "100644 " + trim(*blob) + "\t" + f.path;
    index_info.push_back('\0');
  }
  with_index.input = index_info;
  r = git(repo, {"update-index", "--add", "-z", "--index-info"}, with_index);
  if (!r.ok()) return r.status();
  with_index.input.clear();
  Result<std::string> tree = git(repo, {"write-tree"}, with_index);
  if (!tree.ok()) return tree.status();

  // Escaped, not refused: ingest already refuses control characters in ticket ids; this is the
  // last line of defence for whatever else reaches a message (a title, a model name).
  std::string message = escape_control(trim(request.message)) + "\n";
  if (!request.trailers.empty()) {
    message += "\n";
    for (const auto& [key, value] : request.trailers) {
      message += key + ": " + escape_control(value) + "\n";
    }
  }
  // One second after the parent: reproducible (a function of the parent), and `git log --all`
  // lists the newest work first although every date is fixed.
  Result<std::string> parent_time = git(repo, {"log", "-1", "--format=%ct", parent});
  if (!parent_time.ok()) return parent_time.status();
  const std::string date =
      "@" + std::to_string(std::atoll(trim(*parent_time).c_str()) + 1) + " +0000";
  GitOptions msg{.input = message,
                 .env = {"GIT_AUTHOR_DATE=" + date, "GIT_COMMITTER_DATE=" + date}};
  Result<std::string> commit =
      git(repo, {"commit-tree", trim(*tree), "-p", parent, "-F", "-"}, msg);
  if (!commit.ok()) return commit.status();
  const std::string hash = trim(*commit);
  if (!move_branch) {
    Result<std::string> kept =
        git(repo, {"update-ref", "refs/factory/kept/" + hash, hash, std::string(kZeroHash)});
    if (!kept.ok()) {
      // Already kept: the same inputs made the same commit before (fixed dates).
      Result<std::optional<std::string>> again = resolve_commit(repo, "refs/factory/kept/" + hash);
      if (!again.ok() || !again->has_value()) return kept.status();
    }
    return hash;
  }
  Result<std::string> moved =
      git(repo, {"update-ref", "-m", "factoryd: " + trim(request.message).substr(0, 80), ref, hash,
                 old->has_value() ? **old : std::string(kZeroHash)});
  if (!moved.ok()) {
    return Status::busy("branch " + request.branch +
                        " moved while committing: " + moved.status().message());
  }
  return hash;
}

Result<std::optional<std::string>> find_commit_with_trailer(const fs::path& repo,
                                                            std::string_view branch,
                                                            std::string_view key,
                                                            std::string_view value) {
  const std::string ref = "refs/heads/" + std::string(branch);
  Result<std::optional<std::string>> tip = resolve_commit(repo, ref);
  if (!tip.ok()) return tip.status();
  const std::string line = std::string(key) + ": " + escape_control(value);  // as written
  std::vector<std::string> args = {"log", "--format=%H%n%B%x1e", "--fixed-strings",
                                   "--grep=" + line, "--glob=refs/factory/*"};
  if (tip->has_value()) args.push_back(ref);
  Result<std::string> out = git(repo, args);
  if (!out.ok()) return out.status();
  // Newest first; a match must be a whole line (a trailer), not a prefix of a longer value.
  std::string_view rest = *out;
  while (!rest.empty()) {
    size_t end = rest.find('\x1e');
    std::string_view entry = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    while (!entry.empty() && entry.front() == '\n') entry.remove_prefix(1);
    size_t nl = entry.find('\n');
    if (nl == std::string_view::npos) continue;
    std::string hash(entry.substr(0, nl));
    std::istringstream body{std::string(entry.substr(nl + 1))};
    std::string l;
    bool in_subject = true;  // trailers follow the subject's paragraph
    while (std::getline(body, l)) {
      if (in_subject) {
        in_subject = !trim(l).empty();
        continue;
      }
      if (trim(l) == line) return std::optional<std::string>(hash);
    }
  }
  return std::optional<std::string>();
}

Result<std::vector<std::pair<std::string, std::string>>> commit_trailers(const fs::path& repo,
                                                                         std::string_view commit) {
  Result<std::optional<std::string>> hash = resolve_commit(repo, commit);
  if (!hash.ok()) return hash.status();
  if (!hash->has_value()) {
    return Status::not_found("commit '" + std::string(commit) + "' does not exist in " +
                             repo.string());
  }
  Result<std::string> body = git(repo, {"log", "-1", "--format=%B", **hash});
  if (!body.ok()) return body.status();
  std::vector<std::pair<std::string, std::string>> out;
  std::istringstream in(*body);
  std::string line;
  bool in_subject = true;  // the subject is never a trailer, whatever it looks like
  while (std::getline(in, line)) {
    if (in_subject) {
      in_subject = !trim(line).empty();
      continue;
    }
    size_t colon = line.find(": ");
    if (colon == std::string::npos || colon == 0) continue;
    std::string key = line.substr(0, colon);
    const bool token = std::all_of(key.begin(), key.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '-';
    });
    if (!token) continue;  // prose, not a trailer
    std::string value = trim(line.substr(colon + 2));
    auto it = std::find_if(out.begin(), out.end(), [&](const auto& kv) { return kv.first == key; });
    if (it != out.end()) {
      it->second = value;
    } else {
      out.emplace_back(std::move(key), std::move(value));
    }
  }
  return out;
}

Result<std::string> merge_base(const fs::path& repo, std::string_view base,
                               std::string_view commit) {
  Result<std::string> out = git(repo, {"merge-base", std::string(base), std::string(commit)});
  if (!out.ok()) {
    return Status::not_found("no merge base of " + std::string(base) + " and " +
                             std::string(commit) + " in " + repo.string() + ": " +
                             out.status().message());
  }
  return trim(*out);
}

Result<DiffStats> diff_stats(const fs::path& repo, std::string_view from, std::string_view to) {
  Result<std::string> out = git(
      repo, {"diff", "--numstat", "--no-renames", "-z", std::string(from), std::string(to), "--"});
  if (!out.ok()) return out.status();
  // -z: "<added>\t<deleted>\t<path>\0" per file ("-\t-\t" for binary files).
  DiffStats stats;
  std::string_view rest = *out;
  while (!rest.empty()) {
    size_t end = rest.find('\0');
    std::string_view entry = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    size_t t1 = entry.find('\t');
    size_t t2 = t1 == std::string_view::npos ? t1 : entry.find('\t', t1 + 1);
    if (t2 == std::string_view::npos) continue;
    std::string_view added = entry.substr(0, t1);
    std::string_view deleted = entry.substr(t1 + 1, t2 - t1 - 1);
    if (added != "-") stats.insertions += std::atoi(std::string(added).c_str());
    if (deleted != "-") stats.deletions += std::atoi(std::string(deleted).c_str());
    stats.files.emplace_back(entry.substr(t2 + 1));
  }
  return stats;
}

Checkout& Checkout::operator=(Checkout&& other) noexcept {
  if (this != &other) {
    Checkout old(std::move(*this));
    dir_ = std::exchange(other.dir_, {});
  }
  return *this;
}

Checkout::~Checkout() {
  if (dir_.empty()) return;
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

Status check_regular_tree(const fs::path& repo, std::string_view commit) {
  if (commit.empty() || commit.front() == '-') {
    return Status::invalid_argument("bad commit '" + std::string(commit) + "'");
  }
  // -z: "<mode> <type> <object>\t<path>\0" per entry, the path byte for byte.
  Result<std::string> out =
      git(repo, {"ls-tree", "-r", "-z", "--full-tree", std::string(commit) + "^{tree}"});
  if (!out.ok()) return out.status();
  std::string_view rest = *out;
  while (!rest.empty()) {
    size_t end = rest.find('\0');
    std::string_view entry = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    size_t tab = entry.find('\t');
    if (tab == std::string_view::npos) continue;
    std::string_view mode = entry.substr(0, entry.find(' '));
    std::string_view path = entry.substr(tab + 1);
    if (mode != "100644" && mode != "100755") {
      std::string kind = mode == "120000"   ? "a symbolic link"
                         : mode == "160000" ? "a submodule"
                                            : "an entry of mode " + std::string(mode);
      return Status::failed_precondition(
          "commit " + std::string(commit).substr(0, 12) + " of " + repo.string() + " holds " +
          kind + " at '" + std::string(path.substr(0, 200)) +
          "'; generated trees may hold regular files only, so it is not checked out or run");
    }
    if (Status s = check_file_path(path); !s.ok()) {
      return Status::failed_precondition("commit " + std::string(commit).substr(0, 12) + " of " +
                                         repo.string() + ": " + s.message());
    }
  }
  return Status();
}

Result<Checkout> clean_checkout(const fs::path& repo, std::string_view commit,
                                const fs::path& scratch_parent) {
  Result<std::optional<std::string>> hash = resolve_commit(repo, commit);
  if (!hash.ok()) return hash.status();
  if (!hash->has_value()) {
    return Status::not_found("commit '" + std::string(commit) + "' does not exist in " +
                             repo.string());
  }
  FACTORY_RETURN_IF_ERROR(check_regular_tree(repo, **hash));
  std::error_code ec;
  const fs::path parent = fs::absolute(scratch_parent).lexically_normal();
  fs::create_directories(parent, ec);
  if (ec) return Status::io_error("cannot create " + parent.string() + ": " + ec.message());
  remove_dead(parent, "checkout-", 1);
  Checkout checkout(parent / ("checkout-" + (**hash).substr(0, 12) + "-" + unique_suffix()));
  Result<std::string> r = git(parent, {"clone", "-q", "--shared", "--no-checkout",
                                       fs::absolute(repo).string(), checkout.path().string()});
  if (!r.ok()) return r.status();
  r = git(checkout.path(), {"checkout", "-q", "--detach", **hash});
  if (!r.ok()) return r.status();
  return checkout;
}

Result<SubprocessResult> run_in_dir(const fs::path& dir, const std::vector<std::string>& argv,
                                    const SubprocessOptions& options,
                                    const std::vector<std::string>& extra_env, CommandEnv env) {
  if (argv.empty()) return Status::invalid_argument("run_in_dir: empty command");
  std::vector<std::string> full = {"env"};
  if (env == CommandEnv::kClean) {
    const char* path_env = std::getenv("PATH");
    full.insert(full.end(),
                {"-i", "-C", dir.string(),
                 std::string("PATH=") + (path_env ? path_env : "/usr/local/bin:/usr/bin:/bin"),
                 "HOME=" + dir.string(), "LANG=C.UTF-8"});
  } else {
    full.insert(full.end(), {"-C", dir.string()});
  }
  for (const std::string& e : extra_env) full.push_back(e);
  for (const char* a : {"sh", "-c", "exec \"$@\" 2>&1", "sh"}) full.emplace_back(a);
  for (const std::string& a : argv) full.push_back(a);
  return run_subprocess(full, "", options);
}

// ---- The project file ----

Result<ProjectConfig> load_project(const fs::path& dir) {
  const fs::path file = dir / "factory-project.yaml";
  const std::string name = file.string();
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) {
    return Status::not_found(name +
                             " is missing; a target project needs one with name, test_command "
                             "and health_command (see config/projects/invoices)");
  }
  YAML::Node root;
  try {
    root = YAML::LoadFile(name);
  } catch (const YAML::Exception& e) {
    return Status::invalid_argument(name + ": not valid YAML: " + e.what());
  }
  if (!root.IsMap()) return Status::invalid_argument(name + ": must be a mapping (name: ...)");
  ProjectConfig config;
  if (!root["name"] || !root["name"].IsScalar() || root["name"].as<std::string>().empty()) {
    return Status::invalid_argument(name + ": 'name' (the project's name) is missing");
  }
  config.name = root["name"].as<std::string>();
  Status s;
  config.test_command = yaml_command(root["test_command"], name, "test_command", &s);
  if (s.ok())
    config.health_command = yaml_command(root["health_command"], name, "health_command", &s);
  if (!s.ok()) return s;
  if (config.test_command.empty()) {
    return Status::invalid_argument(name +
                                    ": 'test_command' is missing; e.g. test_command: [python3, "
                                    "-m, unittest, discover, -s, tests, -t, .]");
  }
  return config;
}

}  // namespace factory::stages
