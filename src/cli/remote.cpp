#include "cli/remote.h"

#include <signal.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "http/router.h"

namespace factory::cli {

std::string daemon_file(const std::string& data_dir) { return data_dir + "/daemon.json"; }

Status write_daemon_file(const std::string& data_dir, std::string_view url) {
  boost::json::object o;
  o["url"] = url;
  o["pid"] = static_cast<int64_t>(::getpid());
  std::string path = daemon_file(data_dir);
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << boost::json::serialize(o) << "\n";
    if (!out) return Status::io_error(fmt::format("cannot write {}", tmp));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Status::io_error(fmt::format("cannot write {}: {}", path, ec.message()));
  return Status::ok_status();
}

void remove_daemon_file(const std::string& data_dir) {
  std::error_code ec;
  std::filesystem::remove(daemon_file(data_dir), ec);
}

namespace {

// The URL of the live daemon recorded in <data_dir>/daemon.json, or "".
std::string live_daemon_url(const std::string& data_dir) {
  std::ifstream in(daemon_file(data_dir));
  if (!in) return "";
  std::stringstream text;
  text << in.rdbuf();
  boost::system::error_code ec;
  auto v = boost::json::parse(text.str(), ec);
  if (ec || !v.is_object()) return "";
  const auto* url = v.as_object().if_contains("url");
  const auto* pid = v.as_object().if_contains("pid");
  if (!url || !url->is_string() || !pid || !pid->is_int64()) return "";
  // A daemon killed with -9 leaves the file behind: only a live pid counts.
  pid_t p = static_cast<pid_t>(pid->as_int64());
  if (p <= 0 || (::kill(p, 0) != 0 && errno == ESRCH)) return "";
  return std::string(url->as_string());
}

}  // namespace

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
