#include "base/file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace factory::base {

Status read_file(const std::string& path, std::string_view what, std::string* text) {
  const std::string name = std::string(what) + " '" + path + "'";
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    const int err = errno;
    if (err == ENOENT) return Status::not_found(name + " does not exist");
    return Status::io_error("cannot open " + name + ": " + std::strerror(err));
  }
  char buf[8192];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) text->append(buf, n);
  const bool failed = std::ferror(f) != 0;
  const int err = errno;
  std::fclose(f);
  if (failed) {
    return Status::io_error("cannot read " + name + ": " + std::strerror(err != 0 ? err : EIO));
  }
  return Status();
}

}  // namespace factory::base
