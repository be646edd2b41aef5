#include "http/request_target.h"

#include <algorithm>
#include <cctype>

#include <boost/url/parse.hpp>

namespace factory::http {

RequestTarget parse_request_target(std::string_view target) {
  RequestTarget out;
  auto url = boost::urls::parse_origin_form(target);
  if (!url) {
    out.refusal_code = "invalid_argument";
    out.refusal_message = "request target is not a valid path; percent-encode special characters";
    return out;
  }
  out.path = std::string(url->path());
  for (auto param : url->params()) {
    if (param.key == "access_token" || param.key == "token") {
      out.query.clear();
      out.refusal_code = "token_in_query";
      out.refusal_message =
          "API tokens in the query string are refused (they end up in logs); send "
          "'Authorization: Bearer <token>' instead";
      return out;
    }
    out.query.emplace_back(param.key, param.value);
  }
  return out;
}

bool sane_request_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

}  // namespace factory::http
