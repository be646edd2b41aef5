// The JSON Schemas of the factory's events, embedded in the binary from config/schemas/*.json
// at build time (stages/CMakeLists.txt), so a stage's contract does not depend on where the
// config directory is. The files stay the reference users read.
//
// Thread-safety: immutable.
#pragma once

#include <string_view>

namespace factory::stages {

// The schema config/schemas/<name>.json as text ("feature_spec", "code_artifact", ...).
// Aborts naming the schema when there is no such file: a typo is a build-time bug.
std::string_view schema(std::string_view name);

}  // namespace factory::stages
