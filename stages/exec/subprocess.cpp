// run_subprocess (subprocess.h).
//
// Lifecycle of one call:
//   1. Pipes for stdin/stdout/stderr plus a report pipe, all O_CLOEXEC and all above fd 2.
//   2. fork. The child makes itself a process-group leader, restores default signal handling,
//      moves the pipes onto 0/1/2 and execs; if exec fails it writes errno to the report pipe.
//      Only async-signal-safe calls run in the child (argv is built before the fork).
//   3. The parent reads the report pipe: EOF means exec succeeded (close-on-exec closed it).
//   4. A poll loop writes stdin, reads stdout/stderr and watches for the child's exit through a
//      pidfd (or, without one, a WNOHANG check every 10 ms) until the child exits, the deadline
//      passes, the caller cancels or stdout grows past its limit.
//   5. SIGKILL to the whole group (the child on timeout; stragglers otherwise), drain the pipes,
//      then reap. The child is only reaped after the group kill: until then its pid, and so the
//      group id, cannot be reused by an unrelated process.
#include "exec/subprocess.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>

namespace factory::stages {
namespace {

using Clock = std::chrono::steady_clock;
using Outcome = SubprocessResult::Outcome;

// An owned file descriptor; -1 when closed.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~Fd() { reset(); }
  int get() const { return fd_; }
  bool open() const { return fd_ >= 0; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);  // close(2) releases the fd even when it reports EINTR
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

Status errno_status(const char* what, int err) {
  return Status::io_error(std::string(what) + ": " + std::strerror(err));
}

// Moves `fd` to a number >= 3, so dup2 onto 0..2 in the child cannot clobber another pipe end
// (a factoryd started with stdin closed gets pipes at fd 0).
Status lift(Fd* fd) {
  if (fd->get() >= 3) return Status::ok_status();
  int moved = ::fcntl(fd->get(), F_DUPFD_CLOEXEC, 3);
  if (moved < 0) return errno_status("fcntl(F_DUPFD_CLOEXEC)", errno);
  *fd = Fd(moved);
  return Status::ok_status();
}

Status make_pipe(Fd* read_end, Fd* write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return errno_status("pipe2", errno);
  *read_end = Fd(fds[0]);
  *write_end = Fd(fds[1]);
  FACTORY_RETURN_IF_ERROR(lift(read_end));
  return lift(write_end);
}

Status set_nonblocking(const Fd& fd) {
  int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) < 0) {
    return errno_status("fcntl(O_NONBLOCK)", errno);
  }
  return Status::ok_status();
}

// Blocks SIGPIPE in this thread for its lifetime: writing to a child that closed its stdin then
// fails with EPIPE instead of killing the process. A SIGPIPE our writes left pending is consumed
// before the old mask comes back, unless the caller had SIGPIPE blocked already (then whatever
// is pending is the caller's).
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~SigpipeBlock() {
    if (!sigismember(&old_, SIGPIPE)) {
      const timespec zero{0, 0};
      while (sigtimedwait(&pipe_, nullptr, &zero) > 0) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;

 private:
  sigset_t pipe_;
  sigset_t old_;
};

// What the child does between fork and exec, prepared before the fork (no allocation after).
struct ChildSetup {
  char* const* argv = nullptr;
  char* const* envp = nullptr;  // null: inherit
  const char* working_dir = nullptr;
  const std::pair<int, uint64_t>* rlimits = nullptr;
  size_t rlimit_count = 0;
};

// Runs in the forked child: async-signal-safe calls only, never returns.
[[noreturn]] void exec_child(const ChildSetup& setup, int in_fd, int out_fd, int err_fd,
                             int report_fd) {
  char* const* argv = setup.argv;
  ::setpgid(0, 0);  // its own group, so a timeout can kill everything it started
  sigset_t none;
  sigemptyset(&none);
  pthread_sigmask(SIG_SETMASK, &none, nullptr);  // the SigpipeBlock mask is inherited
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGCHLD}) {
    ::sigaction(sig, &dfl, nullptr);  // factoryd may ignore some; a command expects defaults
  }
  if (::dup2(in_fd, 0) < 0 || ::dup2(out_fd, 1) < 0 || ::dup2(err_fd, 2) < 0) {
    int e = errno;
    (void)!::write(report_fd, &e, sizeof e);
    ::_exit(127);
  }
