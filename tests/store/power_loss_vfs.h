// PowerLossVfs: a SQLite VFS for tests that can lose power (the idea of SQLite's own
// test_devsym/crash tests, reduced to what the store's crash tests need).
//
// It wraps the default VFS and keeps, per file path, an undo log of every write and truncate
// since that file's last xSync (the bytes and size they replaced). Writes reach the real file
// at once, as the kernel's page cache would hold them; xSync only empties the undo log (the
// real fsync is skipped: the durability being tested is the one modelled here).
//
//   crash_after(n)   power goes off at the n-th write, truncate or sync from now: that call
//                    and every later one fails (as do deletes), so nothing more changes;
//   power_off()      the same, now;
//   lose_unsynced()  with the power off and every connection closed: replay the undo logs
//                    backwards, restoring each file to its content at its last sync; power on.
//
// Limitation: directory entries (a file created or deleted) are taken as durable when made;
// only file contents are lost. Memory-mapped I/O is not offered (io methods version 2).
//
// Thread-safe. Registered once per process under the name "power-loss" (not the default).
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <sqlite3.h>

namespace factory::test {

class PowerLossVfs {
 public:
  static constexpr const char* kName = "power-loss";

  // The process-wide instance, registered with SQLite on first use.
  static PowerLossVfs* instance() {
    static PowerLossVfs* vfs = new PowerLossVfs();  // lives as long as SQLite may call it
    return vfs;
  }

  void crash_after(int64_t ops) { countdown_.store(ops); }
  void power_off() { on_.store(false); }
  bool powered() const { return on_.load(); }

  // Restores every file to its content at its last sync; powers on. Returns the number of
  // writes undone.
  int64_t lose_unsynced() {
    std::lock_guard<std::mutex> l(mu_);
    int64_t undone = 0;
    for (auto& [path, undo] : undo_) {
      if (undo.empty()) continue;
      int fd = ::open(path.c_str(), O_RDWR);
      if (fd < 0) continue;  // deleted since (only while powered): nothing to restore
      for (auto it = undo.rbegin(); it != undo.rend(); ++it) {
        if (!it->old.empty()) {
          (void)!::pwrite(fd, it->old.data(), it->old.size(), static_cast<off_t>(it->offset));
        }
        (void)!::ftruncate(fd, static_cast<off_t>(it->old_size));
        ++undone;
      }
      ::close(fd);
      undo.clear();
    }
    countdown_.store(-1);
    on_.store(true);
    return undone;
  }

 private:
  struct Undo {
    int64_t offset = 0;
    std::string old;       // the bytes the write replaced (those below the old size)
    int64_t old_size = 0;  // the file's size before the write or truncate
  };

  // Our sqlite3_file; the wrapped VFS's file follows it in the same allocation.
  struct File {
    sqlite3_file base;
    sqlite3_file* real;
    std::string* path;  // null for temp files (not tracked)
  };

  PowerLossVfs() {
    real_ = sqlite3_vfs_find(nullptr);
    vfs_ = *real_;
    vfs_.zName = kName;
    vfs_.pNext = nullptr;
    vfs_.pAppData = this;
    vfs_.szOsFile = static_cast<int>(kFileSpace) + real_->szOsFile;
    vfs_.xOpen = &x_open;
    vfs_.xDelete = &x_delete;
    std::memset(&io_, 0, sizeof io_);
    io_.iVersion = 2;
    io_.xClose = &x_close;
    io_.xRead = [](sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
      return real(f)->pMethods->xRead(real(f), buf, n, off);
    };
    io_.xWrite = &x_write;
    io_.xTruncate = &x_truncate;
    io_.xSync = &x_sync;
    io_.xFileSize = [](sqlite3_file* f, sqlite3_int64* size) {
      return real(f)->pMethods->xFileSize(real(f), size);
    };
    io_.xLock = [](sqlite3_file* f, int l) { return real(f)->pMethods->xLock(real(f), l); };
    io_.xUnlock = [](sqlite3_file* f, int l) { return real(f)->pMethods->xUnlock(real(f), l); };
    io_.xCheckReservedLock = [](sqlite3_file* f, int* out) {
      return real(f)->pMethods->xCheckReservedLock(real(f), out);
    };
    io_.xFileControl = [](sqlite3_file* f, int op, void* arg) {
      return real(f)->pMethods->xFileControl(real(f), op, arg);
    };
    io_.xSectorSize = [](sqlite3_file* f) { return real(f)->pMethods->xSectorSize(real(f)); };
    io_.xDeviceCharacteristics = [](sqlite3_file* f) {
      return real(f)->pMethods->xDeviceCharacteristics(real(f));
    };
    io_.xShmMap = [](sqlite3_file* f, int pg, int sz, int extend, void volatile** out) {
      return real(f)->pMethods->xShmMap(real(f), pg, sz, extend, out);
    };
    io_.xShmLock = [](sqlite3_file* f, int offset, int n, int flags) {
      return real(f)->pMethods->xShmLock(real(f), offset, n, flags);
    };
    io_.xShmBarrier = [](sqlite3_file* f) { real(f)->pMethods->xShmBarrier(real(f)); };
    io_.xShmUnmap = [](sqlite3_file* f, int del) {
      return real(f)->pMethods->xShmUnmap(real(f), del);
    };
    sqlite3_vfs_register(&vfs_, /*makeDflt=*/0);
  }

