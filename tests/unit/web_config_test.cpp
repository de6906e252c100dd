#include "exporter/web_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "exporter/config.h"
#include "tests/support/test_certs.h"

namespace smtp {
namespace {

using ::testing::HasSubstr;

// "user" / "pass", cost 10 (python3 crypt, as htpasswd -nbBC 10 writes it).
constexpr std::string_view kHash = "$2b$10$8CC72ysHEeiRUOp40VfFG.UK61B4UNfuNBBWLxkcDFHC1XD7knivW";

// The certificates live in the CA's directory; the config file "is" there too, so that relative
// names resolve against it.
class WebConfigTest : public ::testing::Test {
 protected:
  WebConfigTest() : leaf_(ca_.issue()) {}

  std::string source() const { return ca_.dir() + "/web.yml"; }

  WebConfig parse(const std::string& yaml) { return parse_web_config(yaml, source()); }

  // The ConfigError's message, or a failure if the text parses.
  std::string error_of(const std::string& yaml) {
    try {
      parse(yaml);
    } catch (const ConfigError& e) {
      return e.what();
    }
    ADD_FAILURE() << "parsed without an error:\n" << yaml;
    return "";
  }

  std::string tls_block() const {
    return "tls_server_config:\n  cert_file: " + leaf_.cert_file +
           "\n  key_file: " + leaf_.key_file + "\n";
  }

