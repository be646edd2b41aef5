// Talking to the process that holds a data dir. One process at a time opens a data dir's log
// (its lock); what it records beside it tells the others how to reach it:
//
//   file                   written by                        content
//   <data-dir>/holder.json every process, once it holds the  {"pid", "command"}: named in the
//                          log (record_holder)               "held by" error of the others
//   <data-dir>/daemon.json a process serving the API, once   {"url", "pid"}: CLI commands go
//                          ready (ApiServer, serve_api.h)    through the API at url
//   <data-dir>/api.sock    `factoryd run` (serve_api.h)      the API on a unix socket (0600)
//
// A file whose pid is gone (kill -9) is ignored; the next holder removes a stale daemon.json
// and replaces a stale api.sock. Commands use the daemon that --server URL (env
// FACTORY_SERVER) names, else the one daemon.json names; the bearer token is --token (env
// FACTORY_TOKEN; none on a unix socket).
//
// Thread-safety: the CLI is single-threaded.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "cli/common.h"
#include "factory/status.h"
#include "http/client.h"

namespace factory::cli {

// The daemon to talk to, or nullptr when the command should open the data dir itself.
// On a bad --server URL prints the error and sets *exit_code (else leaves it alone).
std::unique_ptr<http::Client> daemon_client(const CommonOptions& common, int* exit_code);

// The daemon file a process serving the API writes (ApiServer only) and removes.
std::string daemon_file(const std::string& data_dir);
Status write_daemon_file(const std::string& data_dir, std::string_view url);
void remove_daemon_file(const std::string& data_dir);
// The URL in daemon.json when its pid is alive, else "".
std::string live_daemon_url(const std::string& data_dir);

// Records this process as the holder of `data_dir` (holder.json: pid and command line), to be
// called once the log is open; removes a daemon.json a dead holder left. The file is removed
// at exit. Failures only lose the record (a warning).
void record_holder(const std::string& data_dir);

struct Holder {
  int64_t pid = 0;
  std::string command;  // "factoryd consume t -f"
};
// The holder recorded in holder.json when its pid is alive (not this process), else nullopt.
std::optional<Holder> live_holder(const std::string& data_dir);

// Reports an answer refusing the input `field` (a 4xx whose error details name it) the way the
// local command reports the same Status (http::status_from_error: the daemon's code and
// message); returns the exit code.
using InvalidInputReport = std::function<int(std::string_view field, const Status& s)>;

// One API call for a CLI command. On success (2xx) returns the parsed JSON body (null for an
// empty body). Otherwise prints the error the way the local command would —
// "factoryd: error: <message>" from the API's {"error":{...}} body, or how to reach the daemon
// when it cannot be reached — and returns nullopt with *exit_code set to 1. A command checks
// its arguments before calling, as it does before opening the log, so usage errors are the
// same in both modes; input only the daemon can judge (a run's conf against the DAG's params
// schema, a run id already taken) comes back as a 4xx naming the field, which `on_invalid`
// reports when given.
std::optional<boost::json::value> call_daemon(http::Client* client, std::string_view method,
                                              std::string_view target, std::string_view body,
                                              int* exit_code,
                                              const InvalidInputReport& on_invalid = {});

}  // namespace factory::cli
