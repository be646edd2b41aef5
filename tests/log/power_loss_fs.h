// PowerLossFs: a RocksDB FileSystem for tests that can lose power (RocksDB's own
// FaultInjectionTestFS, reduced to what the log's crash tests need).
//
// Every file written through it remembers how many of its bytes were synced (Sync/Fsync). The
// real bytes go to the real files at once, as the kernel's page cache would hold them; a sync
// only moves the "durable" mark (the real fsync is skipped: the durability being tested is the
// one this layer models, and skipping it keeps the tests fast).
//
//   crash_after(n)   power goes off at the n-th mutating call from now (that call fails, and so
//                    does every later write, sync, create, rename or delete: nothing more
//                    reaches the disk, as after a power cut);
//   power_off()      the same, now;
//   lose_unsynced()  with the power off: cut every file back to its synced length (optionally
//                    keeping a random part of the unsynced tail: a torn write), then power on.
//
// Limitation: directory entries are taken as durable when made (RocksDB fsyncs its directories;
// this layer does not model losing a file's name), only file data is lost.
//
// Thread-safe. Used as `NewCompositeEnv(fs)` in rocksdb::Options::env.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

namespace factory::test {

class PowerLossFs : public rocksdb::FileSystemWrapper {
 public:
  PowerLossFs() : FileSystemWrapper(rocksdb::FileSystem::Default()) {}
  const char* Name() const override { return "PowerLossFs"; }

  void crash_after(int64_t ops) { countdown_.store(ops); }
  void power_off() { on_.store(false); }
  bool powered() const { return on_.load(); }
  int64_t ops() const { return ops_.load(); }

  // Cuts every file back to what was synced; with torn_rng, a file keeps a random prefix of its
  // unsynced tail half of the time. Powers on again. Returns the number of bytes dropped.
  int64_t lose_unsynced(std::mt19937_64* torn_rng = nullptr) {
    std::lock_guard<std::mutex> l(mu_);
    int64_t dropped = 0;
    for (auto& [name, f] : files_) {
      if (f.size <= f.synced) continue;
      uint64_t keep = f.synced;
      if (torn_rng && (*torn_rng)() % 2 == 0) keep += (*torn_rng)() % (f.size - f.synced);
      if (::truncate(name.c_str(), static_cast<off_t>(keep)) != 0) continue;
      dropped += static_cast<int64_t>(f.size - keep);
      f.size = f.synced = keep;
    }
    countdown_.store(-1);
    on_.store(true);
    return dropped;
  }

