// factoryd audit list [-n N]
//
// The audit trail, newest first: who changed what (pause, trigger, cancel, clear, approve/
// reject; over HTTP also every other write), with the outcome and the HTTP request id, through
// DagAccess (dag_access.h): the store beside whoever holds the data dir, or the daemon's API.
#include <string>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include "cli/common.h"
#include "cli/dag_access.h"
#include "cli/dag_support.h"

namespace factory::cli {
namespace {

namespace json = boost::json;

class AuditList : public Command {
 public:
  explicit AuditList(const CommonOptions* common) : common_(common) {}
  int limit = 100;

  int run() override {
    int code = kExitOk;
    auto access = open_dag_access(*common_, "config", &code);
    if (!access) return code;
    auto rows = access->list_audit(limit);
    if (!rows.ok()) return rows.exit_code();
    if (common_->json()) {
      write_json_line(*rows);
      return kExitOk;
    }
    Table table({"TIME", "ACTOR", "ACTION", "OBJECT", "RESULT", "REQUEST_ID", "DETAIL"});
    auto dash = [](std::string s) { return s.empty() ? std::string("-") : s; };
    for (const json::value& v : *rows) {
      if (!v.is_object()) continue;
      const json::object& a = v.get_object();
      table.add_row({view_text(a, "at"), dash(view_text(a, "actor", "")),
                     dash(view_text(a, "action", "")), dash(view_text(a, "object", "")),
                     dash(view_text(a, "result", "")), dash(view_text(a, "request_id", "")),
                     dash(clip(view_text(a, "detail", ""), 200))});
    }
    write_stdout(table.render());
    return kExitOk;
  }

 private:
  const CommonOptions* common_;
};

}  // namespace

void add_audit_command(CLI::App* root, CommandRegistry* registry) {
  CommonOptions* common = registry->common();
  CLI::App* audit = root->add_subcommand("audit", "The audit trail of changes");
  audit->require_subcommand(1);
  auto cmd = std::make_unique<AuditList>(common);
  CLI::App* app = audit->add_subcommand(
      "list", "List audit rows, newest first: who changed what, the outcome and the request id");
  app->add_option("-n,--limit", cmd->limit, "At most this many rows (0: all)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  add_common_options(app, common);
  registry->add(app, std::move(cmd));
}

}  // namespace factory::cli
