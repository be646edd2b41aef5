// The factory's workspace: where target projects' git repositories live, the git runner every
// factory stage uses, and the few repository operations they share (seed a repository, commit
// files to a branch, find a commit by a trailer such as Factory-Round, check a commit out into a
// scratch directory, read factory-project.yaml).
//
// Layout under the data dir (ctx.data_dir()):
//   <data_dir>/factory/                 factory_root()
//   <data_dir>/factory/repos/<project>  repo_path(): a non-bare git repository, branch main
//                                        checked out, one feature/<ticket> branch per ticket
//   <data_dir>/factory/releases/        releases_root() (the deploy stage's)
//   <data_dir>/factory/home/            HOME for git (see git())
//
// The seed of a repository is a project folder such as config/projects/invoices/ (the stages'
// `project_dir` param; resolve_project_dir() turns a relative one into an absolute path against
// the process's working directory). It is read once, when the repository does not exist yet;
// from then on the repository is the truth: load_project() reads factory-project.yaml from a
// checkout, so later stages never need the seed.
//
// Git runs as the `git` CLI through run_subprocess (no shell) with a fixed identity and
// environment: author and committer "factoryd <factoryd@localhost>", fixed dates (kGitDate, then
// one second per commit after its parent) so the same inputs give the same commit hashes,
// GIT_CONFIG_NOSYSTEM=1, GIT_CONFIG_GLOBAL=/dev/null and HOME set, so no user or system git config
// leaks in.
//
// Feature commits never touch a working tree: commit_files() writes blobs, a tree and a commit
// with plumbing (a private index file) and moves the branch with a compare-and-swap update-ref,
// so concurrent commits to different branches of one repository cannot disturb each other.
//
// Thread-safety: every function is thread-safe. ensure_repo holds the repository's
// process-wide lock (lock_repo) while it creates it. commit_files needs the caller to hold the
// branch's lock (lock_branch): a caller doing check-then-commit (find_commit_with_trailer, then
// commit_files) holds it across both. Commits to different branches run in parallel.
//
// Example (what codegen does):
//   Result<std::string> repo = ensure_repo(ctx.data_dir(), "invoices", seed_dir);
//   RepoLock lock = lock_branch(*repo, "feature/INV-101");
//   auto done = find_commit_with_trailer(*repo, "feature/INV-101", "Factory-Round", key);
//   if (done.ok() && !done->has_value()) {
//     CommitRequest req{.branch = "feature/INV-101", .files = files,
//                       .message = "INV-101: Export invoices as CSV (attempt 1)",
//                       .trailers = {{"Factory-Round", key}}};
//     Result<std::string> commit = commit_files(*repo, req, lock);
//   }
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "exec/subprocess.h"
#include "factory/stage.h"
#include "factory/status.h"

