// FACTORY_CHECK: a broken invariant logs where and aborts (leveldb asserts its invariants).
#pragma once

#include <cstdio>
#include <cstdlib>

#define FACTORY_CHECK(cond)                                                                 \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      std::fprintf(stderr, "factoryd: invariant failed at %s:%d: %s\n", __FILE__, __LINE__, \
                   #cond);                                                                  \
      std::abort();                                                                         \
    }                                                                                       \
  } while (0)
