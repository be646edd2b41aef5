// A test plugin with one fenced stage, "count-fx", for the scheduler crash test: each execution
// appends its params' "id" ("<run>/<task>") as one line to <scratch dir>/executions.log, which
// the test counts; recover() reports kDone exactly when the line is there.
#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "factory/plugin.h"

namespace {

std::string id_of(const std::string& payload) {
  auto k = payload.find("\"id\":\"");
  if (k == std::string::npos) return "";
  k += 6;
  return payload.substr(k, payload.find('"', k) - k);
}

class CountEffect final : public factory::Stage {
 public:
  factory::StageInfo info() const override {
    return {.name = "count-fx",
            .version = "1.0.0",
            .side_effects = factory::SideEffects::kFenced,
            .default_batch_size = 200};
  }

  factory::StageResult process(const factory::Event& e, factory::StageContext& ctx) override {
    std::string id = id_of(e.payload);
    if (id.empty()) return factory::StageResult::permanent("params have no id");
    std::string line = id + "\n";
    std::string path = (ctx.scratch_dir() / "executions.log").string();
    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return factory::StageResult::retryable("cannot open " + path);
    bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
    ::close(fd);
    if (!ok) return factory::StageResult::retryable("cannot write " + path);
    ctx.emit({.payload = e.payload});
    return factory::StageResult::success();
  }

  Recovery recover(const factory::Event& e, factory::StageContext& ctx) override {
    std::ifstream in(ctx.scratch_dir() / "executions.log");
    std::string want = id_of(e.payload), line;
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

FACTORY_PLUGIN("count-fx-test-plugin",
               []() -> std::unique_ptr<factory::Stage> { return std::make_unique<CountEffect>(); });
