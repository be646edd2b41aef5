#include "gate/licences.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include <yaml-cpp/yaml.h>

namespace factory::stages::gate {
namespace fs = std::filesystem;
namespace {

std::string trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
  return std::string(s.substr(b, e - b + 1));
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// PEP 503: lower-case, runs of '-', '_', '.' become one '-'.
std::string normalise(std::string_view name) {
  std::string out;
  for (char c : lower(name)) {
    if (c == '_' || c == '.' || c == '-') {
      if (out.empty() || out.back() != '-') out += '-';
    } else {
      out += c;
    }
  }
  return out;
}

// "license: MIT" / "licence: MIT" (any case) inside a comment; "" when absent.
std::string licence_in_comment(std::string_view comment) {
  std::string low = lower(comment);
  for (std::string_view key : {"license:", "licence:"}) {
    size_t at = low.find(key);
    if (at == std::string::npos) continue;
    std::string rest = trim(comment.substr(at + key.size()));
    // Up to a further comment or the end.
    size_t hash = rest.find('#');
    return trim(std::string_view(rest).substr(0, hash));
  }
  return "";
}

std::vector<std::string> split_on(std::string_view s, std::string_view sep) {
  std::vector<std::string> out;
  size_t pos = 0;
  for (;;) {
    size_t at = s.find(sep, pos);
    out.push_back(
        trim(s.substr(pos, at == std::string_view::npos ? std::string_view::npos : at - pos)));
    if (at == std::string_view::npos) return out;
    pos = at + sep.size();
  }
}

}  // namespace

std::vector<Dependency> parse_requirements(
    std::string_view text, const std::vector<std::pair<std::string, std::string>>& known,
    std::vector<std::string>* problems) {
  std::vector<Dependency> out;
  std::istringstream in{std::string(text)};
  std::string raw;
  int line_no = 0;
  while (std::getline(in, raw)) {
    ++line_no;
    std::string line = trim(raw);
    if (line.empty() || line.front() == '#') continue;
    size_t hash = line.find(" #");
    if (hash == std::string::npos) hash = line.find("\t#");
    std::string spec = trim(line.substr(0, hash));
    std::string comment = hash == std::string::npos ? "" : line.substr(hash + 2);
    if (spec.front() == '-') {
      problems->push_back("line " + std::to_string(line_no) + ": '" + spec +
                          "' is an option line; list the dependencies themselves, one a line, so "
                          "their licences can be checked");
      continue;
    }
    size_t end = spec.find_first_of(" \t=<>!~;[@,");
    Dependency d;
    d.name = spec.substr(0, end);
    d.line = line_no;
    d.declared = licence_in_comment(comment);
    const std::string key = normalise(d.name);
    for (const auto& [name, licence] : known) {
      if (normalise(name) == key) d.licence = licence;
    }
    out.push_back(std::move(d));
  }
  return out;
}

bool licence_allowed(std::string_view licence, const std::vector<std::string>& allow) {
  auto one = [&](std::string_view id) {
    std::string s = trim(id);
    while (!s.empty() && (s.front() == '(')) s.erase(s.begin());
    while (!s.empty() && (s.back() == ')')) s.pop_back();
    return std::any_of(allow.begin(), allow.end(),
                       [&](const std::string& a) { return lower(a) == lower(s); });
  };
  if (trim(licence).empty()) return false;
  for (const std::string& alternative : split_on(licence, " OR ")) {
    std::vector<std::string> all = split_on(alternative, " AND ");
    if (std::all_of(all.begin(), all.end(), one)) return true;
  }
  return false;
}

namespace {

// A YAML mapping "name: SPDX id" from a file the operator owns, appended to *out.
Status read_known_file(const fs::path& root, const fs::path& file,
                       std::vector<std::pair<std::string, std::string>>* out) {
  const std::string where = file.string();
  if (!file.is_absolute()) {
    return Status::invalid_argument("licences.known_file '" + where +
                                    "' must be an absolute path outside the project, e.g. "
                                    "/etc/factoryd/licences.yaml");
  }
  const fs::path canon_root = fs::weakly_canonical(root);
  const fs::path canon = fs::weakly_canonical(file);
  auto rel = canon.lexically_relative(canon_root);
  if (!rel.empty() && *rel.begin() != "..") {
    return Status::invalid_argument(
        "licences.known_file '" + where +
        "' is inside the checked-out project, which the generated "
        "code writes; keep it outside, e.g. /etc/factoryd/licences.yaml");
  }
  try {
    YAML::Node doc = YAML::LoadFile(where);
    if (!doc.IsNull() && !doc.IsMap()) {
      return Status::invalid_argument(where +
                                      " must be a mapping of dependency names to SPDX ids, "
                                      "e.g. requests: Apache-2.0");
    }
    for (const auto& kv : doc) {
      if (!kv.second.IsScalar()) {
        return Status::invalid_argument(where + ":" + std::to_string(kv.first.Mark().line + 1) +
                                        ": " + kv.first.as<std::string>() +
                                        " must map to one SPDX id, e.g. MIT");
      }
      out->emplace_back(kv.first.as<std::string>(), kv.second.as<std::string>());
    }
  } catch (const YAML::Exception& e) {
    return Status::invalid_argument(where + ": " + e.what());
  }
  return Status();
}

}  // namespace

Result<LicenceReport> check_licences(const fs::path& root, const LicenceConfig& config) {
  const std::string& manifest = config.manifest;
  fs::path rel(manifest);
  if (manifest.empty() || rel.is_absolute() || manifest.find("..") != std::string::npos) {
    return Status::invalid_argument("licences.manifest '" + manifest +
                                    "' must be a path inside the project, e.g. requirements.txt");
  }
  LicenceReport r;
  fs::path file = root / rel;
  std::error_code ec;
  if (fs::is_symlink(file, ec)) {
    // clean_checkout refuses such trees already; never read through a link to a host file.
    return Status::invalid_argument(manifest + " is a symbolic link; it must be a regular file");
  }
  if (!fs::is_regular_file(file, ec)) {
    r.report = "no " + manifest + ": no third-party dependencies to check";
    return r;
  }
  std::vector<std::pair<std::string, std::string>> known = config.known;
  if (!config.known_file.empty()) {
    FACTORY_RETURN_IF_ERROR(read_known_file(root, config.known_file, &known));
  }
  std::ifstream in(file, std::ios::binary);
  std::ostringstream buf;
  buf << in.rdbuf();
  std::vector<std::string> problems;
  std::vector<Dependency> deps = parse_requirements(buf.str(), known, &problems);
  std::string lines;
  for (const std::string& p : problems) lines += manifest + ": " + p + "\n";
  std::string allowed;
  for (const std::string& a : config.allow) allowed += (allowed.empty() ? "" : ", ") + a;
  int ok = 0;
  for (const Dependency& d : deps) {
    std::string where = manifest + ":" + std::to_string(d.line) + ": ";
    if (d.licence.empty()) {
      lines += where + d.name + " has no known licence";
      if (!d.declared.empty()) {
        lines += " (the manifest claims '" + d.declared.substr(0, 80) +
                 "', but licences written by the generated code are not trusted)";
      }
      lines +=
          "; an operator who has checked it adds it to the gate's licences.known (name: SPDX "
          "id)\n";
    } else if (!licence_allowed(d.licence, config.allow)) {
      lines += where + d.name + " is " + d.licence + ", which is not allowed (allowed: " + allowed +
               "); replace the dependency or get the licence approved\n";
    } else {
      ++ok;
    }
  }
  if (!lines.empty()) {
    r.passed = false;
    lines.pop_back();
    r.report = std::move(lines);
  } else {
    r.report = std::to_string(ok) + " dependenc" + (ok == 1 ? "y" : "ies") + " in " + manifest +
               ", all with allowed licences";
  }
  return r;
}

}  // namespace factory::stages::gate