  static constexpr size_t kFileSpace = (sizeof(File) + 15) & ~size_t{15};

  static PowerLossVfs* self(sqlite3_vfs* v) { return static_cast<PowerLossVfs*>(v->pAppData); }
  static File* file(sqlite3_file* f) { return reinterpret_cast<File*>(f); }
  static sqlite3_file* real(sqlite3_file* f) { return file(f)->real; }

  // Counts one mutating call; false when the power is (or just went) off.
  bool step() {
    if (!on_.load()) return false;
    if (countdown_.load() >= 0 && countdown_.fetch_sub(1) == 0) on_.store(false);
    return on_.load();
  }

  static int x_open(sqlite3_vfs* v, const char* name, sqlite3_file* f, int flags, int* out) {
    PowerLossVfs* vfs = self(v);
    File* pf = file(f);
    pf->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(f) + kFileSpace);
    pf->path = nullptr;
    int rc = vfs->real_->xOpen(vfs->real_, name, pf->real, flags, out);
    if (rc != SQLITE_OK) {
      pf->base.pMethods = nullptr;
      return rc;
    }
    if (name) pf->path = new std::string(name);
    pf->base.pMethods = &vfs->io_;
    return rc;
  }

  static int x_delete(sqlite3_vfs* v, const char* name, int sync_dir) {
    PowerLossVfs* vfs = self(v);
    if (!vfs->on_.load()) return SQLITE_IOERR_DELETE;
    int rc = vfs->real_->xDelete(vfs->real_, name, sync_dir);
    if (rc == SQLITE_OK) {
      std::lock_guard<std::mutex> l(vfs->mu_);
      vfs->undo_.erase(name);
    }
    return rc;
  }

  static int x_close(sqlite3_file* f) {
    int rc = real(f)->pMethods->xClose(real(f));
    delete file(f)->path;
    file(f)->path = nullptr;
    return rc;
  }

  // Saves what [offset, offset + n) and the size were, before a write or truncate.
  static int save(sqlite3_file* f, int64_t offset, int64_t n) {
    if (!file(f)->path) return SQLITE_OK;
    sqlite3_int64 size = 0;
    int rc = real(f)->pMethods->xFileSize(real(f), &size);
    if (rc != SQLITE_OK) return rc;
    Undo u;
    u.offset = offset;
    u.old_size = size;
    int64_t keep = std::min<int64_t>(n, size - offset);
    if (keep > 0) {
      u.old.resize(static_cast<size_t>(keep));
      rc = real(f)->pMethods->xRead(real(f), u.old.data(), static_cast<int>(keep), offset);
      if (rc != SQLITE_OK) return rc;
    }
    PowerLossVfs* vfs = instance();
    std::lock_guard<std::mutex> l(vfs->mu_);
    vfs->undo_[*file(f)->path].push_back(std::move(u));
    return SQLITE_OK;
  }

  static int x_write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 offset) {
    if (!instance()->step()) return SQLITE_IOERR_WRITE;
    int rc = save(f, offset, n);
    if (rc != SQLITE_OK) return rc;
    return real(f)->pMethods->xWrite(real(f), buf, n, offset);
  }

  static int x_truncate(sqlite3_file* f, sqlite3_int64 size) {
    if (!instance()->step()) return SQLITE_IOERR_TRUNCATE;
    int rc = save(f, size, INT64_MAX / 2);
    if (rc != SQLITE_OK) return rc;
    return real(f)->pMethods->xTruncate(real(f), size);
  }

  // The durable point moves; the real fsync is skipped (see the header comment).
  static int x_sync(sqlite3_file* f, int) {
    PowerLossVfs* vfs = instance();
    if (!vfs->step()) return SQLITE_IOERR_FSYNC;
    if (file(f)->path) {
      std::lock_guard<std::mutex> l(vfs->mu_);
      vfs->undo_[*file(f)->path].clear();
    }
    return SQLITE_OK;
  }

  sqlite3_vfs* real_;
  sqlite3_vfs vfs_;
  sqlite3_io_methods io_;
  std::atomic<bool> on_{true};
  std::atomic<int64_t> countdown_{-1};
  std::mutex mu_;
  std::map<std::string, std::vector<Undo>> undo_;  // guarded by mu_
};

}  // namespace factory::test
