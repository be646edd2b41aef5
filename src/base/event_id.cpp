// Event ids: canonical JSON hashed with SHA-256 (OpenSSL EVP).
//
// Two parsers write the canonical form (src/base/canonical_json.h): simdjson's DOM, walked
// once (the fast path: members sorted as string_views into the parsed document, values written
// straight into one output string), and Boost.JSON's SAX parser, the reference that decides
// every case the fast path leaves to it (refusals, duplicate keys, doubles at the range edges,
// deep nesting), so the bytes and the error messages are the reference's.
//
// The reference builds the canonical form bottom-up while parsing: every finished value is already
// its canonical text, so an array appends it and an object collects (raw key, text) pairs that it
// sorts, checks for duplicates and joins when it closes. No DOM is built, and duplicate keys are
// seen before anything could drop them (boost::json::object silently keeps one of them).
#include "factory/event.h"

// (the header this file implements comes first, above, so it is proven self-contained)
#include <algorithm>
#include <charconv>
#include <cmath>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/detail/format.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <openssl/evp.h>
#include <simdjson.h>

#include "base/canonical_json.h"
#include "base/check.h"
#include "base/coding.h"

namespace factory {
namespace {

namespace json = boost::json;

// Deeper documents are rejected. It bounds the parser's stack and the per-level copies of the
// canonical text; event payloads are far shallower (Boost's default is 32).
constexpr size_t kMaxDepth = 64;

constexpr char kHexDigits[] = "0123456789abcdef";

// Boost.JSON's double format (see event.h): json::serialize writes a double with exactly this
// call (boost/json/impl/serializer.ipp), here without a string per number. Pinned by the tests,
// so a Boost upgrade that changed it would fail them instead of silently changing ids.
void append_canonical_double(std::string* out, double d) {
  char buf[json::detail::max_number_chars + 1];
  out->append(buf, json::detail::format_double(buf, d));
}

// A SAX handler (the interface documented in boost/json/basic_parser.hpp) that writes the
// canonical text. Not thread-safe; one per parse.
class CanonicalHandler {
 public:
  static constexpr size_t max_array_size = static_cast<size_t>(-1);
  static constexpr size_t max_object_size = static_cast<size_t>(-1);
  static constexpr size_t max_string_size = static_cast<size_t>(-1);
  static constexpr size_t max_key_size = static_cast<size_t>(-1);

  // Why the handler stopped the parse (the parser itself only carries an error_code).
  enum class Failure { kNone, kDuplicateKey, kBadNumber } failure = Failure::kNone;
  std::string failure_text;  // the duplicate key or the number literal

  std::string take_result() { return std::move(result_); }

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }

  bool on_array_begin(json::error_code&) {
    Frame& f = frames_.emplace_back();
    f.is_object = false;
    f.text = "[";
    return true;
  }
  bool on_array_end(size_t, json::error_code&) {
    std::string text = std::move(frames_.back().text);
    frames_.pop_back();
    text.push_back(']');
    emit(std::move(text));
    return true;
  }

