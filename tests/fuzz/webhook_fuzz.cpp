// Fuzz target: webhook deliveries (src/http/webhooks.cpp), through the real /hooks/github and
// /hooks/jira routes over a real log and store (on the fuzz run's TMPDIR, /dev/shm under
// tests/fuzz/run.sh): signature header parsing, the delivery id, the body's JSON, the event,
// the dedupe and the append.
//
// Input: byte 0 picks the source (even: github, odd: jira); then header lines "Name: value"
// up to a blank line; the rest is the body. The harness signs the body with the configured
// secret unless the input carries its own signature header, so inputs reach the code past the
// signature check.
//
// Properties: every answer is a JSON object with a known status; an accepted (202) or
// duplicate (200) answer names the delivery id that was sent; only a signed delivery with a
// JSON object body is accepted; an accepted delivery sent again is answered as a duplicate.
//
// The log and store are dropped and reopened every kResetEvery inputs, so a long run's data
// stays small.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include <boost/json.hpp>

#include "factory/log.h"
#include "fuzz_util.h"
#include "http/api.h"
#include "http/router.h"
#include "http/server.h"
#include "obs/metrics.h"
#include "store/meta_store.h"

namespace json = boost::json;
using namespace factory;
using namespace factory::http;

namespace {

constexpr int kResetEvery = 4096;
const std::string kGithubSecret = "fuzz-github-secret";
const std::string kJiraSecret = "fuzz-jira-secret";

struct Daemon {
  explicit Daemon(const std::filesystem::path& dir) {
    auto log = open_log({.dir = (dir / "log").string(), .sync = false, .retention_interval_ms = 0});
    FUZZ_CHECK(log.ok(), log.status().to_string());
    log_ = std::move(*log);
    Status s = log_->create_topic({.name = "jira-events", .partitions = 1});
    FUZZ_CHECK(s.ok(), s.to_string());
    auto store = store::open_sqlite_store({.dir = (dir / "store").string(), .sync = false});
    FUZZ_CHECK(store.ok(), store.status().to_string());
    store_ = std::move(*store);
    ctx_.log = log_.get();
    ctx_.store = store_.get();
    ctx_.metrics = &metrics_;
    ctx_.github = {.enabled = true, .topic = "jira-events", .secret = kGithubSecret};
    ctx_.jira = {.enabled = true, .topic = "jira-events", .secret = kJiraSecret};
    add_webhook_routes(&router_, &ctx_);
  }
  std::unique_ptr<Log> log_;
  std::unique_ptr<store::MetaStore> store_;
  obs::Registry metrics_;
  ApiContext ctx_;
  Router router_;
};

std::filesystem::path g_dir;
// Never destroyed at exit: its log's threads would outlive the statics (the logger) they use.
// Reachable from here, so LeakSanitizer does not count it.
Daemon* g_daemon = nullptr;
int g_inputs = 0;

Daemon& daemon() {
  if (g_daemon == nullptr || ++g_inputs % kResetEvery == 0) {
    delete g_daemon;
    if (g_dir.empty()) {
      const char* tmp = std::getenv("TMPDIR");
      g_dir = std::filesystem::path(tmp ? tmp : "/tmp") /
              ("factory-webhook-fuzz-" + std::to_string(::getpid()));
      std::atexit([] {
        std::error_code ec;
        std::filesystem::remove_all(g_dir, ec);
      });
    }
    std::filesystem::remove_all(g_dir);
    std::filesystem::create_directories(g_dir);
    g_daemon = new Daemon(g_dir);
  }
  return *g_daemon;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool github = (data[0] & 1) == 0;
  std::string_view rest = factory::fuzz::as_view(data + 1, size - 1);
  size_t blank = rest.find("\n\n");
  std::string_view head = blank == std::string_view::npos ? rest : rest.substr(0, blank);
  std::string_view body = blank == std::string_view::npos ? "" : rest.substr(blank + 2);

  Request req;
  req.method = "POST";
  req.path = github ? "/hooks/github" : "/hooks/jira";
  req.body = std::string(body);
  req.request_id = "fuzz";
  req.principal = {"anonymous", Role::kPublic};
  const std::string signature_header = github ? "x-hub-signature-256" : "x-hub-signature";
  bool signed_by_input = false;
  while (!head.empty()) {
    size_t eol = head.find('\n');
    std::string_view line = head.substr(0, eol);
    head = eol == std::string_view::npos ? "" : head.substr(eol + 1);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) continue;
    std::string name = lower(trim(line.substr(0, colon)));
    signed_by_input |= name == signature_header;
    req.headers.emplace_back(std::move(name), std::string(trim(line.substr(colon + 1))));
  }
  bool harness_signed = !signed_by_input;
  if (harness_signed) {
    req.headers.emplace_back(
        signature_header,
        "sha256=" + hmac_sha256_hex(github ? kGithubSecret : kJiraSecret, req.body));
  }

  Daemon& d = daemon();
  Router::Match m = d.router_.match("POST", req.path);
  FUZZ_CHECK(m.route != nullptr, "no webhook route");
  Response r = m.route->handler(req);

  boost::system::error_code ec;
  json::value answer = json::parse(r.body, ec);
  FUZZ_CHECK(!ec && answer.is_object(), "answer is not a JSON object: " + r.body);
  FUZZ_CHECK(r.status == 200 || r.status == 202 || r.status == 400 || r.status == 401,
             "unexpected status " + std::to_string(r.status) + ": " + r.body);
  if (r.status == 202 || (r.status == 200 && answer.as_object().contains("duplicate"))) {
    auto delivery = req.header(github ? "x-github-delivery" : "x-atlassian-webhook-identifier");
    FUZZ_CHECK(delivery.has_value(), "accepted without a delivery id");
    FUZZ_CHECK(answer.at("delivery") == json::value(*delivery), "answer names another delivery");
  }
  if (r.status == 202) {
    json::value v = json::parse(req.body, ec);
    FUZZ_CHECK(!ec && v.is_object(), "accepted a body that is not a JSON object");
    // Exactly once: the same delivery again produces nothing.
    Response again = m.route->handler(req);
    FUZZ_CHECK(again.status == 200 && again.body.find("\"duplicate\":true") != std::string::npos,
               "a redelivery was not recognised: " + again.body);
  }
  return 0;
}
