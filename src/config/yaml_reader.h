// YamlReader: reads typed values out of one YAML config file with errors a user can act on,
// "SOURCE:LINE:COLUMN: what is wrong; how to fix it" (1-based, the form editors jump to).
//
// It holds what every config parser here needs and yaml-cpp lacks: marks pointing at the value
// (or at its key when the value is empty), mappings checked for repeated keys (yaml-cpp 0.7
// keeps both entries) and for unknown keys with a did-you-mean, typed scalars with ranges, and
// YAML -> JSON for free-form blocks handed to stages. Each file's schema stays in its parser:
// log/topic_file.cpp, runtime/pipeline_config.cpp, scheduler/dag_parser.cpp,
// cli/factory_config.cpp.
//
// Internal to factoryd: it exposes yaml-cpp types, so only .cpp files include it (yaml-cpp comes
// with factory::config; no public header of another target hands out a YAML::Node). yaml-cpp
// throws; callers wrap their use of nodes in try/catch (YAML::Exception) so nothing escapes the
// module.
//
// Immutable after construction; const methods only, so safe to share.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "factory/status.h"

namespace factory::config {

// A mapping entry with both nodes kept, so errors can point at the key or the value.
struct YamlEntry {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;
};

using YamlKeys = std::vector<std::string_view>;
// Other spellings people reach for -> the key this file uses ("input_topic" -> "input").
using YamlAliases = std::map<std::string_view, std::string_view>;

class YamlReader {
 public:
  // `source` names the file in every message; `aliases` (borrowed; must outlive the reader)
  // feed the did-you-mean for unknown keys.
  YamlReader(std::string source, const YamlAliases* aliases);

  const std::string& source() const { return source_; }

  // Parses `text`, which must hold at most one YAML document; *doc is a null node for an empty
  // file. InvalidArgument for a syntax error (with a hint about tabs or quoting) or a second
  // document.
  Status load(std::string_view text, YAML::Node* doc) const;
  // Parses `text` as a stream of YAML documents (`---` between them; topic files mix forms
  // that way). InvalidArgument for a syntax error, as load().
  Status load_all(std::string_view text, std::vector<YAML::Node>* docs) const;

  // InvalidArgument "SOURCE:LINE:COLUMN: what" (no position for a null mark).
  Status error(const YAML::Mark& mark, std::string_view what) const;
  // The value's position, or its key's when the value is empty (yaml-cpp then marks the next
  // token, often on another line).
  static YAML::Mark where(const YamlEntry& e);

  // The entries of mapping `map` in order. InvalidArgument when it is not a mapping, a key is
  // not plain text or repeats, or (with `allowed`) a key is unknown. `what` names the mapping
  // in messages ("a binding", "retry").
  Status entries(const YAML::Node& map, std::string_view what, const YamlKeys* allowed,
                 std::vector<YamlEntry>* out) const;
  static const YamlEntry* find(const std::vector<YamlEntry>& entries, std::string_view key);

  // Typed scalars. `field` is the dotted path in messages ("timeout_ms", "retry.jitter").
  // InvalidArgument for an empty value, a mapping or list, or text of another type.
  Status text(const YamlEntry& e, std::string_view field, std::string* out) const;
  // A whole number in [min, max].
  Status integer(const YamlEntry& e, std::string_view field, int64_t min, int64_t max,
                 int64_t* out) const;
  Status integer(const YamlEntry& e, std::string_view field, int min, int max, int* out) const;
  // A finite number (digits, optional fraction and exponent).
  Status number(const YamlEntry& e, std::string_view field, double* out) const;
  // true/True/TRUE or false/False/FALSE (YAML 1.2; not 1.1's yes/no/on/off).
  Status boolean(const YamlEntry& e, std::string_view field, bool* out) const;

  // Serializes `node` (any YAML) as JSON text. Quoted and block scalars and explicitly tagged
  // ones are strings; plain scalars that read as YAML 1.2 core null/bool/int/float become those
  // (a leading zero keeps "0123" a string), anything else a string. InvalidArgument at the
  // value for what JSON cannot hold (.inf, .nan, integers beyond 64 bits, doubles out of
  // range), a repeated key, or nesting deeper than 64 / more than 100000 values (a recursive or
  // exploding alias). `path` names the node in messages ("config").
  Status to_json(const YAML::Node& node, const std::string& path, std::string* json) const;

  // The allowed key `key` was probably meant as (an alias, or a typo within two edits), or "".
  std::string_view suggest(std::string_view key, const YamlKeys& allowed) const;

 private:
  Status syntax_error(std::string_view text, const YAML::Mark& mark, const std::string& msg) const;

  const std::string source_;
  const YamlAliases* const aliases_;
};

// "'text'": how names appear in messages.
std::string in_quotes(std::string_view s);

}  // namespace factory::config
