// GitHub-flavoured markdown (a GitHub issue's body; also a plain ticket's description) to a
// Document.
//
// Recognised: ATX ("## text") and setext (underlined) headings, lists "-", "*", "+", "1." and
// "1)" nested by indentation, task items "- [ ] text" / "- [x] text", fenced code (``` and ~~~,
// verbatim), block quotes (the "> " is dropped), tables (cells joined with " | ", the delimiter
// row dropped), rules, and indented lines continuing a list item (joined to it). HTML comments
// (issue templates are full of them) and tags are dropped, "<br>" breaks the line. Inline:
// **bold**,
// __bold__, *it*, _it_, ~~strike~~ lose their markers; `code` is kept verbatim; [text](url)
// becomes "text (url)", ![alt](src) "alt", <https://...> the URL; backslash escapes are
// honoured. Anything else is text.
//
// Thread-safety: a pure function.
#pragma once

#include <string>
#include <string_view>

#include "ingest/document.h"

namespace factory::stages::ingest {

Document parse_markdown(std::string_view markdown);

// One line of inline markdown to plain text (exposed for tests).
std::string markdown_inline(std::string_view line);

}  // namespace factory::stages::ingest
