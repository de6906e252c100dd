// The probe against a scripted fake server on loopback: every failure reason the dialogue can
// produce, the codes, and the phase timings.
#include "probes/smtp_probe.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <optional>

#include "exporter/config.h"
#include "probes/resolve.h"
#include "tests/support/fake_dns_server.h"
#include "tests/support/fake_smtp_server.h"

namespace smtp {
namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;
using testing::FakeSmtpServer;
using testing::Step;

class SmtpProbeTest : public ::testing::Test {
 protected:
  ProbeResult probe(std::uint16_t port, std::chrono::milliseconds timeout = 2s) {
    ProbeTarget target;
    target.host = "127.0.0.1";
    target.port = port;
    target.helo_name = "monitor.test.local";
    target.timeout = timeout;
    std::optional<ProbeResult> result;
    asio::co_spawn(
        io_, [&]() -> asio::awaitable<void> { result = co_await run_probe(target); },
        asio::detached);
    // The fake server keeps accepting, so run() would never return: run until the probe is done.
    while (!result) io_.run_one();
    return *result;
  }

  ProbeResult probe_script(std::vector<Step> script, std::chrono::milliseconds timeout = 2s) {
    server_.emplace(io_, std::move(script));
    return probe(server_->port(), timeout);
  }

  asio::io_context io_;
  std::optional<FakeSmtpServer> server_;
};

std::chrono::milliseconds ms(std::optional<std::chrono::nanoseconds> d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d.value_or(-1ms));
}

/// An exporter out of file descriptors, for as long as it lives: the soft RLIMIT_NOFILE is
/// lowered to a little above the highest descriptor in use and every free one below it is taken,
/// but `spare`. The destructor gives them back and restores the limit.
class DescriptorsSpent {
 public:
  explicit DescriptorsSpent(int spare) {
    int highest = 0;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
      highest = std::max(highest, std::stoi(entry.path().filename().string()));
    }
    if (getrlimit(RLIMIT_NOFILE, &saved_) != 0) throw std::runtime_error("getrlimit failed");
    rlimit lowered = saved_;
    lowered.rlim_cur = static_cast<rlim_t>(highest) + 32;
    if (setrlimit(RLIMIT_NOFILE, &lowered) != 0) throw std::runtime_error("setrlimit failed");
    for (;;) {
      const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        if (errno != EMFILE) throw std::runtime_error("open /dev/null failed");
        break;
      }
      held_.push_back(fd);
    }
    for (int i = 0; i < spare && !held_.empty(); ++i) {
      ::close(held_.back());
      held_.pop_back();
    }
  }
  ~DescriptorsSpent() {
    for (int fd : held_) ::close(fd);
    setrlimit(RLIMIT_NOFILE, &saved_);
  }
  DescriptorsSpent(const DescriptorsSpent&) = delete;
  DescriptorsSpent& operator=(const DescriptorsSpent&) = delete;

 private:
  rlimit saved_{};
  std::vector<int> held_;
};

TEST_F(SmtpProbeTest, PoliteServerSucceeds) {
  ProbeResult r = probe_script(testing::polite_dialogue());
  EXPECT_EQ(r.failure, FailureReason::kNone) << r.error_detail;
  EXPECT_TRUE(r.success());
  EXPECT_EQ(r.greeting_code, 220);
  EXPECT_EQ(r.ehlo_code, 250);
  EXPECT_EQ(r.quit_code, 221);
  EXPECT_TRUE(r.quit_success());
  EXPECT_FALSE(r.helo_fallback);
  ASSERT_TRUE(r.banner.has_value());
  EXPECT_EQ(r.banner->hostname, "fake.test.local");
  EXPECT_EQ(r.peer, "127.0.0.1:" + std::to_string(server_->port()));
  // An IP literal needs no lookup: the resolve phase did not run.
  EXPECT_FALSE(r.phase(Phase::kResolve).has_value());
  for (Phase p : {Phase::kConnect, Phase::kGreeting, Phase::kEhlo, Phase::kQuit}) {
    EXPECT_TRUE(r.phase(p).has_value()) << phase_name(p);
  }
  EXPECT_FALSE(r.phase(Phase::kStartTls).has_value());
  EXPECT_TRUE(r.greeting_latency.has_value());
  EXPECT_GE(r.total, *r.phase(Phase::kGreeting));
  EXPECT_EQ(server_->received_lines(),
            (std::vector<std::string>{"EHLO monitor.test.local", "QUIT"}));
  EXPECT_TRUE(server_->script_errors().empty());
}

TEST_F(SmtpProbeTest, TranscriptRecordsBothDirections) {
  ProbeResult r = probe_script(testing::polite_dialogue());
  ASSERT_GE(r.transcript.size(), 6u);
  EXPECT_EQ(r.transcript[0].direction, TranscriptLine::Direction::kReceived);
  EXPECT_EQ(r.transcript[0].text, "220 fake.test.local ESMTP ready");
  EXPECT_EQ(r.transcript[1].direction, TranscriptLine::Direction::kSent);
  EXPECT_EQ(r.transcript[1].text, "EHLO monitor.test.local");
  EXPECT_EQ(r.transcript.back().text, "221 2.0.0 Bye");
  for (std::size_t i = 1; i < r.transcript.size(); ++i) {
    EXPECT_GE(r.transcript[i].at, r.transcript[i - 1].at);
  }
}

TEST_F(SmtpProbeTest, DelayedGreetingIsMeasuredFromConnect) {
  auto script = testing::polite_dialogue();
  script.insert(script.begin(), testing::delay(150ms));
  ProbeResult r = probe_script(script);
  ASSERT_TRUE(r.success()) << r.error_detail;
  // Not a speed test: the delay must show, and nothing unrelated may be added to it.
  EXPECT_GE(ms(r.greeting_latency), 150ms);
  EXPECT_LT(ms(r.greeting_latency), 150ms + 500ms);
  EXPECT_GE(ms(r.phase(Phase::kGreeting)), 150ms);
  EXPECT_LT(*r.phase(Phase::kConnect), *r.phase(Phase::kGreeting));  // the wait is the greeting's
}

