#include "common/workspace.h"

#include <filesystem>
#include <fstream>
#include <string>

#include <catch2/catch.hpp>

#include "test_util.h"

namespace fs = std::filesystem;
using namespace factory;
using namespace factory::stages;

namespace {

const fs::path kSeed = fs::path(FACTORY_SOURCE_DIR) / "config/projects/invoices";

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string git_out(const fs::path& repo, std::vector<std::string> args) {
  Result<std::string> r = git(repo, args);
  REQUIRE_OK(r);
  return *r;
}

}  // namespace

TEST_CASE("ensure_repo imports the seed once with a reproducible commit", "[workspace]") {
  test::TempDir a, b;
  Result<std::string> repo = ensure_repo(a.path(), "invoices", kSeed);
  REQUIRE_OK(repo);
  CHECK(fs::path(*repo) == fs::absolute(repo_path(a.path(), "invoices")));
  CHECK(fs::exists(fs::path(*repo) / "invoices/core.py"));
  CHECK(git_out(*repo, {"log", "--format=%an <%ae>|%cn <%ce>|%s", "main"}) ==
        "factoryd <factoryd@localhost>|factoryd <factoryd@localhost>|Import invoices\n");
  // A second call finds it; another data dir gets the very same commit (fixed dates).
  // An index file of a commit_files that died with its process goes on the next call.
  std::ofstream(fs::path(*repo) / ".git/factory-index-999999999-1-0") << "x";
  Result<std::string> again = ensure_repo(a.path(), "invoices", "/does/not/matter");
  CHECK(!fs::exists(fs::path(*repo) / ".git/factory-index-999999999-1-0"));
  REQUIRE_OK(again);
  CHECK(*again == *repo);
  Result<std::string> other = ensure_repo(b.path(), "invoices", kSeed);
  REQUIRE_OK(other);
  CHECK(git_out(*repo, {"rev-parse", "main"}) == git_out(*other, {"rev-parse", "main"}));
  // No leftovers beside it.
  int entries = 0;
  for (const auto& e : fs::directory_iterator(fs::path(*repo).parent_path())) {
    (void)e;
    ++entries;
  }
  CHECK(entries == 1);
}

TEST_CASE("feature_branch makes a valid branch name of any ticket id", "[workspace]") {
  CHECK(feature_branch("INV-101") == "feature/INV-101");
  CHECK(feature_branch("acme/invoices#103") == "feature/acme/invoices#103");
  test::TempDir d;
  for (const char* id : {"a b~c^d:e?f*g[h\\i", "..", "x..y", "/lead", "trail/", ".hidden", "x.lock",
                         "end.", "a//b", "@{1}"}) {
    INFO(id);
    std::string branch = feature_branch(id);
    CHECK(git(d.path(), {"check-ref-format", "--branch", branch}).ok());
  }
}

TEST_CASE("ensure_repo refuses bad projects and seeds with clear messages", "[workspace]") {
  test::TempDir d;
  Result<std::string> r = ensure_repo(d.path(), "../evil", kSeed);
  REQUIRE(r.status().is_invalid_argument());
  r = ensure_repo(d.path(), "invoices", d.path() / "missing");
  REQUIRE(r.status().is_not_found());
  CHECK(r.status().message().find("project_dir") != std::string::npos);
  r = ensure_repo(d.path(), "shop", kSeed);
  REQUIRE(r.status().is_invalid_argument());
  CHECK(r.status().message().find("names the project 'invoices'") != std::string::npos);
}

