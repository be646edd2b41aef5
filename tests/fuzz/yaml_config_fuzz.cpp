// Fuzz target: the YAML readers, one per input (byte 0 picks): the topics file
// (src/log/topic_file.h), a pipeline file (src/runtime/pipeline_config.h), a DAG file
// (src/scheduler/dag_parser.h, with the real cron and time-zone checks) and the daemon config
// (src/cli/factory_config.h, read from a file as factoryd does). Each either refuses with
// InvalidArgument "SOURCE:LINE:COLUMN: ..." (or a message naming the place) or gives a value.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "cli/factory_config.h"
#include "fuzz_util.h"
#include "log/topic_file.h"
#include "runtime/pipeline_config.h"
#include "scheduler/cron.h"
#include "scheduler/dag_parser.h"

using namespace factory;

namespace {

void check_refusal(const Status& s, std::string_view source) {
  FUZZ_CHECK(s.code() == Status::Code::kInvalidArgument, s.to_string());
  FUZZ_CHECK(s.message().find(source) != std::string::npos || source.empty(),
             "a refusal that does not name the file: " + s.to_string());
}

void daemon_config(std::string_view text) {
  static const std::string path = [] {
    const char* tmp = std::getenv("TMPDIR");
    return std::string(tmp ? tmp : "/tmp") + "/factory-config-fuzz-" + std::to_string(::getpid()) +
           ".yaml";
  }();
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
  }
  auto c = cli::load_factory_config(path, {}, {});
  if (!c.ok())
    FUZZ_CHECK(c.status().code() == Status::Code::kInvalidArgument, c.status().to_string());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view text = factory::fuzz::as_view(data + 1, size - 1);
  switch (data[0] % 4) {
    case 0: {
      auto t = log::parse_topic_yaml(text, "topics.yaml");
      if (!t.ok()) check_refusal(t.status(), "topics.yaml");
      break;
    }
    case 1: {
      auto p = runtime::parse_pipeline_yaml(text, "pipeline.yaml");
      if (!p.ok()) check_refusal(p.status(), "pipeline.yaml");
      break;
    }
    case 2: {
      scheduler::DagParseOptions options;
      options.check_cron = [](const std::string& e) {
        return scheduler::CronSchedule::parse(e).status();
      };
      options.check_timezone = [](const std::string& tz) {
        return scheduler::CronSchedule::parse("@daily", tz).status();
      };
      auto d = scheduler::parse_dag_yaml(text, "dag.yaml", options);
      if (!d.ok()) check_refusal(d.status(), "dag.yaml");
      break;
    }
    default:
      daemon_config(text);
      break;
  }
  return 0;
}
