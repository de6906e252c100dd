#pragma once
/// The facts of a server's certificate that a person needs to see why it does not verify: its
/// subject, issuer, names and expiry.
#include <openssl/x509.h>

#include "probes/probe_result.h"

namespace smtp {

/// Most subjectAltName entries kept; a certificate with more is reported with a count of the
/// rest (a hostile server must not make a probe's result grow without bound).
inline constexpr std::size_t kMaxCertificateNames = 50;

/// Fills `facts.subject`, `issuer`, `names` and `not_after` from the leaf certificate `leaf`.
/// Every text taken from the certificate is made printable (probes/text.h).
void read_leaf_facts(X509* leaf, TlsFacts& facts);

}  // namespace smtp
