#include "ingest/adf.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace factory::stages::ingest {
namespace {

namespace json = boost::json;
using Kind = Block::Kind;

std::string_view str(const json::value& node, std::string_view key) {
  if (!node.is_object()) return {};
  const json::value* v = node.as_object().if_contains(key);
  return v != nullptr && v->is_string() ? std::string_view(v->get_string()) : std::string_view();
}

const json::value* attr(const json::value& node, std::string_view key) {
  if (!node.is_object()) return nullptr;
  const json::value* attrs = node.as_object().if_contains("attrs");
  if (attrs == nullptr || !attrs->is_object()) return nullptr;
  return attrs->as_object().if_contains(key);
}

std::string_view attr_str(const json::value& node, std::string_view key) {
  const json::value* v = attr(node, key);
  return v != nullptr && v->is_string() ? std::string_view(v->get_string()) : std::string_view();
}

const json::array* content(const json::value& node) {
  if (!node.is_object()) return nullptr;
  const json::value* c = node.as_object().if_contains("content");
  return c != nullptr && c->is_array() ? &c->get_array() : nullptr;
}

bool is_inline(std::string_view type) {
  return type == "text" || type == "hardBreak" || type == "mention" || type == "emoji" ||
         type == "inlineCard" || type == "status" || type == "date" || type == "placeholder" ||
         type == "inlineExtension" || type == "mediaInline";
}

// Milliseconds since the epoch (a string or a number) as YYYY-MM-DD; empty if unreadable.
std::string format_date(const json::value* ts) {
  int64_t ms = 0;
  if (ts == nullptr) return "";
  if (ts->is_string()) {
    try {
      ms = std::stoll(std::string(ts->get_string()));
    } catch (const std::exception&) {
      return std::string(ts->get_string());
    }
  } else if (ts->is_int64()) {
    ms = ts->get_int64();
  } else if (ts->is_uint64()) {
    ms = static_cast<int64_t>(ts->get_uint64());
  } else {
    return "";
  }
  using namespace std::chrono;
  year_month_day ymd{floor<days>(sys_time<milliseconds>(milliseconds(ms)))};
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
  return buf;
}

// The href of a text node's link mark, empty if it has none.
std::string_view link_of(const json::value& text_node) {
  const json::value* marks =
      text_node.is_object() ? text_node.as_object().if_contains("marks") : nullptr;
  if (marks == nullptr || !marks->is_array()) return {};
  for (const json::value& mark : marks->get_array()) {
    if (str(mark, "type") == "link") return attr_str(mark, "href");
  }
  return {};
}

// Appends the text of an inline node (or, for an unknown node, of everything in it).
void inline_text(const json::value& node, std::string* out) {
  std::string_view type = str(node, "type");
  if (type == "text") {
    std::string_view text = str(node, "text");
    *out += text;
    std::string_view href = link_of(node);
    if (!href.empty() && href != text) {
      *out += " (";
      *out += href;
      *out += ")";
    }
  } else if (type == "hardBreak") {
    *out += "\n";
  } else if (type == "mention") {
    std::string_view name = attr_str(node, "text");
    if (name.empty()) name = attr_str(node, "id");
    if (!name.empty() && name.front() != '@') *out += "@";
    *out += name;
  } else if (type == "emoji") {
    std::string_view e = attr_str(node, "text");
    *out += e.empty() ? attr_str(node, "shortName") : e;
  } else if (type == "inlineCard" || type == "blockCard" || type == "embedCard") {
    *out += attr_str(node, "url");
  } else if (type == "status") {
    *out += attr_str(node, "text");
  } else if (type == "date") {
    *out += format_date(attr(node, "timestamp"));
  } else {
    std::string_view text = str(node, "text");
    if (text.empty()) text = attr_str(node, "text");
    *out += text;
    if (const json::array* c = content(node)) {
      for (const json::value& child : *c) {
        // Block children (a table cell's paragraphs) are words apart.
        if (!is_inline(str(child, "type")) && !out->empty() && out->back() != ' ' &&
            out->back() != '\n') {
          *out += " ";
        }
        inline_text(child, out);
      }
    }
  }
}

class Renderer {
 public:
  Document take() {
    while (!doc_.empty() && doc_.back().kind == Kind::kBreak) doc_.pop_back();
    return std::move(doc_);
  }

  // Renders a sequence of nodes at list depth `depth`; runs of inline nodes become a
  // paragraph (an unknown wrapper may hold either).
  void blocks(const json::array& nodes, int depth) {
    std::string pending;
    bool has_pending = false;
    for (const json::value& node : nodes) {
      if (is_inline(str(node, "type"))) {
        inline_text(node, &pending);
        has_pending = true;
        continue;
      }
      if (has_pending) paragraph(pending);
      pending.clear();
      has_pending = false;
      block(node, depth);
    }
    if (has_pending) paragraph(pending);
  }

 private:
  void paragraph(const std::string& text) {
    lines(Block{}, text);
    append_block(&doc_, {.kind = Kind::kBreak});
  }

  // Appends `text` split at hard breaks: the first line as `first`, the rest as text lines.
  void lines(Block first, const std::string& text) {
    size_t start = 0;
    while (true) {
      size_t nl = text.find('\n', start);
      Block b = start == 0 ? first : Block{};
      b.text = text.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
      append_block(&doc_, std::move(b));
      if (nl == std::string::npos) break;
      start = nl + 1;
    }
  }

  void children(const json::value& node, int depth) {
    if (const json::array* c = content(node)) blocks(*c, depth);
  }

  // The inline text of `node`'s content (a paragraph's, a heading's, a task item's).
  static std::string text_of(const json::value& node) {
    std::string out;
    if (const json::array* c = content(node)) {
      for (const json::value& child : *c) inline_text(child, &out);
    }
    return out;
  }

