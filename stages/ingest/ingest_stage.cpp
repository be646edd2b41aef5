// ingest: a ticket (JIRA webhook, GitHub issues webhook or plain ticket JSON) becomes a
// feature_spec: id, source, link, title, plain-text description, acceptance criteria, labels,
// priority, component and the target project. A ticket without acceptance criteria is routed
// to the review topic; a payload of no known shape fails permanently, saying what was expected.
// README.md has the details.
//
// Pure and stateless: the spec depends only on the params, so thread-safe and safe to rerun.
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "common/schemas.h"
#include "factory/stage.h"
#include "ingest/criteria.h"
#include "ingest/ticket.h"

namespace factory::stages::ingest {
namespace {

namespace json = boost::json;

constexpr const char* kDefaultReviewTopic = "human-review";

struct Params {
  json::value ticket;
  json::object projects;
  std::string default_project;
  std::string review_topic = kDefaultReviewTopic;
};

// The params (already checked against ingest_input.json by the runtime; checked again here
// for callers that skip it).
Result<Params> parse_params(std::string_view payload) {
  boost::system::error_code ec;
  json::value v = json::parse(payload, ec);
  if (ec || !v.is_object()) return Status::invalid_argument("params are not a JSON object");
  const json::object& o = v.as_object();
  Params p;
  const json::value* ticket = o.if_contains("ticket");
  if (ticket == nullptr) {
    return Status::invalid_argument(
        "params.ticket is missing: pass the ticket, e.g. ticket: \"{{ run.conf }}\"");
  }
  p.ticket = *ticket;
  if (const json::value* projects = o.if_contains("projects")) {
    if (!projects->is_object()) {
      return Status::invalid_argument("params.projects must be an object of key -> project");
    }
    p.projects = projects->get_object();
  }
  for (auto [key, out] : {std::pair{"default_project", &p.default_project},
                          std::pair{"review_topic", &p.review_topic}}) {
    const json::value* f = o.if_contains(key);
    if (f == nullptr) continue;
    if (!f->is_string() || f->get_string().empty()) {
      return Status::invalid_argument(std::string("params.") + key + " must be a non-empty string");
    }
    *out = std::string(f->get_string());
  }
  return p;
}

// The target project of `t`: projects[key]; a key that already names a target project, or a
// plain ticket's own `project`; else default_project. NotFound saying how to fix it if none.
Result<std::string> target_project(const Ticket& t, const Params& p) {
  if (const json::value* v = p.projects.if_contains(t.project_key); v && v->is_string()) {
    return std::string(v->get_string());
  }
  for (const auto& [key, value] : p.projects) {
    if (value.is_string() && value.get_string() == t.project_key) return t.project_key;
  }
  if (t.explicit_project) return t.project_key;
  if (!p.default_project.empty()) return p.default_project;
  std::string what = t.source == "jira"     ? "JIRA project '" + t.project_key + "'"
                     : t.source == "github" ? "GitHub repository '" + t.project_key + "'"
                                            : "ticket prefix '" + t.project_key + "'";
  return Status::not_found("ticket " + t.id + ": no target project for " + what +
                           "; map it in params.projects (e.g. {\"" + t.project_key +
                           "\": \"invoices\"}) or set params.default_project");
}

json::object to_spec(const Ticket& t, const std::vector<std::string>& criteria,
                     const std::string& project) {
  json::array ac, labels;
  for (const std::string& c : criteria) ac.emplace_back(c);
  for (const std::string& l : t.labels) labels.emplace_back(l);
  return json::object{{"id", t.id},
                      {"source", t.source},
                      {"link", t.link},
                      {"title", t.title},
                      {"description", to_plain_text(t.description)},
                      {"acceptance_criteria", std::move(ac)},
                      {"labels", std::move(labels)},
                      {"priority", t.priority},
                      {"component", t.component},
                      {"project", project}};
}

class IngestStage final : public Stage {
 public:
  StageInfo info() const override {
    return {.name = "ingest",
            .version = "1.0.0",
            .input_schema = std::string(schema("ingest_input")),
            .output_schema = std::string(schema("feature_spec")),
            .side_effects = SideEffects::kPure};
  }

  StageResult process(const Event& event, StageContext& ctx) override {
    auto params = parse_params(event.payload);
    if (!params.ok()) return StageResult::permanent("ingest: " + params.status().message());
    auto ticket = read_ticket(params->ticket);
    if (!ticket.ok()) {
      ctx.count("unrecognised_tickets");
      return StageResult::permanent("ingest: " + ticket.status().message());
    }
    auto project = target_project(*ticket, *params);
    if (!project.ok()) return StageResult::permanent("ingest: " + project.status().message());

    std::vector<std::string> criteria;
    for (const std::string& c : ticket->criteria) add_criterion(&criteria, c);
    for (const std::string& c : extract_criteria(ticket->description)) {
      add_criterion(&criteria, c);
    }
    if (criteria.empty()) {
      ctx.count("tickets_without_criteria");
      return StageResult::route(
          params->review_topic,
          "ticket " + ticket->id +
              " has no acceptance criteria; add an 'Acceptance criteria' section, AC: lines, "
              "Given/When/Then or a checklist");
    }
    ctx.count("specs");
    ctx.log_info("ticket " + ticket->id + " (" + ticket->source + ") -> project " + *project +
                 ", " + std::to_string(criteria.size()) + " acceptance criteria");
    ctx.emit({.payload = json::serialize(to_spec(*ticket, criteria, *project))});
    return StageResult::success();
  }
};

FACTORY_REGISTER_STAGE(IngestStage);

}  // namespace
}  // namespace factory::stages::ingest
