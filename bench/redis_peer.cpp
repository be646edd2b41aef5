#include "bench/redis_peer.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <initializer_list>
#include <thread>
#include <utility>
#include <vector>

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "bench/bench_util.h"
#include "bench/subprocess.h"

namespace factory::bench {

namespace {

Status errno_status(std::string_view what) {
  return Status::io_error(fmt::format("{}: {}", what, std::strerror(errno)));
}

// A port the kernel just handed out on 127.0.0.1. Another process could take it before redis
// binds it; start_redis retries with a fresh port when redis exits early.
Result<int> free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno_status("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    Status s = errno_status("bind 127.0.0.1:0");
    ::close(fd);
    return s;
  }
  ::close(fd);
  return static_cast<int>(ntohs(addr.sin_port));
}

// One RESP reply. Simple strings, errors, integers and bulk strings keep their text in `str`;
// arrays keep their elements. A null bulk string or array has type '_'.
struct Reply {
  char type = 0;  // '+', '-', ':', '$', '*', or '_'
  std::string str;
  std::vector<Reply> elems;
};

void append_command(std::string* buf, std::initializer_list<std::string_view> args) {
  *buf += fmt::format("*{}\r\n", args.size());
  for (std::string_view a : args) {
    *buf += fmt::format("${}\r\n", a.size());
    buf->append(a);
    *buf += "\r\n";
  }
}

}  // namespace

// A blocking RESP connection. Not thread-safe.
class RedisServer::Conn {
 public:
  explicit Conn(int fd) : fd_(fd) {}
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  ~Conn() {
    if (fd_ >= 0) ::close(fd_);
  }

  static Result<std::unique_ptr<Conn>> connect(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return errno_status("socket");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      Status s = errno_status(fmt::format("connect 127.0.0.1:{}", port));
      ::close(fd);
      return s;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return std::make_unique<Conn>(fd);
  }

  Status send(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        return errno_status("send");
      }
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return Status();
  }

  Result<Reply> read_reply() {
    auto line = read_line();
    if (!line.ok()) return line.status();
    if (line->empty()) return Status::internal("redis: empty reply line");
    Reply r;
    r.type = (*line)[0];
    std::string rest = line->substr(1);
    switch (r.type) {
      case '+':
      case '-':
      case ':':
        r.str = std::move(rest);
        return r;
      case '$': {
        long long len = std::strtoll(rest.c_str(), nullptr, 10);
        if (len < 0) {
          r.type = '_';
          return r;
        }
        auto body = read_exact(static_cast<size_t>(len) + 2);
        if (!body.ok()) return body.status();
        r.str = body->substr(0, static_cast<size_t>(len));
        return r;
      }
      case '*': {
        long long n = std::strtoll(rest.c_str(), nullptr, 10);
        if (n < 0) {
          r.type = '_';
          return r;
        }
        for (long long i = 0; i < n; i++) {
          auto e = read_reply();
          if (!e.ok()) return e.status();
          r.elems.push_back(std::move(*e));
        }
        return r;
      }
      default:
        return Status::internal(fmt::format("redis: unexpected reply '{}'", *line));
    }
  }

  // Sends one command and reads its reply; an error reply becomes Internal with its text.
  Result<Reply> call(std::initializer_list<std::string_view> args) {
    std::string buf;
    append_command(&buf, args);
    FACTORY_RETURN_IF_ERROR(send(buf));
    auto r = read_reply();
    if (r.ok() && r->type == '-') return Status::internal(fmt::format("redis: {}", r->str));
    return r;
  }

  // Reads `CONFIG GET name`; "" when unset.
  Result<std::string> config_get(std::string_view name) {
    auto r = call({"CONFIG", "GET", name});
    if (!r.ok()) return r.status();
    if (r->elems.size() != 2) return std::string();
    return r->elems[1].str;
  }

 private:
  Status fill() {
    char buf[64 * 1024];
    for (;;) {
      ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return errno_status("recv");
      if (n == 0) return Status::io_error("redis closed the connection");
      // Drop consumed bytes lazily so parsing stays linear.
      if (pos_ > 0 && pos_ == in_.size()) {
        in_.clear();
        pos_ = 0;
      }
      in_.append(buf, static_cast<size_t>(n));
      return Status();
    }
  }

  Result<std::string> read_line() {
    for (;;) {
      size_t crlf = in_.find("\r\n", pos_);
      if (crlf != std::string::npos) {
        std::string line = in_.substr(pos_, crlf - pos_);
        pos_ = crlf + 2;
        return line;
      }
      FACTORY_RETURN_IF_ERROR(fill());
    }
  }

  Result<std::string> read_exact(size_t n) {
    while (in_.size() - pos_ < n) FACTORY_RETURN_IF_ERROR(fill());
    std::string out = in_.substr(pos_, n);
    pos_ += n;
    return out;
  }

  int fd_ = -1;
  std::string in_;
  size_t pos_ = 0;
};

