#pragma once
/// The status page at `/` and an endpoint's own page: pure functions from a snapshot to HTML.
/// No JavaScript and nothing loaded from elsewhere: charts are inline SVG drawn here, and
/// everything a server sent is HTML-escaped.
#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "exporter/status_snapshot.h"

namespace smtp {

/// Rows per page of the status page.
inline constexpr std::size_t kStatusPageRows = 100;
/// Seconds between the page's own reloads (meta refresh).
inline constexpr int kStatusRefreshSeconds = 30;

/// What the request asks to see: `?q=` (a substring of the target, endpoint, state or reason,
/// any case) and `?page=` (1-based; out of range: the nearest page).
struct StatusQuery {
  std::string filter{};  // `{}`: designated initialisers may leave it out (GCC -Wextra)
  std::size_t page = 1;
};

StatusQuery parse_status_query(const std::map<std::string, std::string>& query);

/// `text` with & < > " ' as character references: safe in element text and quoted attributes.
std::string html_escaped(std::string_view text);

/// `text` percent-encoded for a query string value (unreserved characters kept).
std::string url_encoded(std::string_view text);

/// "up", "failing", or "pending" (not probed yet).
std::string_view row_state(const StatusRow& row);

/// The rows `query` selects, failing first, then not yet probed, then up, each by key.
std::vector<const StatusRow*> select_rows(const StatusSnapshot& snapshot, std::string_view filter);

/// A small line chart of greeting latencies (seconds, oldest first; NaN: no greeting, a gap),
/// as an inline <svg>; scaled to the largest value.
std::string latency_chart_svg(const std::vector<float>& latencies);

/// The whole status page. `now`: Unix seconds, for certificate expiry in days.
std::string render_status_page(const StatusSnapshot& snapshot, const StatusQuery& query,
                               double now);

/// An endpoint's own page: its row, every hint, and its last dialogues.
std::string render_status_detail(const StatusDetail& detail, double now);

/// The page for a `/target?name=` that names no endpoint.
std::string render_status_not_found(std::string_view key);

}  // namespace smtp
