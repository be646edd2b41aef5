// The main() of a replay executable (tests/fuzz/CMakeLists.txt): runs a fuzz target's
// LLVMFuzzerTestOneInput once on every file given, or under every directory given, in name
// order. A harness that finds a broken property aborts, and the sanitizers of the build (asan,
// tsan) report what libFuzzer would; so `ctest -L fuzz` replays the corpora in every build.
//
// Exit status: 0 when every input ran, 1 on a missing path or an empty corpus (a typo in a
// path must not pass as "nothing failed").
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);
  std::vector<fs::path> inputs;
  for (int i = 1; i < argc; ++i) {
    fs::path p(argv[i]);
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      for (const auto& e : fs::recursive_directory_iterator(p)) {
        if (e.is_regular_file()) inputs.push_back(e.path());
      }
    } else if (fs::is_regular_file(p, ec)) {
      inputs.push_back(p);
    } else {
      std::fprintf(stderr, "replay: %s is neither a file nor a directory\n", argv[i]);
      return 1;
    }
  }
  if (inputs.empty()) {
    std::fprintf(stderr, "replay: no inputs; usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
    return 1;
  }
  std::sort(inputs.begin(), inputs.end());
  auto start = std::chrono::steady_clock::now();
  for (const fs::path& p : inputs) {
    std::ifstream in(p, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // A crash report names the input that caused it.
    std::fprintf(stderr, "replay: %s (%zu bytes)\n", p.c_str(), bytes.size());
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  start)
                .count();
  std::printf("replay: %zu inputs in %lld ms\n", inputs.size(), static_cast<long long>(ms));
  return 0;
}
