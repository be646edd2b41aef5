// Releases: the deploy stage's local target on disk. One directory per project under
// <data_dir>/factory/releases/, one release directory per deployed commit, a `current` symlink
// naming the live one, and small JSON records that make a deploy resumable after a crash and
// idempotent on redelivery.
//
//   releases/<project>/
//     <release>/                  git archive of the commit, plus .factory-release.json
//     current -> <release>        switched atomically (symlink to a temp name, then rename)
//     .deployments/<release>.json          the outcome (the deployment emitted): written last
//     .deployments/<release>.pending.json  in progress: the previous release and, once the
//                                          canary decided, the decision
//     .tmp-<release>-<n>/         an install in progress (removed when found stale)
//
// A deploy of release R: (1) an outcome record for R exists → done, emit it again; (2) install R
// unless its directory exists (built in a temp dir, then renamed: a release directory is
// always complete); (3) write the pending record with the previous release (unless it exists:
// a resumed deploy keeps the first one); (4) switch current to R; (5) run the canary; (6) record
// the decision in the pending record, then roll back (switch current to the previous release)
// if it failed; (7) prune; (8) write the outcome record and remove the pending one.
// Each step is idempotent, so a deploy interrupted anywhere and run again ends in the same
// state, and R is installed once.
//
// Thread-safety: functions are thread-safe for different projects; a caller changing one
// project's releases holds lock_repo(project_dir) (stages/common/workspace.h) across the steps.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "factory/status.h"

namespace factory::stages::deploy {

// "<ticket>-<first 12 of commit>", the ticket reduced to [A-Za-z0-9._-] ("acme/invoices#103"
// -> "acme-invoices-103"); "release-<commit 12>" without a ticket.
std::string release_id(std::string_view ticket, std::string_view commit);

// <releases_root>/<project>.
std::filesystem::path project_dir(const std::filesystem::path& data_dir, std::string_view project);

// The release `current` names, or "" when there is no current link.
std::string current_release(const std::filesystem::path& project_dir);

// Points `current` at `release` atomically (a symlink under a temp name renamed over it); ""
// removes the link. IOError on failure.
Status switch_current(const std::filesystem::path& project_dir, std::string_view release);

// Installs `commit` of `repo` as <project_dir>/<release> (git archive, unpacked in a temp
// directory, then renamed into place) unless that directory exists. Returns true when it
// installed, false when the release was already there. Errors from git (NotFound for an unknown
// commit) and IOError.
Result<bool> install_release(const std::filesystem::path& repo, std::string_view commit,
                             const std::filesystem::path& project_dir, std::string_view release,
                             std::string_view marker_json);

// Release directories, oldest first (by the install sequence in their marker, then name).
std::vector<std::string> list_releases(const std::filesystem::path& project_dir);
// The install sequence for the next release's marker ("seq"): one more than any installed.
int64_t next_release_seq(const std::filesystem::path& project_dir);

// Removes the oldest releases beyond `keep`, never `current` nor `previous`. Returns the
// removed ones.
std::vector<std::string> prune_releases(const std::filesystem::path& project_dir, int keep,
                                        std::string_view current, std::string_view previous);

// Records under .deployments/: read (nullopt when absent), written atomically, removed.
std::optional<std::string> read_record(const std::filesystem::path& project_dir,
                                       std::string_view name);
Status write_record(const std::filesystem::path& project_dir, std::string_view name,
                    std::string_view json);
void remove_record(const std::filesystem::path& project_dir, std::string_view name);

}  // namespace factory::stages::deploy
