#pragma once
/// A small HTTP/1.1 server on Boost.Beast, running on the daemon's HTTP thread, built to hold
/// under abuse: a connection cap that evicts the idlest connection, short request timeouts,
/// progress-based write timeouts, and a bound on the memory that slow readers can pin.
#include <chrono>
#include <cstddef>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "exporter/http_message.h"
#include "exporter/http_observer.h"
#include "exporter/http_parse.h"
#include "exporter/web_access.h"
#include "probes/asio.h"

namespace smtp {

/// Runs on the server's executor; may hop to other executors and back.
using HttpHandler = std::function<asio::awaitable<HttpResponse>(const HttpRequest&)>;

/// The request methods a route answers. GET brings HEAD with it (the body is left out).
using HttpMethods = std::initializer_list<beast::http::verb>;

struct HttpServerOptions {
  /// Open connections at most (the HTTP part of the descriptor budget). At the cap, a new
  /// connection evicts the one that has waited longest for a request, or is rejected if every
  /// connection is busy with a request.
  std::size_t max_connections = 512;
  /// From accepting a connection, or from the first byte of a later request on it, until that
  /// request (headers and body) is complete: a slowloris client gets no longer.
  std::chrono::milliseconds request_timeout{5000};
  /// A keep-alive connection waiting for its next request.
  std::chrono::milliseconds idle_timeout{30000};
  /// A response whose reader accepts no byte for this long is abandoned: the timeout is on
  /// progress, not on the whole page (a large page to a slow scraper may take long).
  std::chrono::milliseconds write_stall_timeout{10000};
  /// The most bytes that response bodies of unfinished writes may hold, a body shared by
  /// several writers counted once. Past it, the writers that started first are closed.
  std::size_t max_pinned_bytes = std::size_t{64} << 20;
  /// Each connection's kernel send buffer (SO_SNDBUF; Linux doubles it), so that readers that
  /// do not read cannot make the kernel queue megabytes each (500 of them queued 1.3 GB with
  /// the default autotuning). 128 KiB still moves 100 MB/s on a LAN, 5 MB/s at 50 ms RTT.
  /// 0: the kernel's autotuning.
  std::size_t send_buffer_bytes = std::size_t{128} << 10;
  /// Told about connections (counted in the exporter's metrics); may be null. Must outlive the
  /// HttpServer object (not its coroutines, which may still unwind after it).
  HttpObserver* observer = nullptr;
  /// --web.config.file: TLS, basic auth and extra headers; null: plain HTTP, open to all. Must
  /// outlive the HttpServer object and the io_context it runs on.
  WebAccess* access = nullptr;
};

/// Serves registered paths: 404 for others, 405 (with Allow) for a method the route does not
/// take. Keep-alive, bounded request size (64 KiB of headers, no bodies over 1 MiB), and the
/// limits in HttpServerOptions, over TLS too (the TLS handshake counts as part of the first
/// request, under request_timeout). Rejections, evictions and slow-reader closes are logged at most
/// once a minute per kind, with a count.
class HttpServer {
 public:
  /// Binds and listens at once (throws boost::system::system_error if it cannot).
  HttpServer(asio::any_io_executor executor, const ListenAddress& address,
             HttpServerOptions options = {});
  ~HttpServer();

  /// Routes `path` to `handler` for `methods` (e.g. {verb::get}; {verb::post} for /-/reload).
  void handle(std::string path, HttpMethods methods, HttpHandler handler);
  void start();  // begins accepting
  void stop();   // stops accepting and closes open connections
  tcp::endpoint local_endpoint() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace smtp
