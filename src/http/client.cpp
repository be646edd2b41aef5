#include "http/client.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include <boost/asio.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>
#include <fmt/format.h>

#include "http/unix_socket_path.h"

namespace factory::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;
using local_stream = boost::asio::local::stream_protocol;
using LocalStream = beast::basic_stream<local_stream>;

constexpr std::string_view kUnixScheme = "unix://";

std::string ClientResponse::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return "";
}

std::string redact_url(std::string_view url) {
  // By hand rather than with Boost.URL: the URL may be malformed (that is when it is printed).
  size_t scheme = url.find("://");
  size_t start = scheme == std::string_view::npos ? 0 : scheme + 3;
  size_t end = url.find_first_of("/?#", start);
  std::string_view authority =
      url.substr(start, end == std::string_view::npos ? url.npos : end - start);
  size_t at = authority.rfind('@');
  if (at == std::string_view::npos) return std::string(url);
  return std::string(url.substr(0, start)) + std::string(url.substr(start + at + 1));
}

struct Client::Impl {
  ClientOptions options;
  std::string shown_url;  // options.url without user:password@, for messages
  std::string host;
  std::string port;
  std::string unix_path;  // unix:///path: the socket, instead of host:port
  bool https = false;
  asio::io_context ioc;
  std::optional<ssl::context> tls;
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
  std::optional<LocalStream> local;
  beast::flat_buffer buffer;

  bool connected() const { return plain || secure || local; }

  void expires_after(std::chrono::milliseconds d) {
    if (local) local->expires_after(d);
    if (plain) plain->expires_after(d);
    if (secure) beast::get_lowest_layer(*secure).expires_after(d);
  }

  void reset() {
    beast::error_code ec;
    if (plain) plain->socket().close(ec);
    if (secure) beast::get_lowest_layer(*secure).socket().close(ec);
    if (local) local->socket().close(ec);
    plain.reset();
    secure.reset();
    local.reset();
    buffer.clear();
  }

  Status open_unix() {
    auto usable = UnixSocketPath::open(unix_path);  // held until connected
    if (!usable.ok()) {
      return Status::unavailable(
          fmt::format("cannot connect to {}: {}", shown_url, usable.status().message()));
    }
    beast::error_code ec;
    local.emplace(ioc);
    local->expires_after(std::chrono::milliseconds(options.timeout_ms));
    local->async_connect(local_stream::endpoint(usable->usable()),
                         [&](beast::error_code e) { ec = e; });
    run_io();
    if (ec) {
      reset();
      return Status::unavailable(fmt::format("cannot connect to {}: {}", shown_url, ec.message()));
    }
    return Status::ok_status();
  }

  Status open() {
    if (!unix_path.empty()) return open_unix();
    auto deadline = std::chrono::milliseconds(options.timeout_ms);
    tcp::resolver resolver(ioc);
    beast::error_code ec;
    auto results = resolver.resolve(host, port, ec);
    if (ec) {
      return Status::unavailable(fmt::format("cannot resolve {}: {}", host, ec.message()));
    }
    if (https) {
      secure.emplace(ioc, *tls);
      if (!SSL_set_tlsext_host_name(secure->native_handle(), host.c_str())) {
        return Status::unavailable("cannot set the TLS server name");
      }
      secure->set_verify_callback(ssl::host_name_verification(host));
    } else {
      plain.emplace(ioc);
    }
    // Beast's expiry applies to asynchronous operations only, so every step runs async on this
    // client's own io_context: a server that stops answering fails the call with TimedOut.
    expires_after(deadline);
    beast::tcp_stream& stream = https ? beast::get_lowest_layer(*secure) : *plain;
    stream.async_connect(results, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
    run_io();
    if (ec) {
      reset();
      return Status::unavailable(
          fmt::format("cannot connect to {}:{}: {}", host, port, ec.message()));
    }
    if (https) {
      expires_after(deadline);
      secure->async_handshake(ssl::stream_base::client, [&](beast::error_code e) { ec = e; });
      run_io();
      if (ec) {
        reset();
        return Status::unavailable(
            fmt::format("TLS handshake with {}:{} failed: {}", host, port, ec.message()));
      }
    }
    return Status::ok_status();
  }

  void run_io() {
    ioc.restart();
    ioc.run();
  }

  template <class Stream>
  Result<ClientResponse> exchange(Stream& stream, bhttp::request<bhttp::string_body>& req) {
    beast::error_code ec;
    bool written = false;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(options.max_body_bytes);
    bhttp::async_write(stream, req, [&](beast::error_code e, size_t) {
      ec = e;
      if (e) return;
      written = true;
      bhttp::async_read(stream, buffer, parser, [&](beast::error_code e2, size_t) { ec = e2; });
    });
    run_io();
    if (ec && !written) {
      if (ec == beast::error::timeout) {
        return Status::timed_out(
            fmt::format("sending to {} took over {} ms", shown_url, options.timeout_ms));
      }
      return Status::unavailable(fmt::format("sending the request failed: {}", ec.message()));
    }
    if (ec == beast::error::timeout || ec == asio::error::would_block ||
        ec == asio::error::try_again || ec == asio::error::timed_out) {
      return Status::timed_out(
          fmt::format("no response within {} ms from {}", options.timeout_ms, shown_url));
    }
    if (ec == bhttp::error::body_limit) {
      return Status::out_of_range(fmt::format(
          "the response from {} has a body over {} bytes (http::ClientOptions::max_body_bytes); "
          "ask for less (a smaller max_records or max_bytes) or raise the limit",
          shown_url, options.max_body_bytes));
    }
    if (ec)
      return Status::unavailable(fmt::format("reading the response failed: {}", ec.message()));
    auto& res = parser.get();
    ClientResponse out;
    out.status = static_cast<int>(res.result_int());
    out.body = std::move(res.body());
    for (const auto& field : res) {
      std::string name(field.name_string());
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return std::tolower(c); });
      out.headers.emplace_back(std::move(name), std::string(field.value()));
    }
    if (!res.keep_alive()) reset();
    return out;
  }
};

