// The server's TLS context from its TlsOptions (server.h): the certificate chain and key, TLS 1.2
// or later, and with a client CA, verification of client certificates (required with
// require_client_cert: mTLS). Split out of server.cpp: it is the only part of the server that
// reads files, and every misconfiguration is refused here, before a socket is opened.
//
// Thread-safety: a pure function of its options (and the files they name).
#pragma once

#include <boost/asio/ssl.hpp>

#include "factory/status.h"
#include "http/server.h"

namespace factory::http {

// The context, or InvalidArgument naming the setting and file at fault: cert_file or key_file
// unset or unreadable, a file that is not PEM or a key that does not match the certificate,
// an unreadable client CA, or require_client_cert without client_ca_file.
Result<boost::asio::ssl::context> make_tls_context(const TlsOptions& tls);

}  // namespace factory::http
