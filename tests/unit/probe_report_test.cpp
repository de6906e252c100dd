// Golden output of the probe face, text and JSON, against the scripted fake server: a healthy
// server and the failures a person at a terminal meets. Times and the fake's port vary from run
// to run and are normalised; the certificate's dates are fixed and `now` is given.
//
// To accept a change of the output: SMTP_UPDATE_GOLDEN=1 build/tests/probe_report_test, then
// review the diff of tests/data/probe_report/.
#include "exporter/probe_report.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <regex>
#include <sstream>

#include "probes/tls.h"
#include "tests/support/fake_smtp_server.h"
#include "tests/support/test_certs.h"

namespace smtp {
namespace {

using namespace std::chrono_literals;
using testing::FakeSmtpServer;
using testing::Step;

constexpr std::int64_t kNotAfter = 1'893'456'000;  // 2030-01-01 00:00:00 UTC
constexpr double kNow = kNotAfter - 30 * 86400.0 - 3600;

const std::string kGolden = std::string(SMTP_TEST_DATA_DIR) + "/probe_report/";

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

/// Every time (a number with three decimals, as the text form prints milliseconds) becomes
/// "#.###", right-aligned in the width it had; the port becomes PORT.
std::string normalise_text(const std::string& text, std::uint16_t port) {
  static const std::regex time(" *[0-9]+\\.[0-9]{3}(?![0-9])");
  std::string out;
  auto begin = std::sregex_iterator(text.begin(), text.end(), time);
  std::size_t at = 0;
  for (auto it = begin; it != std::sregex_iterator(); ++it) {
    const std::smatch& m = *it;
    out.append(text, at, static_cast<std::size_t>(m.position()) - at);
    const std::size_t width = static_cast<std::size_t>(m.length());
    out += std::string(width > 5 ? width - 5 : 0, ' ') + "#.###";
    at = static_cast<std::size_t>(m.position() + m.length());
  }
  out.append(text, at);
  return std::regex_replace(out, std::regex("\\b" + std::to_string(port) + "\\b"), "PORT");
}

/// Times in seconds become "<seconds>", the port PORT.
std::string normalise_json(const std::string& text, std::uint16_t port) {
  nlohmann::ordered_json json = nlohmann::ordered_json::parse(text);
  const auto walk = [](auto& self, nlohmann::ordered_json& node) -> void {
    if (node.is_array()) {
      for (auto& item : node) self(self, item);
    } else if (node.is_object()) {
      for (auto& [key, value] : node.items()) {
        if ((key == "seconds" || key == "start_seconds" || key == "duration_seconds") &&
            value.is_number()) {
          value = "<seconds>";
        } else {
          self(self, value);
        }
      }
    }
  };
  walk(walk, json);
  json["target"]["port"] = "PORT";
  return std::regex_replace(json.dump(2) + "\n", std::regex("\\b" + std::to_string(port) + "\\b"),
                            "PORT");
}

void expect_golden(const std::string& name, const std::string& actual) {
  const std::string path = kGolden + name;
  if (std::getenv("SMTP_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(path) << actual;
    return;
  }
  EXPECT_EQ(read_file(path), actual)
      << "golden file " << path << " differs (SMTP_UPDATE_GOLDEN=1 rewrites it)";
}

class ProbeReportTest : public ::testing::Test {
 protected:
  ProbeTarget target(TlsMode mode = TlsMode::kNone, std::chrono::milliseconds timeout = 5s) {
    ProbeTarget t;
    t.host = "127.0.0.1";
    t.helo_name = "probe.test.local";
    t.tls = mode;
    t.timeout = timeout;
    if (mode != TlsMode::kNone) {
      t.tls_context = make_tls_context(TlsSettings{});  // the system's CA store
      t.tls_server_name = "mx.test.local";
    }
    return t;
  }

  /// Probes `port` (a fake's, or one that refuses) with `t` to the end.
  ProbeResult probe(ProbeTarget& t, std::uint16_t port) {
    t.port = port;
    std::optional<ProbeResult> result;
    asio::co_spawn(
        io_, [&]() -> asio::awaitable<void> { result = co_await run_probe(t); }, asio::detached);
    // A guard against a hang, not a timing assertion.
    const auto give_up = std::chrono::steady_clock::now() + t.timeout + 20s;
    while (!result && std::chrono::steady_clock::now() < give_up) io_.run_one_for(100ms);
    while (server_ && server_->finished() < server_->connections() &&
           std::chrono::steady_clock::now() < give_up) {
      io_.run_one_for(100ms);
    }
    if (!result) ADD_FAILURE() << "the probe did not finish";
    return result.value_or(ProbeResult{});
  }

  ProbeResult serve(std::vector<Step> script, ProbeTarget& t) {
    server_.emplace(io_, std::move(script));
    return probe(t, server_->port());
  }

  /// Both forms of `r` against their golden files NAME.txt and NAME.json.
  void expect_goldens(const std::string& name, const ProbeTarget& t, const ProbeResult& r,
                      bool json = true) {
    expect_golden(name + ".txt", normalise_text(render_probe_text(t, r, kNow), t.port));
    if (json) {
      expect_golden(name + ".json", normalise_json(render_probe_json(t, r, kNow), t.port));
    }
  }

  asio::io_context io_;
  std::optional<FakeSmtpServer> server_;
};

TEST_F(ProbeReportTest, Healthy) {
  ProbeTarget t = target();
  const ProbeResult r =
      serve(testing::polite_dialogue("220 fake.test.local ESMTP Postfix (Debian/GNU)\r\n"), t);
  ASSERT_TRUE(r.success()) << r.error_detail;
  expect_goldens("healthy", t, r);
}

TEST_F(ProbeReportTest, ConnectionRefused) {
  testing::RefusingPort refusing(io_);
  ProbeTarget t = target();
  const ProbeResult r = probe(t, refusing.port());
  ASSERT_EQ(r.failure, FailureReason::kConnectRefused);
  expect_goldens("connect_refused", t, r);
}

TEST_F(ProbeReportTest, QuitAnsweredWith500) {
  ProbeTarget t = target();
  const ProbeResult r =
      serve({testing::send("220 fake.test.local ESMTP\r\n"), testing::expect("EHLO "),
             testing::send("250 fake.test.local\r\n"), testing::expect("QUIT"),
             testing::send("500 5.5.1 what?\r\n"), testing::close()},
            t);
  ASSERT_EQ(r.failure, FailureReason::kQuitUnexpectedCode);
  expect_goldens("quit_500", t, r, /*json=*/false);
}

TEST_F(ProbeReportTest, GreetingRefusesService) {
  ProbeTarget t = target();
  const ProbeResult r =
      serve({testing::send("554 5.7.1 fake.test.local Your address is listed at a blocklist\r\n"),
             testing::expect("QUIT"), testing::send("221 Bye\r\n"), testing::close()},
            t);
  ASSERT_EQ(r.failure, FailureReason::kGreetingRejected);
  expect_goldens("greeting_554", t, r);
}

TEST_F(ProbeReportTest, AnSshServerOnThePort) {
  ProbeTarget t = target();
  const ProbeResult r = serve(
      {testing::send("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"), testing::expect_close()}, t);
  ASSERT_EQ(r.failure, FailureReason::kGreetingMalformed);
  expect_goldens("ssh", t, r, /*json=*/false);
}

TEST_F(ProbeReportTest, SilenceUntilTheTimeout) {
  ProbeTarget t = target(TlsMode::kNone, 300ms);
  const ProbeResult r = serve({testing::stall()}, t);
  ASSERT_EQ(r.failure, FailureReason::kGreetingTimeout);
  expect_goldens("greeting_timeout", t, r, /*json=*/false);
}

TEST_F(ProbeReportTest, ImplicitTlsToAPlaintextServer) {
  ProbeTarget t = target(TlsMode::kImplicit);
  const ProbeResult r = serve({testing::send("220 fake.test.local ESMTP\r\n"),
                               testing::expect_raw("\x16\x03"), testing::close()},
                              t);
  ASSERT_EQ(r.failure, FailureReason::kTlsHandshakeFailed);
  expect_goldens("implicit_tls_to_plaintext", t, r, /*json=*/false);
}

TEST_F(ProbeReportTest, StarttlsWithACertificateThatDoesNotVerify) {
  testing::TestCa ca;
  testing::LeafSpec spec;
  spec.not_after = kNotAfter;
  spec.ip_addresses = {"127.0.0.1"};
  const testing::Leaf leaf = ca.issue(spec);
  ProbeTarget t = target(TlsMode::kStartTls);
  const ProbeResult r =
      serve({testing::send("220 mx.test.local ESMTP\r\n"), testing::expect("EHLO "),
             testing::send("250-mx.test.local\r\n250 STARTTLS\r\n"), testing::expect("STARTTLS"),
             testing::send("220 2.0.0 Ready to start TLS\r\n"),
             testing::tls_handshake(leaf.server_context), testing::expect("EHLO "),
             testing::send("250 mx.test.local\r\n"), testing::expect("QUIT"),
             testing::send("221 2.0.0 Bye\r\n"), testing::close()},
            t);
  ASSERT_EQ(r.failure, FailureReason::kTlsVerifyFailed);
  expect_goldens("starttls_unverified", t, r);
}

}  // namespace
}  // namespace smtp
