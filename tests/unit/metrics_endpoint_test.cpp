#include "exporter/metrics_endpoint.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace smtp {
namespace {

using testing::HasSubstr;
using namespace std::chrono_literals;

// Not a timing expectation: only so that a broken endpoint fails a test instead of hanging it.
constexpr auto kHangGuard = 10s;

std::string gunzip(std::string_view data) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 16) != Z_OK) return "<inflateInit2 failed>";
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  std::string out;
  int rc = Z_OK;
  while (rc == Z_OK) {
    char chunk[16384];
    zs.next_out = reinterpret_cast<Bytef*>(chunk);
    zs.avail_out = sizeof chunk;
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(chunk, sizeof chunk - zs.avail_out);
  }
  const bool complete = rc == Z_STREAM_END && zs.avail_in == 0;
  inflateEnd(&zs);
  return complete ? out : "<inflate failed>";
}

SeriesSnapshot two_targets() {
  SeriesSnapshot snapshot;
  for (const char* name : {"mx1", "mx2"}) {
    auto series = std::make_shared<TargetSeries>();
    series->labels = std::string("target=\"") + name + "\"";
    series->probed = true;
    series->success = true;
    snapshot.series.push_back(std::move(series));
  }
  return snapshot;
}

HttpRequest get(bool gzip = false) {
  HttpRequest request;
  request.method = "GET";
  request.path = "/metrics";
  request.accepts_gzip = gzip;
  return request;
}

// The endpoint on an io_context run by a thread of its own (the probe thread), rendering on a
// pool of one (the render thread).
class MetricsEndpointTest : public testing::Test {
 protected:
  void make_endpoint(std::chrono::milliseconds reuse_for) {
    endpoint_ = std::make_unique<MetricsEndpoint>(
        io_.get_executor(), render_.get_executor(), metrics_, [this] { return snapshot(); },
        reuse_for);
  }

  void TearDown() override {
    // The endpoint may still wait to let go of its last page: stop rather than wait for it.
    io_.stop();
    runner_.join();
    render_.join();
  }

  SeriesSnapshot snapshot() {
    ++snapshots_;
    if (fail_next_) {
      fail_next_ = false;
      throw std::runtime_error("no snapshot");
    }
    return two_targets();
  }

  // Starts `count` scrapes at once (on the probe thread) and waits for all their responses.
  std::vector<HttpResponse> scrape(std::vector<HttpRequest> requests) {
    std::vector<std::future<HttpResponse>> pending;
    std::promise<void> started;
    asio::post(io_, [&] {
      for (const HttpRequest& request : requests) {
        pending.push_back(asio::co_spawn(io_, endpoint_->serve(request), asio::use_future));
      }
      started.set_value();
    });
    started.get_future().wait();
    std::vector<HttpResponse> responses;
    for (auto& response : pending) {
      EXPECT_EQ(response.wait_for(kHangGuard), std::future_status::ready);
      responses.push_back(response.get());
    }
    return responses;
  }

  HttpResponse scrape_one(bool gzip = false) { return scrape({get(gzip)}).front(); }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  std::thread runner_{[this] { io_.run(); }};
  asio::thread_pool render_{1};
  ExporterMetrics metrics_;
  std::unique_ptr<MetricsEndpoint> endpoint_;
  std::atomic<int> snapshots_{0};
  bool fail_next_ = false;
};

TEST_F(MetricsEndpointTest, ThePageHasTheTargetSeriesAndTheExportersOwn) {
  make_endpoint(0ms);
  const HttpResponse response = scrape_one();
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_FALSE(response.gzipped);
  EXPECT_THAT(std::string(response.body.view()),
              HasSubstr("smtp_probe_success{target=\"mx1\"} 1\n"));
  EXPECT_THAT(std::string(response.body.view()),
              HasSubstr("smtp_probe_success{target=\"mx2\"} 1\n"));
  EXPECT_THAT(std::string(response.body.view()), HasSubstr("smtp_exporter_build_info{"));
}

