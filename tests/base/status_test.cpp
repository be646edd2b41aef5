#include "factory/status.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <functional>
#include <string>

#include <sys/wait.h>

#include "test_util.h"

namespace factory {
namespace {

struct Death {
  bool aborted = false;  // killed by SIGABRT
  std::string err;       // what it wrote on stderr
};

// Runs `body` in a forked child with stderr on a pipe; the child exits 0 if body returns.
Death run_in_child(const std::function<void()>& body) {
  int err[2];
  REQUIRE(::pipe2(err, O_CLOEXEC) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(err[1], 2);
    body();
    ::_exit(0);
  }
  ::close(err[1]);
  Death d;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(err[0], buf, sizeof buf)) > 0) d.err.append(buf, static_cast<size_t>(n));
  ::close(err[0]);
  int wstatus = 0;
  REQUIRE(::waitpid(pid, &wstatus, 0) == pid);
  d.aborted = WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGABRT;
  return d;
}

TEST_CASE("Result dereferenced with an error aborts with the status", "[base]") {
  SECTION("operator*") {
    Death d = run_in_child([] {
      Result<int> r = Status::not_found("run 'r1' is gone");
      std::fprintf(stderr, "%d\n", *r);
    });
    INFO("stderr: " << d.err);
    CHECK(d.aborted);
    CHECK(d.err.find("Result accessed with an error: NotFound: run 'r1' is gone") !=
          std::string::npos);
  }
  SECTION("operator-> on an rvalue's value") {
    Death d = run_in_child([] {
      Result<std::string> r = Status::busy("the data dir is held");
      std::string s = *std::move(r);
      std::fprintf(stderr, "%zu\n", s.size());
    });
    INFO("stderr: " << d.err);
    CHECK(d.aborted);
    CHECK(d.err.find("Busy: the data dir is held") != std::string::npos);
  }
  SECTION("a value is returned, and the child exits normally") {
    Death d = run_in_child([] {
      Result<std::string> r = std::string("ok");
      if (r->size() != 2 || *r != "ok") std::abort();
    });
    INFO("stderr: " << d.err);
    CHECK_FALSE(d.aborted);
    CHECK(d.err.empty());
  }
}

TEST_CASE("Status names its code with is_*()", "[base]") {
  CHECK(Status::already_exists("x").is_already_exists());
  CHECK_FALSE(Status::not_found("x").is_already_exists());
  CHECK_FALSE(Status::ok_status().is_already_exists());
}

}  // namespace
}  // namespace factory
