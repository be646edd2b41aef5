#include "ingest/jira_wiki.h"

#include <cctype>
#include <string>
#include <vector>

#include "ingest/inline_text.h"

namespace factory::stages::ingest {
namespace {

using Kind = Block::Kind;

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)); }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool starts_with_icase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  }
  return true;
}

// The length of a macro tag at text[pos] ("{color:red}", "{quote}", "{panel:title=x}"): a
// brace, a letter, letters, and optional ":params", up to "}". 0 when there is none.
size_t macro_length(std::string_view text, size_t pos) {
  if (text[pos] != '{' || pos + 1 >= text.size() ||
      !std::isalpha(static_cast<unsigned char>(text[pos + 1]))) {
    return 0;
  }
  size_t i = pos + 1;
  while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
  if (i < text.size() && text[i] == ':') {
    while (i < text.size() && text[i] != '}' && text[i] != '{') ++i;
  }
  return i < text.size() && text[i] == '}' ? i + 1 - pos : 0;
}

// The title of a {panel:title=X|...} or {expand:X} tag, empty for other tags.
std::string_view macro_title(std::string_view tag) {
  tag = tag.substr(1, tag.size() - 2);  // without the braces
  if (starts_with_icase(tag, "expand:")) return trim(tag.substr(7));
  if (!starts_with_icase(tag, "panel:")) return {};
  for (std::string_view params = tag.substr(6); !params.empty();) {
    size_t bar = params.find('|');
    std::string_view param = params.substr(0, bar);
    if (starts_with_icase(param, "title=")) return trim(param.substr(6));
    params = bar == std::string_view::npos ? std::string_view() : params.substr(bar + 1);
  }
  return {};
}

// The length of an image "!name.png!" or "!name.png|thumbnail!" at text[pos], 0 if none.
size_t image_length(std::string_view text, size_t pos) {
  if (text[pos] != '!') return 0;
  size_t end = text.find('!', pos + 1);
  if (end == std::string_view::npos || end == pos + 1) return 0;
  std::string_view inner = text.substr(pos + 1, end - pos - 1);
  std::string_view name = inner.substr(0, inner.find('|'));
  if (name.find_first_of(" \t") != std::string_view::npos) return 0;
  if (name.find('.') == std::string_view::npos) return 0;
  return end + 1 - pos;
}

// A link "[...]" at text[pos] into `out`; its length, 0 when there is none.
size_t add_link(std::string_view text, size_t pos, InlineText* out) {
  if (text[pos] != '[') return 0;
  size_t end = text.find(']', pos + 1);
  if (end == std::string_view::npos || end == pos + 1) return 0;
  std::string_view inner = text.substr(pos + 1, end - pos - 1);
  size_t bar = inner.find('|');
  if (bar == std::string_view::npos) {
    if (inner.front() == '~') {  // [~user] or [~accountid:123]
      std::string_view user = inner.substr(1);
      if (user.starts_with("accountid:")) user.remove_prefix(10);
      out->add("@");
      out->add(user);
    } else if (inner.front() == '^' || inner.front() == '#') {  // attachment, anchor
      out->add(inner.substr(1));
    } else if (url_length(inner, 0, "") == inner.size() ||
               (inner.starts_with("www.") &&
                inner.find_first_of(" \t") == std::string_view::npos)) {
      out->add_verbatim(inner);
    } else {
      return 0;  // "[some text]", "[x]": not a link
    }
    return end + 1 - pos;
  }
  std::string_view label = trim(inner.substr(0, bar));
  std::string_view url = inner.substr(bar + 1);
  url = trim(url.substr(0, url.find('|')));  // [text|url|tooltip]
  if (url.starts_with("mailto:")) url.remove_prefix(7);
  if (label.empty() || label == url) {
    out->add_verbatim(url);
  } else {
    out->add(label);
    out->add(" (");
    out->add_verbatim(url);
    out->add(")");
  }
  return end + 1 - pos;
}

