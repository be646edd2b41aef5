#include "ingest/markdown.h"

#include <cctype>
#include <string>
#include <vector>

#include "ingest/inline_text.h"

namespace factory::stages::ingest {
namespace {

using Kind = Block::Kind;

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// `text` without HTML comments; an unterminated one runs to the end.
std::string drop_comments(std::string_view text) {
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t open = text.find("<!--", pos);
    if (open == std::string_view::npos) {
      out += text.substr(pos);
      break;
    }
    out += text.substr(pos, open - pos);
    size_t close = text.find("-->", open + 4);
    if (close == std::string_view::npos) break;
    pos = close + 3;
  }
  return out;
}

// The width of the leading whitespace (a tab counts 4) and the rest of the line.
int indent_of(std::string_view line, std::string_view* rest) {
  int width = 0;
  size_t i = 0;
  for (; i < line.size() && (line[i] == ' ' || line[i] == '\t'); ++i) {
    width += line[i] == '\t' ? 4 : 1;
  }
  *rest = line.substr(i);
  return width;
}

// "```lang" or "~~~": the fence (the run of its character), empty when the line is none.
std::string_view fence_of(std::string_view line) {
  if (line.empty() || (line[0] != '`' && line[0] != '~')) return {};
  size_t n = line.find_first_not_of(line[0]);
  if (n == std::string_view::npos) n = line.size();
  return n >= 3 ? line.substr(0, n) : std::string_view();
}

// A list marker at the start of `line` ("- ", "* ", "+ ", "12. ", "3) "): sets *ordered and
// *text; false when there is none.
bool list_marker(std::string_view line, bool* ordered, std::string_view* text) {
  size_t i = 0;
  if (!line.empty() && (line[0] == '-' || line[0] == '*' || line[0] == '+')) {
    i = 1;
    *ordered = false;
  } else {
    while (i < line.size() && i < 9 && is_digit(line[i])) ++i;
    if (i == 0 || i >= line.size() || (line[i] != '.' && line[i] != ')')) return false;
    ++i;
    *ordered = true;
  }
  if (i < line.size() && !is_space(line[i])) return false;
  *text = trim(line.substr(i));
  return true;
}

// A rule: three or more '-', '*' or '_' and nothing else but spaces.
bool is_rule(std::string_view line) {
  char c = line.empty() ? 0 : line[0];
  if (c != '-' && c != '*' && c != '_') return false;
  int count = 0;
  for (char x : line) {
    if (x == c) {
      ++count;
    } else if (!is_space(x)) {
      return false;
    }
  }
  return count >= 3;
}

bool task_prefix(std::string_view* text, bool* checked) {
  std::string_view t = *text;
  if (t.size() < 3 || t[0] != '[' || t[2] != ']') return false;
  if (t[1] != ' ' && t[1] != 'x' && t[1] != 'X') return false;
  if (t.size() > 3 && !is_space(t[3])) return false;
  *checked = t[1] != ' ';
  *text = trim(t.substr(3));
  return true;
}

// The end of the "(...)" starting at text[open] (balanced parentheses), npos if unclosed.
size_t closing_paren(std::string_view text, size_t open) {
  int depth = 0;
  for (size_t i = open; i < text.size(); ++i) {
    if (text[i] == '(') ++depth;
    if (text[i] == ')' && --depth == 0) return i;
  }
  return std::string_view::npos;
}

// A link "[text](url "title")" or image "![alt](src)" at line[pos] into `out`: its length, 0
// when there is none. "[text][ref]" keeps the text.
size_t add_link(std::string_view line, size_t pos, InlineText* out) {
  bool image = line[pos] == '!';
  size_t open = pos + (image ? 1 : 0);
  if (open >= line.size() || line[open] != '[') return 0;
  size_t close = line.find(']', open + 1);
  if (close == std::string_view::npos || close + 1 >= line.size()) return 0;
  std::string_view label = line.substr(open + 1, close - open - 1);
  if (line[close + 1] == '[') {
    size_t ref_end = line.find(']', close + 2);
    if (ref_end == std::string_view::npos) return 0;
    out->add(markdown_inline(label));
    return ref_end + 1 - pos;
  }
  if (line[close + 1] != '(') return 0;
  size_t end = closing_paren(line, close + 1);
  if (end == std::string_view::npos) return 0;
  std::string_view target = trim(line.substr(close + 2, end - close - 2));
  target = target.substr(0, target.find_first_of(" \t"));  // drop a "title"
  if (target.size() >= 2 && target.front() == '<' && target.back() == '>') {
    target = target.substr(1, target.size() - 2);
  }
  std::string text = markdown_inline(label);
  if (image) {
    out->add(text);
  } else if (text.empty() || text == target) {
    out->add_verbatim(target);
  } else {
    out->add(text);
    out->add(" (");
    out->add_verbatim(target);
    out->add(")");
  }
  return end + 1 - pos;
}

// An HTML tag or autolink "<...>" at line[pos] into `out`: its length, 0 if none. Autolinks
// keep their target, "<br>" becomes a line break ('\n'), other tags vanish.
size_t add_angle(std::string_view line, size_t pos, InlineText* out) {
  if (line[pos] != '<') return 0;
  size_t end = line.find('>', pos + 1);
  if (end == std::string_view::npos) return 0;
  std::string_view inner = line.substr(pos + 1, end - pos - 1);
  if (inner.empty() || inner.find_first_of(" \t") != std::string_view::npos) {
    if (inner.empty() || !std::isalpha(static_cast<unsigned char>(inner[0]))) return 0;
  }
  if (url_length(inner, 0, "") == inner.size() && !inner.empty()) {
    out->add_verbatim(inner);
    return end + 1 - pos;
  }
  if (inner.find('@') != std::string_view::npos &&
      inner.find_first_of(" \t") == std::string_view::npos) {
    out->add_verbatim(inner);
    return end + 1 - pos;
  }
  std::string_view name = inner;
  if (name.front() == '/') name.remove_prefix(1);
  if (name.empty() || !std::isalpha(static_cast<unsigned char>(name[0]))) return 0;
  std::string tag;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) break;
    tag.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  if (tag == "br" || tag == "p") out->add("\n");
  return end + 1 - pos;
}

