#include "exporter/metrics_endpoint.h"

#include <malloc.h>
#include <zlib.h>

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <utility>

#include "exporter/log.h"

namespace smtp {

MetricsEndpoint::MetricsEndpoint(asio::any_io_executor executor,
                                 asio::any_io_executor render_executor,
                                 const ExporterMetrics& metrics, Snapshotter snapshot,
                                 std::chrono::milliseconds reuse_for)
    : executor_(std::move(executor)),
      render_executor_(std::move(render_executor)),
      metrics_(metrics),
      snapshot_(std::move(snapshot)),
      reuse_for_(reuse_for),
      rendered_(executor_),
      release_(executor_) {
  rendered_.expires_at(std::chrono::steady_clock::time_point::max());
}

asio::awaitable<HttpResponse> MetricsEndpoint::serve(HttpRequest request) {
  const std::shared_ptr<const Page> page = co_await current_page();
  HttpResponse response;
  response.content_type = "text/plain; version=0.0.4; charset=utf-8";
  if (request.accepts_gzip) {
    response.body = page->gzipped;
    response.gzipped = true;
  } else {
    response.body = page->text;
  }
  co_return response;
}

asio::awaitable<std::shared_ptr<const MetricsEndpoint::Page>> MetricsEndpoint::current_page() {
  if (page_ && page_->version == version_ &&
      std::chrono::steady_clock::now() - page_->taken < reuse_for_) {
    co_return page_;
  }
  // A render already in flight is this scrape's too: its snapshot is at most that much older,
  // unless a reload came since.
  std::shared_ptr<Render> render = in_flight_;
  if (!render || render->version != version_) {
    render = std::make_shared<Render>();
    render->version = version_;
    in_flight_ = render;
    asio::co_spawn(executor_, render_next(render), [](std::exception_ptr error) {
      if (error) log::write(log::Level::kError, "metrics render coroutine failed");
    });
  }
  while (!render->done) {
    boost::system::error_code ec;
    co_await rendered_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  if (render->error) std::rethrow_exception(render->error);
  co_return render->page;
}

asio::awaitable<void> MetricsEndpoint::render_next(std::shared_ptr<Render> render) {
  const auto taken = std::chrono::steady_clock::now();
  try {
    auto snapshot = std::make_shared<const SeriesSnapshot>(snapshot_());
    // A named coroutine, not a lambda: GCC 12 destroys a capturing lambda coroutine created
    // inside a co_await expression twice.
    asio::awaitable<std::shared_ptr<const Page>> rendering =
        render_page(std::move(snapshot), &metrics_, taken, render->version);
    render->page =
        co_await asio::co_spawn(render_executor_, std::move(rendering), asio::use_awaitable);
  } catch (const std::exception& e) {
    log::write(log::Level::kError, "cannot render /metrics", {{"err", e.what()}});
    render->error = std::current_exception();
  }
  render->done = true;
  ++renders_;
  if (in_flight_ == render) in_flight_.reset();
  if (render->page && render->version == version_) {
    page_ = render->page;
    // The page is kept only while it may be reused: after that, the next scrape renders anew
    // anyway, and an idle exporter should not hold a page it will never send again.
    release_.expires_after(reuse_for_);
    release_.async_wait([this, kept = page_.get()](const boost::system::error_code& ec) {
      if (ec || page_.get() != kept) return;
      page_.reset();
      // Scrapes are quiet: hand what the burst left behind (connection buffers, snapshot
      // strings freed between long-lived blocks) back to the system, off the probe thread.
      asio::post(render_executor_, [] { malloc_trim(0); });
    });
  }
  rendered_.cancel();
}

asio::awaitable<std::shared_ptr<const MetricsEndpoint::Page>> MetricsEndpoint::render_page(
    std::shared_ptr<const SeriesSnapshot> snapshot, const ExporterMetrics* metrics,
    std::chrono::steady_clock::time_point taken, std::uint64_t version) {
  auto text = std::make_shared<std::string>(metrics->render());
  render_target_series(snapshot->series, *text);
  render_mx_series(snapshot->mx, *text);
  snapshot.reset();  // before gzip's buffers: the peak is the page, not the page and its source
  auto page = std::make_shared<Page>();
  // Both forms at once: one render serves every scraper, whichever it asks for.
  page->gzipped = std::make_shared<const std::string>(gzip_compress(*text));
  page->text = std::move(text);
  page->taken = taken;
  page->version = version;
  co_return page;
}

std::string gzip_compress(std::string_view data) {
  z_stream zs{};
  // The fastest level: /metrics text is so repetitive that it still shrinks ~20x, at a quarter
  // of the default level's CPU (10,000 targets: 19 MB in ~0.12 s instead of ~0.5 s).
  if (deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("gzip_compress: deflateInit2 failed");
  }
  struct End {
    z_stream& zs;
    ~End() { deflateEnd(&zs); }
  } end{zs};

  // zlib counts in uInt: feed inputs and outputs larger than that in slices.
  constexpr std::size_t kSlice = std::numeric_limits<uInt>::max();
  // Sized for the usual ratio and grown if needed: a buffer of deflateBound() would be as large
  // as the input, and the page would keep all of it.
  std::string out(deflateBound(&zs, data.size()) / 8 + 1024, '\0');
  const char* in = data.data();
  std::size_t in_left = data.size();
  std::size_t out_used = 0;
  for (;;) {
    if (out_used == out.size()) out.resize(out.size() * 2 + 64);
    const auto in_slice = static_cast<uInt>(std::min(in_left, kSlice));
    const auto out_slice = static_cast<uInt>(std::min(out.size() - out_used, kSlice));
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in));
    zs.avail_in = in_slice;
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + out_used);
    zs.avail_out = out_slice;
    const int rc = deflate(&zs, in_slice == in_left ? Z_FINISH : Z_NO_FLUSH);
    if (rc == Z_STREAM_ERROR) throw std::runtime_error("gzip_compress: deflate failed");
    in += in_slice - zs.avail_in;
    in_left -= in_slice - zs.avail_in;
    out_used += out_slice - zs.avail_out;
    if (rc == Z_STREAM_END) break;
  }
  out.resize(out_used);
  out.shrink_to_fit();
  return out;
}

void release_large_blocks_promptly() {
  // Setting the threshold also turns off its dynamic growth: every block of 256 KiB or more
  // (a page, a gzip buffer, a snapshot's vector) gets a mapping of its own, unmapped when freed.
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
}

}  // namespace smtp
