// murmur2 and partition_for_key must match the Java Kafka client bit for bit, so every expected
// value here comes from Java's output, not from this implementation.
#include <cstdint>
#include <string>
#include <string_view>

#include <catch2/catch.hpp>

#include "factory/log.h"

namespace factory {
namespace {

struct HashCase {
  std::string_view key;
  int32_t java_hash;  // what Java's Utils.murmur2 returns (a signed int)
};

int32_t as_java_int(uint32_t h) { return static_cast<int32_t>(h); }

TEST_CASE("murmur2 matches Kafka's UtilsTest vectors", "[log]") {
  // clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java, testMurmur2.
  const HashCase cases[] = {
      {"21", -973932308},
      {"foobar", -790332482},
      {"a-little-bit-long-string", -985981536},
      {"a-little-bit-longer-string", -1486304829},
      {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
      {"abc", 479470107},
  };
  for (const HashCase& c : cases) {
    INFO("key: " << c.key);
    CHECK(as_java_int(murmur2(c.key)) == c.java_hash);
  }
}

TEST_CASE("murmur2 matches librdkafka's Java-verified vectors for every tail length", "[log]") {
  // librdkafka src/rdmurmur2.c unittest_murmur2 (java_murmur2_results): lengths 0..3 mod 4, so
  // each branch of the tail switch and its fall-through is exercised.
  struct UnsignedCase {
    std::string_view key;
    uint32_t hash;
  };
  const UnsignedCase cases[] = {
      {"kafka", 0xd067cf64},
      {"giberish123456789", 0x8f552b0c},
      {"1234", 0x9fc97b14},
      {"234", 0xe7c009ca},
      {"34", 0x873930da},
      {"4", 0x5a4b5ca1},
      {"PreAmbleWillBeRemoved,ThePrePartThatIs", 0x78424f1c},
      {"reAmbleWillBeRemoved,ThePrePartThatIs", 0x4a62b377},
      {"eAmbleWillBeRemoved,ThePrePartThatIs", 0xe0e4e09e},
      {"AmbleWillBeRemoved,ThePrePartThatIs", 0x62b8b43f},
      {"", 0x106e08d9},
  };
  for (const UnsignedCase& c : cases) {
    INFO("key: '" << c.key << "' (" << c.key.size() << " bytes)");
    CHECK(murmur2(c.key) == c.hash);
  }
}

TEST_CASE("murmur2 hashes bytes above 0x7f and NUL bytes as Java does", "[log]") {
  // Java masks each byte with 0xff; a sign-extended char would change these. "\xc3\xa9t\xc3\xa9"
  // is "été" in UTF-8: high bytes both in the 4-byte block and in the tail. Hash and partitions
  // recorded from the Java client (kafka-clients 3.9.1) by a third-party port's test suite.
  const std::string_view ete = "\xc3\xa9t\xc3\xa9";
  CHECK(as_java_int(murmur2(ete)) == -2101193575);
  CHECK(partition_for_key(ete, 6) == 1);
  CHECK(partition_for_key(ete, 3) == 1);
  // kafka-python's Java-compatibility test: a NUL byte then a space, 1000 partitions -> 742.
  CHECK(partition_for_key(std::string_view("\x00 ", 2), 1000) == 742);
}

TEST_CASE("partition_for_key clears the sign bit rather than taking abs()", "[log]") {
  // murmur2("21") is negative in Java: -973932308 = 0xc5f2f8ec. toPositive keeps the low 31
  // bits, 0x45f2f8ec = 1173551340; abs() would give 973932308 and a different partition.
  REQUIRE(as_java_int(murmur2("21")) == -973932308);
  CHECK((murmur2("21") & 0x7fffffff) == 1173551340u);
  CHECK(partition_for_key("21", 12) == 1173551340 % 12);
  CHECK(partition_for_key("21", 12) != 973932308 % 12);

  // A positive hash is used as is: 479470107 % 1000 = 107.
  CHECK(partition_for_key("abc", 1000) == 107);
}

TEST_CASE("partition_for_key matches the Java producer's partitions", "[log]") {
  // Recorded from Kafka's Java partitioner (toPositive(murmur2(key)) % n) by kafka-python's
  // test_murmur2_java_compatibility (1000 partitions) and a Spock test against
  // BuiltInPartitioner.partitionForKey (10 partitions).
  struct PartitionCase {
    std::string_view key;
    int32_t partitions;
    int32_t partition;
  };
  const PartitionCase cases[] = {
      {"", 1000, 681},
      {"a", 1000, 524},
      {"ab", 1000, 434},
      {"abc", 1000, 107},
      {"123456789", 1000, 566},
      {"a", 10, 4},
      {"b", 10, 6},
      {"c", 10, 4},
      {"d", 10, 3},
      {"e", 10, 4},
  };
  // Same source as the "été" case above: 6 and 3 partitions.
  const PartitionCase more[] = {
      {"acct_000000001", 6, 0},
      {"acct_000000001", 3, 0},
      {"PreAmbleWillBeRemoved,ThePrePartThatIsa4ByteThing", 6, 4},
      {"PreAmbleWillBeRemoved,ThePrePartThatIsa4ByteThing", 3, 1},
      {"kafka", 6, 4},
      {"kafka", 3, 1},
      {"", 6, 3},
      {"", 3, 0},
  };
  for (const PartitionCase& c : more) {
    INFO("key: '" << c.key << "' partitions: " << c.partitions);
    CHECK(partition_for_key(c.key, c.partitions) == c.partition);
  }
  for (const PartitionCase& c : cases) {
    INFO("key: '" << c.key << "' partitions: " << c.partitions);
    CHECK(partition_for_key(c.key, c.partitions) == c.partition);
  }
}

TEST_CASE("partition_for_key stays in range and is stable", "[log]") {
  for (int32_t partitions : {1, 3, 12, 24, 10000}) {
    for (int i = 0; i < 500; ++i) {
      std::string key = "PROJ-" + std::to_string(i);
      int32_t p = partition_for_key(key, partitions);
      REQUIRE(p >= 0);
      REQUIRE(p < partitions);
      REQUIRE(p == partition_for_key(key, partitions));
    }
  }
  CHECK(partition_for_key("anything", 1) == 0);
}

}  // namespace
}  // namespace factory
