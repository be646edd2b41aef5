#include "log/record_codec.h"

#include "base/coding.h"

namespace factory::log {

using base::put_fixed32_be;
using base::put_fixed64_be;

std::string partition_prefix(uint32_t topic_id, int32_t partition) {
  std::string k;
  k.reserve(kRecordKeySize);
  put_fixed32_be(&k, topic_id);
  put_fixed32_be(&k, static_cast<uint32_t>(partition));
  return k;
}

std::string record_key(uint32_t topic_id, int32_t partition, int64_t offset) {
  std::string k = partition_prefix(topic_id, partition);
  put_fixed64_be(&k, static_cast<uint64_t>(offset));
  return k;
}

void encode_record_key(uint32_t topic_id, int32_t partition, int64_t offset, char* dst) {
  auto put = [&dst](uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) *dst++ = static_cast<char>(v >> (8 * i));
  };
  put(topic_id, 4);
  put(static_cast<uint32_t>(partition), 4);
  put(static_cast<uint64_t>(offset), 8);
}

int64_t record_key_offset(std::string_view key) {
  return static_cast<int64_t>(base::decode_fixed64_be(key.data() + 8));
}

uint64_t bias_timestamp(int64_t ts) { return static_cast<uint64_t>(ts) ^ (uint64_t{1} << 63); }
int64_t unbias_timestamp(uint64_t v) { return static_cast<int64_t>(v ^ (uint64_t{1} << 63)); }

std::string time_index_key(uint32_t topic_id, int32_t partition, int64_t ts, int64_t offset) {
  std::string k = partition_prefix(topic_id, partition);
  put_fixed64_be(&k, bias_timestamp(ts));
  put_fixed64_be(&k, static_cast<uint64_t>(offset));
  return k;
}

bool parse_time_index_key(std::string_view key, int64_t* ts, int64_t* offset) {
  if (key.size() != 24) return false;
  *ts = unbias_timestamp(base::decode_fixed64_be(key.data() + 8));
  *offset = static_cast<int64_t>(base::decode_fixed64_be(key.data() + 16));
  return true;
}

std::string topic_meta_key(std::string_view name) { return "T" + std::string(name); }

std::string partition_meta_key(uint32_t id, int32_t p) {
  std::string k = "P";
  put_fixed32_be(&k, id);
  put_fixed32_be(&k, static_cast<uint32_t>(p));
  return k;
}

std::string group_meta_key(std::string_view group, std::string_view topic, int32_t p) {
  std::string k = "G";
  k += group;
  k.push_back('\0');
  k += topic;
  k.push_back('\0');
  put_fixed32_be(&k, static_cast<uint32_t>(p));
  return k;
}

std::string producer_meta_key(uint32_t topic_id, std::string_view producer) {
  std::string k = "Q";
  put_fixed32_be(&k, topic_id);
  k += producer;
  return k;
}

std::string dedupe_key(uint32_t topic_id, std::string_view key) {
  std::string k;
  put_fixed32_be(&k, topic_id);
  k.push_back('K');
  k += key;
  return k;
}

std::string dedupe_position_key(uint32_t topic_id, int32_t partition, int64_t offset) {
  std::string k;
  put_fixed32_be(&k, topic_id);
  k.push_back('P');
  put_fixed32_be(&k, static_cast<uint32_t>(partition));
  put_fixed64_be(&k, static_cast<uint64_t>(offset));
  return k;
}

std::string encode_position(int32_t partition, int64_t offset) {
  std::string v;
  put_fixed32_be(&v, static_cast<uint32_t>(partition));
  put_fixed64_be(&v, static_cast<uint64_t>(offset));
  return v;
}

std::string encode_u64(uint64_t v) {
  std::string s;
  put_fixed64_be(&s, v);
  return s;
}

void encode_record(const ProducerRecord& r, int64_t timestamp_ms, std::string* dst) {
  dst->push_back(static_cast<char>(kRecordFormat));
  base::put_varsint64(dst, timestamp_ms);
  uint8_t flags = (r.key ? 1 : 0) | (r.value ? 2 : 0);
  dst->push_back(static_cast<char>(flags));
  if (r.key) base::put_length_prefixed(dst, *r.key);
  if (r.value) base::put_length_prefixed(dst, *r.value);
  base::put_varint64(dst, r.headers.size());
  for (const Header& h : r.headers) {
    base::put_length_prefixed(dst, h.key);
    base::put_length_prefixed(dst, h.value);
  }
}

bool decode_record_timestamp(std::string_view bytes, int64_t* ts) {
  if (bytes.empty() || static_cast<uint8_t>(bytes[0]) != kRecordFormat) return false;
  bytes.remove_prefix(1);
  return base::get_varsint64(&bytes, ts);
}

namespace {

void assign(std::optional<std::string>* dst, std::string_view s) {
  if (*dst) {
    (*dst)->assign(s);
  } else {
    dst->emplace(s);
  }
}

}  // namespace

Status decode_record(std::string_view in, Record* out) {
  auto bad = [](const char* what) {
    return Status::corruption(std::string("bad record encoding: ") + what);
  };
  if (in.empty() || static_cast<uint8_t>(in[0]) != kRecordFormat) return bad("unknown format byte");
  in.remove_prefix(1);
  if (!base::get_varsint64(&in, &out->timestamp_ms)) return bad("timestamp");
  if (in.empty()) return bad("flags");
  auto flags = static_cast<uint8_t>(in[0]);
  in.remove_prefix(1);
  // Overwrites *out in place: strings already in *out keep their capacity (a reused record
  // decodes without allocating once its buffers fit).
  std::string_view s;
  if (flags & 1) {
    if (!base::get_length_prefixed(&in, &s)) return bad("key");
    assign(&out->key, s);
  } else {
    out->key.reset();
  }
  if (flags & 2) {
    if (!base::get_length_prefixed(&in, &s)) return bad("value");
    assign(&out->value, s);
  } else {
    out->value.reset();
  }
  uint64_t n;
  if (!base::get_varint64(&in, &n) || n > in.size()) return bad("header count");
  out->headers.resize(n);
  for (Header& h : out->headers) {
    std::string_view k, v;
    if (!base::get_length_prefixed(&in, &k) || !base::get_length_prefixed(&in, &v)) {
      return bad("header");
    }
    h.key.assign(k);
    h.value.assign(v);
  }
  if (!in.empty()) return bad("trailing bytes");
  return Status();
}

}  // namespace factory::log