  bool on_object_begin(json::error_code&) {
    frames_.emplace_back().is_object = true;
    return true;
  }
  bool on_object_end(size_t, json::error_code& ec) {
    auto& members = frames_.back().members;
    // std::string compares through char_traits<char>, which orders bytes as unsigned char:
    // exactly the UTF-8 byte order the canonical form promises.
    std::sort(members.begin(), members.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    for (size_t i = 1; i < members.size(); ++i) {
      if (members[i - 1].first == members[i].first) {
        failure = Failure::kDuplicateKey;
        failure_text = members[i].first;
        ec = json::error::syntax;
        return false;
      }
    }
    std::string text = "{";
    for (size_t i = 0; i < members.size(); ++i) {
      if (i > 0) text.push_back(',');
      base::append_boost_json_string(&text, members[i].first);
      text.push_back(':');
      text += members[i].second;
    }
    text.push_back('}');
    frames_.pop_back();
    emit(std::move(text));
    return true;
  }

  bool on_key_part(json::string_view s, size_t, json::error_code&) {
    part_.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, size_t, json::error_code&) {
    part_.append(s.data(), s.size());
    frames_.back().pending_key = std::move(part_);
    part_.clear();
    return true;
  }
  bool on_string_part(json::string_view s, size_t, json::error_code&) {
    part_.append(s.data(), s.size());
    return true;
  }
  bool on_string(json::string_view s, size_t, json::error_code&) {
    part_.append(s.data(), s.size());
    std::string text;
    base::append_boost_json_string(&text, part_);
    part_.clear();
    emit(std::move(text));
    return true;
  }

  bool on_number_part(json::string_view s, json::error_code&) {
    part_.append(s.data(), s.size());
    return true;
  }
  bool on_int64(int64_t v, json::string_view, json::error_code&) {
    part_.clear();
    emit(std::to_string(v));
    return true;
  }
  bool on_uint64(uint64_t v, json::string_view, json::error_code&) {
    part_.clear();
    emit(std::to_string(v));
    return true;
  }
  bool on_double(double boost_value, json::string_view s, json::error_code& ec) {
    part_.append(s.data(), s.size());
    std::string literal = std::move(part_);
    part_.clear();
    // Boost 1.81 parses doubles fast but not always correctly rounded (it has no "precise"
    // option yet), which would make the canonical text of the canonical text differ from it.
    // from_chars rounds correctly, so the id of a double depends only on its value.
    double d = 0;
    auto [end, err] = std::from_chars(literal.data(), literal.data() + literal.size(), d);
    if (err == std::errc::result_out_of_range && std::fabs(boost_value) < 1) {
      d = std::copysign(0.0, boost_value);  // underflow, e.g. 1e-400: a (signed) zero
    } else if (err != std::errc() || end != literal.data() + literal.size() || !std::isfinite(d)) {
      failure = Failure::kBadNumber;
      failure_text = std::move(literal);
      ec = json::error::syntax;
      return false;
    }
    std::string text;
    append_canonical_double(&text, d);
    emit(std::move(text));
    return true;
  }

  bool on_bool(bool b, json::error_code&) {
    emit(b ? "true" : "false");
    return true;
  }
  bool on_null(json::error_code&) {
    emit("null");
    return true;
  }
  // Comments are disabled in the parse options; these are required by the interface.
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

 private:
  struct Frame {
    bool is_object = false;
    std::string text;                                          // array: "[a,b" so far
    std::vector<std::pair<std::string, std::string>> members;  // object: raw key, canonical text
    std::string pending_key;                                   // object: key of the next value
  };

  // Hands a finished value's canonical text to its container, or makes it the result.
  void emit(std::string text) {
    if (frames_.empty()) {
      result_ = std::move(text);
      return;
    }
    Frame& f = frames_.back();
    if (f.is_object) {
      f.members.emplace_back(std::move(f.pending_key), std::move(text));
      f.pending_key.clear();
    } else {
      if (f.text.size() > 1) f.text.push_back(',');
      f.text += text;
    }
  }

  std::vector<Frame> frames_;
  std::string part_;  // a key, string or number delivered in pieces
  std::string result_;
};

// The simdjson fast path: a walk over the parsed DOM that writes the canonical text into one
// string. Returns false (the caller then asks the reference) for whatever it must not judge
// alone. Not thread-safe; one per parse.
class SimdCanonicalWriter {
 public:
  explicit SimdCanonicalWriter(std::string* out) : out_(out) {}

