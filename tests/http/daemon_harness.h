// Starts the real `factoryd serve` for end-to-end tests and talks to it.
//
//   TempDir dir;
//   auto d = Daemon::start(dir.str(), "auth:\n  tokens: []\n");  // extra factory.yaml text
//   auto c = d->client();                                          // an http::Client
//   auto r = c->request("GET", "/readyz");
//   auto exit = d->stop();                                         // SIGTERM, waits
//
// The daemon listens on 127.0.0.1:0 (a free port) and prints "factoryd serving on URL" when
// ready; start() waits for that line. Its data dir is <dir>/data; its config dir is the repo's
// config/ unless given. Header-only. Not thread-safe.
#pragma once

#include <poll.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <boost/json.hpp>
#include <netinet/in.h>
#include <sys/socket.h>

#include "cli/run_process.h"
#include "http/client.h"

namespace factory::test {

class Daemon {
 public:
  // Writes <dir>/factory.yaml (listen, data_dir, config_dir, logging.level warn, then
  // `extra_yaml`) and starts the daemon. nullptr (with the reason in *error) when it does not
  // become ready within 20 s.
  static std::unique_ptr<Daemon> start(const std::string& dir, const std::string& extra_yaml,
                                       std::string* error, const std::vector<std::string>& env = {},
                                       std::string config_dir = "") {
    if (config_dir.empty()) config_dir = std::string(FACTORY_SOURCE_DIR) + "/config";
    std::string config = dir + "/factory.yaml";
    {
      std::ofstream out(config, std::ios::trunc);
      out << "data_dir: " << dir << "/data\n"
          << "config_dir: " << config_dir << "\n"
          << "logging:\n  level: warn\n"
          << extra_yaml;
    }
    return launch(dir, config, error, env);
  }

  // Starts again with the same config (after stop()).
  static std::unique_ptr<Daemon> restart(const Daemon& old, std::string* error) {
    return launch(old.dir_, old.config_, error, old.env_);
  }

  const std::string& url() const { return url_; }
  const std::string& data_dir() const { return data_dir_; }
  ChildProcess& process() { return proc_; }

  std::unique_ptr<http::Client> client(const std::string& token = "",
                                       http::ClientOptions options = {}) const {
    options.url = options.url.empty() ? url_ : options.url;
    options.token = token;
    options.timeout_ms = 20'000;
    auto c = http::Client::connect(options);
    return c.ok() ? std::move(*c) : nullptr;
  }

  // Sends `sig` and waits for the exit.
  ProcessResult stop(int sig = SIGTERM) {
    proc_.kill(sig);
    return proc_.wait();
  }

 private:
  static std::unique_ptr<Daemon> launch(const std::string& dir, const std::string& config,
                                        std::string* error, const std::vector<std::string>& env) {
    std::unique_ptr<Daemon> d(new Daemon());
    d->dir_ = dir;
    d->config_ = config;
    d->env_ = env;
    d->data_dir_ = dir + "/data";
    std::vector<std::string> child_env = {"FACTORY_DATA_DIR", "FACTORY_LOG_LEVEL", "FACTORY_CONFIG",
                                          "NOTIFY_SOCKET"};
    child_env.insert(child_env.end(), env.begin(), env.end());
    d->proc_ = spawn_process({FACTORYD_BIN, "serve", "--config", config, "--listen", "127.0.0.1:0"},
                             child_env);
    auto line = d->proc_.read_stdout_line(20'000);
    constexpr std::string_view kReady = "factoryd serving on ";
    if (!line || line->rfind(kReady, 0) != 0) {
      d->proc_.kill(SIGKILL);
      auto r = d->proc_.wait();
      *error = "factoryd serve did not become ready: " + line.value_or("") + r.out + r.err;
      return nullptr;
    }
    d->url_ = line->substr(kReady.size());
    return d;
  }

  Daemon() = default;
  std::string dir_, config_, data_dir_, url_;
  std::vector<std::string> env_;
  ChildProcess proc_{-1, -1, -1, -1};
};

// The port of "http://127.0.0.1:PORT".
inline int url_port(const std::string& url) { return std::stoi(url.substr(url.rfind(':') + 1)); }

// A raw TCP connection to 127.0.0.1:port for the tests that misbehave on purpose (oversized
// headers, slow clients). -1 when it cannot connect.
inline int raw_connect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

inline bool raw_send(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Reads until the peer closes or timeout_ms passes; *closed tells which.
inline std::string raw_read_all(int fd, int timeout_ms, bool* closed) {
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  *closed = false;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) return out;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      *closed = true;
      return out;
    }
    out.append(buf, static_cast<size_t>(n));
  }
}

inline boost::json::value parse_json_or_null(const std::string& s) {
  boost::system::error_code ec;
  auto v = boost::json::parse(s, ec);
  return ec ? boost::json::value() : v;
}

}  // namespace factory::test
