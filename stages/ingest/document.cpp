#include "ingest/document.h"

#include <cctype>
#include <map>

namespace factory::stages::ingest {

std::string squash_spaces(std::string_view text) {
  std::string out;
  bool space = false;
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

void append_block(Document* doc, Block block) {
  if (block.kind == Block::Kind::kBreak) {
    if (doc->empty() || doc->back().kind == Block::Kind::kBreak) return;
    doc->push_back(std::move(block));
    return;
  }
  if (block.kind != Block::Kind::kCode) {
    block.text = squash_spaces(block.text);
    if (block.text.empty()) return;
  }
  doc->push_back(std::move(block));
}

std::string to_plain_text(const Document& doc) {
  std::string out;
  bool blank_pending = false;
  // Numbers of the ordered items at each nesting level; reset by anything but a deeper item.
  std::map<int, int> numbers;
  auto line = [&](const std::string& text) {
    if (blank_pending && !out.empty()) out += "\n";
    blank_pending = false;
    out += text;
    out += "\n";
  };
  bool after_heading = false;
  for (const Block& b : doc) {
    const bool heading_before = after_heading;
    after_heading =
        b.kind == Block::Kind::kHeading || (b.kind == Block::Kind::kBreak && heading_before);
    switch (b.kind) {
      case Block::Kind::kBreak:
        blank_pending = !heading_before;  // a heading's text follows it directly
        numbers.clear();
        break;
      case Block::Kind::kHeading:
        blank_pending = true;
        line(b.text);
        numbers.clear();
        break;
      case Block::Kind::kText:
      case Block::Kind::kCode:
        line(b.text);
        numbers.clear();
        break;
      case Block::Kind::kItem:
      case Block::Kind::kTask: {
        const int level = b.level < 1 ? 1 : b.level;
        numbers.erase(numbers.upper_bound(level), numbers.end());
        std::string marker;
        if (b.kind == Block::Kind::kTask) {
          marker = b.checked ? "[x] " : "[ ] ";
        } else if (b.ordered) {
          marker = std::to_string(++numbers[level]) + ". ";
        } else {
          numbers.erase(level);
          marker = "- ";
        }
        line(std::string(2 * (level - 1), ' ') + marker + b.text);
        break;
      }
    }
  }
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace factory::stages::ingest
