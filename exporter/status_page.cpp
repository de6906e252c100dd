#include "exporter/status_page.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "probes/diagnosis.h"
#include "probes/text.h"

namespace smtp {
namespace {

constexpr std::string_view kStyle =
    "body{font:14px sans-serif;margin:1em}table{border-collapse:collapse}"
    "th,td{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}"
    "tr.failing td.state{background:#f4c7c3}tr.up td.state{background:#c8e6c9}"
    "tr.pending td.state{background:#eee}td.why{max-width:40em}small{color:#555}"
    "pre{background:#f6f6f6;padding:4px;white-space:pre-wrap}";

// Sizes of a latency chart, in pixels.
constexpr int kChartWidth = 120;
constexpr int kChartHeight = 24;

int state_rank(const StatusRow& row) {
  if (!row.probed) return 1;
  return row.up ? 2 : 0;
}

bool contains_ignoring_case(std::string_view text, std::string_view lowered_needle) {
  if (lowered_needle.empty()) return true;
  const auto found =
      std::search(text.begin(), text.end(), lowered_needle.begin(), lowered_needle.end(),
                  [](char a, char b) { return ascii_lower(a) == b; });
  return found != text.end();
}

bool matches(const StatusRow& row, std::string_view lowered_filter) {
  return contains_ignoring_case(row.target, lowered_filter) ||
         contains_ignoring_case(row.endpoint, lowered_filter) ||
         contains_ignoring_case(row_state(row), lowered_filter) ||
         (row.probed && !row.up &&
          contains_ignoring_case(reason_name(row.failure), lowered_filter));
}

void append_escaped(std::string& out, std::string_view text) { out += html_escaped(text); }

void append_format(std::string& out, const char* format, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, value);
  out += buffer;
}

void append_head(std::string& out, std::string_view title) {
  out += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">";
  out += "<meta http-equiv=\"refresh\" content=\"" + std::to_string(kStatusRefreshSeconds) + "\">";
  out += "<title>";
  append_escaped(out, title);
  out += "</title><style>";
  out += kStyle;
  out += "</style></head><body>\n<h1>";
  append_escaped(out, title);
  out +=
      "</h1>\n<nav><a href=\"/\">Status</a> | <a href=\"/metrics\">Metrics</a> | "
      "<a href=\"/-/healthy\">Health</a> | <a href=\"/-/ready\">Readiness</a></nav>\n";
}

void append_latency(std::string& out, const StatusRow& row) {
  if (row.greeting_seconds) append_format(out, "%.1f ms", *row.greeting_seconds * 1000);
}

void append_expiry(std::string& out, const StatusRow& row, double now) {
  if (!row.cert_expiry) return;
  const int days = days_left(*row.cert_expiry, now);
  out += std::to_string(days);
  out += days == 1 || days == -1 ? " day" : " days";
}

void append_why(std::string& out, const StatusRow& row) {
  if (!row.probed || row.up) return;
  out += "<span class=\"reason\">";
  append_escaped(out, reason_name(row.failure));
  out += "</span>";
  if (!row.problem.empty()) {
    out += "<br><span class=\"problem\">";
    append_escaped(out, row.problem);
    out += "</span>";
  }
  if (!row.hint.empty()) {
    out += "<br><small class=\"hint\">Hint: ";
    append_escaped(out, row.hint);
    out += "</small>";
  }
}

void append_detail_link(std::string& out, const StatusRow& row) {
  out += "<a href=\"/target?name=";
  out += url_encoded(row.key);
  out += "\">";
  append_escaped(out, row.target);
  out += "</a>";
}

void append_row(std::string& out, const StatusRow& row, double now) {
  out += "<tr class=\"";
  out += row_state(row);
  out += "\"><td class=\"target\">";
  append_detail_link(out, row);
  out += "</td><td>";
  append_escaped(out, row.endpoint);
  out += "</td><td class=\"state\">";
  out += row_state(row);
  out += "</td><td class=\"latency\">";
  append_latency(out, row);
  out += "</td><td>";
  out += latency_chart_svg(row.latencies);
  out += "</td><td class=\"banner-host\">";
  append_escaped(out, row.banner_hostname);
  out += "</td><td class=\"software\">";
  append_escaped(out, row.banner_software);
  out += "</td><td class=\"cert\">";
  append_expiry(out, row, now);
  out += "</td><td class=\"why\">";
  append_why(out, row);
  out += "</td></tr>\n";
}

constexpr std::string_view kTableHead =
    "<table><thead><tr><th>Target</th><th>Endpoint</th><th>State</th><th>Greeting</th>"
    "<th>Recent greetings</th><th>Banner hostname</th><th>Software</th><th>Certificate "
    "expires in</th><th>Failure reason and hint</th></tr></thead>\n<tbody>\n";

std::string page_link(const StatusQuery& query, std::size_t page) {
  std::string href = "/?page=" + std::to_string(page);
  if (!query.filter.empty()) href += "&amp;q=" + url_encoded(query.filter);
  return href;
}

}  // namespace

