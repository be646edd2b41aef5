// Checks shared by the tests that run the real factoryd binary (run_process.h).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "cli/run_process.h"

namespace factory::test {

// r, the result of `factoryd args`, after REQUIRE()ing that it exited 0; a failure shows the
// command line, its stdout and its stderr.
inline ProcessResult require_ok(const std::vector<std::string>& args, ProcessResult r) {
  std::string cmd;
  for (const auto& a : args) cmd += a + " ";
  INFO("factoryd " << cmd << "\nstdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  return r;
}

// r's stdout as JSON; a failure to parse shows it.
inline boost::json::value stdout_json(const ProcessResult& r) {
  INFO("stdout: " << r.out);
  return boost::json::parse(r.out);
}

}  // namespace factory::test