TEST_F(SmtpProbeTest, MultiLineGreetingEndsAtItsLastLine) {
  ProbeResult r = probe_script({testing::send("220-fake.test.local first\r\n"),
                                testing::delay(120ms), testing::send("220 second\r\n"),
                                testing::expect("EHLO"), testing::send("250 ok\r\n"),
                                testing::expect("QUIT"), testing::send("221 bye\r\n")});
  ASSERT_TRUE(r.success()) << r.error_detail;
  EXPECT_GE(ms(r.greeting_latency), 120ms);
  EXPECT_EQ(r.banner->hostname, "fake.test.local");
}

TEST_F(SmtpProbeTest, RefusedConnection) {
  testing::RefusingPort refusing(io_);
  ProbeResult r = probe(refusing.port());
  EXPECT_EQ(r.failure, FailureReason::kConnectRefused);
  EXPECT_EQ(r.failed_phase, Phase::kConnect);
  EXPECT_EQ(r.greeting_code, 0);
  EXPECT_EQ(r.quit_code, 0);
  EXPECT_FALSE(r.phase(Phase::kGreeting).has_value());
}

TEST_F(SmtpProbeTest, ConnectTimeout) {
  testing::BlackholePort blackhole(io_);
  ProbeResult r = probe(blackhole.port(), 300ms);
  EXPECT_EQ(r.failure, FailureReason::kConnectTimeout) << r.error_detail;
  EXPECT_GE(ms(r.total), 300ms);
}

TEST_F(SmtpProbeTest, NoSocketIsExporterOverloaded) {
  // Not the server's fault, so never connect_error: the server is fine and listening.
  server_.emplace(io_, testing::polite_dialogue());
  io_.poll();  // the server waits in accept before the descriptors go (accept needs one)
  std::optional<ProbeResult> r;
  {
    DescriptorsSpent spent(0);
    r = probe(server_->port());
  }
  EXPECT_EQ(reason_name(r->failure), "exporter_overloaded") << r->error_detail;
  EXPECT_EQ(r->failed_phase, Phase::kConnect);
  EXPECT_EQ(r->error_detail, "connect: no socket: the exporter's open-file limit is spent");
  EXPECT_EQ(r->greeting_code, 0);
  // With descriptors back, the same server answers.
  ProbeResult again = probe(server_->port());
  EXPECT_TRUE(again.success()) << reason_name(again.failure) << ": " << again.error_detail;
}

TEST_F(SmtpProbeTest, SilentServerIsGreetingTimeout) {
  ProbeResult r = probe_script({testing::stall()}, 300ms);
  EXPECT_EQ(r.failure, FailureReason::kGreetingTimeout);
  EXPECT_EQ(r.failed_phase, Phase::kGreeting);
  EXPECT_GE(ms(r.total), 300ms);
  EXPECT_FALSE(r.greeting_latency.has_value());
}

TEST_F(SmtpProbeTest, DribbledGreetingIsGreetingTimeout) {
  // A byte every 50ms never completes the line within the 300ms deadline.
  ProbeResult r = probe_script(testing::dribble("220 slow.test.local ESMTP\r\n", 50ms), 300ms);
  EXPECT_EQ(r.failure, FailureReason::kGreetingTimeout);
  ASSERT_FALSE(r.transcript.empty());
  EXPECT_EQ(r.transcript.front().text.substr(0, 3), "220");  // the partial line is kept
}

TEST_F(SmtpProbeTest, RejectingGreetingStillSendsQuit) {
  ProbeResult r = probe_script({testing::send("554 5.3.2 fake.test.local no service\r\n"),
                                testing::expect("QUIT"), testing::send("221 2.0.0 Bye\r\n")});
  EXPECT_EQ(r.failure, FailureReason::kGreetingRejected);
  EXPECT_EQ(r.greeting_code, 554);
  EXPECT_EQ(r.quit_code, 221);
  EXPECT_TRUE(r.phase(Phase::kQuit).has_value());
  EXPECT_FALSE(r.phase(Phase::kEhlo).has_value());
  EXPECT_EQ(server_->received_lines(), std::vector<std::string>{"QUIT"});
}

TEST_F(SmtpProbeTest, TemporaryRejection421) {
  ProbeResult r = probe_script({testing::send("421 4.3.2 busy, try later\r\n"), testing::close()});
  EXPECT_EQ(r.failure, FailureReason::kGreetingRejected);
  EXPECT_EQ(r.greeting_code, 421);
  EXPECT_EQ(r.quit_code, 0);
}

TEST_F(SmtpProbeTest, GarbageIsMalformed) {
  for (std::string garbage :
       {std::string("HTTP/1.1 400 Bad Request\r\n"), std::string("220\0 nul\r\n", 10),
        std::string("999 nope\r\n"), std::string("\x16\x03\x01\x02\x00\x01\x00", 7)}) {
    ProbeResult r = probe_script({testing::send(garbage), testing::stall()}, 1s);
    EXPECT_EQ(r.failure, FailureReason::kGreetingMalformed) << garbage;
    EXPECT_EQ(r.greeting_code, 0);
  }
}

TEST_F(SmtpProbeTest, MalformedLaterRepliesAreReplyMalformed) {
  // Only the greeting's own garbage is greeting_malformed: the server greeted properly here.
  struct Case {
    std::vector<Step> script;
    Phase phase;
  };
  const std::vector<Case> cases = {
      {{testing::send("220 fake.test.local\r\n"), testing::expect("EHLO"),
        testing::send("HTTP/1.1 400 Bad Request\r\n"), testing::stall()},
       Phase::kEhlo},
      {{testing::send("220 fake.test.local\r\n"), testing::expect("EHLO"),
        testing::send("250-fake\r\n251 mixed codes\r\n"), testing::stall()},
       Phase::kEhlo},
      {{testing::send("220 fake.test.local\r\n"), testing::expect("EHLO"),
        testing::send("502 no EHLO\r\n"), testing::expect("HELO"),
        testing::send(std::string("250 fake\0\r\n", 11)), testing::stall()},
       Phase::kEhlo},
      {{testing::send("220 fake.test.local\r\n"), testing::expect("EHLO"),
        testing::send("250 ok\r\n"), testing::expect("QUIT"), testing::send("999 bye\r\n"),
        testing::stall()},
       Phase::kQuit},
  };
  for (const Case& c : cases) {
    ProbeResult r = probe_script(c.script, 1s);
    EXPECT_EQ(r.failure, FailureReason::kReplyMalformed)
        << phase_name(c.phase) << ": " << r.error_detail;
    EXPECT_EQ(r.failed_phase, c.phase);
    EXPECT_EQ(r.greeting_code, 220);
    EXPECT_NE(r.error_detail.find("not an SMTP reply"), std::string::npos) << r.error_detail;
  }
}

