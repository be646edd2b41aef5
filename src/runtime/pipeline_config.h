// Pipeline files: config/pipelines/*.yaml, each a list of bindings.
//
//   pipeline: demo                  # optional name, for display
//   plugins: [plugins/]             # optional: directories (relative to the file) of plugin .so
//   bindings:
//     - stage: exec                 # required: a registered stage
//       name: shout                 # default: the stage name
//       input: tickets              # required: topic consumed
//       output: shouted             # optional: topic produced
//       group: shout                # default: the name
//       dead_letter: tickets.dlq    # default: <input>.dlq
//       concurrency: 2
//       max_poll_records: 100
//       timeout_ms: 60000
//       retry: {attempts: 3, initial_delay_ms: 1000, multiplier: 2, max_delay_ms: 300000, jitter:
//       0.1} backpressure: {high: 10000, low: 5000} breakers:
//         - {name: llm, window: 20, min_calls: 10, failure_rate: 0.5, open_ms: 30000,
//            half_open_probes: 1, fallback: human-review}
//       config: {command: ["tr", "a-z", "A-Z"]}   # free-form, handed to the stage as JSON
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "factory/status.h"
#include "runtime/binding.h"

namespace factory::runtime {

struct PipelineConfig {
  std::vector<Binding> bindings;
  std::vector<std::string> plugin_dirs;  // absolute or relative to the working directory
};

// Parses one YAML text; `source` names it in errors: "SOURCE:LINE:COLUMN: what; how to fix".
Result<PipelineConfig> parse_pipeline_yaml(std::string_view text, std::string_view source);
// Loads every *.yaml / *.yml under <config_dir>/pipelines, in name order, and checks that
// binding names are unique across files. A missing pipelines directory is an empty config.
Result<PipelineConfig> load_pipelines(const std::string& config_dir);

}  // namespace factory::runtime