// Splits `text` at '\n' (from "<br>") and appends the pieces: the first as `block`, the rest
// as text lines.
void add_lines(Document* doc, Block block, const std::string& text) {
  size_t start = 0;
  while (true) {
    size_t nl = text.find('\n', start);
    Block b = block;
    if (start > 0) b = Block{};
    b.text = text.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    append_block(doc, std::move(b));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
}

}  // namespace

std::string markdown_inline(std::string_view line) {
  InlineText out;
  size_t i = 0;
  while (i < line.size()) {
    char c = line[i];
    if (c == '\\' && i + 1 < line.size() && std::ispunct(static_cast<unsigned char>(line[i + 1]))) {
      out.add_verbatim(line.substr(i + 1, 1));
      i += 2;
      continue;
    }
    if (c == '`') {
      size_t n = line.find_first_not_of('`', i);
      if (n == std::string_view::npos) n = line.size();
      std::string_view ticks = line.substr(i, n - i);
      size_t end = line.find(ticks, n);
      if (end != std::string_view::npos) {
        out.add_verbatim(trim(line.substr(n, end - n)));
        i = end + ticks.size();
        continue;
      }
    }
    if (size_t n = add_link(line, i, &out)) {
      i += n;
      continue;
    }
    if (size_t n = add_angle(line, i, &out)) {
      i += n;
      continue;
    }
    if (size_t n = url_length(line, i, "<>")) {
      out.add_verbatim(line.substr(i, n));
      i += n;
      continue;
    }
    out.add(line.substr(i, 1));
    ++i;
  }
  std::string& text = out.text();
  for (std::string_view marker : {"**", "__", "~~", "*", "_"}) text = strip_paired(text, marker);
  return out.finish();
}

