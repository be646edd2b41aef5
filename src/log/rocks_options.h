// The RocksDB options the embedded log runs with, shared with the benchmark's raw-RocksDB
// baseline so that both measure the same engine configuration.
#pragma once

#include <rocksdb/options.h>

#include "factory/log.h"

namespace factory::log {

rocksdb::Options make_rocksdb_options(const LogOptions& options);

}  // namespace factory::log