// The level of a heading line "h3. text" (1-6) and its text; 0 when it is none.
int heading_level(std::string_view line, std::string_view* text) {
  if (line.size() < 3 || (line[0] != 'h' && line[0] != 'H') || line[1] < '1' || line[1] > '6' ||
      line[2] != '.') {
    return 0;
  }
  *text = trim(line.substr(3));
  return line[1] - '0';
}

// A list line "** text", "# text", "#* text", "- text": its markers and text; false if none.
bool list_item(std::string_view line, std::string_view* markers, std::string_view* text) {
  size_t i = 0;
  while (i < line.size() && (line[i] == '*' || line[i] == '#')) ++i;
  if (i == 0 && !line.empty() && line[0] == '-') i = 1;
  if (i == 0 || i >= line.size() || !is_space(line[i])) return false;
  *markers = line.substr(0, i);
  *text = trim(line.substr(i));
  return true;
}

// A checklist prefix "[ ] ", "[x] ", "[X] " on an item's text: removes it and sets *checked.
bool task_prefix(std::string_view* text, bool* checked) {
  std::string_view t = *text;
  if (t.size() < 3 || t[0] != '[' || t[2] != ']') return false;
  if (t[1] != ' ' && t[1] != 'x' && t[1] != 'X') return false;
  if (t.size() > 3 && !is_space(t[3])) return false;
  *checked = t[1] != ' ';
  *text = trim(t.substr(3));
  return true;
}

// Splits `text` at wiki line breaks ("\\") and appends each piece as a block of `kind`; the
// pieces after the first of a list item continue it as text lines.
void add_lines(Document* doc, Block block, const std::string& text) {
  size_t start = 0;
  bool first = true;
  while (true) {
    size_t brk = text.find("\\\\", start);
    Block b = block;
    if (!first && (b.kind == Kind::kItem || b.kind == Kind::kTask)) b = Block{};
    b.text = text.substr(start, brk == std::string::npos ? std::string::npos : brk - start);
    append_block(doc, std::move(b));
    if (brk == std::string::npos) break;
    start = brk + 2;
    first = false;
  }
}

// The cells of a table row, split at the '|' outside links ("|[a|http://x]|b|").
std::vector<std::string_view> table_cells(std::string_view row) {
  std::vector<std::string_view> cells;
  size_t start = 0;
  int depth = 0;
  for (size_t i = 0; i <= row.size(); ++i) {
    char c = i < row.size() ? row[i] : '|';
    if (c == '[') ++depth;
    if (c == ']' && depth > 0) --depth;
    if (c != '|' || depth > 0) continue;
    std::string_view cell = trim(row.substr(start, i - start));
    if (!cell.empty()) cells.push_back(cell);
    start = i + 1;
  }
  return cells;
}

// The tag that closes a code block opened by `open` ("{code:java}" -> "{code}").
std::string closing_tag(std::string_view open) {
  return starts_with_icase(open, "{noformat") ? "{noformat}" : "{code}";
}

}  // namespace

std::string jira_wiki_inline(std::string_view line) {
  InlineText out;
  size_t i = 0;
  while (i < line.size()) {
    if (line.substr(i).starts_with("{{")) {
      size_t end = line.find("}}", i + 2);
      if (end != std::string_view::npos) {
        out.add_verbatim(line.substr(i + 2, end - i - 2));
        i = end + 2;
        continue;
      }
    }
    if (size_t n = macro_length(line, i)) {
      i += n;
      continue;
    }
    if (size_t n = image_length(line, i)) {
      i += n;
      continue;
    }
    if (size_t n = add_link(line, i, &out)) {
      i += n;
      continue;
    }
    if (size_t n = url_length(line, i, "|]")) {
      out.add_verbatim(line.substr(i, n));
      i += n;
      continue;
    }
    out.add(line.substr(i, 1));
    ++i;
  }
  std::string& text = out.text();
  text = strip_paired(text, "??");
  for (std::string_view marker : {"*", "_", "-", "+", "^", "~"}) {
    text = strip_paired(text, marker);
  }
  return out.finish();
}

