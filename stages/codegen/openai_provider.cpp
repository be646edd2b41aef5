// The openai provider (provider.h): one POST to an OpenAI-compatible /v1/chat/completions
// endpoint (OpenAI, Ollama, llama.cpp server, vLLM, ...) over HTTP or HTTPS.
//
// Beast is used directly (stages do not link factory::http, which sits above them). Every
// network step is asynchronous on a private io_context that this thread runs in slices until the
// step completes or the deadline passes: synchronous Beast calls would ignore the timeout.
// HTTPS verifies the server against the system's CA store, with SNI and host-name checking.
#include <chrono>
#include <optional>
#include <string>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/version.hpp>
#include <boost/json.hpp>
#include <openssl/ssl.h>

#include "codegen/provider.h"

namespace factory::stages {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr size_t kMaxAnswerBytes = 8 << 20;

struct Url {
  bool https = false;
  std::string host;  // without brackets
  std::string port;
  std::string target;  // the full path of the chat completions endpoint
};

Result<Url> parse_base_url(std::string_view base) {
  auto bad = [&](std::string_view why) {
    return Status::invalid_argument(
        "openai.base_url '" + std::string(base) + "' " + std::string(why) +
        "; write e.g. http://127.0.0.1:11434 or https://api.openai.com");
  };
  Url u;
  std::string_view rest = base;
  if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else if (rest.starts_with("https://")) {
    rest.remove_prefix(8);
    u.https = true;
  } else {
    return bad("must start with http:// or https://");
  }
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string path(slash == std::string_view::npos ? "" : rest.substr(slash));
  if (authority.find('@') != std::string_view::npos) {
    return bad("must not hold credentials (use api_key_secret)");
  }
  if (authority.starts_with("[")) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("has an unclosed IPv6 bracket");
    u.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (after.starts_with(":")) u.port = std::string(after.substr(1));
  } else {
    size_t colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) u.port = std::string(authority.substr(colon + 1));
  }
  if (u.host.empty()) return bad("has no host");
  if (u.port.empty()) u.port = u.https ? "443" : "80";
  for (char c : u.port) {
    if (c < '0' || c > '9') return bad("has a port that is not a number");
  }
  if (path.find_first_of("?#") != std::string::npos) return bad("must not have a query");
  while (!path.empty() && path.back() == '/') path.pop_back();
  // Accept a base that already ends in /v1 (as many clients are configured).
  if (!path.ends_with("/v1")) path += "/v1";
  u.target = path + "/chat/completions";
  return u;
}

struct HttpAnswer {
  int status = 0;
  std::string body;
};

// One HTTP exchange on a private io_context, bounded by `deadline`.
class Exchange {
 public:
  Exchange(Clock::time_point deadline, int64_t timeout_ms, std::string ca_file)
      : deadline_(deadline), timeout_ms_(timeout_ms), ca_file_(std::move(ca_file)) {}

