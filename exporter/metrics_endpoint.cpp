#include "exporter/metrics_endpoint.h"

#include <malloc.h>

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
  const bool plain = !request.accepts_gzip;
  const std::shared_ptr<const Page> page = co_await current_page(plain);
  HttpResponse response;
  response.content_type = "text/plain; version=0.0.4; charset=utf-8";
  if (plain) {
    response.body = page->text;
  } else {
    response.body = page->gzipped;
    response.gzipped = true;
  }
  co_return response;
}

asio::awaitable<std::shared_ptr<const MetricsEndpoint::Page>> MetricsEndpoint::current_page(
    bool need_text) {
  if (page_ && page_->version == version_ && (page_->text || !need_text) &&
      std::chrono::steady_clock::now() - page_->taken < reuse_for_) {
    co_return page_;
  }
  // A render already in flight is this scrape's too (its snapshot is at most that much older),
  // unless a reload came since, or this scrape wants plain text and that render keeps none.
  std::shared_ptr<Render> render = in_flight_;
  if (!render || render->version != version_ || (need_text && !render->with_text)) {
    render = std::make_shared<Render>();
    render->version = version_;
    render->with_text = need_text;
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
        render_page(std::move(snapshot), &metrics_, taken, render->version, render->with_text);
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
    std::chrono::steady_clock::time_point taken, std::uint64_t version, bool with_text) {
  GzipStream gzip(snapshot->series.size() * 2000);
  ExpositionOutput out;
  out.text = metrics->render();
  // Without a plain-text reader the text goes to gzip a piece at a time and is never whole:
  // 190 MB less at 100,000 targets, and none of it to fault in (on a VM each fresh 4 KiB page
  // costs microseconds: that was half of the render's time).
  if (!with_text) out.spill = [&gzip](std::string_view piece) { gzip.write(piece); };
  render_target_series(snapshot->series, out);
  render_mx_series(snapshot->mx, out.text);
  snapshot.reset();  // before gzip's buffers: the peak is the page, not the page and its source
  gzip.write(out.text);
  auto page = std::make_shared<Page>();
  page->gzipped = std::make_shared<const std::string>(gzip.finish());
  if (with_text) page->text = std::make_shared<const std::string>(std::move(out.text));
  page->taken = taken;
  page->version = version;
  co_return page;
}

GzipStream::GzipStream(std::size_t expected_input) {
  // The fastest level: /metrics text is so repetitive that it still shrinks 12-25x, at a
  // quarter of the default level's CPU (10,000 targets: 19 MB in ~0.12 s instead of ~0.5 s).
  if (deflateInit2(&zs_, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("gzip: deflateInit2 failed");
  }
  // Sized for the usual ratio and grown if needed: a buffer of deflateBound() would be as large
  // as the input.
  out_.resize(expected_input / 8 + 1024);
}

GzipStream::~GzipStream() { deflateEnd(&zs_); }

void GzipStream::write(std::string_view data) { deflate_all(data, Z_NO_FLUSH); }

std::string GzipStream::finish() {
  deflate_all({}, Z_FINISH);
  out_.resize(used_);
  out_.shrink_to_fit();
  return std::move(out_);
}

void GzipStream::deflate_all(std::string_view data, int flush) {
  // zlib counts in uInt: inputs and outputs larger than that go in slices.
  constexpr std::size_t kSlice = std::numeric_limits<uInt>::max();
  const char* in = data.data();
  std::size_t in_left = data.size();
  for (;;) {
    if (used_ == out_.size()) out_.resize(out_.size() * 2 + 64);
    const auto in_slice = static_cast<uInt>(std::min(in_left, kSlice));
    const auto out_slice = static_cast<uInt>(std::min(out_.size() - used_, kSlice));
    zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in));
    zs_.avail_in = in_slice;
    zs_.next_out = reinterpret_cast<Bytef*>(out_.data() + used_);
    zs_.avail_out = out_slice;
    const int rc = deflate(&zs_, in_slice == in_left ? flush : Z_NO_FLUSH);
    if (rc == Z_STREAM_ERROR) throw std::runtime_error("gzip: deflate failed");
    in += in_slice - zs_.avail_in;
    in_left -= in_slice - zs_.avail_in;
    used_ += out_slice - zs_.avail_out;
    if (flush == Z_FINISH ? rc == Z_STREAM_END : in_left == 0 && zs_.avail_out != 0) return;
  }
}

std::string gzip_compress(std::string_view data) {
  GzipStream gzip(data.size());
  gzip.write(data);
  return gzip.finish();
}

void release_large_blocks_promptly() {
  // Setting the threshold also turns off its dynamic growth: every block of 256 KiB or more
  // (a page, a gzip buffer, a snapshot's vector) gets a mapping of its own, unmapped when freed.
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
}

}  // namespace smtp
