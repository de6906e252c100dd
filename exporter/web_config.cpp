#include "exporter/web_config.h"

#include <yaml-cpp/yaml.h>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <initializer_list>
#include <span>

#include "exporter/config.h"
#include "exporter/config_parser.h"
#include "exporter/config_values.h"
#include "exporter/config_yaml.h"
#include "exporter/web_auth.h"
#include "exporter/web_tls.h"

namespace smtp {
namespace {

using config_yaml::Entries;
using config_yaml::entries_of;
using config_yaml::Entry;
using config_yaml::join_path;
using config_yaml::line_of;
using config_yaml::node_kind;

// Go's name of each secure suite crypto/tls offers (tls.CipherSuites()), and OpenSSL's; an
// empty OpenSSL name is a TLS 1.3 suite, which Go and OpenSSL both leave unconfigurable here.
constexpr std::array<std::pair<std::string_view, std::string_view>, 13> kCipherSuites{{
    {"TLS_AES_128_GCM_SHA256", ""},
    {"TLS_AES_256_GCM_SHA384", ""},
    {"TLS_CHACHA20_POLY1305_SHA256", ""},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA-AES128-SHA"},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA-AES256-SHA"},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA"},
    {"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA"},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384"},
    {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"},
    {"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384"},
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305"},
}};

// The headers exporter-toolkit lets a file set, and the values it admits (none listed: any).
struct HeaderRule {
  std::string_view name;
  std::vector<std::string_view> values;
};
const std::array<HeaderRule, 5> kHeaderRules{{
    {"Strict-Transport-Security", {}},
    {"X-Content-Type-Options", {"nosniff"}},
    {"X-Frame-Options", {"deny", "sameorigin"}},
    {"X-XSS-Protection", {}},
    {"Content-Security-Policy", {}},
}};

constexpr std::array<std::pair<std::string_view, ClientAuth>, 7> kClientAuthTypes{{
    {"", ClientAuth::kNoClientCert},
    {"NoClientCert", ClientAuth::kNoClientCert},
    {"RequestClientCert", ClientAuth::kRequestClientCert},
    {"RequireAnyClientCert", ClientAuth::kRequireAnyClientCert},
    {"RequireClientCert", ClientAuth::kRequireAnyClientCert},  // exporter-toolkit's old name
    {"VerifyClientCertIfGiven", ClientAuth::kVerifyClientCertIfGiven},
    {"RequireAndVerifyClientCert", ClientAuth::kRequireAndVerifyClientCert},
}};

class WebConfigParser {
 public:
  explicit WebConfigParser(std::string_view source) : source_(source) {}

  WebConfig parse(const YAML::Node& root) {
    WebConfig config;
    config.source = source_;
    config.files.push_back(config.source);
    if (!root || root.IsNull()) return config;  // an empty file asks for nothing
    const Entry top{"", root, {line_of(root), ""}};
    if (!root.IsMap()) fail(top, "expected a map at the top level, got " + node_kind(root));
    for (const Entry& item :
         items(top, {"tls_server_config", "http_server_config", "basic_auth_users"},
               {"rate_limit"})) {
      if (item.key == "tls_server_config") parse_tls(item, config);
      if (item.key == "http_server_config") parse_http(item, config);
      if (item.key == "basic_auth_users") parse_users(item, config);
    }
    return config;
  }

 private:
  [[noreturn]] void fail(const Entry& at, const std::string& problem) const {
    fail_config(source_, at.where.line, at.where.path, problem);
  }

  // The entries of a map (or of nothing); `unsupported` keys are exporter-toolkit's that this
  // exporter does not implement: refused, so that a file never means less than it says.
  Entries items(const Entry& map, std::initializer_list<std::string_view> allowed,
                std::initializer_list<std::string_view> unsupported = {}) const {
    if (map.value.IsNull()) return {};
    if (!map.value.IsMap()) fail(map, "expected a map, got " + node_kind(map.value));
    for (const auto& pair : map.value) {
      const YAML::Node key = pair.first;
      if (key.IsScalar() &&
          std::find(unsupported.begin(), unsupported.end(), key.Scalar()) != unsupported.end()) {
        fail_config(source_, line_of(key), join_path(map.where.path, key.Scalar()),
                    "not supported by smtp_exporter");
      }
    }
    return entries_of(source_, map.value, map.where,
                      std::span<const std::string_view>(allowed.begin(), allowed.size()));
  }

