#include "http/unix_socket_path.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>

namespace factory::http {

Result<UnixSocketPath> UnixSocketPath::open(const std::string& path) {
  if (path.empty() || path.front() != '/') {
    return Status::invalid_argument(
        fmt::format("unix socket path '{}' is not absolute; use /ABSOLUTE/PATH", path));
  }
  UnixSocketPath p;
  if (path.size() <= kMaxUnixSocketPath) {
    p.usable_ = path;
    return p;
  }
  size_t slash = path.rfind('/');
  std::string dir = slash == 0 ? "/" : path.substr(0, slash);
  std::string name = path.substr(slash + 1);
  p.dir_fd_ = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (p.dir_fd_ < 0) {
    return Status::io_error(
        fmt::format("cannot open the directory of unix socket {}: {}", path, std::strerror(errno)));
  }
  p.usable_ = fmt::format("/proc/self/fd/{}/{}", p.dir_fd_, name);
  if (p.usable_.size() > kMaxUnixSocketPath) {
    return Status::invalid_argument(
        fmt::format("unix socket file name '{}' is over the system's limit of {} bytes", name,
                    kMaxUnixSocketPath));
  }
  return p;
}

UnixSocketPath::UnixSocketPath(UnixSocketPath&& other) noexcept { *this = std::move(other); }

UnixSocketPath& UnixSocketPath::operator=(UnixSocketPath&& other) noexcept {
  std::swap(dir_fd_, other.dir_fd_);
  std::swap(usable_, other.usable_);
  return *this;
}

UnixSocketPath::~UnixSocketPath() {
  if (dir_fd_ >= 0) ::close(dir_fd_);
}

}  // namespace factory::http
