#include "cli/remote.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include <fmt/format.h>

#include "http/router.h"
#include "obs/logger.h"

namespace factory::cli {

namespace {

// The JSON object in `path`, or nullopt when missing or not an object.
std::optional<boost::json::object> read_json_object(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  boost::system::error_code ec;
  auto v = boost::json::parse(text.str(), ec);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.as_object());
}

// Writes `o` to `path` whole (a temporary file renamed over it), owner-only.
Status write_json_object(const std::string& path, const boost::json::object& o) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << boost::json::serialize(o) << "\n";
    if (!out) return Status::io_error(fmt::format("cannot write {}", tmp));
  }
  std::error_code ec;
  std::filesystem::permissions(
      tmp, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write, ec);
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Status::io_error(fmt::format("cannot write {}: {}", path, ec.message()));
  return Status::ok_status();
}

// The "pid" of `o` when that process is alive (and is not this one), else 0. A file left by a
// process killed with -9 names a pid that is gone.
int64_t live_pid(const boost::json::object& o) {
  const auto* pid = o.if_contains("pid");
  if (!pid || !pid->is_int64()) return 0;
  auto p = static_cast<pid_t>(pid->as_int64());
  if (p <= 0 || p == ::getpid() || (::kill(p, 0) != 0 && errno == ESRCH)) return 0;
  // A killed process not yet reaped by its parent is a zombie: as gone as a dead one.
  std::ifstream stat("/proc/" + std::to_string(p) + "/stat");
  std::string line;
  if (std::getline(stat, line)) {
    size_t paren = line.rfind(')');  // "pid (comm) S ...": comm may hold spaces and ')'
    if (paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'Z') return 0;
  }
  return p;
}

// This process's command line, "factoryd consume t -f" (argv[0] without its directory).
std::string own_command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string out;
  size_t start = 0;
  while (start < raw.size()) {
    size_t end = raw.find('\0', start);
    if (end == std::string::npos) end = raw.size();
    std::string arg = raw.substr(start, end - start);
    if (out.empty()) arg = std::filesystem::path(arg).filename().string();
    if (arg.empty() || arg.find_first_of(" \t'\"") != std::string::npos) arg = "'" + arg + "'";
    out += (out.empty() ? "" : " ") + arg;
    start = end + 1;
  }
  constexpr size_t kMax = 200;
  if (out.size() > kMax) out = out.substr(0, kMax) + "...";
  return out.empty() ? "factoryd" : escape_controls(out);
}

std::string holder_file(const std::string& data_dir) { return data_dir + "/holder.json"; }

std::string& recorded_holder_file() {
  static std::string path;  // the holder.json this process wrote, removed at exit
  return path;
}

void remove_own_holder_file() {
  const std::string& path = recorded_holder_file();
  auto o = read_json_object(path);
  const auto* pid = o ? o->if_contains("pid") : nullptr;
  if (pid && pid->is_int64() && pid->as_int64() == ::getpid()) {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
}

}  // namespace

std::string daemon_file(const std::string& data_dir) { return data_dir + "/daemon.json"; }

Status write_daemon_file(const std::string& data_dir, std::string_view url) {
  return write_json_object(daemon_file(data_dir),
                           {{"url", url}, {"pid", static_cast<int64_t>(::getpid())}});
}

void remove_daemon_file(const std::string& data_dir) {
  std::error_code ec;
  std::filesystem::remove(daemon_file(data_dir), ec);
}

std::string live_daemon_url(const std::string& data_dir) {
  auto o = read_json_object(daemon_file(data_dir));
  if (!o || live_pid(*o) == 0) return "";
  const auto* url = o->if_contains("url");
  return url && url->is_string() ? std::string(url->as_string()) : "";
}

