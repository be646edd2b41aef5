#include "deploy/releases.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <sstream>

#include <boost/json.hpp>

#include "common/workspace.h"
#include "exec/subprocess.h"

namespace factory::stages::deploy {
namespace fs = std::filesystem;
namespace json = boost::json;
namespace {

constexpr char kMarker[] = ".factory-release.json";
constexpr char kRecords[] = ".deployments";

std::atomic<uint64_t> g_temp_counter{0};

std::string temp_suffix() {
  return std::to_string(::getpid()) + "-" + std::to_string(++g_temp_counter);
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

Status write_atomically(const fs::path& p, std::string_view text) {
  fs::path tmp = p;
  tmp += ".tmp-" + temp_suffix();
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.flush();
    if (!out) return Status::io_error("cannot write " + tmp.string());
  }
  std::error_code ec;
  fs::rename(tmp, p, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return Status::io_error("cannot rename into " + p.string() + ": " + ec.message());
  }
  return Status();
}

// The install order in a release's marker ("seq"); 0 when unreadable.
int64_t install_seq(const fs::path& release_dir) {
  boost::system::error_code ec;
  json::value v = json::parse(read_file(release_dir / kMarker), ec);
  if (ec || !v.is_object()) return 0;
  const json::value* t = v.as_object().if_contains("seq");
  return t && t->is_int64() ? t->as_int64() : 0;
}

}  // namespace

std::string release_id(std::string_view ticket, std::string_view commit) {
  std::string out;
  for (char c : ticket) {
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
    if (ok) {
      out += c;
    } else if (!out.empty() && out.back() != '-') {
      out += '-';
    }
  }
  while (!out.empty() && (out.back() == '-' || out.back() == '.')) out.pop_back();
  while (!out.empty() && (out.front() == '.' || out.front() == '-' || out.front() == '_')) {
    out.erase(out.begin());
  }
  if (out.size() > 100) out.resize(100);
  if (out.empty()) out = "release";
  return out + "-" + std::string(commit.substr(0, 12));
}

fs::path project_dir(const fs::path& data_dir, std::string_view project) {
  return releases_root(data_dir) / std::string(project);
}

std::string current_release(const fs::path& project_dir) {
  std::error_code ec;
  fs::path target = fs::read_symlink(project_dir / "current", ec);
  if (ec) return "";
  return target.filename().string();
}

Status switch_current(const fs::path& dir, std::string_view release) {
  std::error_code ec;
  fs::path link = dir / "current";
  if (release.empty()) {
    fs::remove(link, ec);
    if (ec) return Status::io_error("cannot remove " + link.string() + ": " + ec.message());
    return Status();
  }
  fs::path tmp = dir / (".current-" + temp_suffix());
  fs::create_symlink(fs::path(std::string(release)), tmp, ec);
  if (ec) return Status::io_error("cannot create " + tmp.string() + ": " + ec.message());
  fs::rename(tmp, link, ec);  // rename(2) replaces the old link atomically
  if (ec) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    return Status::io_error("cannot switch " + link.string() + ": " + ec.message());
  }
  return Status();
}

Result<bool> install_release(const fs::path& repo, std::string_view commit, const fs::path& dir,
                             std::string_view release, std::string_view marker_json) {
  std::error_code ec;
  fs::path target = dir / std::string(release);
  if (fs::is_directory(target, ec)) return false;
  fs::create_directories(dir, ec);
  if (ec) return Status::io_error("cannot create " + dir.string() + ": " + ec.message());
  // Stale temp installs of this release (a crash mid-install) go first.
  std::string prefix = ".tmp-" + std::string(release) + "-";
  std::vector<fs::path> stale;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().filename().string().starts_with(prefix)) stale.push_back(e.path());
  }
  for (const fs::path& s : stale) fs::remove_all(s, ec);
  fs::path tmp = dir / (prefix + temp_suffix());
  fs::create_directories(tmp, ec);
  if (ec) return Status::io_error("cannot create " + tmp.string() + ": " + ec.message());
  auto cleanup = [&] {
    std::error_code ignored;
    fs::remove_all(tmp, ignored);
  };
  fs::path tar = tmp / ".archive.tar";
  auto archived = git(repo, {"archive", "--format=tar", "-o", tar.string(), std::string(commit)});
  if (!archived.ok()) {
    cleanup();
    if (archived.status().message().find("not a valid object") != std::string::npos ||
        archived.status().message().find("not a tree object") != std::string::npos) {
      return Status::not_found("commit " + std::string(commit) + " is not in " + repo.string());
    }
    return archived.status();
  }
  // After the archive, which tells a missing commit apart. A symlink in the tree would be unpacked
  // as one (a release reading a host file).
  if (Status s = check_regular_tree(repo, commit); !s.ok()) {
    cleanup();
    return s;
  }
  SubprocessOptions opts{.deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5)};
  auto untar = run_subprocess({"tar", "-xf", tar.string(), "-C", tmp.string()}, "", opts);
  if (!untar.ok() || untar->outcome != SubprocessResult::Outcome::kExited ||
      untar->exit_code != 0) {
    cleanup();
    return Status::io_error("unpacking " + std::string(commit) + " into " + tmp.string() +
                            " failed" + (untar.ok() ? ": " + untar->err : ""));
  }
  fs::remove(tar, ec);
  FACTORY_RETURN_IF_ERROR(write_atomically(tmp / kMarker, marker_json));
  fs::rename(tmp, target, ec);
  if (ec) {
    cleanup();
    return Status::io_error("cannot move the release into " + target.string() + ": " +
                            ec.message());
  }
  return true;
}

std::vector<std::string> list_releases(const fs::path& dir) {
  std::vector<std::pair<int64_t, std::string>> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (name.starts_with(".") || name == "current" || e.is_symlink(ec) || !e.is_directory(ec))
      continue;
    found.emplace_back(install_seq(e.path()), name);
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (auto& [ms, name] : found) out.push_back(std::move(name));
  return out;
}

int64_t next_release_seq(const fs::path& dir) {
  int64_t max = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (!e.path().filename().string().starts_with(".") && !e.is_symlink(ec) && e.is_directory(ec))
      max = std::max(max, install_seq(e.path()));
  }
  return max + 1;
}

std::vector<std::string> prune_releases(const fs::path& dir, int keep, std::string_view current,
                                        std::string_view previous) {
  std::vector<std::string> all = list_releases(dir);
  std::vector<std::string> removed;
  size_t excess = all.size() > static_cast<size_t>(keep) ? all.size() - keep : 0;
  for (const std::string& r : all) {
    if (removed.size() >= excess) break;
    if (r == current || r == previous) continue;
    std::error_code ec;
    fs::remove_all(dir / r, ec);
    if (!ec) removed.push_back(r);
  }
  return removed;
}

std::optional<std::string> read_record(const fs::path& dir, std::string_view name) {
  fs::path p = dir / kRecords / (std::string(name) + ".json");
  std::error_code ec;
  if (!fs::is_regular_file(p, ec)) return std::nullopt;
  return read_file(p);
}

Status write_record(const fs::path& dir, std::string_view name, std::string_view text) {
  std::error_code ec;
  fs::create_directories(dir / kRecords, ec);
  if (ec) return Status::io_error("cannot create " + (dir / kRecords).string());
  return write_atomically(dir / kRecords / (std::string(name) + ".json"), text);
}

void remove_record(const fs::path& dir, std::string_view name) {
  std::error_code ec;
  fs::remove(dir / kRecords / (std::string(name) + ".json"), ec);
}

}  // namespace factory::stages::deploy
