#include "cli/factory_config.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

#include "cli/run_process.h"
#include "http/server.h"
#include "test_util.h"

namespace factory::cli {
namespace {

using test::TempDir;

const std::string kHash = std::string(64, 'a');

std::string write_file(const TempDir& dir, const std::string& name, const std::string& text) {
  std::filesystem::path p = dir.path() / name;
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p) << text;
  return p.string();
}

const ConfigSetting* setting(const FactoryConfig& c, std::string_view key) {
  for (const ConfigSetting& s : c.settings) {
    if (s.key == key) return &s;
  }
  return nullptr;
}

std::string error_of(const Result<FactoryConfig>& r) {
  REQUIRE_FALSE(r.ok());
  return r.status().message();
}

TEST_CASE("config: defaults without a file", "[config]") {
  auto c = load_factory_config("", {}, {});
  REQUIRE_OK(c);
  CHECK(c->server.address == "127.0.0.1");
  CHECK(c->server.port == 7070);
  CHECK(c->listen == "127.0.0.1:7070");
  CHECK(c->shutdown_timeout_ms == 25'000);
  CHECK(c->data_dir == "./data");
  CHECK(c->config_dir == "config");
  CHECK(c->server.tokens.empty());
  CHECK_FALSE(c->github.enabled);
  CHECK(c->github.topic == "jira-events");
  CHECK(c->log_level == obs::Level::kInfo);
  REQUIRE(setting(*c, "server.listen") != nullptr);
  CHECK(setting(*c, "server.listen")->origin == "default");
  CHECK(setting(*c, "auth.tokens")->value == "[]");
  // Every key of the reference is listed once.
  for (const char* key : {"data_dir", "config_dir", "server.tls.cert_file", "auth.rate_limit.burst",
                          "webhooks.jira.secret_file", "logging.level"}) {
    CHECK(setting(*c, key) != nullptr);
  }
}

TEST_CASE("config: file values, their file:line origins and file-relative paths", "[config]") {
  TempDir dir;
  std::string path = write_file(dir, "etc/factory.yaml",
                                "data_dir: state\n"
                                "server:\n"
                                "  listen: 0.0.0.0:8080\n"
                                "  handler_threads: 4\n"
                                "  shutdown_timeout_ms: 5000\n"
                                "auth:\n"
                                "  tokens:\n"
                                "    - name: ci\n"
                                "      role: operator\n"
                                "      sha256: " +
                                    std::string(64, 'A') +
                                    "\n"
                                    "  rate_limit: {requests_per_s: 2.5, burst: 10}\n"
                                    "logging:\n"
                                    "  level: debug\n");
  auto c = load_factory_config(path, {}, {});
  REQUIRE_OK(c);
  CHECK(c->server.address == "0.0.0.0");
  CHECK(c->server.port == 8080);
  CHECK(c->server.handler_threads == 4);
  CHECK(c->shutdown_timeout_ms == 5000);
  CHECK(c->server.rate_limit.requests_per_s == 2.5);
  CHECK(c->server.rate_limit.burst == 10);
  CHECK(c->log_level == obs::Level::kDebug);
  REQUIRE(c->server.tokens.size() == 1);
  CHECK(c->server.tokens[0].name == "ci");
  CHECK(c->server.tokens[0].role == http::Role::kOperator);
  CHECK(c->server.tokens[0].sha256_hex == kHash);  // lower-cased
  CHECK(c->data_dir == (dir.path() / "etc/state").string());
  CHECK(c->config_dir == (dir.path() / "etc").string());
  CHECK(setting(*c, "server.listen")->origin == path + ":3");
  CHECK(setting(*c, "server.io_threads")->origin == "default");
  CHECK(setting(*c, "auth.tokens[0].role")->value == "operator");
  CHECK(setting(*c, "auth.tokens[0].sha256")->value == "<redacted>");
}

TEST_CASE("config: flags beat the environment, which beats the file", "[config]") {
  TempDir dir;
  std::string path = write_file(dir, "factory.yaml",
                                "server:\n  listen: 127.0.0.1:7001\n  io_threads: 2\n"
                                "  handler_threads: 3\n");
  Environment env = {{"FACTORY_SERVER__LISTEN", "127.0.0.1:7002"},
                     {"FACTORY_SERVER__IO_THREADS", "5"},
                     {"FACTORY_SERVER__HANDLER_THREADS", ""},  // empty = unset
                     {"FACTORY_DATA_DIR", "/srv/data"},
                     {"FACTORY_TOKEN", "not-a-config-key"},
                     {"FACTORY_SERVER", "http://elsewhere"}};
  auto c = load_factory_config(path, {{"server.listen", "127.0.0.1:7003"}}, env);
  REQUIRE_OK(c);
  CHECK(c->server.port == 7003);
  CHECK(setting(*c, "server.listen")->origin == "flag");
  CHECK(c->server.io_threads == 5);
  CHECK(setting(*c, "server.io_threads")->origin == "env FACTORY_SERVER__IO_THREADS");
  CHECK(c->server.handler_threads == 3);
  CHECK(setting(*c, "server.handler_threads")->origin == path + ":4");
  CHECK(c->data_dir == "/srv/data");  // from the environment: not file-relative

  SECTION("FACTORY_LOG_LEVEL sets logging.level; FACTORY_LOGGING__LEVEL wins over it") {
    auto a = load_factory_config("", {}, {{"FACTORY_LOG_LEVEL", "warn"}});
    REQUIRE_OK(a);
    CHECK(a->log_level == obs::Level::kWarn);
    auto b = load_factory_config(
        "", {}, {{"FACTORY_LOG_LEVEL", "warn"}, {"FACTORY_LOGGING__LEVEL", "error"}});
    REQUIRE_OK(b);
    CHECK(b->log_level == obs::Level::kError);
  }
}

TEST_CASE("config: mistakes are reported where they are, with how to fix them", "[config]") {
  TempDir dir;
  auto load = [&](const std::string& yaml) {
    return load_factory_config(write_file(dir, "factory.yaml", yaml), {}, {});
  };
  std::string file = (dir.path() / "factory.yaml").string();

  SECTION("unknown key with a did-you-mean") {
    std::string e = error_of(load("server:\n  lisen: 127.0.0.1:1\n"));
    CHECK(e.find(file + ":2:3:") == 0);
    CHECK(e.find("did you mean 'listen'?") != std::string::npos);
  }
  SECTION("an alias people reach for") {
    std::string e = error_of(load("server:\n  port: 8080\n"));
    CHECK(e.find("did you mean 'listen'?") != std::string::npos);
  }
  SECTION("listen without a port, or with a host name") {
    std::string e = error_of(load("server:\n  listen: 127.0.0.1\n"));
    CHECK(e.find(file + ":2:11:") == 0);
    CHECK(e.find("no port") != std::string::npos);
    e = error_of(load("server:\n  listen: example.com:80\n"));
    CHECK(e.find("not an IP address") != std::string::npos);
    e = error_of(load("server:\n  listen: 127.0.0.1:70000\n"));
    CHECK(e.find("0 to 65535") != std::string::npos);
  }
  SECTION("a number out of range") {
    std::string e = error_of(load("server:\n  io_threads: 0\n"));
    CHECK(e.find(file + ":2:15: server.io_threads: 0 is out of range") == 0);
  }
  SECTION("a bad role") {
    std::string e =
        error_of(load("server:\n  listen: 127.0.0.1:1\nauth:\n  tokens:\n"
                      "    - {name: a, role: root, sha256: " +
                      kHash + "}\n"));
    CHECK(e.find(file + ":5:") == 0);
    CHECK(e.find("'root' is not a role; use viewer") != std::string::npos);
  }
  SECTION("a token instead of its hash") {
    std::string e =
        error_of(load("auth:\n  tokens:\n"
                      "    - name: a\n      role: admin\n      sha256: s3cret\n"));
    CHECK(e.find(file + ":5:15:") == 0);
    CHECK(e.find("64 hex digits") != std::string::npos);
    CHECK(e.find("factoryd token hash") != std::string::npos);
    CHECK(e.find("s3cret") == std::string::npos);  // the value is not echoed
  }
  SECTION("a token without a role, and two tokens with one name") {
    std::string e = error_of(load("auth:\n  tokens:\n    - {name: a, sha256: " + kHash + "}\n"));
    CHECK(e.find("has no role") != std::string::npos);
    e = error_of(load("auth:\n  tokens:\n    - {name: a, role: admin, sha256: " + kHash +
                      "}\n    - {name: a, role: admin, sha256: " + std::string(64, 'b') + "}\n"));
    CHECK(e.find(file + ":4:") == 0);
    CHECK(e.find("already listed") != std::string::npos);
  }
  SECTION("a bad log level, a section given a value, a topic name") {
    CHECK(error_of(load("logging:\n  level: loud\n")).find("not a log level") != std::string::npos);
    CHECK(error_of(load("server: 8080\n")).find("server is a section") != std::string::npos);
    CHECK(error_of(load("webhooks:\n  github:\n    topic: a/b\n")).find(file + ":3:12:") == 0);
  }
  SECTION("a webhook delivering to an internal topic (issue 12), enabled or not") {
    std::string e = error_of(load("webhooks:\n  jira:\n    topic: factory.dispatch.deploy\n"));
    CHECK(e.find(file + ":3:") == 0);
    CHECK(e.find("delivering to topic 'factory.dispatch.deploy' is refused") != std::string::npos);
    CHECK(e.find("internal to factoryd") != std::string::npos);
  }
  SECTION("a missing file") {
    auto r = load_factory_config((dir.path() / "nope.yaml").string(), {}, {});
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Status::Code::kNotFound);
  }
  SECTION("an unknown FACTORY_*__* variable or flag key") {
    auto r = load_factory_config("", {}, {{"FACTORY_SERVER__LISTN", "127.0.0.1:1"}});
    std::string e = error_of(r);
    CHECK(e.find("environment variable FACTORY_SERVER__LISTN") == 0);
    CHECK(e.find("did you mean FACTORY_SERVER__LISTEN?") != std::string::npos);
    e = error_of(load_factory_config("", {{"server.io_thread", "2"}}, {}));
    CHECK(e.find("did you mean server.io_threads?") != std::string::npos);
    e = error_of(load_factory_config("", {}, {{"FACTORY_SERVER__IO_THREADS", "many"}}));
    CHECK(e.find("environment variable FACTORY_SERVER__IO_THREADS: server.io_threads: 'many' "
                 "is not a whole number") == 0);
  }
}

TEST_CASE("config: a non-loopback listen address needs tokens", "[config]") {
  for (const char* listen : {"0.0.0.0:7070", "[::]:7070", "10.1.2.3:7070"}) {
    INFO(listen);
    std::string e = error_of(load_factory_config("", {{"server.listen", listen}}, {}));
    CHECK(e.find("auth.tokens is empty") != std::string::npos);
    CHECK(e.find("factoryd token hash") != std::string::npos);
  }
  for (const char* listen : {"127.0.0.1:0", "127.9.9.9:7070", "[::1]:7070", "localhost:7070"}) {
    INFO(listen);
    auto c = load_factory_config("", {{"server.listen", listen}}, {});
    REQUIRE_OK(c);
  }
  auto c = load_factory_config("", {{"server.listen", "localhost:9"}}, {});
  REQUIRE_OK(c);
  CHECK(c->server.address == "127.0.0.1");
  CHECK(c->server.port == 9);
}

TEST_CASE("config: TLS files must exist", "[config]") {
  TempDir dir;
  std::string cert = write_file(dir, "tls/server.crt", "cert");
  std::string key = write_file(dir, "tls/server.key", "key");
  std::string path = write_file(dir, "factory.yaml",
                                "server:\n  tls:\n    cert_file: tls/server.crt\n"
                                "    key_file: tls/missing.key\n");
  std::string e = error_of(load_factory_config(path, {}, {}));
  CHECK(e.find(path + ":4:15:") == 0);
  CHECK(e.find("missing.key") != std::string::npos);

  auto ok = load_factory_config(path, {{"server.tls.key_file", key}}, {});
  REQUIRE_OK(ok);
  CHECK(ok->server.tls.cert_file == cert);
  CHECK(ok->server.tls.key_file == key);

  e = error_of(load_factory_config(
      path, {{"server.tls.key_file", key}, {"server.tls.require_client_cert", "true"}}, {}));
  CHECK(e.find("needs server.tls.client_ca_file") != std::string::npos);
  e = error_of(load_factory_config("", {{"server.tls.cert_file", cert}}, {}));
  CHECK(e.find("needs both") != std::string::npos);
}

TEST_CASE("config: auth.jwt (Keycloak) fills the server's JWT options", "[config][jwt]") {
  TempDir dir;
  std::string path = write_file(
      dir, "factory.yaml",
      "server:\n  listen: 0.0.0.0:7070\n"
      "auth:\n  jwt:\n"
      "    jwks_url: https://sso.example.com/realms/factory/protocol/openid-connect/certs\n"
      "    issuer: https://sso.example.com/realms/factory\n"
      "    audience: factoryd\n"
      "    roles:\n      viewer: factory-viewer\n      admin: factory-admin, realm-admin\n");
  auto c = load_factory_config(path, {}, {});
  REQUIRE_OK(c);  // JWT alone is enough auth for a non-loopback address
  const http::JwtOptions& j = c->server.jwt;
  CHECK(j.enabled());
  CHECK(j.jwks_url == "https://sso.example.com/realms/factory/protocol/openid-connect/certs");
  CHECK(j.policy.issuer == "https://sso.example.com/realms/factory");
  CHECK(j.policy.audience == "factoryd");
  CHECK(j.policy.role_claim == "realm_access.roles");
  CHECK(j.policy.leeway_s == 60);
  REQUIRE(j.policy.role_map.size() == 3);
  CHECK(j.policy.role_map[0] ==
        std::pair<std::string, http::Role>{"factory-viewer", http::Role::kViewer});
  CHECK(j.policy.role_map[2] ==
        std::pair<std::string, http::Role>{"realm-admin", http::Role::kAdmin});

  std::string e = error_of(load_factory_config(path, {{"auth.jwt.issuer", ""}}, {}));
  CHECK(e.find("needs issuer") != std::string::npos);
  e = error_of(
      load_factory_config(path, {{"auth.jwt.jwks_url", "http://sso.example.com/certs"}}, {}));
  CHECK(e.find("plain http") != std::string::npos);
  e = error_of(load_factory_config("", {{"auth.jwt.issuer", "https://sso"}}, {}));
  CHECK(e.find("has no keys") != std::string::npos);
  e = error_of(load_factory_config(path, {{"auth.jwt.jwks_file", "missing.json"}}, {}));
  CHECK(e.find("does not exist") != std::string::npos);
}

TEST_CASE("config: webhook secrets from the file, a variable or a file, never shown", "[config]") {
  TempDir dir;
  const std::string secret = "It's a Secret to Everybody";
  auto secret_leaks = [&](const FactoryConfig& c) {
    for (const ConfigSetting& s : c.settings) {
      if (s.value.find(secret) != std::string::npos) return true;
    }
    return false;
  };

  SECTION("secret_env") {
    std::string path = write_file(dir, "factory.yaml",
                                  "webhooks:\n  github:\n    enabled: true\n"
                                  "    secret_env: GH_SECRET\n");
    auto c = load_factory_config(path, {}, {{"GH_SECRET", secret}});
    REQUIRE_OK(c);
    CHECK(c->github.enabled);
    CHECK(c->github.secret == secret);
    CHECK(setting(*c, "webhooks.github.secret")->value == "<redacted>");
    CHECK(setting(*c, "webhooks.github.secret")->origin.find("env GH_SECRET") == 0);
    CHECK_FALSE(secret_leaks(*c));

    std::string e = error_of(load_factory_config(path, {}, {}));
    CHECK(e.find(path + ":4:") == 0);
    CHECK(e.find("GH_SECRET, which is not set") != std::string::npos);

    // The environment's inline secret replaces the file's secret_env.
    auto o = load_factory_config(path, {}, {{"FACTORY_WEBHOOKS__GITHUB__SECRET", "x" + secret}});
    REQUIRE_OK(o);
    CHECK(o->github.secret == "x" + secret);
    CHECK(setting(*o, "webhooks.github.secret")->origin == "env FACTORY_WEBHOOKS__GITHUB__SECRET");
    CHECK(setting(*o, "webhooks.github.secret_env")->value.empty());
  }
  SECTION("secret_file, relative to the config file") {
    write_file(dir, "secrets/jira", secret + "\n");
    std::string path = write_file(dir, "factory.yaml",
                                  "webhooks:\n  jira:\n    enabled: true\n"
                                  "    secret_file: secrets/jira\n");
    auto c = load_factory_config(path, {}, {});
    REQUIRE_OK(c);
    CHECK(c->jira.secret == secret);
    CHECK_FALSE(secret_leaks(*c));
  }
  SECTION("inline, and two sources at once") {
    std::string path =
        write_file(dir, "factory.yaml",
                   "webhooks:\n  github:\n    enabled: true\n    secret: \"" + secret + "\"\n");
    auto c = load_factory_config(path, {}, {});
    REQUIRE_OK(c);
    CHECK(c->github.secret == secret);
    CHECK_FALSE(secret_leaks(*c));
    path =
        write_file(dir, "factory.yaml", "webhooks:\n  github:\n    secret: a\n    secret_env: B\n");
    std::string e = error_of(load_factory_config(path, {}, {}));
    CHECK(e.find(path + ":4:5:") == 0);
    CHECK(e.find("keep one") != std::string::npos);
  }
  SECTION("enabled without a secret: a warning, deliveries will be refused") {
    auto c = load_factory_config("", {{"webhooks.jira.enabled", "true"}}, {});
    REQUIRE_OK(c);
    auto w = std::find_if(c->warnings.begin(), c->warnings.end(), [](const std::string& m) {
      return m.starts_with("webhooks.jira is enabled but has no secret");
    });
    CHECK(w != c->warnings.end());
  }
}

TEST_CASE("config: the shipped config/factory.yaml is valid", "[config]") {
  std::string path = std::string(FACTORY_SOURCE_DIR) + "/config/factory.yaml";
  auto c = load_factory_config(path, {}, {});
  REQUIRE_OK(c);
  CHECK(c->listen == "127.0.0.1:7070");
  CHECK(c->config_dir == std::string(FACTORY_SOURCE_DIR) + "/config");
}

TEST_CASE("config: env names", "[config]") {
  CHECK(config_env_name("server.listen") == "FACTORY_SERVER__LISTEN");
  CHECK(config_env_name("webhooks.github.secret") == "FACTORY_WEBHOOKS__GITHUB__SECRET");
  CHECK(config_env_name("data_dir") == "FACTORY_DATA_DIR");
  CHECK(default_config_path({{"FACTORY_CONFIG", "/etc/factory.yaml"}}) == "/etc/factory.yaml");
}

// --- The commands, through the real binary ---

// The columns of the table row that starts with `key` (split at runs of 2+ spaces).
std::vector<std::string> columns(const std::string& table, const std::string& key) {
  size_t at = table.find("\n" + key + " ");
  if (at == std::string::npos) return {};
  std::string line = table.substr(at + 1, table.find('\n', at + 1) - at - 1);
  std::vector<std::string> out;
  size_t i = 0;
  while (i < line.size()) {
    size_t gap = line.find("  ", i);
    out.push_back(line.substr(i, gap - i));
    if (gap == std::string::npos) break;
    i = line.find_first_not_of(' ', gap);
  }
  return out;
}

// FACTORY_* variables of the test's own environment must not leak into the child.
test::ProcessResult factoryd(std::vector<std::string> args, std::vector<std::string> env = {},
                             std::string stdin_text = "") {
  args.insert(args.begin(), FACTORYD_BIN);
  env.insert(env.begin(),
             {"FACTORY_DATA_DIR", "FACTORY_LOG_LEVEL", "FACTORY_CONFIG", "FACTORY_SERVER__LISTEN"});
  return test::run_process(args, stdin_text, env);
}

TEST_CASE("config validate and show, token hash", "[config][cli]") {
  TempDir dir;
  std::string path = write_file(dir, "factory.yaml",
                                "server:\n  listen: 127.0.0.1:7100\n"
                                "webhooks:\n  github:\n    enabled: true\n"
                                "    secret_env: GH_SECRET\n");
  auto ok = factoryd({"config", "validate", "-c", path}, {"GH_SECRET=hunter2hunter2"});
  CHECK(ok.exit_code == 0);
  CHECK(ok.out == "ok\n");

  auto bad = factoryd({"config", "validate", "-c", path});  // GH_SECRET unset
  CHECK(bad.exit_code == 1);
  CHECK(bad.err.find("factoryd: error: " + path + ":6:") == 0);

  auto show =
      factoryd({"config", "show", "-c", path, "--show-origin", "--set", "server.io_threads=3"},
               {"GH_SECRET=hunter2hunter2", "FACTORY_SERVER__IDLE_TIMEOUT_MS=5"});
  REQUIRE(show.exit_code == 0);
  CHECK(show.out.find("KEY") == 0);
  CHECK(columns(show.out, "server.listen") ==
        std::vector<std::string>{"server.listen", "127.0.0.1:7100", path + ":2"});
  CHECK(columns(show.out, "server.io_threads") ==
        std::vector<std::string>{"server.io_threads", "3", "flag"});
  CHECK(columns(show.out, "server.idle_timeout_ms") ==
        std::vector<std::string>{"server.idle_timeout_ms", "5",
                                 "env FACTORY_SERVER__IDLE_TIMEOUT_MS"});
  CHECK(show.out.find("<redacted>") != std::string::npos);
  CHECK(show.out.find("hunter2") == std::string::npos);

  auto json = factoryd({"config", "show", "-c", path, "-o", "json"}, {"GH_SECRET=hunter2hunter2"});
  REQUIRE(json.exit_code == 0);
  CHECK(json.out.find(R"({"key":"server.listen","value":"127.0.0.1:7100"})") != std::string::npos);
  // Values keep their JSON type: numbers and bools bare, lists as arrays.
  CHECK(json.out.find(R"({"key":"server.io_threads","value":)") != std::string::npos);
  CHECK(json.out.find(R"({"key":"server.io_threads","value":")") == std::string::npos);
  CHECK(json.out.find(R"({"key":"server.tls.require_client_cert","value":false})") !=
        std::string::npos);
  CHECK(json.out.find(R"({"key":"webhooks.github.enabled","value":true})") != std::string::npos);
  CHECK(json.out.find(R"({"key":"auth.rate_limit.requests_per_s","value":0})") !=
        std::string::npos);
  CHECK(json.out.find(R"({"key":"auth.tokens","value":[]})") != std::string::npos);
  CHECK(json.out.find(R"({"key":"server.allowed_hosts","value":[]})") != std::string::npos);
  auto hosts = factoryd({"config", "show", "-c", path, "-o", "json", "--set",
                         "server.allowed_hosts=a.example,b.example:8443"},
                        {"GH_SECRET=hunter2hunter2"});
  REQUIRE(hosts.exit_code == 0);
  CHECK(
      hosts.out.find(R"({"key":"server.allowed_hosts","value":["a.example","b.example:8443"]})") !=
      std::string::npos);

  auto hash = factoryd({"token", "hash", "--name", "ci", "--role", "operator"}, {},
                       "correct-horse-battery-staple\n");
  REQUIRE(hash.exit_code == 0);
  CHECK(hash.out == "- name: ci\n  role: operator\n  sha256: " +
                        http::hash_token("correct-horse-battery-staple") + "\n");
  CHECK(factoryd({"token", "hash"}, {}, "").exit_code == 2);
  CHECK(factoryd({"token", "hash", "--role", "root"}, {}, "abc").exit_code == 2);

  // What token hash prints is what the config accepts.
  std::string with_token = write_file(
      dir, "remote.yaml", "server:\n  listen: 0.0.0.0:7100\nauth:\n  tokens:\n" + [&] {
        std::string s, line;
        for (char c : hash.out) {
          line += c;
          if (c == '\n') {
            s += "    " + line;
            line.clear();
          }
        }
        return s;
      }());
  auto remote = factoryd({"config", "validate", "-c", with_token});
  CHECK(remote.exit_code == 0);
  INFO(remote.err);
  std::string empty = write_file(dir, "empty.yaml", "");
  auto no_token =
      factoryd({"config", "validate", "-c", empty, "--set", "server.listen=0.0.0.0:7100"});
  CHECK(no_token.exit_code == 1);
  CHECK(no_token.err.find("factoryd token hash") != std::string::npos);
}

}  // namespace
}  // namespace factory::cli
