#pragma once
/// GET /metrics: the series are taken on the probe thread (a snapshot), rendered and gzipped
/// on the render thread, once per scrape generation. The plain text is kept only when a scrape
/// without gzip asks for it (Prometheus always asks for gzip): else it is compressed as it is
/// rendered and never whole in memory. Concurrent scrapes share one render in
/// flight, and a page rendered moments ago is served again, so that N scrapers (or N clients
/// that never read) hold one page in memory, not N: the bytes are shared, never copied. Once
/// scrapes are quiet the last page is let go and malloc_trim() returns freed memory.
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <zlib.h>

#include "exporter/http_server.h"
#include "exporter/metrics.h"
#include "probes/asio.h"

namespace smtp {

class MetricsEndpoint {
 public:
  /// Takes the series; called on the probe thread.
  using Snapshotter = std::function<SeriesSnapshot()>;

  /// `executor`: the probe thread's; serve() and the snapshots run there, and so does all of
  /// this object's state. `render_executor`: where rendering and gzip run. A page whose
  /// snapshot is younger than `reuse_for` is served again instead of rendering a new one.
  MetricsEndpoint(asio::any_io_executor executor, asio::any_io_executor render_executor,
                  const ExporterMetrics& metrics, Snapshotter snapshot,
                  std::chrono::milliseconds reuse_for = std::chrono::seconds(1));

  /// The /metrics handler (GET, HEAD): the page, gzipped if the request accepts it.
  asio::awaitable<HttpResponse> serve(HttpRequest request);

  /// What the exporter serves has changed (a reload): the next scrape must not be given a page,
  /// or join a render, whose snapshot was taken before.
  void invalidate() { ++version_; }

  /// Pages rendered so far (snapshots taken).
  std::uint64_t renders() const { return renders_; }

 private:
  struct Page {
    std::shared_ptr<const std::string> text;  // only if a scrape without gzip asked for it
    std::shared_ptr<const std::string> gzipped;
    std::chrono::steady_clock::time_point taken;  // when the snapshot was taken
    std::uint64_t version = 0;                    // version_ when the render began
  };
  /// One render, shared by every scrape that waits for it.
  struct Render {
    std::shared_ptr<const Page> page;
    std::exception_ptr error;
    bool done = false;
    std::uint64_t version = 0;
    bool with_text = false;  // keeps the plain text too (else it is only gzipped)
  };

  asio::awaitable<std::shared_ptr<const Page>> current_page(bool need_text);
  asio::awaitable<void> render_next(std::shared_ptr<Render> render);
  static asio::awaitable<std::shared_ptr<const Page>> render_page(
      std::shared_ptr<const SeriesSnapshot> snapshot, const ExporterMetrics* metrics,
      std::chrono::steady_clock::time_point taken, std::uint64_t version, bool with_text);

  asio::any_io_executor executor_;
  asio::any_io_executor render_executor_;
  const ExporterMetrics& metrics_;
  Snapshotter snapshot_;
  const std::chrono::milliseconds reuse_for_;
  asio::steady_timer rendered_;       // never expires: a finished render cancels it to wake waiters
  asio::steady_timer release_;        // lets go of the last page once it is too old to reuse
  std::shared_ptr<const Page> page_;  // the last page, while it may be reused
  std::shared_ptr<Render> in_flight_;  // the render scrapes wait for, if any
  std::uint64_t renders_ = 0;
  std::uint64_t version_ = 0;  // raised by invalidate()
};

/// gzip (zlib, the fastest level) fed in pieces: a page compressed as it is rendered.
class GzipStream {
 public:
  /// `expected_input`: about how many bytes will come, to size the output once.
  explicit GzipStream(std::size_t expected_input = 0);
  ~GzipStream();
  GzipStream(const GzipStream&) = delete;
  GzipStream& operator=(const GzipStream&) = delete;

  void write(std::string_view data);
  /// Ends the stream and gives its bytes (no spare capacity); call once.
  std::string finish();

 private:
  void deflate_all(std::string_view data, int flush);

  z_stream zs_{};
  std::string out_;
  std::size_t used_ = 0;
};

/// gzip-compresses `data` in one piece.
std::string gzip_compress(std::string_view data);

/// Makes glibc hand large freed blocks (rendered pages, snapshots) back to the system at once:
/// by default it raises its mmap threshold to the largest block freed so far, after which pages
/// come from the heap and their memory stays resident after they are freed. Call once at start.
void release_large_blocks_promptly();

}  // namespace smtp
