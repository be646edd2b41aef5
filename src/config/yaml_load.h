// load_all_yaml(): YAML::LoadAll without yaml-cpp 0.7's endless loop.
//
// yaml-cpp 0.7.0 (Debian 12) loops forever in LoadAll, allocating a null document per turn
// until memory runs out, on text its parser accepts without consuming a token: a stray ','
// (",", "a: 1\n,"). Upstream: jbeder/yaml-cpp issue 1040, fixed by pull request 1319 (2024),
// after 0.7.0. Found by tests/fuzz/yaml_config_fuzz.cpp. A first pass walks the documents with
// a parser that only records where each starts, and refuses the text when a document starts
// where the previous one did (no progress); only then is LoadAll called, on text that the
// same deterministic parser has just read to its end.
//
// Header-only, used by YamlReader::load/load_all (yaml_reader.h), through which every config
// parser loads YAML. Thread-safety: a pure
// function. Errors: throws YAML::Exception (with a mark) like LoadAll, including a
// YAML::ParserException "unexpected text ..." for the loop above.
#pragma once

#include <sstream>
#include <string>
#include <vector>

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

namespace factory::config {

namespace internal {

// Remembers where each document starts; ignores everything else.
class DocumentStarts final : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> starts;
  void OnDocumentStart(const YAML::Mark& mark) override { starts.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

}  // namespace internal

inline std::vector<YAML::Node> load_all_yaml(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  internal::DocumentStarts handler;
  while (parser.HandleNextDocument(handler)) {
    size_t n = handler.starts.size();
    if (n >= 2 && handler.starts[n - 1].pos <= handler.starts[n - 2].pos) {
      throw YAML::ParserException(handler.starts[n - 1],
                                  "unexpected text here (a ',' outside [] or {}?)");
    }
  }
  return YAML::LoadAll(text);
}

}  // namespace factory::config
