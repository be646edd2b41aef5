// http::Client against a raw TCP peer in a thread: the response body limit, the URL's
// user:password@ kept out of error messages, and the Content-Type every write carries.
#include "http/client.h"

#include <unistd.h>

#include <string>
#include <thread>

#include <netinet/in.h>
#include <sys/socket.h>

#include "test_util.h"

namespace factory::http {
namespace {

// A one-connection peer on 127.0.0.1:<free port>: reads one request header, hands it to
// `reply`, writes what reply returns (nothing: stays silent until the client gives up), then
// closes. Joins in its destructor.
class RawPeer {
 public:
  explicit RawPeer(std::function<std::string(const std::string&)> reply) {
    listen_fd_ = test::listen_loopback_for_test(4, &port_);
    thread_ = std::thread([this, reply = std::move(reply)] {
      int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      std::string request;
      char buf[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        request.append(buf, static_cast<size_t>(n));
      }
      request_ = request;
      std::string out = reply(request);
      if (out.empty()) {
        while (::recv(fd, buf, sizeof buf, 0) > 0) {  // silent until the client closes
        }
      }
      size_t sent = 0;
      while (sent < out.size()) {
        ssize_t n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += static_cast<size_t>(n);
      }
      ::close(fd);
    });
  }
  ~RawPeer() {
    ::shutdown(listen_fd_, SHUT_RDWR);
    thread_.join();
    ::close(listen_fd_);
  }
  int port() const { return port_; }
  const std::string& request() const { return request_; }  // after the client's call

 private:
  int listen_fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::string request_;
};

// GET `path` from the peer with a client whose max_body_bytes is 4096.
Result<ClientResponse> get_limited(const RawPeer& peer, const std::string& path) {
  auto c = Client::connect({.url = "http://127.0.0.1:" + std::to_string(peer.port()),
                            .timeout_ms = 10'000,
                            .max_body_bytes = 4096});
  if (!c.ok()) return c.status();
  return (*c)->request("GET", path);
}

TEST_CASE("client refuses a response body over max_body_bytes", "[http][client]") {
  SECTION("declared by Content-Length") {
    RawPeer peer([](const std::string&) {
      return "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + std::string(100000, 'x');
    });
    auto r = get_limited(peer, "/big");
    REQUIRE(!r.ok());
    CHECK(r.status().code() == Status::Code::kOutOfRange);
    CHECK(r.status().message().find("over 4096 bytes") != std::string::npos);
  }
  SECTION("chunked, no length") {
    RawPeer peer([](const std::string&) {
      std::string out = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
      for (int i = 0; i < 8; ++i) out += "400\r\n" + std::string(1024, 'y') + "\r\n";
      return out + "0\r\n\r\n";
    });
    auto r = get_limited(peer, "/big");
    REQUIRE(!r.ok());
    CHECK(r.status().code() == Status::Code::kOutOfRange);
  }
  SECTION("a body within the limit is read whole") {
    RawPeer peer([](const std::string&) {
      return "HTTP/1.1 200 OK\r\nContent-Length: 4096\r\n\r\n" + std::string(4096, 'z');
    });
    auto r = get_limited(peer, "/ok");
    REQUIRE_OK(r);
    CHECK(r->body.size() == 4096);
  }
}

TEST_CASE("client errors never carry the URL's user:password", "[http][client]") {
  RawPeer peer([](const std::string&) { return std::string(); });  // never answers
  std::string url = "http://alice:s3cr3t-pw@127.0.0.1:" + std::to_string(peer.port());
  auto c = Client::connect({.url = url, .timeout_ms = 300});
  REQUIRE_OK(c);
  auto r = (*c)->request("GET", "/slow");
  REQUIRE(!r.ok());
  CHECK(r.status().code() == Status::Code::kTimedOut);
  INFO(r.status().message());
  CHECK(r.status().message().find("s3cr3t-pw") == std::string::npos);
  CHECK(r.status().message().find("alice") == std::string::npos);
  CHECK(r.status().message().find("127.0.0.1:" + std::to_string(peer.port())) != std::string::npos);

  auto bad = Client::connect({.url = "ftp://bob:hunter2@example.com/"});
  REQUIRE(!bad.ok());
  CHECK(bad.status().message().find("hunter2") == std::string::npos);

  CHECK(redact_url("https://u:p@h.example:8443/x?y=1") == "https://h.example:8443/x?y=1");
  CHECK(redact_url("http://h:1") == "http://h:1");
  CHECK(redact_url("u:p@h") == "h");
}

TEST_CASE("client sends application/json on every write, even with no body", "[http][client]") {
  RawPeer peer([](const std::string&) {
    return std::string("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
  });
  auto c = Client::connect({.url = "http://127.0.0.1:" + std::to_string(peer.port())});
  REQUIRE_OK(c);
  auto r = (*c)->request("POST", "/api/v1/dags/x/pause");
  REQUIRE_OK(r);
  std::string lower = peer.request();
  for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  CHECK(lower.find("content-type: application/json") != std::string::npos);
}

}  // namespace
}  // namespace factory::http
