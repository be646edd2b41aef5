// SmallDisk: a real, small filesystem (tmpfs) for disk-full tests, and a filler file that takes
// every free byte of it. Mounting needs CAP_SYS_ADMIN: where it is refused (a container without
// it), make() returns nullptr with the reason, and the test skips saying so.
//
//   std::string why;
//   auto disk = test::SmallDisk::make(16 << 20, &why);
//   if (!disk) { WARN("skipped: " << why); return; }
//   disk->fill();     // ENOSPC for everyone on it from now
//   disk->unfill();   // the space is back
//
// Unmounts (lazily, so an open file cannot keep it) and removes the mount point when destroyed.
// Not thread-safe.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

#include <sys/mount.h>
#include <sys/statvfs.h>

namespace factory::test {

class SmallDisk {
 public:
  static std::unique_ptr<SmallDisk> make(int64_t bytes, std::string* why) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "factory-disk-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) {
      *why = std::string("mkdtemp: ") + std::strerror(errno);
      return nullptr;
    }
    std::string opts = "size=" + std::to_string(bytes) + ",mode=0755";
    if (::mount("tmpfs", tmpl.c_str(), "tmpfs", 0, opts.c_str()) != 0) {
      int e = errno;
      ::rmdir(tmpl.c_str());
      *why = std::string("cannot mount a tmpfs for the disk-full test (") + std::strerror(e) +
             "); it needs root with CAP_SYS_ADMIN, e.g. a privileged container";
      return nullptr;
    }
    return std::unique_ptr<SmallDisk>(new SmallDisk(tmpl));
  }

  ~SmallDisk() {
    unfill();
    ::umount2(path_.c_str(), MNT_DETACH);
    ::rmdir(path_.c_str());
  }
  SmallDisk(const SmallDisk&) = delete;
  SmallDisk& operator=(const SmallDisk&) = delete;

  const std::string& path() const { return path_; }

  // Writes a filler file until the disk refuses (ENOSPC). Returns the bytes it took.
  int64_t fill() {
    int fd = ::open(filler().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return 0;
    static const std::string chunk(64 << 10, 'F');
    int64_t n = 0;
    for (size_t size = chunk.size(); size > 0;) {
      ssize_t w = ::write(fd, chunk.data(), size);
      if (w > 0) {
        n += w;
      } else {
        size /= 2;  // the last few blocks: smaller writes until not even one byte fits
      }
    }
    ::close(fd);
    return n;
  }

  void unfill() { ::unlink(filler().c_str()); }

  int64_t free_bytes() const {
    struct statvfs v;
    if (::statvfs(path_.c_str(), &v) != 0) return -1;
    return static_cast<int64_t>(v.f_bavail) * static_cast<int64_t>(v.f_frsize);
  }

 private:
  explicit SmallDisk(std::string path) : path_(std::move(path)) {}
  std::string filler() const { return path_ + "/filler"; }

  std::string path_;
};

}  // namespace factory::test
