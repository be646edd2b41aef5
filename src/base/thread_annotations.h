// Clang thread-safety annotations (leveldb port/thread_annotations.h); no-ops elsewhere.
#pragma once

#if defined(__clang__)
#define FACTORY_TSA(x) __attribute__((x))
#else
#define FACTORY_TSA(x)
#endif

#define CAPABILITY(x) FACTORY_TSA(capability(x))
#define SCOPED_CAPABILITY FACTORY_TSA(scoped_lockable)
#define GUARDED_BY(x) FACTORY_TSA(guarded_by(x))
#define PT_GUARDED_BY(x) FACTORY_TSA(pt_guarded_by(x))
#define REQUIRES(...) FACTORY_TSA(requires_capability(__VA_ARGS__))
#define EXCLUDES(...) FACTORY_TSA(locks_excluded(__VA_ARGS__))
#define ACQUIRE(...) FACTORY_TSA(acquire_capability(__VA_ARGS__))
#define RELEASE(...) FACTORY_TSA(release_capability(__VA_ARGS__))
#define NO_THREAD_SAFETY_ANALYSIS FACTORY_TSA(no_thread_safety_analysis)