Document parse_jira_wiki(std::string_view markup) {
  Document doc;
  std::string code_close;  // non-empty inside a {code} / {noformat} block
  size_t pos = 0;
  while (pos <= markup.size()) {
    size_t nl = markup.find('\n', pos);
    std::string_view raw = markup.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
    pos = nl == std::string_view::npos ? markup.size() + 1 : nl + 1;
    if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);

    if (!code_close.empty()) {
      size_t end = raw.find(code_close);
      if (end == std::string_view::npos) {
        append_block(&doc, {.kind = Kind::kCode, .text = std::string(raw)});
        continue;
      }
      if (!trim(raw.substr(0, end)).empty()) {
        append_block(&doc, {.kind = Kind::kCode, .text = std::string(raw.substr(0, end))});
      }
      append_block(&doc, {.kind = Kind::kBreak});
      raw = raw.substr(end + code_close.size());
      code_close.clear();
    }

    std::string_view line = trim(raw);
    if (starts_with_icase(line, "{code") || starts_with_icase(line, "{noformat")) {
      size_t n = macro_length(line, 0);
      if (n > 0) {
        append_block(&doc, {.kind = Kind::kBreak});
        std::string close = closing_tag(line);
        std::string_view rest = line.substr(n);
        size_t end = rest.find(close);
        if (end != std::string_view::npos) {  // {code}x = 1{code} on one line
          append_block(&doc, {.kind = Kind::kCode, .text = std::string(rest.substr(0, end))});
          append_block(&doc, {.kind = Kind::kBreak});
          line = trim(rest.substr(end + close.size()));
        } else {
          if (!trim(rest).empty()) {
            append_block(&doc, {.kind = Kind::kCode, .text = std::string(rest)});
          }
          code_close = close;
          continue;
        }
      }
    }

    if (line.empty() || line.find_first_not_of('-') == std::string_view::npos) {
      append_block(&doc, {.kind = Kind::kBreak});  // a blank line, or a "----" rule
      continue;
    }
    if (size_t n = macro_length(line, 0)) {  // a panel's title is a (level 6) heading
      std::string_view title = macro_title(line.substr(0, n));
      if (!title.empty()) {
        append_block(&doc, {.kind = Kind::kBreak});
        append_block(&doc, {.kind = Kind::kHeading, .text = jira_wiki_inline(title), .level = 6});
        line = trim(line.substr(n));
        if (line.empty()) continue;
      }
    }
    std::string_view text;
    if (int level = heading_level(line, &text)) {
      append_block(&doc, {.kind = Kind::kBreak});
      append_block(&doc, {.kind = Kind::kHeading, .text = jira_wiki_inline(text), .level = level});
      continue;
    }
    std::string_view markers;
    if (list_item(line, &markers, &text)) {
      Block b{.kind = Kind::kItem,
              .level = static_cast<int>(markers.size()),
              .ordered = markers.back() == '#'};
      if (task_prefix(&text, &b.checked)) b.kind = Kind::kTask;
      add_lines(&doc, b, jira_wiki_inline(text));
      continue;
    }
    if (line.starts_with("bq.")) line = trim(line.substr(3));
    if (line.front() == '|') {  // a table row: "||head||head||" or "|cell|cell|"
      std::string row;
      for (std::string_view cell : table_cells(line)) {
        std::string text = jira_wiki_inline(cell);
        if (!text.empty()) row += (row.empty() ? "" : " | ") + text;
      }
      append_block(&doc, {.text = row});
      continue;
    }
    if (!doc.empty() && (doc.back().kind == Kind::kItem || doc.back().kind == Kind::kTask)) {
      append_block(&doc, {.kind = Kind::kBreak});  // text after a list starts a paragraph
    }
    add_lines(&doc, Block{}, jira_wiki_inline(line));
  }
  while (!doc.empty() && doc.back().kind == Kind::kBreak) doc.pop_back();
  return doc;
}

}  // namespace factory::stages::ingest