  Result<HttpAnswer> post(const Url& url, const std::string& body, const std::string& api_key) {
    tcp::resolver resolver(ioc_);
    tcp::resolver::results_type endpoints;
    Status s = wait(
        [&](auto done) {
          resolver.async_resolve(url.host, url.port,
                                 [&endpoints, done](beast::error_code ec, auto results) {
                                   endpoints = results;
                                   done(ec);
                                 });
        },
        [&] { resolver.cancel(); }, "resolving " + url.host);
    if (!s.ok()) return s;

    if (url.https) {
      tls_.emplace(ssl::context::tls_client);
      beast::error_code ec;
      if (ca_file_.empty()) {
        tls_->set_default_verify_paths(ec);
      } else {
        tls_->load_verify_file(ca_file_, ec);
        if (ec) {
          return Status::invalid_argument("cannot read openai.ca_file " + ca_file_ + ": " +
                                          ec.message());
        }
      }
      tls_->set_verify_mode(ssl::verify_peer);
      secure_.emplace(ioc_, *tls_);
      if (!SSL_set_tlsext_host_name(secure_->native_handle(), url.host.c_str())) {
        return Status::unavailable("cannot set the TLS server name " + url.host);
      }
      secure_->set_verify_callback(ssl::host_name_verification(url.host));
    } else {
      plain_.emplace(ioc_);
    }
    s = wait(
        [&](auto done) {
          lowest().async_connect(endpoints, [done](beast::error_code ec, auto) { done(ec); });
        },
        [&] { close(); }, "connecting to " + url.host + ":" + url.port);
    if (!s.ok()) return s;
    if (url.https) {
      s = wait([&](auto done) { secure_->async_handshake(ssl::stream_base::client, done); },
               [&] { close(); }, "the TLS handshake with " + url.host);
      if (!s.ok()) return s;
    }

    bhttp::request<bhttp::string_body> req{bhttp::verb::post, url.target, 11};
    req.set(bhttp::field::host, url.host);
    req.set(bhttp::field::user_agent, "factoryd codegen");
    req.set(bhttp::field::content_type, "application/json");
    req.set(bhttp::field::accept, "application/json");
    if (!api_key.empty()) req.set(bhttp::field::authorization, "Bearer " + api_key);
    req.body() = body;
    req.prepare_payload();
    s = wait(
        [&](auto done) {
          auto h = [done](beast::error_code ec, size_t) { done(ec); };
          url.https ? bhttp::async_write(*secure_, req, h) : bhttp::async_write(*plain_, req, h);
        },
        [&] { close(); }, "sending the request");
    if (!s.ok()) return s;

    beast::flat_buffer buffer;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(kMaxAnswerBytes);
    s = wait(
        [&](auto done) {
          auto h = [done](beast::error_code ec, size_t) { done(ec); };
          url.https ? bhttp::async_read(*secure_, buffer, parser, h)
                    : bhttp::async_read(*plain_, buffer, parser, h);
        },
        [&] { close(); }, "reading the answer");
    if (!s.ok()) return s;
    close();
    return HttpAnswer{static_cast<int>(parser.get().result_int()), parser.get().body()};
  }

 private:
  beast::tcp_stream& lowest() { return secure_ ? beast::get_lowest_layer(*secure_) : *plain_; }

  void close() {
    beast::error_code ec;
    if (plain_) plain_->socket().close(ec);
    if (secure_) beast::get_lowest_layer(*secure_).socket().close(ec);
  }

  // Starts an operation and runs the io_context until it completes or the deadline passes
  // (then `abort` cancels it and the call is TimedOut).
  template <class Start, class Abort>
  Status wait(Start start, Abort abort, const std::string& what) {
    bool finished = false;
    beast::error_code result;
    start([&finished, &result](beast::error_code ec) {
      finished = true;
      result = ec;
    });
    ioc_.restart();
    while (!finished) {
      auto now = Clock::now();
      if (now >= deadline_) {
        abort();
        ioc_.restart();
        ioc_.run_for(std::chrono::seconds(2));  // let the aborted handler run
        return Status::timed_out("no answer within " + std::to_string(timeout_ms_) + " ms (while " +
                                 what + ")");
      }
      ioc_.run_for(std::min<Clock::duration>(deadline_ - now, std::chrono::milliseconds(100)));
      if (ioc_.stopped()) ioc_.restart();
    }
    if (result) return Status::unavailable(what + " failed: " + result.message());
    return Status();
  }

  asio::io_context ioc_;
  std::optional<ssl::context> tls_;
  std::optional<beast::tcp_stream> plain_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure_;
  const Clock::time_point deadline_;
  const int64_t timeout_ms_;
  const std::string ca_file_;
};

std::string excerpt(std::string_view text, size_t n = 300) {
  std::string s(text.substr(0, n));
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  if (text.size() > n) s += "...";
  return s;
}

// The model's content may arrive wrapped in a Markdown fence although we asked for none.
std::string_view strip_fence(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  if (s.starts_with("```") && s.ends_with("```") && s.size() >= 6) {
    s = s.substr(3, s.size() - 6);
    size_t nl = s.find('\n');
    s = nl == std::string_view::npos ? std::string_view() : s.substr(nl + 1);
  }
  return s;
}

