// The gate's built-in secret scanner: finds credentials committed in source files — private
// keys, AWS access key ids, Stripe-style sk_live_/sk_test_ keys, GitHub tokens, Slack tokens,
// and `api_key|secret|password|token = "<long literal>"` assignments — and reports each by
// file:line and rule with the value masked: a finding never carries the secret itself.
//
// A line containing `factory:allow-secret` is skipped (a test fixture that must hold a fake key).
// Files over max_file_bytes and binary files (a NUL byte in the first 8 KiB) are skipped, and
// so is .git/.
//
// Thread-safe: pure functions over their arguments (the rules are compiled once, immutable).
//
// Example:
//   auto found = scan_tree("/tmp/checkout", {});
//   for (const SecretFinding& f : *found) report += f.path + ":" + std::to_string(f.line) + ...;
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "factory/status.h"

namespace factory::stages::gate {

struct SecretFinding {
  std::string path;    // relative to the scanned root, '/'-separated
  int line = 0;        // 1-based
  std::string rule;    // private_key, aws_access_key, stripe_key, github_token, slack_token,
                       // generic_secret
  std::string masked;  // the match with the secret replaced by '*' (a known prefix kept)
};

// The findings in one file's text, at most one per line (the most specific rule).
std::vector<SecretFinding> scan_text(std::string_view path, std::string_view text);

struct ScanOptions {
  size_t max_file_bytes = 1 << 20;
  size_t max_findings = 100;  // stop after this many
};

// Scans every regular file under root (recursively, not following symlinks, skipping .git),
// in path order. IOError when the root cannot be read.
Result<std::vector<SecretFinding>> scan_tree(const std::filesystem::path& root,
                                             const ScanOptions& options);

// "path:line: rule: masked" — one finding as the gate reports it.
std::string describe(const SecretFinding& finding);

}  // namespace factory::stages::gate
