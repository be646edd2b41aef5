// A test plugin with one fenced stage, "sidefx", for the pipeline crash test: its side effect is
// a line "<event id>\n" appended to <scratch dir>/effects.log, which the test counts. recover()
// reports kDone exactly when that line exists, so no effect is ever repeated or lost.
#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <mutex>
#include <set>
#include <string>

#include "factory/plugin.h"

namespace {

class SideEffect final : public factory::Stage {
 public:
  factory::StageInfo info() const override {
    return {.name = "sidefx",
            .version = "1.0.0",
            .input_schema = R"({"type":"object","required":["n"]})",
            .side_effects = factory::SideEffects::kFenced,
            .default_batch_size = 100};
  }

  factory::StageResult process(const factory::Event& e, factory::StageContext& ctx) override {
    std::string line = e.id.hex() + "\n";
    std::string path = (ctx.scratch_dir() / "effects.log").string();
    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return factory::StageResult::retryable("cannot open " + path);
    // One write(2) of a short line with O_APPEND: the line is in the file whole or not at all.
    bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
    ::close(fd);
    if (!ok) return factory::StageResult::retryable("cannot write " + path);
    ctx.emit({.payload = e.payload});
    return factory::StageResult::success();
  }

  Recovery recover(const factory::Event& e, factory::StageContext& ctx) override {
    std::ifstream in(ctx.scratch_dir() / "effects.log");
    std::string want = e.id.hex(), line;
    while (std::getline(in, line)) {
      if (line == want) {
        ctx.emit({.payload = e.payload});
        return Recovery::kDone;
      }
    }
    return Recovery::kNotDone;
  }
};

}  // namespace

FACTORY_PLUGIN("sidefx-test-plugin",
               []() -> std::unique_ptr<factory::Stage> { return std::make_unique<SideEffect>(); });