TEST_F(SmtpProbeTest, OverlongLine) {
  ProbeResult r =
      probe_script({testing::send("220 " + std::string(3000, 'a') + "\r\n"), testing::stall()});
  EXPECT_EQ(r.failure, FailureReason::kLineTooLong);
  EXPECT_EQ(r.failed_phase, Phase::kGreeting);
}

TEST_F(SmtpProbeTest, EndlessLineWithoutNewlineIsCutAtTheLimit) {
  // The server never ends the line; the probe stops reading at the limit, not at the deadline.
  ProbeResult r =
      probe_script({testing::send("220 " + std::string(10000, 'b')), testing::stall()}, 5s);
  EXPECT_EQ(r.failure, FailureReason::kLineTooLong);
  EXPECT_LT(ms(r.total), 5s);
}

TEST_F(SmtpProbeTest, TooManyLines) {
  std::string reply;
  for (int i = 0; i < 150; ++i) reply += "220-line\r\n";
  ProbeResult r = probe_script({testing::send(reply + "220 end\r\n"), testing::stall()});
  EXPECT_EQ(r.failure, FailureReason::kLineTooLong);
}

TEST_F(SmtpProbeTest, EveryFailureHasADetailNamingItsPhase) {
  // What the log line's err="..." shows: never empty, and it says where the probe stopped.
  const std::string greeting = "220 fake.test.local\r\n";
  const std::string overlong = "250 " + std::string(3000, 'a') + "\r\n";
  std::string many;
  for (int i = 0; i < 150; ++i) many += "250-line\r\n";
  struct Case {
    std::vector<Step> script;
    FailureReason reason;
    std::string detail_has;  // besides the phase
  };
  using testing::expect;
  using testing::send;
  const std::vector<Case> cases = {
      {{testing::stall()}, FailureReason::kGreetingTimeout, "in time"},
      {testing::dribble(greeting, 100ms), FailureReason::kGreetingTimeout, "in time"},
      {{send("SSH-2.0-OpenSSH_9.2\r\n"), testing::stall()},
       FailureReason::kGreetingMalformed,
       "not an SMTP reply"},
      {{send("250 fake.test.local\r\n"), testing::stall()},
       FailureReason::kGreetingMalformed,
       "250"},
      {{send("554 no\r\n"), expect("QUIT"), send("221 bye\r\n")},
       FailureReason::kGreetingRejected,
       "554"},
      {{send(overlong), testing::stall()}, FailureReason::kLineTooLong, "line over 2048 bytes"},
      {{send("220 " + std::string(5000, 'b')), testing::stall()},
       FailureReason::kLineTooLong,
       "line over 2048 bytes"},
      {{send(many + "250 end\r\n"), testing::stall()},
       FailureReason::kLineTooLong,
       "more than 100 lines"},
      {{testing::close()}, FailureReason::kConnectionClosed, "closed"},
      {{send(greeting), expect("EHLO"), testing::reset()}, FailureReason::kConnectionClosed, ""},
      {{send(greeting), expect("EHLO"), testing::stall()}, FailureReason::kEhloTimeout, "in time"},
      {{send(greeting), expect("EHLO"), send("550 no\r\n"), expect("HELO"), send("550 no\r\n"),
        expect("QUIT"), send("221 bye\r\n")},
       FailureReason::kEhloRejected,
       "550"},
      {{send(greeting), expect("EHLO"), send("250 a\0\r\n"s), testing::stall()},
       FailureReason::kReplyMalformed,
       "not an SMTP reply"},
      {{send(greeting), expect("EHLO"), send(overlong), testing::stall()},
       FailureReason::kLineTooLong,
       "line over 2048 bytes"},
      {{send(greeting), expect("EHLO"), send(many), testing::stall()},
       FailureReason::kLineTooLong,
       "more than 100 lines"},
      {{send(greeting), expect("EHLO"), send("250 ok\r\n"), expect("QUIT"), testing::stall()},
       FailureReason::kQuitTimeout,
       "in time"},
      {{send(greeting), expect("EHLO"), send("250 ok\r\n"), expect("QUIT"), send("500 what\r\n")},
       FailureReason::kQuitUnexpectedCode,
       "500"},
      {{send(greeting), expect("EHLO"), send("250 ok\r\n"), expect("QUIT"), testing::close()},
       FailureReason::kConnectionClosed,
       "closed"},
  };
  for (const Case& c : cases) {
    ProbeResult r = probe_script(c.script, 300ms);
    EXPECT_EQ(reason_name(r.failure), reason_name(c.reason)) << r.error_detail;
    ASSERT_TRUE(r.failed_phase.has_value()) << reason_name(c.reason);
    const std::string phase(phase_name(*r.failed_phase));
    EXPECT_TRUE(r.error_detail.starts_with(phase + ": ")) << phase << " / " << r.error_detail;
    EXPECT_NE(r.error_detail.find(c.detail_has), std::string::npos) << r.error_detail;
  }
  testing::RefusingPort refusing(io_);
  ProbeResult r = probe(refusing.port());
  EXPECT_EQ(r.failure, FailureReason::kConnectRefused);
  EXPECT_TRUE(r.error_detail.starts_with("connect: ")) << r.error_detail;
}

TEST_F(SmtpProbeTest, CloseBeforeGreeting) {
  ProbeResult r = probe_script({testing::close()});
  EXPECT_EQ(r.failure, FailureReason::kConnectionClosed);
  EXPECT_EQ(r.failed_phase, Phase::kGreeting);
}

TEST_F(SmtpProbeTest, ResetAfterGreeting) {
  ProbeResult r = probe_script(
      {testing::send("220 fake.test.local\r\n"), testing::expect("EHLO"), testing::reset()});
  EXPECT_EQ(r.failure, FailureReason::kConnectionClosed);
  EXPECT_EQ(r.failed_phase, Phase::kEhlo);
  EXPECT_EQ(r.greeting_code, 220);
}

TEST_F(SmtpProbeTest, CloseInsteadOfAnsweringQuit) {
  ProbeResult r =
      probe_script({testing::send("220 fake.test.local\r\n"), testing::expect("EHLO"),
                    testing::send("250 ok\r\n"), testing::expect("QUIT"), testing::close()});
  EXPECT_EQ(r.failure, FailureReason::kConnectionClosed);
  EXPECT_EQ(r.failed_phase, Phase::kQuit);
  EXPECT_EQ(r.quit_code, 0);
}

