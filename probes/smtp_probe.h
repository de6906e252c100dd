#pragma once
/// The SMTP dialogue as one coroutine: resolve, connect, greeting, EHLO (HELO fallback), QUIT.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "probes/asio.h"
#include "probes/probe_result.h"

namespace smtp {

class Resolver;

enum class TlsMode : std::uint8_t { kNone, kStartTls, kImplicit };

/// Which address families a probe may connect to. kAny races the addresses of both families
/// (RFC 8305, "happy eyeballs"), IPv6 first; kIp4 and kIp6 drop the other family's addresses.
enum class IpProtocol : std::uint8_t { kAny, kIp4, kIp6 };

/// Whether `protocol` lets a probe use `address`.
inline bool ip_family_allowed(const asio::ip::address& address, IpProtocol protocol) {
  return protocol == IpProtocol::kAny || (protocol == IpProtocol::kIp4) == address.is_v4();
}

/// What to probe and how. Plain data; the caller keeps it alive while the probe runs.
struct ProbeTarget {
  std::string host;  // a DNS name or an IP literal (IPv6 without brackets)
  std::uint16_t port = 25;
  std::string helo_name;
  TlsMode tls = TlsMode::kNone;
  /// For TLS targets: the client context (make_tls_context), shared by every probe of the
  /// target; the name for SNI and verification (empty: `host`); and whether a certificate that
  /// does not verify still lets the probe succeed.
  std::shared_ptr<asio::ssl::context> tls_context;
  std::string tls_server_name;
  bool tls_insecure_skip_verify = false;
  /// With several addresses left after this filter, connections are raced: a new attempt
  /// starts every ProbeOptions::connection_attempt_delay (or as soon as one fails) and the
  /// first to connect wins.
  IpProtocol ip_protocol = IpProtocol::kAny;
  /// Addresses the caller has already looked up (and vetted): connected to (after the
  /// ip_protocol filter) instead of looking `host` up again, which then only names the server
  /// for TLS. No `resolve` phase is recorded. Empty: `host` is looked up, unless it is an IP
  /// literal.
  std::vector<tcp::endpoint> addresses;
  std::chrono::nanoseconds timeout = std::chrono::seconds(10);  // the whole probe's deadline
};

struct ProbeOptions {
  /// Bytes of dialogue kept in ProbeResult::transcript; past it, lines are dropped and
  /// `transcript_truncated` is set. 0 keeps no transcript.
  std::size_t transcript_limit_bytes = 4096;
  /// Looks up a target given by name (c-ares, on the probe's io_context; it must outlive the
  /// probe). Null: the system's getaddrinfo, one lookup at a time (the free resolve_host).
  Resolver* resolver = nullptr;
  /// RFC 8305 §5's "Connection Attempt Delay": how long an attempt runs alone before the next
  /// address joins the race (250 ms, the RFC's recommendation).
  std::chrono::milliseconds connection_attempt_delay{250};
};

/// The order in which a probe tries several addresses of a host (RFC 8305 §4): the families
/// alternate, IPv6 first, each family keeping the order it came in (the resolver's, RFC 6724),
/// so that a broken family costs one attempt delay, not one per address.
std::vector<tcp::endpoint> connection_order(std::vector<tcp::endpoint> endpoints);

/// Runs one probe on the calling coroutine's executor. Never throws for anything the network or
/// the server does: every outcome is a ProbeResult. Every phase's budget is cut from one
/// deadline, `target.timeout` after the start.
asio::awaitable<ProbeResult> run_probe(const ProbeTarget& target, ProbeOptions options = {});

}  // namespace smtp
