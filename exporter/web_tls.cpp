#include "exporter/web_tls.h"

#include <openssl/ssl.h>

#include <string>

#include "probes/tls.h"

namespace smtp {
namespace {

// Binds resumed sessions to this server (OpenSSL refuses to resume a session that had a verified
// client certificate without one).
constexpr unsigned char kSessionContext[] = "smtp_exporter";

// Go's RequestClientCert and RequireAnyClientCert take any certificate, verified or not.
int accept_any_certificate(int, X509_STORE_CTX*) { return 1; }

}  // namespace

std::shared_ptr<asio::ssl::context> make_tls_server_context(const TlsServerConfig& config) {
  auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  SSL_CTX* native = context->native_handle();
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  if (config.prefer_server_cipher_suites) {
    SSL_CTX_set_options(native, SSL_OP_CIPHER_SERVER_PREFERENCE);
  }
  SSL_CTX_set_min_proto_version(native, tls_version_number(config.min_version));
  SSL_CTX_set_max_proto_version(native, tls_version_number(config.max_version));
  if (SSL_CTX_use_certificate_chain_file(native, config.cert_file.c_str()) != 1) {
    throw WebTlsError("cert_file", config.cert_file + ": " + openssl_error());
  }
  if (SSL_CTX_use_PrivateKey_file(native, config.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    throw WebTlsError("key_file", config.key_file + ": " + openssl_error());
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    throw WebTlsError("key_file",
                      config.key_file + " does not match cert_file " + config.cert_file);
  }
  if (!config.cipher_suites.empty()) {
    std::string list;
    for (const std::string& name : config.cipher_suites) {
      if (!list.empty()) list += ':';
      list += name;
    }
    if (SSL_CTX_set_cipher_list(native, list.c_str()) != 1) {
      throw WebTlsError("cipher_suites", "OpenSSL supports none of them: " + openssl_error());
    }
  }
  SSL_CTX_set_session_id_context(native, kSessionContext, sizeof kSessionContext - 1);
  if (!config.client_ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(native, config.client_ca_file.c_str(), nullptr) != 1) {
      throw WebTlsError("client_ca_file", config.client_ca_file + ": " + openssl_error());
    }
    // Named in the CertificateRequest, so that a client with several certificates picks right.
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(config.client_ca_file.c_str());
    if (names == nullptr) {
      throw WebTlsError("client_ca_file", config.client_ca_file + ": " + openssl_error());
    }
    SSL_CTX_set_client_CA_list(native, names);
  }
  switch (config.client_auth) {
    case ClientAuth::kNoClientCert:
      SSL_CTX_set_verify(native, SSL_VERIFY_NONE, nullptr);
      break;
    case ClientAuth::kRequestClientCert:
      SSL_CTX_set_verify(native, SSL_VERIFY_PEER, accept_any_certificate);
      break;
    case ClientAuth::kRequireAnyClientCert:
      SSL_CTX_set_verify(native, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                         accept_any_certificate);
      break;
    case ClientAuth::kVerifyClientCertIfGiven:
      SSL_CTX_set_verify(native, SSL_VERIFY_PEER, nullptr);
      break;
    case ClientAuth::kRequireAndVerifyClientCert:
      SSL_CTX_set_verify(native, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
      break;
  }
  return context;
}

}  // namespace smtp