TEST_F(SmtpProbeTest, SilenceAfterEhloIsEhloTimeout) {
  ProbeResult r = probe_script(
      {testing::send("220 fake.test.local\r\n"), testing::expect("EHLO"), testing::stall()}, 300ms);
  EXPECT_EQ(r.failure, FailureReason::kEhloTimeout);
  EXPECT_EQ(r.greeting_code, 220);
}

TEST_F(SmtpProbeTest, EhloRefusedFallsBackToHelo) {
  ProbeResult r = probe_script({testing::send("220 old.test.local\r\n"), testing::expect("EHLO"),
                                testing::send("502 5.5.2 command not recognised\r\n"),
                                testing::expect("HELO monitor.test.local"),
                                testing::send("250 old.test.local\r\n"), testing::expect("QUIT"),
                                testing::send("221 bye\r\n")});
  EXPECT_TRUE(r.success()) << r.error_detail;
  EXPECT_TRUE(r.helo_fallback);
  EXPECT_EQ(r.ehlo_code, 250);
  EXPECT_TRUE(server_->script_errors().empty());
}

TEST_F(SmtpProbeTest, EhloAndHeloRefused) {
  ProbeResult r = probe_script({testing::send("220 fake.test.local\r\n"), testing::expect("EHLO"),
                                testing::send("550 go away\r\n"), testing::expect("HELO"),
                                testing::send("550 really\r\n"), testing::expect("QUIT"),
                                testing::send("221 bye\r\n")});
  EXPECT_EQ(r.failure, FailureReason::kEhloRejected);
  EXPECT_EQ(r.ehlo_code, 550);
  EXPECT_EQ(r.quit_code, 221);  // QUIT is still said, and its answer kept
}

TEST_F(SmtpProbeTest, TemporaryEhloRefusalIsNotRetriedWithHelo) {
  ProbeResult r = probe_script({testing::send("220 fake.test.local\r\n"), testing::expect("EHLO"),
                                testing::send("421 shutting down\r\n"), testing::expect("QUIT"),
                                testing::close()});
  EXPECT_EQ(r.failure, FailureReason::kEhloRejected);
  EXPECT_FALSE(r.helo_fallback);
}

TEST_F(SmtpProbeTest, SilenceAfterQuitIsQuitTimeout) {
  ProbeResult r =
      probe_script({testing::send("220 fake.test.local\r\n"), testing::expect("EHLO"),
                    testing::send("250 ok\r\n"), testing::expect("QUIT"), testing::stall()},
                   400ms);
  EXPECT_EQ(r.failure, FailureReason::kQuitTimeout);
  EXPECT_EQ(r.quit_code, 0);
  EXPECT_EQ(r.ehlo_code, 250);
}

TEST_F(SmtpProbeTest, QuitAnsweredWithWrongCode) {
  ProbeResult r = probe_script({testing::send("220 fake.test.local\r\n"), testing::expect("EHLO"),
                                testing::send("250 ok\r\n"), testing::expect("QUIT"),
                                testing::send("500 what\r\n"), testing::close()});
  EXPECT_EQ(r.failure, FailureReason::kQuitUnexpectedCode);
  EXPECT_EQ(r.quit_code, 500);
  EXPECT_FALSE(r.quit_success());
}

TEST_F(SmtpProbeTest, StarttlsAdvertisedIsSeen) {
  ProbeResult r = probe_script({testing::send("220 fake.test.local\r\n"), testing::expect("EHLO"),
                                testing::send("250-fake\r\n250-STARTTLS\r\n250 8BITMIME\r\n"),
                                testing::expect("QUIT"), testing::send("221 bye\r\n")});
  EXPECT_TRUE(r.success());
  EXPECT_EQ(r.starttls_advertised, true);
}

TEST_F(SmtpProbeTest, StarttlsAdvertisedIsUnknownWithoutAPlaintextEhloReply) {
  ProbeResult r = probe_script(testing::polite_dialogue());  // EHLO reply without STARTTLS
  ASSERT_TRUE(r.success()) << r.error_detail;
  EXPECT_EQ(r.starttls_advertised, false);

  r = probe_script(
      {testing::send("554 no service\r\n"), testing::expect("QUIT"), testing::send("221 bye\r\n")});
  EXPECT_EQ(r.failure, FailureReason::kGreetingRejected);
  EXPECT_FALSE(r.starttls_advertised.has_value());  // no EHLO was said

  r = probe_script({testing::send("220 fake.test.local\r\n"), testing::expect("EHLO"),
                    testing::send("421 shutting down\r\n"), testing::expect("QUIT"),
                    testing::close()});
  EXPECT_EQ(r.failure, FailureReason::kEhloRejected);
  EXPECT_FALSE(r.starttls_advertised.has_value());  // a refusal offers nothing either way

  // A server that does not know EHLO at all (HELO answered) offers no extension.
  r = probe_script({testing::send("220 old.test.local\r\n"), testing::expect("EHLO"),
                    testing::send("502 5.5.2 what\r\n"), testing::expect("HELO"),
                    testing::send("250 old.test.local\r\n"), testing::expect("QUIT"),
                    testing::send("221 bye\r\n")});
  ASSERT_TRUE(r.success()) << r.error_detail;
  EXPECT_EQ(r.starttls_advertised, false);
}

TEST_F(SmtpProbeTest, RepliesSplitAcrossReadsAndBareLf) {
  ProbeResult r =
      probe_script({testing::send("22"), testing::delay(20ms), testing::send("0 fake.test.local\n"),
                    testing::expect("EHLO"), testing::send("250-a\n"), testing::delay(20ms),
                    testing::send("250 b\n"), testing::expect("QUIT"), testing::send("221 bye\n")});
  EXPECT_TRUE(r.success()) << r.error_detail;
}

