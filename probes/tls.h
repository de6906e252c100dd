#pragma once
/// TLS for the probe: the client context built from a target's settings, and the facts of a
/// completed handshake (version, cipher, certificate expiry, verification).
#include <memory>
#include <optional>
#include <string>

#include "probes/asio.h"
#include "probes/probe_result.h"

namespace smtp {

/// A target's TLS settings (the config's `tls_config`).
struct TlsSettings {
  std::string ca_file;      // empty: the system's CA store
  std::string server_name;  // SNI and the name verified; empty: the target's host
  bool insecure_skip_verify = false;
  std::string cert_file;  // client certificate (with key_file)
  std::string key_file;
  std::string min_version;  // "", "TLS10", "TLS11", "TLS12", "TLS13"
};

/// OpenSSL's number for "TLS10" ... "TLS13"; 0 for ""; throws std::runtime_error otherwise.
int tls_version_number(const std::string& name);

/// The reason of OpenSSL's last error in words ("no certificate or crl found"), without its
/// numeric codes; clears the error queue.
std::string openssl_error();

/// Builds the client context for `settings`: CA store, minimum version, client certificate.
/// Peer verification is recorded, not enforced, so that an unverified certificate still yields
/// its facts; the probe decides what a failed verification means. Throws std::runtime_error
/// (naming the file) for unreadable files or bad settings: a config error, found at load time.
std::shared_ptr<asio::ssl::context> make_tls_context(const TlsSettings& settings);

/// Prepares `ssl` for a handshake with `server_name` (SNI for names; name or IP to verify). A
/// name's trailing dot is dropped for both; partial wildcards ("m*.example.com") never match.
void prepare_tls_session(SSL* ssl, const std::string& server_name);

/// Reads the facts of the completed handshake on `ssl`.
TlsFacts read_tls_facts(SSL* ssl);

}  // namespace smtp
