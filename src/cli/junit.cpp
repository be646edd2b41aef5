#include "cli/junit.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <sys/stat.h>

#include "base/clock.h"
#include "base/coding.h"

namespace factory::cli {
namespace {

// The verdict a task state is reported as.
enum class Verdict { kPassed, kFailed, kSkipped, kError };

Verdict verdict_of(std::string_view state) {
  if (state == "success") return Verdict::kPassed;
  if (state == "failed") return Verdict::kFailed;
  // upstream_failed: decided without running because an upstream failed; the failure is
  // reported on that upstream, once.
  if (state == "skipped" || state == "upstream_failed") return Verdict::kSkipped;
  return Verdict::kError;  // unfinished: queued, scheduled, running, up_for_retry, awaiting_...
}

// Seconds with millisecond precision, as JUnit's time attribute ("0.412").
std::string seconds(int64_t ms) {
  if (ms < 0) ms = 0;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld.%03lld", static_cast<long long>(ms / 1000),
                static_cast<long long>(ms % 1000));
  return buf;
}

// Start to end; to now_ms when started but not ended; 0 when never started.
int64_t span_ms(int64_t start, int64_t end, int64_t now_ms) {
  if (start <= 0) return 0;
  if (end <= 0) end = now_ms;
  return end >= start ? end - start : 0;
}

int64_t run_start_ms(const scheduler::RunView& v) {
  return v.run.started_ms > 0 ? v.run.started_ms : v.run.created_ms;
}

void attr(std::string* out, std::string_view name, std::string_view value) {
  out->append(" ").append(name).append("=\"").append(xml_escape(value)).append("\"");
}

void testcase(std::string* out, std::string_view dag_id, const scheduler::TaskView& t,
              int64_t now_ms) {
  const store::TaskRow& r = t.row;
  out->append("    <testcase");
  attr(out, "classname", dag_id);
  attr(out, "name", r.task_id);
  attr(out, "time", seconds(span_ms(r.started_ms, r.ended_ms, now_ms)));
  std::string body;
  switch (verdict_of(r.state)) {
    case Verdict::kPassed:
      break;
    case Verdict::kFailed: {
      std::string error = r.error.empty() ? "failed without an error message" : r.error;
      body += "      <failure";
      attr(&body, "message", error);
      attr(&body, "type", r.state);
      body += ">" +
              xml_escape(error + "\nstage " + t.stage + ", try " + std::to_string(r.try_number)) +
              "</failure>\n";
      break;
    }
    case Verdict::kSkipped:
      body += "      <skipped";
      attr(&body, "message", r.error.empty() ? r.state : r.state + ": " + r.error);
      body += "/>\n";
      break;
    case Verdict::kError:
      body += "      <error";
      attr(&body, "message", "did not finish: " + r.state);
      attr(&body, "type", r.state);
      body += "/>\n";
      break;
  }
  if (!r.output_json.empty()) {
    body += "      <system-out>" + xml_escape(r.output_json) + "</system-out>\n";
  }
  if (body.empty()) {
    out->append("/>\n");
  } else {
    out->append(">\n").append(body).append("    </testcase>\n");
  }
}

}  // namespace

std::string xml_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '&':
          out += "&amp;";
          break;
        case '<':
          out += "&lt;";
          break;
        case '>':
          out += "&gt;";
          break;
        case '"':
          out += "&quot;";
          break;
        case '\'':
          out += "&apos;";
          break;
        case '\t':
          out += "&#9;";
          break;
        case '\n':
          out += "&#10;";
          break;
        case '\r':
          out += "&#13;";
          break;
        default:
          if (c >= 0x20) out.push_back(static_cast<char>(c));  // else forbidden in XML 1.0
      }
      ++i;
      continue;
    }
    size_t n = base::utf8_sequence_length(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD
      ++i;
      continue;
    }
    // U+FFFE and U+FFFF (EF BF BE, EF BF BF) are not XML 1.0 characters.
    bool non_character = n == 3 && c == 0xEF && static_cast<unsigned char>(s[i + 1]) == 0xBF &&
                         static_cast<unsigned char>(s[i + 2]) >= 0xBE;
    if (!non_character) out.append(s.substr(i, n));
    i += n;
  }
  return out;
}

std::string junit_report(const scheduler::RunView& v, std::string_view dag_id,
                         std::string_view conf, std::string_view hostname, int64_t now_ms) {
  int failures = 0, errors = 0, skipped = 0;
  for (const scheduler::TaskView& t : v.tasks) {
    switch (verdict_of(t.row.state)) {
      case Verdict::kPassed:
        break;
      case Verdict::kFailed:
        ++failures;
        break;
      case Verdict::kSkipped:
        ++skipped;
        break;
      case Verdict::kError:
        ++errors;
        break;
    }
  }
  auto counts = [&](std::string* out) {
    attr(out, "tests", std::to_string(v.tasks.size()));
    attr(out, "failures", std::to_string(failures));
    attr(out, "errors", std::to_string(errors));
    attr(out, "skipped", std::to_string(skipped));
    attr(out, "time", seconds(span_ms(run_start_ms(v), v.run.ended_ms, now_ms)));
  };
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites";
  attr(&out, "name", "factoryd dags test");
  counts(&out);
  out += ">\n  <testsuite";
  attr(&out, "name", dag_id);
  counts(&out);
  int64_t start = run_start_ms(v);
  // JUnit's timestamp has no zone (ISO 8601 local form); ours is UTC.
  attr(&out, "timestamp", base::format_iso8601_utc(start).substr(0, 19));
  if (!hostname.empty()) attr(&out, "hostname", hostname);
  out += ">\n    <properties>\n";
  auto property = [&](std::string_view name, std::string_view value) {
    out += "      <property";
    attr(&out, "name", name);
    attr(&out, "value", value);
    out += "/>\n";
  };
  property("run_id", v.run.run_id);
  property("run_state", v.run.state);
  property("conf", conf.empty() ? "{}" : conf);
  out += "    </properties>\n";
  for (const scheduler::TaskView& t : v.tasks) testcase(&out, dag_id, t, now_ms);
  out += "  </testsuite>\n</testsuites>\n";
  return out;
}

Status write_file_atomically(const std::string& path, std::string_view content) {
  std::filesystem::path target(path);
  std::filesystem::path dir = target.parent_path();
  if (dir.empty()) dir = ".";
  std::string tmpl = (dir / ("." + target.filename().string() + ".XXXXXX")).string();
  int fd = ::mkstemp(tmpl.data());
  if (fd < 0) {
    return Status::io_error("cannot write " + path + ": " + std::strerror(errno));
  }
  auto fail = [&](const char* what) {
    int err = errno;
    ::close(fd);
    ::unlink(tmpl.c_str());
    return Status::io_error("cannot write " + path + ": " + what + ": " + std::strerror(err));
  };
  for (size_t done = 0; done < content.size();) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("write");
    done += static_cast<size_t>(n);
  }
  // mkstemp makes the file 0600; a report is as readable as any file the user writes.
  mode_t mask = ::umask(0);
  ::umask(mask);
  if (::fchmod(fd, 0666 & ~mask) != 0) return fail("chmod");
  if (::fsync(fd) != 0) return fail("fsync");
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(tmpl.c_str());
    return Status::io_error("cannot write " + path + ": close: " + std::strerror(err));
  }
  if (::rename(tmpl.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmpl.c_str());
    return Status::io_error("cannot write " + path + ": " + std::strerror(err));
  }
  return Status::ok_status();
}

}  // namespace factory::cli
