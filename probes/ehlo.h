#pragma once
/// Pure: a 250 reply to EHLO -> the server's extensions (RFC 5321 §4.1.1.1).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "probes/reply.h"

namespace smtp {

/// The extensions a server advertised. The first line of the reply is the server's greeting
/// to us, not an extension, and is skipped.
struct EhloCapabilities {
  std::vector<std::string> keywords;         // upper-cased, in order: "PIPELINING", "SIZE", ...
  std::optional<std::uint64_t> size_limit;   // SIZE's number; absent or 0 means no limit given
  std::vector<std::string> auth_mechanisms;  // upper-cased, from "AUTH PLAIN LOGIN"
  bool starttls = false;

  bool has(std::string_view keyword) const;
};

EhloCapabilities parse_ehlo(const Reply& reply);

}  // namespace smtp
