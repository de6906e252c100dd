// The status page renderer: escaping of what servers sent, order, paging, filter, charts, hints.
#include "exporter/status_page.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace smtp {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr double kNow = 1'800'000'000;
constexpr std::string_view kHostile = "<script>alert(1)</script><img src=x onerror=alert(2)>";

StatusRow up_row(std::string name) {
  StatusRow row;
  row.key = name;
  row.target = std::move(name);
  row.endpoint = "127.0.0.1:25";
  row.probed = true;
  row.up = true;
  row.greeting_seconds = 0.0123;
  row.latencies = {0.010f, 0.012f, 0.0123f};
  row.banner_hostname = "mx.test.local";
  row.banner_software = "postfix";
  return row;
}

StatusRow failing_row(std::string name) {
  StatusRow row = up_row(std::move(name));
  row.up = false;
  row.greeting_seconds.reset();
  row.failure = FailureReason::kConnectRefused;
  row.problem = "nothing listens on 127.0.0.1 port 1";
  row.hint = "is the mail server running?";
  return row;
}

/// Where `needle` first appears in `page` (fails the test if it does not).
std::size_t position(const std::string& page, std::string_view needle) {
  const std::size_t at = page.find(needle);
  EXPECT_NE(at, std::string::npos) << needle;
  return at;
}

std::size_t count(const std::string& page, std::string_view needle) {
  std::size_t n = 0;
  for (std::size_t at = page.find(needle); at != std::string::npos;
       at = page.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

TEST(StatusPage, EscapesEverythingAServerSent) {
  StatusRow row = failing_row(std::string("t") + std::string(kHostile));
  row.banner_hostname = std::string(kHostile);
  row.banner_software = "\"quoted\" & 'single'";
  row.problem = std::string(kHostile);
  row.hint = std::string(kHostile);
  row.endpoint = std::string(kHostile);
  const std::string page = render_status_page({{row}}, {}, kNow);
  EXPECT_THAT(page, Not(HasSubstr("<script>")));
  EXPECT_THAT(page, Not(HasSubstr("<img")));
  EXPECT_THAT(page, HasSubstr("&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x "
                              "onerror=alert(2)&gt;"));
  EXPECT_THAT(page, HasSubstr("&quot;quoted&quot; &amp; &#39;single&#39;"));
  // The filter echoed into the form is escaped too.
  const std::string filtered = render_status_page({{row}}, {.filter = "\"><script>"}, kNow);
  EXPECT_THAT(filtered, Not(HasSubstr("<script>")));
  EXPECT_THAT(filtered, HasSubstr("value=\"&quot;&gt;&lt;script&gt;\""));
}

TEST(StatusPage, DetailEscapesTranscriptAndHints) {
  StatusDetail detail{failing_row("hostile"),
                      std::string(kHostile),
                      {std::string(kHostile), "second hint"},
                      {{kNow, FailureReason::kConnectRefused,
                        "+0.1 ms S: 220 " + std::string(kHostile) + " ESMTP\n"}}};
  const std::string page = render_status_detail(detail, kNow);
  EXPECT_THAT(page, Not(HasSubstr("<script>")));
  EXPECT_THAT(page, Not(HasSubstr("<img")));
  EXPECT_THAT(page, HasSubstr("S: 220 &lt;script&gt;alert(1)&lt;/script&gt;"));
  EXPECT_THAT(page, HasSubstr("<li>second hint</li>"));
  EXPECT_THAT(page, HasSubstr("<pre class=\"transcript\">"));
}

TEST(StatusPage, ListsFailingFirstThenPendingThenUp) {
  StatusRow pending = up_row("b-pending");
  pending.probed = false;
  pending.up = false;
  const StatusSnapshot snapshot{{up_row("a-up"), pending, failing_row("z-failing")}};
  const std::vector<const StatusRow*> rows = select_rows(snapshot, "");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0]->key, "z-failing");
  EXPECT_EQ(rows[1]->key, "b-pending");
  EXPECT_EQ(rows[2]->key, "a-up");
  const std::string page = render_status_page(snapshot, {}, kNow);
  EXPECT_LT(position(page, ">z-failing<"), position(page, ">b-pending<"));
  EXPECT_LT(position(page, ">b-pending<"), position(page, ">a-up<"));
}

