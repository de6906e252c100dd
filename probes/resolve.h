#pragma once
/// Host name -> addresses, bounded by a deadline.
#include <chrono>
#include <string>
#include <system_error>
#include <vector>

#include "probes/asio.h"

namespace smtp {

struct ResolveResult {
  std::vector<tcp::endpoint> endpoints;  // empty on failure
  bool timed_out = false;
  boost::system::error_code error;
};

/// IP literals are returned at once, with no lookup. Names go through the system resolver
/// (getaddrinfo on Asio's resolver thread); if `deadline` passes first the result is a timeout.
asio::awaitable<ResolveResult> resolve_host(const std::string& host, std::uint16_t port,
                                            std::chrono::steady_clock::time_point deadline);

}  // namespace smtp