  std::string scalar(const Entry& item, std::string_view what) const {
    if (!item.value.IsScalar()) {
      fail(item, "expected " + std::string(what) + ", got " + node_kind(item.value));
    }
    return item.value.Scalar();
  }

  bool boolean(const Entry& item) const {
    const std::string text = scalar(item, "true or false");
    bool value = false;
    if (!YAML::convert<bool>::decode(item.value, value)) {
      fail(item, "expected true or false, not " + quote(text));
    }
    return value;
  }

  // A file name, relative to the config file's directory, that can be read now.
  std::string file_path(const Entry& item, WebConfig& config) const {
    std::string name = scalar(item, "a file name");
    if (name.empty()) fail(item, "must not be empty");
    const std::size_t slash = source_.rfind('/');
    if (name.front() != '/' && slash != std::string_view::npos) {
      name = std::string(source_.substr(0, slash + 1)) + name;
    }
    if (::access(name.c_str(), R_OK) != 0) {
      fail(item, "cannot read " + quote(name) + ": " + std::strerror(errno));
    }
    config.files.push_back(name);
    return name;
  }

  std::string tls_version(const Entry& item) const {
    const std::string text = scalar(item, "a TLS version");
    if (text != "TLS10" && text != "TLS11" && text != "TLS12" && text != "TLS13") {
      fail(item, "unknown TLS version " + quote(text) + " (expected TLS10, TLS11, TLS12, TLS13)");
    }
    return text;
  }

  void parse_tls(const Entry& block, WebConfig& config) const {
    const Entries entries =
        items(block,
              {"cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version",
               "max_version", "cipher_suites", "prefer_server_cipher_suites"},
              {"cert", "key", "client_ca", "client_allowed_sans", "curve_preferences"});
    // As exporter-toolkit: an empty block leaves TLS off.
    if (entries.empty()) return;
    auto tls = std::make_shared<TlsServerConfig>();
    const Entry* where_of[3] = {};  // client_ca_file, client_auth_type, min_version
    for (const Entry& e : entries) {
      if (e.key == "cert_file") tls->cert_file = file_path(e, config);
      if (e.key == "key_file") tls->key_file = file_path(e, config);
      if (e.key == "client_ca_file") {
        tls->client_ca_file = file_path(e, config);
        where_of[0] = &e;
      }
      if (e.key == "client_auth_type") {
        tls->client_auth = client_auth(e);
        where_of[1] = &e;
      }
      if (e.key == "min_version") {
        tls->min_version = tls_version(e);
        where_of[2] = &e;
      }
      if (e.key == "max_version") tls->max_version = tls_version(e);
      if (e.key == "cipher_suites") tls->cipher_suites = cipher_suites(e);
      if (e.key == "prefer_server_cipher_suites") tls->prefer_server_cipher_suites = boolean(e);
    }
    if (tls->cert_file.empty()) fail(block, "cert_file is missing");
    if (tls->key_file.empty()) fail(block, "key_file is missing");
    const bool verifies = tls->client_auth == ClientAuth::kVerifyClientCertIfGiven ||
                          tls->client_auth == ClientAuth::kRequireAndVerifyClientCert;
    if (where_of[0] != nullptr && tls->client_auth == ClientAuth::kNoClientCert) {
      fail(*where_of[0], "a client CA without a client_auth_type that asks for certificates");
    }
    if (verifies && tls->client_ca_file.empty()) {
      fail(*where_of[1], "client_ca_file is needed to verify client certificates");
    }
    if (tls_version_rank(tls->min_version) > tls_version_rank(tls->max_version)) {
      fail(where_of[2] != nullptr ? *where_of[2] : block, "min_version is above max_version");
    }
    try {
      config.tls_context = make_tls_server_context(*tls);
    } catch (const WebTlsError& e) {
      const auto at = std::find_if(entries.begin(), entries.end(),
                                   [&e](const Entry& item) { return item.key == e.key; });
      fail(at != entries.end() ? *at : block, e.what());
    }
    config.tls = std::move(tls);
  }

  static int tls_version_rank(const std::string& name) { return name.back() - '0'; }

