#pragma once
/// Plain data produced by one probe: what happened, how long each phase took, and why it failed.
/// Knows nothing of Prometheus: the exporter, the Nagios face and the terminal face all read it.
#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "probes/ehlo.h"

namespace smtp {

/// The phases of a probe, in the order they run. `kStartTls` and `kTlsHandshake` only run for
/// TLS targets.
enum class Phase : std::uint8_t {
  kResolve,
  kConnect,
  kGreeting,
  kEhlo,
  kStartTls,
  kTlsHandshake,
  kQuit,
};
inline constexpr std::size_t kPhaseCount = 7;

/// The contract's label value for a phase: "resolve", "connect", ...
std::string_view phase_name(Phase phase);

/// The first thing that went wrong in a probe; the contract's `result` label values.
enum class FailureReason : std::uint8_t {
  kNone,  // success
  kResolveError,
  kResolveTimeout,
  kConnectRefused,
  kConnectTimeout,
  kConnectError,
  kGreetingTimeout,
  kGreetingRejected,
  kGreetingMalformed,
  kReplyMalformed,  // a later reply (EHLO, STARTTLS, QUIT) is not an SMTP reply
  kLineTooLong,
  kConnectionClosed,
  kEhloTimeout,
  kEhloRejected,
  kStarttlsUnavailable,
  kStarttlsRejected,
  kStarttlsTimeout,
  kTlsHandshakeFailed,
  kTlsHandshakeTimeout,
  kTlsVerifyFailed,
  kStarttlsInjection,
  kQuitTimeout,
  kQuitUnexpectedCode,
  kNullMx,
  /// The exporter could not get a socket (its descriptor budget is spent): not the server's
  /// fault, so never reported as a connect error.
  kExporterOverloaded,
};
inline constexpr std::size_t kFailureReasonCount = 25;

/// The contract's `result` label value: "success" for kNone, else the reason's name.
std::string_view reason_name(FailureReason reason);

/// How many bytes of a greeting that is not an SMTP reply ProbeResult keeps.
inline constexpr std::size_t kUnexpectedBytesKept = 64;

/// What the greeting says about the server. Both fields are safe to use as label values.
struct BannerInfo {
  std::string hostname;  // validated domain or address literal, lower-cased; "invalid" otherwise
  std::string software;  // "postfix", "exim", ... or "unknown"
};

/// What a handshake showed. Present in ProbeResult once a handshake completed.
struct TlsFacts {
  std::string version;            // "TLS 1.2", "TLS 1.3" (blackbox_exporter's spelling)
  std::string cipher;             // as OpenSSL names it, e.g. "TLS_AES_256_GCM_SHA384"
  double earliest_not_after = 0;  // Unix seconds: the soonest notAfter in the presented chain
  bool verified = false;          // chain and name verified
  std::string verify_error;       // OpenSSL's reason when not verified
  long verify_code = 0;           // X509_V_OK or the X509_V_ERR_* code of verify_error
  /// The server's own (leaf) certificate, for a person deciding why it does not verify. (With
  /// `{}`, positional initialisers that stop before these fields keep GCC's
  /// -Wmissing-field-initializers quiet.)
  std::string subject{};             // RFC 2253, e.g. "CN=mx.example.org"
  std::string issuer{};              // RFC 2253
  std::vector<std::string> names{};  // subjectAltName entries: "DNS:mx.example.org", "IP:192.0.2.1"
  double not_after = 0;              // Unix seconds
};

/// One line of the dialogue, as sent or received, with its time since the probe started.
struct TranscriptLine {
  enum class Direction : std::uint8_t { kSent, kReceived, kNote };
  std::chrono::nanoseconds at{};
  Direction direction = Direction::kNote;
  std::string text;  // without the line ending; non-printable bytes escaped
};

/// "C:", "S:" or "--": how a dialogue line is marked where people read it.
std::string_view transcript_marker(TranscriptLine::Direction direction);
/// "client", "server" or "note": who a dialogue line is from, where programs read it (JSON, logs).
std::string_view transcript_source(TranscriptLine::Direction direction);

/// Everything one probe found out.
struct ProbeResult {
  using Duration = std::chrono::nanoseconds;

  FailureReason failure = FailureReason::kNone;
  std::optional<Phase> failed_phase;  // the phase in which `failure` happened
  std::string error_detail;           // a short human explanation, e.g. the OS error

  std::array<std::optional<Duration>, kPhaseCount> phase_durations{};  // only phases that ran
  /// When each phase that ran first began, since the probe started: the transcript's clock.
  std::array<std::optional<Duration>, kPhaseCount> phase_starts{};
  Duration total{};
  /// Connect completion (implicit TLS: handshake completion) -> the greeting's last line; the
  /// greeting phase's duration, present once a whole greeting came.
  std::optional<Duration> greeting_latency;

  std::string peer;  // the address connected to, "ip:port" or "[v6]:port"
  int greeting_code = 0;
  int ehlo_code = 0;
  bool helo_fallback = false;  // EHLO was refused and HELO was used instead
  /// Whether the plaintext EHLO reply (before any TLS) offered STARTTLS; absent if no such reply
  /// came (no EHLO reached, implicit TLS, EHLO refused). A server that refused EHLO with 5xx
  /// and answered HELO speaks no extensions: false.
  std::optional<bool> starttls_advertised;
  std::optional<EhloCapabilities> capabilities;  // the last EHLO's, after TLS if there was TLS
  int quit_code = 0;
  std::optional<BannerInfo> banner;  // present once a greeting was parsed
  /// The greeting's lines as sent ("220 mx.example.org ESMTP"), printable, without line endings.
  std::vector<std::string> greeting_lines;
  /// The first bytes (at most kUnexpectedBytesKept, raw) of a greeting that was not a complete
  /// SMTP reply: what another protocol's server says first (SSH, HTTP, a TLS alert).
  std::string unexpected_bytes;
  /// OpenSSL's reason code (ERR_GET_REASON) of a failed handshake; 0 if none failed.
  int tls_error_reason = 0;
  std::optional<TlsFacts> tls;  // present once a TLS handshake completed
  std::vector<TranscriptLine> transcript;
  bool transcript_truncated = false;

  bool success() const { return failure == FailureReason::kNone; }
  bool quit_success() const { return quit_code == 221; }
  std::optional<Duration> phase(Phase p) const {
    return phase_durations[static_cast<std::size_t>(p)];
  }
};

}  // namespace smtp
