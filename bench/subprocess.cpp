#include "bench/subprocess.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include <fmt/format.h>
#include <sys/wait.h>

#include "bench/bench_util.h"

extern char** environ;

namespace factory::bench {

namespace {

void close_fd(int* fd) {
  if (*fd >= 0) ::close(*fd);
  *fd = -1;
}

int decode_wait_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

Result<Subprocess> Subprocess::spawn(const SpawnOptions& options) {
  if (options.argv.empty()) return Status::invalid_argument("spawn: empty argv");
  const std::string& path = options.argv[0];
  if (::access(path.c_str(), X_OK) != 0) {
    return Status::io_error(fmt::format("{}: {}", path, std::strerror(errno)));
  }

  int in_pipe[2] = {-1, -1};
  int out_pipe[2] = {-1, -1};
  auto fail = [&](std::string_view what) {
    Status s = Status::io_error(fmt::format("spawn {}: {}: {}", path, what, std::strerror(errno)));
    for (int* fd : {&in_pipe[0], &in_pipe[1], &out_pipe[0], &out_pipe[1]}) close_fd(fd);
    return s;
  };
  if (options.stdin_data) {
    if (::pipe2(in_pipe, O_CLOEXEC) != 0) return fail("pipe");
    // Written before the child starts, so timing the child excludes feeding it.
    const std::string& data = *options.stdin_data;
    if (::write(in_pipe[1], data.data(), data.size()) != static_cast<ssize_t>(data.size())) {
      return fail("write stdin");
    }
    close_fd(&in_pipe[1]);
  }
  if (options.capture_stdout && ::pipe2(out_pipe, O_CLOEXEC) != 0) return fail("pipe");

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (options.stdin_data) {
    posix_spawn_file_actions_adddup2(&actions, in_pipe[0], 0);
  } else {
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  }
  if (options.capture_stdout) {
    posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  } else {
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  }
  const std::string err = options.stderr_path.empty() ? "/dev/null" : options.stderr_path;
  posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);

  std::vector<char*> argv;
  for (const auto& a : options.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, path.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    errno = rc;
    return fail("posix_spawn");
  }
  close_fd(&in_pipe[0]);
  close_fd(&out_pipe[1]);
  return Subprocess(pid, out_pipe[0]);
}

Subprocess::Subprocess(Subprocess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      stdout_fd_(std::exchange(other.stdout_fd_, -1)),
      buffered_(std::move(other.buffered_)),
      eof_(other.eof_) {}

Subprocess::~Subprocess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  close_fd(&stdout_fd_);
}

Result<std::string> Subprocess::read_line(int64_t timeout_ms) {
  if (stdout_fd_ < 0 && buffered_.empty()) {
    return Status::failed_precondition("stdout was not captured");
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    size_t nl = buffered_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffered_.substr(0, nl);
      buffered_.erase(0, nl + 1);
      return line;
    }
    if (eof_) return Status::out_of_range("end of output");
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) return Status::timed_out(fmt::format("no line within {} ms", timeout_ms));
    pollfd pfd{.fd = stdout_fd_, .events = POLLIN, .revents = 0};
    int n = ::poll(&pfd, 1, static_cast<int>(left));
    if (n < 0 && errno != EINTR) return Status::io_error(std::strerror(errno));
    if (n <= 0) continue;
    char buf[4096];
    ssize_t got = ::read(stdout_fd_, buf, sizeof(buf));
    if (got < 0) {
      if (errno == EINTR) continue;
      return Status::io_error(std::strerror(errno));
    }
    if (got == 0) {
      eof_ = true;
    } else {
      buffered_.append(buf, static_cast<size_t>(got));
    }
  }
}

Result<int> Subprocess::wait(int64_t timeout_ms) {
  if (pid_ <= 0) return Status::failed_precondition("already reaped");
  Stopwatch sw;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return decode_wait_status(status);
    }
    if (r < 0 && errno != EINTR) return Status::io_error(std::strerror(errno));
    if (sw.elapsed_ms() >= static_cast<double>(timeout_ms)) {
      return Status::timed_out(fmt::format("pid {} still running after {} ms", pid_, timeout_ms));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

Result<int> Subprocess::stop(int sig, int64_t grace_ms) {
  if (pid_ <= 0) return Status::failed_precondition("already reaped");
  ::kill(pid_, sig);
  auto code = wait(grace_ms);
  if (code.ok() || !code.status().is_timed_out()) return code;
  ::kill(pid_, SIGKILL);
  return wait(10'000);
}

}  // namespace factory::bench
