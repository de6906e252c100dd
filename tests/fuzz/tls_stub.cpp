// config_fuzz's stand-in for probes/tls.cpp's make_tls_context: a fuzzed config must not make
// the fuzzer open files (a path such as /dev/stdin would block it), and the context's contents
// do not matter to the parser. It also checks what the parser promises to hand over.
#include <memory>
#include <stdexcept>

#include "probes/tls.h"
#include "tests/fuzz/fuzz_check.h"

namespace smtp {

std::shared_ptr<asio::ssl::context> make_tls_context(const TlsSettings& settings) {
  FUZZ_CHECK(settings.cert_file.empty() == settings.key_file.empty());
  FUZZ_CHECK(settings.min_version.empty() || settings.min_version == "TLS10" ||
             settings.min_version == "TLS11" || settings.min_version == "TLS12" ||
             settings.min_version == "TLS13");
  // The real function throws for an unreadable file; a name ending in ".bad" takes that path.
  if (settings.ca_file.ends_with(".bad")) {
    throw std::runtime_error("ca_file " + settings.ca_file + ": stub refuses it");
  }
  // One context for all: building one costs OpenSSL more than parsing a config.
  static const auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  return context;
}

}  // namespace smtp
