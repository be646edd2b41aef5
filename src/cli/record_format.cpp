#include "cli/record_format.h"

#include "cli/common.h"

namespace factory::cli {
namespace {

constexpr std::string_view kFields = "tpokTsSKh";

}  // namespace

RecordFormat::RecordFormat() : tokens_{{'s', ""}, {0, "\n"}} {}

Result<RecordFormat> RecordFormat::parse(std::string_view format) {
  RecordFormat f;
  f.tokens_.clear();
  std::string literal;
  auto flush_literal = [&] {
    if (!literal.empty()) f.tokens_.push_back({0, std::move(literal)});
    literal.clear();
  };
  for (size_t i = 0; i < format.size(); ++i) {
    char c = format[i];
    if (c == '\\' && i + 1 < format.size()) {
      char e = format[++i];
      switch (e) {
        case 'n':
          literal += '\n';
          break;
        case 'r':
          literal += '\r';
          break;
        case 't':
          literal += '\t';
          break;
        case '\\':
          literal += '\\';
          break;
        default:
          literal += '\\';
          literal += e;
          break;
      }
      continue;
    }
    if (c != '%') {
      literal += c;
      continue;
    }
    if (i + 1 >= format.size()) {
      return Status::invalid_argument("-f format ends with a lone '%'; write %% for a '%'");
    }
    char t = format[++i];
    if (t == '%') {
      literal += '%';
      continue;
    }
    if (kFields.find(t) == std::string_view::npos) {
      return Status::invalid_argument(std::string("-f format has unknown token %") + t +
                                      "; use %t %p %o %k %s %T %h %K %S or %%");
    }
    flush_literal();
    f.tokens_.push_back({t, ""});
  }
  flush_literal();
  return f;
}

void RecordFormat::append(std::string_view topic, const Record& r, std::string* out) const {
  for (const Token& t : tokens_) {
    switch (t.field) {
      case 0:
        *out += t.literal;
        break;
      case 't':
        *out += topic;
        break;
      case 'p':
        *out += std::to_string(r.partition);
        break;
      case 'o':
        *out += std::to_string(r.offset.value());
        break;
      case 'T':
        *out += std::to_string(r.timestamp_ms);
        break;
      case 'k':
        if (r.key) *out += *r.key;
        break;
      case 's':
        if (r.value) *out += *r.value;
        break;
      case 'K':
        *out += r.key ? std::to_string(r.key->size()) : "-1";
        break;
      case 'S':
        *out += r.value ? std::to_string(r.value->size()) : "-1";
        break;
      case 'h':
        for (size_t i = 0; i < r.headers.size(); ++i) {
          if (i) *out += ',';
          *out += r.headers[i].key;
          *out += '=';
          *out += r.headers[i].value;
        }
        break;
    }
  }
}

std::string record_json(std::string_view topic, const Record& r) {
  std::vector<std::string> headers;
  for (const Header& h : r.headers) {
    headers.push_back(JsonObject().str("name", h.key).str("value", h.value).done());
  }
  return JsonObject()
      .str("topic", topic)
      .num("partition", r.partition)
      .num("offset", r.offset.value())
      .num("timestamp", r.timestamp_ms)
      .opt_str("key", r.key)
      .opt_str("value", r.value)
      .raw("headers", json_array(headers))
      .done();
}

}  // namespace factory::cli
