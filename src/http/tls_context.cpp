#include "http/tls_context.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include <fmt/format.h>

namespace factory::http {

namespace ssl = boost::asio::ssl;

namespace {

Status check_readable(const std::string& path, std::string_view what) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) {
    return Status::invalid_argument(
        fmt::format("{} '{}' cannot be read: {}; check server.tls in the config", what, path,
                    std::strerror(errno)));
  }
  std::fclose(f);
  return Status::ok_status();
}

}  // namespace

Result<ssl::context> make_tls_context(const TlsOptions& tls) {
  for (auto [path, what] :
       {std::pair{&tls.cert_file, "TLS certificate"}, std::pair{&tls.key_file, "TLS key"}}) {
    if (path->empty()) {
      return Status::invalid_argument(fmt::format(
          "{} file is not set; TLS needs both server.tls.cert_file and key_file", what));
    }
    if (auto s = check_readable(*path, what); !s.ok()) return s;
  }
  ssl::context ctx(ssl::context::tls_server);
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                  ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  boost::system::error_code ec;
  ctx.use_certificate_chain_file(tls.cert_file, ec);
  if (ec) {
    return Status::invalid_argument(fmt::format("TLS certificate '{}' is not a PEM certificate: {}",
                                                tls.cert_file, ec.message()));
  }
  ctx.use_private_key_file(tls.key_file, ssl::context::pem, ec);
  if (ec) {
    return Status::invalid_argument(
        fmt::format("TLS key '{}' is not a PEM private key matching the certificate: {}",
                    tls.key_file, ec.message()));
  }
  if (!tls.client_ca_file.empty()) {
    if (auto s = check_readable(tls.client_ca_file, "client CA"); !s.ok()) return s;
    ctx.load_verify_file(tls.client_ca_file, ec);
    if (ec) {
      return Status::invalid_argument(fmt::format("client CA '{}' is not a PEM certificate: {}",
                                                  tls.client_ca_file, ec.message()));
    }
  } else if (tls.require_client_cert) {
    return Status::invalid_argument(
        "server.tls.require_client_cert needs server.tls.client_ca_file (the CA that signs "
        "client certificates)");
  }
  if (tls.require_client_cert) {
    ctx.set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  } else if (!tls.client_ca_file.empty()) {
    ctx.set_verify_mode(ssl::verify_peer);
  }
  return ctx;
}

}  // namespace factory::http