  rocksdb::IOStatus NewWritableFile(const std::string& fname, const rocksdb::FileOptions& opts,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override {
    if (!step()) return off();
    std::unique_ptr<rocksdb::FSWritableFile> file;
    rocksdb::IOStatus s = target()->NewWritableFile(fname, opts, &file, dbg);
    if (!s.ok()) return s;
    {
      std::lock_guard<std::mutex> l(mu_);
      files_[fname] = FileState{};
    }
    result->reset(new File(this, fname, std::move(file)));
    return s;
  }

  rocksdb::IOStatus ReopenWritableFile(const std::string& fname, const rocksdb::FileOptions& opts,
                                       std::unique_ptr<rocksdb::FSWritableFile>* result,
                                       rocksdb::IODebugContext* dbg) override {
    if (!step()) return off();
    std::unique_ptr<rocksdb::FSWritableFile> file;
    rocksdb::IOStatus s = target()->ReopenWritableFile(fname, opts, &file, dbg);
    if (!s.ok()) return s;
    uint64_t size = 0;
    (void)target()->GetFileSize(fname, rocksdb::IOOptions(), &size, dbg);
    {
      std::lock_guard<std::mutex> l(mu_);
      files_[fname] = FileState{size, size};  // what is there already counts as durable
    }
    result->reset(new File(this, fname, std::move(file)));
    return s;
  }

  rocksdb::IOStatus ReuseWritableFile(const std::string&, const std::string&,
                                      const rocksdb::FileOptions&,
                                      std::unique_ptr<rocksdb::FSWritableFile>*,
                                      rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::NotSupported("PowerLossFs does not recycle files");
  }

  rocksdb::IOStatus NewRandomRWFile(const std::string&, const rocksdb::FileOptions&,
                                    std::unique_ptr<rocksdb::FSRandomRWFile>*,
                                    rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::NotSupported("PowerLossFs has no random-write files");
  }

  rocksdb::IOStatus DeleteFile(const std::string& fname, const rocksdb::IOOptions& opts,
                               rocksdb::IODebugContext* dbg) override {
    if (!step()) return off();
    rocksdb::IOStatus s = target()->DeleteFile(fname, opts, dbg);
    if (s.ok()) {
      std::lock_guard<std::mutex> l(mu_);
      files_.erase(fname);
    }
    return s;
  }

  rocksdb::IOStatus RenameFile(const std::string& src, const std::string& dst,
                               const rocksdb::IOOptions& opts,
                               rocksdb::IODebugContext* dbg) override {
    if (!step()) return off();
    rocksdb::IOStatus s = target()->RenameFile(src, dst, opts, dbg);
    if (s.ok()) {
      std::lock_guard<std::mutex> l(mu_);
      auto it = files_.find(src);
      if (it != files_.end()) {
        files_[dst] = it->second;
        files_.erase(src);
      } else {
        files_.erase(dst);
      }
    }
    return s;
  }

  rocksdb::IOStatus LinkFile(const std::string&, const std::string&, const rocksdb::IOOptions&,
                             rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::NotSupported("PowerLossFs does not link files");
  }

  rocksdb::IOStatus Truncate(const std::string& fname, size_t size, const rocksdb::IOOptions& opts,
                             rocksdb::IODebugContext* dbg) override {
    if (!step()) return off();
    rocksdb::IOStatus s = target()->Truncate(fname, size, opts, dbg);
    if (s.ok()) resized(fname, size);
    return s;
  }

 private:
  struct FileState {
    uint64_t size = 0;    // bytes written
    uint64_t synced = 0;  // of which durable
  };

  class File : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    File(PowerLossFs* fs, std::string name, std::unique_ptr<rocksdb::FSWritableFile> t)
        : FSWritableFileOwnerWrapper(std::move(t)), fs_(fs), name_(std::move(name)) {}

    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                             rocksdb::IODebugContext* dbg) override {
      if (!fs_->step()) return off();
      rocksdb::IOStatus s = target()->Append(data, o, dbg);
      if (s.ok()) fs_->appended(name_, data.size());
      return s;
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                             const rocksdb::DataVerificationInfo&,
                             rocksdb::IODebugContext* dbg) override {
      return Append(data, o, dbg);
    }
    rocksdb::IOStatus PositionedAppend(const rocksdb::Slice&, uint64_t, const rocksdb::IOOptions&,
                                       rocksdb::IODebugContext*) override {
      return rocksdb::IOStatus::NotSupported("PowerLossFs: no direct I/O");
    }
    rocksdb::IOStatus PositionedAppend(const rocksdb::Slice&, uint64_t, const rocksdb::IOOptions&,
                                       const rocksdb::DataVerificationInfo&,
                                       rocksdb::IODebugContext*) override {
      return rocksdb::IOStatus::NotSupported("PowerLossFs: no direct I/O");
    }
    rocksdb::IOStatus Truncate(uint64_t size, const rocksdb::IOOptions& o,
                               rocksdb::IODebugContext* dbg) override {
      if (!fs_->step()) return off();
      rocksdb::IOStatus s = target()->Truncate(size, o, dbg);
      if (s.ok()) fs_->resized(name_, size);
      return s;
    }
    rocksdb::IOStatus Flush(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
      if (!fs_->powered()) return off();
      return target()->Flush(o, dbg);
    }
    // The durable mark moves; the real fsync is skipped (see the header comment).
    rocksdb::IOStatus Sync(const rocksdb::IOOptions&, rocksdb::IODebugContext*) override {
      if (!fs_->step()) return off();
      fs_->synced(name_);
      return rocksdb::IOStatus::OK();
    }
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
      return Sync(o, dbg);
    }
    rocksdb::IOStatus RangeSync(uint64_t, uint64_t, const rocksdb::IOOptions&,
                                rocksdb::IODebugContext*) override {
      return rocksdb::IOStatus::OK();  // write-back hint only: makes nothing durable
    }
    rocksdb::IOStatus Close(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
      // Closing after the power went off must not change the file (Posix's Close truncates
      // the preallocated tail): leave it to the destructor.
      if (!fs_->powered()) return off();
      return target()->Close(o, dbg);
    }

   private:
    PowerLossFs* const fs_;
    const std::string name_;
  };

  static rocksdb::IOStatus off() { return rocksdb::IOStatus::IOError("power is off (test)"); }

  // Counts one mutating call; false when the power is (or just went) off.
  bool step() {
    if (!on_.load()) return false;
    ops_.fetch_add(1);
    if (countdown_.load() >= 0 && countdown_.fetch_sub(1) == 0) on_.store(false);
    return on_.load();
  }
  void appended(const std::string& name, size_t n) {
    std::lock_guard<std::mutex> l(mu_);
    files_[name].size += n;
  }
  void resized(const std::string& name, uint64_t size) {
    std::lock_guard<std::mutex> l(mu_);
    auto it = files_.find(name);
    if (it == files_.end()) return;
    it->second.size = size;
    it->second.synced = std::min(it->second.synced, size);
  }
  void synced(const std::string& name) {
    std::lock_guard<std::mutex> l(mu_);
    auto& f = files_[name];
    f.synced = f.size;
  }

  std::atomic<bool> on_{true};
  std::atomic<int64_t> countdown_{-1};
  std::atomic<int64_t> ops_{0};
  std::mutex mu_;
  std::map<std::string, FileState> files_;  // guarded by mu_
};

}  // namespace factory::test
