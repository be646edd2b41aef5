#include "ingest/inline_text.h"

#include <cctype>

namespace factory::stages::ingest {
namespace {

constexpr char kOpen = '\x01';
constexpr char kClose = '\x02';

bool is_word(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }
bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)); }

}  // namespace

void InlineText::add(std::string_view text) {
  for (char c : text) text_.push_back(c == kOpen || c == kClose ? ' ' : c);
}

void InlineText::add_verbatim(std::string_view text) {
  text_.push_back(kOpen);
  text_ += std::to_string(verbatim_.size());
  text_.push_back(kClose);
  verbatim_.emplace_back(text);
}

std::string InlineText::finish() const {
  std::string out;
  for (size_t i = 0; i < text_.size(); ++i) {
    if (text_[i] != kOpen) {
      out.push_back(text_[i]);
      continue;
    }
    size_t end = text_.find(kClose, i);
    size_t index = std::stoul(text_.substr(i + 1, end - i - 1));
    out += verbatim_[index];
    i = end;
  }
  return out;
}

std::string strip_paired(std::string_view text, std::string_view marker) {
  const size_t n = text.size();
  const size_t m = marker.size();
  const char mc = marker.front();
  auto at = [&](size_t i) { return i + m <= n && text.substr(i, m) == marker; };
  auto can_open = [&](size_t i) {
    if (!at(i)) return false;
    if (i > 0 && (is_word(text[i - 1]) || text[i - 1] == mc)) return false;
    return i + m < n && !is_space(text[i + m]) && text[i + m] != mc;
  };
  auto can_close = [&](size_t j) {
    if (!at(j)) return false;
    if (is_space(text[j - 1]) || text[j - 1] == mc) return false;
    return j + m == n || (!is_word(text[j + m]) && text[j + m] != mc);
  };
  std::string out;
  size_t i = 0;
  while (i < n) {
    if (can_open(i)) {
      size_t j = i + m + 1;
      while (j < n && !can_close(j)) ++j;
      if (j < n) {
        out += text.substr(i + m, j - i - m);
        i = j + m;
        continue;
      }
    }
    out.push_back(text[i]);
    ++i;
  }
  return out;
}

size_t url_length(std::string_view text, size_t pos, std::string_view stops) {
  std::string_view rest = text.substr(pos);
  if (!rest.starts_with("http://") && !rest.starts_with("https://") &&
      !rest.starts_with("mailto:")) {
    return 0;
  }
  size_t len = 0;
  while (len < rest.size() && !is_space(rest[len]) && stops.find(rest[len]) == std::string::npos &&
         rest[len] != kOpen && rest[len] != kClose) {
    ++len;
  }
  while (len > 0 && std::string_view(".,;:!?)'\"").find(rest[len - 1]) != std::string::npos) {
    --len;
  }
  return len;
}

}  // namespace factory::stages::ingest