  void block(const json::value& node, int depth) {
    std::string_view type = str(node, "type");
    if (type == "paragraph") {
      paragraph(text_of(node));
    } else if (type == "heading") {
      const json::value* level = attr(node, "level");
      // ADF allows 1-6; a hostile level (0, -3, 2^32 + 1) must not end or hold open every
      // criteria section (criteria.h compares levels), so it is clamped, not cast.
      int64_t given = level != nullptr && level->is_int64() ? level->get_int64() : 1;
      int l = static_cast<int>(std::clamp<int64_t>(given, 1, 6));
      append_block(&doc_, {.kind = Kind::kBreak});
      std::string text = text_of(node);
      for (char& c : text) {
        if (c == '\n') c = ' ';
      }
      append_block(&doc_, {.kind = Kind::kHeading, .text = text, .level = l});
      append_block(&doc_, {.kind = Kind::kBreak});
    } else if (type == "bulletList" || type == "orderedList" || type == "decisionList") {
      list(node, depth + 1, type == "orderedList");
      if (depth == 0) append_block(&doc_, {.kind = Kind::kBreak});
    } else if (type == "taskList") {
      task_list(node, depth + 1);
      if (depth == 0) append_block(&doc_, {.kind = Kind::kBreak});
    } else if (type == "codeBlock") {
      append_block(&doc_, {.kind = Kind::kBreak});
      std::string code = text_of(node);
      size_t start = 0;
      while (start <= code.size()) {
        size_t nl = code.find('\n', start);
        if (nl == std::string::npos) nl = code.size();
        append_block(&doc_, {.kind = Kind::kCode, .text = code.substr(start, nl - start)});
        start = nl + 1;
      }
      append_block(&doc_, {.kind = Kind::kBreak});
    } else if (type == "expand" || type == "nestedExpand") {
      std::string_view title = attr_str(node, "title");
      if (!title.empty()) {  // as in wiki markup: a level-6 heading
        append_block(&doc_, {.kind = Kind::kBreak});
        append_block(&doc_, {.kind = Kind::kHeading, .text = std::string(title), .level = 6});
      }
      children(node, depth);
    } else if (type == "table") {
      table(node);
    } else if (type == "rule") {
      append_block(&doc_, {.kind = Kind::kBreak});
    } else if (type == "blockCard" || type == "embedCard") {
      append_block(&doc_, {.text = std::string(attr_str(node, "url"))});
    } else {
      // doc, blockquote, panel, layoutSection, layoutColumn, media*, extensions, and any
      // node type this parser does not know: what text it holds is kept.
      std::string_view text = str(node, "text");
      if (!text.empty()) append_block(&doc_, {.text = std::string(text)});
      children(node, depth);
    }
  }

  // A bulletList / orderedList at nesting `level`: each item's first paragraph is the item's
  // text, later paragraphs join it, nested lists go one level deeper.
  void list(const json::value& node, int level, bool ordered) {
    const json::array* items = content(node);
    if (items == nullptr) return;
    for (const json::value& item : *items) {
      std::string text;
      std::vector<const json::value*> nested;
      const json::array* parts = content(item);
      if (parts != nullptr) {
        for (const json::value& part : *parts) {
          std::string_view t = str(part, "type");
          if (t == "bulletList" || t == "orderedList" || t == "taskList" || t == "decisionList") {
            nested.push_back(&part);
          } else if (is_inline(t)) {
            inline_text(part, &text);
          } else {
            std::string more;
            if (t == "paragraph" || t == "heading") {
              more = text_of(part);
            } else {  // a code block or anything else inside an item: its text joins
              inline_text(part, &more);
            }
            if (!text.empty() && !more.empty()) text += " ";
            text += more;
          }
        }
      }
      for (char& c : text) {
        if (c == '\n') c = ' ';
      }
      append_block(&doc_, {.kind = Kind::kItem, .text = text, .level = level, .ordered = ordered});
      for (const json::value* n : nested) block(*n, level);
    }
  }

  void task_list(const json::value& node, int level) {
    const json::array* items = content(node);
    if (items == nullptr) return;
    for (const json::value& item : *items) {
      std::string_view type = str(item, "type");
      if (type == "taskList") {  // a nested task list sits directly in its parent list
        task_list(item, level + 1);
        continue;
      }
      if (type != "taskItem") {
        block(item, level - 1);
        continue;
      }
      std::string text = text_of(item);
      for (char& c : text) {
        if (c == '\n') c = ' ';
      }
      append_block(&doc_, {.kind = Kind::kTask,
                           .text = text,
                           .level = level,
                           .checked = attr_str(item, "state") == "DONE"});
    }
  }

  void table(const json::value& node) {
    const json::array* rows = content(node);
    if (rows == nullptr) return;
    append_block(&doc_, {.kind = Kind::kBreak});
    for (const json::value& row : *rows) {
      std::string line;
      if (const json::array* cells = content(row)) {
        for (const json::value& cell : *cells) {
          std::string text;
          inline_text(cell, &text);
          text = squash_spaces(text);
          if (text.empty()) continue;
          if (!line.empty()) line += " | ";
          line += text;
        }
      }
      append_block(&doc_, {.text = line});
    }
    append_block(&doc_, {.kind = Kind::kBreak});
  }

  Document doc_;
};

}  // namespace

Document parse_adf(const boost::json::value& node) {
  Renderer r;
  if (node.is_array()) {
    r.blocks(node.get_array(), 0);
  } else if (const json::array* c = content(node)) {
    r.blocks(*c, 0);
  } else if (node.is_object()) {
    r.blocks(json::array{node}, 0);
  }
  return r.take();
}

}  // namespace factory::stages::ingest
