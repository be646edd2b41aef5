// Contract: a compiled JSON Schema (draft 7, via valijson) that stage inputs and outputs are
// checked against. Immutable once compiled; validate() is thread-safe.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "factory/status.h"

namespace factory::config {

class Contract {
 public:
  // Compiles `schema_json`. An empty schema accepts any JSON value. InvalidArgument naming
  // `what` (e.g. "input schema of stage 'gate'") when the schema is not JSON or not a schema.
  static Result<std::unique_ptr<Contract>> compile(std::string_view schema_json,
                                                   std::string_view what);
  ~Contract();

  // OK when `json` is JSON and satisfies the schema; otherwise InvalidArgument listing up to
  // three violations as "at /path/to/field: description".
  Status validate(std::string_view json) const;

 private:
  struct Impl;
  explicit Contract(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace factory::config