Document parse_markdown(std::string_view markdown) {
  const std::string source = drop_comments(markdown);
  Document doc;
  std::string_view fence;     // non-empty inside a fenced code block
  std::vector<int> indents;   // the indentation of each open list level
  bool after_blank = false;   // the previous line was blank
  std::string previous_text;  // the raw previous line when it was a text line (setext)
  size_t pos = 0;
  const std::string_view all = source;
  while (pos <= all.size()) {
    size_t nl = all.find('\n', pos);
    std::string_view raw = all.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
    pos = nl == std::string_view::npos ? all.size() + 1 : nl + 1;
    if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);

    std::string_view line;
    int indent = indent_of(raw, &line);
    if (!fence.empty()) {
      std::string_view closing = fence_of(trim(line));
      if (!closing.empty() && closing[0] == fence[0] && closing.size() >= fence.size() &&
          trim(line).size() == closing.size()) {
        fence = {};
        append_block(&doc, {.kind = Kind::kBreak});
      } else {
        append_block(&doc, {.kind = Kind::kCode, .text = std::string(raw)});
      }
      continue;
    }
    while (line.starts_with(">")) {  // block quotes: the quoted text counts as it is
      line = line.substr(1);
      indent = indent_of(line, &line);
    }
    line = trim(line);
    const std::string setext_text = std::move(previous_text);
    previous_text.clear();

    if (line.empty()) {
      append_block(&doc, {.kind = Kind::kBreak});
      after_blank = true;
      continue;
    }
    const bool was_blank = after_blank;
    after_blank = false;
    if (std::string_view f = fence_of(line); !f.empty()) {
      fence = f;
      append_block(&doc, {.kind = Kind::kBreak});
      continue;
    }
    if (!setext_text.empty() && !doc.empty() && doc.back().kind == Kind::kText &&
        line.find_first_not_of(line[0]) == std::string_view::npos &&
        (line[0] == '=' || line[0] == '-')) {
      doc.back().kind = Kind::kHeading;
      doc.back().level = line[0] == '=' ? 1 : 2;
      indents.clear();
      append_block(&doc, {.kind = Kind::kBreak});
      continue;
    }
    if (is_rule(line)) {
      append_block(&doc, {.kind = Kind::kBreak});
      indents.clear();
      continue;
    }
    if (line[0] == '#') {
      size_t level = line.find_first_not_of('#');
      if (level <= 6 && (level == line.size() || is_space(line[level]))) {
        std::string_view text = trim(line.substr(level));
        while (!text.empty() && text.back() == '#') text.remove_suffix(1);  // "## Title ##"
        append_block(&doc, {.kind = Kind::kBreak});
        append_block(&doc, {.kind = Kind::kHeading,
                            .text = markdown_inline(trim(text)),
                            .level = static_cast<int>(level)});
        indents.clear();
        continue;
      }
    }
    bool ordered = false;
    std::string_view text;
    if (list_marker(line, &ordered, &text)) {
      while (!indents.empty() && indents.back() > indent) indents.pop_back();
      if (indents.empty() || indents.back() < indent) indents.push_back(indent);
      Block b{.kind = Kind::kItem, .level = static_cast<int>(indents.size()), .ordered = ordered};
      if (task_prefix(&text, &b.checked)) b.kind = Kind::kTask;
      add_lines(&doc, b, markdown_inline(text));
      continue;
    }
    if (line[0] == '|') {  // a table row; the delimiter row "|---|:-:|" is dropped
      if (line.find_first_not_of("|-: \t") == std::string_view::npos) continue;
      std::string row;
      size_t i = 1;
      while (i < line.size()) {
        size_t next = line.find('|', i);
        while (next != std::string_view::npos && line[next - 1] == '\\') {
          next = line.find('|', next + 1);
        }
        if (next == std::string_view::npos) next = line.size();
        std::string cell = markdown_inline(trim(line.substr(i, next - i)));
        if (!cell.empty()) row += (row.empty() ? "" : " | ") + cell;
        i = next + 1;
      }
      append_block(&doc, {.text = row});
      continue;
    }
    // Text indented under an item continues it, right after it or after a blank line. Unlike
    // GFM, an unindented line does not ("lazy continuation"): ticket authors write one
    // criterion per line, and "- a\nAC: b" means two.
    const bool after_break = !doc.empty() && doc.back().kind == Kind::kBreak;
    const size_t item = doc.size() - (after_break ? 2 : 1);
    const bool in_item = doc.size() > (after_break ? 1u : 0u) &&
                         (doc[item].kind == Kind::kItem || doc[item].kind == Kind::kTask);
    const bool continues = after_break == was_blank && !indents.empty() && indent > indents.back();
    if (in_item && continues) {
      if (after_break) doc.pop_back();
      std::string more = markdown_inline(line);
      for (char& c : more) {
        if (c == '\n') c = ' ';
      }
      doc.back().text = squash_spaces(doc.back().text + " " + more);
      continue;
    }
    indents.clear();
    add_lines(&doc, Block{}, markdown_inline(line));
    previous_text = std::string(line);
  }
  while (!doc.empty() && doc.back().kind == Kind::kBreak) doc.pop_back();
  return doc;
}

}  // namespace factory::stages::ingest
