// Strict JSON request bodies: what every write handler uses to read its body so malformed
// input is refused the same way everywhere, with a 400 that names the problem.
//
// parse_body() refuses: an empty body where one is required, invalid JSON (with the byte
// offset), invalid UTF-8, nesting deeper than kMaxDepth, a number that does not fit a double
// (1e400, and 0e400, which Boost.JSON 1.81 reads as NaN: both would be written on as words
// that are not JSON), and a top level that is not an object. FieldReader then refuses unknown
// fields and wrong types, naming the field.
//
// Thread-safety: free functions; a FieldReader is a short-lived value owned by one handler.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "factory/status.h"
#include "http/router.h"

namespace factory::http {

inline constexpr int kMaxDepth = 32;

// The body as a JSON object. InvalidArgument (message names the problem and the byte offset)
// for anything else.
Result<boost::json::object> parse_body(const Request& req);

// The JSON Schema name of v's type, for error messages: "null", "boolean", "integer", "number",
// "string", "array", "object".
std::string_view json_kind_name(const boost::json::value& v);
// Any JSON value (for a produce batch whose `value` fields may be anything).
Result<boost::json::value> parse_json(std::string_view text, std::string_view what);

// Reads fields of one object, refusing unknown ones and wrong types. `where` names the object
// in messages ("body", "records[3]").
//   FieldReader r(obj, "body", {"name", "partitions", "config"});
//   if (auto s = r.check_unknown(); !s.ok()) return status_response(s);
//   auto parts = r.int64("partitions");            // nullopt when absent
class FieldReader {
 public:
  FieldReader(const boost::json::object& obj, std::string where,
              std::initializer_list<std::string_view> allowed);

  // InvalidArgument "unknown field 'x' in body; allowed: a, b" for the first unknown field.
  Status check_unknown() const;
  // First type error seen by the getters below (ok when none): "body.partitions must be an
  // integer, got string".
  const Status& status() const { return status_; }

  std::optional<std::string> string(std::string_view name);
  std::optional<int64_t> int64(std::string_view name);
  std::optional<bool> boolean(std::string_view name);
  const boost::json::object* object(std::string_view name);
  const boost::json::array* array(std::string_view name);
  const boost::json::value* any(std::string_view name);  // present with any type
  // Sets status() to InvalidArgument "body.name is required" when absent.
  void require(std::string_view name);

 private:
  void type_error(std::string_view name, std::string_view want, const boost::json::value& got);
  const boost::json::object& obj_;
  std::string where_;
  std::vector<std::string_view> allowed_;  // views of string literals
  Status status_;
};

// Query parameters: "limit" as an int64 in [min, max] (default when absent), else
// InvalidArgument naming the parameter.
Result<int64_t> query_int(const Request& req, std::string_view name, int64_t def, int64_t min,
                          int64_t max);

}  // namespace factory::http