RedisServer::RedisServer(Subprocess proc, std::unique_ptr<Conn> conn)
    : proc_(std::move(proc)), conn_(std::move(conn)) {}

RedisServer::~RedisServer() {
  if (proc_.running()) (void)stop();
}

Result<std::unique_ptr<RedisServer>> RedisServer::start(const RedisOptions& o) {
  if (::access(o.server_path.c_str(), X_OK) != 0) {
    return Status::not_found(fmt::format("{} not found", o.server_path));
  }
  // Retries with a new port when the server exits at once (its port was taken in between).
  Status last = Status::io_error("redis-server did not start");
  for (int attempt = 0; attempt < 3; attempt++) {
    auto port = free_loopback_port();
    if (!port.ok()) return port.status();
    SpawnOptions spawn;
    spawn.argv = {o.server_path,
                  "--port",
                  std::to_string(*port),
                  "--bind",
                  "127.0.0.1",
                  "--appendonly",
                  "yes",
                  "--appendfsync",
                  "always",
                  "--save",
                  "",
                  "--dir",
                  o.dir,
                  "--daemonize",
                  "no",
                  "--logfile",
                  o.dir + "/redis.log"};
    auto proc = Subprocess::spawn(spawn);
    if (!proc.ok()) return proc.status();
    std::unique_ptr<Conn> conn;
    Stopwatch sw;
    while (!conn && sw.elapsed_s() < 10) {
      auto exited = proc->wait(0);
      if (exited.ok()) {
        last = Status::io_error(
            fmt::format("redis-server exited with {} (see {}/redis.log)", *exited, o.dir));
        break;
      }
      auto c = Conn::connect(*port);
      if (c.ok()) {
        auto pong = (*c)->call({"PING"});  // LOADING errors until the AOF is read
        if (pong.ok() && pong->str == "PONG") {
          conn = std::move(*c);
          break;
        }
        last = pong.ok() ? Status::io_error("redis: PING did not answer PONG") : pong.status();
      } else {
        last = c.status();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!conn) continue;
    std::unique_ptr<RedisServer> server(new RedisServer(std::move(*proc), std::move(conn)));
    // Durability as configured, or the comparison means nothing.
    auto fsync = server->conn_->config_get("appendfsync");
    if (!fsync.ok()) return fsync.status();
    auto aof = server->conn_->config_get("appendonly");
    if (!aof.ok()) return aof.status();
    if (*fsync != "always" || *aof != "yes") {
      return Status::internal(fmt::format("redis: appendonly={} appendfsync={}", *aof, *fsync));
    }
    auto info = server->conn_->call({"INFO", "server"});
    if (info.ok()) {
      size_t at = info->str.find("redis_version:");
      if (at != std::string::npos) {
        size_t end = info->str.find("\r\n", at);
        server->version_ = info->str.substr(at + 14, end - at - 14);
      }
    }
    return server;
  }
  return last;
}

Status RedisServer::xadd_batch(std::string_view stream, std::span<const std::string_view> values) {
  std::string buf;
  for (std::string_view v : values) append_command(&buf, {"XADD", stream, "*", "v", v});
  FACTORY_RETURN_IF_ERROR(conn_->send(buf));
  for (size_t i = 0; i < values.size(); i++) {
    auto r = conn_->read_reply();
    if (!r.ok()) return r.status();
    if (r->type != '$') return Status::internal(fmt::format("redis XADD: {}", r->str));
  }
  return Status();
}

Result<int64_t> RedisServer::xlen(std::string_view stream) {
  auto r = conn_->call({"XLEN", stream});
  if (!r.ok()) return r.status();
  return static_cast<int64_t>(std::strtoll(r->str.c_str(), nullptr, 10));
}

Result<int> RedisServer::stop() {
  conn_.reset();
  return proc_.stop(SIGTERM, 10'000);
}

}  // namespace factory::bench
