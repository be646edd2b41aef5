// Runs a program (normally the real factoryd binary) as a child process for
// end-to-end tests.
//
//   auto r = factory::test::run_factoryd({"topics", "list", "--data-dir",
//   dir.str()}); REQUIRE(r.exit_code == 0);
//
// For interactive use (e.g. a crash test that kills the child mid-stream):
//   factory::test::ChildProcess p = factory::test::spawn_factoryd({"produce",
//   "t", "--acks", ...}); p.write_stdin("a\n"); auto ack =
//   p.read_stdout_line(10000);   // "0 0" p.kill(SIGKILL); auto r = p.wait();
//   // r.term_signal == SIGKILL
//
// The child gets pipes for stdin, stdout and stderr; everything else is
// inherited. Header-only. Not thread-safe: one thread drives a ChildProcess.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <sys/types.h>
#include <sys/wait.h>

namespace factory::test {

struct ProcessResult {
  int exit_code = -1;   // the exit status; -1 when the child was killed by a signal
  int term_signal = 0;  // the signal that ended the child, else 0
  std::string out;      // everything written to stdout
  std::string err;      // everything written to stderr
};

// A started child with its three pipe ends. The destructor SIGKILLs and reaps a
// child that is still running and closes the fds.
class ChildProcess {
 public:
  ChildProcess(pid_t pid, int stdin_fd, int stdout_fd, int stderr_fd)
      : pid_(pid), in_(stdin_fd), out_(stdout_fd), err_(stderr_fd) {}
  ChildProcess(ChildProcess&& o) noexcept { *this = std::move(o); }
  ChildProcess& operator=(ChildProcess&& o) noexcept {
    std::swap(pid_, o.pid_);
    std::swap(in_, o.in_);
    std::swap(out_, o.out_);
    std::swap(err_, o.err_);
    std::swap(out_buf_, o.out_buf_);
    std::swap(out_taken_, o.out_taken_);
    std::swap(err_buf_, o.err_buf_);
    std::swap(err_taken_, o.err_taken_);
    return *this;
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status;
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
    }
    close_fd(&in_);
    close_fd(&out_);
    close_fd(&err_);
  }

  pid_t pid() const { return pid_; }
  int stdin_fd() const { return in_; }
  int stdout_fd() const { return out_; }
  int stderr_fd() const { return err_; }