TEST_F(SmtpProbeTest, LongEhloReplyWithADribbledEndStillParses) {
  // 99 lines of 2,000 bytes at once, then the last one a byte at a time: the reply is parsed
  // from where each read left off (reply_test proves the work is linear), and it is whole.
  std::string head;
  for (int i = 0; i < 99; ++i) head += "250-X-LINE-" + std::string(1987, 'x') + "\r\n";
  ASSERT_EQ(head.size(), 99u * 2000u);
  std::vector<Step> script = {testing::send("220 fake.test.local\r\n"), testing::expect("EHLO"),
                              testing::send(head)};
  for (Step& step : testing::dribble("250 SIZE 1000" + std::string(1985, ' ') + "\r\n", 0ms)) {
    script.push_back(std::move(step));
  }
  script.push_back(testing::expect("QUIT"));
  script.push_back(testing::send("221 bye\r\n"));
  ProbeResult r = probe_script(script, 10s);
  ASSERT_TRUE(r.success()) << reason_name(r.failure) << ": " << r.error_detail;
  EXPECT_EQ(r.ehlo_code, 250);
  ASSERT_TRUE(r.capabilities.has_value());
  EXPECT_EQ(r.capabilities->size_limit, 1000u);  // from the last, dribbled line
  EXPECT_EQ(r.quit_code, 221);
  EXPECT_TRUE(server_->script_errors().empty());
}

TEST_F(SmtpProbeTest, TranscriptIsCapped) {
  std::string long_reply;
  for (int i = 0; i < 90; ++i) long_reply += "250-" + std::string(100, 'x') + "\r\n";
  ProbeResult r = probe_script({testing::send("220 fake.test.local\r\n"), testing::expect("EHLO"),
                                testing::send(long_reply + "250 end\r\n"), testing::expect("QUIT"),
                                testing::send("221 bye\r\n")});
  EXPECT_TRUE(r.success());
  EXPECT_TRUE(r.transcript_truncated);
  std::size_t bytes = 0;
  for (const auto& line : r.transcript) bytes += line.text.size();
  EXPECT_LE(bytes, ProbeOptions{}.transcript_limit_bytes);
}

// --- targets given by name, resolved through the c-ares Resolver and a fake DNS server ---------

class SmtpProbeByNameTest : public SmtpProbeTest {
 protected:
  ProbeResult probe_name(const std::string& name, std::uint16_t port,
                         std::chrono::milliseconds timeout = 2s) {
    ProbeTarget target;
    target.host = name;
    target.port = port;
    target.helo_name = "monitor.test.local";
    target.timeout = timeout;
    ProbeOptions options;
    options.resolver = &resolver_;
    std::optional<ProbeResult> result;
    asio::co_spawn(
        io_, [&]() -> asio::awaitable<void> { result = co_await run_probe(target, options); },
        asio::detached);
    while (!result) io_.run_one();
    return *result;
  }

  testing::FakeDnsServer dns_;
  // c-ares' own retries are slower than any probe deadline here: the deadline decides.
  Resolver resolver_{io_.get_executor(), ResolverOptions{{dns_.address()}, 10s, 1}};
};

TEST_F(SmtpProbeByNameTest, NxDomainIsResolveError) {
  dns_.set("gone.test.example", testing::DnsAnswer::nxdomain());
  ProbeResult r = probe_name("gone.test.example", 25);
  EXPECT_EQ(r.failure, FailureReason::kResolveError);
  EXPECT_EQ(r.failed_phase, Phase::kResolve);
  EXPECT_NE(r.error_detail.find("host not found"), std::string::npos) << r.error_detail;
  EXPECT_TRUE(r.phase(Phase::kResolve).has_value());
  EXPECT_FALSE(r.phase(Phase::kConnect).has_value());
}

TEST_F(SmtpProbeByNameTest, SilentDnsIsResolveTimeout) {
  dns_.set("silent.test.example", testing::DnsAnswer::silence());
  ProbeResult r = probe_name("silent.test.example", 25, 300ms);
  EXPECT_EQ(r.failure, FailureReason::kResolveTimeout) << r.error_detail;
  EXPECT_EQ(r.failed_phase, Phase::kResolve);
  EXPECT_GE(ms(r.total), 300ms);
  EXPECT_FALSE(r.phase(Phase::kConnect).has_value());
}

TEST_F(SmtpProbeByNameTest, NameResolvingToTheFakeServerSucceeds) {
  server_.emplace(io_, testing::polite_dialogue());
  dns_.set("mx.test.example", testing::DnsAnswer::addresses({"127.0.0.1"}));
  ProbeResult r = probe_name("mx.test.example", server_->port());
  EXPECT_TRUE(r.success()) << r.error_detail;
  EXPECT_EQ(r.peer, "127.0.0.1:" + std::to_string(server_->port()));
  EXPECT_TRUE(r.phase(Phase::kResolve).has_value());
  EXPECT_TRUE(r.phase(Phase::kConnect).has_value());
  EXPECT_EQ(r.quit_code, 221);
  EXPECT_EQ(dns_.questions().front().first, "mx.test.example");
}

// --- address families: IPv6 literals, ip_protocol filters, connection racing (RFC 8305) -------

tcp::endpoint ep(const char* address) { return {asio::ip::make_address(address), 25}; }

TEST(ConnectionOrder, FamiliesAlternateIpv6First) {
  EXPECT_EQ(connection_order({ep("192.0.2.1"), ep("192.0.2.2"), ep("2001:db8::1"),
                              ep("2001:db8::2"), ep("192.0.2.3")}),
            (std::vector<tcp::endpoint>{ep("2001:db8::1"), ep("192.0.2.1"), ep("2001:db8::2"),
                                        ep("192.0.2.2"), ep("192.0.2.3")}));
  EXPECT_EQ(connection_order({ep("2001:db8::1"), ep("2001:db8::2"), ep("192.0.2.1")}),
            (std::vector<tcp::endpoint>{ep("2001:db8::1"), ep("192.0.2.1"), ep("2001:db8::2")}));
}

TEST(ConnectionOrder, OneFamilyKeepsItsOrder) {
  const std::vector<tcp::endpoint> v4{ep("192.0.2.3"), ep("192.0.2.1"), ep("192.0.2.2")};
  EXPECT_EQ(connection_order(v4), v4);
  const std::vector<tcp::endpoint> v6{ep("2001:db8::9"), ep("2001:db8::1")};
  EXPECT_EQ(connection_order(v6), v6);
  EXPECT_TRUE(connection_order({}).empty());
}

bool have_ipv6_loopback() {
  asio::io_context io;
  tcp::acceptor acceptor(io);
  boost::system::error_code ec;
  acceptor.open(tcp::v6(), ec);
  if (!ec) acceptor.bind(testing::loopback_v6(), ec);
  return !ec;
}

