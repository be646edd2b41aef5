#include "http/router.h"

#include <algorithm>

#include <boost/json.hpp>

#include "http/wire_bytes.h"

namespace factory::http {

namespace {

// Splits "/a/b/c" into {"a","b","c"}; a trailing slash is ignored.
std::vector<std::string_view> segments(std::string_view path) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    out.push_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string snake_code(Status::Code code) {
  std::string_view name = Status::code_name(code);  // "NotFound"
  std::string out;
  for (char c : name) {
    if (std::isupper(static_cast<unsigned char>(c))) {
      if (!out.empty()) out += '_';
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string_view role_name(Role role) {
  switch (role) {
    case Role::kPublic:
      return "public";
    case Role::kViewer:
      return "viewer";
    case Role::kOperator:
      return "operator";
    case Role::kAdmin:
      return "admin";
  }
  return "public";
}

std::optional<Role> parse_role(std::string_view name) {
  if (name == "viewer") return Role::kViewer;
  if (name == "operator") return Role::kOperator;
  if (name == "admin") return Role::kAdmin;
  return std::nullopt;
}

std::optional<std::string_view> Request::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return std::string_view(v);
  }
  return std::nullopt;
}

std::optional<std::string_view> Request::query_value(std::string_view name) const {
  for (const auto& [k, v] : query) {
    if (k == name) return std::string_view(v);
  }
  return std::nullopt;
}

std::string_view Request::param(std::string_view name) const {
  for (const auto& [k, v] : params) {
    if (k == name) return v;
  }
  return {};
}

Response json_response(std::string body, int status) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

Response error_response(int status, std::string_view code, std::string_view message,
                        std::string_view details_json) {
  boost::json::object error;
  error["code"] = code;
  error["message"] = message;
  boost::system::error_code ec;
  boost::json::value details = boost::json::parse(details_json, ec);
  if (ec || !details.is_object()) details = boost::json::object();
  error["details"] = std::move(details);
  boost::json::object root;
  root["error"] = std::move(error);
  return json_response(boost::json::serialize(root), status);
}

Response status_response(const Status& s, std::string_view details_json) {
  int status = 500;
  switch (s.code()) {
    case Status::Code::kOk:
      status = 200;
      break;
    case Status::Code::kNotFound:
      status = 404;
      break;
    case Status::Code::kInvalidArgument:
    case Status::Code::kOutOfRange:
      status = 400;
      break;
    case Status::Code::kAlreadyExists:
    case Status::Code::kFailedPrecondition:
      status = 409;
      break;
    case Status::Code::kBusy:
    case Status::Code::kUnavailable:
    case Status::Code::kShuttingDown:
      status = 503;
      break;
    case Status::Code::kTimedOut:
      status = 504;
      break;
    case Status::Code::kNoSpace:
      status = 507;  // Insufficient Storage (RFC 4918): nothing was written
      break;
    case Status::Code::kCorruption:
    case Status::Code::kIOError:
    case Status::Code::kInternal:
      status = 500;
      break;
  }
  return error_response(status, snake_code(s.code()), s.message(), details_json);
}

Status status_from_error(int http_status, std::string_view body) {
  std::string code_word;
  std::string message;
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(body, ec);
  if (!ec && v.is_object()) {
    if (const boost::json::value* e = v.get_object().if_contains("error"); e && e->is_object()) {
      if (const boost::json::value* c = e->get_object().if_contains("code"); c && c->is_string()) {
        code_word = std::string(c->get_string());
      }
      if (const boost::json::value* m = e->get_object().if_contains("message");
          m && m->is_string()) {
        message = std::string(m->get_string());
      }
    }
  }
  if (message.empty()) {
    message = "the daemon answered HTTP " + std::to_string(http_status);
    if (!body.empty() && body.size() < 200 && is_valid_utf8(body)) {
      message += ": " + std::string(body);
    }
  }
  if (code_word == "internal_topic") return Status::failed_precondition(message);
  if (http_status == 401 || http_status == 403) {
    return Status::failed_precondition(
        message + "; pass an API token with the needed role (--token or FACTORY_TOKEN)");
  }
  if (http_status == 429) return Status::busy(message + "; retry later");
  static constexpr Status::Code kCodes[] = {
      Status::Code::kNotFound,
      Status::Code::kAlreadyExists,
      Status::Code::kInvalidArgument,
      Status::Code::kOutOfRange,
      Status::Code::kCorruption,
      Status::Code::kIOError,
      Status::Code::kBusy,
      Status::Code::kTimedOut,
      Status::Code::kShuttingDown,
      Status::Code::kFailedPrecondition,
      Status::Code::kUnavailable,
      Status::Code::kInternal,
      Status::Code::kNoSpace,
  };
  for (Status::Code c : kCodes) {
    if (snake_code(c) == code_word) return Status::from_code(c, message);
  }
  switch (http_status) {
    case 400:
    case 413:
    case 431:
      return Status::invalid_argument(message);
    case 404:
      return Status::not_found(message);
    case 409:
      return Status::failed_precondition(message);
    case 503:
      return Status::unavailable(message);
    case 507:
      return Status::no_space(message);
    case 504:
      return Status::timed_out(message);
    default:
      return Status::internal(message);
  }
}

void Router::add(Route route) { routes_.push_back(std::move(route)); }

Router::Match Router::match(std::string_view method, std::string_view path) const {
  Match m;
  std::vector<std::string_view> want = segments(path);
  for (const Route& route : routes_) {
    std::vector<std::string_view> pattern = segments(route.pattern);
    if (pattern.size() != want.size()) continue;
    std::vector<std::pair<std::string, std::string>> params;
    bool ok = true;
    for (size_t i = 0; i < pattern.size() && ok; ++i) {
      std::string_view p = pattern[i];
      if (p.size() >= 2 && p.front() == '{' && p.back() == '}') {
        if (want[i].empty()) ok = false;
        params.emplace_back(std::string(p.substr(1, p.size() - 2)), std::string(want[i]));
      } else {
        ok = p == want[i];
      }
    }
    if (!ok) continue;
    if (route.method != method) {
      if (std::find(m.allowed.begin(), m.allowed.end(), route.method) == m.allowed.end()) {
        m.allowed.push_back(route.method);
      }
      continue;
    }
    m.route = &route;
    m.params = std::move(params);
    return m;
  }
  return m;
}

}  // namespace factory::http