#ifdef CLOSE_RANGE_CLOEXEC
  // Descriptors other code opened without O_CLOEXEC must not leak into the command.
  ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
#endif
  for (size_t i = 0; i < setup.rlimit_count; ++i) {
    const rlimit lim{static_cast<rlim_t>(setup.rlimits[i].second),
                     static_cast<rlim_t>(setup.rlimits[i].second)};
    if (::setrlimit(setup.rlimits[i].first, &lim) != 0) {
      int e = errno;
      (void)!::write(report_fd, &e, sizeof e);
      ::_exit(127);
    }
  }
  if (setup.working_dir != nullptr && ::chdir(setup.working_dir) != 0) {
    int e = errno;
    (void)!::write(report_fd, &e, sizeof e);
    ::_exit(127);
  }
  if (setup.envp != nullptr) {
    // execvpe looks argv[0] up on factoryd's PATH (the one the caller resolved names against).
    ::execvpe(argv[0], argv, setup.envp);
  } else {
    ::execvp(argv[0], argv);
  }
  int e = errno;
  (void)!::write(report_fd, &e, sizeof e);
  ::_exit(127);
}

int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  return -1;
#endif
}

// True once the child has exited; leaves it unreaped (WNOWAIT).
bool has_exited(pid_t pid) {
  siginfo_t info{};
  while (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
    if (errno != EINTR) return true;  // ECHILD: nothing left to wait for
  }
  return info.si_pid == pid;
}

// Appends what `fd` has now. Returns false at EOF or on an error (the fd is then closed).
bool read_available(Fd* fd, std::string* out, size_t keep) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd->get(), buf, sizeof buf);
    if (n > 0) {
      size_t room = keep > out->size() ? keep - out->size() : 0;
      out->append(buf, std::min(room, static_cast<size_t>(n)));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    fd->reset();  // EOF, or an error: nothing more will come
    return false;
  }
}

// Drops a partial UTF-8 sequence left at the end by a byte cut.
void trim_utf8_tail(std::string* s) {
  size_t i = s->size();
  size_t back = 0;
  while (i > 0 && back < 4 && (static_cast<unsigned char>((*s)[i - 1]) & 0xC0) == 0x80) {
    --i;
    ++back;
  }
  if (i == 0) return;
  unsigned char lead = static_cast<unsigned char>((*s)[i - 1]);
  size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
  if (need > 1 && back + 1 < need) s->resize(i - 1);
}

// The processes `root` started: its descendants (by parent pid, so a process that made itself
// a new session is still found while its parent lives) and the members of its process group
// (so an orphan reparented to init is found too), `root` included. Read from /proc.
std::vector<pid_t> process_tree(pid_t root) {
  std::vector<std::pair<pid_t, pid_t>> parent;  // (pid, ppid)
  std::vector<pid_t> out;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return out;
  while (dirent* e = ::readdir(proc)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    char path[300];  // "/proc/" + a d_name of up to 255 bytes + "/stat"
    std::snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    char buf[512];
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0) continue;
    buf[n] = '\0';
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and ')', so parse after the last ')'.
    const char* close_paren = std::strrchr(buf, ')');
    if (close_paren == nullptr) continue;
    char state = 0;
    int ppid = 0, pgrp = 0;
    if (std::sscanf(close_paren + 1, " %c %d %d", &state, &ppid, &pgrp) != 3) continue;
    if (state == 'Z') continue;  // exited, holds nothing but its entry
    const pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
    if (pgrp == root) {
      out.push_back(pid);
    } else {
      parent.emplace_back(pid, static_cast<pid_t>(ppid));
    }
  }
  ::closedir(proc);
  if (std::find(out.begin(), out.end(), root) == out.end()) out.push_back(root);
  // Descendants: repeat until no new child is found (the table is small).
  for (bool grew = true; grew;) {
    grew = false;
    for (auto& [pid, ppid] : parent) {
      if (pid > 0 && std::find(out.begin(), out.end(), ppid) != out.end()) {
        out.push_back(pid);
        pid = 0;
        grew = true;
      }
    }
  }
  return out;
}