// The transcript's notes about connection attempts ("connect <endpoint>: <outcome>").
std::vector<std::string> attempt_notes(const ProbeResult& r) {
  std::vector<std::string> notes;
  for (const TranscriptLine& line : r.transcript) {
    if (line.direction == TranscriptLine::Direction::kNote && line.text.starts_with("connect ")) {
      notes.push_back(line.text);
    }
  }
  return notes;
}

class SmtpProbeFamilyTest : public SmtpProbeByNameTest {
 protected:
  static constexpr std::chrono::milliseconds kAttemptDelay{1000};

  ProbeResult run(const ProbeTarget& target, bool by_name = true) {
    ProbeOptions options;
    if (by_name) options.resolver = &resolver_;
    // Long enough that "joined after the delay", "handed over at once" and "not a second
    // delay" stay distinct on a loaded machine.
    options.connection_attempt_delay = kAttemptDelay;
    io_.restart();  // a probe with nothing else on the context ran it out of work: it stopped
    std::optional<ProbeResult> result;
    asio::co_spawn(
        io_, [&]() -> asio::awaitable<void> { result = co_await run_probe(target, options); },
        asio::detached);
    while (!result) io_.run_one();
    return *result;
  }

  static ProbeTarget target(std::string host, std::uint16_t port, IpProtocol protocol,
                            std::chrono::milliseconds timeout = 2s) {
    ProbeTarget t;
    t.host = std::move(host);
    t.port = port;
    t.helo_name = "monitor.test.local";
    t.ip_protocol = protocol;
    t.timeout = timeout;
    return t;
  }

  // Fills `v4` on 127.0.0.1 (any port), then `v6` on the same port of ::1, so that one name
  // with an A and an AAAA record reaches both. Another [::1] socket may hold that port: retry.
  template <typename V4, typename V6, typename MakeV4, typename MakeV6>
  static void on_one_port(std::optional<V4>& v4, std::optional<V6>& v6, MakeV4 make_v4,
                          MakeV6 make_v6) {
    for (int attempt = 0; attempt < 20; ++attempt) {
      v6.reset();
      v4.reset();
      make_v4(v4, testing::loopback_v4());
      try {
        make_v6(v6, tcp::endpoint(asio::ip::address_v6::loopback(), v4->port()));
        return;
      } catch (const boost::system::system_error&) {
      }
    }
    FAIL() << "found no port free on both 127.0.0.1 and [::1]";
  }

  auto smtp_server() {
    return [this](std::optional<FakeSmtpServer>& slot, const tcp::endpoint& at) {
      slot.emplace(io_, testing::polite_dialogue(), at);
    };
  }
  auto refusing() {
    return [this](std::optional<testing::RefusingPort>& slot, const tcp::endpoint& at) {
      slot.emplace(io_, at);
    };
  }
  auto blackhole() {
    return [this](std::optional<testing::BlackholePort>& slot, const tcp::endpoint& at) {
      slot.emplace(io_, at);
    };
  }
};

// Tests that need a [::1] socket.
class SmtpProbeIpv6Test : public SmtpProbeFamilyTest {
 protected:
  void SetUp() override {
    if (!have_ipv6_loopback()) {
      GTEST_SKIP() << "this machine has no IPv6 loopback: binding [::1]:0 failed";
    }
  }
};

TEST_F(SmtpProbeFamilyTest, LiteralOfTheWrongFamilyIsResolveError) {
  ProbeResult r = run(target("::1", 25, IpProtocol::kIp4), false);
  EXPECT_EQ(r.failure, FailureReason::kResolveError);
  EXPECT_EQ(r.failed_phase, Phase::kResolve);
  EXPECT_EQ(r.error_detail, "::1 is an IPv6 address, but the probe may only use IPv4");
  EXPECT_FALSE(r.phase(Phase::kConnect).has_value());

  r = run(target("127.0.0.1", 25, IpProtocol::kIp6), false);
  EXPECT_EQ(r.failure, FailureReason::kResolveError);
  EXPECT_EQ(r.error_detail, "127.0.0.1 is an IPv4 address, but the probe may only use IPv6");
}

TEST_F(SmtpProbeFamilyTest, Ip6FilterWithoutIpv6AddressIsResolveError) {
  dns_.set("v4only.test.example", testing::DnsAnswer::addresses({"127.0.0.1"}));
  ProbeResult r = run(target("v4only.test.example", 25, IpProtocol::kIp6));
  EXPECT_EQ(r.failure, FailureReason::kResolveError);
  EXPECT_EQ(r.failed_phase, Phase::kResolve);
  EXPECT_EQ(r.error_detail, "resolving v4only.test.example: no IPv6 address");
  EXPECT_TRUE(r.phase(Phase::kResolve).has_value());
  EXPECT_FALSE(r.phase(Phase::kConnect).has_value());
}

TEST_F(SmtpProbeFamilyTest, ManyAddressesOfOneFamilyAreRacedInOrder) {
  // 127.0.0.2 and 127.0.0.3 are loopback too (127/8) but nothing listens there: refused.
  server_.emplace(io_, testing::polite_dialogue());
  dns_.set("three.test.example",
           testing::DnsAnswer::addresses({"127.0.0.2", "127.0.0.3", "127.0.0.1"}));
  ProbeResult r = run(target("three.test.example", server_->port(), IpProtocol::kIp4));
  const std::string port = std::to_string(server_->port());
  ASSERT_TRUE(r.success()) << r.error_detail;
  EXPECT_EQ(r.peer, "127.0.0.1:" + port);
  const std::vector<std::string> notes = attempt_notes(r);
  ASSERT_EQ(notes.size(), 3u);
  EXPECT_TRUE(notes[0].starts_with("connect 127.0.0.2:" + port + ": Connection refused"))
      << notes[0];
  EXPECT_TRUE(notes[1].starts_with("connect 127.0.0.3:" + port + ": Connection refused"))
      << notes[1];
  EXPECT_TRUE(notes[2].starts_with("connect 127.0.0.1:" + port + ": connected in ")) << notes[2];
}

