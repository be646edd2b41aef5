// The gate's {files} argument (files_arg.h).
#include "gate/files_arg.h"

#include <system_error>

#include "common/workspace.h"

namespace factory::stages::gate {

bool is_files_arg(std::string_view arg) {
  return arg == "{files}" || (arg.starts_with("{files:") && arg.ends_with("}"));
}

std::vector<std::string> expand_files_arg(std::string_view arg,
                                          const std::vector<std::string>& changed,
                                          const std::filesystem::path& checkout) {
  std::vector<std::string> out;
  if (!is_files_arg(arg)) return out;
  const std::string_view ext = arg == "{files}" ? "" : arg.substr(7, arg.size() - 8);
  for (const std::string& f : changed) {
    if (!f.ends_with(ext) || !check_file_path(f).ok()) continue;
    std::error_code ec;
    // symlink_status: a link (which clean_checkout refuses anyway) is not a regular file.
    if (!std::filesystem::is_regular_file(std::filesystem::symlink_status(checkout / f, ec))) {
      continue;
    }
    out.push_back(f.front() == '-' ? "./" + f : f);
  }
  return out;
}

}  // namespace factory::stages::gate
