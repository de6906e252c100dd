#include "probes/diagnosis.h"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <cmath>
#include <ctime>

#include "probes/text.h"

namespace smtp {
namespace {

constexpr double kDaySeconds = 86400;

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

/// Facts every hint may quote.
struct Context {
  const ProbeTarget& target;
  const ProbeResult& result;
  double now;

  std::string where() const { return target.host + " port " + std::to_string(target.port); }
  std::string port() const { return std::to_string(target.port); }
  /// The failure's detail without the phase it starts with ("tls_handshake: ...").
  std::string detail() const {
    const std::string prefix =
        std::string(phase_name(result.failed_phase.value_or(Phase::kConnect))) + ": ";
    const std::string& text = result.error_detail;
    return text.rfind(prefix, 0) == 0 ? text.substr(prefix.size()) : text;
  }
  std::string greeting() const {
    return result.greeting_lines.empty() ? std::string() : result.greeting_lines.front();
  }
};

const char* const kWhichPort =
    "is it the right port? SMTP listens on 25 for relay, 587 for submission with STARTTLS, 465 for "
    "submission with implicit TLS";
const char* const kTryImplicit =
    "if the port expects TLS from the first byte, as 465 does, the server waits for a TLS "
    "handshake: probe it with implicit TLS";
const char* const kTryPlain =
    "the port speaks plaintext SMTP: probe it without TLS, or with STARTTLS as on 25 and 587";

Finding not_smtp(const Context& c, std::string_view protocol) {
  Finding f{c.where() + " speaks " + std::string(protocol) + ", not SMTP", {}};
  if (protocol == "TLS") {
    f.hints.push_back("the server opened with a TLS record: " + std::string(kTryImplicit));
  } else if (protocol == "HTTP") {
    f.hints.push_back("a web server, or a proxy's error page, answers on this port");
  } else if (protocol == "SSH") {
    f.hints.push_back("an SSH server answers on this port");
  } else {
    f.hints.push_back(
        "a mailbox server answers on this port: POP3 on 110 and 995, IMAP on 143 and 993");
  }
  f.hints.push_back(std::string(kWhichPort));
  return f;
}

Finding greeting_problem(const Context& c) {
  const ProbeResult& r = c.result;
  switch (r.failure) {
    case FailureReason::kGreetingTimeout: {
      Finding f{"connected to " + c.where() + ", but no complete greeting came in time", {}};
      if (!r.unexpected_bytes.empty()) {
        f.problem += ", only \"" + printable(r.unexpected_bytes) + "\"";
      }
      if (c.target.tls == TlsMode::kNone) {
        if (c.target.port == 465) {
          f.hints.push_back("port 465 is implicit TLS, RFC 8314: probe it with implicit TLS");
        } else {
          f.hints.push_back(kTryImplicit);
        }
      }
      f.hints.push_back(
          "servers of other protocols, HTTP for one, wait for the client to speak first: " +
          std::string(kWhichPort));
      f.hints.push_back(
          "an overloaded server, or slow DNS or blocklist lookups of the prober's address before "
          "the greeting, as Postfix's postscreen and Exim's host_lookup make, delay it: check the "
          "server's log");
      return f;
    }
    case FailureReason::kGreetingRejected: {
      Finding f{"the server refuses service: it greeted with \"" + c.greeting() + "\"", {}};
      if (r.greeting_code == 421) {
        f.hints.push_back(
            "421: the server is overloaded, shutting down or in maintenance: its log says which");
      } else {
        f.hints.push_back(
            "the prober's address may be blocklisted or refused by the server's access rules: "
            "the greeting's text often says which, the server's log does");
        f.hints.push_back(
            "a server in maintenance or over its connection limit may refuse everyone the same "
            "way");
      }
      return f;
    }
    case FailureReason::kGreetingMalformed: {
      const std::string_view protocol = recognise_protocol(r.unexpected_bytes);
      if (!protocol.empty()) return not_smtp(c, protocol);
      if (r.greeting_code != 0) {
        return {"the greeting's code " + std::to_string(r.greeting_code) +
                    " is neither 220 nor a refusal, 4xx or 5xx",
                {"a broken server or a middlebox rewriting the dialogue: see the dialogue"}};
      }
      return {c.where() + " answered with something that is not an SMTP reply",
              {"another service, a proxy or a load balancer answers on this port: see the bytes "
               "in the dialogue",
               kWhichPort}};
    }
    default:
      return {};
  }
}

Finding tls_problem(const Context& c) {
  const ProbeResult& r = c.result;
  if (r.failure == FailureReason::kTlsHandshakeTimeout) {
    return {"the TLS handshake did not finish in time",
            {"a firewall or middlebox may be dropping the handshake, or an overloaded server is "
             "slow to answer it"}};
  }
  if (r.tls_error_reason == SSL_R_WRONG_VERSION_NUMBER) {
    if (c.target.tls == TlsMode::kImplicit) {
      return {c.where() + " does not speak TLS: it answered the handshake in plaintext",
              {kTryPlain}};
    }
    return {"the server answered the handshake after STARTTLS in plaintext",
            {"a broken server, or a middlebox that passes STARTTLS but not TLS: check the "
             "server's log"}};
  }
  Finding f{"the TLS handshake failed: " + c.detail(), {}};
  switch (r.tls_error_reason) {
    case SSL_R_TLSV1_ALERT_INTERNAL_ERROR:
      f.hints.push_back(
          "the server reported an internal error: its TLS setup is broken, e.g. a certificate or "
          "key it cannot use or a TLS library it does not work with: its log says more");
      break;
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
    case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
    case SSL_R_NO_SHARED_CIPHER:
      f.hints.push_back(
          "no protocol version or cipher in common: an old server, or a minimum version set too "
          "high here");
      break;
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
      f.hints.push_back("the server wants a client certificate it trusts");
      break;
    default:
      f.hints.push_back(
          "no protocol version or cipher in common, or the server wants a client certificate");
      break;
  }
  f.hints.push_back("the server's log names its side of the failure");
  return f;
}

Finding certificate_problem(const Context& c) {
  const TlsFacts& tls = *c.result.tls;
  const std::string expected = expected_tls_name(c.target);
  Finding f{"the certificate does not verify: " + tls.verify_error, {}};
  switch (tls.verify_code) {
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
      f.hints.push_back("the certificate is not for " + expected +
                        ": probe the name the certificate carries, or fix the certificate");
      break;
    case X509_V_ERR_CERT_HAS_EXPIRED:
      f.hints.push_back("the certificate has expired: renew it and reload the server");
      break;
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
      f.hints.push_back(
          "the issuer is not trusted here: give its CA certificate with --ca-file, or have the "
          "server send its intermediate certificates too");
      break;
    default:
      break;
  }
  f.hints.push_back("expected name: " + expected);
  if (!tls.subject.empty() || !tls.names.empty()) {
    std::string names;
    for (const std::string& name : tls.names) names += (names.empty() ? "" : ", ") + name;
    f.hints.push_back("names in the certificate: " + (names.empty() ? "none" : names) +
                      ", subject " + tls.subject);
    f.hints.push_back("issuer: " + tls.issuer);
    f.hints.push_back("expires: " + describe_expiry(tls.not_after, c.now));
  }
  return f;
}

Finding quit_problem(const Context& c) {
  const ProbeResult& r = c.result;
  Finding f;
  if (r.quit_code != 0) {
    f.problem = "QUIT was answered with " + std::to_string(r.quit_code) + ", not 221";
  } else if (r.failure == FailureReason::kConnectionClosed && r.failed_phase == Phase::kQuit) {
    f.problem = "the server closed the connection without answering QUIT";
  } else {
    f.problem = "no answer to QUIT in time";
  }
  f.hints = {
      "the server may be shutting down, or it cuts sessions it considers idle",
      "a firewall's SMTP inspection may answer or drop QUIT itself",
      "RFC 5321 requires 221 to QUIT, and a server that does not close cleanly may also break "
      "mail sessions"};
  return f;
}

Finding primary_problem(const Context& c) {
  const ProbeResult& r = c.result;
  const std::string helo = c.target.helo_name;
  switch (r.failure) {
    case FailureReason::kNone:
      return {};
    case FailureReason::kResolveError:
      return {"the name could not be resolved: " + r.error_detail,
              {"check the name's spelling and that it has an A or AAAA record",
               "check that this machine's resolver answers"}};
    case FailureReason::kResolveTimeout:
      return {"no DNS answer for " + c.target.host + " in time",
              {"check that this machine's resolver is reachable and answers"}};
    case FailureReason::kConnectRefused:
      return {c.where() + " refused the connection: nothing listens there",
              {"is the SMTP server running on " + c.target.host + "?", kWhichPort,
               "a firewall that rejects, rather than drops, connections looks the same"}};
    case FailureReason::kConnectTimeout:
      return {"no answer to the connection attempt to " + c.where() + " in time",
              {"a firewall in the way drops the packets silently, or the host is down",
               "is the address right? Many networks block outgoing port 25, where 587 or 465 may "
               "get through"}};
    case FailureReason::kConnectError:
      return {"could not connect to " + c.where() + ": " + c.detail(),
              {"check the address and this machine's routing to it"}};
    case FailureReason::kGreetingTimeout:
    case FailureReason::kGreetingRejected:
    case FailureReason::kGreetingMalformed:
      return greeting_problem(c);
    case FailureReason::kReplyMalformed:
      return {"a reply in the " + std::string(phase_name(r.failed_phase.value_or(Phase::kEhlo))) +
                  " phase is not an SMTP reply",
              {"a middlebox, such as a firewall's SMTP inspection or a proxy, may be rewriting the "
               "dialogue",
               "see the dialogue for what came"}};
    case FailureReason::kLineTooLong:
      return {"the server sent a reply line over 2048 bytes, or a reply of over 100 lines",
              {"not an SMTP server, or a broken one: see the dialogue"}};
    case FailureReason::kConnectionClosed:
      if (r.failed_phase == Phase::kGreeting) {
        return {"the server closed the connection before its greeting",
                {"servers close at once on clients they refuse: the prober's address may be "
                 "blocked by access rules or a connection limit per client",
                 "check the server's log"}};
      }
      return {"the server closed the connection during " +
                  std::string(phase_name(r.failed_phase.value_or(Phase::kEhlo))),
              {"it may refuse the EHLO name " + helo + " or have hit a limit: check its log"}};
    case FailureReason::kEhloTimeout:
      return {"no answer to EHLO in time",
              {"slow DNS or blocklist lookups on the server's side delay EHLO: check its log"}};
    case FailureReason::kEhloRejected:
      return {"EHLO and HELO were refused with " + std::to_string(r.ehlo_code),
              {"the server may refuse the EHLO name " + helo +
               ": send a fully qualified name that resolves"}};
    case FailureReason::kStarttlsUnavailable:
      return {
          "the server did not offer STARTTLS",
          {"TLS is not set up on the server: Postfix needs smtpd_tls_security_level and a "
           "certificate, Exim tls_advertise_hosts and tls_certificate",
           "a firewall's SMTP inspection may strip STARTTLS from the EHLO reply", kTryImplicit}};
    case FailureReason::kStarttlsRejected:
      return {"STARTTLS was refused",
              {"the server's TLS setup is broken, e.g. a missing or unreadable certificate or key: "
               "check its log"}};
    case FailureReason::kStarttlsTimeout:
      return {"no answer to STARTTLS in time", {"check the server's log"}};
    case FailureReason::kTlsHandshakeFailed:
    case FailureReason::kTlsHandshakeTimeout:
      return tls_problem(c);
    case FailureReason::kTlsVerifyFailed:
      return certificate_problem(c);
    case FailureReason::kStarttlsInjection:
      return {"the server sent plaintext after its 220 to STARTTLS, before the handshake",
              {"the STARTTLS command injection flaw, CVE-2011-0411 and its kin, in the server or "
               "a middlebox: update it"}};
    case FailureReason::kQuitTimeout:
    case FailureReason::kQuitUnexpectedCode:
      return quit_problem(c);
    case FailureReason::kNullMx:
      return {"the domain publishes a null MX, RFC 7505: it accepts no mail, by its own word",
              {"nothing to fix, unless the domain should receive mail"}};
    case FailureReason::kExporterOverloaded:
      return {"the prober could not get a socket: its open-file limit is spent",
              {"not the server's fault: raise the prober's open-file limit or lower its "
               "concurrency"}};
  }
  return {};
}

}  // namespace

std::vector<Finding> diagnose(const ProbeTarget& target, const ProbeResult& result, double now) {
  const Context c{target, result, now};
  std::vector<Finding> findings;
  const bool quit_ran = result.phase(Phase::kQuit).has_value();
  const bool failed_in_quit = result.failed_phase == Phase::kQuit;
  if (!result.success() && !failed_in_quit) findings.push_back(primary_problem(c));
  if (quit_ran && !result.quit_success()) {
    findings.push_back(quit_problem(c));
    findings.back().about = Finding::About::kQuit;
  }
  if (result.tls && !result.tls->verified && result.failure != FailureReason::kTlsVerifyFailed) {
    findings.push_back(certificate_problem(c));
    findings.back().about = Finding::About::kCertificate;
  }
  return findings;
}

std::string_view recognise_protocol(std::string_view first_bytes) {
  if (starts_with(first_bytes, "SSH-")) return "SSH";
  if (starts_with(first_bytes, "HTTP/")) return "HTTP";
  if (starts_with(first_bytes, "+OK") || starts_with(first_bytes, "-ERR")) return "POP3";
  if (starts_with(first_bytes, "* OK") || starts_with(first_bytes, "* BYE")) return "IMAP";
  // A TLS record header: handshake (22) or alert (21), then major version 3.
  if (first_bytes.size() >= 2 && (first_bytes[0] == '\x16' || first_bytes[0] == '\x15') &&
      first_bytes[1] == '\x03') {
    return "TLS";
  }
  return {};
}

int days_left(double not_after, double now) {
  return static_cast<int>(std::floor((not_after - now) / kDaySeconds));
}

std::string format_utc(double unix_seconds) {
  const auto when = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  char date[32] = "?";
  if (gmtime_r(&when, &tm) != nullptr) std::strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S", &tm);
  return std::string(date) + " UTC";
}

std::string describe_expiry(double not_after, double now) {
  const int days = days_left(not_after, now);
  if (not_after < now) {
    const int ago = -days - 1;  // floor rounds down: half a day ago is day -1, "0 days ago"
    return format_utc(not_after) + " (expired " + std::to_string(ago) +
           (ago == 1 ? " day ago)" : " days ago)");
  }
  return format_utc(not_after) + " (" + std::to_string(days) +
         (days == 1 ? " day left)" : " days left)");
}

std::string expected_tls_name(const ProbeTarget& target) {
  return target.tls_server_name.empty() ? target.host : target.tls_server_name;
}

}  // namespace smtp