  ClientAuth client_auth(const Entry& item) const {
    const std::string text = scalar(item, "a client auth type");
    for (const auto& [name, value] : kClientAuthTypes) {
      if (name == text) return value;
    }
    fail(item, "unknown client_auth_type " + quote(text) +
                   " (expected NoClientCert, RequestClientCert, RequireAnyClientCert, "
                   "VerifyClientCertIfGiven, RequireAndVerifyClientCert)");
  }

  std::vector<std::string> cipher_suites(const Entry& list) const {
    std::vector<std::string> names;
    if (list.value.IsNull()) return names;
    if (!list.value.IsSequence()) fail(list, "expected a list, got " + node_kind(list.value));
    for (std::size_t i = 0; i < list.value.size(); ++i) {
      const YAML::Node node = list.value[i];
      const Entry item{"", node, {line_of(node), list.where.path + "[" + std::to_string(i) + "]"}};
      const std::string name = scalar(item, "a cipher suite name");
      const std::optional<std::string> openssl = openssl_cipher_name(name);
      if (!openssl) {
        fail(item, "unknown cipher suite " + quote(name) +
                       " (expected a name of Go's tls.CipherSuites(), as "
                       "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)");
      }
      if (!openssl->empty()) names.push_back(*openssl);
    }
    return names;
  }

  void parse_http(const Entry& block, WebConfig& config) const {
    for (const Entry& e : items(block, {"headers", "http2"})) {
      // HTTP/2 is not spoken at all; `http2: true` (the default) is accepted so files load.
      if (e.key == "http2") boolean(e);
      if (e.key == "headers") parse_headers(e, config);
    }
  }

  void parse_headers(const Entry& block, WebConfig& config) const {
    for (const Entry& e : items(block, {})) {
      const auto rule = std::find_if(kHeaderRules.begin(), kHeaderRules.end(),
                                     [&e](const HeaderRule& r) { return r.name == e.key; });
      if (rule == kHeaderRules.end()) {
        fail(e,
             "this header cannot be set (allowed: Strict-Transport-Security, "
             "X-Content-Type-Options, X-Frame-Options, X-XSS-Protection, "
             "Content-Security-Policy)");
      }
      const std::string value = e.value.IsNull() ? std::string() : scalar(e, "a header value");
      if (std::any_of(value.begin(), value.end(),
                      [](char c) { return (c >= 0 && c < 0x20 && c != '\t') || c == 0x7f; })) {
        fail(e, "a header value cannot hold control characters");
      }
      if (!rule->values.empty() &&
          std::find(rule->values.begin(), rule->values.end(), value) == rule->values.end()) {
        std::string expected;
        for (const std::string_view v : rule->values) {
          expected += expected.empty() ? "" : ", ";
          expected += v;
        }
        fail(e, "invalid value " + quote(value) + " (expected one of: " + expected + ")");
      }
      if (!value.empty()) config.headers.emplace_back(e.key, value);  // blank: not set
    }
  }

  void parse_users(const Entry& block, WebConfig& config) const {
    for (const Entry& e : items(block, {})) {
      if (e.key.find(':') != std::string::npos) {
        fail(e, "a user name cannot hold ':' (basic auth splits user and password there)");
      }
      const std::string hash = scalar(e, "a bcrypt hash");
      if (!is_bcrypt_hash(hash)) {
        fail(e,
             "not a bcrypt hash (expected $2y$10$ and 53 characters, as "
             "`htpasswd -nBC 10 USER` writes after the colon)");
      }
      config.users.emplace(e.key, hash);
    }
  }

  std::string_view source_;
};

}  // namespace

std::optional<std::string> openssl_cipher_name(std::string_view go_name) {
  for (const auto& [go, openssl] : kCipherSuites) {
    if (go == go_name) return std::string(openssl);
  }
  return std::nullopt;
}

WebConfig parse_web_config(std::string_view yaml, std::string_view source) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    fail_config(source, line_of(e.mark), "", escape_controls(e.msg));
  }
  try {
    return WebConfigParser(source).parse(root);
  } catch (const YAML::Exception& e) {
    fail_config(source, line_of(e.mark), "", escape_controls(e.msg));
  }
}

WebConfig load_web_config_file(const std::string& path) {
  return parse_web_config(read_config_text(path), path);
}

}  // namespace smtp
