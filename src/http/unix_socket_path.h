// UnixSocketPath: a unix-domain socket's path in the form bind() and connect() accept. A
// sockaddr_un holds at most 107 bytes of path, less than a data dir may take; on Linux a longer
// path is reached through an O_PATH descriptor of its directory, as /proc/self/fd/N/<name>.
//
// Owns that descriptor: bind or connect while the UnixSocketPath lives (the socket stays bound
// to the file after). chmod, unlink and stat take the real path, whose length is not limited.
//
// Thread-safety: immutable after open(); move-only.
#pragma once

#include <string>

#include "factory/status.h"

namespace factory::http {

// The longest path a sockaddr_un holds (sun_path, less its terminating NUL).
constexpr size_t kMaxUnixSocketPath = 107;

class UnixSocketPath {
 public:
  // InvalidArgument for a relative path or a file name that is itself too long; IOError when a
  // long path's directory cannot be opened (missing, no permission).
  static Result<UnixSocketPath> open(const std::string& path);
  UnixSocketPath(UnixSocketPath&& other) noexcept;
  UnixSocketPath& operator=(UnixSocketPath&& other) noexcept;
  UnixSocketPath(const UnixSocketPath&) = delete;
  UnixSocketPath& operator=(const UnixSocketPath&) = delete;
  ~UnixSocketPath();

  // The path to give bind() or connect(): the path itself when short enough, else the alias.
  const std::string& usable() const { return usable_; }

 private:
  UnixSocketPath() = default;
  int dir_fd_ = -1;
  std::string usable_;
};

}  // namespace factory::http
