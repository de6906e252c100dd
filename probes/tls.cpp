#include "probes/tls.h"

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <stdexcept>

#include "probes/certificate.h"

namespace smtp {

int tls_version_number(const std::string& name) {
  if (name.empty()) return 0;
  if (name == "TLS10") return TLS1_VERSION;
  if (name == "TLS11") return TLS1_1_VERSION;
  if (name == "TLS12") return TLS1_2_VERSION;
  if (name == "TLS13") return TLS1_3_VERSION;
  throw std::runtime_error("min_version: unknown TLS version " + name);
}

// OpenSSL's reason in words ("no certificate or crl found"), without its numeric codes: what
// a person fixing a config file can act on.
std::string openssl_error() {
  const unsigned long code = ERR_peek_last_error();
  const char* reason = code == 0 ? nullptr : ERR_reason_error_string(code);
  ERR_clear_error();
  return reason != nullptr ? reason : "unknown OpenSSL error";
}

namespace {

std::string blackbox_version_name(const char* openssl_name) {
  std::string name = openssl_name ? openssl_name : "";
  if (name.rfind("TLSv", 0) == 0) return "TLS " + name.substr(4);  // "TLSv1.3" -> "TLS 1.3"
  return name;
}

}  // namespace

std::shared_ptr<asio::ssl::context> make_tls_context(const TlsSettings& settings) {
  auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  SSL_CTX* native = context->native_handle();
  if (settings.ca_file.empty()) {
    if (SSL_CTX_set_default_verify_paths(native) != 1) {
      throw std::runtime_error("cannot load the system CA store: " + openssl_error());
    }
  } else if (SSL_CTX_load_verify_locations(native, settings.ca_file.c_str(), nullptr) != 1) {
    throw std::runtime_error("ca_file " + settings.ca_file + ": " + openssl_error());
  }
  if (int version = tls_version_number(settings.min_version); version != 0) {
    SSL_CTX_set_min_proto_version(native, version);
  }
  if (!settings.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(native, settings.cert_file.c_str()) != 1) {
      throw std::runtime_error("cert_file " + settings.cert_file + ": " + openssl_error());
    }
    if (SSL_CTX_use_PrivateKey_file(native, settings.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      throw std::runtime_error("key_file " + settings.key_file + ": " + openssl_error());
    }
    if (SSL_CTX_check_private_key(native) != 1) {
      throw std::runtime_error("key_file " + settings.key_file + " does not match cert_file " +
                               settings.cert_file);
    }
  }
  // Verify, but let the handshake finish whatever the outcome: the verdict is read afterwards
  // with SSL_get_verify_result, and the certificate's facts are wanted either way.
  SSL_CTX_set_verify(native, SSL_VERIFY_PEER, [](int, X509_STORE_CTX*) { return 1; });
  return context;
}

void prepare_tls_session(SSL* ssl, const std::string& server_name) {
  boost::system::error_code ec;
  asio::ip::make_address(server_name, ec);
  bool is_ip = !ec;
  if (is_ip) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), server_name.c_str());
    return;
  }
  // An absolute name ("mx.example.com.") is the same host; RFC 6066 §3 forbids the trailing dot
  // in SNI, and certificates are issued without it.
  std::string name = server_name;
  if (name.size() > 1 && name.back() == '.') name.pop_back();
  SSL_set_tlsext_host_name(ssl, name.c_str());  // RFC 6066: SNI carries names only
  // RFC 6125 §7.2: a wildcard stands for a whole label; "m*.example.com" matches nothing.
  SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  SSL_set1_host(ssl, name.c_str());
}

TlsFacts read_tls_facts(SSL* ssl) {
  TlsFacts facts;
  facts.version = blackbox_version_name(SSL_get_version(ssl));
  if (const char* cipher = SSL_get_cipher_name(ssl)) facts.cipher = cipher;
  STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl);
  for (int i = 0; chain && i < sk_X509_num(chain); ++i) {
    const ASN1_TIME* not_after = X509_get0_notAfter(sk_X509_value(chain, i));
    std::tm tm{};
    if (not_after && ASN1_TIME_to_tm(not_after, &tm) == 1) {
      double when = static_cast<double>(timegm(&tm));
      if (facts.earliest_not_after == 0 || when < facts.earliest_not_after) {
        facts.earliest_not_after = when;
      }
    }
  }
  X509* peer = SSL_get1_peer_certificate(ssl);
  if (peer != nullptr) read_leaf_facts(peer, facts);
  long verify = SSL_get_verify_result(ssl);
  facts.verify_code = verify;
  if (peer == nullptr) {
    facts.verify_error = "no certificate presented";
  } else if (verify != X509_V_OK) {
    facts.verify_error = X509_verify_cert_error_string(verify);
  } else {
    facts.verified = true;
  }
  X509_free(peer);
  return facts;
}

}  // namespace smtp