// SIGKILL to `pid`'s group and to every process of its tree.
void kill_tree(pid_t pid, bool whole_tree) {
  ::kill(-pid, SIGKILL);
  if (!whole_tree) return;
  for (pid_t p : process_tree(pid)) {
    if (p != pid) ::kill(p, SIGKILL);
  }
}

int poll_timeout_ms(Clock::time_point deadline, int cap_ms) {
  auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<int64_t>(left, 0, cap_ms));
}

}  // namespace

Result<SubprocessResult> run_subprocess(const std::vector<std::string>& argv,
                                        std::string_view input, const SubprocessOptions& options) {
  if (argv.empty() || argv[0].empty()) {
    return Status::invalid_argument("run_subprocess: no program to run");
  }
  std::vector<char*> cargv;
  cargv.reserve(argv.size() + 1);
  for (const std::string& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  std::vector<char*> cenv;
  if (options.env) {
    cenv.reserve(options.env->size() + 1);
    for (const std::string& e : *options.env) cenv.push_back(const_cast<char*>(e.c_str()));
    cenv.push_back(nullptr);
  }
  const std::string working_dir = options.working_dir.string();
  ChildSetup setup{.argv = cargv.data(),
                   .envp = options.env ? cenv.data() : nullptr,
                   .working_dir = working_dir.empty() ? nullptr : working_dir.c_str(),
                   .rlimits = options.rlimits.data(),
                   .rlimit_count = options.rlimits.size()};
  const bool watch_tree = options.max_processes > 0;

  Fd in_r, in_w, out_r, out_w, err_r, err_w, report_r, report_w;
  FACTORY_RETURN_IF_ERROR(make_pipe(&in_r, &in_w));
  FACTORY_RETURN_IF_ERROR(make_pipe(&out_r, &out_w));
  FACTORY_RETURN_IF_ERROR(make_pipe(&err_r, &err_w));
  FACTORY_RETURN_IF_ERROR(make_pipe(&report_r, &report_w));

  SigpipeBlock sigpipe_block;
  pid_t pid = ::fork();
  if (pid < 0) return errno_status("fork", errno);
  if (pid == 0) exec_child(setup, in_r.get(), out_w.get(), err_w.get(), report_w.get());

  // Also set here, so the group exists whichever side runs first; after the child's exec this
  // fails with EACCES, which is fine: the child set it itself.
  ::setpgid(pid, pid);
  in_r.reset();
  out_w.reset();
  err_w.reset();
  report_w.reset();

  SubprocessResult result;
  int spawn_errno = 0;
  ssize_t n = 0;
  do {
    n = ::read(report_r.get(), &spawn_errno, sizeof spawn_errno);
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof spawn_errno)) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    result.outcome = Outcome::kSpawnFailed;
    result.spawn_errno = spawn_errno;
    return result;
  }
  report_r.reset();

  for (Fd* fd : {&in_w, &out_r, &err_r}) {
    Status s = set_nonblocking(*fd);
    if (!s.ok()) {
      ::kill(-pid, SIGKILL);
      int status = 0;
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      return s;
    }
  }
  Fd pidfd(open_pidfd(pid));
  // With a pidfd, exit wakes the poll; without, check for it every 10 ms. 100 ms bounds how
  // late a cancellation is noticed.
  const int cap_ms = pidfd.open() ? (watch_tree ? 50 : 100) : 10;

  size_t written = 0;
  if (input.empty()) in_w.reset();
  bool stopped = false;  // we decided to kill the child
  bool exited = false;
  Clock::time_point next_count = Clock::now();
  while (!exited) {
    if (options.cancelled && options.cancelled()) {
      result.outcome = Outcome::kCancelled;
      stopped = true;
      break;
    }
    if (Clock::now() >= options.deadline) {
      result.outcome = Outcome::kTimedOut;
      stopped = true;
      break;
    }
    pollfd fds[4] = {{in_w.get(), POLLOUT, 0},
                     {out_r.get(), POLLIN, 0},
                     {err_r.get(), POLLIN, 0},
                     {pidfd.get(), POLLIN, 0}};  // poll skips negative fds
    int ready = ::poll(fds, 4, poll_timeout_ms(options.deadline, cap_ms));
    if (ready < 0 && errno != EINTR) {
      Status s = errno_status("poll", errno);
      ::kill(-pid, SIGKILL);
      int status = 0;
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      return s;
    }
    if (ready > 0 && in_w.open() && fds[0].revents != 0) {
      size_t chunk = std::min<size_t>(input.size() - written, 65536);
      ssize_t w = ::write(in_w.get(), input.data() + written, chunk);
      if (w > 0) {
        written += static_cast<size_t>(w);
        if (written == input.size()) in_w.reset();  // EOF for the child
      } else if (w < 0 && errno != EINTR && errno != EAGAIN) {
        in_w.reset();  // EPIPE: the child stopped reading; its exit status tells the rest
      }
    }
    if (ready > 0 && out_r.open() && fds[1].revents != 0) {
      read_available(&out_r, &result.out, options.max_stdout_bytes + 1);
      if (result.out.size() > options.max_stdout_bytes) {
        result.outcome = Outcome::kOutputTooLarge;
        stopped = true;
        break;
      }
    }
    if (ready > 0 && err_r.open() && fds[2].revents != 0) {
      read_available(&err_r, &result.err, options.max_stderr_bytes);
    }
    if (!pidfd.open() || fds[3].revents != 0) exited = has_exited(pid);
    if (watch_tree && !exited && Clock::now() >= next_count) {
      next_count = Clock::now() + std::chrono::milliseconds(100);
      if (process_tree(pid).size() > static_cast<size_t>(options.max_processes)) {
        result.outcome = Outcome::kProcessLimit;
        stopped = true;
        break;
      }
    }
  }

  in_w.reset();
  // The child on a stop; otherwise whatever it left running in its group (and, when counted,
  // in its tree).
  kill_tree(pid, watch_tree);
  if (!stopped) {
    // The child's last output is already in the pipes; the group kill closes the remaining
    // writers, so EOF follows unless a process escaped the group. The deadline still bounds it.
    while (out_r.open() || err_r.open()) {
      pollfd fds[2] = {{out_r.get(), POLLIN, 0}, {err_r.get(), POLLIN, 0}};
      int timeout = poll_timeout_ms(options.deadline, 100);
      int ready = ::poll(fds, 2, timeout);
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0) {
        if (Clock::now() >= options.deadline || ready < 0) break;
        continue;
      }
      if (out_r.open() && fds[0].revents != 0) {
        read_available(&out_r, &result.out, options.max_stdout_bytes + 1);
      }
      if (err_r.open() && fds[1].revents != 0) {
        read_available(&err_r, &result.err, options.max_stderr_bytes);
      }
    }
    if (result.out.size() > options.max_stdout_bytes) result.outcome = Outcome::kOutputTooLarge;
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  trim_utf8_tail(&result.err);
  if (!stopped && result.outcome != Outcome::kOutputTooLarge) {
    if (WIFEXITED(status)) {
      result.outcome = Outcome::kExited;
      result.exit_code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
      result.outcome = Outcome::kSignaled;
      result.signal = WTERMSIG(status);
    }
  }
  return result;
}

}  // namespace factory::stages
