#pragma once
/// GET / and GET /target: the status pages. What the rows show is taken on the probe thread (a
/// snapshot: references, see take_status_sources), and the rows are made and rendered on the
/// render thread, so that a page of 100,000 endpoints never holds up a probe for long; an
/// endpoint's own page is small and made where it is asked for.
#include <chrono>
#include <functional>
#include <memory>
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
  using Snapshotter = std::function<StatusSources()>;
  using DetailFinder = std::function<std::optional<StatusDetail>(std::string_view key)>;

  /// Views within `reuse_for` of a snapshot share it: a snapshot costs the probe thread a few
  /// milliseconds at 100,000 endpoints, and a client that reloads `/` in a loop must not cost it
  /// more than that once per `reuse_for`.
  StatusEndpoint(asio::any_io_executor render_executor, Snapshotter snapshot,
                 DetailFinder find_detail,
                 std::chrono::milliseconds reuse_for = std::chrono::seconds(1));

  /// `/`: `?q=` filters, `?page=` pages.
  asio::awaitable<HttpResponse> serve_page(HttpRequest request);
  /// `/target?name=<endpoint key>`: 404 for an endpoint that is not (or no longer) known.
  asio::awaitable<HttpResponse> serve_detail(HttpRequest request);

  /// The next view takes a new snapshot (after a reload: the endpoints changed). Probe thread.
  void invalidate() { recent_.reset(); }

  /// Snapshots taken so far (each one a walk over every endpoint on the probe thread).
  std::size_t snapshots_taken() const { return snapshots_taken_; }

 private:
  std::shared_ptr<const StatusSources> snapshot();

  asio::any_io_executor render_executor_;
  Snapshotter snapshot_;
  DetailFinder find_detail_;
  const std::chrono::milliseconds reuse_for_;
  std::shared_ptr<const StatusSources> recent_;
  std::chrono::steady_clock::time_point recent_taken_;
  std::size_t snapshots_taken_ = 0;
};

}  // namespace smtp
