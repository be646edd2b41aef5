// How `consume` prints a record: kcat's -f format, or one JSON object per
// record. Immutable after parse(); thread-compatible.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "factory/record.h"
#include "factory/status.h"

namespace factory::cli {

// kcat's format tokens: %t topic, %p partition, %o offset, %k key, %s value, %T
// timestamp (ms), %h headers (name=value,name=value), %K / %S key / value
// length (-1 when null), %% a '%'; and the escapes \n \r \t \\. A null key or
// value prints as nothing. The default prints "%s\n".
class RecordFormat {
 public:
  RecordFormat();  // "%s\n"
  // InvalidArgument naming the token for an unknown %x or a trailing '%'.
  static Result<RecordFormat> parse(std::string_view format);

  void append(std::string_view topic, const Record& record, std::string* out) const;

 private:
  struct Token {
    char field;           // 0 for literal text, else the letter after '%'
    std::string literal;  // when field == 0
  };
  std::vector<Token> tokens_;
};

// {"topic":..,"partition":..,"offset":..,"timestamp":..,"key":..|null,"value":..|null,
//  "headers":[{"name":..,"value":..}]}
std::string record_json(std::string_view topic, const Record& record);

}  // namespace factory::cli
