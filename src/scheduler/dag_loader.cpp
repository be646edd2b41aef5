// The half of dag_parser.h that is not the file schema: durations, reading DAG files and
// directories (with the checks across files), and a run's conf.
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <boost/json.hpp>

#include "base/file.h"
#include "config/contract.h"
#include "config/yaml_reader.h"
#include "scheduler/dag_parser.h"

namespace factory::scheduler {
namespace {

namespace json = boost::json;
using config::in_quotes;

constexpr int64_t kMaxDurationMs = 366LL * 24 * 3600 * 1000;

// Parses one <number><unit> sequence ("1h30m", "1.5h", "300ms"). False when it is not one.
bool parse_unit_duration(std::string_view s, double* ms) {
  *ms = 0;
  bool any = false;
  while (!s.empty()) {
    size_t ws = s.find_first_not_of(' ');
    if (ws == std::string_view::npos) break;
    s.remove_prefix(ws);
    size_t num_end = 0;
    while (num_end < s.size() && ((s[num_end] >= '0' && s[num_end] <= '9') || s[num_end] == '.')) {
      ++num_end;
    }
    if (num_end == 0) return false;
    double v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + num_end, v);
    if (ec != std::errc() || p != s.data() + num_end) return false;
    s.remove_prefix(num_end);
    size_t unit_end = 0;
    while (unit_end < s.size() && s[unit_end] >= 'a' && s[unit_end] <= 'z') ++unit_end;
    std::string_view unit = s.substr(0, unit_end);
    s.remove_prefix(unit_end);
    double scale = 0;
    if (unit == "ms") {
      scale = 1;
    } else if (unit == "s") {
      scale = 1000;
    } else if (unit == "m") {
      scale = 60'000;
    } else if (unit == "h") {
      scale = 3'600'000;
    } else if (unit == "d") {
      scale = 86'400'000;
    } else {
      return false;
    }
    *ms += v * scale;
    any = true;
  }
  return any;
}

// [D:]HH:MM:SS[.fff]: minutes and seconds below 60.
bool parse_clock_duration(std::string_view s, double* ms) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t colon = s.find(':', start);
    parts.push_back(s.substr(start, colon == std::string_view::npos ? s.npos : colon - start));
    if (colon == std::string_view::npos) break;
    start = colon + 1;
  }
  if (parts.size() != 3 && parts.size() != 4) return false;
  auto whole = [](std::string_view p, int64_t* v) {
    if (p.empty()) return false;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), *v);
    return ec == std::errc() && end == p.data() + p.size() && *v >= 0;
  };
  int64_t days = 0;
  int64_t hours = 0;
  int64_t minutes = 0;
  size_t i = 0;
  if (parts.size() == 4 && !whole(parts[i++], &days)) return false;
  if (!whole(parts[i++], &hours) || !whole(parts[i++], &minutes) || minutes >= 60) return false;
  std::string_view sec = parts[i];
  if (sec.empty() || sec[0] < '0' || sec[0] > '9') return false;
  double seconds = 0;
  auto [end, ec] = std::from_chars(sec.data(), sec.data() + sec.size(), seconds);
  if (ec != std::errc() || end != sec.data() + sec.size() || seconds >= 60) return false;
  *ms = ((static_cast<double>(days) * 24 + static_cast<double>(hours)) * 60 +
         static_cast<double>(minutes)) *
            60'000 +
        seconds * 1000;
  return true;
}

}  // namespace

Result<int64_t> parse_duration_ms(std::string_view text) {
  std::string_view s = text;
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  const std::string hint =
      "; write milliseconds (300000), a number with a unit (300ms, 5s, 5m, 1h, 1d, 1h30m) or "
      "HH:MM:SS (00:05:00)";
  if (s.empty()) return Status::invalid_argument("a duration is empty" + hint);
  if (s.front() == '-') {
    return Status::invalid_argument(in_quotes(text) + " is negative; durations are 0 or more");
  }
  double ms = 0;
  if (std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    int64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || v > kMaxDurationMs) {
      return Status::invalid_argument(in_quotes(text) + " is longer than 366 days");
    }
    return v;
  }
  if (!parse_unit_duration(s, &ms) && !parse_clock_duration(s, &ms)) {
    return Status::invalid_argument(in_quotes(text) + " is not a duration" + hint);
  }
  if (!std::isfinite(ms) || ms > static_cast<double>(kMaxDurationMs)) {
    return Status::invalid_argument(in_quotes(text) + " is longer than 366 days");
  }
  return static_cast<int64_t>(std::llround(ms));
}

Result<Dag> load_dag_file(const std::string& path, const DagParseOptions& options) {
  std::string text;
  FACTORY_RETURN_IF_ERROR(base::read_file(path, "DAG file", &text));
  return parse_dag_yaml(text, path, options);
}

