// The factoryd command line: builds the CLI11 command tree, parses argv and
// runs one command.
//
//   factoryd topics apply|create|list|describe|delete ...
//   factoryd produce TOPIC ...
//   factoryd consume TOPIC ...
//   factoryd groups list|describe|reset-offsets ...
//
// Not thread-safe: call once, from main.
#pragma once

namespace factory::cli {

// Returns the process exit code: 0 ok, 1 runtime error, 2 usage error
// (including every CLI11 parse error). Prints --help/--version output and
// errors itself. Exceptions other than CLI11's parse errors propagate to main.
int run(int argc, char** argv);

}  // namespace factory::cli
