#include "scheduler/audit.h"

#include <utility>

namespace factory::scheduler {

std::string dag_object(std::string_view dag_id) { return "dag/" + std::string(dag_id); }

std::string run_object(std::string_view run_id) { return "run/" + std::string(run_id); }

std::string task_object(std::string_view run_id, std::string_view task_id) {
  return run_object(run_id) + "/task/" + std::string(task_id);
}

std::string trigger_detail(std::string_view run_id) { return "run " + std::string(run_id); }

store::AuditRow audit_row(int64_t at_ms, std::string_view actor, std::string_view action,
                          std::string object, std::string_view detail) {
  return {
      at_ms, std::string(actor), std::string(action), std::move(object), "ok", std::string(detail),
      ""};
}

}  // namespace factory::scheduler