TEST_CASE("commit_files commits without a working tree and finds trailers", "[workspace]") {
  test::TempDir d;
  Result<std::string> repo = ensure_repo(d.path(), "invoices", kSeed);
  REQUIRE_OK(repo);
  RepoLock lock = lock_branch(*repo, "feature/INV-1");
  CommitRequest req{.branch = "feature/INV-1",
                    .files = {{"invoices/a.py", "A = 1\n"}, {"tests/test_a.py", "# t\n"}},
                    .message = "INV-1: A (attempt 1)",
                    .trailers = {{"Factory-Event", "abc"}}};
  Result<std::string> c1 = commit_files(*repo, req, lock);
  REQUIRE_OK(c1);
  CHECK(git_out(*repo, {"rev-parse", "feature/INV-1"}) == *c1 + "\n");
  CHECK(git_out(*repo, {"status", "--porcelain"}).empty());  // main's working tree untouched
  CHECK(git_out(*repo, {"log", "-1", "--format=%B", *c1}) ==
        "INV-1: A (attempt 1)\n\nFactory-Event: abc\n\n");

  req.files = {{"invoices/a.py", "A = 2\n"}};
  req.message = "INV-1: A (attempt 2)";
  req.trailers = {{"Factory-Event", "abcd"}};
  Result<std::string> c2 = commit_files(*repo, req, lock);
  REQUIRE_OK(c2);
  CHECK(git_out(*repo, {"rev-list", "--count", "main..feature/INV-1"}) == "2\n");
  CHECK(git_out(*repo, {"log", "--format=%ct %at", "feature/INV-1"}) ==
        "1704067202 1704067202\n1704067201 1704067201\n1704067200 1704067200\n");

  auto found = find_commit_with_trailer(*repo, "feature/INV-1", "Factory-Event", "abc");
  REQUIRE_OK(found);
  REQUIRE(found->has_value());
  CHECK(**found == *c1);  // "abcd" is not a match for "abc"
  found = find_commit_with_trailer(*repo, "feature/INV-1", "Factory-Event", "nope");
  REQUIRE_OK(found);
  CHECK(!found->has_value());
  found = find_commit_with_trailer(*repo, "feature/none", "Factory-Event", "abc");
  REQUIRE_OK(found);
  CHECK(!found->has_value());

  Result<DiffStats> stats = diff_stats(*repo, "main", *c2);
  REQUIRE_OK(stats);
  CHECK(stats->files == std::vector<std::string>{"invoices/a.py", "tests/test_a.py"});
  CHECK(stats->insertions == 2);
  CHECK(stats->deletions == 0);

  // A commit on a parent that is no longer the tip is kept, and the branch stays.
  CommitRequest side{.branch = "feature/INV-1",
                     .parent = *c1,
                     .files = {{"tests/test_b.py", "# b\n"}},
                     .message = "INV-1: tests",
                     .trailers = {{"Factory-Event", "side"}}};
  Result<std::string> c3 = commit_files(*repo, side, lock);
  REQUIRE_OK(c3);
  CHECK(git_out(*repo, {"rev-parse", "feature/INV-1"}) == *c2 + "\n");
  found = find_commit_with_trailer(*repo, "feature/INV-1", "Factory-Event", "side");
  REQUIRE_OK(found);
  REQUIRE(found->has_value());
  CHECK(**found == *c3);

  // Bad paths are refused before anything is written.
  req.files = {{"../escape.py", "x"}};
  CHECK(commit_files(*repo, req, lock).status().is_invalid_argument());
  req.files = {{"/abs.py", "x"}};
  CHECK(commit_files(*repo, req, lock).status().is_invalid_argument());
}

TEST_CASE("clean_checkout checks a commit out and removes it afterwards", "[workspace]") {
  test::TempDir d;
  Result<std::string> repo = ensure_repo(d.path(), "invoices", kSeed);
  REQUIRE_OK(repo);
  RepoLock lock = lock_branch(*repo, "feature/X");
  Result<std::string> c = commit_files(
      *repo, {.branch = "feature/X", .files = {{"NEW.txt", "new\n"}}, .message = "X"}, lock);
  REQUIRE_OK(c);
  lock.unlock();
  fs::path dir;
  {
    Result<Checkout> co = clean_checkout(*repo, *c, d.path() / "scratch");
    REQUIRE_OK(co);
    dir = co->path();
    CHECK(read_file(dir / "NEW.txt") == "new\n");
    CHECK(fs::exists(dir / "factory-project.yaml"));
    Result<ProjectConfig> p = load_project(dir);
    REQUIRE_OK(p);
    CHECK(p->name == "invoices");
    CHECK(p->test_command.front() == "python3");
    CHECK(p->health_command.size() == 3);
  }
  CHECK(!fs::exists(dir));
  // A checkout left by a dead process goes; one of a live process (pid 1) stays.
  fs::create_directories(d.path() / "scratch/checkout-0123456789ab-999999999-1-0/x");
  fs::create_directories(d.path() / "scratch/checkout-0123456789ab-1-1-0/x");
  {
    Result<Checkout> co = clean_checkout(*repo, *c, d.path() / "scratch");
    REQUIRE_OK(co);
  }
  CHECK(!fs::exists(d.path() / "scratch/checkout-0123456789ab-999999999-1-0"));
  CHECK(fs::exists(d.path() / "scratch/checkout-0123456789ab-1-1-0"));
  CHECK(clean_checkout(*repo, "0123456789abcdef0123456789abcdef01234567", d.path())
            .status()
            .is_not_found());
}

