// HttpSink: a tiny HTTP/1.1 server for tests that receives POSTs (webhooks, incoming-webhook
// messages) on 127.0.0.1 and answers each with a chosen status. One request per connection.
//
// Example:
//   factory::test::HttpSink sink(200);
//   post_json(sink.url() + "/hook", "{}", 1000);
//   REQUIRE(sink.wait_for(1, 5000));
//   CHECK(sink.requests()[0].body == "{}");
//
// Thread-safe: the accept thread records requests under a mutex; wait_for() blocks on a
// condition variable (no sleeps).
#pragma once

#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

namespace factory::test {

class HttpSink {
 public:
  struct Request {
    std::string method;
    std::string target;
    std::string body;
  };

  explicit HttpSink(int status = 200) : status_(status) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 16);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~HttpSink() {
    stopping_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void set_status(int status) { status_ = status; }

  // Waits until at least n requests arrived; false after timeout_ms.
  bool wait_for(size_t n, int timeout_ms) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                        [&] { return requests_.size() >= n; });
  }
  std::vector<Request> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  void serve() {
    while (!stopping_) {
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) {
        if (stopping_) return;
        continue;
      }
      handle(c);
      ::close(c);
    }
  }

  void handle(int c) {
    std::string data;
    char buf[4096];
    size_t header_end = std::string::npos;
    size_t want = 0;
    for (;;) {
      ssize_t n = ::recv(c, buf, sizeof buf, 0);
      if (n <= 0) return;
      data.append(buf, static_cast<size_t>(n));
      if (header_end == std::string::npos) {
        header_end = data.find("\r\n\r\n");
        if (header_end == std::string::npos) continue;
        std::string head = data.substr(0, header_end);
        for (auto& ch : head) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        size_t cl = head.find("content-length:");
        if (cl != std::string::npos) want = std::stoul(head.substr(cl + 15));
      }
      if (data.size() >= header_end + 4 + want) break;
    }
    Request r;
    size_t sp1 = data.find(' ');
    size_t sp2 = data.find(' ', sp1 + 1);
    r.method = data.substr(0, sp1);
    r.target = data.substr(sp1 + 1, sp2 - sp1 - 1);
    r.body = data.substr(header_end + 4, want);
    std::string resp = "HTTP/1.1 " + std::to_string(status_.load()) +
                       " X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    ::send(c, resp.data(), resp.size(), MSG_NOSIGNAL);
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(std::move(r));
    }
    cv_.notify_all();
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<int> status_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Request> requests_;
};

}  // namespace factory::test
