#define VALIJSON_USE_EXCEPTIONS 1
#include "config/contract.h"

#include <stdexcept>

#include <boost/json.hpp>
#include <valijson/adapters/boost_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validator.hpp>

namespace factory::config {

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
