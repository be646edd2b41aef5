// Status and Result<T>: how every fallible factoryd call reports failure.
//
// Status is leveldb's shape: ok(), a code callers branch on, and a message for people.
// Result<T> holds either a T or a non-ok Status (absl::StatusOr's shape).
// Both are immutable values and safe to copy between threads.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace factory {

class [[nodiscard]] Status {
 public:
  enum class Code : uint8_t {
    kOk = 0,
    kNotFound,
    kAlreadyExists,
    kInvalidArgument,  // the caller's input is wrong: fix it and retry
    kOutOfRange,       // e.g. an offset below the log start
    kCorruption,
    kIOError,
    kBusy,  // a resource is held by someone else (e.g. the data dir)
    kTimedOut,
    kShuttingDown,
    kFailedPrecondition,
    kUnavailable,  // transient: retrying later may succeed
    kInternal,
    kNoSpace,  // the disk is full: nothing was written; retrying after space is freed succeeds
  };

  Status() = default;

  static Status ok_status() { return Status(); }
  static Status not_found(std::string_view m) { return {Code::kNotFound, m}; }
  static Status already_exists(std::string_view m) { return {Code::kAlreadyExists, m}; }
  static Status invalid_argument(std::string_view m) { return {Code::kInvalidArgument, m}; }
  static Status out_of_range(std::string_view m) { return {Code::kOutOfRange, m}; }
  static Status corruption(std::string_view m) { return {Code::kCorruption, m}; }
  static Status io_error(std::string_view m) { return {Code::kIOError, m}; }
  static Status busy(std::string_view m) { return {Code::kBusy, m}; }
  static Status timed_out(std::string_view m) { return {Code::kTimedOut, m}; }
  static Status shutting_down(std::string_view m) { return {Code::kShuttingDown, m}; }
  static Status failed_precondition(std::string_view m) { return {Code::kFailedPrecondition, m}; }
  static Status unavailable(std::string_view m) { return {Code::kUnavailable, m}; }
  static Status internal(std::string_view m) { return {Code::kInternal, m}; }
  static Status no_space(std::string_view m) { return {Code::kNoSpace, m}; }
  // A Status with code `c`, e.g. one read back from the API's error body; kOk gives ok_status().
  static Status from_code(Code c, std::string_view m) {
    return c == Code::kOk ? Status() : Status(c, m);
  }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  bool is_not_found() const { return code_ == Code::kNotFound; }
  bool is_already_exists() const { return code_ == Code::kAlreadyExists; }
  bool is_invalid_argument() const { return code_ == Code::kInvalidArgument; }
  bool is_failed_precondition() const { return code_ == Code::kFailedPrecondition; }
  bool is_out_of_range() const { return code_ == Code::kOutOfRange; }
  bool is_busy() const { return code_ == Code::kBusy; }
  bool is_timed_out() const { return code_ == Code::kTimedOut; }
  bool is_no_space() const { return code_ == Code::kNoSpace; }

  // True when the same call may succeed if repeated later (drives retries).
  bool retryable() const {
    return code_ == Code::kBusy || code_ == Code::kTimedOut || code_ == Code::kUnavailable ||
           code_ == Code::kIOError || code_ == Code::kNoSpace;
  }

  // "NotFound: topic 'x' does not exist"; "OK" for success.
  std::string to_string() const;
  static std::string_view code_name(Code c);

 private:
  Status(Code c, std::string_view m) : code_(c), message_(m) {}

  Code code_ = Code::kOk;
  std::string message_;
};

// Either a value or the Status saying why there is none. `*r` and `r->` on a non-ok Result are
// a broken invariant (check ok() first): they print "factoryd: Result accessed with an error:
// <status>" on stderr and abort, as FACTORY_CHECK does (this header stays std-only).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    if (status_.ok()) status_ = Status::internal("Result constructed from an OK status");
  }

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }

  T& operator*() & {
    check_ok();
    return *value_;
  }
  const T& operator*() const& {
    check_ok();
    return *value_;
  }
  T&& operator*() && {
    check_ok();
    return std::move(*value_);
  }
  T* operator->() {
    check_ok();
    return &*value_;
  }
  const T* operator->() const {
    check_ok();
    return &*value_;
  }

 private:
  void check_ok() const {
    if (status_.ok()) [[likely]]
      return;
    std::fprintf(stderr, "factoryd: Result accessed with an error: %s\n",
                 status_.to_string().c_str());
    std::abort();
  }

  Status status_;
  std::optional<T> value_;
};

inline std::string_view Status::code_name(Code c) {
  switch (c) {
    case Code::kOk:
      return "OK";
    case Code::kNotFound:
      return "NotFound";
    case Code::kAlreadyExists:
      return "AlreadyExists";
    case Code::kInvalidArgument:
      return "InvalidArgument";
    case Code::kOutOfRange:
      return "OutOfRange";
    case Code::kCorruption:
      return "Corruption";
    case Code::kIOError:
      return "IOError";
    case Code::kBusy:
      return "Busy";
    case Code::kTimedOut:
      return "TimedOut";
    case Code::kShuttingDown:
      return "ShuttingDown";
    case Code::kFailedPrecondition:
      return "FailedPrecondition";
    case Code::kUnavailable:
      return "Unavailable";
    case Code::kInternal:
      return "Internal";
    case Code::kNoSpace:
      return "NoSpace";
  }
  return "Unknown";
}

inline std::string Status::to_string() const {
  if (ok()) return "OK";
  std::string s(code_name(code_));
  s += ": ";
  s += message_;
  return s;
}

}  // namespace factory

// Returns early from the enclosing function when `expr` is a non-ok Status.
#define FACTORY_RETURN_IF_ERROR(expr)                  \
  do {                                                 \
    ::factory::Status factory_status_ = (expr);        \
    if (!factory_status_.ok()) return factory_status_; \
  } while (0)