  // Writes all of `data` to the child's stdin, draining its stdout/stderr
  // meanwhile so a child blocked on a full output pipe cannot deadlock us.
  // False when the child closed stdin.
  bool write_stdin(std::string_view data) {
    while (!data.empty()) {
      if (in_ < 0) return false;
      pollfd fds[3] = {{in_, POLLOUT, 0}, {out_, POLLIN, 0}, {err_, POLLIN, 0}};
      if (::poll(fds, 3, -1) < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      drain(fds[1], &out_, &out_buf_);
      drain(fds[2], &err_, &err_buf_);
      if (fds[0].revents & (POLLERR | POLLHUP)) return false;
      if (!(fds[0].revents & POLLOUT)) continue;
      ssize_t n = ::write(in_, data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        return false;
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  void close_stdin() { close_fd(&in_); }

  // The next '\n'-terminated stdout line (without '\n'), or nullopt when stdout
  // closes or `timeout_ms` passes first. Stderr is collected meanwhile.
  std::optional<std::string> read_stdout_line(int timeout_ms) {
    return read_line(&out_, &out_buf_, &out_taken_, timeout_ms);
  }

  // The next '\n'-terminated stderr line (without '\n'), or nullopt when stderr closes or
  // `timeout_ms` passes first. Stdout is collected meanwhile. Lines returned here are not
  // repeated in wait()'s `err`.
  std::optional<std::string> read_stderr_line(int timeout_ms) {
    return read_line(&err_, &err_buf_, &err_taken_, timeout_ms);
  }

  // Sends `sig` to the child.
  void kill(int sig) {
    if (pid_ > 0) ::kill(pid_, sig);
  }

  // Closes stdin, reads stdout/stderr to EOF and reaps the child. Output
  // already returned by read_stdout_line() is not repeated in `out`.
  ProcessResult wait() {
    close_stdin();
    while (out_ >= 0 || err_ >= 0) {
      pollfd fds[2] = {{out_, POLLIN, 0}, {err_, POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0 && errno != EINTR) break;
      drain(fds[0], &out_, &out_buf_);
      drain(fds[1], &err_, &err_buf_);
    }
    ProcessResult r;
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) r.term_signal = WTERMSIG(status);
    r.out = out_buf_.substr(out_taken_);
    r.err = err_buf_.substr(err_taken_);
    return r;
  }

 private:
  static void close_fd(int* fd) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }

  // The next line of one of the two pipes (*fd, buffered in *buf from *taken on), draining both
  // meanwhile so the child never blocks on the other.
  std::optional<std::string> read_line(int* fd, std::string* buf, size_t* taken, int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      size_t nl = buf->find('\n', *taken);
      if (nl != std::string::npos) {
        std::string line = buf->substr(*taken, nl - *taken);
        *taken = nl + 1;
        return line;
      }
      if (*fd < 0) return std::nullopt;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - std::chrono::steady_clock::now())
                      .count();
      if (left <= 0) return std::nullopt;
      pollfd fds[2] = {{out_, POLLIN, 0}, {err_, POLLIN, 0}};
      int r = ::poll(fds, 2, static_cast<int>(left));
      if (r < 0 && errno != EINTR) return std::nullopt;
      drain(fds[0], &out_, &out_buf_);
      drain(fds[1], &err_, &err_buf_);
    }
  }

  // Reads what is available on a polled fd into *buf; closes it at EOF or
  // error.
  static void drain(const pollfd& p, int* fd, std::string* buf) {
    if (*fd < 0 || p.fd < 0 || !(p.revents & (POLLIN | POLLHUP | POLLERR))) return;
    char chunk[65536];
    ssize_t n = ::read(*fd, chunk, sizeof chunk);
    if (n > 0) {
      buf->append(chunk, static_cast<size_t>(n));
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
      close_fd(fd);
    }
  }

  pid_t pid_ = -1;
  int in_ = -1;
  int out_ = -1;
  int err_ = -1;
  std::string out_buf_;
  size_t out_taken_ = 0;
  std::string err_buf_;
  size_t err_taken_ = 0;
};

// Starts argv[0] (a path, not searched in PATH) with piped stdin/stdout/stderr.
// `env` entries
// ("NAME=value") are set in the child on top of the inherited environment;
// "NAME" alone unsets NAME. Throws std::runtime_error when pipe/fork fails;
// exec failure shows up as exit code 127 with the reason on stderr.
inline ChildProcess spawn_process(const std::vector<std::string>& argv,
                                  const std::vector<std::string>& env = {}) {
  if (argv.empty()) throw std::runtime_error("spawn_process: empty argv");
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
  }
  // Everything the child touches is prepared before fork: only
  // async-signal-safe calls after.
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_copy = env;
  std::string exec_error = "exec " + argv[0] + " failed\n";

  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    ::signal(SIGPIPE, SIG_DFL);
    for (std::string& e : env_copy) {
      size_t eq = e.find('=');
      if (eq == std::string::npos) {
        ::unsetenv(e.c_str());
      } else {
        e[eq] = '\0';
        ::setenv(e.c_str(), e.c_str() + eq + 1, 1);
      }
    }
    ::execv(args[0], args.data());
    ssize_t ignored = ::write(2, exec_error.data(), exec_error.size());
    (void)ignored;
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  // Our writes to a child that already exited must fail with EPIPE, not kill
  // the test.
  ::signal(SIGPIPE, SIG_IGN);
  return ChildProcess(pid, in[1], out[0], err[0]);
}

// Runs argv to completion with `stdin_text` as its input.
inline ProcessResult run_process(const std::vector<std::string>& argv,
                                 std::string_view stdin_text = {},
                                 const std::vector<std::string>& env = {}) {
  ChildProcess p = spawn_process(argv, env);
  p.write_stdin(stdin_text);
  return p.wait();
}

#ifdef FACTORYD_BIN
// The factoryd binary under test with `args`; FACTORY_DATA_DIR and
// FACTORY_LOG_LEVEL are cleared so only the arguments decide.
inline ChildProcess spawn_factoryd(std::vector<std::string> args) {
  args.insert(args.begin(), FACTORYD_BIN);
  return spawn_process(args, {"FACTORY_DATA_DIR", "FACTORY_LOG_LEVEL"});
}

inline ProcessResult run_factoryd(std::vector<std::string> args, std::string stdin_text = {}) {
  ChildProcess p = spawn_factoryd(std::move(args));
  p.write_stdin(stdin_text);
  return p.wait();
}
#endif

}  // namespace factory::test