StatusQuery parse_status_query(const std::map<std::string, std::string>& query) {
  StatusQuery parsed;
  if (auto it = query.find("q"); it != query.end()) parsed.filter = it->second;
  if (auto it = query.find("page"); it != query.end()) {
    std::size_t page = 0;
    const std::string& text = it->second;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), page);
    if (ec == std::errc() && end == text.data() + text.size() && page > 0) parsed.page = page;
  }
  return parsed;
}

std::string html_escaped(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string url_encoded(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

std::string_view row_state(const StatusRow& row) {
  if (!row.probed) return "pending";
  return row.up ? "up" : "failing";
}

std::vector<const StatusRow*> select_rows(const StatusSnapshot& snapshot, std::string_view filter) {
  const std::string lowered = ascii_lowered(filter);
  std::vector<const StatusRow*> rows;
  rows.reserve(snapshot.rows.size());
  for (const StatusRow& row : snapshot.rows) {
    if (matches(row, lowered)) rows.push_back(&row);
  }
  std::stable_sort(rows.begin(), rows.end(), [](const StatusRow* a, const StatusRow* b) {
    const int ra = state_rank(*a);
    const int rb = state_rank(*b);
    return ra != rb ? ra < rb : a->key < b->key;
  });
  return rows;
}

std::string latency_chart_svg(const std::vector<float>& latencies) {
  float top = 0;
  for (const float v : latencies) {
    if (!std::isnan(v)) top = std::max(top, v);
  }
  std::string out = "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
                    std::to_string(kChartWidth) + "\" height=\"" + std::to_string(kChartHeight) +
                    "\" viewBox=\"0 0 " + std::to_string(kChartWidth) + " " +
                    std::to_string(kChartHeight) + "\"><title>";
  append_format(out, "greeting latency of the last probes, up to %.1f ms", top * 1000.0);
  out += "</title><rect width=\"100%\" height=\"100%\" fill=\"#fafafa\"/>";
  const double step = static_cast<double>(kChartWidth - 2) /
                      static_cast<double>(std::max<std::size_t>(kLatencyHistory - 1, 1));
  const auto x_of = [&](std::size_t i) { return 1 + step * static_cast<double>(i); };
  const auto y_of = [&](float v) {
    const double fraction = top > 0 ? v / top : 0;
    return kChartHeight - 2 - fraction * (kChartHeight - 4);
  };
  // One polyline per run of probes that got a greeting; a lone point is a dot; a probe without
  // greeting is a red tick on the base line.
  std::size_t i = 0;
  while (i < latencies.size()) {
    if (std::isnan(latencies[i])) {
      append_format(out, "<rect x=\"%.1f\" y=\"18\" width=\"2\" height=\"6\" fill=\"#c62828\"/>",
                    x_of(i) - 1);
      ++i;
      continue;
    }
    std::size_t end = i;
    while (end < latencies.size() && !std::isnan(latencies[end])) ++end;
    if (end - i == 1) {
      append_format(out, "<circle cx=\"%.1f\"", x_of(i));
      append_format(out, " cy=\"%.1f\" r=\"1.5\" fill=\"#1565c0\"/>", y_of(latencies[i]));
    } else {
      out += "<polyline fill=\"none\" stroke=\"#1565c0\" stroke-width=\"1.5\" points=\"";
      for (std::size_t j = i; j < end; ++j) {
        append_format(out, "%.1f,", x_of(j));
        append_format(out, "%.1f ", y_of(latencies[j]));
      }
      out += "\"/>";
    }
    i = end;
  }
  out += "</svg>";
  return out;
}

std::string render_status_page(const StatusSnapshot& snapshot, const StatusQuery& query,
                               double now) {
  const std::vector<const StatusRow*> rows = select_rows(snapshot, query.filter);
  std::size_t up = 0;
  std::size_t failing = 0;
  for (const StatusRow& row : snapshot.rows) {
    if (row.probed) ++(row.up ? up : failing);
  }
  const std::size_t pages =
      std::max<std::size_t>(1, (rows.size() + kStatusPageRows - 1) / kStatusPageRows);
  const std::size_t page = std::min(query.page, pages);
  const std::size_t first = (page - 1) * kStatusPageRows;
  const std::size_t last = std::min(rows.size(), first + kStatusPageRows);

  std::string out;
  out.reserve(4096 + (last - first) * 1500);
  append_head(out, "SMTP Exporter");
  out += "<p id=\"summary\">" + std::to_string(snapshot.rows.size()) +
         " endpoints: " + std::to_string(failing) + " failing, " + std::to_string(up) + " up, " +
         std::to_string(snapshot.rows.size() - up - failing) + " not probed yet.</p>\n";
  out +=
      "<form method=\"get\" action=\"/\"><label>Filter (target, endpoint, state or reason): "
      "<input name=\"q\" value=\"";
  append_escaped(out, query.filter);
  out += "\"></label> <button type=\"submit\">Filter</button></form>\n";
  out += "<p id=\"shown\">";
  if (rows.empty()) {
    out += "No endpoint matches.";
  } else {
    out += "Showing " + std::to_string(first + 1) + "-" + std::to_string(last) + " of " +
           std::to_string(rows.size()) + (query.filter.empty() ? "" : " matching") + ", page " +
           std::to_string(page) + " of " + std::to_string(pages) + ".";
  }
  out += "</p>\n";
  out += kTableHead;
  for (std::size_t i = first; i < last; ++i) append_row(out, *rows[i], now);
  out += "</tbody></table>\n<nav class=\"pages\">";
  if (page > 1) out += "<a rel=\"prev\" href=\"" + page_link(query, page - 1) + "\">previous</a> ";
  if (page < pages) out += "<a rel=\"next\" href=\"" + page_link(query, page + 1) + "\">next</a>";
  out += "</nav>\n<p>POST /-/reload (or SIGHUP) reloads the configuration.</p>\n</body></html>\n";
  return out;
}

std::string render_status_detail(const StatusDetail& detail, double now) {
  const StatusRow& row = detail.row;
  std::string out;
  append_head(out, row.target + " - " + row.endpoint);
  out += kTableHead;
  append_row(out, row, now);
  out += "</tbody></table>\n";
  if (row.probed && !row.up) {
    out += "<h2>Why it fails</h2>\n<p class=\"detail\">";
    append_escaped(out, detail.error_detail);
    out += "</p>\n<ul class=\"hints\">";
    for (const std::string& hint : detail.hints) {
      out += "<li>";
      append_escaped(out, hint);
      out += "</li>";
    }
    out += "</ul>\n";
  }
  out += "<h2>Last dialogues</h2>\n";
  if (detail.transcripts.empty()) out += "<p>None recorded yet.</p>\n";
  // Newest first: the one a person opens the page for.
  for (auto it = detail.transcripts.rbegin(); it != detail.transcripts.rend(); ++it) {
    out += "<h3>";
    append_escaped(out, format_utc(it->at_unix_seconds));
    out += ": ";
    append_escaped(out, reason_name(it->failure));
    out += "</h3>\n<pre class=\"transcript\">";
    append_escaped(out, it->text);
    out += "</pre>\n";
  }
  out += "</body></html>\n";
  return out;
}

std::string render_status_not_found(std::string_view key) {
  std::string out;
  append_head(out, "No such endpoint");
  out += "<p>No endpoint is known as \"";
  append_escaped(out, key);
  out += "\". It may have left the configuration or DNS.</p>\n</body></html>\n";
  return out;
}

}  // namespace smtp
