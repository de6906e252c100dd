#include "exporter/status_endpoint.h"

#include <memory>
#include <utility>

#include "exporter/status_page.h"
#include "exporter/wall_clock.h"

namespace smtp {
namespace {

// A named coroutine, not a lambda: GCC 12 destroys a capturing lambda coroutine created inside
// a co_await expression twice.
asio::awaitable<std::string> render_page(std::shared_ptr<const StatusSources> sources,
                                         StatusQuery query, double now) {
  co_return render_status_page(make_status_snapshot(*sources), query, now);
}

}  // namespace

HttpResponse html_response(int status, std::string body) {
  HttpResponse response = text_response(status, std::move(body));
  response.content_type = "text/html; charset=utf-8";
  response.headers["Content-Security-Policy"] =
      "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; "
      "base-uri 'none'; frame-ancestors 'none'";
  response.headers["X-Content-Type-Options"] = "nosniff";
  response.headers["Cache-Control"] = "no-store";
  return response;
}

StatusEndpoint::StatusEndpoint(asio::any_io_executor render_executor, Snapshotter snapshot,
                               DetailFinder find_detail, std::chrono::milliseconds reuse_for)
    : render_executor_(std::move(render_executor)),
      snapshot_(std::move(snapshot)),
      find_detail_(std::move(find_detail)),
      reuse_for_(reuse_for) {}

std::shared_ptr<const StatusSources> StatusEndpoint::snapshot() {
  const auto now = std::chrono::steady_clock::now();
  if (!recent_ || now - recent_taken_ >= reuse_for_) {
    recent_ = std::make_shared<const StatusSources>(snapshot_());
    recent_taken_ = now;
    ++snapshots_taken_;
  }
  return recent_;
}

asio::awaitable<HttpResponse> StatusEndpoint::serve_page(HttpRequest request) {
  asio::awaitable<std::string> rendering =
      render_page(snapshot(), parse_status_query(request.query), unix_now());
  std::string page =
      co_await asio::co_spawn(render_executor_, std::move(rendering), asio::use_awaitable);
  co_return html_response(200, std::move(page));
}

asio::awaitable<HttpResponse> StatusEndpoint::serve_detail(HttpRequest request) {
  const auto name = request.query.find("name");
  const std::string key = name == request.query.end() ? std::string() : name->second;
  const std::optional<StatusDetail> detail = find_detail_(key);
  if (!detail) co_return html_response(404, render_status_not_found(key));
  co_return html_response(200, render_status_detail(*detail, unix_now()));
}

}  // namespace smtp
