// Escaping of outside text for places that show it raw. Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace factory::base {

// `s` with each control character (0x00-0x1F, 0x7F) written as `prefix` and two upper-case hex
// digits ("\\x" gives \x0A, "%" gives %0A), other bytes as they are: for outside text that
// reaches a terminal, a log line or the audit trail, where a raw ESC or newline would forge
// lines or drive the terminal.
std::string escape_controls(std::string_view s, std::string_view prefix);

}  // namespace factory::base
