#include "exporter/status_endpoint.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>

namespace smtp {
namespace {

using testing::HasSubstr;
using testing::Not;
using namespace std::chrono_literals;

// Not a timing expectation: only so that a broken endpoint fails a test instead of hanging it.
constexpr auto kHangGuard = 10s;

HttpRequest view_of_root() {
  HttpRequest request;
  request.method = "GET";
  request.path = "/";
  return request;
}

/// What the row of an endpoint of target `name` at `name`:25 that is up is made from.
StatusSource source_named(const std::string& name) {
  auto config = std::make_shared<TargetConfig>();
  config->name = name;
  auto probe = std::make_shared<ProbeTarget>();
  probe->host = name;
  probe->port = 25;
  auto series = std::make_shared<TargetSeries>();
  series->probed = true;
  series->success = true;
  return {name, {}, {}, config, probe, series, std::make_shared<EndpointStatus>()};
}

// The endpoint on an io_context run by a thread of its own (the probe thread), rendering on a
// pool of one (the render thread); the snapshotter counts its calls and lists `targets_`.
class StatusEndpointTest : public testing::Test {
 protected:
  void make_endpoint(std::chrono::milliseconds reuse_for) {
    endpoint_ = std::make_unique<StatusEndpoint>(
        render_.get_executor(),
        [this] {
          StatusSources sources;
          for (const std::string& target : targets_) sources.push_back(source_named(target));
          return sources;
        },
        [](std::string_view) { return std::optional<StatusDetail>(); }, reuse_for);
  }

  void TearDown() override {
    io_.stop();
    runner_.join();
    render_.join();
  }

  std::string view() {
    std::future<HttpResponse> response =
        asio::co_spawn(io_, endpoint_->serve_page(view_of_root()), asio::use_future);
    EXPECT_EQ(response.wait_for(kHangGuard), std::future_status::ready);
    const HttpResponse answer = response.get();
    EXPECT_EQ(answer.status, 200);
    return std::string(answer.body.view());
  }

  // Runs `action` on the probe thread, where the daemon calls invalidate().
  void on_probe_thread(std::function<void()> action) {
    std::promise<void> done;
    asio::post(io_, [&] {
      action();
      done.set_value();
    });
    done.get_future().wait();
  }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  std::thread runner_{[this] { io_.run(); }};
  asio::thread_pool render_{1};
  std::unique_ptr<StatusEndpoint> endpoint_;
  std::vector<std::string> targets_{"mx-one"};
};

TEST_F(StatusEndpointTest, ViewsWithinTheReuseWindowShareOneSnapshot) {
  make_endpoint(1h);
  EXPECT_THAT(view(), HasSubstr("mx-one"));
  targets_.push_back("mx-two");  // the probe thread's rows change...
  const std::string second = view();
  EXPECT_THAT(second, Not(HasSubstr("mx-two")));  // ...and a view in the window does not copy
  EXPECT_EQ(endpoint_->snapshots_taken(), 1u);
}

TEST_F(StatusEndpointTest, EveryViewCopiesWithoutAReuseWindow) {
  make_endpoint(0ms);
  view();
  targets_.push_back("mx-two");
  EXPECT_THAT(view(), HasSubstr("mx-two"));
  EXPECT_EQ(endpoint_->snapshots_taken(), 2u);
}

TEST_F(StatusEndpointTest, InvalidateMakesTheNextViewCopy) {
  make_endpoint(1h);
  view();
  targets_ = {"mx-reloaded"};  // a reload replaced the targets
  on_probe_thread([this] { endpoint_->invalidate(); });
  const std::string page = view();
  EXPECT_THAT(page, HasSubstr("mx-reloaded"));
  EXPECT_THAT(page, Not(HasSubstr("mx-one")));
  EXPECT_EQ(endpoint_->snapshots_taken(), 2u);
}

TEST_F(StatusEndpointTest, ThePageForbidsScriptsAndSniffing) {
  make_endpoint(0ms);
  std::future<HttpResponse> response =
      asio::co_spawn(io_, endpoint_->serve_page(view_of_root()), asio::use_future);
  ASSERT_EQ(response.wait_for(kHangGuard), std::future_status::ready);
  const HttpResponse answer = response.get();
  EXPECT_EQ(answer.content_type, "text/html; charset=utf-8");
  EXPECT_THAT(answer.headers.at("Content-Security-Policy"), HasSubstr("default-src 'none'"));
  EXPECT_EQ(answer.headers.at("X-Content-Type-Options"), "nosniff");
}

}  // namespace
}  // namespace smtp