TEST_CASE("load_project names the file and field that are wrong", "[workspace]") {
  test::TempDir d;
  CHECK(load_project(d.path()).status().is_not_found());
  std::ofstream(d.path() / "factory-project.yaml")
      << "name: x\ntest_command: python3 -m unittest\n";
  Result<ProjectConfig> p = load_project(d.path());
  REQUIRE(p.status().is_invalid_argument());
  CHECK(p.status().message().find("test_command must be a non-empty list") != std::string::npos);
  std::ofstream(d.path() / "factory-project.yaml") << "name: x\n";
  p = load_project(d.path());
  REQUIRE(p.status().is_invalid_argument());
  CHECK(p.status().message().find("'test_command' is missing") != std::string::npos);
}

TEST_CASE("git() reports failures with the command and git's message", "[workspace]") {
  test::TempDir d;
  Result<std::string> r = git(d.path(), {"rev-parse", "HEAD"});
  REQUIRE(!r.ok());
  CHECK(r.status().message().find("git rev-parse HEAD") != std::string::npos);
  CHECK(r.status().message().find("not a git repository") != std::string::npos);
}

TEST_CASE("run_in_dir runs in the directory with stderr merged in order", "[workspace]") {
  test::TempDir d;
  SubprocessOptions opts{.deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30)};
  Result<SubprocessResult> r = run_in_dir(d.path(),
                                          {"python3", "-c",
                                           "import os,sys; print(os.getcwd()); sys.stdout.flush(); "
                                           "sys.stderr.write('err\\n'); sys.exit(3)"},
                                          opts, {"FACTORY_X=1"});
  REQUIRE_OK(r);
  CHECK(r->outcome == SubprocessResult::Outcome::kExited);
  CHECK(r->exit_code == 3);
  CHECK(r->out == fs::canonical(d.path()).string() + "\nerr\n");
  // A clean environment: only PATH, HOME, LANG and what the caller adds.
  ::setenv("FACTORY_TEST_SECRET", "s3cret", 1);
  r = run_in_dir(d.path(), {"env"}, opts, {"FACTORY_X=1"}, CommandEnv::kClean);
  REQUIRE_OK(r);
  CHECK(r->out.find("FACTORY_TEST_SECRET") == std::string::npos);
  CHECK(r->out.find("FACTORY_X=1\n") != std::string::npos);
  CHECK(r->out.find("HOME=" + d.str() + "\n") != std::string::npos);
  r = run_in_dir(d.path(), {"env"}, opts);
  REQUIRE_OK(r);
  CHECK(r->out.find("FACTORY_TEST_SECRET=s3cret") != std::string::npos);
  ::unsetenv("FACTORY_TEST_SECRET");
  r = run_in_dir(d.path(), {"no-such-program-factoryd"}, opts);
  REQUIRE_OK(r);
  CHECK(r->exit_code == 127);
  CHECK(r->out.find("no-such-program-factoryd") != std::string::npos);
}

TEST_CASE("check_file_path refuses control characters, '-', '..', '.git', '\\' and absolutes",
          "[workspace]") {
  for (const char* ok : {"a.py", "src/app/main.py", "tests/test_x.py", "a-b/c_d.e", "x/.hidden"}) {
    INFO(ok);
    CHECK(check_file_path(ok).ok());
  }
  std::vector<std::string> bad = {"",       "/etc/passwd", "a\\b",   "a//b",    "a/",      "./a",
                                  "a/../b", ".git/x",      "x/.GIT", "-rf",     "src/--x", "a\nb",
                                  "a\tb",   "a\rb",        "a\x7f",  "a\x1b[2J"};
  bad.push_back(std::string("a\0b", 3));
  for (const std::string& p : bad) {
    INFO(p);
    Status s = check_file_path(p);
    REQUIRE(s.is_invalid_argument());
    // The message never carries the control character itself.
    for (char c : s.message()) CHECK((static_cast<unsigned char>(c) >= 0x20 && c != 0x7f));
  }
  CHECK(check_file_path("a\nb").message().find("a\\x0Ab") != std::string::npos);
}

TEST_CASE("a newline in a generated path cannot inject a symlink into the index", "[workspace]") {
  // The review's case: a model answer's path ends its index line and starts another that makes
  // requirements.txt a symlink to a host file (the blob holding the link target is another file
  // of the same answer, so its id is known in advance).
  test::TempDir d;
  Result<std::string> repo = ensure_repo(d.path(), "invoices", kSeed);
  REQUIRE_OK(repo);
  std::string target_blob;
  {
    GitOptions in{.input = "/etc/hostname"};
    Result<std::string> b = git(*repo, {"hash-object", "--stdin"}, in);
    REQUIRE_OK(b);
    target_blob = b->substr(0, 40);
  }
  RepoLock lock = lock_branch(*repo, "feature/EVIL");
  CommitRequest req{.branch = "feature/EVIL",
                    .files = {{"target.txt", "/etc/hostname"},
                              {"notes.txt\n120000 " + target_blob + "\trequirements.txt", "x"}},
                    .message = "EVIL: answer"};
  Result<std::string> c = commit_files(*repo, req, lock);
  REQUIRE(c.status().is_invalid_argument());
  CHECK(c.status().message().find("control character") != std::string::npos);
  CHECK(!resolve_commit(*repo, "refs/heads/feature/EVIL")->has_value());
}

