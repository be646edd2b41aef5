// The gate's dependency licence check: every dependency a project declares must carry a licence
// on the allow-list.
//
// Format (documented in stages/gate/README.md): the manifest is a pip requirements file, one
// dependency a line, its licence as an SPDX id in a trailing comment:
//   requests==2.31.0        # license: Apache-2.0
//   attrs>=23.1             # licence: MIT
// A dependency without such a comment takes its licence from factory-licences.yaml beside the
// manifest (a flat mapping "name: SPDX id"), so a generated requirements.txt can stay untouched.
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
  std::string name;     // as written
  std::string licence;  // "" when unknown
  int line = 0;         // 1-based line in the manifest
};

// The dependencies of a requirements text; licences from trailing comments, then from
// `mapping` (normalised name -> licence). Lines it cannot use are appended to *problems.
std::vector<Dependency> parse_requirements(
    std::string_view text, const std::vector<std::pair<std::string, std::string>>& mapping,
    std::vector<std::string>* problems);

// True when `licence` (an SPDX id or an OR/AND expression of them) is allowed.
bool licence_allowed(std::string_view licence, const std::vector<std::string>& allow);

struct LicenceReport {
  bool passed = true;
  std::string report;  // one line per dependency that fails, or a summary when all pass
};

// Checks <root>/<manifest> (and <dir of manifest>/factory-licences.yaml) against `allow`. A
// project without the manifest has no third-party dependencies: it passes, saying so.
// InvalidArgument for a malformed factory-licences.yaml (the report says where).
Result<LicenceReport> check_licences(const std::filesystem::path& root, std::string_view manifest,
                                     const std::vector<std::string>& allow);

}  // namespace factory::stages::gate
