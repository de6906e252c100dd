#pragma once
/// GET / and GET /target: the status pages. The rows are copied on the probe thread (a
/// snapshot) and rendered on the render thread, so that a page of 10,000 endpoints never holds
/// up a probe; an endpoint's own page is small and rendered where it is asked for.
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "exporter/http_message.h"
#include "exporter/status_snapshot.h"
#include "probes/asio.h"

namespace smtp {

/// An HTML response whose Content-Security-Policy forbids scripts and loads from anywhere: if
/// something a server sent ever escaped the escaping, a browser still would not run it.
HttpResponse html_response(int status, std::string body);

class StatusEndpoint {
 public:
  /// Both called on the probe thread (the executor serve_*() run on).
  using Snapshotter = std::function<StatusSnapshot()>;
  using DetailFinder = std::function<std::optional<StatusDetail>(std::string_view key)>;

  StatusEndpoint(asio::any_io_executor render_executor, Snapshotter snapshot,
                 DetailFinder find_detail);

  /// `/`: `?q=` filters, `?page=` pages.
  asio::awaitable<HttpResponse> serve_page(HttpRequest request);
  /// `/target?name=<endpoint key>`: 404 for an endpoint that is not (or no longer) known.
  asio::awaitable<HttpResponse> serve_detail(HttpRequest request);

 private:
  asio::any_io_executor render_executor_;
  Snapshotter snapshot_;
  DetailFinder find_detail_;
};

}  // namespace smtp