  testing::TestCa ca_;
  testing::Leaf leaf_;
};

TEST_F(WebConfigTest, EmptyFileAsksForNothing) {
  const WebConfig config = parse("");
  EXPECT_EQ(config.tls, nullptr);
  EXPECT_EQ(config.tls_context, nullptr);
  EXPECT_TRUE(config.users.empty());
  EXPECT_TRUE(config.headers.empty());
  EXPECT_EQ(config.files, std::vector<std::string>{source()});
}

TEST_F(WebConfigTest, TlsWithDefaults) {
  const WebConfig config = parse(tls_block());
  ASSERT_NE(config.tls, nullptr);
  ASSERT_NE(config.tls_context, nullptr);
  EXPECT_EQ(config.tls->cert_file, leaf_.cert_file);
  EXPECT_EQ(config.tls->key_file, leaf_.key_file);
  EXPECT_EQ(config.tls->client_auth, ClientAuth::kNoClientCert);
  EXPECT_EQ(config.tls->min_version, "TLS12");
  EXPECT_EQ(config.tls->max_version, "TLS13");
  EXPECT_TRUE(config.tls->cipher_suites.empty());
  EXPECT_TRUE(config.tls->prefer_server_cipher_suites);
  // The certificate files are watched with the file.
  EXPECT_THAT(config.files, ::testing::ElementsAre(source(), leaf_.cert_file, leaf_.key_file));
}

TEST_F(WebConfigTest, EmptyTlsBlockLeavesTlsOff) {
  EXPECT_EQ(parse("tls_server_config:\n").tls, nullptr);
  EXPECT_EQ(parse("tls_server_config: {}\n").tls, nullptr);
}

TEST_F(WebConfigTest, RelativeFileNamesStartAtTheFilesDirectory) {
  const std::string cert = leaf_.cert_file.substr(ca_.dir().size() + 1);
  const std::string key = leaf_.key_file.substr(ca_.dir().size() + 1);
  const WebConfig config =
      parse("tls_server_config:\n  cert_file: " + cert + "\n  key_file: " + key + "\n");
  ASSERT_NE(config.tls, nullptr);
  EXPECT_EQ(config.tls->cert_file, ca_.dir() + "/" + cert);
}

TEST_F(WebConfigTest, EveryTlsKey) {
  const WebConfig config = parse(tls_block() + "  client_ca_file: " + ca_.ca_file() +
                                 "\n"
                                 "  client_auth_type: RequireAndVerifyClientCert\n"
                                 "  min_version: TLS13\n"
                                 "  max_version: TLS13\n"
                                 "  prefer_server_cipher_suites: false\n"
                                 "  cipher_suites:\n"
                                 "    - TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384\n"
                                 "    - TLS_AES_128_GCM_SHA256\n"
                                 "    - TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256\n");
  ASSERT_NE(config.tls, nullptr);
  EXPECT_EQ(config.tls->client_ca_file, ca_.ca_file());
  EXPECT_EQ(config.tls->client_auth, ClientAuth::kRequireAndVerifyClientCert);
  EXPECT_EQ(config.tls->min_version, "TLS13");
  EXPECT_FALSE(config.tls->prefer_server_cipher_suites);
  // The TLS 1.3 suite is accepted and left out: TLS 1.3 suites are not configurable.
  EXPECT_THAT(config.tls->cipher_suites, ::testing::ElementsAre("ECDHE-ECDSA-AES256-GCM-SHA384",
                                                                "ECDHE-RSA-CHACHA20-POLY1305"));
}

TEST_F(WebConfigTest, ClientAuthTypes) {
  const std::string ca = "  client_ca_file: " + ca_.ca_file() + "\n";
  const std::pair<std::string, ClientAuth> cases[] = {
      {"NoClientCert", ClientAuth::kNoClientCert},
      {"RequestClientCert", ClientAuth::kRequestClientCert},
      {"RequireAnyClientCert", ClientAuth::kRequireAnyClientCert},
      {"RequireClientCert", ClientAuth::kRequireAnyClientCert},
      {"VerifyClientCertIfGiven", ClientAuth::kVerifyClientCertIfGiven},
      {"RequireAndVerifyClientCert", ClientAuth::kRequireAndVerifyClientCert},
  };
  for (const auto& [name, expected] : cases) {
    const bool with_ca = expected != ClientAuth::kNoClientCert;
    const WebConfig config =
        parse(tls_block() + (with_ca ? ca : "") + "  client_auth_type: " + name + "\n");
    ASSERT_NE(config.tls, nullptr) << name;
    EXPECT_EQ(config.tls->client_auth, expected) << name;
  }
}

TEST_F(WebConfigTest, OldTlsVersionsAreAcceptedAsExporterToolkitDoes) {
  const WebConfig config = parse(tls_block() + "  min_version: TLS10\n  max_version: TLS11\n");
  ASSERT_NE(config.tls, nullptr);
  EXPECT_EQ(config.tls->min_version, "TLS10");
  EXPECT_EQ(config.tls->max_version, "TLS11");
}

TEST_F(WebConfigTest, UsersAndHeaders) {
  const WebConfig config = parse(std::string("basic_auth_users:\n  alice: ") + std::string(kHash) +
                                 "\n  bob: '" + std::string(kHash) +
                                 "'\n"
                                 "http_server_config:\n"
                                 "  http2: true\n"
                                 "  headers:\n"
                                 "    X-Frame-Options: deny\n"
                                 "    X-Content-Type-Options: nosniff\n"
                                 "    Content-Security-Policy: default-src 'self'\n"
                                 "    X-XSS-Protection: ''\n");
  EXPECT_EQ(config.tls, nullptr);
  ASSERT_EQ(config.users.size(), 2u);
  EXPECT_EQ(config.users.at("alice"), kHash);
  using Header = std::pair<std::string, std::string>;
  // A blank value is not set.
  EXPECT_THAT(config.headers,
              ::testing::ElementsAre(Header{"X-Frame-Options", "deny"},
                                     Header{"X-Content-Type-Options", "nosniff"},
                                     Header{"Content-Security-Policy", "default-src 'self'"}));
}

TEST_F(WebConfigTest, ErrorsNameFileLineAndKey) {
  const std::string file = source();
  EXPECT_EQ(error_of("tls_server_config:\n  cert_file: a\n  colour: blue\n"),
            file +
                ":3: tls_server_config.colour: unknown key (expected one of: cert_file, "
                "key_file, client_ca_file, client_auth_type, min_version, max_version, "
                "cipher_suites, prefer_server_cipher_suites)");
  EXPECT_THAT(error_of("basic_auth_users: {}\nextra: 1\n"),
              HasSubstr(file + ":2: extra: unknown key"));
  EXPECT_EQ(error_of("rate_limit:\n  burst: 1\n"),
            file + ":1: rate_limit: not supported by smtp_exporter");
  EXPECT_EQ(error_of(tls_block() + "  client_allowed_sans: [a]\n"),
            file + ":4: tls_server_config.client_allowed_sans: not supported by smtp_exporter");
  EXPECT_EQ(error_of("tls_server_config:\n  cert_file: /nonexistent/cert.pem\n"),
            file +
                ":2: tls_server_config.cert_file: cannot read \"/nonexistent/cert.pem\": No "
                "such file or directory");
  EXPECT_EQ(error_of("tls_server_config:\n  cert_file: " + leaf_.cert_file + "\n"),
            file + ":1: tls_server_config: key_file is missing");
  EXPECT_EQ(error_of(tls_block() + "  min_version: TLS14\n"),
            file +
                ":4: tls_server_config.min_version: unknown TLS version \"TLS14\" (expected "
                "TLS10, TLS11, TLS12, TLS13)");
  EXPECT_EQ(error_of(tls_block() + "  min_version: TLS13\n  max_version: TLS12\n"),
            file + ":4: tls_server_config.min_version: min_version is above max_version");
  EXPECT_THAT(error_of(tls_block() + "  client_auth_type: Sometimes\n"),
              HasSubstr(file + ":4: tls_server_config.client_auth_type: unknown client_auth_type "
                               "\"Sometimes\""));
  EXPECT_EQ(error_of(tls_block() + "  client_auth_type: RequireAndVerifyClientCert\n"),
            file +
                ":4: tls_server_config.client_auth_type: client_ca_file is needed to verify "
                "client certificates");
  EXPECT_EQ(error_of(tls_block() + "  client_ca_file: " + ca_.ca_file() + "\n"),
            file +
                ":4: tls_server_config.client_ca_file: a client CA without a client_auth_type "
                "that asks for certificates");
  EXPECT_THAT(error_of(tls_block() + "  cipher_suites:\n    - TLS_RSA_WITH_RC4_128_SHA\n"),
              HasSubstr(file + ":5: tls_server_config.cipher_suites[0]: unknown cipher suite "
                               "\"TLS_RSA_WITH_RC4_128_SHA\""));
  EXPECT_EQ(error_of(tls_block() + "  prefer_server_cipher_suites: maybe\n"),
            file +
                ":4: tls_server_config.prefer_server_cipher_suites: expected true or false, "
                "not \"maybe\"");
  EXPECT_THAT(error_of("http_server_config:\n  headers:\n    Content-Type: text/html\n"),
              HasSubstr(file + ":3: http_server_config.headers.Content-Type: this header cannot "
                               "be set"));
  EXPECT_EQ(error_of("http_server_config:\n  headers:\n    X-Frame-Options: allow\n"),
            file +
                ":3: http_server_config.headers.X-Frame-Options: invalid value \"allow\" "
                "(expected one of: deny, sameorigin)");
  EXPECT_THAT(error_of("basic_auth_users:\n  alice: secret\n"),
              HasSubstr(file + ":2: basic_auth_users.alice: not a bcrypt hash"));
  EXPECT_THAT(error_of("basic_auth_users:\n  alice: " + std::string(kHash) + "\n  alice: x\n"),
              HasSubstr(file + ":3: basic_auth_users.alice: duplicate key"));
  EXPECT_THAT(error_of("basic_auth_users: [alice]\n"),
              HasSubstr(file + ":1: basic_auth_users: expected a map, got a list"));
  EXPECT_THAT(error_of("tls_server_config: [\n"), HasSubstr(file + ":"));
}

TEST_F(WebConfigTest, CertificateThatDoesNotLoadIsBlamedOnItsKey) {
  const std::string not_pem = ca_.dir() + "/not.pem";
  std::ofstream(not_pem) << "not a certificate\n";
  EXPECT_THAT(error_of("tls_server_config:\n  cert_file: " + not_pem +
                       "\n  key_file: " + leaf_.key_file + "\n"),
              HasSubstr(source() + ":2: tls_server_config.cert_file: " + not_pem + ": "));
  const testing::Leaf other = ca_.issue();
  EXPECT_THAT(error_of("tls_server_config:\n  cert_file: " + leaf_.cert_file +
                       "\n  key_file: " + other.key_file + "\n"),
              HasSubstr(source() + ":3: tls_server_config.key_file: "));
}

TEST_F(WebConfigTest, LoadsFromAFile) {
  const std::string path = source();
  std::ofstream(path) << tls_block();
  const WebConfig config = load_web_config_file(path);
  EXPECT_NE(config.tls_context, nullptr);
  EXPECT_THROW(load_web_config_file(ca_.dir() + "/missing.yml"), ConfigError);
}

TEST(OpensslCipherName, MapsGoNames) {
  EXPECT_EQ(openssl_cipher_name("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
            "ECDHE-RSA-AES128-GCM-SHA256");
  EXPECT_EQ(openssl_cipher_name("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"), "ECDHE-ECDSA-AES128-SHA");
  EXPECT_EQ(openssl_cipher_name("TLS_CHACHA20_POLY1305_SHA256"), "");
  EXPECT_EQ(openssl_cipher_name("ECDHE-RSA-AES128-GCM-SHA256"), std::nullopt);
}

}  // namespace
}  // namespace smtp
