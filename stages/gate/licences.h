// The gate's dependency licence check: every dependency a project declares must carry a licence
// on the allow-list.
//
// Trust: the manifest is written by the generated code, so it says only WHICH dependencies the
// project uses, never what their licences are. Licence facts come from the gate's configuration
// (checks.licences.known, a mapping "name: SPDX id", and known_file, a YAML file of the same
// shape outside the checkout), which the generated code cannot write. A licence the manifest
// declares itself (a trailing "# license: MIT" comment) or a factory-licences.yaml in the tree
// is not trusted: it is only quoted in the report, to tell the operator what to verify.
//
// Format (documented in stages/gate/README.md): the manifest is a pip requirements file, one
// dependency a line:
//   requests==2.31.0
//   attrs>=23.1
// Names compare as PEP 503 normalises them (case-insensitive, '-', '_' and '.' alike). An
// expression "A OR B" is allowed when either is; "A AND B" when both are. Option lines (-r, -e,
// --index-url ...) are reported as unsupported: their dependencies cannot be checked.
//
// Thread-safe: pure functions.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "factory/status.h"

namespace factory::stages::gate {

struct Dependency {
  std::string name;      // as written
  std::string licence;   // from `known`; "" when unknown
  std::string declared;  // what the manifest's own comment claims (untrusted), or ""
  int line = 0;          // 1-based line in the manifest
};

// The dependencies of a requirements text; licences from `known` (name -> licence, names
// compared normalised) only. Lines it cannot use are appended to *problems.
std::vector<Dependency> parse_requirements(
    std::string_view text, const std::vector<std::pair<std::string, std::string>>& known,
    std::vector<std::string>* problems);

// True when `licence` (an SPDX id or an OR/AND expression of them) is allowed.
bool licence_allowed(std::string_view licence, const std::vector<std::string>& allow);

struct LicenceReport {
  bool passed = true;
  std::string report;  // one line per dependency that fails, or a summary when all pass
};

struct LicenceConfig {
  std::vector<std::string> allow;  // SPDX ids
  std::string manifest = "requirements.txt";
  std::vector<std::pair<std::string, std::string>> known;  // name -> SPDX id (the config's)
  std::filesystem::path known_file;  // absolute; a YAML mapping name -> SPDX id, or empty
};

// Checks <root>/<config.manifest> against config.allow with licences from config.known and
// config.known_file. A project without the manifest has no third-party dependencies: it passes,
// saying so. InvalidArgument for a manifest path outside the checkout or a symlink, a
// known_file that is relative, inside `root` or malformed (the message says where).
Result<LicenceReport> check_licences(const std::filesystem::path& root,
                                     const LicenceConfig& config);

}  // namespace factory::stages::gate
