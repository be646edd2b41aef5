// Talking to a running daemon. While `factoryd serve` runs it holds the data dir's lock, so
// the CLI's commands go through its HTTP API instead of opening the log, with the same output
// and exit codes.
//
// Which daemon: --server URL (env FACTORY_SERVER) when given; else the daemon that holds
// <data-dir>: serve writes <data-dir>/daemon.json ({"url", "pid"}) once it is ready and
// removes it on exit, and a file whose pid is gone is ignored. The bearer token is --token
// (env FACTORY_TOKEN).
//
// Thread-safety: the CLI is single-threaded.
#pragma once

#include <functional>
#include <memory>
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

// The daemon file serve writes and removes.
std::string daemon_file(const std::string& data_dir);
Status write_daemon_file(const std::string& data_dir, std::string_view url);
void remove_daemon_file(const std::string& data_dir);

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