TEST_F(MetricsEndpointTest, ConcurrentScrapesShareOneRenderAndItsBytes) {
  make_endpoint(0ms);
  const auto responses = scrape({get(), get(), get(true), get(), get(true)});
  EXPECT_EQ(snapshots_.load(), 1);
  EXPECT_EQ(endpoint_->renders(), 1u);
  // One buffer per form, shared by every response: no copy per scraper.
  EXPECT_EQ(responses[0].body.bytes(), responses[1].body.bytes());
  EXPECT_EQ(responses[0].body.bytes(), responses[3].body.bytes());
  EXPECT_EQ(responses[2].body.bytes(), responses[4].body.bytes());
  EXPECT_TRUE(responses[2].gzipped);
  EXPECT_EQ(gunzip(responses[2].body.view()), responses[0].body.view());
}

TEST_F(MetricsEndpointTest, APageRenderedMomentsAgoIsServedAgain) {
  make_endpoint(1h);
  const HttpResponse first = scrape_one();
  const HttpResponse second = scrape_one();
  const HttpResponse gzipped = scrape_one(true);
  EXPECT_EQ(snapshots_.load(), 1);
  EXPECT_EQ(first.body.bytes(), second.body.bytes());
  EXPECT_EQ(gunzip(gzipped.body.view()), first.body.view());
}

TEST_F(MetricsEndpointTest, APageRenderedForGzipAloneIsRenderedAgainForPlainText) {
  make_endpoint(1h);
  const HttpResponse gzipped = scrape_one(true);
  const HttpResponse again = scrape_one(true);
  EXPECT_EQ(snapshots_.load(), 1);  // reused for gzip
  EXPECT_EQ(gzipped.body.bytes(), again.body.bytes());
  // That render kept no text (it went to gzip a piece at a time): plain text is a new render,
  // and that page then serves both forms.
  const HttpResponse plain = scrape_one();
  EXPECT_EQ(snapshots_.load(), 2);
  EXPECT_THAT(gunzip(gzipped.body.view()), HasSubstr("smtp_probe_success{target=\"mx1\"} 1\n"));
  EXPECT_THAT(std::string(plain.body.view()), HasSubstr("smtp_probe_success{target=\"mx1\"} 1\n"));
  const HttpResponse gzipped_after = scrape_one(true);
  const HttpResponse plain_after = scrape_one();
  EXPECT_EQ(snapshots_.load(), 2);
  EXPECT_EQ(plain_after.body.bytes(), plain.body.bytes());
  EXPECT_EQ(gunzip(gzipped_after.body.view()), plain.body.view());
}

TEST_F(MetricsEndpointTest, APlainScrapeDoesNotJoinARenderThatKeepsNoText) {
  make_endpoint(1h);
  const auto responses = scrape({get(true), get(), get(true)});
  EXPECT_EQ(snapshots_.load(), 2);
  EXPECT_FALSE(responses[1].gzipped);
  EXPECT_THAT(std::string(responses[1].body.view()),
              HasSubstr("smtp_probe_success{target=\"mx1\"} 1\n"));
  EXPECT_THAT(gunzip(responses[0].body.view()),
              HasSubstr("smtp_probe_success{target=\"mx1\"} 1\n"));
  // A gzip scrape after them joins the newest render in flight: the one with the text.
  EXPECT_EQ(gunzip(responses[2].body.view()), responses[1].body.view());
}

TEST_F(MetricsEndpointTest, AnOlderPageIsRenderedAnew) {
  make_endpoint(0ms);
  const HttpResponse first = scrape_one();
  const HttpResponse second = scrape_one();
  EXPECT_EQ(snapshots_.load(), 2);
  EXPECT_NE(first.body.bytes(), second.body.bytes());
  EXPECT_THAT(std::string(second.body.view()), HasSubstr("smtp_probe_success{target=\"mx1\"} 1\n"));
}

TEST_F(MetricsEndpointTest, AfterAReloadThePageBeforeItIsNotServedAgain) {
  make_endpoint(1h);
  const HttpResponse before = scrape_one();
  asio::post(io_, [this] { endpoint_->invalidate(); });
  const HttpResponse after = scrape_one();
  EXPECT_EQ(snapshots_.load(), 2);
  EXPECT_NE(before.body.bytes(), after.body.bytes());
}