TEST_F(SmtpProbeFamilyTest, NoSocketInTheRaceIsExporterOverloaded) {
  // One descriptor to spare: the lookup's UDP socket, closed once answered, then the first
  // attempt's socket (refused: nothing listens on 127.0.0.2). The second attempt gets none.
  dns_.set("two.test.example", testing::DnsAnswer::addresses({"127.0.0.2", "127.0.0.3"}));
  // The same race once with descriptors to spare (both refused). In the sanitizer build, UBSan
  // checks a type's vptr through a pipe the first time it meets the type; with no descriptor
  // left that check fails and reports a false "invalid vptr". Now it has met them all.
  EXPECT_EQ(reason_name(run(target("two.test.example", 25, IpProtocol::kIp4)).failure),
            "connect_refused");
  std::optional<ProbeResult> r;
  {
    DescriptorsSpent spent(1);
    r = run(target("two.test.example", 25, IpProtocol::kIp4));
  }
  EXPECT_EQ(reason_name(r->failure), "exporter_overloaded") << r->error_detail;
  EXPECT_EQ(r->failed_phase, Phase::kConnect);
  EXPECT_TRUE(r->error_detail.starts_with(
      "connect: no socket: the exporter's open-file limit is spent (127.0.0.2:25: "))
      << r->error_detail;
  EXPECT_NE(r->error_detail.find("127.0.0.3:25: Too many open files"), std::string::npos)
      << r->error_detail;
}

TEST_F(SmtpProbeIpv6Test, BracketedIpv6LiteralWorks) {
  server_.emplace(io_, testing::polite_dialogue(), testing::loopback_v6());
  std::string host;
  std::uint16_t port = 0;
  std::string error;
  // The address as a config or the command line gives it.
  ASSERT_TRUE(parse_address("[::1]:" + std::to_string(server_->port()), host, port, error))
      << error;
  ProbeResult r = run(target(host, port, IpProtocol::kAny), false);
  ASSERT_TRUE(r.success()) << r.error_detail;
  EXPECT_EQ(r.peer, "[::1]:" + std::to_string(server_->port()));
  EXPECT_FALSE(r.phase(Phase::kResolve).has_value());
  EXPECT_EQ(r.quit_code, 221);
  EXPECT_TRUE(attempt_notes(r).empty());  // one address: no race to tell of
  EXPECT_EQ(server_->connections(), 1);

  r = run(target(host, port, IpProtocol::kIp6), false);
  EXPECT_TRUE(r.success()) << r.error_detail;
}

TEST_F(SmtpProbeIpv6Test, Ip4FilterSkipsTheIpv6Address) {
  std::optional<FakeSmtpServer> v6;
  on_one_port(server_, v6, smtp_server(), smtp_server());
  ASSERT_TRUE(v6);
  dns_.set("dual.test.example", testing::DnsAnswer::addresses({"127.0.0.1"}, {"::1"}));
  ProbeResult r = run(target("dual.test.example", server_->port(), IpProtocol::kIp4));
  ASSERT_TRUE(r.success()) << r.error_detail;
  EXPECT_EQ(r.peer, "127.0.0.1:" + std::to_string(server_->port()));
  EXPECT_EQ(server_->connections(), 1);
  EXPECT_EQ(v6->connections(), 0);
  EXPECT_TRUE(attempt_notes(r).empty());
}

TEST_F(SmtpProbeIpv6Test, Ip6FilterSkipsTheIpv4Address) {
  std::optional<FakeSmtpServer> v6;
  on_one_port(server_, v6, smtp_server(), smtp_server());
  ASSERT_TRUE(v6);
  dns_.set("dual.test.example", testing::DnsAnswer::addresses({"127.0.0.1"}, {"::1"}));
  ProbeResult r = run(target("dual.test.example", server_->port(), IpProtocol::kIp6));
  ASSERT_TRUE(r.success()) << r.error_detail;
  EXPECT_EQ(r.peer, "[::1]:" + std::to_string(server_->port()));
  EXPECT_EQ(v6->connections(), 1);
  EXPECT_EQ(server_->connections(), 0);
}

TEST_F(SmtpProbeIpv6Test, AnyTriesIpv6First) {
  std::optional<FakeSmtpServer> v6;
  on_one_port(server_, v6, smtp_server(), smtp_server());
  ASSERT_TRUE(v6);
  // Both would answer; the race starts with IPv6, which connects well within the attempt delay.
  dns_.set("dual.test.example", testing::DnsAnswer::addresses({"127.0.0.1"}, {"::1"}));
  ProbeResult r = run(target("dual.test.example", server_->port(), IpProtocol::kAny));
  ASSERT_TRUE(r.success()) << r.error_detail;
  EXPECT_EQ(r.peer, "[::1]:" + std::to_string(server_->port()));
  EXPECT_EQ(v6->connections(), 1);
}

TEST_F(SmtpProbeIpv6Test, BlackholedIpv6LosesTheRaceToIpv4) {
  std::optional<testing::BlackholePort> v6;
  on_one_port(server_, v6, smtp_server(), blackhole());
  ASSERT_TRUE(v6);
  const std::string port = std::to_string(server_->port());
  dns_.set("dual.test.example", testing::DnsAnswer::addresses({"127.0.0.1"}, {"::1"}));
  ProbeResult r = run(target("dual.test.example", server_->port(), IpProtocol::kAny, 10s));
  ASSERT_TRUE(r.success()) << r.error_detail;
  EXPECT_EQ(r.peer, "127.0.0.1:" + port);
  EXPECT_EQ(r.quit_code, 221);
  // IPv4 joined the race after the attempt delay, not at the deadline.
  EXPECT_GE(ms(r.phase(Phase::kConnect)), kAttemptDelay);
  EXPECT_LT(ms(r.phase(Phase::kConnect)), 2 * kAttemptDelay);
  const std::vector<std::string> notes = attempt_notes(r);
  ASSERT_EQ(notes.size(), 2u);
  EXPECT_TRUE(notes[0].starts_with("connect [::1]:" + port + ": abandoned after ")) << notes[0];
  EXPECT_TRUE(notes[1].starts_with("connect 127.0.0.1:" + port + ": connected in ")) << notes[1];
}