Result<std::vector<Dag>> load_dags(const std::string& dir, const DagParseOptions& options) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::file_status st = fs::status(dir, ec);
  if (!fs::exists(st)) return std::vector<Dag>{};
  if (!fs::is_directory(st)) {
    return Status::invalid_argument(in_quotes(dir) +
                                    " is not a directory; DAG files go in "
                                    "<config>/dags/*.yaml");
  }
  std::vector<fs::path> files;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    std::error_code type_ec;
    if ((p.extension() == ".yaml" || p.extension() == ".yml") && it->is_regular_file(type_ec)) {
      files.push_back(p);
    }
  }
  if (ec) return Status::io_error("cannot list " + in_quotes(dir) + ": " + ec.message());
  std::sort(files.begin(), files.end());

  std::vector<Dag> dags;
  std::map<std::string, size_t, std::less<>> by_id;  // dag_id -> index in dags
  struct PoolOrigin {
    int slots;
    size_t dag;
  };
  std::map<std::string, PoolOrigin, std::less<>> pools;
  for (const fs::path& file : files) {
    Result<Dag> dag = load_dag_file(file.string(), options);
    if (!dag.ok()) return dag.status();
    auto [it, inserted] = by_id.emplace(dag->dag_id, dags.size());
    if (!inserted) {
      const Dag& first = dags[it->second];
      return Status::invalid_argument(dag->source + ":" + std::to_string(dag->line) + ": dag_id " +
                                      in_quotes(dag->dag_id) + " is already defined in " +
                                      first.source + ":" + std::to_string(first.line) +
                                      "; dag_ids are unique across DAG files: rename one of them");
    }
    for (const auto& [name, slots] : dag->pools) {
      auto [p, fresh] = pools.emplace(name, PoolOrigin{slots, dags.size()});
      if (!fresh && p->second.slots != slots) {
        return Status::invalid_argument(
            dag->source + ": pool " + in_quotes(name) + " has " + std::to_string(slots) +
            " slots here but " + std::to_string(p->second.slots) + " in " +
            dags[p->second.dag].source +
            "; pools are shared by every DAG: declare the same slots in both files");
      }
    }
    dags.push_back(std::move(*dag));
  }
  for (const Dag& d : dags) {
    if (!d.deadline_trigger_dag.empty() && by_id.find(d.deadline_trigger_dag) == by_id.end()) {
      return Status::invalid_argument(d.source + ": deadline.trigger_dag " +
                                      in_quotes(d.deadline_trigger_dag) +
                                      " is not the dag_id of any DAG file in " + in_quotes(dir) +
                                      "; add that DAG or fix the name");
    }
    if (d.error_budget && !d.error_budget->postmortem_dag.empty() &&
        by_id.find(d.error_budget->postmortem_dag) == by_id.end()) {
      return Status::invalid_argument(
          d.source + ":" + std::to_string(d.error_budget->line) + ": error_budget.postmortem_dag " +
          in_quotes(d.error_budget->postmortem_dag) + " is not the dag_id of any DAG file in " +
          in_quotes(dir) + "; add that DAG (config/dags/postmortem.yaml is one) or fix the name");
    }
  }
  return dags;
}

Result<std::string> resolve_run_conf(const Dag& dag, std::string_view conf_json) {
  boost::system::error_code ec;
  json::value defaults = json::parse(dag.params_defaults.empty() ? "{}" : dag.params_defaults, ec);
  if (ec || !defaults.is_object()) {
    return Status::invalid_argument("DAG " + in_quotes(dag.dag_id) +
                                    ": params defaults are not a JSON object");
  }
  json::object conf = std::move(defaults.get_object());
  std::string_view given = conf_json;
  size_t start = given.find_first_not_of(" \t\r\n");
  given = start == std::string_view::npos ? std::string_view() : given.substr(start);
  if (!given.empty() && given != "null") {
    json::value v = json::parse(given, ec);
    if (ec || !v.is_object()) {
      return Status::invalid_argument("the conf of a run of " + in_quotes(dag.dag_id) +
                                      " must be a JSON object, e.g. {\"ticket\": \"PROJ-1\"}" +
                                      (ec ? ": " + ec.message() : std::string()));
    }
    for (auto& kv : v.get_object()) conf[kv.key()] = std::move(kv.value());
  }
  std::string out = json::serialize(conf);
  if (!dag.params_schema.empty()) {
    auto contract = config::Contract::compile(dag.params_schema, "params schema");
    if (!contract.ok()) return contract.status();
    Status s = (*contract)->validate(out);
    if (!s.ok()) {
      return Status::invalid_argument("the conf of a run of " + in_quotes(dag.dag_id) +
                                      " does not match its params schema: " + s.message());
    }
  }
  return out;
}

}  // namespace factory::scheduler
