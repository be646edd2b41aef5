// Reading a whole small file (config files) with errors that name it. Thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "factory/status.h"

namespace factory::base {

// Appends the contents of `path` to *text. `what` names the file for people ("topic file").
// NotFound "<what> '<path>' does not exist" when it is missing; IOError with the system's reason
// when it cannot be opened or read (e.g. it is a directory).
Status read_file(const std::string& path, std::string_view what, std::string* text);

}  // namespace factory::base