TEST(StatusPage, ShowsReasonProblemAndHintOfAFailingRow) {
  const std::string page = render_status_page({{failing_row("down")}}, {}, kNow);
  EXPECT_THAT(page, HasSubstr("<tr class=\"failing\">"));
  EXPECT_THAT(page, HasSubstr("<span class=\"reason\">connect_refused</span>"));
  EXPECT_THAT(page, HasSubstr("nothing listens on 127.0.0.1 port 1"));
  EXPECT_THAT(page, HasSubstr("Hint: is the mail server running?"));
}

TEST(StatusPage, ShowsLatencyBannerAndCertificateDays) {
  StatusRow row = up_row("tls");
  row.cert_expiry = kNow + 29.5 * 86400;
  const std::string page = render_status_page({{row}}, {}, kNow);
  EXPECT_THAT(page, HasSubstr("<td class=\"latency\">12.3 ms</td>"));
  EXPECT_THAT(page, HasSubstr("<td class=\"banner-host\">mx.test.local</td>"));
  EXPECT_THAT(page, HasSubstr("<td class=\"software\">postfix</td>"));
  EXPECT_THAT(page, HasSubstr("<td class=\"cert\">29 days</td>"));
  EXPECT_THAT(page, HasSubstr("<a href=\"/target?name=tls\">tls</a>"));
}

TEST(StatusPage, PagesAHundredRowsAtATime) {
  StatusSnapshot snapshot;
  for (int i = 0; i < 250; ++i) {
    char name[16];
    std::snprintf(name, sizeof name, "t%03d", i);
    snapshot.rows.push_back(up_row(name));
  }
  const std::string first = render_status_page(snapshot, {}, kNow);
  EXPECT_EQ(count(first, "<tr class=\"up\">"), kStatusPageRows);
  EXPECT_THAT(first, AllOf(HasSubstr(">t000<"), HasSubstr(">t099<"), Not(HasSubstr(">t100<"))));
  EXPECT_THAT(first, HasSubstr("Showing 1-100 of 250, page 1 of 3."));
  EXPECT_THAT(first, HasSubstr("<a rel=\"next\" href=\"/?page=2\">"));
  EXPECT_THAT(first, Not(HasSubstr("rel=\"prev\"")));

  const std::string last = render_status_page(snapshot, {.page = 3}, kNow);
  EXPECT_EQ(count(last, "<tr class=\"up\">"), 50u);
  EXPECT_THAT(last, AllOf(HasSubstr(">t200<"), HasSubstr(">t249<"), Not(HasSubstr(">t199<"))));
  EXPECT_THAT(last, HasSubstr("<a rel=\"prev\" href=\"/?page=2\">"));
  EXPECT_THAT(last, Not(HasSubstr("rel=\"next\"")));

  // Past the end: the last page, not an empty one.
  EXPECT_EQ(count(render_status_page(snapshot, {.page = 99}, kNow), "<tr class=\"up\">"), 50u);
}

TEST(StatusPage, ParsesPageAndFilter) {
  EXPECT_EQ(parse_status_query({{"page", "3"}, {"q", "mx"}}).page, 3u);
  EXPECT_EQ(parse_status_query({{"page", "3"}, {"q", "mx"}}).filter, "mx");
  EXPECT_EQ(parse_status_query({{"page", "0"}}).page, 1u);
  EXPECT_EQ(parse_status_query({{"page", "-1"}}).page, 1u);
  EXPECT_EQ(parse_status_query({{"page", "2x"}}).page, 1u);
  EXPECT_EQ(parse_status_query({}).page, 1u);
}