TEST_F(MetricsEndpointTest, AfterAReloadAScrapeDoesNotJoinARenderFromBefore) {
  make_endpoint(1h);
  // The render thread is held, so that the first scrape's render is still in flight when the
  // reload comes and the second scrape starts.
  std::promise<void> release;
  asio::post(render_, [gate = release.get_future().share()] { gate.wait(); });
  std::vector<std::future<HttpResponse>> pending;
  std::promise<void> started;
  asio::post(io_, [&] {
    pending.push_back(asio::co_spawn(io_, endpoint_->serve(get()), asio::use_future));
    asio::post(io_, [&] {  // after the first render's snapshot
      endpoint_->invalidate();
      pending.push_back(asio::co_spawn(io_, endpoint_->serve(get()), asio::use_future));
      started.set_value();
    });
  });
  started.get_future().wait();
  release.set_value();
  for (auto& response : pending)
    ASSERT_EQ(response.wait_for(kHangGuard), std::future_status::ready);
  EXPECT_EQ(snapshots_.load(), 2);
  EXPECT_NE(pending[0].get().body.bytes(), pending[1].get().body.bytes());
}

TEST_F(MetricsEndpointTest, ThePageIsLetGoOnceTooOldToReuse) {
  make_endpoint(1ms);
  std::weak_ptr<const std::string> page;
  {
    const HttpResponse response = scrape_one();
    page = response.body.bytes();
  }
  // The endpoint keeps nothing past the reuse window: an idle exporter holds no page.
  const auto deadline = std::chrono::steady_clock::now() + kHangGuard;
  while (!page.expired() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_TRUE(page.expired());
}

TEST_F(MetricsEndpointTest, AFailedRenderFailsItsScrapesAndTheNextOneRendersAgain) {
  make_endpoint(1h);
  fail_next_ = true;
  std::promise<std::exception_ptr> failed;
  asio::co_spawn(io_, endpoint_->serve(get()),
                 [&failed](std::exception_ptr error, HttpResponse) { failed.set_value(error); });
  auto outcome = failed.get_future();
  ASSERT_EQ(outcome.wait_for(kHangGuard), std::future_status::ready);
  EXPECT_TRUE(outcome.get() != nullptr);
  const HttpResponse response = scrape_one();
  EXPECT_THAT(std::string(response.body.view()), HasSubstr("target=\"mx1\""));
  EXPECT_EQ(snapshots_.load(), 2);
}

TEST(GzipTest, RoundTrips) {
  std::string text;
  for (int i = 0; i < 5000; ++i) {
    text += "smtp_probe_success{target=\"mx" + std::to_string(i) + "\"} 1\n";
  }
  std::string binary;
  for (std::size_t i = 0; i < 300000; ++i) binary.push_back(static_cast<char>(i * 7919 % 251));
  for (const std::string& original : {std::string(), std::string("a"), text, binary}) {
    const std::string compressed = gzip_compress(original);
    ASSERT_GE(compressed.size(), 18u);  // gzip header and trailer
    EXPECT_EQ(static_cast<unsigned char>(compressed[0]), 0x1f);
    EXPECT_EQ(static_cast<unsigned char>(compressed[1]), 0x8b);
    EXPECT_EQ(gunzip(compressed), original);
  }
  EXPECT_LT(gzip_compress(text).size(), text.size() / 5);
  // The compressed page keeps no more memory than its bytes (not the input's size).
  EXPECT_LT(gzip_compress(text).capacity(), text.size() / 5);
}

TEST(GzipTest, InPiecesIsOneStream) {
  std::string text;
  for (int i = 0; i < 20000; ++i) {
    text += "smtp_probe_success{target=\"mx" + std::to_string(i) + "\"} 1\n";
  }
  for (std::size_t piece : {std::size_t{7}, std::size_t{1000}, std::size_t{65536}, text.size()}) {
    GzipStream gzip(piece == 7 ? 0 : text.size());  // 0: the output grows from nothing
    for (std::size_t at = 0; at < text.size(); at += piece) {
      gzip.write(std::string_view(text).substr(at, piece));
      gzip.write({});
    }
    EXPECT_EQ(gunzip(gzip.finish()), text) << "pieces of " << piece;
  }
}

}  // namespace
}  // namespace smtp