void record_holder(const std::string& data_dir) {
  // This process holds the log, so a daemon.json here is a dead holder's (kill -9), and so is
  // the unix socket it names.
  if (auto o = read_json_object(daemon_file(data_dir)); o && live_pid(*o) == 0) {
    const auto* url = o->if_contains("url");
    constexpr std::string_view kUnix = "unix://";
    std::string_view u = url && url->is_string() ? std::string_view(url->as_string()) : "";
    if (u.starts_with(kUnix)) {
      std::string socket(u.substr(kUnix.size()));
      std::error_code ec;
      if (std::filesystem::is_socket(socket, ec)) std::filesystem::remove(socket, ec);
    }
    remove_daemon_file(data_dir);
  }
  std::string path = holder_file(data_dir);
  Status s = write_json_object(
      path, {{"pid", static_cast<int64_t>(::getpid())}, {"command", own_command_line()}});
  if (!s.ok()) {
    obs::warn("cannot record the holder of the data dir", {{"error", s.message()}});
    return;
  }
  bool first = recorded_holder_file().empty();
  recorded_holder_file() = path;
  if (first) std::atexit(remove_own_holder_file);
}

std::optional<Holder> live_holder(const std::string& data_dir) {
  auto o = read_json_object(holder_file(data_dir));
  if (!o) return std::nullopt;
  int64_t pid = live_pid(*o);
  if (pid == 0) return std::nullopt;
  Holder h{.pid = pid, .command = "factoryd"};
  if (const auto* c = o->if_contains("command"); c && c->is_string()) {
    h.command = std::string(c->as_string());
  }
  return h;
}

std::unique_ptr<http::Client> daemon_client(const CommonOptions& common, int* exit_code) {
  std::string url = common.server.empty() ? live_daemon_url(common.data_dir) : common.server;
  if (url.empty()) return nullptr;
  http::ClientOptions options;
  options.url = url;
  options.token = common.token;
  if (const char* ca = std::getenv("FACTORY_CA_FILE")) options.ca_file = ca;
  options.timeout_ms = 120'000;  // long-poll fetches and drains answer within this
  auto client = http::Client::connect(options);
  if (!client.ok()) {
    *exit_code = usage_error(client.status().message(), "");
    return nullptr;
  }
  return std::move(*client);
}

std::optional<boost::json::value> call_daemon(http::Client* client, std::string_view method,
                                              std::string_view target, std::string_view body,
                                              int* exit_code,
                                              const InvalidInputReport& on_invalid) {
  auto r = client->request(method, target, body);
  if (!r.ok()) {
    *exit_code =
        runtime_error(fmt::format("cannot reach the factoryd daemon at {}: {}",
                                  http::redact_url(client->options().url), r.status().message()),
                      "check that 'factoryd serve' is running, or pass --server URL");
    return std::nullopt;
  }
  boost::system::error_code ec;
  boost::json::value v;
  if (!r->body.empty()) v = boost::json::parse(r->body, ec);
  if (r->status >= 200 && r->status < 300) {
    if (ec) {
      *exit_code = runtime_error(
          fmt::format("the daemon answered {} {} with a body that is not JSON", method, target),
          "check that --server points at factoryd");
      return std::nullopt;
    }
    return v;
  }
  std::string message = fmt::format("the daemon answered HTTP {}", r->status);
  std::string field;
  if (!ec && v.is_object()) {
    if (const auto* e = v.as_object().if_contains("error"); e && e->is_object()) {
      if (const auto* m = e->as_object().if_contains("message"); m && m->is_string()) {
        message = std::string(m->as_string());
      }
      const auto* d = e->as_object().if_contains("details");
      const auto* f = d && d->is_object() ? d->as_object().if_contains("field") : nullptr;
      if (f && f->is_string()) field = std::string(f->as_string());
    }
  }
  bool input_refused = r->status >= 400 && r->status < 500 && r->status != 401 &&
                       r->status != 403 && r->status != 429;
  if (input_refused && on_invalid && !field.empty()) {
    *exit_code = on_invalid(field, http::status_from_error(r->status, r->body));
    return std::nullopt;
  }
  if (r->status == 401 || r->status == 403) {
    *exit_code = runtime_error(message, "pass an API token with --token or FACTORY_TOKEN");
  } else {
    *exit_code = runtime_error(message, "");
  }
  return std::nullopt;
}

}  // namespace factory::cli
