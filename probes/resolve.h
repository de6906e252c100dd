#pragma once
/// DNS lookups for the probes: A/AAAA and MX through c-ares on the caller's io_context, each
/// bounded by a deadline of its own.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "probes/address.h"
#include "probes/asio.h"

namespace smtp {

/// c-ares statuses worth telling apart. The values are c-ares' own (ARES_ENODATA ...); any other
/// c-ares status still makes an error_code of dns_category(), with c-ares' text.
enum class DnsError : int {
  kNoData = 1,              // the name exists, but has no records of the type asked for
  kFormatError = 2,         // the server could not parse the query
  kServerFailure = 3,       // SERVFAIL
  kNotFound = 4,            // NXDOMAIN: the name does not exist
  kNotImplemented = 5,      // NOTIMP
  kRefused = 6,             // REFUSED
  kBadName = 8,             // not a valid domain name
  kBadResponse = 10,        // a reply c-ares could not parse
  kConnectionRefused = 11,  // the DNS server's port is closed
  kTimeout = 12,            // no answer in time
  kDestroyed = 16,          // the Resolver was destroyed with the lookup in flight
  kCancelled = 24,
};

/// The category of DnsError / c-ares statuses: "host not found", "no records of that type", ...
const boost::system::error_category& dns_category();
inline boost::system::error_code make_error_code(DnsError e) {
  return {static_cast<int>(e), dns_category()};
}

struct ResolveResult {
  std::vector<tcp::endpoint> endpoints;  // empty on failure
  /// No answer in time: the deadline passed, or c-ares gave up after its retries. `error` is
  /// then DnsError::kTimeout.
  bool timed_out = false;
  /// Set when `endpoints` is empty: DnsError::kNotFound for NXDOMAIN, kNoData for a name with
  /// neither A nor AAAA records, kServerFailure for SERVFAIL, ... (compare with DnsError values).
  boost::system::error_code error;
};

/// One MX record.
struct MxRecord {
  std::uint16_t preference = 0;
  std::string host;  // lower-case, without the trailing dot

  friend bool operator==(const MxRecord&, const MxRecord&) = default;
};

struct MxResult {
  /// The domain's mail exchangers, sorted by preference, then by host.
  std::vector<MxRecord> records;
  /// The domain publishes the RFC 7505 null MX ("0 ."): it accepts no mail. `records` is empty.
  /// A "." mixed with real hosts (which RFC 7505 forbids) is dropped, and the hosts are listed.
  bool null_mx = false;
  /// The domain exists but publishes no MX record. RFC 5321 §5.1 then makes the domain itself
  /// the implicit MX (preference 0); whether to probe it is the caller's decision.
  bool no_records = false;
  /// As ResolveResult::timed_out.
  bool timed_out = false;
  /// Set only when the lookup failed: NXDOMAIN (DnsError::kNotFound), SERVFAIL, timeout, ...
  /// Clear for `null_mx` and `no_records`, which are answers.
  boost::system::error_code error;
};

struct ResolverOptions {
  /// DNS servers: "ip", "ip:port", "[ipv6]:port" or a bare IPv6 address; port 53 by default.
  /// Empty: the system's configuration (/etc/resolv.conf, with its search list, and /etc/hosts
  /// before DNS). With explicit servers neither the search list nor /etc/hosts is used.
  /// With one server, its SERVFAIL / REFUSED is the lookup's error. With several, c-ares asks
  /// the next one instead, and c-ares 1.18 reports "all of them failed" as kConnectionRefused.
  std::vector<std::string> servers;
  /// How long c-ares waits for one answer before it retries (doubling each round of servers).
  std::chrono::milliseconds attempt_timeout{1000};
  /// How many times c-ares sends a query in all (over the servers, in turn) before it gives up.
  int tries = 3;
};

/// One c-ares channel bound to an executor: many concurrent lookups share its sockets, its one
/// timer and its server list. Not thread-safe: construct, use and destroy it on the thread that
/// runs its executor, and destroy it before that io_context.
///
/// Every lookup delivers its result exactly once, on the awaiting coroutine's executor. A lookup
/// whose deadline passes returns `timed_out` at once; its query is left to end in c-ares, which
/// has no way to cancel one query, and its answer is then dropped. Destroying the Resolver ends
/// every lookup still waiting with DnsError::kDestroyed.
///
/// Names are taken by value: the coroutine keeps its own copy, so a temporary string is safe.
class Resolver {
 public:
  using Clock = std::chrono::steady_clock;

  /// Throws std::invalid_argument for a malformed server, std::runtime_error if c-ares cannot
  /// start (configuration and start-up errors only).
  Resolver(asio::any_io_executor executor, ResolverOptions options);
  /// `servers` as in ResolverOptions::servers, with the default timeouts.
  explicit Resolver(asio::any_io_executor executor, std::vector<std::string> servers = {});
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  /// A and AAAA records of `host` as endpoints with `port` (in RFC 6724 order). An IP literal
  /// (IPv6 without brackets) is returned at once with no lookup.
  asio::awaitable<ResolveResult> resolve_host(std::string host, std::uint16_t port,
                                              Clock::time_point deadline);

  /// The MX records of `domain` (an absolute name: no search list is applied).
  asio::awaitable<MxResult> resolve_mx(std::string domain, Clock::time_point deadline);

  /// Lookups whose query is still in c-ares (including those already given up as timed out).
  std::size_t queries_in_flight() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

/// Without a Resolver: IP literals at once, names through the system's getaddrinfo on Asio's
/// resolver thread (so /etc/hosts and nsswitch apply, as for any command-line tool). One lookup
/// at a time per io_context: fine for a person at a terminal, not for scheduled probing at scale.
asio::awaitable<ResolveResult> resolve_host(std::string host, std::uint16_t port,
                                            std::chrono::steady_clock::time_point deadline);

}  // namespace smtp

namespace boost::system {
template <>
struct is_error_code_enum<smtp::DnsError> : std::true_type {};
}  // namespace boost::system