  bool write(simdjson::dom::element e, size_t depth) {
    switch (e.type()) {
      case simdjson::dom::element_type::ARRAY:
        return write_array(e.get_array().value_unsafe(), depth + 1);
      case simdjson::dom::element_type::OBJECT:
        return write_object(e.get_object().value_unsafe(), depth + 1);
      case simdjson::dom::element_type::INT64:
        append_int(e.get_int64().value_unsafe());
        return true;
      case simdjson::dom::element_type::UINT64:
        append_int(e.get_uint64().value_unsafe());
        return true;
      case simdjson::dom::element_type::DOUBLE:
        return write_double(e.get_double().value_unsafe());
      case simdjson::dom::element_type::STRING:
        base::append_boost_json_string(out_, e.get_string().value_unsafe());
        return true;
      case simdjson::dom::element_type::BOOL:
        out_->append(e.get_bool().value_unsafe() ? "true" : "false");
        return true;
      case simdjson::dom::element_type::NULL_VALUE:
        out_->append("null");
        return true;
    }
    return false;
  }

 private:
  // The reference's depth limit counts differently; well before it, the reference decides.
  static constexpr size_t kMaxSimdDepth = kMaxDepth - 4;

  bool write_array(simdjson::dom::array a, size_t depth) {
    if (depth > kMaxSimdDepth) return false;
    out_->push_back('[');
    bool first = true;
    for (simdjson::dom::element v : a) {
      if (!first) out_->push_back(',');
      first = false;
      if (!write(v, depth)) return false;
    }
    out_->push_back(']');
    return true;
  }

