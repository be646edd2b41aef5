// The body of POST /api/v1/topics/{t}/records (api_log.cpp), read into the records to append:
//   {"records":[{"key":string|null, "key_b64":..., "value":<any JSON>, "value_b64":...,
//                "headers":{"name":"value",...} | [{"name"|"name_b64","value"|"value_b64"}],
//                "partition":int, "timestamp":ms}], "sync":bool}
//
// Two readers, one answer. read_produce_body() is the definition (Boost.JSON: parse_body() and
// FieldReader, every refusal's message); read_produce_body_simd() reads the same records through
// simdjson's DOM when it can (json_fast.h says what it leaves to Boost) and never refuses: on
// anything but a body it fully understands, the caller runs read_produce_body(). The tests
// compare the two (tests/http/json_fast_test.cpp) and the json_input fuzz target does too.
//
// Thread-safety: free functions.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>
#include <vector>

#include "factory/record.h"
#include "factory/status.h"
#include "http/router.h"

namespace factory::http {

struct ProduceBody {
  std::vector<ProducerRecord> records;
  bool sync = true;
};

// The records of `req.body`. InvalidArgument naming the problem; *failed_record is the index
// of the record it concerns (nullopt when it concerns the body itself).
Status read_produce_body(const Request& req, ProduceBody* out,
                         std::optional<size_t>* failed_record);

// true: *out holds what read_produce_body() would read. false: ask read_produce_body() (*out
// is then unspecified).
bool read_produce_body_simd(std::string_view body, ProduceBody* out);

// What the produce handler runs: read_produce_body_simd(), then read_produce_body() when it
// declines; same answer as read_produce_body(). When the fast path declines a body that the
// reference then accepts (values holding doubles, typically), the thread sends its next
// kSkipAfterDecline bodies straight to the reference: a client whose values always hold
// doubles pays the declined attempt on one body in 16, not on every body.
inline constexpr int kSkipAfterDecline = 15;
Status read_produce_body_fast(const Request& req, ProduceBody* out,
                              std::optional<size_t>* failed_record);

}  // namespace factory::http
