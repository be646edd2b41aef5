// Topic files: the YAML that `factoryd topics apply -f` reads.
//
// Two forms, mixable across YAML documents (`---`):
//   1. Strimzi KafkaTopic manifests, verbatim (apiVersion kafka.strimzi.io/*, kind: KafkaTopic,
//      metadata.name, spec.partitions, spec.replicas, spec.config.{retention.ms,...}).
//      `replicas` is accepted and reported as ignored on a single node.
//   2. The short form:
//        topics:
//          - name: jira-events
//            partitions: 3
//            config: {retention.ms: 604800000}
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "factory/status.h"
#include "factory/topic.h"

namespace factory::log {

struct TopicFileEntry {
  TopicSpec spec;
  int line = 0;                    // 1-based line where the topic is defined
  std::vector<std::string> notes;  // e.g. "replicas: 3 ignored: factoryd runs on one node"
};

// Parses YAML text. `source` names it in errors. Errors are InvalidArgument with the message
// "SOURCE:LINE:COLUMN: what is wrong; how to fix it" (e.g. a missing name, a non-integer
// partition count, an unknown config key, a duplicate topic, a YAML syntax error).
Result<std::vector<TopicFileEntry>> parse_topic_yaml(std::string_view text,
                                                     std::string_view source);
// Reads and parses a file; NotFound/IOError name the path when it cannot be read.
Result<std::vector<TopicFileEntry>> parse_topic_file(const std::string& path);

}  // namespace factory::log
