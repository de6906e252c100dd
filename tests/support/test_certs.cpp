#include "tests/support/test_certs.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <stdexcept>

namespace smtp::testing {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using BioPtr = std::unique_ptr<BIO, BioFree>;

constexpr std::int64_t kHour = 3600;
constexpr std::int64_t kDay = 24 * kHour;

/// Test set-up failures are bugs in the test, so they throw, with OpenSSL's reason attached.
[[noreturn]] void fail(const std::string& what) {
  char text[256] = "no OpenSSL error";
  if (unsigned long code = ERR_get_error(); code != 0) ERR_error_string_n(code, text, sizeof text);
  ERR_clear_error();
  throw std::runtime_error("test_certs: " + what + ": " + text);
}

PkeyPtr make_key() {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) fail("EC P-256 key generation");
  return key;
}

void add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) fail("extension " + std::string(OBJ_nid2sn(nid)) + "=" + value);
  int added = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (added != 1) fail("adding extension " + std::string(OBJ_nid2sn(nid)));
}

std::int64_t unix_seconds(const ASN1_TIME* time) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(time, &tm) != 1) fail("reading a certificate time");
  return static_cast<std::int64_t>(timegm(&tm));
}

/// A certificate for `key` with `common_name`, valid over [not_before, not_after]; unsigned,
/// issuer not set yet.
X509Ptr make_certificate(EVP_PKEY* key, const std::string& common_name, long serial,
                         std::int64_t not_before, std::int64_t not_after) {
  X509Ptr cert(X509_new());
  if (!cert) fail("X509_new");
  X509_set_version(cert.get(), X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
  if (ASN1_TIME_set(X509_getm_notBefore(cert.get()), static_cast<time_t>(not_before)) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert.get()), static_cast<time_t>(not_after)) == nullptr) {
    fail("setting validity");
  }
  X509_set_pubkey(cert.get(), key);
  X509_NAME* subject = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("smtp_exporter tests"), -1, -1,
                             0);
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  return cert;
}

void write_pem(const std::string& path, X509* cert, EVP_PKEY* key) {
  BioPtr bio(BIO_new_file(path.c_str(), "w"));
  if (!bio) fail("opening " + path);
  bool ok =
      cert ? PEM_write_bio_X509(bio.get(), cert) == 1
           : PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
  if (!ok) fail("writing " + path);
}

}  // namespace

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct TestCa::Keys {
  PkeyPtr key;
  X509Ptr cert;
};

TestCa::TestCa() : keys_(std::make_unique<Keys>()) {
  std::string pattern = (std::filesystem::temp_directory_path() / "smtp_tls_XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error("test_certs: mkdtemp " + pattern + " failed");
  }
  dir_ = pattern;

  keys_->key = make_key();
  std::int64_t now = unix_now();
  keys_->cert =
      make_certificate(keys_->key.get(), "smtp_exporter test CA", 1, now - kDay, now + 365 * kDay);
  X509* cert = keys_->cert.get();
  X509_set_issuer_name(cert, X509_get_subject_name(cert));
  add_extension(cert, cert, NID_basic_constraints, "critical,CA:TRUE");
  add_extension(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign");
  add_extension(cert, cert, NID_subject_key_identifier, "hash");
  if (X509_sign(cert, keys_->key.get(), EVP_sha256()) == 0) fail("signing the CA certificate");
  ca_file_ = dir_ + "/ca.pem";
  write_pem(ca_file_, cert, nullptr);
  not_after_ = unix_seconds(X509_get0_notAfter(cert));
}

TestCa::~TestCa() {
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

Leaf TestCa::issue(const LeafSpec& spec) {
  std::int64_t now = unix_now();
  std::int64_t not_before = spec.not_before != 0 ? spec.not_before : now - kHour;
  std::int64_t not_after = spec.not_after != 0 ? spec.not_after : now + 30 * kDay;
  long serial = next_serial_++;

  PkeyPtr key = make_key();
  X509Ptr cert = make_certificate(key.get(), spec.common_name, serial, not_before, not_after);
  X509* ca = keys_->cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(ca));
  add_extension(cert.get(), ca, NID_basic_constraints, "critical,CA:FALSE");
  add_extension(cert.get(), ca, NID_key_usage, "critical,digitalSignature");
  add_extension(cert.get(), ca, NID_ext_key_usage, "serverAuth,clientAuth");
  add_extension(cert.get(), ca, NID_subject_key_identifier, "hash");
  add_extension(cert.get(), ca, NID_authority_key_identifier, "keyid:always");
  std::string alt_names;
  for (const std::string& name : spec.dns_names) {
    alt_names += (alt_names.empty() ? "DNS:" : ",DNS:") + name;
  }
  for (const std::string& ip : spec.ip_addresses) {
    alt_names += (alt_names.empty() ? "IP:" : ",IP:") + ip;
  }
  if (!alt_names.empty()) add_extension(cert.get(), ca, NID_subject_alt_name, alt_names);
  if (X509_sign(cert.get(), keys_->key.get(), EVP_sha256()) == 0) fail("signing a leaf");

  Leaf leaf;
  std::string stem = dir_ + "/leaf" + std::to_string(serial);
  leaf.cert_file = stem + ".pem";
  leaf.key_file = stem + ".key";
  write_pem(leaf.cert_file, cert.get(), nullptr);
  write_pem(leaf.key_file, nullptr, key.get());
  leaf.chain_file = stem + ".chain.pem";
  {
    BioPtr bio(BIO_new_file(leaf.chain_file.c_str(), "w"));
    if (!bio || PEM_write_bio_X509(bio.get(), cert.get()) != 1 ||
        PEM_write_bio_X509(bio.get(), ca) != 1) {
      fail("writing " + leaf.chain_file);
    }
  }
  leaf.not_before = unix_seconds(X509_get0_notBefore(cert.get()));
  leaf.not_after = unix_seconds(X509_get0_notAfter(cert.get()));

  leaf.server_context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  leaf.server_context->use_certificate_chain_file(leaf.cert_file);
  leaf.server_context->use_private_key_file(leaf.key_file, asio::ssl::context::pem);
  return leaf;
}

std::shared_ptr<asio::ssl::context> TestCa::server_context_requesting_client_cert(
    const Leaf& leaf, bool require) const {
  auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  context->use_certificate_chain_file(leaf.cert_file);
  context->use_private_key_file(leaf.key_file, asio::ssl::context::pem);
  context->load_verify_file(ca_file_);
  SSL_CTX* native = context->native_handle();
  STACK_OF(X509_NAME)* acceptable = SSL_load_client_CA_file(ca_file_.c_str());
  if (acceptable == nullptr) fail("loading " + ca_file_ + " as client CA list");
  SSL_CTX_set_client_CA_list(native, acceptable);
  static constexpr unsigned char kSessionContext[] = "smtp_fake";
  SSL_CTX_set_session_id_context(native, kSessionContext, sizeof kSessionContext - 1);
  // The fake server records what it was shown; whether that verifies is not its business.
  context->set_verify_mode(require ? asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert
                                   : asio::ssl::verify_peer);
  context->set_verify_callback([](bool, asio::ssl::verify_context&) { return true; });
  return context;
}

std::shared_ptr<asio::ssl::context> TestCa::server_context_with_chain(const Leaf& leaf) const {
  auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  context->use_certificate_chain_file(leaf.chain_file);
  context->use_private_key_file(leaf.key_file, asio::ssl::context::pem);
  return context;
}

}  // namespace smtp::testing