TEST_F(SmtpProbeIpv6Test, RefusedIpv6HandsOverToIpv4AtOnce) {
  std::optional<testing::RefusingPort> v6;
  on_one_port(server_, v6, smtp_server(), refusing());
  ASSERT_TRUE(v6);
  const std::string port = std::to_string(server_->port());
  dns_.set("dual.test.example", testing::DnsAnswer::addresses({"127.0.0.1"}, {"::1"}));
  ProbeResult r = run(target("dual.test.example", server_->port(), IpProtocol::kAny, 10s));
  ASSERT_TRUE(r.success()) << r.error_detail;
  EXPECT_EQ(r.peer, "127.0.0.1:" + port);
  // Waiting out the attempt delay would take kAttemptDelay at least; a refusal hands over at once.
  EXPECT_LT(ms(r.phase(Phase::kConnect)), kAttemptDelay);
  const std::vector<std::string> notes = attempt_notes(r);
  ASSERT_EQ(notes.size(), 2u);
  EXPECT_TRUE(notes[0].starts_with("connect [::1]:" + port + ": Connection refused")) << notes[0];
  EXPECT_TRUE(notes[1].starts_with("connect 127.0.0.1:" + port + ": connected in ")) << notes[1];
}

TEST_F(SmtpProbeIpv6Test, FailedAttemptHandsOverWhileAnotherIsInFlight) {
  // [::1] hangs; 127.0.0.2 (loopback, nothing there) joins after the attempt delay and is
  // refused; 127.0.0.1 then starts at once, not one more attempt delay later.
  std::optional<testing::BlackholePort> v6;
  on_one_port(server_, v6, smtp_server(), blackhole());
  ASSERT_TRUE(v6);
  const std::string port = std::to_string(server_->port());
  dns_.set("three.test.example",
           testing::DnsAnswer::addresses({"127.0.0.2", "127.0.0.1"}, {"::1"}));
  ProbeResult r = run(target("three.test.example", server_->port(), IpProtocol::kAny, 10s));
  ASSERT_TRUE(r.success()) << r.error_detail;
  EXPECT_EQ(r.peer, "127.0.0.1:" + port);
  EXPECT_GE(ms(r.phase(Phase::kConnect)), kAttemptDelay);
  EXPECT_LT(ms(r.phase(Phase::kConnect)), 2 * kAttemptDelay);  // not a second attempt delay
  const std::vector<std::string> notes = attempt_notes(r);
  ASSERT_EQ(notes.size(), 3u);
  EXPECT_TRUE(notes[0].starts_with("connect [::1]:" + port + ": abandoned after ")) << notes[0];
  EXPECT_TRUE(notes[1].starts_with("connect 127.0.0.2:" + port + ": Connection refused"))
      << notes[1];
  EXPECT_TRUE(notes[2].starts_with("connect 127.0.0.1:" + port + ": connected in ")) << notes[2];
}

TEST_F(SmtpProbeIpv6Test, BothRefusedIsConnectRefused) {
  std::optional<testing::RefusingPort> v4;
  std::optional<testing::RefusingPort> v6;
  on_one_port(v4, v6, refusing(), refusing());
  ASSERT_TRUE(v6);
  const std::string port = std::to_string(v4->port());
  dns_.set("dual.test.example", testing::DnsAnswer::addresses({"127.0.0.1"}, {"::1"}));
  ProbeResult r = run(target("dual.test.example", v4->port(), IpProtocol::kAny, 10s));
  EXPECT_EQ(r.failure, FailureReason::kConnectRefused) << r.error_detail;
  EXPECT_EQ(r.failed_phase, Phase::kConnect);
  EXPECT_EQ(r.peer, "");
  EXPECT_LT(ms(r.phase(Phase::kConnect)), 5s);  // not the deadline
  // The detail tells what each address got, in the order tried.
  EXPECT_TRUE(r.error_detail.starts_with("connect: [::1]:" + port + ": Connection refused"))
      << r.error_detail;
  EXPECT_NE(r.error_detail.find("; 127.0.0.1:" + port + ": Connection refused"), std::string::npos)
      << r.error_detail;
  EXPECT_EQ(attempt_notes(r).size(), 2u);
}

TEST_F(SmtpProbeIpv6Test, BothBlackholedIsConnectTimeout) {
  std::optional<testing::BlackholePort> v4;
  std::optional<testing::BlackholePort> v6;
  on_one_port(v4, v6, blackhole(), blackhole());
  ASSERT_TRUE(v6);
  const std::string port = std::to_string(v4->port());
  dns_.set("dual.test.example", testing::DnsAnswer::addresses({"127.0.0.1"}, {"::1"}));
  // The deadline falls after the attempt delay, so both addresses were tried.
  ProbeResult r = run(target("dual.test.example", v4->port(), IpProtocol::kAny, 1500ms));
  EXPECT_EQ(r.failure, FailureReason::kConnectTimeout) << r.error_detail;
  EXPECT_EQ(r.failed_phase, Phase::kConnect);
  EXPECT_GE(ms(r.total), 1500ms);
  EXPECT_TRUE(r.error_detail.starts_with("connect: timed out ([::1]:" + port + ": no answer"))
      << r.error_detail;
  EXPECT_NE(r.error_detail.find("127.0.0.1:" + port + ": no answer"), std::string::npos)
      << r.error_detail;
}

TEST(SmtpProbeAbandoned, DestroyingTheContextMidRaceIsSafe) {
  // The daemon abandons probes in flight at shutdown: the coroutine frame goes with the
  // io_context while connect handlers are still pending. Under ASan this must stay clean.
  if (!have_ipv6_loopback()) GTEST_SKIP() << "this machine has no IPv6 loopback";
  std::optional<ProbeResult> result;
  {
    asio::io_context io;
    testing::FakeDnsServer dns;
    Resolver resolver(io.get_executor(), ResolverOptions{{dns.address()}, 10s, 1});
    std::optional<testing::BlackholePort> v4;
    std::optional<testing::BlackholePort> v6;
    for (int attempt = 0; attempt < 20 && !v6; ++attempt) {
      v4.emplace(io);
      try {
        v6.emplace(io, tcp::endpoint(asio::ip::address_v6::loopback(), v4->port()));
      } catch (const boost::system::system_error&) {
      }
    }
    ASSERT_TRUE(v6);
    dns.set("dual.test.example", testing::DnsAnswer::addresses({"127.0.0.1"}, {"::1"}));
    ProbeTarget target;
    target.host = "dual.test.example";
    target.port = v4->port();
    target.helo_name = "monitor.test.local";
    target.timeout = 10s;
    ProbeOptions options;
    options.resolver = &resolver;
    asio::co_spawn(
        io, [&]() -> asio::awaitable<void> { result = co_await run_probe(target, options); },
        asio::detached);
    // Long enough for both attempts to be in flight (the second starts at 250 ms).
    io.run_for(400ms);
  }
  EXPECT_FALSE(result.has_value());
}

}  // namespace
}  // namespace smtp
