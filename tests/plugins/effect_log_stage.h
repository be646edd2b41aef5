// The fenced stage the crash-test plugins share: its side effect is one line "<id>\n" appended
// to <scratch dir>/<file>, which a test counts; recover() reports kDone exactly when that line
// exists, so no effect is ever repeated or lost. Subclasses say what the id of an event is.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "factory/plugin.h"

namespace factory::test {

class EffectLogStage : public Stage {
 public:
  EffectLogStage(StageInfo info, std::string file)
      : info_(std::move(info)), file_(std::move(file)) {
    info_.side_effects = SideEffects::kFenced;
  }

  StageInfo info() const override { return info_; }

  StageResult process(const Event& e, StageContext& ctx) override {
    std::string id = id_of(e);
    if (id.empty()) return StageResult::permanent("the event has no id");
    std::string line = id + "\n";
    std::string path = (ctx.scratch_dir() / file_).string();
    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return StageResult::retryable("cannot open " + path);
    // One write(2) of a short line with O_APPEND: the line is in the file whole or not at all.
    bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
    ::close(fd);
    if (!ok) return StageResult::retryable("cannot write " + path);
    ctx.emit({.payload = e.payload});
    return StageResult::success();
  }

  Recovery recover(const Event& e, StageContext& ctx) override {
    std::ifstream in(ctx.scratch_dir() / file_);
    std::string want = id_of(e), line;
    while (std::getline(in, line)) {
      if (line == want) {
        ctx.emit({.payload = e.payload});
        return Recovery::kDone;
      }
    }
    return Recovery::kNotDone;
  }

 protected:
  virtual std::string id_of(const Event& e) const = 0;

 private:
  StageInfo info_;
  const std::string file_;
};

}  // namespace factory::test
