#include "probes/probe_result.h"

namespace smtp {

std::string_view phase_name(Phase phase) {
  switch (phase) {
    case Phase::kResolve:
      return "resolve";
    case Phase::kConnect:
      return "connect";
    case Phase::kGreeting:
      return "greeting";
    case Phase::kEhlo:
      return "ehlo";
    case Phase::kStartTls:
      return "starttls";
    case Phase::kTlsHandshake:
      return "tls_handshake";
    case Phase::kQuit:
      return "quit";
  }
  return "unknown";
}

std::string_view reason_name(FailureReason reason) {
  switch (reason) {
    case FailureReason::kNone:
      return "success";
    case FailureReason::kResolveError:
      return "resolve_error";
    case FailureReason::kResolveTimeout:
      return "resolve_timeout";
    case FailureReason::kConnectRefused:
      return "connect_refused";
    case FailureReason::kConnectTimeout:
      return "connect_timeout";
    case FailureReason::kConnectError:
      return "connect_error";
    case FailureReason::kGreetingTimeout:
      return "greeting_timeout";
    case FailureReason::kGreetingRejected:
      return "greeting_rejected";
    case FailureReason::kGreetingMalformed:
      return "greeting_malformed";
    case FailureReason::kReplyMalformed:
      return "reply_malformed";
    case FailureReason::kLineTooLong:
      return "line_too_long";
    case FailureReason::kConnectionClosed:
      return "connection_closed";
    case FailureReason::kEhloTimeout:
      return "ehlo_timeout";
    case FailureReason::kEhloRejected:
      return "ehlo_rejected";
    case FailureReason::kStarttlsUnavailable:
      return "starttls_unavailable";
    case FailureReason::kStarttlsRejected:
      return "starttls_rejected";
    case FailureReason::kStarttlsTimeout:
      return "starttls_timeout";
    case FailureReason::kTlsHandshakeFailed:
      return "tls_handshake_failed";
    case FailureReason::kTlsHandshakeTimeout:
      return "tls_handshake_timeout";
    case FailureReason::kTlsVerifyFailed:
      return "tls_verify_failed";
    case FailureReason::kStarttlsInjection:
      return "starttls_injection";
    case FailureReason::kQuitTimeout:
      return "quit_timeout";
    case FailureReason::kQuitUnexpectedCode:
      return "quit_unexpected_code";
    case FailureReason::kNullMx:
      return "null_mx";
    case FailureReason::kExporterOverloaded:
      return "exporter_overloaded";
  }
  return "unknown";
}

std::string_view transcript_marker(TranscriptLine::Direction direction) {
  switch (direction) {
    case TranscriptLine::Direction::kSent:
      return "C:";
    case TranscriptLine::Direction::kReceived:
      return "S:";
    case TranscriptLine::Direction::kNote:
      return "--";
  }
  return "--";
}

std::string_view transcript_source(TranscriptLine::Direction direction) {
  switch (direction) {
    case TranscriptLine::Direction::kSent:
      return "client";
    case TranscriptLine::Direction::kReceived:
      return "server";
    case TranscriptLine::Direction::kNote:
      return "note";
  }
  return "note";
}

}  // namespace smtp
