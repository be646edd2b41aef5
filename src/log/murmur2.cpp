// Kafka's default key partitioner, bit-exact with the Java client
// (org.apache.kafka.common.utils.Utils.murmur2 and BuiltInPartitioner.partitionForKey), so a key
// lands on the same partition here as it would on a Kafka cluster with the same partition count.
// That keeps per-key ordering intact if a deployment later moves to real Kafka.
#include "base/check.h"
#include "factory/log.h"

namespace factory {

uint32_t murmur2(std::string_view data) {
  // Java computes in signed 32-bit ints; unsigned arithmetic gives the same bits without
  // signed-overflow UB, and Java's >>> is a logical shift, which is what >> does on uint32_t.
  constexpr uint32_t kSeed = 0x9747b28c;
  constexpr uint32_t kM = 0x5bd1e995;
  constexpr int kR = 24;

  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const auto length = static_cast<uint32_t>(data.size());
  uint32_t h = kSeed ^ length;

  const uint32_t blocks = length / 4;
  for (uint32_t i = 0; i < blocks; ++i) {
    const unsigned char* b = p + 4 * i;  // little-endian, regardless of the host's byte order
    uint32_t k =
        uint32_t{b[0]} | (uint32_t{b[1]} << 8) | (uint32_t{b[2]} << 16) | (uint32_t{b[3]} << 24);
    k *= kM;
    k ^= k >> kR;
    k *= kM;
    h *= kM;
    h ^= k;
  }

  // The tail, with Java's switch fall-through: 3 mixes bytes 2, 1, 0; 2 mixes 1, 0; 1 mixes 0.
  const unsigned char* tail = p + (length & ~uint32_t{3});
  switch (length % 4) {
    case 3:
      h ^= uint32_t{tail[2]} << 16;
      [[fallthrough]];
    case 2:
      h ^= uint32_t{tail[1]} << 8;
      [[fallthrough]];
    case 1:
      h ^= uint32_t{tail[0]};
      h *= kM;
  }

  h ^= h >> 13;
  h *= kM;
  h ^= h >> 15;
  return h;
}

int32_t partition_for_key(std::string_view key, int32_t partitions) {
  // Callers pass a topic's partition count, which validate_topic_spec keeps in 1..10000.
  FACTORY_CHECK(partitions > 0);
  // Kafka's Utils.toPositive: clear the sign bit (not abs(), which maps INT_MIN to itself).
  const auto positive = static_cast<int32_t>(murmur2(key) & 0x7fffffff);
  return positive % partitions;
}

}  // namespace factory