Result<std::unique_ptr<Client>> Client::connect(const ClientOptions& options) {
  if (options.url.rfind(kUnixScheme, 0) == 0) {
    // unix:///abs/path: the path as it is (no percent-encoding), so any data dir works.
    std::string path = options.url.substr(kUnixScheme.size());
    if (path.empty() || path.front() != '/') {
      return Status::invalid_argument(
          fmt::format("'{}' is not a unix socket URL; use unix:///ABSOLUTE/PATH", options.url));
    }
    auto impl = std::make_unique<Impl>();
    impl->options = options;
    impl->shown_url = options.url;
    impl->unix_path = std::move(path);
    impl->host = "localhost";
    return std::unique_ptr<Client>(new Client(std::move(impl)));
  }
  auto url = boost::urls::parse_absolute_uri(options.url);
  if (!url || (url->scheme() != "http" && url->scheme() != "https") || url->host().empty()) {
    return Status::invalid_argument(
        fmt::format("'{}' is not a server URL; use http://HOST:PORT, https://HOST:PORT or "
                    "unix:///PATH",
                    redact_url(options.url)));
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->shown_url = redact_url(options.url);
  impl->https = url->scheme() == "https";
  impl->host = std::string(url->host());
  if (impl->host.size() > 2 && impl->host.front() == '[') {
    impl->host = impl->host.substr(1, impl->host.size() - 2);
  }
  impl->port = url->has_port() ? std::string(url->port()) : (impl->https ? "443" : "80");
  if (impl->https) {
    impl->tls.emplace(ssl::context::tls_client);
    beast::error_code ec;
    if (options.ca_file.empty()) {
      impl->tls->set_default_verify_paths(ec);
    } else {
      impl->tls->load_verify_file(options.ca_file, ec);
    }
    if (ec) {
      return Status::invalid_argument(
          fmt::format("cannot load CA '{}': {}", options.ca_file, ec.message()));
    }
    if (!options.cert_file.empty()) {
      impl->tls->use_certificate_chain_file(options.cert_file, ec);
      if (!ec) impl->tls->use_private_key_file(options.key_file, ssl::context::pem, ec);
      if (ec) {
        return Status::invalid_argument(fmt::format("cannot load client certificate '{}': {}",
                                                    options.cert_file, ec.message()));
      }
    }
    impl->tls->set_verify_mode(options.verify_peer ? ssl::verify_peer : ssl::verify_none);
  }
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Client::~Client() { impl_->reset(); }

const ClientOptions& Client::options() const { return impl_->options; }

Result<ClientResponse> Client::request(
    std::string_view method, std::string_view target, std::string_view body,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  bhttp::request<bhttp::string_body> req;
  req.method_string(method);
  req.target(target);
  req.version(11);
  req.set(bhttp::field::host,
          impl_->unix_path.empty() ? impl_->host + ":" + impl_->port : impl_->host);
  req.set(bhttp::field::user_agent, "factoryd-client");
  if (!impl_->options.token.empty()) {
    req.set(bhttp::field::authorization, "Bearer " + impl_->options.token);
  }
  bool has_type = false;
  for (const auto& [k, v] : headers) {
    req.set(k, v);
    has_type = has_type || beast::iequals(k, "content-type");
  }
  // Every write carries the type, even with an empty body: the server refuses writes without
  // it, which is what keeps a web page's form posts out (docs/api.md).
  bool write = method != "GET" && method != "HEAD";
  if ((write || !body.empty()) && !has_type) {
    req.set(bhttp::field::content_type, "application/json");
  }
  req.body() = std::string(body);
  req.keep_alive(true);
  req.prepare_payload();

  // A kept-alive connection the server closed in the meantime fails on first use: retry once on
  // a fresh connection, but only when the request cannot have been acted on twice — i.e. the
  // failure came before any response, on a reused connection.
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool reused = impl_->connected();
    if (!reused) {
      if (auto s = impl_->open(); !s.ok()) return s;
    }
    impl_->expires_after(std::chrono::milliseconds(impl_->options.timeout_ms));
    Result<ClientResponse> r = impl_->local   ? impl_->exchange(*impl_->local, req)
                               : impl_->https ? impl_->exchange(*impl_->secure, req)
                                              : impl_->exchange(*impl_->plain, req);
    if (r.ok()) return r;
    impl_->reset();
    if (!reused || r.status().is_timed_out()) return r;
  }
  return Status::unavailable("the server closed the connection twice");
}

}  // namespace factory::http
