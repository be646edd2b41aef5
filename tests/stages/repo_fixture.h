// RepoFixture: a data dir with a factory repository for one project, for the gate and deploy
// tests: seeded from a small project folder (factory-project.yaml plus files), with commits made
// the way codegen makes them (workspace.h commit_files on feature/<ticket>).
//
// Example:
//   factory::test::RepoFixture f("demo", {{"app/__init__.py", ""}}, "[true]");
//   std::string c1 = f.commit("T-1", {{"app/x.py", "X = 1\n"}});
//
// Not thread-safe: one test thread.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "common/workspace.h"
#include "test_util.h"

namespace factory::test {

class RepoFixture {
 public:
  // `health` is the YAML flow list for factory-project.yaml's health_command ("" for none).
  RepoFixture(std::string project, std::vector<std::pair<std::string, std::string>> seed_files,
              const std::string& health = "")
      : project_(std::move(project)) {
    std::filesystem::path seed = dir_.path() / "seed";
    std::string yaml = "name: " + project_ + "\ntest_command: [\"true\"]\n";
    if (!health.empty()) yaml += "health_command: " + health + "\n";
    seed_files.emplace_back("factory-project.yaml", yaml);
    for (const auto& [path, content] : seed_files) write(seed / path, content);
    auto repo = stages::ensure_repo(data_dir(), project_, seed);
    REQUIRE_OK(repo);
    repo_ = *repo;
  }

  std::filesystem::path data_dir() const { return dir_.path() / "data"; }
  std::filesystem::path scratch_dir() const { return dir_.path() / "scratch"; }
  const std::string& repo() const { return repo_; }
  const std::string& project() const { return project_; }

  // Commits `files` on feature/<ticket>; returns the commit hash.
  std::string commit(const std::string& ticket,
                     const std::vector<std::pair<std::string, std::string>>& files) {
    stages::CommitRequest req;
    req.branch = stages::feature_branch(ticket);
    for (const auto& [path, content] : files) req.files.push_back({path, content});
    req.message = ticket + ": change " + std::to_string(++commits_);
    stages::RepoLock lock = stages::lock_repo(repo_);
    auto c = stages::commit_files(repo_, req, lock);
    REQUIRE_OK(c);
    return *c;
  }

  static void write(const std::filesystem::path& p, const std::string& content) {
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
  }

 private:
  TempDir dir_;
  std::string project_;
  std::string repo_;
  int commits_ = 0;
};

}  // namespace factory::test
