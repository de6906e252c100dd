#pragma once
/// Certificates for TLS tests, made in-process with OpenSSL: a throwaway CA in a temporary
/// directory, and leaf certificates it signs with chosen names and validity, as PEM files and as
/// ready server contexts.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "probes/asio.h"

namespace smtp::testing {

/// The current time as Unix seconds (certificate validity is wall-clock time by nature).
std::int64_t unix_now();

/// What a leaf certificate says. Validity defaults to "an hour ago" until "in 30 days".
struct LeafSpec {
  std::string common_name = "mx.test.local";
  std::vector<std::string> dns_names = {"mx.test.local"};  // subjectAltName DNS entries
  std::vector<std::string> ip_addresses = {};              // subjectAltName IP entries
  std::int64_t not_before = 0;                             // Unix seconds; 0: the default
  std::int64_t not_after = 0;                              // Unix seconds; 0: the default
};

/// A leaf certificate signed by a TestCa, with its key, both as PEM files.
struct Leaf {
  std::string cert_file;
  std::string key_file;
  std::int64_t not_before = 0;  // Unix seconds, exactly as written in the certificate
  std::int64_t not_after = 0;
  std::string chain_file;  // the leaf, then the CA certificate
  /// A TLS server context presenting this certificate alone; asks for no client certificate.
  std::shared_ptr<asio::ssl::context> server_context;
};

/// A CA of its own, an EC P-256 key and a self-signed certificate, living in a fresh temporary
/// directory that the destructor removes.
class TestCa {
 public:
  TestCa();
  ~TestCa();
  TestCa(const TestCa&) = delete;
  TestCa& operator=(const TestCa&) = delete;

  /// The CA certificate as a PEM file, for `ca_file`.
  const std::string& ca_file() const { return ca_file_; }
  const std::string& dir() const { return dir_; }
  /// The CA certificate's notAfter, Unix seconds (a year from its making).
  std::int64_t not_after() const { return not_after_; }

  /// Issues a leaf (usable for both server and client authentication) and writes its files.
  Leaf issue(const LeafSpec& spec = {});

  /// A server context presenting `leaf` that requests a client certificate, accepts whatever
  /// is presented (the test inspects it), and names this CA as acceptable to the client. With
  /// `require`, a client without a certificate fails the handshake.
  std::shared_ptr<asio::ssl::context> server_context_requesting_client_cert(
      const Leaf& leaf, bool require = false) const;

  /// A server context presenting `leaf` followed by the CA certificate, as servers that send
  /// their whole chain do.
  std::shared_ptr<asio::ssl::context> server_context_with_chain(const Leaf& leaf) const;

 private:
  struct Keys;
  std::string dir_;
  std::string ca_file_;
  std::int64_t not_after_ = 0;
  std::unique_ptr<Keys> keys_;
  long next_serial_ = 2;  // 1 is the CA's own
};

}  // namespace smtp::testing
