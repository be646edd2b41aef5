// Inline text helpers the markup parsers share: paired emphasis markers ("*bold*", "_it_",
// "**bold**") removed with word-boundary rules, and verbatim pieces (code spans, URLs) kept out
// of reach of those rewrites.
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace factory::stages::ingest {

// Text being assembled from markup. Verbatim pieces sit in the text as placeholders
// ("\x01<n>\x02") until finish(), so strip_paired() never rewrites inside them.
class InlineText {
 public:
  // Appends text later rewrites may change (control characters 0x01/0x02 become spaces).
  void add(std::string_view text);
  // Appends text kept exactly as it is (code spans, URLs).
  void add_verbatim(std::string_view text);
  // The text with placeholders, for rewriting in place.
  std::string& text() { return text_; }
  // The text with every placeholder replaced by its verbatim piece.
  std::string finish() const;

 private:
  std::string text_;
  std::vector<std::string> verbatim_;
};

// `text` with every well-formed pair of `marker` around a span removed: the opening marker
// follows a non-word character (or the start) and precedes a non-space, the closing marker
// follows a non-space and precedes a non-word character (or the end), and neither touches
// another marker character. "*bold* text" -> "bold text"; "snake_case_name", "a * b * c" and
// "__init__.py" are left alone.
std::string strip_paired(std::string_view text, std::string_view marker);

// The length of the URL starting at text[pos] ("http://", "https://" or "mailto:" and every
// character up to a space or one of `stops`, without trailing punctuation), 0 when there is
// none.
size_t url_length(std::string_view text, size_t pos, std::string_view stops);

}  // namespace factory::stages::ingest
