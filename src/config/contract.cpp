#define VALIJSON_USE_EXCEPTIONS 1
#include "config/contract.h"

#include <optional>
#include <stdexcept>

#include <boost/json.hpp>
#include <simdjson.h>
#include <valijson/adapters/boost_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validator.hpp>

namespace factory::config {

namespace {

// boost::json::parse's default nesting limit (parse_options::max_depth), which validate()
// inherits; simdjson is set a little lower so that what it accepts Boost accepts too.
constexpr size_t kBoostMaxDepth = 32;
constexpr size_t kSimdMaxDepth = kBoostMaxDepth - 2;
constexpr size_t kMaxKeptParserBytes = 1 << 20;

simdjson::dom::parser make_parser() {
  simdjson::dom::parser p;
  // On failure max_depth() stays the default, and simd_reads() then always answers "ask Boost".
  [[maybe_unused]] simdjson::error_code err = p.allocate(simdjson::SIMDJSON_PADDING, kSimdMaxDepth);
  return p;
}

// Whether `e` holds a double equal to zero. Boost refuses an exponent past 2^31, which
// simdjson reads as 0 ("0e21973790275807"); any other double simdjson reads, Boost reads too.
bool has_zero_double(simdjson::dom::element e) {
  switch (e.type()) {
    case simdjson::dom::element_type::ARRAY:
      for (simdjson::dom::element v : simdjson::dom::array(e.get_array().value_unsafe())) {
        if (has_zero_double(v)) return true;
      }
      return false;
    case simdjson::dom::element_type::OBJECT:
      for (simdjson::dom::key_value_pair kv :
           simdjson::dom::object(e.get_object().value_unsafe())) {
        if (has_zero_double(kv.value)) return true;
      }
      return false;
    case simdjson::dom::element_type::DOUBLE:
      return e.get_double().value_unsafe() == 0;
    default:
      return false;
  }
}

// Whether boost::json::parse(json) succeeds, when simdjson can tell: it reads the text within
// kSimdMaxDepth and holds no zero double. simdjson refuses some text Boost reads (integers
// beyond 64 bits, 1e400, which Boost takes as Infinity), so false means "ask Boost", not
// "invalid".
bool simd_reads(std::string_view json) {
  thread_local simdjson::dom::parser kept = make_parser();
  std::optional<simdjson::dom::parser> own;
  simdjson::dom::parser* parser = &kept;
  if (json.size() > kMaxKeptParserBytes) parser = &own.emplace(make_parser());
  if (parser->max_depth() != kSimdMaxDepth) return false;
  simdjson::dom::element root;
  if (parser->parse(json.data(), json.size(), true).get(root) != simdjson::SUCCESS) return false;
  return !has_zero_double(root);
}

}  // namespace

struct Contract::Impl {
  bool any = false;  // empty schema: any JSON value
  valijson::Schema schema;
};

Contract::Contract(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Contract::~Contract() = default;

Result<std::unique_ptr<Contract>> Contract::compile(std::string_view schema_json,
                                                    std::string_view what) {
  auto impl = std::make_unique<Impl>();
  if (schema_json.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    impl->any = true;
    return std::unique_ptr<Contract>(new Contract(std::move(impl)));
  }
  boost::system::error_code ec;
  boost::json::value doc = boost::json::parse(schema_json, ec);
  if (ec) {
    return Status::invalid_argument(std::string(what) + " is not valid JSON: " + ec.message());
  }
  try {
    valijson::SchemaParser parser;
    valijson::adapters::BoostJsonAdapter adapter(doc);
    parser.populateSchema(adapter, impl->schema);
  } catch (const std::exception& e) {
    return Status::invalid_argument(std::string(what) + " is not a valid JSON Schema: " + e.what());
  }
  return std::unique_ptr<Contract>(new Contract(std::move(impl)));
}

Status Contract::validate(std::string_view json) const {
  // Without a schema only the JSON verdict matters: simdjson gives it without a Boost.JSON
  // document (the stage-hop hot path). Every refusal's message is still Boost's.
  if (impl_->any && simd_reads(json)) return Status();
  boost::system::error_code ec;
  boost::json::value doc = boost::json::parse(json, ec);
  if (ec) return Status::invalid_argument("payload is not valid JSON: " + ec.message());
  if (impl_->any) return Status();
  valijson::Validator validator;
  valijson::ValidationResults results;
  valijson::adapters::BoostJsonAdapter target(doc);
  if (validator.validate(impl_->schema, target, &results)) return Status();
  // valijson reports a chain of errors from the innermost outwards; keep the leaf messages.
  std::string message = "payload violates the schema: ";
  int shown = 0;
  for (const auto& err : results) {
    // Wrapper errors ("Failed to validate against schema associated with property ...") only
    // repeat a leaf error's path.
    if (err.description.starts_with("Failed to validate")) continue;
    if (shown == 3) {
      message += "; ...";
      break;
    }
    std::string path;
    for (const std::string& c : err.context) {
      if (c == "<root>") continue;
      std::string part = c;
      if (part.size() >= 2 && part.front() == '[' && part.back() == ']') {
        part = part.substr(1, part.size() - 2);
        if (part.size() >= 2 && part.front() == '"') part = part.substr(1, part.size() - 2);
      }
      path += "/" + part;
    }
    if (path.empty()) path = "/";
    if (shown++) message += "; ";
    message += "at " + path + ": " + err.description;
  }
  return Status::invalid_argument(message);
}

}  // namespace factory::config