TEST(StatusPage, FiltersOnNameStateAndReasonIgnoringCase) {
  const StatusSnapshot snapshot{{up_row("mail-a"), up_row("relay-b"), failing_row("mail-c")}};
  const auto keys = [&](std::string_view filter) {
    std::vector<std::string> out;
    for (const StatusRow* row : select_rows(snapshot, filter)) out.push_back(row->key);
    return out;
  };
  EXPECT_EQ(keys("MAIL"), (std::vector<std::string>{"mail-c", "mail-a"}));
  EXPECT_EQ(keys("failing"), (std::vector<std::string>{"mail-c"}));
  EXPECT_EQ(keys("refused"), (std::vector<std::string>{"mail-c"}));
  EXPECT_EQ(keys("nomatch"), (std::vector<std::string>{}));
  const std::string page = render_status_page(snapshot, {.filter = "relay"}, kNow);
  EXPECT_THAT(page, AllOf(HasSubstr(">relay-b<"), Not(HasSubstr(">mail-a<"))));
  EXPECT_THAT(page, HasSubstr("Showing 1-1 of 1 matching"));
  EXPECT_THAT(render_status_page(snapshot, {.filter = "nomatch"}, kNow),
              HasSubstr("No endpoint matches."));
}

TEST(StatusPage, PageLinksKeepTheFilter) {
  StatusSnapshot snapshot;
  for (int i = 0; i < 150; ++i) snapshot.rows.push_back(up_row("mx & " + std::to_string(i)));
  EXPECT_THAT(render_status_page(snapshot, {.filter = "mx &"}, kNow),
              HasSubstr("href=\"/?page=2&amp;q=mx%20%26\""));
}

TEST(StatusPage, DrawsAnInlineSvgChartPerRow) {
  const std::string page = render_status_page({{up_row("a"), up_row("b")}}, {}, kNow);
  EXPECT_EQ(count(page, "<svg class=\"chart\""), 2u);
  EXPECT_THAT(page, HasSubstr("<polyline"));
  EXPECT_THAT(page, Not(HasSubstr("<script")));
}

TEST(StatusPage, ChartScalesToTheLargestAndLeavesGapsForMissingGreetings) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::string svg = latency_chart_svg({0.010f, 0.020f, nan, 0.005f});
  EXPECT_THAT(svg, HasSubstr("up to 20.0 ms"));
  EXPECT_EQ(count(svg, "<polyline"), 1u);         // the first two
  EXPECT_EQ(count(svg, "<circle"), 1u);           // the lone last one
  EXPECT_EQ(count(svg, "fill=\"#c62828\""), 1u);  // the probe without greeting
  // The largest value reaches the top margin, the smaller one half way.
  EXPECT_THAT(svg, HasSubstr("points=\"1.0,12.0 5.1,2.0 \""));
  EXPECT_THAT(latency_chart_svg({}), AllOf(HasSubstr("<svg"), Not(HasSubstr("<polyline"))));
}

TEST(StatusPage, KeepsTheLinksToTheOtherEndpointsAndRefreshes) {
  const std::string page = render_status_page({}, {}, kNow);
  EXPECT_THAT(page, HasSubstr("<a href=\"/metrics\">"));
  EXPECT_THAT(page, HasSubstr("<a href=\"/-/healthy\">"));
  EXPECT_THAT(page, HasSubstr("<a href=\"/-/ready\">"));
  EXPECT_THAT(page, HasSubstr("<meta http-equiv=\"refresh\" content=\"30\">"));
}

TEST(StatusPage, EncodesKeysInLinks) {
  EXPECT_EQ(url_encoded("mx\nhost.example/1.2.3.4 a&b"), "mx%0Ahost.example%2F1.2.3.4%20a%26b");
}

TEST(StatusPage, NotFoundEscapesTheName) {
  EXPECT_THAT(render_status_not_found("<script>"),
              AllOf(HasSubstr("&lt;script&gt;"), Not(HasSubstr("<script>"))));
}

}  // namespace
}  // namespace smtp
