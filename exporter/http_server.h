#pragma once
/// A small HTTP/1.1 server on Boost.Beast, running on the daemon's io_context.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "probes/asio.h"

namespace smtp {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...; a HEAD request arrives as "GET" (no body is sent)
  std::string path;    // without the query string
  std::map<std::string, std::string> query;  // decoded; the last value wins
  bool accepts_gzip = false;                 // Accept-Encoding names gzip
  /// Every header, by lower-case name; a repeated header's values joined with ", ".
  std::map<std::string, std::string> headers;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  bool gzipped = false;  // body is already gzip-compressed: sets Content-Encoding
  std::map<std::string, std::string> headers;  // extra headers, e.g. Allow
};

/// Runs on the server's executor; may hop to other executors and back.
using HttpHandler = std::function<asio::awaitable<HttpResponse>(const HttpRequest&)>;

/// Serves registered paths; 404 for others. Keep-alive, bounded request size (64 KiB of
/// headers, no bodies over 1 MiB), an idle timeout per connection, and a cap on connections.
class HttpServer {
 public:
  /// Binds and listens at once (throws boost::system::system_error if it cannot).
  HttpServer(asio::any_io_executor executor, const tcp::endpoint& endpoint);
  ~HttpServer();

  void handle(std::string path, HttpHandler handler);
  void start();  // begins accepting
  void stop();   // stops accepting and closes open connections
  tcp::endpoint local_endpoint() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

/// Parses "host:port", "[v6]:port" or ":port" (all interfaces) for --web.listen-address.
/// Names other than "localhost" are not resolved. Throws std::invalid_argument.
tcp::endpoint parse_listen_address(std::string_view text);

/// gzip-compresses `data` (zlib, default level).
std::string gzip_compress(std::string_view data);

}  // namespace smtp