  bool write_object(simdjson::dom::object o, size_t depth) {
    if (depth > kMaxSimdDepth) return false;
    // Views into the parsed document, sorted as the reference sorts (string_view compares
    // through char_traits<char>: unsigned bytes). One vector per level, reused by siblings.
    if (members_.size() < depth) members_.resize(depth);
    auto& members = members_[depth - 1];
    members.clear();
    for (simdjson::dom::key_value_pair kv : o) members.emplace_back(kv.key, kv.value);
    std::sort(members.begin(), members.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    for (size_t i = 1; i < members.size(); ++i) {
      if (members[i - 1].first == members[i].first) return false;  // the reference's message
    }
    out_->push_back('{');
    // members_ may grow (and move this level's vector) while a member is written: index it.
    for (size_t i = 0; i < members_[depth - 1].size(); ++i) {
      auto [key, value] = members_[depth - 1][i];
      if (i > 0) out_->push_back(',');
      base::append_boost_json_string(out_, key);
      out_->push_back(':');
      if (!write(value, depth)) return false;
    }
    out_->push_back('}');
    return true;
  }

  template <typename Int>
  void append_int(Int v) {
    char buf[24];
    auto [end, err] = std::to_chars(buf, buf + sizeof buf, v);
    out_->append(buf, end);
  }

  // simdjson rounds correctly, as the reference's from_chars does, and refuses what overflows.
  // Magnitudes near either end of the range (subnormals, underflow, the edge where Boost's own
  // reading overflows) are left to the reference, and so is zero: Boost refuses an exponent
  // past 2^31 ("0e21973790275807", found by the event_id fuzz target), which simdjson reads as
  // 0. A non-zero double in range cannot carry such an exponent in a document under 2 GB.
  bool write_double(double d) {
    double m = std::fabs(d);
    if (m < 1e-300 || m > 1e300) return false;
    append_canonical_double(out_, d);
    return true;
  }

  std::string* out_;
  std::vector<std::vector<std::pair<std::string_view, simdjson::dom::element>>> members_;
};

// One parser per thread: it keeps its buffers between documents. A document much larger than
// events are gets a parser of its own, so no thread holds its memory afterwards.
constexpr size_t kMaxKeptParserBytes = 1 << 20;

std::string quoted_for_message(std::string_view s) {
  std::string q;
  base::append_boost_json_string(&q, s.size() > 64 ? s.substr(0, 64) : s);
  return s.size() > 64 ? q + "..." : q;
}

const EVP_MD* sha256() {
  // Fetched once: OpenSSL 3 would otherwise look the algorithm up on every digest.
  static const EVP_MD* md = EVP_MD_fetch(nullptr, "SHA2-256", nullptr);
  FACTORY_CHECK(md != nullptr);
  return md;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string EventId::hex() const {
  std::string s;
  s.reserve(2 * kSize);
  for (uint8_t b : digest) {
    s.push_back(kHexDigits[b >> 4]);
    s.push_back(kHexDigits[b & 0xf]);
  }
  return s;
}

Result<EventId> EventId::from_hex(std::string_view hex) {
  if (hex.size() != 2 * kSize) {
    return Status::invalid_argument("event id must be " + std::to_string(2 * kSize) +
                                    " hex digits, got " + std::to_string(hex.size()) +
                                    " characters: " + quoted_for_message(hex));
  }
  EventId id;
  for (size_t i = 0; i < kSize; ++i) {
    int hi = hex_value(hex[2 * i]);
    int lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      size_t at = hi < 0 ? 2 * i : 2 * i + 1;
      return Status::invalid_argument("event id has a non-hex character at position " +
                                      std::to_string(at) + ": " + quoted_for_message(hex));
    }
    id.digest[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return id;
}

namespace base {

std::optional<std::string> canonical_json_simd(std::string_view input) {
  thread_local simdjson::dom::parser kept_parser;
  std::optional<simdjson::dom::parser> own_parser;
  simdjson::dom::parser* parser = &kept_parser;
  if (input.size() > kMaxKeptParserBytes) parser = &own_parser.emplace();
  simdjson::dom::element root;
  // Copies the input into a padded buffer of the parser's (simdjson reads past the end).
  if (parser->parse(input.data(), input.size(), true).get(root) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  std::string out;
  out.reserve(input.size());
  SimdCanonicalWriter writer(&out);
  if (!writer.write(root, 0)) return std::nullopt;
  return out;
}

Result<std::string> canonical_json_boost(std::string_view input) {
  json::parse_options options;  // strict RFC 8259: no comments, trailing commas or bad UTF-8
  options.max_depth = kMaxDepth;
  json::basic_parser<CanonicalHandler> parser(options);
  json::error_code ec;
  // One call with more=false parses the whole input: the parser stops after one document and
  // its trailing whitespace, so anything it did not consume is extra data.
  size_t consumed = parser.write_some(false, input.data(), input.size(), ec);
  CanonicalHandler& h = parser.handler();
  if (h.failure == CanonicalHandler::Failure::kDuplicateKey) {
    return Status::invalid_argument("invalid JSON at byte " + std::to_string(consumed) +
                                    ": duplicate key " + quoted_for_message(h.failure_text) +
                                    " in the object that ends here");
  }
  if (h.failure == CanonicalHandler::Failure::kBadNumber) {
    return Status::invalid_argument("invalid JSON at byte " + std::to_string(consumed) +
                                    ": number " + h.failure_text +
                                    " is out of the range of a double");
  }
  if (ec) {
    return Status::invalid_argument("invalid JSON at byte " + std::to_string(consumed) + ": " +
                                    ec.message());
  }
  if (consumed != input.size()) {
    return Status::invalid_argument("invalid JSON at byte " + std::to_string(consumed) +
                                    ": extra data after the JSON value");
  }
  return h.take_result();
}

}  // namespace base

Result<std::string> canonical_json(std::string_view input) {
  if (std::optional<std::string> fast = base::canonical_json_simd(input)) return std::move(*fast);
  return base::canonical_json_boost(input);
}

EventId event_id_for_bytes(std::string_view bytes) {
  EventId id;
  unsigned int len = 0;
  // EVP_Digest fails only when OpenSSL cannot allocate; an id is not optional, so that aborts.
  FACTORY_CHECK(EVP_Digest(bytes.data(), bytes.size(), id.digest.data(), &len, sha256(), nullptr) ==
                1);
  FACTORY_CHECK(len == EventId::kSize);
  return id;
}

Result<EventId> event_id_for(std::string_view json) {
  Result<std::string> canonical = canonical_json(json);
  if (!canonical.ok()) return canonical.status();
  return event_id_for_bytes(*canonical);
}

}  // namespace factory