TEST_CASE("clean_checkout refuses a tree with a symlink or a submodule", "[workspace]") {
  test::TempDir d;
  Result<std::string> repo = ensure_repo(d.path(), "invoices", kSeed);
  REQUIRE_OK(repo);
  // A tree made with plumbing, as an attacker with any other way into the repository would.
  GitOptions in{.input = "/etc/hostname"};
  Result<std::string> blob = git(*repo, {"hash-object", "-w", "--stdin"}, in);
  REQUIRE_OK(blob);
  const std::string head = git_out(*repo, {"rev-parse", "main"}).substr(0, 40);
  for (const std::string& mode : {"120000 blob " + blob->substr(0, 40), "160000 commit " + head}) {
    INFO(mode);
    const fs::path index = d.path() / ("index-" + mode.substr(0, 6));
    GitOptions with_index{.env = {"GIT_INDEX_FILE=" + index.string()}};
    REQUIRE_OK(git(*repo, {"read-tree", "main"}, with_index));
    with_index.input =
        mode.substr(0, 6) + " " + mode.substr(mode.rfind(' ') + 1) + "\trequirements.txt\n";
    REQUIRE_OK(git(*repo, {"update-index", "--add", "--index-info"}, with_index));
    with_index.input.clear();
    Result<std::string> tree = git(*repo, {"write-tree"}, with_index);
    REQUIRE_OK(tree);
    GitOptions msg{.input = "evil\n"};
    Result<std::string> commit =
        git(*repo, {"commit-tree", tree->substr(0, 40), "-p", head, "-F", "-"}, msg);
    REQUIRE_OK(commit);
    Result<Checkout> co = clean_checkout(*repo, commit->substr(0, 40), d.path() / "scratch");
    REQUIRE(co.status().code() == Status::Code::kFailedPrecondition);
    CHECK(co.status().message().find("'requirements.txt'") != std::string::npos);
    CHECK(co.status().message().find(mode.starts_with("120000") ? "symbolic link" : "submodule") !=
          std::string::npos);
    CHECK(check_regular_tree(*repo, commit->substr(0, 40)).code() ==
          Status::Code::kFailedPrecondition);
  }
  CHECK(check_regular_tree(*repo, "main").ok());
}

TEST_CASE("a newline in a subject or trailer value cannot forge a trailer", "[workspace]") {
  // Defence in depth behind ingest's check of ticket ids: commit_files escapes control
  // characters, so "Factory-Round: forged" never becomes a line of its own.
  test::TempDir d;
  Result<std::string> repo = ensure_repo(d.path(), "invoices", kSeed);
  REQUIRE_OK(repo);
  RepoLock lock = lock_branch(*repo, "feature/INV-2");
  CommitRequest req{.branch = "feature/INV-2",
                    .files = {{"a.txt", "a\n"}},
                    .message = "INV-2\nFactory-Round: forged: title",
                    .trailers = {{"Factory-Model", "m\nFactory-Event: forged2"}}};
  Result<std::string> c = commit_files(*repo, req, lock);
  REQUIRE_OK(c);
  CHECK(git_out(*repo, {"log", "-1", "--format=%B", *c}) ==
        "INV-2\\x0AFactory-Round: forged: title\n\nFactory-Model: m\\x0AFactory-Event: "
        "forged2\n\n");
  for (const auto& [key, value] :
       {std::pair{"Factory-Round", "forged: title"}, std::pair{"Factory-Event", "forged2"}}) {
    auto found = find_commit_with_trailer(*repo, "feature/INV-2", key, value);
    REQUIRE_OK(found);
    CHECK(!found->has_value());
  }
  auto trailers = commit_trailers(*repo, *c);
  REQUIRE_OK(trailers);
  REQUIRE(trailers->size() == 1);
  CHECK((*trailers)[0].first == "Factory-Model");
  // The written value is found by the value it was written from.
  auto same = find_commit_with_trailer(*repo, "feature/INV-2", "Factory-Model",
                                       "m\nFactory-Event: forged2");
  REQUIRE_OK(same);
  CHECK(same->has_value());
  req.trailers = {{"Bad Key\n", "x"}};
  CHECK(commit_files(*repo, req, lock).status().is_invalid_argument());
}
