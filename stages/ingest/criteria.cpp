#include "ingest/criteria.h"

#include <algorithm>
#include <cctype>

namespace factory::stages::ingest {
namespace {

using Kind = Block::Kind;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// "Acceptance criteria", "Acceptance Criteria:", "ACCEPTANCE CRITERION".
bool is_section_title(std::string_view text) {
  std::string t = lower(trim(text));
  while (!t.empty() && (t.back() == ':' || std::isspace(static_cast<unsigned char>(t.back())))) {
    t.pop_back();
  }
  return t == "acceptance criteria" || t == "acceptance criterion";
}

// A line "Acceptance criteria: <rest>": true, with the rest (maybe empty) in *rest.
bool is_section_label(std::string_view text, std::string_view* rest) {
  std::string t = lower(text);
  for (std::string_view title : {"acceptance criteria", "acceptance criterion"}) {
    if (!t.starts_with(title)) continue;
    std::string_view after = trim(text.substr(title.size()));
    if (after.empty() || after.front() != ':') continue;
    *rest = trim(after.substr(1));
    return true;
  }
  return false;
}

// A short line ending in ':' ("Notes:", "Edge cases:"): it labels what follows.
bool is_label(std::string_view text) {
  text = trim(text);
  if (text.size() < 2 || text.back() != ':') return false;
  return std::count(text.begin(), text.end(), ' ') < 5;
}

// "AC: x", "AC1: x", "ac-2: x", "AC 3) x": true, with x in *rest.
bool ac_prefix(std::string_view text, std::string_view* rest) {
  if (text.size() < 3 || std::tolower(static_cast<unsigned char>(text[0])) != 'a' ||
      std::tolower(static_cast<unsigned char>(text[1])) != 'c') {
    return false;
  }
  size_t i = 2;
  while (i < text.size() && (text[i] == ' ' || text[i] == '-' || text[i] == '#')) ++i;
  size_t digits = i;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  if (i == 2 && text[2] != ':') return false;   // "Access ..." is not a prefix
  if (digits > 2 && i == digits) return false;  // "AC - x" needs a number: "AC-1:"
  while (i < text.size() && text[i] == ' ') ++i;
  if (i >= text.size() || (text[i] != ':' && text[i] != ')' && text[i] != '.')) return false;
  *rest = trim(text.substr(i + 1));
  return true;
}

enum class Step { kNone, kGiven, kWhen, kThen, kAnd, kScenario };

// The Gherkin keyword a line starts with ("Given", "when:", "AND").
Step step_of(std::string_view text) {
  size_t end = 0;
  while (end < text.size() && std::isalpha(static_cast<unsigned char>(text[end]))) ++end;
  std::string word = lower(text.substr(0, end));
  bool word_ends = end < text.size() && (text[end] == ' ' || text[end] == ':' || text[end] == ',');
  if (!word_ends) return Step::kNone;
  if (word == "given") return Step::kGiven;
  if (word == "when") return Step::kWhen;
  if (word == "then") return Step::kThen;
  if (word == "and" || word == "but") return Step::kAnd;
  if (word == "scenario" || word == "example") {
    std::string t = lower(text);
    if (t.starts_with("scenario:") || t.starts_with("scenario outline:") ||
        t.starts_with("example:")) {
      return Step::kScenario;
    }
  }
  return Step::kNone;
}

// Collects criteria in document order.
class Collector {
 public:
  void block(const Block& b) {
    switch (b.kind) {
      case Kind::kBreak:  // scenarios run across paragraphs
        if (in_section_ && list_seen_) list_closed_ = true;
        return;
      case Kind::kCode:
        return;
      case Kind::kHeading:
        flush();
        list_seen_ = list_closed_ = false;
        // A sub-heading ("h4. Export" under "h3. Acceptance criteria") stays in the section.
        if (in_section_ && by_heading_ && b.level > section_level_) return;
        in_section_ = is_section_title(b.text);
        by_heading_ = true;
        section_level_ = b.level;
        return;
      case Kind::kText:
      case Kind::kItem:
      case Kind::kTask:
        line(b);
        return;
    }
  }

  std::vector<std::string> finish() {
    flush();
    return std::move(criteria_);
  }

 private:
  void line(const Block& b) {
    std::string_view text = b.text;
    std::string_view rest;
    if (b.kind != Kind::kTask && (is_section_title(text) || is_section_label(text, &rest))) {
      flush();
      in_section_ = true;
      by_heading_ = false;
      list_seen_ = list_closed_ = false;
      if (rest.empty()) return;
      text = rest;
    }
    if (ac_prefix(text, &rest)) {
      flush();
      add_criterion(&criteria_, rest);
      return;
    }
    Step step = step_of(text);
    if (step == Step::kNone && b.kind != Kind::kTask && is_label(text)) {
      flush();
      if (!by_heading_) in_section_ = false;
      return;
    }
    switch (step) {
      case Step::kGiven:
      case Step::kWhen:
      case Step::kThen:
        if (open_ && step >= last_) {
          scenario_ += " ";
          scenario_ += text;
        } else {
          flush();
          open_ = true;
          scenario_ = std::string(text);
          scenario_in_section_ = in_section_;
          has_then_ = false;
        }
        last_ = step;
        has_then_ = has_then_ || step == Step::kThen;
        return;
      case Step::kAnd:
        if (open_) {
          scenario_ += " ";
          scenario_ += text;
          return;
        }
        break;
      case Step::kScenario:
        flush();
        return;
      case Step::kNone:
        break;
    }
    flush();
    if (in_section_ && b.kind != Kind::kText) {
      list_seen_ = true;
      list_closed_ = false;
    }
    // A paragraph after the section's list ("See the runbook for context.") is description,
    // not one more criterion; a line right under the last item (no blank line) still counts.
    bool prose_after_list = b.kind == Kind::kText && list_seen_ && list_closed_;
    if (b.kind == Kind::kTask || (in_section_ && !prose_after_list)) {
      add_criterion(&criteria_, text);
    }
  }

  void flush() {
    if (open_ && (scenario_in_section_ || has_then_)) add_criterion(&criteria_, scenario_);
    open_ = false;
    scenario_.clear();
  }

  std::vector<std::string> criteria_;
  bool in_section_ = false;
  bool by_heading_ = false;   // the section was opened by a heading, not by a label line
  int section_level_ = 0;     // the level of that heading
  bool list_seen_ = false;    // the section (or its current sub-heading) has had list items
  bool list_closed_ = false;  // ... and a paragraph break came after the last of them
  bool open_ = false;         // a Given/When/Then scenario is being collected
  bool scenario_in_section_ = false;
  bool has_then_ = false;
  Step last_ = Step::kNone;
  std::string scenario_;
};

}  // namespace

void add_criterion(std::vector<std::string>* list, std::string_view criterion) {
  std::string c = squash_spaces(criterion);
  if (c.empty()) return;
  if (std::find(list->begin(), list->end(), c) != list->end()) return;
  list->push_back(std::move(c));
}

std::vector<std::string> extract_criteria(const Document& doc) {
  Collector c;
  for (const Block& b : doc) c.block(b);
  return c.finish();
}

}  // namespace factory::stages::ingest
