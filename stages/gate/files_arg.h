// The gate's {files} argument: a configured command's argv entry "{files}" or "{files:.py}"
// expands to the changed files (those ending in the suffix) that are regular files of the
// checkout.
//
// The changed-file list comes from the event and the names from generated code, so an expanded
// name must never be anything but a file of the checkout: a name that fails check_file_path
// (absolute, "..", a control character, ...) is dropped, and one that could read as an option
// ("-rf", "--output=x") is passed as "./-rf" (not "--": many tools take options after files).
//
// Thread-safe: a pure function over the file system.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace factory::stages::gate {

// True when `arg` is "{files}" or "{files:<suffix>}".
bool is_files_arg(std::string_view arg);

// The expansion of `arg` (is_files_arg) for `changed` in `checkout`, in `changed` order.
std::vector<std::string> expand_files_arg(std::string_view arg,
                                          const std::vector<std::string>& changed,
                                          const std::filesystem::path& checkout);

}  // namespace factory::stages::gate
