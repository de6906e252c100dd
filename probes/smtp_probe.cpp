#include "probes/smtp_probe.h"

#include <openssl/err.h>

#include <algorithm>
#include <array>
#include <optional>
#include <string_view>
#include <vector>

#include "probes/banner.h"
#include "probes/ehlo.h"
#include "probes/reply.h"
#include "probes/resolve.h"
#include "probes/socket.h"
#include "probes/text.h"
#include "probes/tls.h"

namespace smtp {
namespace {

using Clock = std::chrono::steady_clock;
using boost::system::error_code;

/// How a read of one reply ended. kTlsError: the TLS layer failed (an alert, a bad record).
enum class ReadOutcome { kReply, kTimeout, kClosed, kMalformed, kTooLong, kTlsError };

bool is_closed_error(const error_code& ec) {
  return ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::connection_aborted ||
         ec == asio::ssl::error::stream_truncated;
}

/// The probe could not get a socket: the exporter's descriptors (or the system's) are spent,
/// which says nothing about the server.
bool is_no_socket_error(const error_code& ec) {
  return ec == asio::error::no_descriptors ||
         ec == boost::system::errc::too_many_files_open_in_system;
}

std::string no_socket_detail(const error_code& ec) {
  return ec == asio::error::no_descriptors
             ? "connect: no socket: the exporter's open-file limit is spent"
             : "connect: no socket: the system's open-file table is full";
}

/// Attempts named one by one in a failed race's error detail; past it, only counted.
constexpr std::size_t kMaxAttemptsInDetail = 8;

std::string format_ms(Clock::duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

/// The state a connection race shares between the racing coroutine and the attempts'
/// completion handlers. The handlers hold it by shared_ptr and touch nothing else, so a probe
/// abandoned mid-race (its coroutine frame destroyed) leaves them nothing freed to touch.
struct ConnectRace {
  enum class State : std::uint8_t { kNotStarted, kConnecting, kConnected, kFailed };
  struct Attempt {
    Attempt(const IoExecutor& executor, const tcp::endpoint& to) : socket(executor), endpoint(to) {}
    ProbeSocket socket;
    tcp::endpoint endpoint;
    State state = State::kNotStarted;
    boost::system::error_code error;
    Clock::time_point started;
    Clock::time_point finished;
  };

  ConnectRace(const IoExecutor& executor, const std::vector<tcp::endpoint>& endpoints)
      : wake(executor) {
    attempts.reserve(endpoints.size());  // never reallocated: handlers index into it
    for (const tcp::endpoint& endpoint : endpoints) attempts.emplace_back(executor, endpoint);
  }

  /// Starts attempt `index`; its handler records the outcome and wakes the coroutine.
  static void start(const std::shared_ptr<ConnectRace>& race, std::size_t index) {
    Attempt& attempt = race->attempts[index];
    attempt.state = State::kConnecting;
    attempt.started = Clock::now();
    ++race->started;
    ++race->connecting;
    auto done = [race, index](const boost::system::error_code& ec) { race->finish(index, ec); };
    if (error_code ec = open_probe_socket(attempt.socket, attempt.endpoint.protocol())) {
      // As async_connect reports a socket it could not open: later, not from within start().
      asio::post(attempt.socket.get_executor(), [done, ec] { done(ec); });
      return;
    }
    attempt.socket.async_connect(attempt.endpoint, std::move(done));
  }

  void finish(std::size_t index, const boost::system::error_code& ec) {
    if (over) return;  // the coroutine closed the socket and has moved on
    Attempt& attempt = attempts[index];
    attempt.finished = Clock::now();
    attempt.error = ec;
    --connecting;
    if (ec) {
      attempt.state = State::kFailed;
      ++failed;
    } else {
      attempt.state = State::kConnected;
      if (!winner) winner = index;
    }
    wake.cancel();
  }

  std::vector<Attempt> attempts;
  /// The coroutine sleeps on it until the next attempt is due or the deadline; a finished
  /// attempt cancels it to wake the coroutine early.
  ProbeTimer wake;
  std::size_t started = 0;
  std::size_t connecting = 0;
  std::size_t failed = 0;
  std::optional<std::size_t> winner;  // the first attempt that connected
  bool over = false;                  // the coroutine has decided; late outcomes are ignored
};

constexpr std::size_t kUsualReplyBytes = 512;
constexpr std::size_t kUsualTranscriptLines = 16;

/// One probe's state; lives in the coroutine frame of run_probe.
class Session {
 public:
  Session(const ProbeTarget& target, const ProbeOptions& options, const IoExecutor& executor)
      : target_(target), options_(options), socket_(executor), deadline_timer_(executor) {
    start_ = Clock::now();
    deadline_ = start_ + target_.timeout;
    // Room for a usual dialogue from the start, so that growing does not allocate several times
    // a probe: a few hundred bytes of replies at a time, and about a dozen dialogue lines.
    buffer_.reserve(kUsualReplyBytes);
    if (options_.transcript_limit_bytes != 0) result_.transcript.reserve(kUsualTranscriptLines);
  }

  /// The whole probe has one deadline: a single timer, whose expiry closes the socket (so
  /// whatever is pending ends at once), rather than a timer re-armed for every read and write.
  void arm_deadline() {
    deadline_timer_.expires_at(deadline_);
    deadline_timer_.async_wait([this](const error_code& ec) {
      if (ec) return;  // cancelled: the session may be gone, touch nothing
      on_deadline();
    });
  }

  /// Whether the session may go: the deadline's handler touches it, so once it has expired the
  /// handler must have run (it is queued ahead of anything posted after the expiry).
  bool deadline_released() { return deadline_timer_.cancel() > 0 || deadline_passed_; }

  ProbeResult take_result() {
    result_.total = Clock::now() - start_;
    // No shutdown first: close() sends the FIN (or, with unread bytes, the RST) by itself.
    error_code ignored;
    socket_.close(ignored);
    return std::move(result_);
  }

  /// The probe's phases, in order, until the first that fails.
  asio::awaitable<void> dialogue() {
    // GCC 12 miscompiles co_await inside an if condition: await into a variable first.
    bool ok = co_await resolve_and_connect();
    if (!ok) co_return;
    if (target_.tls == TlsMode::kImplicit) {
      // RFC 8314: TLS from the first byte; the greeting comes over TLS.
      ok = co_await handshake();
      if (!ok) co_return;
    }
    // Phases do not overlap: with implicit TLS the greeting is awaited once the handshake is done.
    greeting_began_ = Clock::now();
    ok = co_await greet();
    if (!ok) co_return;
    ok = co_await ehlo();
    if (!ok) co_return;
    if (target_.tls == TlsMode::kStartTls) {
      ok = co_await starttls();
      if (!ok) co_return;
      // RFC 3207 §4.2: the server forgets what it knew; ask again over TLS.
      ok = co_await ehlo();
      if (!ok) co_return;
    }
    co_await quit();
  }

 private:
  void on_deadline() {
    deadline_passed_ = true;
    error_code ignored;
    socket_.close(ignored);  // what is pending ends with operation_aborted
  }

  // --- bookkeeping -------------------------------------------------------------------------

  /// `detail` is what the log line's err="..." shows: never empty, it names the phase.
  void fail(FailureReason reason, Phase phase, std::string detail) {
    if (result_.failure != FailureReason::kNone) return;  // the first failure is the reason
    result_.failure = reason;
    result_.failed_phase = phase;
    result_.error_detail = std::move(detail);
    note(result_.error_detail);
  }

  ProbeResult::Duration set_phase(Phase phase, Clock::time_point began) {
    const ProbeResult::Duration took = Clock::now() - began;
    result_.phase_durations[static_cast<std::size_t>(phase)] = took;
    mark_start(phase, began);
    return took;
  }
  /// For phases that run twice (EHLO before and after STARTTLS): the time of both.
  void add_phase(Phase phase, Clock::time_point began) {
    auto& slot = result_.phase_durations[static_cast<std::size_t>(phase)];
    slot = slot.value_or(ProbeResult::Duration::zero()) + (Clock::now() - began);
    mark_start(phase, began);
  }
  void mark_start(Phase phase, Clock::time_point began) {
    auto& start = result_.phase_starts[static_cast<std::size_t>(phase)];
    if (!start) start = began - start_;
  }

  void record(TranscriptLine::Direction direction, std::string_view text) {
    if (options_.transcript_limit_bytes == 0 || result_.transcript_truncated) return;
    if (transcript_bytes_ + text.size() > options_.transcript_limit_bytes) {
      result_.transcript_truncated = true;
      return;
    }
    transcript_bytes_ += text.size();
    result_.transcript.push_back({Clock::now() - start_, direction, printable(text)});
  }
  void note(std::string_view text) { record(TranscriptLine::Direction::kNote, text); }

  // --- I/O -------------------------------------------------------------------------------

  asio::awaitable<bool> resolve_and_connect() {
    Clock::time_point began = Clock::now();
    // One address (the common case, and every IP literal) is connected to without racing and
    // without allocating; `several` is only filled for a race.
    tcp::endpoint single;
    std::vector<tcp::endpoint> several;
    error_code ec;
    asio::ip::address literal = asio::ip::make_address(target_.host, ec);
    if (!ec) {
      if (!ip_family_allowed(literal, target_.ip_protocol)) {
        set_phase(Phase::kResolve, began);
        fail(FailureReason::kResolveError, Phase::kResolve,
             target_.host + " is an " + (literal.is_v6() ? "IPv6" : "IPv4") +
                 " address, but the probe may only use " +
                 (target_.ip_protocol == IpProtocol::kIp4 ? "IPv4" : "IPv6"));
        co_return false;
      }
      single = tcp::endpoint(literal, target_.port);
    } else {
      ResolveResult resolved;
      if (!target_.addresses.empty()) {
        // Looked up and vetted by the caller: a second lookup could answer otherwise.
        resolved.endpoints = target_.addresses;
      } else {
        if (options_.resolver != nullptr) {
          resolved =
              co_await options_.resolver->resolve_host(target_.host, target_.port, deadline_);
        } else {
          resolved = co_await resolve_host(target_.host, target_.port, deadline_);
        }
        set_phase(Phase::kResolve, began);
      }
      if (resolved.timed_out) {
        fail(FailureReason::kResolveTimeout, Phase::kResolve, "resolving " + target_.host);
        co_return false;
      }
      if (resolved.endpoints.empty()) {
        fail(FailureReason::kResolveError, Phase::kResolve,
             "resolving " + target_.host + ": " + resolved.error.message());
        co_return false;
      }
      const IpProtocol protocol = target_.ip_protocol;
      std::erase_if(resolved.endpoints, [protocol](const tcp::endpoint& e) {
        return !ip_family_allowed(e.address(), protocol);
      });
      if (resolved.endpoints.empty()) {
        fail(FailureReason::kResolveError, Phase::kResolve,
             "resolving " + target_.host + ": no " +
                 (protocol == IpProtocol::kIp4 ? "IPv4" : "IPv6") + " address");
        co_return false;
      }
      if (resolved.endpoints.size() == 1) {
        single = resolved.endpoints.front();
      } else {
        several = connection_order(std::move(resolved.endpoints));
      }
    }

    began = Clock::now();
    if (!several.empty()) {
      bool connected = co_await race_connections(several, began);
      co_return connected;
    }
    ec = open_probe_socket(socket_, single.protocol());
    bool pending = false;
    // Past the deadline (it came during the lookup), the timer will not close this socket.
    if (!ec && !deadline_passed_) ec = start_connect(socket_, single, pending);
    if (pending) {
      co_await socket_.async_wait(ProbeSocket::wait_write,
                                  asio::redirect_error(asio::use_awaitable, ec));
      if (!ec) ec = connect_result(socket_);
    }
    set_phase(Phase::kConnect, began);
    if (ec || deadline_passed_) {
      if (deadline_passed_) {
        fail(FailureReason::kConnectTimeout, Phase::kConnect, "connect: timed out");
      } else if (is_no_socket_error(ec)) {
        fail(FailureReason::kExporterOverloaded, Phase::kConnect, no_socket_detail(ec));
      } else if (ec == asio::error::connection_refused) {
        fail(FailureReason::kConnectRefused, Phase::kConnect, "connect: " + ec.message());
      } else {
        fail(FailureReason::kConnectError, Phase::kConnect, "connect: " + ec.message());
      }
      co_return false;
    }
    result_.peer = format_endpoint(single);
    co_return true;
  }

  /// RFC 8305 §5 connection racing over `endpoints` (already in the order to try): an attempt
  /// starts, and the next joins it when the connection attempt delay has passed or as soon as an
  /// attempt fails; the first to connect wins and the others are closed. Bounded by the
  /// deadline. Asio 1.74 has no awaitable operators: the attempts are plain completion
  /// handlers, and this coroutine waits on a timer that they cancel to wake it.
  asio::awaitable<bool> race_connections(const std::vector<tcp::endpoint>& endpoints,
                                         Clock::time_point began) {
    auto race = std::make_shared<ConnectRace>(socket_.get_executor(), endpoints);
    const std::size_t count = race->attempts.size();
    std::size_t next = 0;  // the next attempt to start
    Clock::time_point next_due = began;
    std::size_t failures_seen = 0;
    bool deadline_passed = false;
    for (;;) {
      if (race->winner) break;
      const Clock::time_point now = Clock::now();
      if (now >= deadline_) {
        deadline_passed = true;
        break;
      }
      if (race->failed != failures_seen) {
        failures_seen = race->failed;
        next_due = now;  // a failed attempt hands its turn on at once
      }
      if (next < count && (now >= next_due || race->connecting == 0)) {
        ConnectRace::start(race, next++);
        next_due = now + options_.connection_attempt_delay;
      }
      if (race->connecting == 0 && next == count) break;  // every attempt failed
      race->wake.expires_at(next < count ? std::min(next_due, deadline_) : deadline_);
      error_code woken;  // operation_aborted when an attempt finished: either way, look again
      co_await race->wake.async_wait(asio::redirect_error(asio::use_awaitable, woken));
    }
    race->over = true;
    const Clock::time_point ended = Clock::now();
    for (std::size_t i = 0; i < count; ++i) {
      if (race->winner != i) {
        error_code ignored;
        race->attempts[i].socket.close(ignored);  // a connect in flight ends as aborted
      }
    }
    set_phase(Phase::kConnect, began);

    // What each attempt got, for the transcript (only when there was a race to tell of) and for
    // the error detail.
    std::string detail;
    std::size_t in_detail = 0;
    bool all_refused = true;
    std::optional<error_code> no_socket;  // an attempt that could not even get a socket
    for (std::size_t i = 0; i < race->started; ++i) {
      const ConnectRace::Attempt& attempt = race->attempts[i];
      std::string outcome;
      switch (attempt.state) {
        case ConnectRace::State::kConnected:
          outcome = race->winner == i ? "connected in " : "connected too late, closed after ";
          outcome += format_ms(attempt.finished - attempt.started);
          all_refused = false;
          break;
        case ConnectRace::State::kFailed:
          outcome =
              attempt.error.message() + " after " + format_ms(attempt.finished - attempt.started);
          if (attempt.error != asio::error::connection_refused) all_refused = false;
          if (is_no_socket_error(attempt.error)) no_socket = attempt.error;
          break;
        case ConnectRace::State::kConnecting:
          outcome = std::string(race->winner ? "abandoned" : "no answer") + " after " +
                    format_ms(ended - attempt.started);
          all_refused = false;
          break;
        case ConnectRace::State::kNotStarted:
          break;
      }
      const std::string endpoint = format_endpoint(attempt.endpoint);
      if (race->started > 1) note("connect " + endpoint + ": " + outcome);
      if (in_detail < kMaxAttemptsInDetail) {
        detail += (in_detail == 0 ? "" : "; ") + endpoint + ": " + outcome;
        ++in_detail;
      }
    }
    if (race->started > in_detail) {
      detail += "; " + std::to_string(race->started - in_detail) + " more attempts";
    }
    if (race->started < count) {
      detail += (detail.empty() ? "" : "; ") + std::to_string(count - race->started) +
                " more addresses not tried";
    }

    if (race->winner) {
      ConnectRace::Attempt& winner = race->attempts[*race->winner];
      // The rest of the probe talks through socket_, as if it had connected by itself; past the
      // deadline, closed, as the deadline would have done.
      socket_ = std::move(winner.socket);
      if (deadline_passed_) on_deadline();
      result_.peer = format_endpoint(winner.endpoint);
      co_return true;
    }
    if (no_socket) {
      // Some address was never really tried: whatever the others got, the verdict is ours.
      fail(FailureReason::kExporterOverloaded, Phase::kConnect,
           no_socket_detail(*no_socket) + " (" + detail + ")");
    } else if (deadline_passed) {
      fail(FailureReason::kConnectTimeout, Phase::kConnect, "connect: timed out (" + detail + ")");
    } else if (all_refused) {
      fail(FailureReason::kConnectRefused, Phase::kConnect, "connect: " + detail);
    } else {
      fail(FailureReason::kConnectError, Phase::kConnect, "connect: " + detail);
    }
    co_return false;
  }

  /// Reads one whole reply into `reply`, bounded by kMaxReplyBytes and the deadline.
  asio::awaitable<ReadOutcome> read_reply(Reply& reply) {
    for (;;) {
      if (!buffer_.empty()) {
        // Resumes at the line where the last read's parse stopped: a server dribbling a long
        // reply costs work in proportion to its bytes, not their square.
        ParseResult parsed = parser_.parse(buffer_);
        switch (parsed.status) {
          case ParseStatus::kComplete:
            record_received(std::string_view(buffer_).substr(0, parsed.consumed));
            buffer_.erase(0, parsed.consumed);
            reply = std::move(parsed.reply);
            if (tls_) replied_over_tls_ = true;
            co_return ReadOutcome::kReply;
          case ParseStatus::kMalformed:
            record_received(buffer_);
            co_return ReadOutcome::kMalformed;
          case ParseStatus::kLineTooLong:
            too_long_ = "a reply line over " + std::to_string(kMaxReplyLineBytes) + " bytes";
            co_return ReadOutcome::kTooLong;
          case ParseStatus::kTooManyLines:
            too_long_ = "a reply of more than " + std::to_string(kMaxReplyLines) + " lines";
            co_return ReadOutcome::kTooLong;
          case ParseStatus::kIncomplete:
            break;
        }
      }
      if (buffer_.size() > kMaxReplyBytes) {  // the parser's backstop
        too_long_ = "a reply over " + std::to_string(kMaxReplyBytes) + " bytes";
        co_return ReadOutcome::kTooLong;
      }
      error_code ec;
      std::size_t n =
          tls_ ? co_await tls_->async_read_some(asio::buffer(chunk_),
                                                asio::redirect_error(asio::use_awaitable, ec))
               : co_await socket_.async_read_some(asio::buffer(chunk_),
                                                  asio::redirect_error(asio::use_awaitable, ec));
      buffer_.append(chunk_.data(), n);
      if (ec && deadline_passed_) {
        if (!buffer_.empty()) record_received(buffer_);
        co_return ReadOutcome::kTimeout;
      }
      if (ec) {
        if (!buffer_.empty()) record_received(buffer_);
        if (tls_ && ec.category() == asio::error::get_ssl_category()) {
          tls_read_error_ = ec;  // stream_truncated is of another category: a plain close
          co_return ReadOutcome::kTlsError;
        }
        if (!is_closed_error(ec)) note("read: " + ec.message());
        co_return ReadOutcome::kClosed;
      }
    }
  }

  void record_received(std::string_view bytes) {
    // One transcript line per reply line, without the line ending.
    while (!bytes.empty()) {
      std::size_t end = bytes.find('\n');
      std::string_view line = bytes.substr(0, end);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      record(TranscriptLine::Direction::kReceived, line);
      if (end == std::string_view::npos) break;
      bytes.remove_prefix(end + 1);
    }
  }

  /// Sends one command line; an error in `ec` (and the connection is useless) if it could not be
  /// written. Not a coroutine itself: it hands back the write to await, one frame fewer a line.
  asio::awaitable<std::size_t> send(std::string_view command, error_code& ec) {
    record(TranscriptLine::Direction::kSent, command);
    line_.assign(command);
    line_ += "\r\n";
    auto token = asio::redirect_error(asio::use_awaitable, ec);
    return tls_ ? asio::async_write(*tls_, asio::buffer(line_), token)
                : asio::async_write(socket_, asio::buffer(line_), token);
  }

  /// Maps a failed read to the phase's reason and records it.
  void fail_read(ReadOutcome outcome, Phase phase, FailureReason timeout_reason) {
    switch (outcome) {
      case ReadOutcome::kTimeout:
        fail(timeout_reason, phase, std::string(phase_name(phase)) + ": no complete reply in time");
        break;
      case ReadOutcome::kClosed:
        fail(FailureReason::kConnectionClosed, phase,
             std::string(phase_name(phase)) + ": server closed the connection");
        break;
      case ReadOutcome::kMalformed:
        // Garbage in place of the greeting may be another protocol on the port; garbage later,
        // from a server that greeted properly, is a broken reply.
        fail(phase == Phase::kGreeting ? FailureReason::kGreetingMalformed
                                       : FailureReason::kReplyMalformed,
             phase, std::string(phase_name(phase)) + ": not an SMTP reply");
        break;
      case ReadOutcome::kTooLong:
        fail(FailureReason::kLineTooLong, phase, std::string(phase_name(phase)) + ": " + too_long_);
        break;
      case ReadOutcome::kTlsError:
        if (!replied_over_tls_) {
          // TLS 1.3 ends the client's part of the handshake before the server has checked the
          // client (its certificate, say): a refusal arrives as an alert on the first read.
          fail(FailureReason::kTlsHandshakeFailed, Phase::kTlsHandshake,
               "tls_handshake: " + tls_read_error_.message());
        } else {
          fail(FailureReason::kConnectionClosed, phase,
               std::string(phase_name(phase)) + ": " + tls_read_error_.message());
        }
        break;
      case ReadOutcome::kReply:
        break;
    }
  }

  void fail_write(const error_code& ec, Phase phase, FailureReason timeout_reason) {
    if (deadline_passed_) {
      fail(timeout_reason, phase, std::string(phase_name(phase)) + ": send timed out");
    } else {
      fail(FailureReason::kConnectionClosed, phase,
           std::string(phase_name(phase)) + ": send: " + ec.message());
    }
  }

  // --- phases ------------------------------------------------------------------------------

  asio::awaitable<bool> greet() {
    Reply greeting;
    ReadOutcome outcome = co_await read_reply(greeting);
    const ProbeResult::Duration waited = set_phase(Phase::kGreeting, greeting_began_);
    if (outcome != ReadOutcome::kReply) {
      result_.unexpected_bytes = buffer_.substr(0, kUnexpectedBytesKept);
      fail_read(outcome, Phase::kGreeting, FailureReason::kGreetingTimeout);
      co_return false;
    }
    result_.greeting_latency = waited;
    result_.greeting_code = greeting.code;
    result_.banner = parse_banner(greeting);
    for (std::size_t i = 0; i < greeting.lines.size(); ++i) {
      std::string line = std::to_string(greeting.code);
      const std::string& text = greeting.lines[i];
      if (i + 1 < greeting.lines.size()) {
        line += '-' + text;
      } else if (!text.empty()) {
        line += ' ' + text;
      }
      result_.greeting_lines.push_back(printable(line));
    }
    if (greeting.code == 220) co_return true;
    if (greeting.code >= 400) {
      // RFC 5321 §3.1: a server that refuses service still expects QUIT; record its answer.
      fail(FailureReason::kGreetingRejected, Phase::kGreeting,
           "greeting: rejected with " + std::to_string(greeting.code));
      co_await quit();
    } else {
      fail(FailureReason::kGreetingMalformed, Phase::kGreeting,
           "greeting: unexpected code " + std::to_string(greeting.code));
    }
    co_return false;
  }

  asio::awaitable<bool> ehlo() {
    Clock::time_point began = Clock::now();
    Reply reply;
    bool ok = co_await hello("EHLO", reply);
    if (ok && reply.code >= 500 && reply.code < 600) {
      // RFC 5321 §4.1.4: a server that does not know EHLO answers 5xx; HELO is the fallback.
      result_.helo_fallback = true;
      ok = co_await hello("HELO", reply);
    }
    add_phase(Phase::kEhlo, began);
    if (!ok) co_return false;
    result_.ehlo_code = reply.code;
    if (reply.code != 250) {
      fail(FailureReason::kEhloRejected, Phase::kEhlo,
           "ehlo: rejected with " + std::to_string(reply.code));
      co_await quit();
      co_return false;
    }
    if (!result_.helo_fallback) {
      result_.capabilities = parse_ehlo(reply);
      if (!tls_) result_.starttls_advertised = result_.capabilities->starttls;
    } else if (!tls_) {
      result_.starttls_advertised = false;  // no EHLO, no extensions
    }
    co_return true;
  }

  asio::awaitable<bool> starttls() {
    Clock::time_point began = Clock::now();
    if (!result_.starttls_advertised.value_or(false)) {
      fail(FailureReason::kStarttlsUnavailable, Phase::kStartTls,
           "starttls: the server did not offer STARTTLS");
      co_await quit();
      co_return false;
    }
    error_code ec;
    co_await send("STARTTLS", ec);
    if (ec) {
      set_phase(Phase::kStartTls, began);
      fail_write(ec, Phase::kStartTls, FailureReason::kStarttlsTimeout);
      co_return false;
    }
    Reply reply;
    ReadOutcome outcome = co_await read_reply(reply);
    set_phase(Phase::kStartTls, began);
    if (outcome != ReadOutcome::kReply) {
      fail_read(outcome, Phase::kStartTls, FailureReason::kStarttlsTimeout);
      co_return false;
    }
    if (reply.code != 220) {
      fail(FailureReason::kStarttlsRejected, Phase::kStartTls,
           "starttls: answered with " + std::to_string(reply.code));
      co_await quit();
      co_return false;
    }
    if (!buffer_.empty()) {
      // Bytes behind the 220 were sent before the handshake: whatever TLS would protect can be
      // forged this way (CVE-2011-0411 and its kin). Never hand them to the TLS layer.
      fail(FailureReason::kStarttlsInjection, Phase::kStartTls,
           "starttls: " + std::to_string(buffer_.size()) +
               " plaintext bytes followed the 220 reply");
      co_return false;
    }
    co_return co_await handshake();
  }

  asio::awaitable<bool> handshake() {
    Clock::time_point began = Clock::now();
    if (!target_.tls_context) {
      fail(FailureReason::kTlsHandshakeFailed, Phase::kTlsHandshake, "tls: no TLS context");
      co_return false;
    }
    tls_.emplace(socket_, *target_.tls_context);
    const std::string& name =
        target_.tls_server_name.empty() ? target_.host : target_.tls_server_name;
    prepare_tls_session(tls_->native_handle(), name);
    error_code ec;
    co_await tls_->async_handshake(asio::ssl::stream_base::client,
                                   asio::redirect_error(asio::use_awaitable, ec));
    set_phase(Phase::kTlsHandshake, began);
    if (ec && deadline_passed_) {
      fail(FailureReason::kTlsHandshakeTimeout, Phase::kTlsHandshake,
           "tls_handshake: no handshake in time");
      co_return false;
    }
    if (ec) {
      if (ec.category() == asio::error::get_ssl_category()) {
        result_.tls_error_reason = ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
      }
      fail(FailureReason::kTlsHandshakeFailed, Phase::kTlsHandshake,
           "tls_handshake: " + ec.message());
      co_return false;
    }
    result_.tls = read_tls_facts(tls_->native_handle());
    note(result_.tls->version + " " + result_.tls->cipher +
         (result_.tls->verified ? ", certificate verified"
                                : ", certificate not verified: " + result_.tls->verify_error));
    if (!result_.tls->verified && !target_.tls_insecure_skip_verify) {
      // The dialogue goes on (and QUIT is still said) so the server sees a clean close.
      fail(FailureReason::kTlsVerifyFailed, Phase::kTlsHandshake,
           "tls_handshake: certificate not verified: " + result_.tls->verify_error);
    }
    co_return true;
  }

  /// Sends EHLO or HELO and reads the answer; false if the connection failed.
  asio::awaitable<bool> hello(std::string_view verb, Reply& reply) {
    std::string command(verb);
    command += ' ';
    command += target_.helo_name;
    error_code ec;
    co_await send(command, ec);
    if (ec) {
      fail_write(ec, Phase::kEhlo, FailureReason::kEhloTimeout);
      co_return false;
    }
    ReadOutcome outcome = co_await read_reply(reply);
    if (outcome != ReadOutcome::kReply) {
      fail_read(outcome, Phase::kEhlo, FailureReason::kEhloTimeout);
      co_return false;
    }
    co_return true;
  }

  asio::awaitable<void> quit() {
    Clock::time_point began = Clock::now();
    error_code ec;
    co_await send("QUIT", ec);
    if (ec) {
      set_phase(Phase::kQuit, began);
      fail_write(ec, Phase::kQuit, FailureReason::kQuitTimeout);
      co_return;
    }
    Reply reply;
    ReadOutcome outcome = co_await read_reply(reply);
    set_phase(Phase::kQuit, began);
    if (outcome != ReadOutcome::kReply) {
      fail_read(outcome, Phase::kQuit, FailureReason::kQuitTimeout);
      co_return;
    }
    result_.quit_code = reply.code;
    if (reply.code != 221) {
      fail(FailureReason::kQuitUnexpectedCode, Phase::kQuit,
           "quit: answered with " + std::to_string(reply.code));
    }
  }

  const ProbeTarget& target_;
  const ProbeOptions& options_;
  ProbeSocket socket_;
  std::optional<asio::ssl::stream<ProbeSocket&>> tls_;  // engaged from the handshake on
  ProbeTimer deadline_timer_;
  bool deadline_passed_ = false;  // the timer expired and closed the socket
  Clock::time_point start_;
  Clock::time_point deadline_;
  // Connect done (implicit TLS: handshake done): where the greeting phase starts.
  Clock::time_point greeting_began_;
  std::string buffer_;             // received, not yet parsed; at most kMaxReplyBytes + a chunk
  ReplyParser parser_;             // how far into buffer_ the reply being read is parsed
  std::array<char, 4096> chunk_;   // one read's worth
  std::string line_;               // the command being sent
  bool replied_over_tls_ = false;  // a whole reply came over TLS: the server's handshake is done
  error_code tls_read_error_;      // the TLS layer's error, for ReadOutcome::kTlsError
  std::string too_long_;           // the limit a reply broke, for ReadOutcome::kTooLong
  std::size_t transcript_bytes_ = 0;
  ProbeResult result_;
};

}  // namespace

std::vector<tcp::endpoint> connection_order(std::vector<tcp::endpoint> endpoints) {
  const auto v4_begin =
      std::stable_partition(endpoints.begin(), endpoints.end(),
                            [](const tcp::endpoint& e) { return e.address().is_v6(); });
  const std::size_t v6_count = static_cast<std::size_t>(v4_begin - endpoints.begin());
  const std::size_t v4_count = endpoints.size() - v6_count;
  std::vector<tcp::endpoint> ordered;
  ordered.reserve(endpoints.size());
  for (std::size_t i = 0; i < std::max(v6_count, v4_count); ++i) {
    if (i < v6_count) ordered.push_back(endpoints[i]);
    if (i < v4_count) ordered.push_back(endpoints[v6_count + i]);
  }
  return ordered;
}

asio::awaitable<ProbeResult> run_probe(const ProbeTarget& target, ProbeOptions options) {
  const asio::any_io_executor executor = co_await asio::this_coro::executor;
  Session session(target, options, io_executor(executor));
  session.arm_deadline();
  co_await session.dialogue();
  while (!session.deadline_released()) co_await asio::post(executor, asio::use_awaitable);
  co_return session.take_result();
}

}  // namespace smtp
