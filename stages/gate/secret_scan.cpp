#include "gate/secret_scan.h"

#include <algorithm>
#include <fstream>
#include <regex>
#include <sstream>
#include <system_error>
#include <vector>

namespace factory::stages::gate {
namespace fs = std::filesystem;
namespace {

constexpr size_t kMaxLineBytes = 4096;  // longer lines (minified code) are scanned up to this
constexpr std::string_view kAllowMarker = "factory:allow-secret";

struct Rule {
  const char* name;
  // A cheap substring test before the regex (lower-cased line when `lower`).
  std::vector<std::string_view> hints;
  bool lower;
  std::regex re;
  // The submatch holding the secret, and how many of its first characters are a public prefix
  // ("sk_live_", "AKIA") that may be shown.
  int group;
  size_t keep;
};

const std::vector<Rule>& rules() {
  static const std::vector<Rule>* r = [] {
    auto* v = new std::vector<Rule>();
    auto add = [&](const char* name, std::vector<std::string_view> hints, bool lower,
                   const char* pattern, int group, size_t keep,
                   std::regex::flag_type flags = std::regex::ECMAScript) {
      v->push_back({name, std::move(hints), lower, std::regex(pattern, flags), group, keep});
    };
    add("private_key", {"PRIVATE KEY-----"}, false,
        R"((-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----))", 1, 0);
    add("aws_access_key", {"AKIA"}, false, R"((?:^|[^A-Z0-9])(AKIA[0-9A-Z]{16})(?![0-9A-Z]))", 1,
        4);
    add("stripe_key", {"sk_live_", "sk_test_", "rk_live_", "rk_test_"}, false,
        R"(((?:sk|rk)_(?:live|test)_[0-9A-Za-z]{8,}))", 1, 8);
    add("github_token", {"ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"}, false,
        R"(((?:gh[pousr]_[A-Za-z0-9]{30,})|(?:github_pat_[A-Za-z0-9_]{30,})))", 1, 4);
    add("slack_token", {"xoxb-", "xoxa-", "xoxp-", "xoxr-", "xoxs-"}, false,
        R"((xox[baprs]-[A-Za-z0-9-]{10,}))", 1, 5);
    // NAME = "literal", NAME: 'literal', "name": "literal" where NAME mentions a credential.
    add("generic_secret", {"key", "secret", "password", "passwd", "token"}, true,
        R"([A-Za-z0-9_.-]*(?:api[_-]?key|secret|password|passwd|token)[A-Za-z0-9_]*["']?\s*(?::=|=|:)\s*[bru]?["']([^"'\s]{8,})["'])",
        1, 0, std::regex::ECMAScript | std::regex::icase);
    return v;
  }();
  return *r;
}

// Values of `name = "..."` that are not worth a finding: templates, environment references,
// placeholders and fixtures ("dummy", "example", "test"), and words that do not look random — a
// credential has a digit, or upper and lower case (so "from-env" and "changeme" pass,
// "hunter2hunter2" does not). The prefixed rules above catch real tokens whatever they hold.
bool not_a_secret(std::string_view v) {
  if (v.find("{{") != std::string_view::npos || v.find("${") != std::string_view::npos) {
    return true;
  }
  if (v.front() == '$' || v.front() == '<' || v.front() == '%') return true;
  if (std::all_of(v.begin(), v.end(), [&](char c) { return c == v.front(); })) return true;
  std::string low(v);
  for (char& c : low) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (std::string_view word : {"example", "dummy", "fake", "placeholder", "changeme", "redacted",
                                "test", "xxxx", "****"}) {
    if (low.find(word) != std::string::npos) return true;
  }
  bool digit = false, upper = false, lower = false;
  for (char c : v) {
    digit = digit || std::isdigit(static_cast<unsigned char>(c));
    upper = upper || std::isupper(static_cast<unsigned char>(c));
    lower = lower || std::islower(static_cast<unsigned char>(c));
  }
  return !(digit || (upper && lower));
}

std::string mask(std::string_view secret, size_t keep) {
  keep = std::min(keep, secret.size());
  std::string out(secret.substr(0, keep));
  out.append(std::min<size_t>(secret.size() - keep, 16), '*');
  out += " (" + std::to_string(secret.size()) + " characters)";
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::vector<SecretFinding> scan_text(std::string_view path, std::string_view text) {
  std::vector<SecretFinding> out;
  int line_no = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, std::min(end - pos, kMaxLineBytes));
    ++line_no;
    pos = end + 1;
    if (line.empty() || line.find(kAllowMarker) != std::string_view::npos) {
      if (end == text.size()) break;
      continue;
    }
    std::string low;
    for (const Rule& rule : rules()) {
      if (rule.lower && low.empty()) low = lower(line);
      std::string_view hay = rule.lower ? std::string_view(low) : line;
      bool hinted = std::any_of(rule.hints.begin(), rule.hints.end(), [&](std::string_view h) {
        return hay.find(h) != std::string_view::npos;
      });
      if (!hinted) continue;
      std::match_results<std::string_view::const_iterator> m;
      bool found = false;
      for (auto it = line.begin(); std::regex_search(it, line.end(), m, rule.re);
           it = m[0].second) {
        std::string_view secret(&*m[rule.group].first, static_cast<size_t>(m[rule.group].length()));
        if (rule.keep == 0 && std::string_view(rule.name) == "generic_secret" &&
            not_a_secret(secret)) {
          continue;  // look further along the line
        }
        std::string masked = std::string(rule.name) == "private_key"
                                 ? std::string(secret)  // the header names the kind, not the key
                                 : mask(secret, rule.keep);
        out.push_back({std::string(path), line_no, rule.name, std::move(masked)});
        found = true;
        break;
      }
      if (found) break;  // one finding per line: the most specific rule
    }
    if (end == text.size()) break;
  }
  return out;
}

Result<std::vector<SecretFinding>> scan_tree(const fs::path& root, const ScanOptions& options) {
  std::vector<fs::path> files;
  std::error_code ec;
  fs::recursive_directory_iterator it(root, fs::directory_options::none, ec);
  if (ec) return Status::io_error("cannot read " + root.string() + ": " + ec.message());
  for (fs::recursive_directory_iterator end; it != end; it.increment(ec)) {
    if (ec) return Status::io_error("cannot read under " + root.string() + ": " + ec.message());
    if (it->path().filename() == ".git") {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_symlink(ec) || !it->is_regular_file(ec)) continue;
    if (it->file_size(ec) > options.max_file_bytes) continue;
    files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  std::vector<SecretFinding> out;
  for (const fs::path& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::ostringstream buf;
    buf << in.rdbuf();
    std::string text = buf.str();
    if (text.substr(0, 8192).find('\0') != std::string::npos) continue;  // binary
    std::string rel = fs::relative(f, root, ec).generic_string();
    for (SecretFinding& found : scan_text(rel, text)) {
      out.push_back(std::move(found));
      if (out.size() >= options.max_findings) return out;
    }
  }
  return out;
}

std::string describe(const SecretFinding& f) {
  return f.path + ":" + std::to_string(f.line) + ": " + f.rule + ": " + f.masked;
}

}  // namespace factory::stages::gate
