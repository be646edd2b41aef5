// Event ids: canonical JSON (Boost.JSON's SAX parser) hashed with SHA-256 (OpenSSL EVP).
//
// The canonical form is built bottom-up while parsing: every finished value is already its
// canonical text, so an array appends it and an object collects (raw key, text) pairs that it
// sorts, checks for duplicates and joins when it closes. No DOM is built, and duplicate keys are
// seen before anything could drop them (boost::json::object silently keeps one of them).
#include "factory/event.h"

// (the header this file implements comes first, above, so it is proven self-contained)
#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <openssl/evp.h>

#include "base/check.h"

namespace factory {
namespace {

namespace json = boost::json;

// Deeper documents are rejected. It bounds the parser's stack and the per-level copies of the
// canonical text; event payloads are far shallower (Boost's default is 32).
constexpr size_t kMaxDepth = 64;

constexpr char kHexDigits[] = "0123456789abcdef";

// The string rule of the canonical form (see event.h). The parser has already validated UTF-8
// and decoded escapes, so only the bytes that JSON requires escaping are escaped.
void append_canonical_string(std::string* out, std::string_view s) {
  out->push_back('"');
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < 0x20) {
          out->append("\\u00");
          out->push_back(kHexDigits[c >> 4]);
          out->push_back(kHexDigits[c & 0xf]);
        } else {
          out->push_back(ch);
        }
    }
  }
  out->push_back('"');
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
      append_canonical_string(&text, members[i].first);
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
    append_canonical_string(&text, part_);
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
    // Boost.JSON's own double format (see event.h); pinned by the tests, so a Boost upgrade that
    // changed it would fail them instead of silently changing ids.
    emit(json::serialize(json::value(d)));
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

std::string quoted_for_message(std::string_view s) {
  std::string q;
  append_canonical_string(&q, s.size() > 64 ? s.substr(0, 64) : s);
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

Result<std::string> canonical_json(std::string_view input) {
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