Result<Generated> parse_answer(const OpenAiSettings& settings, std::string_view body) {
  auto malformed = [&](std::string why) {
    return Status::corruption("the model's answer is malformed: " + why);
  };
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) return malformed("not a JSON object: " + excerpt(body));
  const json::object& o = v.as_object();
  const json::value* choices = o.if_contains("choices");
  if (!choices || !choices->is_array() || choices->as_array().empty() ||
      !choices->as_array()[0].is_object()) {
    return malformed("no choices[0]: " + excerpt(body));
  }
  const json::object& choice = choices->as_array()[0].as_object();
  const json::value* message = choice.if_contains("message");
  const json::value* content =
      message && message->is_object() ? message->as_object().if_contains("content") : nullptr;
  if (!content || !content->is_string()) {
    return malformed("choices[0].message.content is not a string");
  }
  if (const json::value* fr = choice.if_contains("finish_reason");
      fr && fr->is_string() && fr->as_string() == "length") {
    return malformed("cut off at max_tokens (" + std::to_string(settings.max_tokens) +
                     "); raise openai.max_tokens");
  }
  std::string_view text = strip_fence(content->as_string());
  json::value files_doc = json::parse(text, ec);
  if (ec || !files_doc.is_object()) {
    return malformed("the content is not the JSON object asked for: " + excerpt(text));
  }
  const json::value* files = files_doc.as_object().if_contains("files");
  if (!files || !files->is_array() || files->as_array().empty()) {
    return malformed("the content has no non-empty \"files\" list");
  }
  Generated g;
  for (const json::value& f : files->as_array()) {
    const json::object* fo = f.if_object();
    const json::value* path = fo ? fo->if_contains("path") : nullptr;
    const json::value* text_v = fo ? fo->if_contains("content") : nullptr;
    if (!path || !path->is_string() || !text_v || !text_v->is_string()) {
      return malformed("every file needs a string \"path\" and \"content\"");
    }
    Status s = check_file_path(path->as_string());
    if (!s.ok()) return malformed(s.message());
    g.files.push_back({std::string(path->as_string()), std::string(text_v->as_string())});
  }
  g.model = settings.model;
  if (const json::value* m = o.if_contains("model");
      m && m->is_string() && !m->as_string().empty()) {
    g.model = std::string(m->as_string());
  }
  if (const json::value* u = o.if_contains("usage"); u && u->is_object()) {
    if (const json::value* p = u->as_object().if_contains("prompt_tokens"); p && p->is_int64()) {
      g.prompt_tokens = p->as_int64();
    }
    if (const json::value* c = u->as_object().if_contains("completion_tokens");
        c && c->is_int64()) {
      g.completion_tokens = c->as_int64();
    }
  }
  return g;
}

}  // namespace

Result<Generated> openai_generate(const OpenAiSettings& settings, const Prompt& prompt) {
  Result<Url> url = parse_base_url(settings.base_url);
  if (!url.ok()) return url.status();
  if (settings.model.empty()) {
    return Status::invalid_argument("openai.model is empty; name the model, e.g. llama3.1:8b");
  }
  json::object body;
  body["model"] = settings.model;
  json::array messages;
  messages.push_back(json::object{{"role", "system"}, {"content", prompt.system}});
  messages.push_back(json::object{{"role", "user"}, {"content", prompt.user}});
  body["messages"] = std::move(messages);
  body["temperature"] = 0;
  body["max_tokens"] = settings.max_tokens;
  body["response_format"] = json::object{{"type", "json_object"}};
  body["stream"] = false;

  const auto deadline = Clock::now() + std::chrono::milliseconds(settings.timeout_ms);
  Exchange exchange(deadline, settings.timeout_ms, settings.ca_file);
  Result<HttpAnswer> answer = exchange.post(*url, json::serialize(body), settings.api_key);
  const std::string where =
      std::string(url->https ? "https://" : "http://") +
      (url->host.find(':') != std::string::npos ? "[" + url->host + "]" : url->host) + ":" +
      url->port + url->target;
  if (!answer.ok()) {
    const Status& s = answer.status();
    if (s.is_invalid_argument()) return s;
    std::string msg = "openai provider " + where + ": " + s.message();
    return s.is_timed_out() ? Status::timed_out(msg) : Status(Status::unavailable(msg));
  }
  if (answer->status >= 500 || answer->status == 429 || answer->status == 408) {
    return Status::unavailable("openai provider " + where + " answered HTTP " +
                               std::to_string(answer->status) + ": " + excerpt(answer->body));
  }
  if (answer->status < 200 || answer->status >= 300) {
    return Status::invalid_argument(
        "openai provider " + where + " answered HTTP " + std::to_string(answer->status) +
        " (check base_url, model and api_key_secret): " + excerpt(answer->body));
  }
  Result<Generated> g = parse_answer(settings, answer->body);
  if (!g.ok()) return Status::corruption("openai provider " + where + ": " + g.status().message());
  return g;
}

}  // namespace factory::stages
