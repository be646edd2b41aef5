// JUnit XML for `factoryd dags test --junit FILE`: the report CI systems read (GitHub Actions
// report steps, GitLab's artifacts:reports:junit, Jenkins' junit step).
//
// One <testsuite> per DAG run inside <testsuites>, one <testcase> per task, by task state:
// clang-format off
//   <testsuites name="factoryd dags test" tests="4" failures="1" errors="1" skipped="1" time="2.500">
//     <testsuite name="DAG" tests="4" ... timestamp="2026-12-08T01:53:19" hostname="...">
//       <properties> run_id, run_state, conf </properties>
//       <testcase classname="DAG" name="TASK" time="0.101"/>                  success
//       <testcase ...><failure message="ERROR" type="failed">ERROR&#10;stage S, try N</failure>
//                                                                             failed
//       <testcase ...><skipped message="upstream_failed"/></testcase>         skipped, upstream_failed
//       <testcase ...><error message="did not finish: running" type="running"/></testcase>
//                                                                             any other state
//     </testsuite>
//   </testsuites>
// clang-format on
//
// A task still unfinished when the run ended or timed out (running, queued, awaiting_approval,
// ...) is an <error>: the test did not reach a verdict. A task's output (XCom) is its
// <system-out>.
//
// Everything from outside (task errors, outputs, the conf) is escaped with xml_escape(): the
// five markup characters become entities, characters XML 1.0 forbids are dropped and invalid
// UTF-8 becomes U+FFFD, so a hostile error message cannot break or forge the document.
//
// Pure functions, except write_file_atomically; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "factory/status.h"
#include "scheduler/scheduler.h"

namespace factory::cli {

// `s` as XML 1.0 character data or attribute value text: & < > " ' as entities; tab, newline
// and carriage return as character references (so attribute values keep them; a parser
// normalises literal ones to spaces); the other characters below U+0020, U+FFFE and U+FFFF
// dropped; each byte of invalid UTF-8 as U+FFFD.
std::string xml_escape(std::string_view s);

// The JUnit document for a finished (or timed out) run of `dag_id`. `conf` is the run's conf
// as given; `hostname` goes on the testsuite ("" leaves the attribute out); `now_ms` ends the
// times of a run or task that has not ended (a timed-out test).
std::string junit_report(const scheduler::RunView& run, std::string_view dag_id,
                         std::string_view conf, std::string_view hostname, int64_t now_ms);

// Writes `content` to `path` through a temporary file in the same directory (fsynced, then
// renamed over `path`), so a reader never sees a partial report. IOError naming the file.
Status write_file_atomically(const std::string& path, std::string_view content);

}  // namespace factory::cli
