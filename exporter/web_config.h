#pragma once
/// --web.config.file: TLS, client certificates, basic auth and extra response headers for the
/// HTTP endpoints, in the format of Prometheus's exporter-toolkit, so that operators reuse the
/// files their other exporters read.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "probes/asio.h"

namespace smtp {

/// `tls_server_config.client_auth_type`, as Go's crypto/tls names the policies.
enum class ClientAuth {
  kNoClientCert,
  kRequestClientCert,
  kRequireAnyClientCert,
  kVerifyClientCertIfGiven,
  kRequireAndVerifyClientCert,
};

/// `tls_server_config`, validated; file names are absolute or relative to the working directory
/// (a name in the file is relative to the file's directory, as exporter-toolkit reads it).
struct TlsServerConfig {
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;  // empty: none
  ClientAuth client_auth = ClientAuth::kNoClientCert;
  std::string min_version = "TLS12";  // "TLS10" ... "TLS13"
  std::string max_version = "TLS13";
  /// OpenSSL names of the TLS 1.2 (and older) suites, in the file's order; empty: OpenSSL's
  /// defaults. TLS 1.3 suites are not configurable, as in Go.
  std::vector<std::string> cipher_suites;
  bool prefer_server_cipher_suites = true;
};

/// The whole file, validated, with the TLS context built from it (so a certificate that does
/// not load is an error of the file, found when it is read).
struct WebConfig {
  std::string source;  // the file it came from
  /// Set when `tls_server_config` is: the server speaks TLS only.
  std::shared_ptr<const TlsServerConfig> tls;
  std::shared_ptr<asio::ssl::context> tls_context;
  /// User name -> bcrypt hash; empty: no basic auth.
  std::map<std::string, std::string> users;
  /// `http_server_config.headers`: added to every response.
  std::vector<std::pair<std::string, std::string>> headers;
  /// The files whose change means the config must be read again: the file itself and the
  /// certificate, key and CA files it names.
  std::vector<std::string> files;
};

/// Parses and validates `yaml`; `source` names the file in messages and is the directory that
/// relative file names start from. Throws ConfigError "source:line: key.path: problem".
WebConfig parse_web_config(std::string_view yaml, std::string_view source);

/// Reads `path` (a regular file, not waited on) and parses it. Throws ConfigError.
WebConfig load_web_config_file(const std::string& path);

/// The OpenSSL name of a Go cipher suite name ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" ->
/// "ECDHE-RSA-AES128-GCM-SHA256"); "" for a TLS 1.3 suite (not configurable); nullopt-like
/// empty optional when Go does not know the name as a secure suite.
std::optional<std::string> openssl_cipher_name(std::string_view go_name);

}  // namespace smtp