namespace factory::stages {

// The author/committer date of a repository's first commit (2024-01-01T00:00:00Z); each
// commit_files commit is dated one second after its parent, so hashes stay reproducible.
inline constexpr std::string_view kGitDate = "@1704067200 +0000";
inline constexpr std::string_view kGitName = "factoryd";
inline constexpr std::string_view kGitEmail = "factoryd@localhost";

// ---- Paths ----
std::filesystem::path factory_root(const std::filesystem::path& data_dir);
std::filesystem::path repo_path(const std::filesystem::path& data_dir, std::string_view project);
std::filesystem::path releases_root(const std::filesystem::path& data_dir);
// "feature/<ticket>" (the ticket id as ingest wrote it, e.g. INV-101 or acme/invoices#103);
// characters git refuses in a branch name (space, ~ ^ : ? * [ \, "..", ...) become '-'.
std::string feature_branch(std::string_view ticket);
// `dir` when absolute, else absolute against the current working directory (lexically
// normalised). Empty: InvalidArgument.
Result<std::filesystem::path> resolve_project_dir(std::string_view dir);
// OK when `project` is a usable folder name: [A-Za-z0-9._-], 1..64 chars, not "." or "..".
Status check_project_name(std::string_view project);

// The id a side effect made for `event` is recorded under (the Factory-Event trailer): the event
// id of event.payload (event_id_for; event_id_for_bytes when it is not JSON). Outside a DAG it
// equals event.id. Inside one it does NOT: TaskStage hands the inner stage the dispatch record's
// id, which includes the try number, while the payload (the task's params) is the same on every
// try and redelivery. So this is what makes "once per event" hold across DAG retries too.
std::string idempotency_key(const Event& event);

// A workspace error as a stage outcome, "<what>: <message>": bad settings or data (invalid
// argument, not found, failed precondition, corruption) are permanent, the rest retryable.
StageResult stage_failure(const Status& s, std::string_view what);

// ---- The git runner ----
struct GitOptions {
  std::string input;             // stdin
  std::vector<std::string> env;  // extra NAME=value entries, overriding the fixed ones
  std::filesystem::path home;    // HOME; empty: /nonexistent (git reads no global config anyway)
  std::chrono::milliseconds timeout{120000};  // the whole call
  std::function<bool()> cancelled;            // polled; true kills git
};

// Runs `git -C <dir> <args...>` with the fixed environment above. Returns stdout when git exits
// 0. Errors: FailedPrecondition when git is not installed (says to run scripts/setup.sh);
// TimedOut when the timeout passed; Internal naming the command, the exit code and the start of
// stderr when git exits non-zero.
Result<std::string> git(const std::filesystem::path& dir, const std::vector<std::string>& args,
                        const GitOptions& options = {});

// ---- Repository operations ----
// A process-wide lock on one repository (by its path), or on one branch of it. Movable;
// unlocks when destroyed. The two are independent: lock_repo does not exclude lock_branch.
using RepoLock = std::unique_lock<std::mutex>;
RepoLock lock_repo(const std::filesystem::path& repo);
RepoLock lock_branch(const std::filesystem::path& repo, std::string_view branch);

// Makes sure <data_dir>/factory/repos/<project> exists. When it does not, it is created from
// `seed_dir` atomically (built beside it, then renamed): `git init -b main`, the seed's files,
// one commit "Import <project>". Returns the repository's absolute path. Errors:
// InvalidArgument for a bad project name, or a seed without factory-project.yaml or whose name
// differs from `project` (creating only); NotFound when the repository is missing and the seed
// folder does not exist; git's errors.
Result<std::string> ensure_repo(const std::filesystem::path& data_dir, std::string_view project,
                                const std::filesystem::path& seed_dir);

// The commit `ref` names (branch, tag or hash), or nullopt when there is no such ref.
Result<std::optional<std::string>> resolve_commit(const std::filesystem::path& repo,
                                                  std::string_view ref);

struct FileContent {
  std::string path;  // relative, '/'-separated, no "..", no leading '/'
  std::string content;
};

struct CommitRequest {
  std::string branch;  // e.g. "feature/INV-101"; created from `base` when missing
  std::string base = "main";
  // When set, the commit's parent is this commit instead of the branch tip; the branch then
  // moves only when its tip is `parent` (a fast-forward) or is created when missing. Otherwise
  // the new commit is kept under refs/factory/kept/<hash> (so it stays reachable) and the branch
  // is left alone.
  std::string parent;
  std::vector<FileContent> files;  // written over the branch's tree (added or replaced)
  // One line, the subject. Control characters (a newline in a ticket id, say) are written
  // escaped as \xNN, so nothing in it can start a line of its own, such as a forged trailer.
  std::string message;
  // Appended as "Key: value"; keys of letters, digits and '-', values escaped like `message`.
  std::vector<std::pair<std::string, std::string>> trailers;
};

// `text` with every control character (0x00-0x1F, 0x7F) written as \xNN and every backslash
// as \\ (so the escape is unambiguous): one printable line.
std::string escape_control(std::string_view text);

// Commits `files` on top of request.branch (or of request.base when the branch is missing; or of
// request.parent) without a working tree, and moves the branch to the new commit. Returns the
// commit hash.
// `lock` must hold lock_branch(repo, request.branch). Errors: InvalidArgument for a bad path
// (check_file_path) or no files; Busy when the branch moved concurrently (retry); git's
// errors.
Result<std::string> commit_files(const std::filesystem::path& repo, const CommitRequest& request,
                                 const RepoLock& lock);

// The newest commit on `branch` or under refs/factory/ whose message has the trailer
// "<key>: <value>" as a whole line, or nullopt (also when the branch does not exist).
Result<std::optional<std::string>> find_commit_with_trailer(const std::filesystem::path& repo,
                                                            std::string_view branch,
                                                            std::string_view key,
                                                            std::string_view value);

// The "Key: value" lines of `commit`'s message body (its trailers, as commit_files wrote them),
// in order; a key seen twice keeps its last value. NotFound when there is no such commit.
Result<std::vector<std::pair<std::string, std::string>>> commit_trailers(
    const std::filesystem::path& repo, std::string_view commit);

// The branch point of `commit` on `base` (git merge-base), or NotFound.
Result<std::string> merge_base(const std::filesystem::path& repo, std::string_view base,
                               std::string_view commit);

struct DiffStats {
  std::vector<std::string> files;  // paths changed
  int insertions = 0;
  int deletions = 0;
};
// `git diff --numstat from to`.
Result<DiffStats> diff_stats(const std::filesystem::path& repo, std::string_view from,
                             std::string_view to);

// A clean checkout of one commit in a scratch directory (a `git clone --shared`, detached at the
// commit). The directory is removed when the Checkout is destroyed. Movable, not copyable.
class Checkout {
 public:
  Checkout() = default;
  explicit Checkout(std::filesystem::path dir) : dir_(std::move(dir)) {}
  Checkout(Checkout&& other) noexcept : dir_(std::exchange(other.dir_, {})) {}
  Checkout& operator=(Checkout&& other) noexcept;
  Checkout(const Checkout&) = delete;
  Checkout& operator=(const Checkout&) = delete;
  ~Checkout();

