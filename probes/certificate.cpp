#include "probes/certificate.h"

#include <openssl/bio.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <memory>
#include <string>
#include <string_view>

#include "probes/asio.h"
#include "probes/text.h"

namespace smtp {
namespace {

std::string name_text(const X509_NAME* name) {
  if (name == nullptr) return {};
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return {};
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return printable(std::string_view(data, static_cast<std::size_t>(size)));
}

std::string asn1_text(const ASN1_STRING* text) {
  return printable(std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(text)),
                                    static_cast<std::size_t>(ASN1_STRING_length(text))));
}

/// "DNS:name", "IP:address", "email:...", "URI:..."; empty for kinds nobody verifies a server by.
std::string general_name_text(const GENERAL_NAME* name) {
  switch (name->type) {
    case GEN_DNS:
      return "DNS:" + asn1_text(name->d.dNSName);
    case GEN_EMAIL:
      return "email:" + asn1_text(name->d.rfc822Name);
    case GEN_URI:
      return "URI:" + asn1_text(name->d.uniformResourceIdentifier);
    case GEN_IPADD: {
      const ASN1_OCTET_STRING* ip = name->d.iPAddress;
      const unsigned char* bytes = ASN1_STRING_get0_data(ip);
      if (ASN1_STRING_length(ip) == 4) {
        asio::ip::address_v4::bytes_type v4;
        std::copy(bytes, bytes + 4, v4.begin());
        return "IP:" + asio::ip::address_v4(v4).to_string();
      }
      if (ASN1_STRING_length(ip) == 16) {
        asio::ip::address_v6::bytes_type v6;
        std::copy(bytes, bytes + 16, v6.begin());
        return "IP:" + asio::ip::address_v6(v6).to_string();
      }
      return "IP:(malformed)";
    }
    default:
      return {};
  }
}

}  // namespace

void read_leaf_facts(X509* leaf, TlsFacts& facts) {
  facts.subject = name_text(X509_get_subject_name(leaf));
  facts.issuer = name_text(X509_get_issuer_name(leaf));
  std::tm tm{};
  const ASN1_TIME* not_after = X509_get0_notAfter(leaf);
  if (not_after != nullptr && ASN1_TIME_to_tm(not_after, &tm) == 1) {
    facts.not_after = static_cast<double>(timegm(&tm));
  }
  facts.names.clear();
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(leaf, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return;
  const int count = sk_GENERAL_NAME_num(names);
  std::size_t skipped = 0;
  for (int i = 0; i < count; ++i) {
    std::string text = general_name_text(sk_GENERAL_NAME_value(names, i));
    if (text.empty()) continue;
    if (facts.names.size() < kMaxCertificateNames) {
      facts.names.push_back(std::move(text));
    } else {
      ++skipped;
    }
  }
  GENERAL_NAMES_free(names);
  if (skipped > 0) facts.names.push_back("(" + std::to_string(skipped) + " more)");
}

}  // namespace smtp
