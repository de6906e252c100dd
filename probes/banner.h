#pragma once
/// Pure: a greeting reply -> the server's hostname and software.
#include <string_view>

#include "probes/probe_result.h"
#include "probes/reply.h"

namespace smtp {

/// The hostname is the first word of the greeting's first line (RFC 5321 §4.2: "220 domain ...")
/// if it is a valid domain name or address literal (`[192.0.2.1]`, `[IPv6:2001:db8::1]`),
/// lower-cased and without a trailing dot; anything else is "invalid". The software is
/// recognised from the text of all lines: "postfix", "exim", "sendmail", "opensmtpd",
/// "microsoft", "qmail", "courier", "haraka", "google", ... or "unknown".
BannerInfo parse_banner(const Reply& greeting);

/// True if `name` is a syntactically valid DNS host name (LDH labels, 1-63 bytes each, at most
/// 253 bytes in all, a trailing dot allowed).
bool is_valid_domain(std::string_view name);

}  // namespace smtp
