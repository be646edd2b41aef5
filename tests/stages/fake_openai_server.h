// FakeOpenAiServer: a tiny OpenAI-compatible /v1/chat/completions server on 127.0.0.1:<ephemeral>
// for the codegen and testsynth tests. Plain sockets and one thread (poll), HTTP/1.1 with
// Connection: close. Each request is answered according to the current mode:
//   kOk         200, a chat completion whose content is files_json(), usage 123/45
//   kError      503 with an error body
//   kHang       never answers (the connection stays open until the server is destroyed)
//   kMalformed  200, a chat completion whose content is prose, not the JSON asked for
//   kForbidden  401 (a bad key)
// With a certificate and key (PEM files) it speaks HTTPS instead, one connection at a time.
//
// Thread-safety: the setters and observers may be called from the test thread at any time.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <boost/json.hpp>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

namespace factory::test {

class FakeOpenAiServer {
 public:
  enum class Mode { kOk, kError, kHang, kMalformed, kForbidden };

  FakeOpenAiServer() { start(); }
  // HTTPS with this certificate chain and key.
  FakeOpenAiServer(const std::string& cert_file, const std::string& key_file) {
    tls_ = SSL_CTX_new(TLS_server_method());
    if (!tls_ || SSL_CTX_use_certificate_chain_file(tls_, cert_file.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(tls_, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      throw std::runtime_error("FakeOpenAiServer: bad certificate or key");
    }
    start();
  }

 private:
  void start() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (listen_fd_ < 0 ||
        ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listen_fd_, 16) != 0 || ::pipe2(wake_, O_CLOEXEC) != 0) {
      throw std::runtime_error("FakeOpenAiServer: cannot listen");
    }
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { loop(); });
  }

 public:
  ~FakeOpenAiServer() {
    char c = 'x';
    (void)!::write(wake_[1], &c, 1);
    thread_.join();
    for (auto& [fd, buf] : clients_) ::close(fd);
    ::close(listen_fd_);
    ::close(wake_[0]);
    ::close(wake_[1]);
    if (tls_) SSL_CTX_free(tls_);
  }

  FakeOpenAiServer(const FakeOpenAiServer&) = delete;
  FakeOpenAiServer& operator=(const FakeOpenAiServer&) = delete;

  std::string base_url() const {
    return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_);
  }
  void set_mode(Mode m) { mode_ = m; }
  // The JSON text the model "answers" in kOk mode: {"files": [{"path", "content"}]}.
  void set_files_json(std::string text) {
    std::lock_guard<std::mutex> lock(mu_);
    files_json_ = std::move(text);
  }
  int requests() const { return requests_.load(); }
  std::string last_body() const {
    std::lock_guard<std::mutex> lock(mu_);
    return last_body_;
  }
  std::string last_head() const {
    std::lock_guard<std::mutex> lock(mu_);
    return last_head_;
  }

 private:
  void loop() {
    for (;;) {
      std::vector<pollfd> fds = {{wake_[0], POLLIN, 0}, {listen_fd_, POLLIN, 0}};
      for (const auto& [fd, buf] : clients_) fds.push_back({fd, POLLIN, 0});
      if (::poll(fds.data(), fds.size(), -1) < 0) continue;
      if (fds[0].revents) return;
      if (fds[1].revents & POLLIN) {
        int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0 && tls_) {
          serve_tls(fd);
        } else if (fd >= 0) {
          clients_[fd] = "";
        }
      }
      for (size_t i = 2; i < fds.size(); ++i) {
        if (!fds[i].revents) continue;
        int fd = fds[i].fd;
        char buf[4096];
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) {
          ::close(fd);
          clients_.erase(fd);
          continue;
        }
        std::string& in = clients_[fd];
        in.append(buf, static_cast<size_t>(n));
        if (complete(in)) handle(fd, in);
      }
    }
  }

  // True when `in` holds the headers and Content-Length bytes of body.
  static bool complete(const std::string& in) {
    size_t end = in.find("\r\n\r\n");
    if (end == std::string::npos) return false;
    size_t length = 0;
    std::string head = in.substr(0, end);
    for (char& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    size_t at = head.find("content-length:");
    if (at != std::string::npos) length = std::stoul(head.substr(at + 15));
    return in.size() >= end + 4 + length;
  }

  void handle(int fd, std::string& in) {
    std::string out = respond(in);
    if (out.empty()) return;  // kHang: keep the connection, never answer
    size_t sent = 0;
    while (sent < out.size()) {
      ssize_t n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
    ::close(fd);
    clients_.erase(fd);
  }

  // One HTTPS exchange, blocking (bounded by socket timeouts).
  void serve_tls(int fd) {
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    SSL* ssl = SSL_new(tls_);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
      std::string in;
      char buf[4096];
      while (!complete(in)) {
        int n = SSL_read(ssl, buf, sizeof buf);
        if (n <= 0) break;
        in.append(buf, static_cast<size_t>(n));
      }
      if (complete(in)) {
        std::string out = respond(in);
        if (!out.empty()) SSL_write(ssl, out.data(), static_cast<int>(out.size()));
        SSL_shutdown(ssl);
      }
    }
    SSL_free(ssl);
    ::close(fd);
  }

  // The answer to the request in `in` (consumed), or "" to never answer.
  std::string respond(std::string& in) {
    size_t end = in.find("\r\n\r\n");
    {
      std::lock_guard<std::mutex> lock(mu_);
      last_head_ = in.substr(0, end);
      last_body_ = in.substr(end + 4);
    }
    ++requests_;
    in.clear();
    Mode mode = mode_.load();
    if (mode == Mode::kHang) return "";
    int status = 200;
    std::string body;
    if (mode == Mode::kError) {
      status = 503;
      body = R"({"error":{"message":"model overloaded","type":"server_error"}})";
    } else if (mode == Mode::kForbidden) {
      status = 401;
      body = R"({"error":{"message":"invalid api key","type":"invalid_request_error"}})";
    } else {
      std::string content;
      {
        std::lock_guard<std::mutex> lock(mu_);
        content = mode == Mode::kOk ? files_json_
                                    : "Sure! Here is the code you asked for:\ndef f():\n    pass\n";
      }
      boost::json::object message{{"role", "assistant"}, {"content", content}};
      boost::json::object choice{{"index", 0}, {"message", message}, {"finish_reason", "stop"}};
      boost::json::object answer{
          {"id", "chatcmpl-1"},
          {"object", "chat.completion"},
          {"model", "fake-model-1"},
          {"choices", boost::json::array{choice}},
          {"usage", {{"prompt_tokens", 123}, {"completion_tokens", 45}, {"total_tokens", 168}}}};
      body = boost::json::serialize(answer);
    }
    return "HTTP/1.1 " + std::to_string(status) + (status == 200 ? " OK" : " Error") +
           "\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
  }

  SSL_CTX* tls_ = nullptr;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  int port_ = 0;
  std::thread thread_;
  std::map<int, std::string> clients_;  // the server thread's only
  std::atomic<Mode> mode_{Mode::kOk};
  std::atomic<int> requests_{0};
  mutable std::mutex mu_;
  std::string files_json_ = R"({"files":[{"path":"invoices/hello.py","content":"X = 1\n"}]})";
  std::string last_body_, last_head_;
};

}  // namespace factory::test