  const std::filesystem::path& path() const { return dir_; }
  // Keeps the directory (the destructor no longer removes it) and returns it.
  std::filesystem::path release() { return std::exchange(dir_, {}); }

 private:
  std::filesystem::path dir_;
};

// Checks `commit` of `repo` out into a new directory under `scratch_parent` (created if needed),
// named checkout-<commit>-<pid>-...; checkouts there whose process has died (kill -9) are
// removed first. Errors: NotFound when the commit does not exist; FailedPrecondition when its
// tree holds anything but regular files (check_regular_tree); IOError when the directory cannot
// be made; git's errors.
Result<Checkout> clean_checkout(const std::filesystem::path& repo, std::string_view commit,
                                const std::filesystem::path& scratch_parent);

// OK when `path` is a relative, '/'-separated path safe to write under a repository and to
// pass to a command: no control character (0x00-0x1F, 0x7F), no backslash, no leading '/', and
// no empty, ".", "..", ".git" (any case) or '-'-led component. InvalidArgument quoting the path
// (control characters as \xNN) otherwise.
Status check_file_path(std::string_view path);

// OK when every entry of `commit`'s tree is a regular file (mode 100644 or 100755) whose path
// passes check_file_path. Generated trees hold regular files only: a symbolic link (120000)
// would let a check read a host file (requirements.txt -> /etc/hostname), a submodule (160000)
// would fetch foreign code. FailedPrecondition naming the entry otherwise; git's errors.
// clean_checkout and the deploy stage's install check this before they materialise a tree.
Status check_regular_tree(const std::filesystem::path& repo, std::string_view commit);

// ---- Running a project's commands ----
enum class CommandEnv {
  kInherit,  // factoryd's environment plus extra_env
  kClean,    // only PATH, HOME=<dir>, LANG=C.UTF-8 plus extra_env: generated code under test
             // never sees factoryd's secrets (API keys, tokens) in its environment
};

// Runs `argv` (no shell) with `dir` as its working directory and stderr merged into stdout in
// order (r->out), through `env [-i] -C <dir> [NAME=value...] sh -c 'exec "$@" 2>&1' sh argv...`
// (the shell only redirects; argv is never parsed). A program that does not exist exits 127
// (126: not executable) with sh's message in r->out. Errors as run_subprocess; InvalidArgument
// for an empty argv.
Result<SubprocessResult> run_in_dir(const std::filesystem::path& dir,
                                    const std::vector<std::string>& argv,
                                    const SubprocessOptions& options,
                                    const std::vector<std::string>& extra_env = {},
                                    CommandEnv env = CommandEnv::kInherit);

// ---- The project file ----
// <dir>/factory-project.yaml:
//   name: invoices
//   test_command: [python3, -m, unittest, discover, -s, tests, -t, .]
//   health_command: [python3, -c, "import invoices"]
struct ProjectConfig {
  std::string name;
  std::vector<std::string> test_command;    // run in a checkout's root
  std::vector<std::string> health_command;  // empty when the file has none
};
// Reads and checks <dir>/factory-project.yaml. Errors: NotFound when the file is missing;
// InvalidArgument naming the file and the field when it is malformed.
Result<ProjectConfig> load_project(const std::filesystem::path& dir);

}  // namespace factory::stages
