// factoryd: a single-binary pipeline engine. The command line lives in
// cli/app.cpp.
#include <cstdio>
#include <exception>

#include "cli/app.h"

int main(int argc, char** argv) {
  try {
    return factory::cli::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "factoryd: error: %s; this is a bug, please report it\n", e.what());
    return 1;
  }
}
