#pragma once
/// The HTTP server's TLS context, built from a validated `tls_server_config`.
#include <memory>
#include <stdexcept>
#include <string>

#include "exporter/web_config.h"
#include "probes/asio.h"

namespace smtp {

/// A file or setting OpenSSL refused; `key` is the `tls_server_config` key at fault.
class WebTlsError : public std::runtime_error {
 public:
  WebTlsError(std::string key, const std::string& message)
      : std::runtime_error(message), key(std::move(key)) {}
  std::string key;
};

/// Loads the certificate chain, key and client CA, and sets the versions, TLS 1.2 suites and
/// client-certificate policy. Throws WebTlsError ("/etc/x.pem: no start line", key cert_file).
std::shared_ptr<asio::ssl::context> make_tls_server_context(const TlsServerConfig& config);

}  // namespace smtp
